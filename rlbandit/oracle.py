"""The reverse-KL-regularised objective and its closed-form Gibbs oracle (DESIGN §1).

All policies are log-probabilities over the last axis (K actions); −inf marks zero mass.
Leading axes are batch axes (contexts, seeds, …) and broadcast.

    O(r, η, π0)(a|x) = π0(a|x) exp(r(x,a)/η) / Z(x)
    J(π)             = Σ_x d0(x) [ Σ_a π(a|x) r(x,a) − η KL(π(·|x) ‖ π0(·|x)) ]
    J(O(r))          = Σ_x d0(x) η log Z(x)

Public functions validate their inputs at the boundary and call the unchecked kernels of
:mod:`rlbandit.kernels` (the one home of each equation; :func:`rlbandit.kernels.gibbs_reference`
is the Gibbs equation as written, beside the compiled one-pass kernel).
"""

from __future__ import annotations

import math

import numpy as np

from rlbandit import kernels
from rlbandit._checks import (
    as_float_array,
    check_broadcast,
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
    if (
        type(rewards) is np.ndarray and type(ref_logprobs) is np.ndarray and type(eta) is float
        and rewards.dtype == np.float64 and ref_logprobs.dtype == np.float64
        and rewards.shape == ref_logprobs.shape and rewards.ndim and rewards.shape[-1] and 0.0 < eta < math.inf
    ):  # already validated in form: only the values are left, and the kernel checks them in its one pass
        return kernels.gibbs(rewards, ref_logprobs, eta, check=True)
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
        return kernels.gibbs(rewards, ref_logprobs, eta)
    return kernels.gibbs(rewards, ref_logprobs, eta, check=True)


def kl(logp, logq) -> np.ndarray:
    """KL(p ‖ q) = Σ_a p(a) (log p(a) − log q(a)) per row.

    Args:
        logp, logq: log-probabilities, broadcastable shapes (..., K), rows normalised.

    Returns:
        shape (...,): ≥ 0 (by construction, see :func:`kernels.kl`), 0 only for equal rows;
        +inf where p has mass outside the support of q; 0·log 0 = 0. It is the KL of the rows
        normalised exactly (they may be off by the validation tolerance).
    """
    logp = as_float_array(logp, "logp", min_ndim=1)
    logq = as_float_array(logq, "logq", min_ndim=1)
    check_logprobs(logp, "logp")
    check_logprobs(logq, "logq")
    check_broadcast(logp.shape, logq.shape, "logp", "logq")
    return kernels.kl(logp, logq)


def _check_rewards_game(rewards, ref_logprobs, eta, *, min_ndim: int):
    """Validated (r, renormalised log π0, η) for the log-partition functions."""
    rewards = as_float_array(rewards, "rewards", min_ndim=min_ndim)
    ref_logprobs = as_float_array(ref_logprobs, "ref_logprobs", min_ndim=1)
    eta = check_eta(eta)
    check_finite(rewards, "rewards")
    check_logprobs(ref_logprobs, "ref_logprobs")
    check_broadcast(rewards.shape, ref_logprobs.shape, "rewards", "ref_logprobs")
    return rewards, kernels.renormalise(ref_logprobs), eta


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
    rewards, ref_logprobs, eta = _check_rewards_game(rewards, ref_logprobs, eta, min_ndim=1)
    return kernels.log_partition(rewards, ref_logprobs, eta)


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
    logprobs, ref_logprobs = kernels.renormalise(logprobs), kernels.renormalise(ref_logprobs)
    per_context = kernels.per_context_value(logprobs, rewards, ref_logprobs, eta)
    return kernels.weigh_contexts(per_context, context_probs)


def optimal_value(rewards, ref_logprobs, eta, context_probs=None) -> np.ndarray:
    """J(O(r, η, π0)) = Σ_x d0(x) η log Z(x), shape (...,) for rewards of shape (..., X, K)."""
    rewards, ref_logprobs, eta = _check_rewards_game(rewards, ref_logprobs, eta, min_ndim=2)
    return kernels.weigh_contexts(kernels.log_partition(rewards, ref_logprobs, eta), context_probs)


def expected_reward(logprobs, rewards) -> np.ndarray:
    """E_π r = Σ_a π(a|x) r(x,a) per row, shape (...,) for ``logprobs`` and ``rewards`` broadcastable
    to (..., K). Validated; the kernel for checked arrays is :func:`rlbandit.kernels.expected_reward`."""
    logprobs = as_float_array(logprobs, "logprobs", min_ndim=1)
    rewards = as_float_array(rewards, "rewards", min_ndim=1)
    check_broadcast(logprobs.shape, rewards.shape, "logprobs", "rewards")
    check_logprobs(logprobs, "logprobs")
    check_finite(rewards, "rewards")
    return kernels.expected_reward(logprobs, rewards)


def normalize_logits(logits) -> np.ndarray:
    """log softmax over the last axis, shape (..., K) → (..., K); −inf is a zero-mass entry, a row
    with no finite entry is refused. The kernel for checked arrays is :func:`rlbandit.kernels.normalize_logits`."""
    logits = as_float_array(logits, "logits", min_ndim=1)
    if logits.shape[-1] == 0:
        raise ValueError(f"logits: expected shape (..., K) with K >= 1, got {logits.shape}")
    if np.isnan(logits).any() or (logits == np.inf).any():
        raise ValueError("logits: contains NaN or +inf")
    if not np.isfinite(logits).any(axis=-1).all():
        raise ValueError("logits: a row has no finite entry (no mass to normalise)")
    return kernels.normalize_logits(logits)
