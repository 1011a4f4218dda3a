"""The reverse-KL-regularised objective and its closed-form Gibbs oracle (DESIGN §1).

All policies are log-probabilities over the last axis (K actions); −inf marks zero mass.
Leading axes are batch axes (contexts, seeds, …) and broadcast.

    O(r, η, π0)(a|x) = π0(a|x) exp(r(x,a)/η) / Z(x)
    J(π)             = Σ_x d0(x) [ Σ_a π(a|x) r(x,a) − η KL(π(·|x) ‖ π0(·|x)) ]
    J(O(r))          = Σ_x d0(x) η log Z(x)

Public functions validate their inputs; the ``_unchecked`` kernels are for internal callers that
already did.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from rlbandit._checks import (
    NORMALISATION_TOL,
    as_float_array,
    check_broadcast,
    check_context_probs,
    check_eta,
    check_finite,
    check_logprobs,
)

__all__ = [
    "gibbs",
    "kl",
    "value",
    "optimal_value",
    "log_partition",
    "expected_reward",
    "normalize_logits",
]


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


def _gibbs_exact_rows(rewards: np.ndarray, ref_logprobs: np.ndarray, eta: float) -> np.ndarray:
    """log O(r, η, π0) for rows (N, K), exact at every η: shift r by its max over π0's support
    (so ties at the top stay exact and (r − m)/η never overflows), then by the peak of the logits."""
    with np.errstate(over="ignore", invalid="ignore"):
        if ref_logprobs.min() > -np.inf:  # full support: no masking needed
            z = rewards - rewards.max(axis=-1, keepdims=True)
            z /= eta  # a division, not ·(1/η): 1/η overflows for η < 1/DBL_MAX and 0·inf is NaN
        else:
            support = np.isfinite(ref_logprobs)
            top = np.where(support, rewards, -np.inf).max(axis=-1, keepdims=True)
            z = np.where(support, (rewards - top) / eta, 0.0)
        z += ref_logprobs
    z -= z.max(axis=-1, keepdims=True)
    z -= np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return z


def _gibbs_blocks(rewards: np.ndarray, ref_logprobs: np.ndarray, eta: float, check: bool) -> np.ndarray:
    """The Gibbs kernel on C-contiguous (N, K) float64 rows, block by block (see _BLOCK_ENTRIES).

    Fast path per block: z = r/η + log π0, e = exp(z), log O = z − log Σe — one exp pass. Rows
    whose Σe overflows or is below _TINY_MASS (extreme η, or all of π0's mass on low rewards) are
    recomputed by :func:`_gibbs_exact_rows`. Where the fast path is kept, |z| ≲ 700 on the entries
    that carry mass, so the log-probabilities are within ~1e-13 of the shifted computation.

    With ``check`` the inputs are validated inside the same blocks (finite rewards; log π0 ≤ 0,
    no NaN, rows normalised within NORMALISATION_TOL by a float32 exp), raising ValueError.
    """
    n_rows, k = rewards.shape
    out = np.empty((n_rows, k))
    step = max(1, _BLOCK_ENTRIES // max(k, 1))
    scratch = np.empty((min(step, n_rows), k))
    scratch32 = np.empty((min(step, n_rows), k), dtype=np.float32) if check else None
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        inv = 1.0 / eta  # inf for η < 1/DBL_MAX: then every block takes the exact path
        for start in range(0, n_rows, step):
            _gibbs_block(rewards, ref_logprobs, out, scratch, scratch32, start, step, eta, inv, check)
    return out


def _gibbs_block(rewards, ref_logprobs, out, scratch, scratch32, start, step, eta, inv, check) -> None:
    """One block of :func:`_gibbs_blocks` (rows start … start + step), written into ``out``."""
    r = rewards[start:start + step]
    ref = ref_logprobs[start:start + step]
    z = out[start:start + step]
    e = scratch[: r.shape[0]]
    row_top = r.max(axis=-1)
    if check:
        _check_block(r, row_top.max(), ref, scratch32[: r.shape[0]], start)
    # Every decision is per row, so a row's result never depends on the rows batched with it.
    fits = row_top * inv <= _MAX_EXPONENT  # exp(r/η) cannot overflow
    if not fits.any():  # extreme η: straight to the shifted path
        z[...] = _gibbs_exact_rows(r, ref, eta)
        return
    np.multiply(r, inv, out=z)
    z += ref
    np.exp(z, out=e)
    mass = e.sum(axis=-1)
    ok = fits & (mass >= _TINY_MASS) & (mass < np.inf)
    if ok.all():
        z -= np.log(mass)[:, None]
    else:
        z[ok] -= np.log(mass[ok])[:, None]
        z[~ok] = _gibbs_exact_rows(r[~ok], ref[~ok], eta)


def _check_block(rewards: np.ndarray, top: float, ref_logprobs: np.ndarray, scratch32: np.ndarray, start: int) -> None:
    """Validation of one block for :func:`_gibbs_blocks` (``top`` = rewards.max()), in two more
    reductions, one float32 exp and one row sum: min/max are NaN-propagating, so a finite min and
    max mean every reward is finite."""
    if not np.isfinite(rewards.min()) or not np.isfinite(top):
        check_finite(rewards, "rewards")
    if not ref_logprobs.max() <= NORMALISATION_TOL:  # also False on NaN
        check_logprobs(ref_logprobs, "ref_logprobs", normalised=False)
    np.exp(ref_logprobs, out=scratch32, dtype=np.float32, casting="same_kind")
    mass = scratch32.sum(axis=-1)
    bad = ~(np.abs(mass - 1.0) <= NORMALISATION_TOL)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"ref_logprobs: rows must be normalised log-probabilities; row {start + row} (flattened over the "
            f"leading axes) has total probability {float(mass[row]):.8g}"
        )


def _gibbs_unchecked(rewards: np.ndarray, ref_logprobs: np.ndarray, eta: float, *, check: bool = False) -> np.ndarray:
    """log O(r, η, π0) for broadcastable (..., K) arrays; validation only with ``check``."""
    shape = np.broadcast_shapes(np.shape(rewards), np.shape(ref_logprobs))
    k = shape[-1]
    rows = np.ascontiguousarray(np.broadcast_to(rewards, shape), dtype=np.float64).reshape(-1, k)
    refs = np.ascontiguousarray(np.broadcast_to(ref_logprobs, shape), dtype=np.float64).reshape(-1, k)
    return _gibbs_blocks(rows, refs, eta, check).reshape(shape)


def gibbs(rewards, ref_logprobs, eta) -> np.ndarray:
    """Log-probabilities of the Gibbs policy O(r, η, π0) ∝ π0 exp(r/η).

    Args:
        rewards: r(x, a), shape (..., K), finite.
        ref_logprobs: log π0(a|x), broadcastable to ``rewards``; rows normalised, −inf = no mass.
        eta: KL coefficient η > 0 (any finite positive float: 1e-300 and 1e300 included).

    Returns:
        log O(r, η, π0), shape of ``rewards`` broadcast with ``ref_logprobs``; rows normalised
        in log space, −inf exactly where π0 has no mass. As η → 0 the mass goes to the maximisers
        of r over π0's support (weighted by π0); as η → ∞ the result tends to log π0.
    """
    rewards = as_float_array(rewards, "rewards", min_ndim=1)
    ref_logprobs = as_float_array(ref_logprobs, "ref_logprobs", min_ndim=1)
    eta = check_eta(eta)
    check_broadcast(rewards.shape, ref_logprobs.shape, "rewards", "ref_logprobs")
    if ref_logprobs.shape[-1] == 0 or rewards.shape[-1] == 0:
        raise ValueError(f"ref_logprobs: expected shape (..., K) with K >= 1, got {ref_logprobs.shape}")
    if rewards.shape != ref_logprobs.shape:
        # Broadcasting repeats rows; validate the originals once instead of every copy.
        check_finite(rewards, "rewards")
        check_logprobs(ref_logprobs, "ref_logprobs")
        return _gibbs_unchecked(rewards, ref_logprobs, eta)
    return _gibbs_unchecked(rewards, ref_logprobs, eta, check=True)


def _renormalise(logprobs: np.ndarray) -> np.ndarray:
    """Remove the (validated, ≤ NORMALISATION_TOL) normalisation error of log-probability rows."""
    return logprobs - logsumexp(logprobs, axis=-1, keepdims=True)


def _kl_unchecked(logp: np.ndarray, logq: np.ndarray) -> np.ndarray:
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


def kl(logp, logq) -> np.ndarray:
    """KL(p ‖ q) = Σ_a p(a) (log p(a) − log q(a)) per row.

    Args:
        logp, logq: log-probabilities, broadcastable shapes (..., K), rows normalised.

    Returns:
        shape (...,): ≥ 0 (by construction, see :func:`_kl_unchecked`), 0 only for equal rows;
        +inf where p has mass outside the support of q; 0·log 0 = 0. It is the KL of the rows
        normalised exactly (they may be off by the validation tolerance).
    """
    logp = as_float_array(logp, "logp", min_ndim=1)
    logq = as_float_array(logq, "logq", min_ndim=1)
    check_logprobs(logp, "logp")
    check_logprobs(logq, "logq")
    check_broadcast(logp.shape, logq.shape, "logp", "logq")
    return _kl_unchecked(logp, logq)


def expected_reward(logprobs, rewards) -> np.ndarray:
    """Σ_a π(a|x) r(x,a) per row, shape (...,). Unchecked: internal callers validate."""
    p, rewards = np.broadcast_arrays(np.exp(np.asarray(logprobs, dtype=np.float64)), np.asarray(rewards, dtype=np.float64))
    return np.einsum("...k,...k->...", p, rewards)


def _log_partition_unchecked(rewards: np.ndarray, ref_logprobs: np.ndarray, eta: float) -> np.ndarray:
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


def log_partition(rewards, ref_logprobs, eta) -> np.ndarray:
    """η log Z(x) per context (shape (...,)), the optimal per-context value (Gibbs fact 1).

    Args:
        rewards: r, shape (..., K), finite.
        ref_logprobs: log π0, broadcastable to ``rewards``, rows normalised (−inf = no mass).
        eta: η > 0.

    Returns:
        η log Σ_a π0(a|x) exp(r(x,a)/η), shape (...,) of the broadcast leading axes. It tends to
        E_π0 r as η → ∞ and to max_{a ∈ supp π0} r as η → 0.
    """
    rewards = as_float_array(rewards, "rewards", min_ndim=1)
    ref_logprobs = as_float_array(ref_logprobs, "ref_logprobs", min_ndim=1)
    eta = check_eta(eta)
    check_finite(rewards, "rewards")
    check_logprobs(ref_logprobs, "ref_logprobs")
    check_broadcast(rewards.shape, ref_logprobs.shape, "rewards", "ref_logprobs")
    return _log_partition_unchecked(rewards, _renormalise(ref_logprobs), eta)


def _per_context_value(logprobs, rewards, ref_logprobs, eta) -> np.ndarray:
    """E_π r − η KL(π‖π0) per context (unchecked); −inf where π leaves π0's support."""
    gain = expected_reward(logprobs, np.where(np.isfinite(logprobs), rewards, 0.0))
    return gain - eta * _kl_unchecked(logprobs, ref_logprobs)


def _weigh_contexts(per_context: np.ndarray, context_probs) -> np.ndarray:
    if per_context.ndim < 1:
        raise ValueError("logprobs: expected shape (..., X, K) with a context axis")
    probs = check_context_probs(context_probs, per_context.shape[-1])
    with np.errstate(invalid="ignore"):
        # −inf · 0 (a context of zero weight with infinite KL) contributes nothing.
        weighted = np.where(probs > 0, probs * per_context, 0.0)
    return weighted.sum(axis=-1)


def value(logprobs, rewards, ref_logprobs, eta, context_probs=None) -> np.ndarray:
    """J(π) = Σ_x d0(x) [ Σ_a π(a|x) r(x,a) − η KL(π(·|x) ‖ π0(·|x)) ].

    Args:
        logprobs: log π, shape (..., X, K).
        rewards: r, broadcastable to (..., X, K), finite.
        ref_logprobs: log π0, broadcastable to (..., X, K).
        eta: η > 0.
        context_probs: d0, shape (X,) or (..., X); uniform when None.

    Returns:
        shape (...,); −inf when π puts mass outside π0's support on a context with d0 > 0.
    """
    logprobs = as_float_array(logprobs, "logprobs", min_ndim=2)
    rewards = as_float_array(rewards, "rewards", min_ndim=1)
    ref_logprobs = as_float_array(ref_logprobs, "ref_logprobs", min_ndim=1)
    eta = check_eta(eta)
    check_finite(rewards, "rewards")
    check_logprobs(logprobs, "logprobs")
    check_logprobs(ref_logprobs, "ref_logprobs")
    shape = check_broadcast(logprobs.shape, rewards.shape, "logprobs", "rewards")
    check_broadcast(shape, ref_logprobs.shape, "logprobs", "ref_logprobs")
    per_context = _per_context_value(_renormalise(logprobs), rewards, _renormalise(ref_logprobs), eta)
    return _weigh_contexts(per_context, context_probs)


def optimal_value(rewards, ref_logprobs, eta, context_probs=None) -> np.ndarray:
    """J(O(r, η, π0)) = Σ_x d0(x) η log Z(x), shape (...,) for rewards of shape (..., X, K)."""
    rewards = as_float_array(rewards, "rewards", min_ndim=2)
    ref_logprobs = as_float_array(ref_logprobs, "ref_logprobs", min_ndim=1)
    eta = check_eta(eta)
    check_finite(rewards, "rewards")
    check_logprobs(ref_logprobs, "ref_logprobs")
    check_broadcast(rewards.shape, ref_logprobs.shape, "rewards", "ref_logprobs")
    return _weigh_contexts(_log_partition_unchecked(rewards, _renormalise(ref_logprobs), eta), context_probs)
