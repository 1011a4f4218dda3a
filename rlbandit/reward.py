"""Bradley–Terry reward learning: MLE, norm-constrained MLE, covariance and Σ⁻¹-norms (DESIGN §2).

With z_i = φ(x_i, a¹_i) − φ(x_i, a²_i) and y_i = 1 when a¹ wins,

    θ̂ = argmin_θ Σ_i [ log(1 + exp(z_iθ)) − y_i z_iθ ] + (λ/2)‖θ‖²        (optionally ‖θ‖ ≤ B)
    Σ_D = λI + s Σ_i z_i z_iᵀ

which is logistic regression without intercept (scikit-learn's ``C = 1/λ``). Everything is
batched over leading axes: ``diffs`` (..., n, d), ``labels`` (..., n) → θ̂ (..., d).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from rlbandit._checks import as_float_array, check_finite

__all__ = ["fit_bt", "bt_loss", "covariance", "mahalanobis_norm", "cholesky"]


def _check_bt_inputs(diffs, labels, reg, weights=None):
    diffs = as_float_array(diffs, "diffs", min_ndim=2)
    check_finite(diffs, "diffs")
    if diffs.shape[-2] == 0:
        raise ValueError("diffs: the preference data is empty (n = 0 comparisons)")
    labels = np.asarray(labels)
    if labels.shape != diffs.shape[:-1]:
        raise ValueError(f"labels: expected shape {diffs.shape[:-1]} to match diffs {diffs.shape}, got {labels.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels: every label must be 0 or 1 (1 = first action preferred)")
    try:
        reg = float(reg)
    except (TypeError, ValueError):
        raise ValueError(f"reg: expected a float >= 0, got {reg!r}") from None
    if not np.isfinite(reg) or reg < 0:
        raise ValueError(f"reg: the ridge coefficient must be finite and >= 0, got {reg}")
    if weights is not None:
        weights = as_float_array(weights, "weights")
        if weights.shape != labels.shape:
            raise ValueError(f"weights: expected shape {labels.shape}, got {weights.shape}")
        check_finite(weights, "weights")
        if (weights < 0).any():
            raise ValueError("weights: must be >= 0")
    return diffs, labels.astype(np.float64), reg, weights


def bt_loss(theta, diffs, labels, reg, weights=None) -> np.ndarray:
    """Σ_i w_i [log(1 + exp(z_iθ)) − y_i z_iθ] + (λ/2)‖θ‖², shape (...,)."""
    diffs, labels, reg, weights = _check_bt_inputs(diffs, labels, reg, weights)
    return _loss(np.asarray(theta, dtype=np.float64), diffs, labels, reg, weights)


def _loss(theta, diffs, labels, reg, weights):
    logits = np.einsum("...nd,...d->...n", diffs, theta)
    per = np.logaddexp(0.0, logits) - labels * logits
    if weights is not None:
        per = per * weights
    return per.sum(axis=-1) + 0.5 * reg * np.einsum("...d,...d->...", theta, theta)


def _newton(diffs, labels, reg, weights, theta0, *, tol, max_iter):
    """Damped Newton on the (convex) regularised BT loss, batched over leading axes."""
    d = diffs.shape[-1]
    theta = theta0.copy()
    loss = _loss(theta, diffs, labels, reg, weights)
    eye = np.eye(d)
    for _ in range(max_iter):
        logits = np.einsum("...nd,...d->...n", diffs, theta)
        prob = expit(logits)
        resid = prob - labels
        curv = prob * (1.0 - prob)
        if weights is not None:
            resid = resid * weights
            curv = curv * weights
        grad = np.einsum("...nd,...n->...d", diffs, resid) + reg * theta
        # zᵀ diag(w) z through one BLAS matmul per batch element.
        hess = np.matmul(np.swapaxes(diffs, -1, -2), diffs * curv[..., None]) + reg * eye
        # A tiny jitter keeps Cholesky alive when λ = 0 and some direction is never compared.
        hess += 1e-12 * np.trace(hess, axis1=-2, axis2=-1)[..., None, None] / d * eye
        try:
            step = np.linalg.solve(hess, grad[..., None])[..., 0]
        except np.linalg.LinAlgError:
            raise ValueError("diffs: the Hessian is singular; use reg > 0") from None
        decrement = np.einsum("...d,...d->...", grad, step)
        if np.all(decrement <= tol * np.maximum(1.0, np.abs(loss))):
            break
        # Armijo backtracking, vectorised: halve the step only where the loss did not drop.
        size = np.ones(theta.shape[:-1])
        for _ in range(40):
            candidate = theta - size[..., None] * step
            new_loss = _loss(candidate, diffs, labels, reg, weights)
            ok = new_loss <= loss - 0.25 * size * decrement + 1e-15 * np.abs(loss)
            if np.all(ok):
                break
            size = np.where(ok, size, 0.5 * size)
        theta, loss = candidate, new_loss
    else:
        raise ValueError(
            f"reg: Newton did not converge in {max_iter} iterations (separable data with reg = {reg}?); "
            "use reg > 0 or a norm bound"
        )
    return theta


def fit_bt(diffs, labels, reg, bound=None, weights=None, *, tol: float = 1e-20, max_iter: int = 100) -> np.ndarray:
    """Bradley–Terry MLE θ̂ (exact to machine precision) by damped Newton.

    Args:
        diffs: z = φ(x,a¹) − φ(x,a²), shape (..., n, d), finite, n ≥ 1.
        labels: y ∈ {0, 1}, shape (..., n); 1 = first action preferred.
        reg: λ ≥ 0, ridge coefficient (λ = 0 needs non-separable data).
        bound: B > 0 for the constrained MLE ‖θ‖ ≤ B (Zhu, Jordan & Jiao 2023), or None.
        weights: optional per-comparison weights w_i ≥ 0 (bootstrap counts), shape (..., n).
        tol: stop when the Newton decrement gᵀH⁻¹g ≤ tol·max(1, loss) for every batch element.

    Returns:
        θ̂, shape (..., d).

    The constrained problem is solved through its KKT condition: when the unconstrained
    minimiser has ‖θ̂‖ > B the solution lies on the sphere and equals the ridge solution with
    λ + μ, where μ > 0 is found by bisection on the monotone map μ ↦ ‖θ̂(λ + μ)‖.
    """
    diffs, labels, reg, weights = _check_bt_inputs(diffs, labels, reg, weights)
    theta0 = np.zeros(diffs.shape[:-2] + diffs.shape[-1:])
    if bound is None:
        return _newton(diffs, labels, reg, weights, theta0, tol=tol, max_iter=max_iter)
    bound = float(bound)
    if not np.isfinite(bound) or bound <= 0:
        raise ValueError(f"bound: the norm bound B must be finite and > 0, got {bound}")
    theta = _newton(diffs, labels, max(reg, 1e-12), weights, theta0, tol=tol, max_iter=max_iter)
    norms = np.linalg.norm(theta, axis=-1)
    if np.all(norms <= bound):
        return theta
    # Per batch element: bracket μ with ‖θ(λ + μ)‖ ≤ B, then bisect in log space.
    flat_d = diffs.reshape((-1,) + diffs.shape[-2:])
    flat_y = labels.reshape((-1, labels.shape[-1]))
    flat_w = None if weights is None else weights.reshape((-1, labels.shape[-1]))
    flat_theta = theta.reshape((-1, theta.shape[-1]))
    for i in np.flatnonzero(norms.reshape(-1) > bound):
        w_i = None if flat_w is None else flat_w[i]

        def solve(mu, start):
            return _newton(flat_d[i], flat_y[i], reg + mu, w_i, start, tol=tol, max_iter=max_iter)

        lo, hi = 0.0, max(reg, 1e-3)
        start = flat_theta[i]
        while np.linalg.norm(sol := solve(hi, start)) > bound:
            lo, hi, start = hi, hi * 4.0, sol
        for _ in range(200):
            mid = np.sqrt(lo * hi) if lo > 0 else 0.5 * hi
            sol_mid = solve(mid, sol)
            if np.linalg.norm(sol_mid) > bound:
                lo = mid
            else:
                hi, sol = mid, sol_mid
            if hi - lo <= 1e-13 * hi:
                break
        flat_theta[i] = sol * (bound / max(np.linalg.norm(sol), bound))
    return flat_theta.reshape(theta.shape)


def covariance(diffs, reg, scale: float = 1.0) -> np.ndarray:
    """Σ_D = λI + s Σ_i z_i z_iᵀ, shape (..., d, d) for ``diffs`` of shape (..., n, d).

    ``scale`` s = 1 offline; s = 1/m for the online batch form. λ > 0 keeps Σ_D invertible.
    """
    diffs = as_float_array(diffs, "diffs", min_ndim=2)
    check_finite(diffs, "diffs")
    reg = float(reg)
    if not np.isfinite(reg) or reg < 0:
        raise ValueError(f"reg: must be finite and >= 0, got {reg}")
    scale = float(scale)
    if not np.isfinite(scale) or scale < 0:
        raise ValueError(f"scale: must be finite and >= 0, got {scale}")
    d = diffs.shape[-1]
    return reg * np.eye(d) + scale * np.matmul(np.swapaxes(diffs, -1, -2), diffs)


def cholesky(cov) -> np.ndarray:
    """Lower Cholesky factor L of Σ = LLᵀ, shape (..., d, d); ValueError if Σ is not positive definite."""
    cov = as_float_array(cov, "cov", min_ndim=2)
    if cov.shape[-1] != cov.shape[-2]:
        raise ValueError(f"cov: expected square matrices (..., d, d), got {cov.shape}")
    check_finite(cov, "cov")
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ValueError("cov: the covariance is not positive definite (use reg > 0)") from None


def mahalanobis_norm(vectors, cov=None, *, factor=None) -> np.ndarray:
    """‖v‖_{Σ⁻¹} = sqrt(vᵀ Σ⁻¹ v) through one Cholesky factorisation (never an explicit inverse).

    Args:
        vectors: v, shape (..., d) — any number of vectors per covariance; for a batch of
            covariances (B, d, d) the vectors are (B, ..., d).
        cov: Σ, shape (d, d) or (B, d, d), positive definite. Give either ``cov`` or ``factor``.
        factor: the lower Cholesky factor of Σ (from :func:`cholesky`), to reuse it across calls.

    Returns:
        norms, shape (...,) = ``vectors.shape[:-1]``.
    """
    if (cov is None) == (factor is None):
        raise ValueError("cov: give exactly one of cov or factor")
    lower = cholesky(cov) if factor is None else as_float_array(factor, "factor", min_ndim=2)
    vectors = as_float_array(vectors, "vectors", min_ndim=1)
    d = lower.shape[-1]
    if vectors.shape[-1] != d:
        raise ValueError(f"vectors: last axis must be d = {d}, got shape {vectors.shape}")
    if lower.ndim == 2:
        flat = vectors.reshape(-1, d).T
        solved = _solve_lower(lower, flat)
        return np.sqrt(np.einsum("dn,dn->n", solved, solved)).reshape(vectors.shape[:-1])
    batch = lower.shape[:-2]
    if vectors.shape[: len(batch)] != batch:
        raise ValueError(f"vectors: leading axes {vectors.shape[:len(batch)]} must match the covariance batch {batch}")
    flat = vectors.reshape(batch + (-1, d))
    solved = _solve_lower(lower, np.swapaxes(flat, -1, -2))
    return np.sqrt(np.einsum("...dn,...dn->...n", solved, solved)).reshape(vectors.shape[:-1])


def _solve_lower(lower: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """L⁻¹ rhs for lower-triangular L, batched over leading axes (forward substitution in BLAS)."""
    from scipy.linalg import solve_triangular

    if lower.ndim == 2:
        return solve_triangular(lower, rhs, lower=True, check_finite=False)
    out = np.empty(np.broadcast_shapes(lower.shape[:-2], rhs.shape[:-2]) + rhs.shape[-2:])
    for index in np.ndindex(lower.shape[:-2]):
        out[index] = solve_triangular(lower[index], rhs[index], lower=True, check_finite=False)
    return out
