"""Annotator mixtures in the exact world (DESIGN §6b): labels from Σ_j ρ_j BT(θ_j*), the exact
agreement between annotator types, and the θ a single BT model fitted to pooled labels converges to.

Shapes (leading axes are seeds and broadcast):

    features  (..., X, K, d)    φ(x, a)
    thetas    (..., J, d)       θ_j*, one per annotator type
    mixing    (J,) or (..., J)  ρ ∈ Δ_J, the share of each type
    p_j(x,a,b) = σ(⟨φ(x,a) − φ(x,b), θ_j*⟩),   p̄ = Σ_j ρ_j p_j

Served (lazily) by :mod:`rlbandit.multiobjective` as well.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from rlbandit import kernels
from rlbandit._checks import as_float_array, check_broadcast, check_context_probs, check_finite, check_logprobs
from rlbandit.multiobjective import objective_rewards
from rlbandit.preferences import sample_bt_labels, sample_categorical
from rlbandit.problem import gather_rewards
from rlbandit.reward import fit_bt

__all__ = ["annotator_labels", "agreement_matrix", "pooled_bt_limit"]


def _annotator_rewards(features, thetas) -> np.ndarray:
    """r_j(x,a) = ⟨φ(x,a), θ_j*⟩, shape (..., J, X, K) (the one home: :func:`objective_rewards`)."""
    thetas = as_float_array(thetas, "thetas", min_ndim=2)
    if thetas.shape[-2] == 0:
        raise ValueError(f"thetas: J = 0 annotator types; expected shape (..., J, d) with J >= 1, got {thetas.shape}")
    return objective_rewards(features, thetas)


def _mixing(mixing, n_types: int) -> np.ndarray:
    """ρ ∈ Δ_J (uniform when None); ValueError naming ``mixing`` otherwise."""
    if mixing is None:
        return np.full(n_types, 1.0 / n_types)
    mixing = as_float_array(mixing, "mixing", min_ndim=1)
    if mixing.shape[-1] != n_types:
        raise ValueError(f"mixing: expected shape (..., J) with J = {n_types} annotator types, got {mixing.shape}")
    check_finite(mixing, "mixing")
    if (mixing < 0).any():
        raise ValueError("mixing: shares must be >= 0")
    if not (np.abs(mixing.sum(axis=-1) - 1.0) <= 1e-8).all():
        raise ValueError(f"mixing: shares must sum to 1 over annotator types, got {mixing.sum(axis=-1)}")
    return mixing


def _policy(logprobs, name: str) -> np.ndarray:
    logprobs = as_float_array(logprobs, name, min_ndim=2)
    check_logprobs(logprobs, name)
    return kernels.renormalise(logprobs)


def annotator_labels(features, thetas, mixing, contexts, actions1, actions2, rng):
    """Labels from the annotator mixture Σ_j ρ_j BT(θ_j*): per comparison i draw the type
    j_i ∼ ρ, then y_i ∼ Bernoulli(σ(⟨φ(x_i,a¹_i) − φ(x_i,a²_i), θ_{j_i}*⟩)).

    Args:
        features: φ, shape (..., X, K, d).
        thetas: θ_j*, shape (..., J, d).
        mixing: ρ ∈ Δ_J, shape (J,) or (..., J).
        contexts, actions1, actions2: integer indices, shape (..., n) (the batch of the data).
        rng: a numpy Generator.

    Returns:
        (labels int8, types int), each of shape (..., n). Marginally P(y_i = 1) = Σ_j ρ_j σ(⟨z_i, θ_j⟩).
    """
    rewards = _annotator_rewards(features, thetas)
    n_types = rewards.shape[-3]
    mixing = _mixing(mixing, n_types)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    contexts, actions1, actions2 = (np.asarray(a) for a in (contexts, actions1, actions2))
    for name, index, size in (("contexts", contexts, rewards.shape[-2]), ("actions1", actions1, rewards.shape[-1]),
                              ("actions2", actions2, rewards.shape[-1])):
        if index.shape != contexts.shape or index.ndim < 1:
            raise ValueError(f"{name}: expected shape (..., n) = {contexts.shape}, got {index.shape}")
        if index.size and (not np.issubdtype(index.dtype, np.integer) or index.min() < 0 or index.max() >= size):
            raise ValueError(f"{name}: expected integer indices in [0, {size})")
    batch = contexts.shape[:-1]
    try:
        rewards = np.broadcast_to(rewards, batch + rewards.shape[-3:])
        mixing = np.broadcast_to(mixing, batch + (n_types,))
    except ValueError:
        raise ValueError(f"contexts: batch axes {batch} do not match features/thetas/mixing") from None
    with np.errstate(divide="ignore"):
        types = sample_categorical(np.log(mixing), contexts.shape[-1], rng)  # (..., n)
    diffs = np.stack([gather_rewards(np.ascontiguousarray(rewards[..., j, :, :]), contexts, actions1)
                      - gather_rewards(np.ascontiguousarray(rewards[..., j, :, :]), contexts, actions2)
                      for j in range(n_types)], axis=-1)  # (..., n, J)
    diff = np.take_along_axis(diffs, types[..., None], axis=-1)[..., 0]
    return sample_bt_labels(diff, rng), types


def _pair_inputs(features, thetas, logprobs1, logprobs2, context_probs):
    """Per-annotator win probabilities p_j(x,a,b) = σ(r_j(x,a) − r_j(x,b)), (..., J, X, K, K), and
    the pair distribution q(x,a,b) = d0(x) π¹(a|x) π²(b|x), (..., X, K, K)."""
    rewards = _annotator_rewards(features, thetas)
    logprobs1, logprobs2 = _policy(logprobs1, "logprobs1"), _policy(logprobs2, "logprobs2")
    for name, lp in (("logprobs1", logprobs1), ("logprobs2", logprobs2)):
        check_broadcast(lp.shape[:-2], rewards.shape[:-3], name, "features")
        if lp.shape[-2:] != rewards.shape[-2:]:
            raise ValueError(f"{name}: expected shape (..., X, K) = (..., {rewards.shape[-2]}, {rewards.shape[-1]}), "
                             f"got {lp.shape}")
    probs = check_context_probs(context_probs, rewards.shape[-2])
    wins = expit(rewards[..., :, None] - rewards[..., None, :])
    pairs = probs[..., :, None, None] * np.exp(logprobs1[..., :, None] + logprobs2[..., None, :])
    return wins, pairs


def agreement_matrix(features, thetas, logprobs1, logprobs2, context_probs=None) -> np.ndarray:
    """A[j, j′] = P(y_j = y_j′) on pairs (x, a, b) ∼ d0 × π¹ × π², labels independent given the pair:

        A[j, j′] = Σ_x d0(x) Σ_{a,b} π¹(a|x) π²(b|x) [ p_j p_j′ + (1 − p_j)(1 − p_j′) ],
        p_j = σ(⟨φ(x,a) − φ(x,b), θ_j*⟩).

    Args:
        features (..., X, K, d); thetas (..., J, d); logprobs1, logprobs2 (..., X, K);
        context_probs (X,) or (..., X), uniform when None.

    Returns:
        shape (..., J, J), symmetric, entries in [0, 1]. The diagonal is the self-agreement of
        two independent labels of one type (p² + (1 − p)², not 1).
    """
    wins, pairs = _pair_inputs(features, thetas, logprobs1, logprobs2, context_probs)
    both = np.einsum("...xab,...jxab,...lxab->...jl", pairs, wins, wins)
    neither = np.einsum("...xab,...jxab,...lxab->...jl", pairs, 1.0 - wins, 1.0 - wins)
    return both + neither


def pooled_bt_limit(features, thetas, mixing, logprobs1, logprobs2, context_probs=None, reg: float = 0.0) -> np.ndarray:
    """The θ a single Bradley–Terry model fitted to pooled mixture labels converges to:

        θ_∞ = argmin_θ E_{(x,a,b) ∼ d0×π¹×π²} [ −p̄ log σ(⟨z,θ⟩) − (1 − p̄) log σ(−⟨z,θ⟩) ] + (λ/2)‖θ‖²,
        z = φ(x,a) − φ(x,b),   p̄ = Σ_j ρ_j σ(⟨z, θ_j*⟩),

    the cross-entropy projection of the mixture onto BT models — not Σ_j ρ_j θ_j* in general (σ is
    not linear). Solved exactly by :func:`rlbandit.reward.fit_bt` (damped Newton) on the enumerated
    population: every pair enters twice, with label 1 and weight q p̄ and with label 0 and weight
    q (1 − p̄), q = d0(x) π¹(a|x) π²(b|x).

    Args:
        features (..., X, K, d); thetas (..., J, d); mixing ρ ∈ Δ_J, (J,) or (..., J);
        logprobs1, logprobs2 (..., X, K); context_probs (X,) or (..., X), uniform when None.
        reg: λ ≥ 0 per comparison (the limit of fit_bt on n samples with ridge n·λ); λ = 0 needs
            the compared directions z to span R^d.

    Returns:
        θ_∞, shape (..., d).
    """
    wins, pairs = _pair_inputs(features, thetas, logprobs1, logprobs2, context_probs)
    mixing = _mixing(mixing, wins.shape[-4])
    check_broadcast(mixing.shape[:-1], wins.shape[:-4], "mixing", "thetas")
    features = as_float_array(features, "features", min_ndim=3)
    p_bar = np.einsum("...j,...jxab->...xab", mixing, wins)
    batch = np.broadcast_shapes(p_bar.shape[:-3], pairs.shape[:-3], features.shape[:-3])
    diffs = features[..., :, :, None, :] - features[..., :, None, :, :]  # (..., X, K, K, d)
    d = features.shape[-1]
    diffs = np.broadcast_to(diffs, batch + diffs.shape[-4:]).reshape(batch + (-1, d))
    p_bar = np.broadcast_to(p_bar, batch + p_bar.shape[-3:]).reshape(batch + (-1,))
    q = np.broadcast_to(pairs, batch + pairs.shape[-3:]).reshape(batch + (-1,))
    n = q.shape[-1]
    labels = np.concatenate([np.ones(n), np.zeros(n)])
    labels = np.broadcast_to(labels, batch + (2 * n,))
    return fit_bt(np.concatenate([diffs, diffs], axis=-2), labels, reg,
                  weights=np.concatenate([q * p_bar, q * (1.0 - p_bar)], axis=-1))
