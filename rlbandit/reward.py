"""Bradley–Terry reward learning: MLE, norm-constrained MLE, covariance and Σ⁻¹-norms (DESIGN §2).

With z_i = φ(x_i, a¹_i) − φ(x_i, a²_i) and y_i = 1 when a¹ wins,

    θ̂ = argmin_θ Σ_i [ log(1 + exp(z_iθ)) − y_i z_iθ ] + (λ/2)‖θ‖²        (optionally ‖θ‖ ≤ B)
    Σ_D = λI + s Σ_i z_i z_iᵀ

which is logistic regression without intercept (scikit-learn's ``C = 1/λ``), minimised by damped
Newton or, at large d, L-BFGS (:func:`bt_solver`). Everything is batched over leading axes:
``diffs`` (..., n, d), ``labels`` (..., n) → θ̂ (..., d).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg.blas import dsyrk as _dsyrk
from scipy.special import expit

from rlbandit._checks import as_float_array, check_broadcast, check_choice, check_finite, check_int, check_positive_float

# Σ_D and its norms live in rlbandit.geometry; re-exported because users import them from here.
from rlbandit.geometry import cholesky, covariance, mahalanobis_norm

__all__ = ["fit_bt", "bt_loss", "bt_solver", "BT_SOLVERS", "covariance", "mahalanobis_norm", "cholesky"]


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
    theta = as_float_array(theta, "theta", min_ndim=1)
    check_finite(theta, "theta")
    check_broadcast(theta.shape[:-1], diffs.shape[:-2], "theta", "diffs")
    if theta.shape[-1] != diffs.shape[-1]:
        raise ValueError(f"theta: expected shape (..., {diffs.shape[-1]}) to match diffs {diffs.shape}, got {theta.shape}")
    return _loss(theta, diffs, labels, reg, weights)


def _matvec(diffs: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """z_i · v for every row: (..., n, d) × (..., d) → (..., n).

    numpy's own single-threaded einsum loop, not BLAS gemv: this product is memory-bound, and
    a multi-threaded gemv on a busy machine is up to 10× slower than one core streaming the data.
    """
    return np.einsum("...nd,...d->...n", diffs, vector)


def _rmatvec(diffs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Σ_i w_i z_i: (..., n, d) × (..., n) → (..., d) (einsum, for the reason given in _matvec)."""
    return np.einsum("...nd,...n->...d", diffs, weights)


def _matvec_blas(diffs, vector):  # z·v and zᵀw by BLAS gemv, for L-BFGS at large d, whose passes
    return np.matmul(diffs, vector[..., None])[..., 0]  # are its whole cost: long rows stream ~15%


def _rmatvec_blas(diffs, weights):  # faster through gemv than through einsum (one thread)
    return np.matmul(weights[..., None, :], diffs)[..., 0, :]


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


def _loss_at(theta, logits, labels, reg, weights):
    """The regularised loss from precomputed logits z·θ, shape (...,)."""
    return _data_loss(logits, labels, weights) + 0.5 * reg * np.einsum("...d,...d->...", theta, theta)


def _loss(theta, diffs, labels, reg, weights):
    return _loss_at(theta, _matvec(diffs, theta), labels, reg, weights)


#: Rows of the Hessian sketch: early Newton iterations use the Gram matrix of a fixed strided
#: subsample of max(_SKETCH_ROWS, 16·d) comparisons (rescaled to n); see :func:`_newton`.
_SKETCH_ROWS = 4096
#: L-BFGS: curvature pairs kept; 1-D Newton steps of its line search; its iterations at most
#: per Newton iteration of ``max_iter`` (it converges linearly, not quadratically).
_LBFGS_MEMORY, _LINE_SEARCH_NEWTON, _LBFGS_ITER_FACTOR = 10, 2, 10
#: Cost model of :func:`bt_solver`, measured on one core (benchmarks/speed_core.py): the Gram matrix
#: zᵀdiag(c)z runs at ~25× the flop rate of a memory-bound pass z·v, and L-BFGS makes ~5 more
#: passes over the data than the sketched Newton iterations it replaces.
_BLAS3_SPEEDUP, _LBFGS_EXTRA_PASSES = 25, 5


def _sketch_rows(d: int) -> int:  # rows of the Hessian sketch for feature dimension d
    return max(_SKETCH_ROWS, 16 * d)


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
    loss = _loss_at(theta, logits, labels, reg, weights)
    converged = np.zeros(batch, dtype=bool)
    diffs_t = np.swapaxes(diffs, -1, -2)  # for the Gram matrices (BLAS-3)
    n_sketch = _sketch_rows(d)
    if n > 2 * n_sketch:
        stride = n // n_sketch
        sketch = diffs[..., ::stride, :]
        sketch_t = np.swapaxes(sketch, -1, -2)
        sketch_scale = n / sketch.shape[-2]
    else:
        sketch = None
    frozen = None
    for iteration in range(max_iter + 1):
        resid, curv = _residual_curvature(logits, labels, weights)
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
        theta, logits, loss, converged = _line_search(theta, logits, loss, step, zstep, decrement, scale, converged,
                                                      labels, reg, weights)
    return theta, converged, hess


def _line_search(theta, logits, loss, step, zstep, decrement, scale, converged, labels, reg, weights):
    """Armijo backtracking along θ − t·step, batched: each element halves its own t until
    L(θ − t·step) ≤ L(θ) − t·decrement/4 (+ rounding slack), O(n) per trial (the logits are
    z·θ − t·(z·step)). Returns (θ, logits, loss, converged); an element with no decrease at all
    is at the rounding floor: converged if its decrement is ≤ 1e-10·scale, and kept as it was."""
    size = np.ones(loss.shape)
    for _trial in range(60):
        new_logits = logits - size[..., None] * zstep
        new_theta = theta - size[..., None] * step
        new_loss = _loss_at(new_theta, new_logits, labels, reg, weights)
        ok = new_loss <= loss - 0.25 * size * decrement + 1e-15 * scale
        if ok.all():
            break
        size = np.where(ok, size, 0.5 * size)
    else:
        floor = decrement <= 1e-10 * scale
        converged = converged | floor
        ok = ok | floor
    keep = ~ok
    if keep.any():
        new_theta = np.where(keep[..., None], theta, new_theta)
        new_logits = np.where(keep[..., None], logits, new_logits)
        new_loss = np.where(keep, loss, new_loss)
    return new_theta, new_logits, new_loss, converged


def _residual_curvature(logits, labels, weights):
    """w(σ − y) and w σ(1 − σ) at the logits: the gradient and Hessian weights of the loss."""
    prob = expit(logits)
    if weights is None:
        return prob - labels, prob * (1.0 - prob)
    return (prob - labels) * weights, prob * (1.0 - prob) * weights


def _two_loop(grad, pairs_s, pairs_y, rho, precond, gamma):
    """L-BFGS inverse-Hessian product H_k g by the two-loop recursion, batched: pairs (..., m, d)
    newest last (zero pairs, ρ = 0, are no-ops), initial inverse Hessian γ·M⁻¹ (see _apply)."""
    q = grad.copy()
    alphas = []
    for i in range(pairs_s.shape[-2] - 1, -1, -1):
        a = rho[..., i] * np.einsum("...d,...d->...", pairs_s[..., i, :], q)
        q -= a[..., None] * pairs_y[..., i, :]
        alphas.append(a)
    r = gamma[..., None] * _apply(precond, q)
    for i, a in zip(range(pairs_s.shape[-2]), reversed(alphas)):
        b = rho[..., i] * np.einsum("...d,...d->...", pairs_y[..., i, :], r)
        r += (a - b)[..., None] * pairs_s[..., i, :]
    return r


def _push(pairs, new, good):  # drop the oldest row of (..., m, d) and append new (..., d) where good
    return np.where(good[..., None, None], np.concatenate([pairs[..., 1:, :], new[..., None, :]], -2), pairs)


def _apply(precond, vector):  # M⁻¹v for a diagonal (..., d) or a full (..., d, d) inverse
    return precond * vector if precond.ndim == vector.ndim else np.einsum("...ij,...j->...i", precond, vector)


def _preconditioner(diffs, curv, reg, stride):
    """The initial inverse Hessian of L-BFGS from the Hessian S of a strided subsample of m rows
    (rescaled to n): diag(S)⁻¹ (..., d) when the spread of S's Jacobi-scaled spectrum is at most
    twice what m rows of an isotropic H show by chance (Marchenko–Pastur: ((1 + √(d/m)) /
    (1 − √(d/m)))², tested on m ≈ max(4d, 1024) rows), else S⁻¹ (..., d, d) of every stride-th row."""
    (n, d), eye = diffs.shape[-2:], np.eye(diffs.shape[-1])

    def sketched(step):
        rows = diffs[..., ::step, :]
        hess = n / rows.shape[-2] * _gram(rows, np.swapaxes(rows, -1, -2), curv[..., ::step])
        hess += reg[..., None, None] * eye
        return hess + (1e-12 * np.trace(hess, axis1=-2, axis2=-1) / d + 1e-300)[..., None, None] * eye

    coarse = max(stride, n // max(4 * d, 1024))
    hess = sketched(coarse)
    diag = np.diagonal(hess, axis1=-2, axis2=-1)
    root = 1.0 / np.sqrt(diag)  # the spectrum of the Jacobi-scaled S:
    spectrum = np.linalg.eigvalsh(hess * root[..., :, None] * root[..., None, :])
    ratio = min(np.sqrt(d / len(range(0, n, coarse))), 0.9)
    if np.all(spectrum[..., -1] <= 2.0 * ((1.0 + ratio) / (1.0 - ratio)) ** 2 * spectrum[..., 0]):
        return 1.0 / diag
    return np.linalg.inv(hess if coarse == stride else sketched(stride))


def _lbfgs(diffs, labels, reg, weights, theta0, *, tol, max_iter):
    """L-BFGS for large d, batched over leading axes: two passes over the data per iteration
    (z·p for the direction p, and the gradient zᵀ w(σ − y)) and no n·d² Hessian. The line search
    is exact along p (1-D Newton on t, O(n) per trial: the logits are z·θ − t·(z·p)), so on a
    quadratic the iterates are those of preconditioned CG. Initial inverse Hessian: γ_k·M⁻¹, M
    from a subsample (:func:`_preconditioner`), γ_k = sᵀy / yᵀM⁻¹y of the last curvature pair.

    Stops on the rule of :func:`_newton` with H_k the L-BFGS inverse Hessian: every element's
    decrement gᵀH_k g ≤ tol·max(1, |loss|), or no decrease possible at a negligible decrement
    (the rounding floor). Returns (θ, converged (...,) bool, None)."""
    (n, d), batch = diffs.shape[-2:], diffs.shape[:-2]
    reg = np.broadcast_to(np.asarray(reg, dtype=np.float64), batch)
    theta = np.array(theta0, dtype=np.float64, copy=True)
    logits = _matvec_blas(diffs, theta) if theta.any() else np.zeros(labels.shape)
    loss = _loss_at(theta, logits, labels, reg, weights)
    resid, curv = _residual_curvature(logits, labels, weights)
    precond = _preconditioner(diffs, curv, reg, max(1, n // _sketch_rows(d)))
    grad = _rmatvec_blas(diffs, resid) + reg[..., None] * theta
    pairs_s, pairs_y = np.zeros((2,) + batch + (_LBFGS_MEMORY, d))
    rho, gamma, converged = np.zeros(batch + (_LBFGS_MEMORY,)), np.ones(batch), np.zeros(batch, dtype=bool)
    for iteration in range(max_iter + 1):
        direction = _two_loop(grad, pairs_s, pairs_y, rho, precond, gamma)
        decrement = np.einsum("...d,...d->...", grad, direction)
        scale = np.maximum(1.0, np.abs(loss))
        converged |= decrement <= tol * scale
        if converged.all() or iteration == max_iter:
            break
        zdir = _matvec_blas(diffs, direction)
        size, new_loss, ok = _exact_line_search(theta, logits, loss, direction, zdir, decrement, scale,
                                                labels, reg, weights)
        converged |= ~ok & (decrement <= 1e-10 * scale)  # no decrease possible: the rounding floor
        size = np.where(ok, size, 0.0)
        new_theta = theta - size[..., None] * direction
        logits = logits - size[..., None] * zdir
        resid, _ = _residual_curvature(logits, labels, weights)
        new_grad = _rmatvec_blas(diffs, resid) + reg[..., None] * new_theta
        step, change = new_theta - theta, new_grad - grad
        sy = np.einsum("...d,...d->...", step, change)
        good = sy > 0.0
        pairs_s, pairs_y = _push(pairs_s, step, good), _push(pairs_y, change, good)
        rho = _push(rho[..., None], (1.0 / np.where(good, sy, 1.0))[..., None], good)[..., 0]
        ymy = np.einsum("...d,...d->...", change, _apply(precond, change))
        gamma = np.where(good & (ymy > 0.0), sy / np.where(ymy > 0.0, ymy, 1.0), gamma)
        theta, grad, loss = new_theta, new_grad, np.where(ok, new_loss, loss)
        if not ok[~converged].all():  # stuck above the rounding floor: report non-convergence
            break
    return theta, converged, None


def _exact_line_search(theta, logits, loss, direction, zdir, decrement, scale, labels, reg, weights):
    """argmin_t L(θ − t·p) by safeguarded 1-D Newton from t = 1, batched, O(n) per trial, then
    Armijo (L ≤ L(θ) − t·decrement/4, halving t) unless decrement ≤ _FULL_STEP_DECREMENT·scale.
    Returns (t, L(θ − t·p), ok): ok is False where no t gave a decrease (the rounding floor)."""
    pp, tp = (np.einsum("...d,...d->...", v, direction) for v in (direction, theta))
    size, lo = np.ones(loss.shape), np.zeros(loss.shape)
    for _ in range(_LINE_SEARCH_NEWTON):
        resid, curv = _residual_curvature(logits - size[..., None] * zdir, labels, weights)
        slope = -np.einsum("...n,...n->...", resid, zdir) + reg * (size * pp - tp)
        second = np.einsum("...n,...n,...n->...", curv, zdir, zdir) + reg * pp
        lo = np.where(slope < 0, size, lo)
        new = size - slope / np.where(second > 0, second, 1.0)
        size = np.where(new > lo, new, 0.5 * (lo + size))
    quiet = decrement <= _FULL_STEP_DECREMENT * scale
    for _trial in range(60):
        new_loss = _loss_at(theta - size[..., None] * direction, logits - size[..., None] * zdir, labels, reg, weights)
        ok = quiet | (new_loss <= loss - 0.25 * size * decrement + 1e-15 * scale)
        if ok.all():
            break
        size = np.where(ok, size, 0.5 * size)
    return size, new_loss, ok


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


def _not_converged(reg, max_iter, solver="newton") -> ValueError:
    return ValueError(f"reg: {solver} did not converge in {max_iter} iterations (separable data with reg = "
                      f"{reg}?); use reg > 0 or a norm bound")


def bt_solver(n: int, d: int) -> str:
    """The minimiser ``fit_bt(solver="auto")`` uses for n comparisons in d dimensions, by cost in
    passes over the data (one pass: n·d flops, memory-bound). Exact Newton pays one Hessian
    zᵀdiag(c)z, n·d² flops at BLAS-3 speed ≈ d/_BLAS3_SPEEDUP passes, which L-BFGS avoids for
    ≈ _LBFGS_EXTRA_PASSES more passes: "lbfgs" when n·d² > _BLAS3_SPEEDUP·_LBFGS_EXTRA_PASSES·n·d
    and n > 2·sketch rows (else Newton's Hessians are cheap and L-BFGS's O(m·d² + d³)
    preconditioner is not amortised); otherwise "newton"."""
    n = check_int(n, "n")
    d = check_int(d, "d")
    big = n > 2 * _sketch_rows(d)
    return "lbfgs" if big and n * d * d > _BLAS3_SPEEDUP * _LBFGS_EXTRA_PASSES * n * d else "newton"


#: Minimisers of the unconstrained (ridge) MLE, all with the signature and stopping rule of
#: :func:`_newton`; ``fit_bt(solver=...)`` picks one ("auto": :func:`bt_solver`).
_MINIMISERS = {"newton": _newton, "lbfgs": _lbfgs}
BT_SOLVERS = ("auto", *_MINIMISERS)


def fit_bt(diffs, labels, reg, bound=None, weights=None, *, tol: float = 1e-26, max_iter: int = 100,
           solver: str = "auto") -> np.ndarray:
    """Bradley–Terry MLE θ̂ (exact to machine precision) by damped Newton or, at large d, L-BFGS.

    Args:
        diffs: z = φ(x,a¹) − φ(x,a²), shape (..., n, d), finite, n ≥ 1.
        labels: y ∈ {0, 1}, shape (..., n); 1 = first action preferred.
        reg: λ ≥ 0, ridge coefficient (λ = 0 needs non-separable data, or a ``bound``).
        bound: B > 0 for the constrained MLE ‖θ‖ ≤ B (Zhu, Jordan & Jiao 2023), or None.
        weights: optional per-comparison weights w_i ≥ 0 (bootstrap counts), shape (..., n).
        tol: stop when the Newton decrement gᵀH⁻¹g ≤ tol·max(1, loss) for every batch element
            (the default reaches the minimiser to machine precision: Newton converges
            quadratically, so this costs one or two iterations more than a loose tolerance).
        max_iter: Newton iterations at most (L-BFGS: max_iter·_LBFGS_ITER_FACTOR iterations).
        solver: "newton" (:func:`_newton`), "lbfgs" (:func:`_lbfgs`, no n·d² Hessian; same
            stopping rule, same θ̂) or "auto" (:func:`bt_solver`, by cost). With a ``bound``
            it is always Newton (the KKT root-finding needs the Hessian).

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
    tol = float(check_positive_float(tol, "tol"))  # tol = 0 would run to max_iter and blame reg
    check_choice(solver, "solver", BT_SOLVERS)
    theta0 = np.zeros(diffs.shape[:-2] + diffs.shape[-1:])
    if bound is None:
        if solver == "auto":
            solver = bt_solver(*diffs.shape[-2:])
        iterations = max_iter * (_LBFGS_ITER_FACTOR if solver == "lbfgs" else 1)
        theta, converged, _ = _MINIMISERS[solver](diffs, labels, reg, weights, theta0, tol=tol, max_iter=iterations)
        if not converged.all() or (reg == 0.0 and _separable(diffs, labels, weights, theta).any()):
            raise _not_converged(reg, iterations, solver)
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
