"""Σ-geometry of linear preference models (DESIGN §2–3): the one home of every Σ⁻¹-norm.

Bradley–Terry data D = {(x, a¹, a²)} with z = φ(x,a¹) − φ(x,a²) defines

    Σ_D = λI + s Σ_i z_i z_iᵀ            (s = 1 offline, s = 1/m for the online batch form)
    ‖v‖_{Σ⁻¹} = sqrt(vᵀ Σ⁻¹ v) = ‖L⁻¹v‖₂    with Σ = LLᵀ (lower Cholesky factor L)
    φ(x,π) = Σ_a π(a|x) φ(x,a)              (a policy's mean feature per context)
    E_x v(x) = Σ_x d0(x) v(x)               (context weighting)

Every algorithm measures uncertainty through these functions: the pessimistic penalty
‖φ(x,a) − ν(x)‖_{Σ⁻¹} (offline), the exploration bonus ‖φ(x,a) − φ(x,π¹)‖_{Σ⁻¹} (online,
also on language-model embeddings), the Nash ψ-uncertainty, coverage coefficients.

The kernels (:func:`whiten`, :func:`inverse_norm`, :func:`policy_features`,
:func:`context_average`) take validated arrays; :func:`covariance`, :func:`cholesky`,
:func:`mahalanobis_norm`, :func:`gap_norms`, :func:`policy_gap_norms` and :func:`ucb_bonus`
validate at the boundary. Batch convention: a factor of shape (*B, d, d) pairs with vectors of
shape (*B, *N, d) — the factor's batch axes lead.
"""

from __future__ import annotations

import numpy as np

from rlbandit._checks import as_float_array, check_finite, check_logprobs, check_positive_float, real_array

__all__ = [
    "cholesky",
    "context_average",
    "covariance",
    "gap_norms",
    "inverse_norm",
    "mahalanobis_norm",
    "policy_features",
    "policy_gap_norms",
    "ucb_bonus",
    "whiten",
]

#: Relative asymmetry |Σ − Σᵀ| / max|Σ| above which a covariance is rejected (Cholesky reads only
#: one triangle, so a non-symmetric Σ would silently give the norm of a different matrix).
SYMMETRY_TOL = 1e-10


# ---------------------------------------------------------------------------------------------
# Unchecked kernels (validated arrays in: the hot paths of optimistic search, LCB and the online
# radii call them on arrays validated once at their boundary)
# ---------------------------------------------------------------------------------------------

def whiten(vectors: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """L⁻¹v for every vector, so that ‖L⁻¹v‖₂ = ‖v‖_{Σ⁻¹}. Unchecked kernel.

    Args:
        vectors: v, shape (*B, *N, d).
        factor: lower Cholesky factors L of Σ = LLᵀ, shape (*B, d, d).

    Returns:
        shape of ``vectors``. One batched solve for L⁻¹ (d × d per factor) and one matmul over all
        vectors: no per-batch BLAS calls, which are slow when BLAS threads compete.
    """
    batch, d = factor.shape[:-2], factor.shape[-1]
    inverse = np.linalg.solve(factor, np.broadcast_to(np.eye(d), factor.shape))
    flat = np.reshape(vectors, batch + (-1, d))
    return np.matmul(flat, np.swapaxes(inverse, -1, -2)).reshape(np.shape(vectors))


def inverse_norm(vectors: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """‖v‖_{Σ⁻¹} = ‖L⁻¹v‖₂, shape (*B, *N) for vectors (*B, *N, d) and factor (*B, d, d). Unchecked kernel."""
    white = whiten(vectors, factor)
    return np.sqrt(np.einsum("...d,...d->...", white, white))


def policy_features(logprobs: np.ndarray, features: np.ndarray) -> np.ndarray:
    """φ(x,π) = Σ_a π(a|x) φ(x,a): log π (..., K) on φ (..., K, d) → (..., d). Unchecked kernel."""
    return np.einsum("...k,...kd->...d", np.exp(logprobs), features)


def context_average(vectors: np.ndarray, context_probs: np.ndarray) -> np.ndarray:
    """E_x v(x) = Σ_x d0(x) v(x): v (..., X, d) and d0 broadcastable to (..., X) → (..., d). Unchecked kernel."""
    probs = np.broadcast_to(context_probs, np.shape(vectors)[:-1])
    return np.einsum("...x,...xd->...d", probs, vectors)


# ---------------------------------------------------------------------------------------------
# Validated functions
# ---------------------------------------------------------------------------------------------

def covariance(diffs, reg, scale: float = 1.0) -> np.ndarray:
    """Σ_D = λI + s Σ_i z_i z_iᵀ, shape (..., d, d) for ``diffs`` of shape (..., n, d).

    ``scale`` s = 1 offline; s = 1/m for the online batch form. λ > 0 keeps Σ_D invertible.
    """
    diffs = real_array(diffs, "diffs", min_ndim=2, nonempty=False)  # n = 0 comparisons: Σ = λI
    if diffs.shape[-1] == 0:
        raise ValueError(f"diffs: the feature dimension d must be >= 1, got shape {diffs.shape}")
    reg = float(check_positive_float(reg, "reg", allow_zero=True))
    scale = float(check_positive_float(scale, "scale", allow_zero=True))
    d = diffs.shape[-1]
    cov = reg * np.eye(d) + scale * np.matmul(np.swapaxes(diffs, -1, -2), diffs)
    if not np.isfinite(cov).all():
        raise ValueError("diffs: Σ_D overflows float64 (feature differences too large for their square to be summed)")
    return cov


def cholesky(cov) -> np.ndarray:
    """Lower Cholesky factor L of Σ = LLᵀ, shape (..., d, d).

    ValueError if Σ is not square, not finite, not symmetric (to :data:`SYMMETRY_TOL`, relative),
    or not positive definite.
    """
    cov = as_float_array(cov, "cov", min_ndim=2)
    if cov.shape[-1] != cov.shape[-2]:
        raise ValueError(f"cov: expected square matrices (..., d, d), got {cov.shape}")
    check_finite(cov, "cov")
    scale = np.abs(cov).max(initial=0.0)
    if np.abs(cov - np.swapaxes(cov, -1, -2)).max(initial=0.0) > SYMMETRY_TOL * max(scale, 1e-300):
        raise ValueError("cov: the covariance is not symmetric (Σ must equal Σᵀ)")
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ValueError("cov: the covariance is not positive definite (use reg > 0)") from None


def _check_factor(factor) -> np.ndarray:
    lower = as_float_array(factor, "factor", min_ndim=2)
    if lower.shape[-1] != lower.shape[-2]:
        raise ValueError(f"factor: expected square lower-triangular matrices (..., d, d), got {lower.shape}")
    check_finite(lower, "factor")
    if np.triu(lower, 1).any():
        raise ValueError("factor: expected the LOWER Cholesky factor L of Σ = LLᵀ (entries above the diagonal)")
    if not (np.diagonal(lower, axis1=-2, axis2=-1) > 0).all():
        raise ValueError("factor: the diagonal of a Cholesky factor must be > 0")
    return lower


def _factor_of(cov, factor) -> np.ndarray:
    if (cov is None) == (factor is None):
        raise ValueError("cov: give exactly one of cov or factor")
    return cholesky(cov) if factor is None else _check_factor(factor)


def mahalanobis_norm(vectors, cov=None, *, factor=None) -> np.ndarray:
    """‖v‖_{Σ⁻¹} = sqrt(vᵀ Σ⁻¹ v) through one Cholesky factorisation (never an explicit Σ⁻¹).

    Args:
        vectors: v, shape (..., d) — any number of vectors per covariance; for a batch of
            covariances (B, d, d) the vectors are (B, ..., d).
        cov: Σ, shape (d, d) or (B, d, d), symmetric positive definite. Give ``cov`` or ``factor``.
        factor: the lower Cholesky factor of Σ (from :func:`cholesky`), to reuse it across calls.

    Returns:
        norms, shape (...,) = ``vectors.shape[:-1]``.
    """
    lower = _factor_of(cov, factor)
    vectors = as_float_array(vectors, "vectors", min_ndim=1)
    check_finite(vectors, "vectors")
    d = lower.shape[-1]
    if vectors.shape[-1] != d:
        raise ValueError(f"vectors: last axis must be d = {d}, got shape {vectors.shape}")
    batch = lower.shape[:-2]
    if vectors.shape[: len(batch)] != batch or vectors.ndim < len(batch) + 1:
        raise ValueError(f"vectors: leading axes {vectors.shape[:len(batch)]} must match the covariance batch {batch}")
    return inverse_norm(vectors, lower)


def _check_features(features, name: str = "features") -> np.ndarray:
    features = real_array(features, name, min_ndim=2)
    return features


def _check_anchor(anchor, features) -> np.ndarray:
    anchor = as_float_array(anchor, "anchor", min_ndim=1)
    if anchor.shape != features.shape[:-2] + features.shape[-1:]:
        raise ValueError(f"anchor: expected shape {features.shape[:-2] + features.shape[-1:]} (that of features "
                         f"{features.shape} without the action axis), got {anchor.shape}")
    check_finite(anchor, "anchor")
    return anchor


def _check_policy(logprobs, features) -> np.ndarray:
    logprobs = as_float_array(logprobs, "logprobs", min_ndim=1)
    check_logprobs(logprobs, "logprobs")
    if logprobs.shape != features.shape[:-1]:
        raise ValueError(f"logprobs: expected shape {features.shape[:-1]} (that of features {features.shape} "
                         f"without the feature axis), got {logprobs.shape}")
    return logprobs


def gap_norms(features, anchor, cov=None, *, factor=None) -> np.ndarray:
    """‖φ(x,a) − φ̄(x)‖_{Σ⁻¹} for every action: the elliptical uncertainty of a comparison against an anchor.

    Args:
        features: φ(x,a), shape (..., K, d) — e.g. (S, X, K, d) for a seed batch, or (X, K, d)
            with embedding features of K sampled responses per prompt.
        anchor: φ̄(x), e.g. φ(x,π) (:func:`policy_features`) or a reference ν(x), shape (..., d)
            matching ``features`` without the action axis.
        cov: Σ, shape (d, d) or (S, d, d) where S is the first axis of ``features``.
        factor: the lower Cholesky factor of Σ instead of ``cov``.

    Returns:
        shape (..., K): sqrt((φ − φ̄)ᵀ Σ⁻¹ (φ − φ̄)).
    """
    features = _check_features(features)
    anchor = _check_anchor(anchor, features)
    return mahalanobis_norm(features - anchor[..., None, :], cov, factor=factor)


def policy_gap_norms(logprobs, features, anchor, cov=None, *, factor=None) -> np.ndarray:
    """‖φ(x,π′) − φ̄(x)‖_{Σ⁻¹} per context, φ(x,π′) = Σ_a π′(a|x) φ(x,a).

    Args:
        logprobs: log π′, shape (..., K), rows normalised.
        features: φ, shape (..., K, d).
        anchor: φ̄(x), shape (..., d) (e.g. φ(x, π¹_t)).
        cov / factor: Σ or its Cholesky factor, as in :func:`gap_norms`.

    Returns:
        shape (...,).
    """
    features = _check_features(features)
    logprobs = _check_policy(logprobs, features)
    anchor = _check_anchor(anchor, features)
    return mahalanobis_norm(policy_features(logprobs, features) - anchor, cov, factor=factor)


def ucb_bonus(features, logprobs, beta, cov=None, *, factor=None) -> np.ndarray:
    """The UCB exploration bonus b(x,a) = β ‖φ(x,a) − φ(x,π)‖_{Σ⁻¹}, shape (..., K).

    Args:
        features: φ, shape (..., K, d).
        logprobs: log π (the anchor policy, π¹_t in the online loop), shape (..., K).
        beta: β ≥ 0, a scalar or an array broadcasting against (..., K) (one per seed: shape (S, 1, 1)).
        cov / factor: Σ or its Cholesky factor.
    """
    features = _check_features(features)
    logprobs = _check_policy(logprobs, features)
    beta = real_array(beta, "beta")
    if (beta < 0).any():
        raise ValueError("beta: the exploration coefficient must be >= 0")
    return beta * gap_norms(features, policy_features(logprobs, features), cov, factor=factor)
