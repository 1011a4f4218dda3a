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


def _gibbs_unchecked(rewards: np.ndarray, ref_logprobs: np.ndarray, eta: float) -> np.ndarray:
    # One exp pass over (..., K); everything else is cheap arithmetic done in place.
    z = np.multiply(rewards, 1.0 / eta)
    z += ref_logprobs
    peak = z.max(axis=-1, keepdims=True)
    z -= peak
    mass = np.exp(z).sum(axis=-1, keepdims=True)
    z -= np.log(mass)
    return z


def gibbs(rewards, ref_logprobs, eta) -> np.ndarray:
    """Log-probabilities of the Gibbs policy O(r, η, π0) ∝ π0 exp(r/η).

    Args:
        rewards: r(x, a), shape (..., K), finite.
        ref_logprobs: log π0(a|x), broadcastable to ``rewards``; rows normalised, −inf = no mass.
        eta: KL coefficient η > 0.

    Returns:
        log O(r, η, π0), shape of ``rewards`` broadcast with ``ref_logprobs``; rows normalised
        in log space (logsumexp), −inf exactly where π0 has no mass.
    """
    rewards = as_float_array(rewards, "rewards", min_ndim=1)
    ref_logprobs = as_float_array(ref_logprobs, "ref_logprobs", min_ndim=1)
    eta = check_eta(eta)
    check_finite(rewards, "rewards")
    check_logprobs(ref_logprobs, "ref_logprobs")
    check_broadcast(rewards.shape, ref_logprobs.shape, "rewards", "ref_logprobs")
    return _gibbs_unchecked(rewards, ref_logprobs, eta)


def _kl_unchecked(logp: np.ndarray, logq: np.ndarray) -> np.ndarray:
    p = np.exp(logp)
    with np.errstate(invalid="ignore"):
        # 0·log(0/q) = 0 even where q = 0; p > 0 with q = 0 gives +inf.
        terms = np.where(p > 0.0, p * (logp - logq), 0.0)
    return terms.sum(axis=-1)


def kl(logp, logq) -> np.ndarray:
    """KL(p ‖ q) = Σ_a p(a) (log p(a) − log q(a)) per row.

    Args:
        logp, logq: log-probabilities, broadcastable shapes (..., K), rows normalised.

    Returns:
        shape (...,): ≥ 0; +inf where p has mass outside the support of q; 0·log 0 = 0.
    """
    logp = as_float_array(logp, "logp", min_ndim=1)
    logq = as_float_array(logq, "logq", min_ndim=1)
    check_logprobs(logp, "logp")
    check_logprobs(logq, "logq")
    check_broadcast(logp.shape, logq.shape, "logp", "logq")
    return np.maximum(_kl_unchecked(logp, logq), 0.0)


def expected_reward(logprobs, rewards) -> np.ndarray:
    """Σ_a π(a|x) r(x,a) per row, shape (...,). Unchecked: internal callers validate."""
    p = np.exp(np.asarray(logprobs, dtype=np.float64))
    return np.einsum("...k,...k->...", p, np.broadcast_to(rewards, p.shape))


def _log_partition_unchecked(rewards: np.ndarray, ref_logprobs: np.ndarray, eta: float) -> np.ndarray:
    """η log Z(x) = η log Σ_a π0(a|x) exp(r(x,a)/η), accurate for tiny and huge η."""
    rewards, ref_logprobs = np.broadcast_arrays(rewards, ref_logprobs)
    support = np.isfinite(ref_logprobs)
    # Shift by the π0-mean reward c: η log E_π0 exp((r − c)/η) + c.  When every |r − c|/η is
    # small, log1p(E expm1(·)) keeps full precision (huge η); otherwise logsumexp does.
    p0 = np.exp(ref_logprobs)
    c = np.einsum("...k,...k->...", p0, np.where(support, rewards, 0.0))
    scaled = np.where(support, (rewards - c[..., None]) / eta, 0.0)
    small = np.abs(scaled).max(axis=-1) < 0.5
    with np.errstate(over="ignore"):
        series = eta * np.log1p(np.einsum("...k,...k->...", p0, np.expm1(np.where(small[..., None], scaled, 0.0))))
    big = eta * logsumexp(ref_logprobs + np.where(support, scaled, 0.0), axis=-1)
    return c + np.where(small, series, big)


def log_partition(rewards, ref_logprobs, eta) -> np.ndarray:
    """η log Z(x) per context (shape (...,)), the optimal per-context value (Gibbs fact 1)."""
    rewards = as_float_array(rewards, "rewards", min_ndim=1)
    ref_logprobs = as_float_array(ref_logprobs, "ref_logprobs", min_ndim=1)
    eta = check_eta(eta)
    check_finite(rewards, "rewards")
    check_logprobs(ref_logprobs, "ref_logprobs")
    check_broadcast(rewards.shape, ref_logprobs.shape, "rewards", "ref_logprobs")
    return _log_partition_unchecked(rewards, ref_logprobs, eta)


def _per_context_value(logprobs, rewards, ref_logprobs, eta) -> np.ndarray:
    gain = expected_reward(logprobs, np.where(np.isfinite(logprobs), rewards, 0.0))
    return gain - eta * np.maximum(_kl_unchecked(logprobs, ref_logprobs), 0.0)


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
    rewards = as_float_array(rewards, "rewards", min_ndim=2)
    ref_logprobs = as_float_array(ref_logprobs, "ref_logprobs", min_ndim=2)
    eta = check_eta(eta)
    check_finite(rewards, "rewards")
    check_logprobs(logprobs, "logprobs")
    check_logprobs(ref_logprobs, "ref_logprobs")
    shape = check_broadcast(logprobs.shape, rewards.shape, "logprobs", "rewards")
    check_broadcast(shape, ref_logprobs.shape, "logprobs", "ref_logprobs")
    return _weigh_contexts(_per_context_value(logprobs, rewards, ref_logprobs, eta), context_probs)


def optimal_value(rewards, ref_logprobs, eta, context_probs=None) -> np.ndarray:
    """J(O(r, η, π0)) = Σ_x d0(x) η log Z(x), shape (...,) for rewards of shape (..., X, K)."""
    rewards = as_float_array(rewards, "rewards", min_ndim=2)
    ref_logprobs = as_float_array(ref_logprobs, "ref_logprobs", min_ndim=2)
    eta = check_eta(eta)
    check_finite(rewards, "rewards")
    check_logprobs(ref_logprobs, "ref_logprobs")
    check_broadcast(rewards.shape, ref_logprobs.shape, "rewards", "ref_logprobs")
    return _weigh_contexts(_log_partition_unchecked(rewards, ref_logprobs, eta), context_probs)
