"""Bradley–Terry reward learning: MLE, norm-constrained MLE, covariance and Σ⁻¹-norms (DESIGN §2).

With z_i = φ(x_i, a¹_i) − φ(x_i, a²_i) and y_i = 1 when a¹ wins,

    θ̂ = argmin_θ Σ_i [ log(1 + exp(z_iθ)) − y_i z_iθ ] + (λ/2)‖θ‖²        (optionally ‖θ‖ ≤ B)
    Σ_D = λI + s Σ_i z_i z_iᵀ

which is logistic regression without intercept (scikit-learn's ``C = 1/λ``). Everything is
batched over leading axes: ``diffs`` (..., n, d), ``labels`` (..., n) → θ̂ (..., d).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg.blas import dsyrk as _dsyrk
from scipy.special import expit

from rlbandit._checks import as_float_array, check_finite, check_positive_float

# Σ_D and its norms live in rlbandit.geometry; re-exported because users import them from here.
from rlbandit.geometry import cholesky, covariance, mahalanobis_norm

__all__ = ["fit_bt", "bt_loss", "covariance", "mahalanobis_norm", "cholesky"]


def _check_bt_inputs(diffs, labels, reg, weights=None):
    diffs = as_float_array(diffs, "diffs", min_ndim=2)
    check_finite(diffs, "diffs")
    if diffs.shape[-2] == 0:
        raise ValueError("diffs: the preference data is empty (n = 0 comparisons)")
    if diffs.shape[-1] == 0:
        raise ValueError("diffs: the feature dimension d is 0; expected shape (..., n, d) with d >= 1")
    labels = np.asarray(labels)
    if labels.shape != diffs.shape[:-1]:
        raise ValueError(f"labels: expected shape {diffs.shape[:-1]} to match diffs {diffs.shape}, got {labels.shape}")
    if not ((labels == 0) | (labels == 1)).all():
        raise ValueError("labels: every label must be 0 or 1 (1 = first action preferred)")
    reg = float(check_positive_float(reg, "reg", allow_zero=True))
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


def _matvec(diffs: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """z_i · v for every row: (..., n, d) × (..., d) → (..., n).

    numpy's own single-threaded einsum loop, not BLAS gemv: this product is memory-bound, and
    a multi-threaded gemv on a busy machine is up to 10× slower than one core streaming the data.
    """
    return np.einsum("...nd,...d->...n", diffs, vector)


def _rmatvec(diffs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Σ_i w_i z_i: (..., n, d) × (..., n) → (..., d) (einsum, for the reason given in _matvec)."""
    return np.einsum("...nd,...n->...d", diffs, weights)


def _data_loss(logits, labels, weights):
    """Σ_i w_i (softplus(s_i) − y_i s_i) over the last axis, softplus(s) = max(s, 0) + log1p(e^−|s|):
    the same numbers as ``np.logaddexp(0, s)`` (to rounding) in a third of its time, and the
    line search evaluates this several times per Newton step."""
    per = np.abs(logits)
    np.negative(per, out=per)
    np.exp(per, out=per)
    np.log1p(per, out=per)
    per += np.maximum(logits, 0.0)
    per -= labels * logits
    if weights is not None:
        per *= weights
    return per.sum(axis=-1)


def _loss(theta, diffs, labels, reg, weights):
    return _data_loss(_matvec(diffs, theta), labels, weights) + 0.5 * reg * np.einsum("...d,...d->...", theta, theta)


#: Rows of the Hessian sketch: early Newton iterations use the Gram matrix of a fixed strided
#: subsample of max(_SKETCH_ROWS, 16·d) comparisons (rescaled to n); see :func:`_newton`.
_SKETCH_ROWS = 4096
#: Switch from the sketched to the full (then frozen) Hessian once every decrement is below this
#: fraction of the loss (θ is then within ~1e-3 of θ̂, where one full Hessian is enough).
_SWITCH_DECREMENT = 1e-6


#: Below this decrement (relative to the loss) the full (quasi-)Newton step is taken without a
#: line search: the loss then changes by ~decrement/2 and the cubic term is ~1e-12 of that.
_FULL_STEP_DECREMENT = 1e-8


def _gram(diffs, diffs_t, curv):
    """zᵀ diag(c) z for c ≥ 0, batched: (..., n, d) → (..., d, d) through one BLAS matmul.

    Unbatched, it is one symmetric rank-n update (BLAS syrk on √c·z): half the flops of the
    matmul, ~1.5× faster at n = 10⁵, d = 32, where this is the largest cost of a fit.
    """
    if diffs.ndim == 2 and diffs.dtype == np.float64:
        scaled = diffs * np.sqrt(curv)[:, None]
        upper = _dsyrk(1.0, scaled.T, trans=0, lower=0)  # scaled.T is Fortran-ordered: no copy
        return np.triu(upper) + np.triu(upper, 1).T
    return np.matmul(diffs_t, diffs * curv[..., None])


def _newton(diffs, labels, reg, weights, theta0, *, tol, max_iter):
    """Damped (quasi-)Newton on the strictly convex regularised BT loss, batched over leading axes.

    Every iteration uses the exact gradient (one gemv) and one gemv z·step; the Armijo line
    search then costs O(n) per trial because the logits along the step are z·θ − t z·step.
    The Hessian zᵀ diag(w σ(1−σ)) z + λI is the expensive part (n·d² flops, ~20 gemvs), so:

    - n ≤ 2·sketch rows: the exact Hessian every iteration (plain Newton, quadratic convergence);
    - larger n: the Hessian of a fixed strided subsample (rescaled) while far from θ̂, then one
      full Hessian once the decrement is below _SWITCH_DECREMENT·loss, frozen for the last
      (chord) iterations, which converge at a rate ~‖θ − θ̂‖.

    Only the rate depends on these approximations: the stopping rule is on the exact gradient,
    so θ̂ is the exact minimiser. Stops when every batch element's Newton decrement
    gᵀH⁻¹g ≤ tol·max(1, |loss|), or when the decrement is at the rounding floor and the loss
    can no longer decrease.

    Returns:
        (θ, converged (...,) bool, the Hessian (or its approximation) used last (..., d, d)).
    """
    n, d = diffs.shape[-2:]
    batch = diffs.shape[:-2]
    reg = np.broadcast_to(np.asarray(reg, dtype=np.float64), batch)
    eye = np.eye(d)
    theta = np.array(theta0, dtype=np.float64, copy=True)
    logits = _matvec(diffs, theta)
    loss = _data_loss(logits, labels, weights) + 0.5 * reg * np.einsum("...d,...d->...", theta, theta)
    converged = np.zeros(batch, dtype=bool)
    diffs_t = np.swapaxes(diffs, -1, -2)  # for the Gram matrices (BLAS-3)
    n_sketch = max(_SKETCH_ROWS, 16 * d)
    if n > 2 * n_sketch:
        stride = n // n_sketch
        sketch = diffs[..., ::stride, :]
        sketch_t = np.swapaxes(sketch, -1, -2)
        sketch_scale = n / sketch.shape[-2]
    else:
        sketch = None
    frozen = None
    for iteration in range(max_iter + 1):
        prob = expit(logits)
        resid = prob - labels
        curv = prob * (1.0 - prob)
        if weights is not None:
            resid *= weights
            curv *= weights
        grad = _rmatvec(diffs, resid) + reg[..., None] * theta
        if frozen is not None:
            hess = frozen
        elif sketch is None:
            hess = _gram(diffs, diffs_t, curv) + reg[..., None, None] * eye
        else:
            hess = sketch_scale * _gram(sketch, sketch_t, curv[..., ::stride]) + reg[..., None, None] * eye
        step = _solve(hess, grad)
        decrement = np.einsum("...d,...d->...", grad, step)
        scale = np.maximum(1.0, np.abs(loss))
        if sketch is not None and frozen is None and np.all(decrement <= _SWITCH_DECREMENT * scale):
            hess = frozen = _gram(diffs, diffs_t, curv) + reg[..., None, None] * eye
            step = _solve(hess, grad)
            decrement = np.einsum("...d,...d->...", grad, step)
        converged |= decrement <= tol * scale
        if converged.all() or iteration == max_iter:
            break
        zstep = _matvec(diffs, step)
        if np.all(decrement <= _FULL_STEP_DECREMENT * scale):
            # So close that the quadratic model is exact far beyond Armijo's needs: take the full
            # step without evaluating the loss (kept stale; it only sets the scale of the test).
            theta = theta - step
            logits = logits - zstep
            continue
        size = np.ones(batch)
        for _trial in range(60):
            new_logits = logits - size[..., None] * zstep
            new_theta = theta - size[..., None] * step
            new_loss = _data_loss(new_logits, labels, weights) + 0.5 * reg * np.einsum("...d,...d->...", new_theta, new_theta)
            ok = new_loss <= loss - 0.25 * size * decrement + 1e-15 * scale
            if ok.all():
                break
            size = np.where(ok, size, 0.5 * size)
        else:
            # No decrease even for a tiny step: at the rounding floor of the loss. Accept the
            # elements whose decrement is already negligible; the others keep their iterate.
            floor = decrement <= 1e-10 * scale
            converged |= floor
            ok = ok | floor
        keep = ~ok
        if keep.any():
            new_theta = np.where(keep[..., None], theta, new_theta)
            new_logits = np.where(keep[..., None], logits, new_logits)
            new_loss = np.where(keep, loss, new_loss)
        theta, logits, loss = new_theta, new_logits, new_loss
    return theta, converged, hess


def _solve(hess, grad):
    """H⁻¹g, batched; a tiny ridge rescues a singular H (λ = 0 and a never-compared direction)."""
    try:
        return np.linalg.solve(hess, grad[..., None])[..., 0]
    except np.linalg.LinAlgError:
        d = hess.shape[-1]
        jitter = 1e-12 * np.trace(hess, axis1=-2, axis2=-1)[..., None, None] / d + 1e-300
        return np.linalg.solve(hess + jitter * np.eye(d), grad[..., None])[..., 0]


def _separable(diffs, labels, weights, theta) -> np.ndarray:
    """True where θ classifies every informative comparison (z ≠ 0, w > 0) strictly correctly:
    then the data are separable and the unregularised MLE does not exist (the loss → 0 as θ → ∞)."""
    margins = (2.0 * labels - 1.0) * _matvec(diffs, theta)
    informative = np.any(diffs != 0.0, axis=-1)
    if weights is not None:
        informative &= weights > 0
    return np.all((margins > 0.0) | ~informative, axis=-1) & informative.any(axis=-1)


def _not_converged(reg, max_iter) -> ValueError:
    return ValueError(
        f"reg: Newton did not converge in {max_iter} iterations (separable data with reg = {reg}?); "
        "use reg > 0 or a norm bound"
    )


def fit_bt(diffs, labels, reg, bound=None, weights=None, *, tol: float = 1e-26, max_iter: int = 100) -> np.ndarray:
    """Bradley–Terry MLE θ̂ (exact to machine precision) by damped Newton.

    Args:
        diffs: z = φ(x,a¹) − φ(x,a²), shape (..., n, d), finite, n ≥ 1.
        labels: y ∈ {0, 1}, shape (..., n); 1 = first action preferred.
        reg: λ ≥ 0, ridge coefficient (λ = 0 needs non-separable data, or a ``bound``).
        bound: B > 0 for the constrained MLE ‖θ‖ ≤ B (Zhu, Jordan & Jiao 2023), or None.
        weights: optional per-comparison weights w_i ≥ 0 (bootstrap counts), shape (..., n).
        tol: stop when the Newton decrement gᵀH⁻¹g ≤ tol·max(1, loss) for every batch element
            (the default reaches the minimiser to machine precision: Newton converges
            quadratically, so this costs one or two iterations more than a loose tolerance).
        max_iter: Newton iterations at most.

    Returns:
        θ̂, shape (..., d). ValueError when Newton does not converge (separable data with λ = 0).

    The constrained problem is solved through its KKT condition: when the minimiser for λ lies
    outside the ball, the solution is the ridge minimiser θ(λ + μ) with μ > 0 the root of
    ‖θ(λ + μ)‖ = B, found by safeguarded Newton on 1/‖θ(λ+μ)‖ − 1/B (with d‖θ‖/dμ = −θᵀH⁻¹θ/‖θ‖)
    inside a bracket that starts from μ = ‖∇L(0)‖/B − λ (where ‖θ(λ + μ)‖ ≤ B is guaranteed).
    """
    diffs, labels, reg, weights = _check_bt_inputs(diffs, labels, reg, weights)
    if not (isinstance(max_iter, (int, np.integer)) and max_iter >= 1):
        raise ValueError(f"max_iter: expected a positive integer, got {max_iter!r}")
    tol = float(check_positive_float(tol, "tol", allow_zero=True))
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol: expected a finite float >= 0, got {tol}")
    theta0 = np.zeros(diffs.shape[:-2] + diffs.shape[-1:])
    if bound is None:
        theta, converged, _ = _newton(diffs, labels, reg, weights, theta0, tol=tol, max_iter=max_iter)
        if not converged.all() or (reg == 0.0 and _separable(diffs, labels, weights, theta).any()):
            raise _not_converged(reg, max_iter)
        return theta
    try:
        bound = float(bound)
    except (TypeError, ValueError):
        raise ValueError(f"bound: expected a float > 0 or None, got {bound!r}") from None
    if not np.isfinite(bound) or bound <= 0:
        raise ValueError(f"bound: the norm bound B must be finite and > 0, got {bound}")
    flat_d = diffs.reshape((-1,) + diffs.shape[-2:])
    flat_y = labels.reshape((-1, labels.shape[-1]))
    flat_w = None if weights is None else weights.reshape((-1, labels.shape[-1]))
    out = np.empty((flat_d.shape[0], flat_d.shape[-1]))
    for i in range(flat_d.shape[0]):
        out[i] = _fit_bt_ball(flat_d[i], flat_y[i], reg, bound, None if flat_w is None else flat_w[i],
                              tol=tol, max_iter=max_iter)
    return out.reshape(theta0.shape)


def _fit_bt_ball(diffs, labels, reg, bound, weights, *, tol, max_iter):
    """argmin over ‖θ‖ ≤ B of the regularised BT loss for one dataset (n, d)."""
    d = diffs.shape[-1]
    theta, converged, _ = _newton(diffs, labels, reg, weights, np.zeros(d), tol=tol, max_iter=max_iter)
    if converged and np.linalg.norm(theta) <= bound and not (reg == 0.0 and _separable(diffs, labels, weights, theta)):
        return theta
    grad0 = diffs.T @ ((0.5 - labels) * (1.0 if weights is None else weights))
    hi = max(np.linalg.norm(grad0) / bound - reg, 0.0)
    if hi == 0.0:  # ∇L(0) = 0: θ = 0 is the minimiser (inside the ball)
        return np.zeros(d)
    lo = 0.0
    mu = hi
    theta = np.zeros(d)
    best = None
    for _ in range(200):
        theta, converged, hess = _newton(diffs, labels, reg + mu, weights, theta, tol=tol, max_iter=max_iter)
        norm = np.linalg.norm(theta)
        if norm <= bound:
            hi, best = mu, theta
        else:
            lo = mu
        if abs(norm - bound) <= 1e-10 * bound:
            # On the sphere to the accuracy of the inner solves: the constraint is active.
            return theta * (bound / norm)
        if hi - lo <= 1e-15 * hi:
            break
        if lo == 0.0 and norm <= bound and hi < 1e-14 * (np.trace(hess) / d):
            # μ → 0 with ‖θ(λ + μ)‖ still inside the ball: the unconstrained minimiser is feasible
            # (the first attempt only failed on its iteration budget).
            return theta
        # Newton on φ(μ) = 1/‖θ‖ − 1/B, φ'(μ) = θᵀH⁻¹θ / ‖θ‖³.
        slope = theta @ np.linalg.solve(hess, theta) / norm**3
        candidate = mu - (1.0 / norm - 1.0 / bound) / slope if slope > 0 else -1.0
        if not (lo < candidate < hi):
            candidate = np.sqrt(lo * hi) if lo > 0 else 0.1 * hi
        mu = candidate
    return best * min(1.0, bound / np.linalg.norm(best))
