"""Unchecked numerical kernels of the objective (DESIGN §1): the one home of each equation.

The public functions of :mod:`rlbandit.oracle` validate their inputs at the boundary and call
these; algorithms that already hold validated arrays (every module of the toolkit, the studies)
call them directly. Nothing here validates shapes or values beyond what the equation needs —
pass normalised log-probabilities (−inf = no mass) and a positive η.

    gibbs(r, log π0, η)          log O(r, η, π0) = log π0 + r/η − log Z            (blocked, fast)
    gibbs_reference(r, log π0, η) the same equation in three lines (tested equal to ``gibbs``)
    log_partition(r, log π0, η)   η log Z(x) = η log Σ_a π0(a|x) exp(r(x,a)/η)
    kl(log p, log q)              KL(p‖q) per row, without cancellation
    expected_reward(log π, r)     Σ_a π(a|x) r(x,a)
    per_context_value(...)        E_π r − η KL(π‖π0) per context
    weigh_contexts(v, d0)         Σ_x d0(x) v(x)
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

from rlbandit._checks import NORMALISATION_TOL, check_context_probs, check_finite, check_logprobs

__all__ = [
    "expected_reward",
    "gibbs",
    "gibbs_exact_rows",
    "gibbs_reference",
    "kl",
    "log_partition",
    "normalize_logits",
    "per_context_value",
    "renormalise",
    "weigh_contexts",
]


def gibbs_reference(rewards: np.ndarray, ref_logprobs: np.ndarray, eta: float) -> np.ndarray:
    """log O(r, η, π0) = log π0 + r/η − logsumexp(log π0 + r/η): the headline equation as written.

    Exact for moderate r/η; :func:`gibbs` computes the same numbers (tested to 1e-12) block by
    block in cache with one exp pass, and falls back to a max-shifted form where r/η overflows.
    """
    logits = np.where(np.isfinite(ref_logprobs), ref_logprobs + np.asarray(rewards) / eta, -np.inf)
    return logits - logsumexp(logits, axis=-1, keepdims=True)


def normalize_logits(logits: np.ndarray) -> np.ndarray:
    """log softmax over the last axis: ``logits − logsumexp(logits)``; rows of −inf stay −inf-safe.

    Shape (..., K) → (..., K). A row that is entirely −inf has no mass and raises in callers.
    """
    logits = np.asarray(logits, dtype=np.float64)
    return logits - logsumexp(logits, axis=-1, keepdims=True)


#: Rows per block of the Gibbs kernel are chosen so one block of float64 holds about this many
#: entries (512 KiB): every pass over a block then runs in L2 cache, and memory is read once.
_BLOCK_ENTRIES = 1 << 16
#: Smallest partition sum the fast path accepts; below it (or on overflow) the row is recomputed
#: by the exact shifted path, so no entry with non-negligible mass is ever a denormal.
_TINY_MASS = 1e-280
#: Largest r/η the fast path exponentiates (exp(700) ≈ 1e304 < float64 max).
_MAX_EXPONENT = 700.0


def gibbs_exact_rows(rewards: np.ndarray, ref_logprobs: np.ndarray, eta: float) -> np.ndarray:
    """log O(r, η, π0) for rows (N, K), exact at every η: shift r by its max over π0's support
    (so ties at the top stay exact and (r − m)/η never overflows), then by the peak of the logits."""
    with np.errstate(over="ignore", invalid="ignore"):
        support = np.isfinite(ref_logprobs)
        top = np.where(support, rewards, -np.inf).max(axis=-1, keepdims=True)
        gap = rewards - top
        # r − max r overflows when rewards span more than DBL_MAX (±1e308): then (r/η − max r/η)
        spill = ~np.isfinite(gap) & np.isfinite(rewards)
        if spill.any():
            gap = np.where(spill, rewards / eta - top / eta, gap / eta)
        else:
            gap /= eta  # a division, not ·(1/η): 1/η overflows for η < 1/DBL_MAX and 0·inf is NaN
        z = np.where(support, gap, 0.0)
        z += ref_logprobs
    z -= z.max(axis=-1, keepdims=True)
    z -= np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return z


def _gibbs_blocks(rewards: np.ndarray, ref_logprobs: np.ndarray, eta: float, check: bool) -> np.ndarray:
    """The Gibbs kernel on C-contiguous (N, K) float64 rows, block by block (see _BLOCK_ENTRIES).

    Fast path per block: z = r/η + log π0, e = exp(z), log O = z − log Σe — one exp pass. Rows
    whose Σe overflows or is below _TINY_MASS (extreme η, or all of π0's mass on low rewards) are
    recomputed by :func:`gibbs_exact_rows`. Where the fast path is kept, |z| ≲ 700 on the entries
    that carry mass, so the log-probabilities are within ~1e-13 of the shifted computation.

    With ``check`` the inputs are validated inside the same blocks (finite rewards; log π0 ≤ 0,
    no NaN, rows normalised within NORMALISATION_TOL), raising ValueError.
    """
    n_rows, k = rewards.shape
    out = np.empty((n_rows, k))
    step = max(1, _BLOCK_ENTRIES // max(k, 1))
    scratch = np.empty((min(step, n_rows), k))
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        inv = 1.0 / eta  # inf for η < 1/DBL_MAX: then every block takes the exact path
        for start in range(0, n_rows, step):
            _gibbs_block(rewards, ref_logprobs, out, scratch, start, step, eta, inv, check)
    return out


def _gibbs_block(rewards, ref_logprobs, out, scratch, start, step, eta, inv, check) -> None:
    """One block of :func:`_gibbs_blocks` (rows start … start + step), written into ``out``.

    Every decision is per row, so a row's result never depends on the rows batched with it: the
    block-wide tests below (max r/η ≤ _MAX_EXPONENT, every Σe in range) only shortcut the case
    where every row passes its own test, which is the common one and costs two reductions.
    """
    r = rewards[start:start + step]
    ref = ref_logprobs[start:start + step]
    z = out[start:start + step]
    e = scratch[: r.shape[0]]
    top = r.max()
    if check:
        _check_block(r, top, ref, e, start)
    if top * inv <= _MAX_EXPONENT:  # no row's exp(r/η) can overflow (False for a NaN top)
        fits = None
    else:
        fits = r.max(axis=-1) * inv <= _MAX_EXPONENT
        if not fits.any():  # extreme η: straight to the shifted path
            z[...] = gibbs_exact_rows(r, ref, eta)
            return
    if inv == 1.0:  # r·1 = r exactly: one pass fewer
        np.add(r, ref, out=z)
    else:
        np.multiply(r, inv, out=z)
        z += ref
    np.exp(z, out=e)
    mass = e.sum(axis=-1)
    if fits is None and mass.min() >= _TINY_MASS and mass.max() < np.inf:
        z -= np.log(mass)[:, None]
        return
    ok = (mass >= _TINY_MASS) & (mass < np.inf)
    if fits is not None:
        ok &= fits
    z[ok] -= np.log(mass[ok])[:, None]
    z[~ok] = gibbs_exact_rows(r[~ok], ref[~ok], eta)


def _check_block(rewards: np.ndarray, top: float, ref_logprobs: np.ndarray, scratch: np.ndarray, start: int) -> None:
    """Validation of one block for :func:`_gibbs_blocks` (``top`` = rewards.max()) in one more
    reduction, one exp and one row sum: min/max are NaN-propagating, so a finite min and max mean
    every reward is finite; and a row of log π0 whose Σ exp is within NORMALISATION_TOL of 1 has
    no NaN and no entry above NORMALISATION_TOL (exp of it alone would exceed 1 + tol). Only a
    failing block is examined further, for the message. ``scratch`` (float64, the block's shape)
    is overwritten."""
    if not (math.isfinite(top) and math.isfinite(rewards.min())):  # math: no ufunc overhead on scalars
        check_finite(rewards, "rewards")
    np.exp(ref_logprobs, out=scratch)
    mass = scratch.sum(axis=-1)
    if mass.min() >= 1.0 - NORMALISATION_TOL and mass.max() <= 1.0 + NORMALISATION_TOL:  # NaN fails
        return
    check_logprobs(ref_logprobs, "ref_logprobs", normalised=False)  # NaN, positive entries: their own message
    row = int(np.flatnonzero(~(np.abs(mass - 1.0) <= NORMALISATION_TOL))[0])
    raise ValueError(
        f"ref_logprobs: rows must be normalised log-probabilities; row {start + row} (flattened over the "
        f"leading axes) has total probability {float(mass[row]):.8g}"
    )


def gibbs(rewards: np.ndarray, ref_logprobs: np.ndarray, eta: float, *, check: bool = False) -> np.ndarray:
    """log O(r, η, π0) for broadcastable (..., K) arrays; validation only with ``check``."""
    shape = np.shape(rewards)
    if shape != np.shape(ref_logprobs):  # (equal shapes skip broadcasting: µs on small inputs)
        shape = np.broadcast_shapes(shape, np.shape(ref_logprobs))
        rewards, ref_logprobs = np.broadcast_to(rewards, shape), np.broadcast_to(ref_logprobs, shape)
    k = shape[-1]
    rows = np.ascontiguousarray(rewards, dtype=np.float64).reshape(-1, k)
    refs = np.ascontiguousarray(ref_logprobs, dtype=np.float64).reshape(-1, k)
    return _gibbs_blocks(rows, refs, eta, check).reshape(shape)


def renormalise(logprobs: np.ndarray) -> np.ndarray:
    """Remove the (validated, ≤ NORMALISATION_TOL) normalisation error of log-probability rows."""
    return logprobs - logsumexp(logprobs, axis=-1, keepdims=True)


def kl(logp: np.ndarray, logq: np.ndarray) -> np.ndarray:
    """KL(p̄ ‖ q̄) per row of the normalised p̄ = p/Σp, q̄ = q/Σq, without cancellation.

    With δ = log p − log q, μ = E_p̄ δ and u = δ − μ (centred under p̄):

        KL(p̄‖q̄) = log(1 + E_p̄[e^{−u} − 1 + u]) − log q̄(supp p)

    Both terms are ≥ 0 (e^{−u} − 1 + u ≥ 0), so KL ≥ 0 by construction and = 0 only for equal
    rows; the expression is exactly invariant to constant shifts of log p or log q (so rows that
    are normalised only up to rounding do not leak a first-order error, which η = 1e8 would
    amplify); e^{−u} − 1 + u is computed as expm1(−u) + u for |u| ≤ 1, so nearby rows lose no
    digits. p = 0 terms drop out; q = 0 < p gives +inf. The resolution is that of the inputs:
    log-probabilities carry ~16 digits, so KL is resolved down to ~1e-32.
    """
    logp, logq = np.broadcast_arrays(np.asarray(logp, dtype=np.float64), np.asarray(logq, dtype=np.float64))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        lp = logp - logsumexp(logp, axis=-1, keepdims=True)
        p = np.exp(lp)
        on = p > 0.0
        delta = np.where(on, logp - logq, 0.0)
        mu = np.einsum("...k,...k->...", p, delta)
        outside = ~np.isfinite(mu)  # q = 0 somewhere p > 0
        u = delta - np.where(outside, 0.0, mu)[..., None]
        near = np.abs(u) <= 1.0
        un = np.where(near, u, 0.0)
        h = np.where(near, p * (np.expm1(-un) + un), np.exp(lp - u) - p + p * u)
        spread = np.where(on, h, 0.0).sum(axis=-1)  # = E_p̄ e^{−u} − 1
        # Far-apart rows (spread ≳ 1, possibly e^{−u} overflowing): log E_p̄ e^{−u} in log space.
        far = ~(spread <= 1.0)
        if far.any():
            spread_log = logsumexp(np.where(on, lp - u, -np.inf), axis=-1)
            core = np.where(far, spread_log, np.log1p(np.where(far, 0.0, spread)))
        else:
            core = np.log1p(spread)
        log_mass_q = logsumexp(logq, axis=-1, keepdims=True)
        q_off = np.where(on, 0.0, np.exp(logq - log_mass_q)).sum(axis=-1)
        log_q_on = logsumexp(np.where(on, logq, -np.inf), axis=-1) - log_mass_q[..., 0]
        missing = np.where(q_off <= 0.5, -np.log1p(-q_off), -log_q_on)
        result = core + missing
    return np.where(outside, np.inf, result)


def expected_reward(logprobs, rewards) -> np.ndarray:
    """Σ_a π(a|x) r(x,a) per row, shape (...,)."""
    logprobs, rewards = np.asarray(logprobs, dtype=np.float64), np.asarray(rewards, dtype=np.float64)
    p, rewards = np.broadcast_arrays(np.exp(logprobs), rewards)
    return np.einsum("...k,...k->...", p, rewards)


def log_partition(rewards: np.ndarray, ref_logprobs: np.ndarray, eta: float) -> np.ndarray:
    """η log Z(x) = η log Σ_a π0(a|x) exp(r(x,a)/η), accurate for tiny and huge η.

    Two exact rewritings, chosen per row:

    - huge η (every |r − c|/η < 1/2 with c = E_π0 r): c + η log1p(E_π0 expm1((r − c)/η)), which
      keeps the O(Var_π0(r)/η) correction to full relative precision (a plain logsumexp would
      lose it to rounding once multiplied by η);
    - otherwise: m + η logsumexp(log π0 + (r − m)/η) with m = max of r over π0's support, so
      every exponent is ≤ 0 (no overflow at η = 1e-300) and the maximiser contributes exactly.
    """
    rewards, ref_logprobs = np.broadcast_arrays(rewards, ref_logprobs)
    support = np.isfinite(ref_logprobs)
    on_support = np.where(support, rewards, 0.0)
    p0 = np.exp(ref_logprobs)
    c = np.einsum("...k,...k->...", p0, on_support) / p0.sum(axis=-1)
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = np.where(support, (rewards - c[..., None]) / eta, 0.0)
        small = np.abs(scaled).max(axis=-1) < 0.5
        series = c + eta * np.log1p(np.einsum("...k,...k->...", p0, np.expm1(np.where(small[..., None], scaled, 0.0))))
        top = np.where(support, rewards, -np.inf).max(axis=-1)
        shifted = np.where(support, (rewards - top[..., None]) / eta, 0.0)
        big = top + eta * logsumexp(ref_logprobs + shifted, axis=-1)
    return np.where(small, series, big)


def per_context_value(logprobs, rewards, ref_logprobs, eta) -> np.ndarray:
    """E_π r − η KL(π‖π0) per context (unchecked); −inf where π leaves π0's support."""
    gain = expected_reward(logprobs, np.where(np.isfinite(logprobs), rewards, 0.0))
    return gain - eta * kl(logprobs, ref_logprobs)


def weigh_contexts(per_context: np.ndarray, context_probs) -> np.ndarray:
    """Σ_x d0(x) v(x) over the last axis; d0 uniform when None, (X,) or batched (..., X)."""
    if per_context.ndim < 1:
        raise ValueError("logprobs: expected shape (..., X, K) with a context axis")
    probs = check_context_probs(context_probs, per_context.shape[-1])
    try:
        np.broadcast_shapes(probs.shape, per_context.shape)
    except ValueError:
        raise ValueError(f"context_probs: shape {probs.shape} does not broadcast with the problem's batch of "
                         f"contexts {per_context.shape}") from None
    with np.errstate(invalid="ignore"):
        # −inf · 0 (a context of zero weight with infinite KL) contributes nothing.
        weighted = np.where(probs > 0, probs * per_context, 0.0)
    return weighted.sum(axis=-1)
