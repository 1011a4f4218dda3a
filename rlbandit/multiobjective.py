"""Conflicting preferences in the exact world (DESIGN §6b): vector rewards, soups, user-aware
policies and annotator mixtures.

k objectives r_i(x,a) = ⟨φ(x,a), θ_i*⟩ share one feature map. Shapes (leading axes are seeds):

    rewards_k   (..., k, X, K)      r_i(x, a)
    weights     (..., k)            w ∈ Δ_k (w_i ≥ 0, Σ_i w_i = 1)
    gates       (..., V, X, k)      g(ν, x) ∈ Δ_k per user type ν and context x
    user_probs  (V,) or (..., V)    d_ν
    mixing      (J,) or (..., J)    ρ_j, the share of annotator type j

    J_i(π)            = Σ_x d0(x) [ Σ_a π(a|x) r_i(x,a) − η KL(π(·|x) ‖ π0(·|x)) ]
    J_w(π)            = Σ_i w_i J_i(π) = J(π; Σ_i w_i r_i)          (Σ_i w_i = 1)
    argmax_π J_w(π)   = O(Σ_i w_i r_i, η, π0)                        (Gibbs facts 1–2 of DESIGN §1)

**Broadcast rule for weight grids.** ``weights`` (..., k) and ``rewards_k`` (..., k, X, K) broadcast
over their leading axes by numpy's rule: a grid (G, k) against unbatched rewards (k, X, K) gives
(G, X, K); against seeds (S, k, X, K) pass ``weights[:, None, :]`` (G, 1, k) to get (G, S, X, K).
:func:`pareto_front` does this itself. The same rule joins ``gates`` and ``logprobs_k`` to rewards.

Every function validates its inputs and raises a ValueError naming the argument; the mathematics
calls :mod:`rlbandit.kernels` (Gibbs, KL, values). The annotator mixtures (labels, agreement,
the pooled-BT limit) live in :mod:`rlbandit.multiobjective_annotators`, which imports this module;
``rlbandit.multiobjective.annotator_labels`` etc. reach them lazily (module ``__getattr__``). Learning
from comparisons — multi-head BT heads, the gate by maximum likelihood, per-head LCB/UCB — lives in
:mod:`rlbandit.multiobjective_learning`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from rlbandit import kernels
from rlbandit._checks import (
    as_float_array,
    check_broadcast,
    check_context_probs,
    check_eta,
    check_finite,
    check_logprobs,
)

__all__ = [
    "objective_rewards",
    "combined_policy",
    "objective_values",
    "pareto_front",
    "geometric_soup",
    "arithmetic_soup",
    "user_policies",
    "shared_policy",
    "SharingPrice",
    "price_of_sharing",
]

#: Names that live in :mod:`rlbandit.multiobjective_annotators` (which imports this module), served lazily.
_ANNOTATOR_NAMES = ("annotator_labels", "agreement_matrix", "pooled_bt_limit")


def __getattr__(name: str):
    if name in _ANNOTATOR_NAMES:
        from rlbandit import multiobjective_annotators

        return getattr(multiobjective_annotators, name)
    raise AttributeError(f"module 'rlbandit.multiobjective' has no attribute {name!r}")


#: Tolerance on |Σ_i w_i − 1| for a weight vector (or gate row) to count as on the simplex.
SIMPLEX_TOL = 1e-8


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------

def _simplex(values, name: str, size: int | None = None, *, min_ndim: int = 1) -> np.ndarray:
    """Rows on the probability simplex over the last axis (size ``size`` when given)."""
    values = as_float_array(values, name, min_ndim=min_ndim)
    if values.shape[-1] == 0:
        raise ValueError(f"{name}: the last axis is empty (k = 0); expected at least one entry")
    if size is not None and values.shape[-1] != size:
        raise ValueError(f"{name}: expected last axis of length {size}, got shape {values.shape}")
    check_finite(values, name)
    if (values < 0).any():
        raise ValueError(f"{name}: entries must be >= 0 (found {float(values.min()):.6g})")
    sums = values.sum(axis=-1)
    if not (np.abs(sums - 1.0) <= SIMPLEX_TOL).all():
        raise ValueError(f"{name}: each row must sum to 1 over its last axis, got sums {np.unique(sums)[:4]}")
    return values


def _rewards_k(rewards_k, name: str = "rewards_k") -> np.ndarray:
    rewards_k = as_float_array(rewards_k, name, min_ndim=3)
    if rewards_k.shape[-3] == 0:
        raise ValueError(f"{name}: k = 0 objectives; expected shape (..., k, X, K) with k >= 1")
    if rewards_k.shape[-1] == 0:
        raise ValueError(f"{name}: K = 0 actions; expected shape (..., k, X, K) with K >= 1")
    check_finite(rewards_k, name)
    return rewards_k


def _ref(ref_logprobs) -> np.ndarray:
    ref_logprobs = as_float_array(ref_logprobs, "ref_logprobs", min_ndim=2)
    check_logprobs(ref_logprobs, "ref_logprobs")
    return kernels.renormalise(ref_logprobs)


def _policy(logprobs, name: str) -> np.ndarray:
    logprobs = as_float_array(logprobs, name, min_ndim=2)
    check_logprobs(logprobs, name)
    return kernels.renormalise(logprobs)


def _gibbs(rewards: np.ndarray, ref_logprobs: np.ndarray, eta: float) -> np.ndarray:
    check_broadcast(rewards.shape, ref_logprobs.shape, "rewards_k", "ref_logprobs")
    return kernels.gibbs(rewards, ref_logprobs, eta)


def _per_objective_probs(context_probs, n_contexts: int):
    """d0 shaped to weigh (..., k, X) per-objective values: (X,) stays, (..., X) gains a k axis."""
    probs = check_context_probs(context_probs, n_contexts)
    return probs if probs.ndim <= 1 else probs[..., None, :]


# ---------------------------------------------------------------------------------------------
# Vector rewards and the exact Pareto front
# ---------------------------------------------------------------------------------------------

def objective_rewards(features, thetas) -> np.ndarray:
    """r_i(x,a) = ⟨φ(x,a), θ_i*⟩ for every objective: features (..., X, K, d), thetas (..., k, d)
    → rewards_k (..., k, X, K) (leading axes broadcast)."""
    features = as_float_array(features, "features", min_ndim=3)
    thetas = as_float_array(thetas, "thetas", min_ndim=2)
    check_finite(features, "features")
    check_finite(thetas, "thetas")
    if thetas.shape[-2] == 0:
        raise ValueError(f"thetas: k = 0 objectives; expected shape (..., k, d) with k >= 1, got {thetas.shape}")
    if thetas.shape[-1] != features.shape[-1]:
        raise ValueError(f"thetas: expected last axis d = {features.shape[-1]}, got shape {thetas.shape}")
    check_broadcast(features.shape[:-3], thetas.shape[:-2], "features", "thetas")
    return np.einsum("...xad,...id->...ixa", features, thetas)


def _combine(rewards_k: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Σ_i w_i r_i: weights (..., k) × rewards (..., k, X, K) → (..., X, K), leading axes broadcast."""
    check_broadcast(weights.shape[:-1], rewards_k.shape[:-3], "weights", "rewards_k")
    return (weights[..., :, None, None] * rewards_k).sum(axis=-3)


def combined_policy(rewards_k, weights, ref_logprobs, eta) -> np.ndarray:
    """log O(Σ_i w_i r_i, η, π0), the unique maximiser of J_w(π) = Σ_i w_i J_i(π).

    Args:
        rewards_k: r_i, shape (..., k, X, K), finite.
        weights: w ∈ Δ_k, shape (..., k); a grid of G weight vectors is (G, k) (see the module's
            broadcast rule for seeds).
        ref_logprobs: log π0, broadcastable to (..., X, K), rows normalised.
        eta: η > 0.

    Returns:
        log-probabilities of shape (broadcast(weights[:-1], rewards_k[:-3]), X, K).
    """
    rewards_k = _rewards_k(rewards_k)
    weights = _simplex(weights, "weights", rewards_k.shape[-3])
    return _gibbs(_combine(rewards_k, weights), _ref(ref_logprobs), check_eta(eta))


def _objective_values(logprobs, rewards_k, ref_logprobs, eta, context_probs) -> np.ndarray:
    per_context = kernels.per_context_value(logprobs[..., None, :, :], rewards_k, ref_logprobs[..., None, :, :], eta)
    return kernels.weigh_contexts(per_context, _per_objective_probs(context_probs, rewards_k.shape[-2]))


def objective_values(logprobs, rewards_k, ref_logprobs, eta, context_probs=None) -> np.ndarray:
    """J_i(π) = Σ_x d0(x) [ E_π r_i(x,·) − η KL(π(·|x) ‖ π0(·|x)) ] for every objective i.

    Args:
        logprobs: log π, shape (..., X, K).
        rewards_k: r_i, shape (..., k, X, K).
        ref_logprobs: log π0, broadcastable to (..., X, K).
        eta: η > 0.
        context_probs: d0, (X,) or (..., X); uniform when None.

    Returns:
        shape (..., k); −inf where π leaves π0's support on a context of positive d0.
    """
    logprobs = _policy(logprobs, "logprobs")
    rewards_k = _rewards_k(rewards_k)
    ref_logprobs = _ref(ref_logprobs)
    check_broadcast(logprobs.shape[:-2], rewards_k.shape[:-3], "logprobs", "rewards_k")
    check_broadcast(logprobs.shape, ref_logprobs.shape, "logprobs", "ref_logprobs")
    check_broadcast(logprobs.shape[-2:], rewards_k.shape[-2:], "logprobs", "rewards_k")
    return _objective_values(logprobs, rewards_k, ref_logprobs, check_eta(eta), context_probs)


def pareto_front(rewards_k, ref_logprobs, eta, weights_grid, context_probs=None) -> pd.DataFrame:
    """The exact KL-regularised Pareto front, one tidy row per (weight vector, seed).

    Every scalarised optimum max_π Σ_i w_i J_i(π) is attained by π_w = O(Σ_i w_i r_i, η, π0)
    (Gibbs fact 2: J_w(O) − J_w(π) = η E_x KL(π‖O) ≥ 0), and its value is the closed form
    J_w(π_w) = Σ_x d0(x) η log Z_w(x) (fact 1). The front is {(J_1(π_w), …, J_k(π_w)) : w ∈ grid}.

    Args:
        rewards_k: r_i, shape (..., k, X, K) (leading axes = seeds).
        ref_logprobs: log π0, broadcastable to (..., X, K).
        eta: η > 0.
        weights_grid: G weight vectors on Δ_k, shape (G, k).
        context_probs: d0, (X,) or (..., X); uniform when None.

    Returns:
        a DataFrame with columns ``point`` (grid index), ``seed`` (flat index of the leading
        axes; 0 when unbatched), ``w_1..w_k``, ``J_1..J_k`` and ``J_w`` (= Σ_i w_i J_i, the
        scalarised optimum, from the log-partition closed form).
    """
    rewards_k = _rewards_k(rewards_k)
    k = rewards_k.shape[-3]
    grid = _simplex(weights_grid, "weights_grid", k, min_ndim=2)
    if grid.ndim != 2:
        raise ValueError(f"weights_grid: expected shape (G, k), got {grid.shape}")
    ref_logprobs, eta = _ref(ref_logprobs), check_eta(eta)
    batch = rewards_k.shape[:-3]
    w = grid.reshape((grid.shape[0],) + (1,) * len(batch) + (k,))
    combined = _combine(rewards_k, w)  # (G, ..., X, K)
    policies = _gibbs(combined, ref_logprobs, eta)
    values = _objective_values(policies, rewards_k, ref_logprobs, eta, context_probs)  # (G, ..., k)
    optimum = kernels.weigh_contexts(kernels.log_partition(combined, ref_logprobs, eta),
                                     check_context_probs(context_probs, rewards_k.shape[-2]))
    n_seeds = int(np.prod(values.shape[1:-1], dtype=int))
    values = values.reshape(grid.shape[0], n_seeds, k)
    optimum = optimum.reshape(grid.shape[0], n_seeds)
    frame = {"point": np.repeat(np.arange(grid.shape[0]), n_seeds), "seed": np.tile(np.arange(n_seeds), grid.shape[0])}
    for i in range(k):
        frame[f"w_{i + 1}"] = np.repeat(grid[:, i], n_seeds)
    for i in range(k):
        frame[f"J_{i + 1}"] = values[..., i].ravel()
    frame["J_w"] = optimum.ravel()
    return pd.DataFrame(frame)


# ---------------------------------------------------------------------------------------------
# Soups
# ---------------------------------------------------------------------------------------------

def _soup_inputs(logprobs_k, weights):
    logprobs_k = as_float_array(logprobs_k, "logprobs_k", min_ndim=3)
    if logprobs_k.shape[-3] == 0:
        raise ValueError("logprobs_k: k = 0 policies; expected shape (..., k, X, K) with k >= 1")
    check_logprobs(logprobs_k, "logprobs_k")
    weights = _simplex(weights, "weights", logprobs_k.shape[-3])
    check_broadcast(weights.shape[:-1], logprobs_k.shape[:-3], "weights", "logprobs_k")
    return kernels.renormalise(logprobs_k), weights[..., :, None, None]


def _normalise_rows(logits: np.ndarray, name: str) -> np.ndarray:
    if not np.isfinite(logits).any(axis=-1).all():
        raise ValueError(f"{name}: the soup has no mass on some context (the policies' supports are disjoint)")
    return kernels.normalize_logits(logits)


def geometric_soup(logprobs_k, weights) -> np.ndarray:
    """log normalise(Π_i π_i^{w_i}) = Σ_i w_i log π_i − logsumexp_a(Σ_i w_i log π_i).

    Args:
        logprobs_k: log π_i, shape (..., k, X, K), rows normalised (−inf = no mass).
        weights: w ∈ Δ_k, shape (..., k) (module broadcast rule).

    Returns:
        shape (..., X, K). A policy with w_i = 0 does not enter (0·(−inf) = 0); the soup has mass
        only where every π_i with w_i > 0 has. For π_i = O(r_i, η, π0) and Σ_i w_i = 1,
        Σ_i w_i log π_i = log π0 + (Σ_i w_i r_i)/η − Σ_i w_i log Z_i(x), and the last term is
        constant in a, so the soup is exactly O(Σ_i w_i r_i, η, π0) (DESIGN §6b).
    """
    logprobs_k, w = _soup_inputs(logprobs_k, weights)
    terms = np.where(w > 0, w * np.where(np.isfinite(logprobs_k), logprobs_k, 0.0), 0.0)
    terms = np.where((w > 0) & ~np.isfinite(logprobs_k), -np.inf, terms)
    return _normalise_rows(terms.sum(axis=-3), "logprobs_k")


def arithmetic_soup(logprobs_k, weights) -> np.ndarray:
    """log Σ_i w_i π_i = logsumexp_i(log w_i + log π_i): the mixture of the policies.

    Args and shapes as :func:`geometric_soup`. Unlike the geometric soup it is not the Gibbs
    policy of Σ_i w_i r_i unless the π_i coincide on the contexts, so its scalarised value J_w is
    strictly below the optimum there (by η E_x KL(mixture ‖ O(Σ w r)), Gibbs fact 2).
    """
    logprobs_k, w = _soup_inputs(logprobs_k, weights)
    with np.errstate(divide="ignore"):
        log_w = np.log(w)
    return kernels.renormalise(logsumexp(log_w + logprobs_k, axis=-3))


# ---------------------------------------------------------------------------------------------
# User-aware and shared policies
# ---------------------------------------------------------------------------------------------

def _gates(gates, rewards_k: np.ndarray) -> np.ndarray:
    k, n_contexts = rewards_k.shape[-3], rewards_k.shape[-2]
    gates = as_float_array(gates, "gates", min_ndim=3)
    if gates.shape[-2:] != (n_contexts, k):
        raise ValueError(f"gates: expected shape (..., V, X, k) = (..., V, {n_contexts}, {k}), got {gates.shape}")
    if gates.shape[-3] == 0:
        raise ValueError("gates: V = 0 user types; expected at least one")
    gates = _simplex(gates, "gates", k, min_ndim=3)
    check_broadcast(gates.shape[:-3], rewards_k.shape[:-3], "gates", "rewards_k")
    return gates


def _user_rewards(rewards_k: np.ndarray, gates: np.ndarray) -> np.ndarray:
    """r_ν(x,a) = Σ_i g(ν,x)_i r_i(x,a): (..., V, X, k) × (..., k, X, K) → (..., V, X, K)."""
    return np.einsum("...vxi,...ixa->...vxa", gates, rewards_k)


def user_policies(rewards_k, gates, ref_logprobs, eta) -> np.ndarray:
    """π(·|ν, x) = O(Σ_i g(ν,x)_i r_i(x,·), η, π0(·|x)) for every user type ν (a mixture of experts).

    Args:
        rewards_k: r_i, shape (..., k, X, K).
        gates: g(ν, x) ∈ Δ_k, shape (..., V, X, k).
        ref_logprobs: log π0, broadcastable to (..., X, K).
        eta: η > 0.

    Returns:
        log π(·|ν, x), shape (..., V, X, K): the optimum of each J_ν separately.
    """
    rewards_k = _rewards_k(rewards_k)
    gates = _gates(gates, rewards_k)
    ref_logprobs = _ref(ref_logprobs)
    return _gibbs(_user_rewards(rewards_k, gates), ref_logprobs[..., None, :, :], check_eta(eta))


def _user_probs(user_probs, n_users: int) -> np.ndarray:
    if user_probs is None:
        return np.full(n_users, 1.0 / n_users)
    return _simplex(user_probs, "user_probs", n_users)


def _shared(rewards_k, gates, user_probs, ref_logprobs, eta):
    rewards_k = _rewards_k(rewards_k)
    gates = _gates(gates, rewards_k)
    probs = _user_probs(user_probs, gates.shape[-3])
    ref_logprobs, eta = _ref(ref_logprobs), check_eta(eta)
    user_rewards = _user_rewards(rewards_k, gates)  # (..., V, X, K)
    check_broadcast(probs.shape[:-1], user_rewards.shape[:-3], "user_probs", "gates")
    mean_reward = (probs[..., :, None, None] * user_rewards).sum(axis=-3)
    return user_rewards, probs, ref_logprobs, eta, _gibbs(mean_reward, ref_logprobs, eta)


def shared_policy(rewards_k, gates, user_probs, ref_logprobs, eta) -> np.ndarray:
    """log O(r̄, η, π0) with r̄(x,a) = Σ_ν d_ν(ν) Σ_i g(ν,x)_i r_i(x,a): the best single policy.

    Claim: it is the unique maximiser of the d_ν-average objective E_ν J_ν(π), with
    J_ν(π) = Σ_x d0(x) [ Σ_a π(a|x) r_ν(x,a) − η KL(π(·|x)‖π0(·|x)) ] and ν ∼ d_ν independent of x.
    Proof: the reward term is linear in r_ν and the KL term does not depend on ν, so with
    Σ_ν d_ν = 1, E_ν J_ν(π) = Σ_x d0(x) [ Σ_a π(a|x) E_ν r_ν(x,a) − η KL(π‖π0) ] = J(π; r̄), whose
    unique maximiser is O(r̄, η, π0) (DESIGN §1, fact 2). ∎

    Args:
        rewards_k: r_i, shape (..., k, X, K).
        gates: g(ν, x) ∈ Δ_k, shape (..., V, X, k).
        user_probs: d_ν, shape (V,) or (..., V) on the simplex; uniform when None.
        ref_logprobs: log π0, broadcastable to (..., X, K).
        eta: η > 0.

    Returns:
        log π_shared, shape (..., X, K).
    """
    return _shared(rewards_k, gates, user_probs, ref_logprobs, eta)[-1]


@dataclass(frozen=True)
class SharingPrice:
    """The cost of serving every user type one shared policy.

    Attributes:
        per_user: J_ν(π_ν*) − J_ν(π_shared) ≥ 0, shape (..., V).
        worst: the worst-off user's regret, max over ν with d_ν > 0, shape (...,).
        average: E_ν [J_ν(π_ν*) − J_ν(π_shared)], shape (...,).
    """

    per_user: np.ndarray
    worst: np.ndarray
    average: np.ndarray


def price_of_sharing(rewards_k, gates, user_probs, ref_logprobs, eta, context_probs=None) -> SharingPrice:
    """Per user type ν: J_ν(π_ν*) − J_ν(π_shared) = η Σ_x d0(x) KL(π_shared(·|x) ‖ π_ν*(·|x)) ≥ 0.

    The equality is Gibbs fact 2 for the reward r_ν (π_ν* = O(r_ν, η, π0)); computing the KL
    form keeps the price exactly ≥ 0 and free of cancellation. It is 0 for every ν when all
    users share one gate. Arguments as :func:`shared_policy`, plus d0 (``context_probs``, (X,) or
    (..., X), uniform when None).
    """
    user_rewards, probs, ref_logprobs, eta, shared = _shared(rewards_k, gates, user_probs, ref_logprobs, eta)
    best = _gibbs(user_rewards, ref_logprobs[..., None, :, :], eta)  # (..., V, X, K)
    gap = eta * kernels.kl(shared[..., None, :, :], best)  # (..., V, X)
    per_user = kernels.weigh_contexts(gap, _per_objective_probs(context_probs, gap.shape[-1]))
    worst = np.where(probs > 0, per_user, -np.inf).max(axis=-1)
    average = (probs * per_user).sum(axis=-1)
    return SharingPrice(per_user=per_user, worst=worst, average=average)
