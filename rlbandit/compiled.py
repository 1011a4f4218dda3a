"""Compiled (numba) loops where NumPy's passes over memory and per-call overhead dominate.

* :func:`gibbs_rows`, behind :func:`rlbandit.kernels.gibbs`: a NumPy expression of the Gibbs
  policy costs about a dozen ufunc calls, each with 1–2 µs of fixed overhead; on 10⁴ entries that
  is 4× the time of the one ``np.exp`` the equation needs. The loop reads r and log π0 once,
  validates them in the same pass and writes log O(r, η, π0).
* :func:`tilt_weights`, behind :mod:`rlbandit.optimistic`: the tilted weights of every
  (context, direction, size) with their peak and Σ e·h, one pass instead of seven.

Two pieces make it fast, and both are local to this module:

* ``exp`` is evaluated inline by range reduction, x = k·ln 2 + t with |t| ≤ ln 2 / 2, a degree-10
  near-minimax polynomial in t and 2^k written straight into the exponent bits. It is within
  3 ulp of ``np.exp`` on [−708, 709] (tested), and unlike a libm call it vectorises.
* the loops are compiled for 512-bit vectors where the CPU has them (LLVM prefers 256-bit ones
  on AVX-512 machines unless a function asks otherwise; numba has no option for it).

Every function here is unchecked: their callers validate (:func:`rlbandit.kernels.gibbs` is the
Gibbs kernel's interface).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba.core import types
from numba.extending import intrinsic

from rlbandit._checks import NORMALISATION_TOL

__all__ = ["EXP_COEFFICIENTS", "exp64", "exp_coarse", "gibbs_rows", "tilt_weights"]

#: reassoc lets LLVM vectorise the sums (in a different order: the same sum up to rounding);
#: contract fuses a·b + c into one FMA. No flag that assumes finite inputs: −inf is zero mass.
_FASTMATH = {"contract", "reassoc"}

#: Entries per block of short rows: e^z and exp(log π0) of a block stay in L1/L2 cache.
BLOCK_ENTRIES = 4096
#: Rows at least this long are summed in registers row by row; shorter ones block by block.
LONG_ROW = 256
#: Smallest partition sum the fast path keeps; below it the row goes to the exact shifted path.
TINY_MASS = 1e-280
#: Largest partition sum the fast path keeps: every term is below it, so every r/η + log π0 is
#: below log(1e300) ≈ 690.8 and no exp was clipped at the polynomial's range (709).
HUGE_MASS = 1e300


def _bitcast(source, target):
    @intrinsic
    def cast(typingctx, value):
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(target))

        return target(source), codegen

    return cast


_float64_bits = _bitcast(types.float64, types.int64)
_bits_float64 = _bitcast(types.int64, types.float64)


@intrinsic
def _wide_vectors(typingctx):
    """Ask LLVM for 512-bit vectors in the calling function (a no-op on CPUs without them)."""

    def codegen(context, builder, signature, args):
        # llvmlite validates attribute names against a fixed list without string attributes;
        # the set itself serialises any name verbatim. A speed hint only: if a later llvmlite
        # stores attributes otherwise, the loops keep LLVM's default width.
        try:
            set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        except TypeError:
            pass
        return context.get_dummy_value()

    return types.none(), codegen


_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so k·_LN2_HI is exact for |k| < 2^11
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_ROUND = 6755399441055744.0  # 1.5·2^52: x + _ROUND rounds x to an integer kept in the low bits
_ROUND_BITS = int(np.float64(_ROUND).view(np.int64))
#: e^t on |t| ≤ ln 2 / 2 by its degree-10 Chebyshev interpolant (near-minimax: |error| < 2.2e-16),
#: highest degree first; from ``mpmath.chebyfit(mpmath.exp, [-ln2/2, ln2/2], 11)`` at 40 digits
#: (recomputed in the tests).
EXP_COEFFICIENTS = (
    2.7626357241447223e-07, 2.764018079620985e-06, 2.4801504346997686e-05, 0.00019841170270440067,
    0.0013888888932488599, 0.008333333385667782, 0.04166666666657314, 0.16666666666554406,
    0.5000000000000006, 1.0000000000000067, 1.0,
)


@njit(inline="always", fastmath=_FASTMATH)
def exp64(x):
    """e^x for x ∈ [−708, 709] (undefined outside), within 3 ulp of ``np.exp`` (tested)."""
    y = x * _INV_LN2 + _ROUND
    k = y - _ROUND
    t = (x - k * _LN2_HI) - k * _LN2_LO
    c = EXP_COEFFICIENTS
    p = c[0]
    p = c[1] + t * p
    p = c[2] + t * p
    p = c[3] + t * p
    p = c[4] + t * p
    p = c[5] + t * p
    p = c[6] + t * p
    p = c[7] + t * p
    p = c[8] + t * p
    p = c[9] + t * p
    p = c[10] + t * p
    return p * _bits_float64((_float64_bits(y) - _ROUND_BITS + 1023) << 52)


@njit(inline="always", fastmath=_FASTMATH)
def exp_coarse(x):
    """e^x for x ∈ [−708, 709] to a relative 1.3e-7 (degree-6 Taylor): for normalisation checks."""
    y = x * _INV_LN2 + _ROUND
    k = y - _ROUND
    t = (x - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 + t * (1.0 + t * (0.5 + t * (1.0 / 6.0 + t * (1.0 / 24.0 + t * (1.0 / 120.0 + t * (1.0 / 720.0))))))
    return p * _bits_float64((_float64_bits(y) - _ROUND_BITS + 1023) << 52)


@njit(inline="always", fastmath=_FASTMATH)
def _mass_term(z):
    """e^z for one term of a partition sum. z is clipped to [−708, 709]: −inf (no mass) then adds
    e^−708 ≈ 3e-308, which is below 1e-27 of any sum the fast path keeps (≥ TINY_MASS) for rows
    of fewer than 10⁹ entries; z > 709 makes the sum ≥ HUGE_MASS, so its row takes the exact path."""
    return exp64(min(max(z, -708.0), 709.0))


@njit(inline="always", fastmath=_FASTMATH)
def _ref_mass_term(q):
    """exp(log π0) to ~1e-7 for the normalisation check (−inf adds e^−708 ≈ 3e-308)."""
    return exp_coarse(max(q, -708.0))


@njit(fastmath=_FASTMATH, cache=True)
def gibbs_rows(rewards, ref_logprobs, inv_eta, check, out, exact):
    """log O(r, η, π0) on N flat C-ordered rows (N = ``exact.size`` ≥ 1), fast path only.

    Args:
        rewards, ref_logprobs, out: float64, shape (N·k,); ``out`` is written.
        inv_eta: 1/η, finite.
        check: also validate: every reward finite; every log π0 ≤ NORMALISATION_TOL, none NaN,
            and every row's Σ exp(log π0) within NORMALISATION_TOL of 1 (computed to ~1e-7).
        exact: bool, shape (N,); set True for each row the fast path did not finish: its Σe is
            outside [TINY_MASS, HUGE_MASS) or NaN. The caller recomputes those rows exactly
            (their entries of ``out`` are left undefined).

    Returns:
        −1 if ``check`` found an invalid entry, else the number of rows marked in ``exact``.
    """
    _wide_vectors()
    k = rewards.shape[0] // exact.shape[0]
    tol = NORMALISATION_TOL
    if k >= LONG_ROW:
        bad, flagged = _long_rows(rewards, ref_logprobs, k, inv_eta, check, tol, out, exact)
    else:
        bad, flagged = _short_rows(rewards, ref_logprobs, k, inv_eta, check, tol, out, exact)
    if check and not bad == 0.0:
        return -1
    return flagged


@njit(inline="always", fastmath=_FASTMATH)
def _long_rows(rewards, ref_logprobs, k, inv_eta, check, tol, out, exact):
    """Row by row: Σ e^z in registers, then z recomputed and written once as z − log Σ e^z."""
    bad = 0.0
    flagged = 0
    for row in range(exact.shape[0]):
        # Slices, then loops from 0: numba wraps negative indices, and an index LLVM cannot prove
        # non-negative turns the vector loads into gathers.
        r = rewards[row * k:(row + 1) * k]
        q = ref_logprobs[row * k:(row + 1) * k]
        mass = 0.0
        if check:
            ref_mass = 0.0
            for j in range(k):
                rj = r[j]
                qj = q[j]
                mass += _mass_term(rj * inv_eta + qj)
                bad += rj - rj  # NaN unless the reward is finite
                bad += 0.0 if qj <= tol else 1.0  # NaN or a positive log-probability
                ref_mass += _ref_mass_term(qj)
            bad += 0.0 if abs(ref_mass - 1.0) <= tol else 1.0
        else:
            for j in range(k):
                mass += _mass_term(r[j] * inv_eta + q[j])
        exact[row] = not (mass >= TINY_MASS and mass < HUGE_MASS)
        if exact[row]:
            flagged += 1
        else:
            log_mass = math.log(mass)
            z = out[row * k:(row + 1) * k]
            for j in range(k):
                z[j] = (r[j] * inv_eta + q[j]) - log_mass
    return bad, flagged


@njit(inline="always", fastmath=_FASTMATH)
def _short_rows(rewards, ref_logprobs, k, inv_eta, check, tol, out, exact):
    """Blocks of rows: z and e^z for the whole block in one flat loop (short rows would spend
    their time entering and leaving per-row vector loops), then per-row sums and z − log Σ e^z."""
    n_rows = exact.shape[0]
    step = max(1, BLOCK_ENTRIES // k)
    e = np.empty(step * k)
    e_ref = np.empty(step * k)
    bad = 0.0
    flagged = 0
    for first in range(0, n_rows, step):
        last = min(first + step, n_rows)
        r = rewards[first * k:last * k]
        q = ref_logprobs[first * k:last * k]
        z = out[first * k:last * k]
        if check:
            for j in range(r.shape[0]):
                rj = r[j]
                qj = q[j]
                zj = rj * inv_eta + qj
                z[j] = zj
                e[j] = _mass_term(zj)
                bad += rj - rj
                bad += 0.0 if qj <= tol else 1.0
                e_ref[j] = _ref_mass_term(qj)
        else:
            for j in range(r.shape[0]):
                zj = r[j] * inv_eta + q[j]
                z[j] = zj
                e[j] = _mass_term(zj)
        for row in range(last - first):
            e_row = e[row * k:(row + 1) * k]
            mass = 0.0
            if check:  # both sums in one loop: short rows pay per loop, not per entry
                e_ref_row = e_ref[row * k:(row + 1) * k]
                ref_mass = 0.0
                for j in range(k):
                    mass += e_row[j]
                    ref_mass += e_ref_row[j]
                bad += 0.0 if abs(ref_mass - 1.0) <= tol else 1.0
            else:
                for j in range(k):
                    mass += e_row[j]
            exact[first + row] = not (mass >= TINY_MASS and mass < HUGE_MASS)
            if exact[first + row]:
                flagged += 1
            else:
                log_mass = math.log(mass)
                z_row = z[row * k:(row + 1) * k]
                for j in range(k):
                    z_row[j] -= log_mass
    return bad, flagged


@njit(fastmath=_FASTMATH, cache=True)
def tilt_weights(h, ref_logprobs, tilt, floor):
    """Unnormalised tilted weights of the optimistic search, e = exp(t·h + log π¹ − peak).

    Args:
        h: tilt scores, float64 (N, C, K) C-ordered.
        ref_logprobs: log π¹, float64 (N, K); −inf = no mass.
        tilt: sizes t, float64 (N, C, G) C-ordered.
        floor: exponents below it (relative to the peak, e.g. −300) are raised to it.

    Returns:
        e (N, C, G, K): exp(max(t·h + log π¹ − peak, floor)), exactly 0 off π¹'s support; the
        peak max_a (t·h(a) + log π¹(a)) (N, C, G); and Σ_a e(a)·h(a) (N, C, G).
    """
    _wide_vectors()
    n, c_count, k = h.shape
    g_count = tilt.shape[2]
    e = np.empty((n, c_count, g_count, k))
    peak = np.empty((n, c_count, g_count))
    eh = np.empty((n, c_count, g_count))
    for i in range(n):
        lp = ref_logprobs[i]
        for c in range(c_count):
            hc = h[i, c]
            for g in range(g_count):
                t = tilt[i, c, g]
                top = -np.inf
                for a in range(k):
                    top = max(top, t * hc[a] + lp[a])
                out = e[i, c, g]
                total = 0.0
                for a in range(k):
                    w = exp64(max(t * hc[a] + lp[a] - top, floor)) if lp[a] > -np.inf else 0.0
                    out[a] = w
                    total += w * hc[a]
                peak[i, c, g] = top
                eh[i, c, g] = total
    return e, peak, eh
