"""General (possibly intransitive) preference models and learning them: the mathematics (DESIGN §4).

A preference model is an array ``pref`` of shape (..., X, K, K) with

    pref[..., x, a, b] = P(a ≻ b | x),      P + Pᵀ = 1   (so the diagonal is ½),

batched over leading (seed) axes. It need not be transitive. Models:

- Bradley–Terry            P(a ≻ b) = σ(r(a) − r(b))
- linear general model     logit P(a ≻ b) = φ(x,a)ᵀ A φ(x,b) + ⟨θ, φ(x,a) − φ(x,b)⟩, A = −Aᵀ
                           (BT is A = 0; Ye, Xiong et al. 2024)
- rock–paper–scissors      a K-cycle: a beats a+1, …, a+⌊(K−1)/2⌋ (mod K) with probability ½ + ½·margin
- random antisymmetric     P = ½ + ½·tanh(M − Mᵀ), M Gaussian
- annotator mixture        P = Σ_j w_j σ(r_j(a) − r_j(b)) with r_j = φθ_j (the majority of
                           transitive annotators can be intransitive: Condorcet's paradox)

Quantities of a policy pair (shapes (..., X, K) → (...,)):

    payoff(P, π)[x, a] = P(a ≻ π | x) = Σ_b P[x,a,b] π(b|x)
    win_rate(π¹, π², P) = P(π¹ ≻ π²) = Σ_x d0(x) Σ_{a,b} π¹(a|x) P[x,a,b] π²(b|x)

Learning: the linear general model is logistic regression on the antisymmetric feature

    ψ(x, a, b) = [ φ_i(a)φ_j(b) − φ_j(a)φ_i(b) ]_{i<j} ⊕ (φ(a) − φ(b))   ∈ R^{d(d−1)/2 + d},

since φ(a)ᵀAφ(b) = Σ_{i<j} A_ij (φ_i(a)φ_j(b) − φ_j(a)φ_i(b)) for antisymmetric A; so the MLE of
(A, θ) is ``fit_bt`` on ψ (ψ(x,b,a) = −ψ(x,a,b), so swapping the pair flips the label exactly).

This module holds the validated public functions, their unchecked kernels (``payoff``,
``linear_general_unchecked``, ``win_rate_unchecked``: for arrays already validated, as in
:mod:`rlbandit.nash`), comparison sampling and :class:`PreferenceProblem`. The named scenarios
(:class:`~rlbandit.general_preferences.PreferenceConfig`, ``make_preference_problem(s)``) live in
:mod:`rlbandit.general_preferences`, which re-exports everything here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from rlbandit._checks import (
    check_instance,
    as_float_array,
    check_context_probs,
    check_finite,
    check_int,
    check_logprobs,
    integer,
    real_array,
    real_number,
)
from rlbandit.preferences import PreferenceData, sample_actions, sample_categorical
from rlbandit.reward import fit_bt

__all__ = [
    "ANTISYMMETRY_TOL",
    "check_preference",
    "bradley_terry",
    "linear_general",
    "linear_general_unchecked",
    "rock_paper_scissors",
    "random_antisymmetric",
    "annotator_mixture",
    "antisymmetric_features",
    "pair_features",
    "unpack_weights",
    "fit_general",
    "fit_general_preference",
    "sample_comparisons",
    "win_rate",
    "win_rate_unchecked",
    "payoff",
    "is_transitive",
    "condorcet_winner",
    "PreferenceProblem",
]

#: Tolerance on |P + Pᵀ − 1| for a preference array to be accepted.
ANTISYMMETRY_TOL = 1e-8


# ---------------------------------------------------------------------------------------------
# Validation and basic quantities
# ---------------------------------------------------------------------------------------------

def check_preference(pref, name: str = "pref") -> np.ndarray:
    """Validate a preference array (..., X, K, K): finite, in [0, 1], P + Pᵀ = 1. Returns it as float64."""
    pref = as_float_array(pref, name, min_ndim=3)
    if pref.shape[-1] != pref.shape[-2] or pref.shape[-1] < 1:
        raise ValueError(f"{name}: expected shape (..., X, K, K) with square last axes, got {pref.shape}")
    check_finite(pref, name)
    if (pref < 0.0).any() or (pref > 1.0).any():
        raise ValueError(f"{name}: preference probabilities must lie in [0, 1]")
    defect = np.abs(pref + np.swapaxes(pref, -1, -2) - 1.0)
    if (defect > ANTISYMMETRY_TOL).any():
        raise ValueError(f"{name}: must satisfy P + Pᵀ = 1 (P(a ≻ b) + P(b ≻ a) = 1); "
                         f"largest violation {defect.max():.3g}")
    return pref


def _symmetrize(pref: np.ndarray) -> np.ndarray:
    """Remove round-off so that P + Pᵀ = 1 holds to the last bit: P ← (P + 1 − Pᵀ)/2."""
    return 0.5 * (pref + 1.0 - np.swapaxes(pref, -1, -2))


def payoff(pref: np.ndarray, logprobs: np.ndarray) -> np.ndarray:
    """P(a ≻ π | x) = Σ_b P[x,a,b] π(b|x), shape (..., X, K). Unchecked kernel."""
    return np.einsum("...ab,...b->...a", pref, np.exp(logprobs))


def win_rate(logprobs1, logprobs2, pref, context_probs=None) -> np.ndarray:
    """P(π¹ ≻ π²) = Σ_x d0(x) Σ_{a,b} π¹(a|x) P[x,a,b] π²(b|x).

    Args:
        logprobs1, logprobs2: log π¹, log π², shapes broadcastable to (..., X, K).
        pref: P, shape (..., X, K, K).
        context_probs: d0, (X,) or (..., X); uniform when None.

    Returns:
        shape (...,); P(π¹ ≻ π²) + P(π² ≻ π¹) = 1 and P(π ≻ π) = ½.
    """
    pref = check_preference(pref)
    lp1 = as_float_array(logprobs1, "logprobs1", min_ndim=2)
    lp2 = as_float_array(logprobs2, "logprobs2", min_ndim=2)
    check_logprobs(lp1, "logprobs1")
    check_logprobs(lp2, "logprobs2")
    return win_rate_unchecked(lp1, lp2, pref, context_probs)


def win_rate_unchecked(lp1, lp2, pref, context_probs=None) -> np.ndarray:
    """:func:`win_rate` without validation, for log-probs and P already checked. Unchecked kernel."""
    per_context = np.einsum("...a,...a->...", np.exp(lp1), payoff(pref, lp2))
    probs = check_context_probs(context_probs, per_context.shape[-1])
    return np.einsum("...x,...x->...", per_context, np.broadcast_to(probs, per_context.shape))


def is_transitive(pref) -> np.ndarray:
    """Whether the strict majority relation a ≻ b ⇔ P(a ≻ b) > ½ has no 3-cycle, per context (..., X)."""
    pref = check_preference(pref)
    beats = pref > 0.5
    cycles = np.einsum("...ab,...bc,...ca->...", beats.astype(np.int64), beats.astype(np.int64), beats.astype(np.int64))
    return cycles == 0


def condorcet_winner(pref) -> np.ndarray:
    """Index of the action that beats every other with P > ½, per context (..., X); −1 when none."""
    pref = check_preference(pref)
    k = pref.shape[-1]
    wins = ((pref > 0.5) | np.eye(k, dtype=bool)).all(axis=-1)
    return np.where(wins.any(axis=-1), wins.argmax(axis=-1), -1)


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

def bradley_terry(rewards) -> np.ndarray:
    """P[x,a,b] = σ(r(x,a) − r(x,b)) for rewards (..., X, K) → (..., X, K, K)."""
    rewards = real_array(rewards, "rewards", min_ndim=2)
    return _symmetrize(expit(rewards[..., :, None] - rewards[..., None, :]))


def _check_skew(skew, dim: int) -> np.ndarray:
    skew = as_float_array(skew, "skew", min_ndim=2)
    if skew.shape[-2:] != (dim, dim):
        raise ValueError(f"skew: expected shape (..., {dim}, {dim}), got {skew.shape}")
    check_finite(skew, "skew")
    if not np.allclose(skew, -np.swapaxes(skew, -1, -2), atol=1e-10):
        raise ValueError("skew: the matrix A must be antisymmetric (A = −Aᵀ)")
    return skew


def linear_general(features, skew, theta) -> np.ndarray:
    """The linear general preference model (Ye, Xiong et al. 2024).

        P[x,a,b] = σ( φ(x,a)ᵀ A φ(x,b) + ⟨θ, φ(x,a) − φ(x,b)⟩ ),   A = −Aᵀ

    Args:
        features: φ, shape (..., X, K, d).
        skew: A, shape (..., d, d), antisymmetric.
        theta: θ, shape (..., d).

    Returns:
        P, shape (..., X, K, K).
    """
    features = real_array(features, "features", min_ndim=3)
    dim = features.shape[-1]
    skew = _check_skew(skew, dim)
    theta = as_float_array(theta, "theta", min_ndim=1)
    if theta.shape[-1] != dim:
        raise ValueError(f"theta: expected last axis d = {dim}, got shape {theta.shape}")
    check_finite(theta, "theta")
    return linear_general_unchecked(features, skew, theta)


def linear_general_unchecked(features, skew, theta) -> np.ndarray:
    """:func:`linear_general` without validation (φ (..., X, K, d), A (..., d, d) antisymmetric,
    θ (..., d) → P (..., X, K, K)). Unchecked kernel."""
    bilinear = np.matmul(np.matmul(features, skew[..., None, :, :]), np.swapaxes(features, -1, -2))
    rewards = (features * theta[..., None, None, :]).sum(axis=-1)
    logits = bilinear + rewards[..., :, None] - rewards[..., None, :]
    return _symmetrize(expit(logits))


def rock_paper_scissors(n_contexts: int, n_actions: int = 3, margin: float = 1.0) -> np.ndarray:
    """The K-cycle: a beats a+1, …, a+⌊(K−1)/2⌋ (mod K) with probability ½ + ½·margin.

    For K = 3 this is rock–paper–scissors. Every row of P − ½ sums to zero (a circulant
    antisymmetric matrix), so with uniform π0 the uniform policy is the equilibrium for every η.

    Returns:
        P, shape (X, K, K).
    """
    check_int(n_contexts, "n_contexts")
    if not isinstance(n_actions, (int, np.integer)) or n_actions < 3:
        raise ValueError(f"n_actions: a cycle needs at least 3 actions, got {n_actions!r}")
    margin = real_number(margin, "margin")
    if not (0.0 < margin <= 1.0):
        raise ValueError(f"margin: must lie in (0, 1], got {margin}")
    a = np.arange(n_actions)
    gap = (a[None, :] - a[:, None]) % n_actions  # b − a mod K
    sign = np.where((gap >= 1) & (2 * gap < n_actions), 1.0, np.where(2 * gap > n_actions, -1.0, 0.0))
    return np.broadcast_to(0.5 + 0.5 * margin * sign, (n_contexts, n_actions, n_actions)).copy()


def random_antisymmetric(shape, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """P = ½ + ½·tanh(M − Mᵀ) with M ~ N(0, scale²) i.i.d.; ``shape`` = (..., X, K) → (..., X, K, K)."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    if isinstance(shape, (str, bytes)) or not isinstance(shape, (tuple, list)):
        raise ValueError(f"shape: expected a tuple (..., X, K) of positive sizes, got {shape!r}")
    shape = tuple(integer(s, "shape") for s in shape)
    if len(shape) < 2:
        raise ValueError(f"shape: expected (..., X, K) with positive sizes, got {shape}")
    scale = real_number(scale, "scale", minimum=0.0)
    m = scale * rng.standard_normal(shape + (shape[-1],))
    return _symmetrize(0.5 + 0.5 * np.tanh(m - np.swapaxes(m, -1, -2)))


def annotator_mixture(features, thetas, weights=None) -> np.ndarray:
    """P[x,a,b] = Σ_j w_j σ(⟨θ_j, φ(x,a) − φ(x,b)⟩): annotators with different BT rewards.

    Args:
        features: φ, shape (..., X, K, d).
        thetas: θ_j, shape (..., J, d).
        weights: w_j ≥ 0 summing to one, shape (J,) or (..., J); uniform when None.
    """
    features = real_array(features, "features", min_ndim=3)
    thetas = real_array(thetas, "thetas", min_ndim=2)
    if thetas.shape[-1] != features.shape[-1]:
        raise ValueError(f"thetas: expected last axis d = {features.shape[-1]}, got shape {thetas.shape}")
    n_annotators = thetas.shape[-2]
    weights = check_context_probs(weights, n_annotators, "weights")
    rewards = np.einsum("...xkd,...jd->...jxk", features, thetas)  # (..., J, X, K)
    per_annotator = expit(rewards[..., :, None] - rewards[..., None, :])  # (..., J, X, K, K)
    return _symmetrize(np.einsum("...j,...jxab->...xab", weights, per_annotator))


# ---------------------------------------------------------------------------------------------
# Antisymmetric features and the MLE of the linear general model
# ---------------------------------------------------------------------------------------------

def _pair_psi(phi_a: np.ndarray, phi_b: np.ndarray) -> np.ndarray:
    dim = phi_a.shape[-1]
    i, j = np.triu_indices(dim, k=1)
    cross = phi_a[..., i] * phi_b[..., j] - phi_a[..., j] * phi_b[..., i]
    return np.concatenate([cross, phi_a - phi_b], axis=-1)


def antisymmetric_features(features) -> np.ndarray:
    """ψ(x,a,b) for every pair, shape (..., X, K, K, d(d−1)/2 + d); ψ(x,b,a) = −ψ(x,a,b).

    ⟨w, ψ(x,a,b)⟩ = φ(a)ᵀAφ(b) + ⟨θ, φ(a) − φ(b)⟩ with w = (A_ij for i<j) ⊕ θ.
    """
    features = real_array(features, "features", min_ndim=3)
    return _pair_psi(features[..., :, None, :], features[..., None, :, :])


def pair_features(features, data: PreferenceData) -> np.ndarray:
    """ψ(x_i, a¹_i, a²_i) for each comparison, shape (..., n, d(d−1)/2 + d)."""
    features = real_array(features, "features", min_ndim=3)
    _check_data(data)
    if features.ndim > 3 and features.shape[:-3] != data.batch_shape:
        raise ValueError(f"features: batch axes {features.shape[:-3]} differ from the data's {data.batch_shape}")
    phi_a = _gather_phi(features, data.contexts, data.actions1)
    phi_b = _gather_phi(features, data.contexts, data.actions2)
    return _pair_psi(phi_a, phi_b)


def _check_data(data) -> None:
    check_instance(data, PreferenceData, "data")


def _gather_phi(features: np.ndarray, contexts: np.ndarray, actions: np.ndarray) -> np.ndarray:
    batch = contexts.shape[:-1]
    if features.ndim == 3:
        return features[contexts, actions]
    flat = features.reshape((-1,) + features.shape[-3:])
    rows = np.arange(flat.shape[0])[:, None]
    out = flat[rows, contexts.reshape(flat.shape[0], -1), actions.reshape(flat.shape[0], -1)]
    return out.reshape(batch + (contexts.shape[-1], features.shape[-1]))


def unpack_weights(weights, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Split w = (A_ij, i<j) ⊕ θ into (A (..., d, d) antisymmetric, θ (..., d))."""
    weights = real_array(weights, "weights", min_ndim=1)
    dim = integer(dim, "dim")
    n_cross = dim * (dim - 1) // 2
    if weights.shape[-1] != n_cross + dim:
        raise ValueError(f"weights: expected last axis d(d−1)/2 + d = {n_cross + dim}, got {weights.shape}")
    i, j = np.triu_indices(dim, k=1)
    skew = np.zeros(weights.shape[:-1] + (dim, dim))
    skew[..., i, j] = weights[..., :n_cross]
    skew[..., j, i] = -weights[..., :n_cross]
    return skew, weights[..., n_cross:].copy()


def fit_general(psi, labels, reg, weights=None) -> np.ndarray:
    """MLE of the linear general model on antisymmetric features: ``fit_bt`` on ψ.

    Args:
        psi: ψ(x_i, a¹_i, a²_i), shape (..., n, D) (see :func:`pair_features`).
        labels: y_i ∈ {0, 1}, shape (..., n).
        reg: ridge λ ≥ 0.
    Returns:
        w, shape (..., D); use :func:`unpack_weights` for (A, θ).
    """
    psi = real_array(psi, "psi", min_ndim=2)
    if np.shape(labels) != psi.shape[:-1]:
        raise ValueError(f"psi: expected shape {np.shape(labels)} + (D,) to match labels, got {psi.shape}")
    return fit_bt(psi, labels, reg, weights=weights)


def fit_general_preference(features, data: PreferenceData, reg: float) -> tuple[np.ndarray, np.ndarray]:
    """(Â, θ̂) of the linear general model from comparisons; shapes (..., d, d) and (..., d)."""
    features = real_array(features, "features", min_ndim=3)
    _check_data(data)
    w = fit_general(pair_features(features, data), data.labels, reg)
    return unpack_weights(w, features.shape[-1])


# ---------------------------------------------------------------------------------------------
# Sampling comparisons from any model
# ---------------------------------------------------------------------------------------------

def sample_comparisons(pref, logprobs1, logprobs2, m: int, rng: np.random.Generator, *,
                       context_probs=None, source: int = 0) -> PreferenceData:
    """m comparisons per batch element: x ∼ d0, a¹ ∼ π¹(·|x), a² ∼ π²(·|x), y ∼ Bernoulli(P[x,a¹,a²]).

    Args:
        pref: P, shape (..., X, K, K).
        logprobs1, logprobs2: behaviour policies, broadcastable to (..., X, K).
        m: comparisons per batch element, ≥ 1.
        rng: the only source of randomness.
        context_probs: d0, (X,) or (..., X); uniform when None.
    """
    pref = check_preference(pref)
    if not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"m: the number of comparisons must be a positive integer, got {m!r}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    shape = pref.shape[:-1]
    lp1 = as_float_array(logprobs1, "logprobs1", min_ndim=2)
    lp2 = as_float_array(logprobs2, "logprobs2", min_ndim=2)
    check_logprobs(lp1, "logprobs1")
    check_logprobs(lp2, "logprobs2")
    try:
        lp1, lp2 = np.broadcast_to(lp1, shape), np.broadcast_to(lp2, shape)
    except ValueError:
        raise ValueError(f"logprobs1/logprobs2: shapes {lp1.shape}, {lp2.shape} do not broadcast to {shape}") from None
    batch, n_contexts = shape[:-2], shape[-2]
    probs = np.broadcast_to(check_context_probs(context_probs, n_contexts), batch + (n_contexts,))
    with np.errstate(divide="ignore"):
        contexts = sample_categorical(np.log(probs), m, rng)
    actions1 = sample_actions(lp1, contexts, rng)
    actions2 = sample_actions(lp2, contexts, rng)
    flat = pref.reshape((-1,) + pref.shape[-3:])
    rows = np.arange(flat.shape[0])[:, None]
    p = flat[rows, contexts.reshape(flat.shape[0], -1), actions1.reshape(flat.shape[0], -1),
             actions2.reshape(flat.shape[0], -1)].reshape(contexts.shape)
    labels = (rng.random(p.shape) < p).astype(np.int8)
    return PreferenceData(contexts, actions1, actions2, labels,
                          np.full(contexts.shape, source, dtype=np.int64), ((lp1, lp2),))


# ---------------------------------------------------------------------------------------------
# Problems
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class PreferenceProblem:
    """A contextual bandit with a general preference model instead of a reward.

    Args:
        features: φ, shape (..., X, K, d) (used for learning; ‖φ‖ ≤ 1 is not required).
        ref_logprobs: log π0, shape (..., X, K).
        pref: the true P, shape (..., X, K, K).
        context_probs: d0, (X,) or (..., X); uniform when None.
        skew, theta: the true (A, θ) when P is the linear general model (else None), for reference.
    """

    features: np.ndarray
    ref_logprobs: np.ndarray
    pref: np.ndarray
    context_probs: np.ndarray | None = None
    skew: np.ndarray | None = None
    theta: np.ndarray | None = None

    def __post_init__(self):
        features = as_float_array(self.features, "features", min_ndim=3)
        check_finite(features, "features")
        pref = check_preference(self.pref)
        ref = as_float_array(self.ref_logprobs, "ref_logprobs", min_ndim=2)
        check_logprobs(ref, "ref_logprobs")
        if pref.shape[:-1] != ref.shape:
            raise ValueError(f"pref: shape {pref.shape} does not match ref_logprobs {ref.shape} + (K,)")
        if features.shape[:-1] != ref.shape:
            raise ValueError(f"features: shape {features.shape} does not match ref_logprobs {ref.shape} + (d,)")
        probs = check_context_probs(self.context_probs, ref.shape[-2])
        for name, value in (("features", features), ("pref", pref), ("ref_logprobs", ref), ("context_probs", probs)):
            value = np.array(value, copy=True)
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.ref_logprobs.shape[:-2]

    @property
    def n_contexts(self) -> int:
        return self.ref_logprobs.shape[-2]

    @property
    def n_actions(self) -> int:
        return self.ref_logprobs.shape[-1]

    @property
    def dim(self) -> int:
        return self.features.shape[-1]

    def win_rate(self, logprobs1, logprobs2) -> np.ndarray:
        """P(π¹ ≻ π²) under the true P, weighted by d0."""
        return win_rate(logprobs1, logprobs2, self.pref, self.context_probs)

    def sample_comparisons(self, logprobs1, logprobs2, m: int, rng: np.random.Generator, *, source: int = 0) -> PreferenceData:
        return sample_comparisons(self.pref, logprobs1, logprobs2, m, rng, context_probs=self.context_probs, source=source)
