"""Unchecked numerical kernels of the objective (DESIGN §1): the one home of each equation.

The public functions of :mod:`rlbandit.oracle` validate their inputs at the boundary and call
these; algorithms that already hold validated arrays (every module of the toolkit, the studies)
call them directly. Nothing here validates shapes or values beyond what the equation needs —
pass normalised log-probabilities (−inf = no mass) and a positive η.

    gibbs(r, log π0, η)          log O(r, η, π0) = log π0 + r/η − log Z      (compiled, one pass)
    gibbs_reference(r, log π0, η) the same equation in three lines (tested equal to ``gibbs``)
    log_partition(r, log π0, η)   η log Z(x) = η log Σ_a π0(a|x) exp(r(x,a)/η)
    kl(log p, log q)              KL(p‖q) per row, without cancellation
    expected_reward(log π, r)     Σ_a π(a|x) r(x,a)
    per_context_value(...)        E_π r − η KL(π‖π0) per context
    weigh_contexts(v, d0)         Σ_x d0(x) v(x)
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from rlbandit import compiled
from rlbandit._checks import check_context_probs, check_finite, check_logprobs

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

    Exact for moderate r/η; :func:`gibbs` computes the same numbers (tested to 1e-12) in one
    compiled pass, and falls back to a max-shifted form where r/η overflows.
    """
    logits = np.where(np.isfinite(ref_logprobs), ref_logprobs + np.asarray(rewards) / eta, -np.inf)
    return logits - logsumexp(logits, axis=-1, keepdims=True)


def normalize_logits(logits: np.ndarray) -> np.ndarray:
    """log softmax over the last axis: ``logits − logsumexp(logits)``; rows of −inf stay −inf-safe.

    Shape (..., K) → (..., K). A row that is entirely −inf has no mass and raises in callers.
    """
    logits = np.asarray(logits, dtype=np.float64)
    return logits - logsumexp(logits, axis=-1, keepdims=True)


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


def gibbs(rewards: np.ndarray, ref_logprobs: np.ndarray, eta: float, *, check: bool = False) -> np.ndarray:
    """log O(r, η, π0) for broadcastable (..., K) arrays; validation only with ``check``.

    One compiled pass (:func:`rlbandit.compiled.gibbs_rows`): z = r/η + log π0, Σ e^z per row and
    z − log Σ e^z, with ``check`` the inputs validated in the same pass. Rows whose Σ e^z falls
    outside [1e-280, 1e300) (extreme η, or all of π0's mass on rewards far below the rest) are
    recomputed by :func:`gibbs_exact_rows`; elsewhere every z with mass is below ~690 in size, so
    the result is within ~1e-13 of the shifted computation (tested). With ``check`` an invalid
    input raises ValueError: non-finite rewards; log π0 with NaN, a positive entry or a row
    whose probabilities do not sum to 1 within NORMALISATION_TOL.
    """
    if type(rewards) is np.ndarray and type(ref_logprobs) is np.ndarray and rewards.shape == ref_logprobs.shape:
        shape = rewards.shape  # (the common case, without broadcasting's µs on small inputs)
    else:
        rewards, ref_logprobs = np.broadcast_arrays(rewards, ref_logprobs)
        shape = rewards.shape
    # ravel: a view of C-ordered input, else a C-ordered copy (what the compiled pass reads)
    rows = (rewards if rewards.dtype == np.float64 else rewards.astype(np.float64)).ravel()
    refs = (ref_logprobs if ref_logprobs.dtype == np.float64 else ref_logprobs.astype(np.float64)).ravel()
    result = np.empty(shape)
    if rows.shape[0] == 0:
        return result
    out = result.ravel()
    exact = np.empty(rows.shape[0] // shape[-1], dtype=bool)
    if eta >= _SMALLEST_ETA:
        flagged = compiled.gibbs_rows(rows, refs, 1.0 / eta, check, out, exact)
    else:  # 1/η overflows: no fast path (every row takes the exact one, checked here)
        exact[:] = True
        flagged = -1 if check else exact.size
    if flagged == -1:  # an invalid entry (or a row at the edge of the approximate mass check)
        check_finite(rows, "rewards")
        check_logprobs(refs.reshape(shape), "ref_logprobs")  # the messages: NaN, > 0, or the row's mass
        flagged = int(exact.sum())
    if flagged:
        k = shape[-1]
        out.reshape(-1, k)[exact] = gibbs_exact_rows(rows.reshape(-1, k)[exact], refs.reshape(-1, k)[exact], eta)
    return result


#: Below this η, 1/η overflows float64.
_SMALLEST_ETA = 1.0 / np.finfo(np.float64).max


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
