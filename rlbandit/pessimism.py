"""Pessimistic rewards and policies of offline RLHF (DESIGN §2; Xiong et al. ICML 2024, Options I
and II; Zhu, Jordan & Jiao 2023).

- Option II (pointwise): r̂(x,a) = φ(x,a)θ̂ − β‖φ(x,a) − ν(x)‖_{Σ_D⁻¹} (:func:`lcb_rewards`);
- Option I (policy level): π̂ = argmax_π E_x[φ(x,π)θ̂ − η KL(π‖π0)] − β‖E_x[φ(x,π) − ν(x)]‖_{Σ_D⁻¹}
  (:func:`lcb_policy`, objective :func:`pessimistic_objective`).

**Option I solver.** With −β‖u‖_{Σ⁻¹} = min_{‖w‖_Σ ≤ β} −⟨w, u⟩ and Sion's minimax theorem,

    max_π Ĵ(π) = min_{‖w‖_Σ ≤ β} g(w),   g(w) = Σ_x d0(x) η log Σ_a π0(a|x) e^{φ(x,a)(θ̂ − w)/η} + ⟨w, ν̄⟩,

ν̄ = Σ_x d0(x) ν(x), and the maximiser is the Gibbs policy π_w = O(φ(θ̂ − w), η, π0) of the saddle
point. g is smooth and convex in d dimensions (∇g = ν̄ − E_x φ(x,π_w), ∇²g = E_x Cov_{π_w}(φ)/η),
so the solver (``"dual"``) whitens w = β L⁻ᵀv (Σ = LLᵀ, ‖v‖ ≤ 1) and solves the trust-region
problem min_{‖v‖≤1} g exactly: damped Newton on g + (μ/2)‖v‖² for the multiplier μ, with μ found by
a safeguarded Newton iteration on the secular equation 1/‖v(μ)‖ = 1 (Moré & Sorensen 1983).
``"cvxpy"`` solves the primal concave program directly (small problems; the independent check).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import logsumexp

from rlbandit import geometry, kernels
from rlbandit._checks import as_float_array, check_choice, check_context_probs, check_eta, logprob_array, real_array
from rlbandit.geometry import cholesky
from rlbandit.kernels import normalize_logits

__all__ = ["LCBPolicySolution", "SOLVERS", "lcb_policy", "lcb_rewards", "pessimistic_objective", "uncertainty"]


# ---------------------------------------------------------------------------------------------
# Pointwise LCB (Option II)
# ---------------------------------------------------------------------------------------------

def uncertainty(features, nu, factor) -> np.ndarray:
    """‖φ(x,a) − ν(x)‖_{Σ⁻¹}, shape (..., X, K).

    Args:
        features: φ (..., X, K, d); nu: ν (..., X, d); factor: lower Cholesky L of Σ (..., d, d).
    """
    features, nu = _check_features_nu(features, nu)
    return geometry.mahalanobis_norm(features - nu[..., None, :], factor=factor)


def _check_features_nu(features, nu) -> tuple[np.ndarray, np.ndarray]:
    """φ (..., X, K, d) and ν (..., X, d): real, finite, non-empty, ν's trailing axes (X, d) those of φ."""
    features = real_array(features, "features", min_ndim=3)
    nu = real_array(nu, "nu", min_ndim=2)
    expected = features.shape[-3:-2] + features.shape[-1:]
    if nu.shape[-2:] != expected:
        raise ValueError(f"nu: expected shape (..., {expected[0]}, {expected[1]}) to match features of shape "
                         f"{features.shape}, got {nu.shape}")
    return features, nu


def _check_theta(theta, features: np.ndarray) -> np.ndarray:
    theta = real_array(theta, "theta", min_ndim=1)
    if theta.shape[-1] != features.shape[-1]:
        raise ValueError(f"theta: expected shape (..., {features.shape[-1]}) to match features of shape "
                         f"{features.shape}, got {theta.shape}")
    return theta


def _check_beta(beta) -> np.ndarray:
    beta = real_array(beta, "beta")
    if (beta < 0).any():
        raise ValueError(f"beta: must be finite and >= 0, got {beta}")
    return beta


def lcb_rewards(features, theta, factor, nu, beta) -> np.ndarray:
    """r̂(x,a) = φ(x,a)θ̂ − β‖φ(x,a) − ν(x)‖_{Σ⁻¹} (Option II), shape (..., X, K).

    ``beta`` is a float ≥ 0 or an array of shape batch (one β per problem).
    """
    beta = _check_beta(beta)
    features, nu = _check_features_nu(features, nu)
    rewards = np.einsum("...xkd,...d->...xk", features, _check_theta(theta, features))
    if not beta.any():
        return rewards
    return rewards - beta[..., None, None] * uncertainty(features, nu, factor)


# ---------------------------------------------------------------------------------------------
# Policy-level pessimism (Option I)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class LCBPolicySolution:
    """The saddle point of Option I: the policy (log-probs (..., X, K)), the adversarial shift w
    (..., d) with π = O(φ(θ̂ − w), η, π0), the primal value Ĵ(π) and the dual value g(w)."""

    logprobs: np.ndarray
    w: np.ndarray
    value: np.ndarray
    dual_value: np.ndarray


def pessimistic_objective(logprobs, features, theta, cov, nu, beta, ref_logprobs, eta, context_probs=None) -> np.ndarray:
    """Ĵ(π) = Σ_x d0[φ(x,π)θ̂ − η KL(π‖π0)] − β‖Σ_x d0 (φ(x,π) − ν(x))‖_{Σ⁻¹}, shape (...,)."""
    eta = check_eta(eta)
    features, nu = _check_features_nu(features, nu)
    theta, beta = _check_theta(theta, features), _check_beta(beta)
    logprobs = _check_policy(logprob_array(logprobs, "logprobs"), "logprobs", features)
    ref_logprobs = _check_policy(logprob_array(ref_logprobs, "ref_logprobs"), "ref_logprobs", features)
    probs = check_context_probs(context_probs, features.shape[-3])
    phi_pi = geometry.policy_features(logprobs, features)
    gain = np.einsum("...xd,...d->...x", phi_pi, theta) - eta * np.maximum(kernels.kl(logprobs, ref_logprobs), 0.0)
    u = geometry.context_average(phi_pi - nu, probs)
    norm = geometry.inverse_norm(u[..., None, :], cholesky(cov))[..., 0]
    return np.einsum("...x,...x->...", probs, gain) - np.asarray(beta) * norm


def _check_policy(logprobs: np.ndarray, name: str, features: np.ndarray) -> np.ndarray:
    if logprobs.shape[-2:] != features.shape[-3:-1]:
        raise ValueError(f"{name}: expected shape (..., {features.shape[-3]}, {features.shape[-2]}) to match "
                         f"features of shape {features.shape}, got {logprobs.shape}")
    return logprobs


class _Dual:
    """g in whitened coordinates, F(v) = g(βL⁻ᵀv), for a batch of problems."""

    def __init__(self, features, theta, factor, nu, beta, ref_logprobs, eta, probs):
        self.eta = eta
        self.beta = beta                                                     # (B,)
        self.probs = probs                                                   # (B, X)
        self.base = np.einsum("bxkd,bd->bxk", features, theta) / eta + ref_logprobs
        self.white = geometry.whiten(features, factor)  # G = L⁻¹φ (B, X, K, d)
        nu_bar = np.einsum("bx,bxd->bd", probs, nu)
        self.nu_white = geometry.whiten(nu_bar[:, None, :], factor)[:, 0, :]  # L⁻¹ν̄ (B, d)
        # Round-off floor of F (η·logsumexp of logits of this size): no decrease below it is meaningful.
        size = np.abs(np.where(np.isfinite(self.base), self.base, 0.0)).max(axis=(-2, -1))
        size = size + beta / eta * np.linalg.norm(self.white, axis=-1).max(axis=(-2, -1))
        self.floor = 64 * np.finfo(float).eps * eta * (1.0 + size)

    def policy(self, v):
        logits = self.base - (self.beta / self.eta)[:, None, None] * np.einsum("bxkd,bd->bxk", self.white, v)
        lse = logsumexp(logits, axis=-1)
        return logits - lse[..., None], lse

    def evaluate(self, v, mu, *, derivatives=True):
        logp, lse = self.policy(v)
        value = self.eta * np.einsum("bx,bx->b", self.probs, lse) + self.beta * np.einsum("bd,bd->b", self.nu_white, v)
        value = value + 0.5 * mu * np.einsum("bd,bd->b", v, v)
        if not derivatives:
            return value
        p = np.exp(logp)
        mean = np.einsum("bxk,bxkd->bxd", p, self.white)                     # G(x, π_v)
        grad = self.beta[:, None] * (self.nu_white - np.einsum("bx,bxd->bd", self.probs, mean)) + mu[:, None] * v
        second = np.matmul(np.swapaxes(self.white * p[..., None], -1, -2), self.white) - mean[..., :, None] * mean[..., None, :]
        hess = (self.beta**2 / self.eta)[:, None, None] * np.einsum("bx,bxde->bde", self.probs, second)
        hess = hess + mu[:, None, None] * np.eye(v.shape[-1])
        return value, grad, hess

    def newton(self, v, mu, *, tol=1e-15, max_iter=50):
        """argmin_v F(v) + (μ/2)‖v‖² by damped Newton, batched; returns (v, converged, H_μ at v).

        Stops per problem when the Newton decrement gᵀH⁻¹g ≤ tol·max(1, |F|) (the round-off floor
        of F) or when the Armijo search cannot decrease F any more.
        """
        d = v.shape[-1]
        eye = np.eye(d)
        value, grad, hess = self.evaluate(v, mu)
        done = np.zeros(v.shape[0], dtype=bool)
        for _ in range(max_iter):
            jitter = 1e-13 * (np.trace(hess, axis1=-2, axis2=-1) / d + 1.0)
            step = np.linalg.solve(hess + jitter[:, None, None] * eye, grad[..., None])[..., 0]
            # Cap ‖step‖ at the ball's radius: iterates far outside the unit ball are never needed
            # (a capped Newton step is still a descent direction).
            step /= np.maximum(1.0, np.linalg.norm(step, axis=-1))[:, None]
            decrement = np.einsum("bd,bd->b", grad, step)
            small = decrement <= np.maximum(tol * np.maximum(1.0, np.abs(value)), self.floor)
            # One last full step where the decrement is already tiny (quadratic convergence).
            v = np.where((small & ~done)[:, None], v - step, v)
            done |= small
            if done.all():
                break
            size = np.where(done, 0.0, 1.0)
            for _ in range(40):
                candidate = v - size[:, None] * step
                new_value = self.evaluate(candidate, mu, derivatives=False)
                ok = new_value <= value - 0.25 * size * decrement + self.floor
                if ok.all():
                    break
                size = np.where(ok, size, 0.5 * size)
            stalled = ~ok
            done |= stalled
            v = np.where(stalled[:, None], v, candidate)
            value, grad, hess = self.evaluate(v, mu)
        value, grad, hess = self.evaluate(v, mu)
        return v, done, hess


def _solve_dual(features, theta, cov, nu, beta, ref_logprobs, eta, probs):
    """Exact saddle point of Option I by the whitened trust-region dual (see the module docstring)."""
    factor = cholesky(cov)
    batch, d = theta.shape
    eye = np.eye(d)
    problem = _Dual(features, theta, factor, nu, beta, ref_logprobs, eta, probs)
    active = beta > 0
    v = np.zeros((batch, d))
    if active.any():
        # min_{‖v‖≤1} F(v): ∇F(v) + μv = 0, μ ≥ 0, μ(‖v‖ − 1) = 0. Since ‖∇F‖ ≤ β‖L⁻¹‖(‖ν̄‖ + max‖φ‖),
        # μ_hi = that bound gives ‖v(μ_hi)‖ ≤ 1; a safeguarded Newton iteration on the secular
        # equation 1/‖v(μ)‖ = 1 (d‖v‖/dμ = −vᵀH_μ⁻¹v/‖v‖) finds μ; μ → 0 with ‖v‖ < 1 is the interior case.
        inv_norm = 1.0 / np.sqrt(np.linalg.eigvalsh(cov)[:, 0])                 # ‖L⁻¹‖₂ = λ_min(Σ)^(-1/2)
        scale = np.linalg.norm(features, axis=-1).max(axis=(-2, -1)) + np.linalg.norm(np.einsum("bx,bxd->bd", probs, nu), axis=-1)
        hi = np.where(active, beta * inv_norm * scale * (1 + 1e-6) + 1e-300, 1.0)
        floor = 1e-13 * hi
        lo = np.zeros(batch)
        mu = hi.copy()
        for _ in range(100):
            v, _, hess = problem.newton(v, mu)
            norm = np.linalg.norm(v, axis=-1)
            on_sphere = np.abs(norm - 1.0) <= 1e-10
            interior = (norm < 1.0) & (mu <= floor)
            finished = ~active | on_sphere | interior | (hi - lo <= 1e-14 * hi)
            if finished.all():
                break
            too_small = norm > 1.0                       # μ too small: the ball is violated
            lo = np.where(too_small, mu, lo)
            hi = np.where(too_small, hi, mu)
            jitter = 1e-13 * (np.trace(hess, axis1=-2, axis2=-1) / d + 1.0)
            hv = np.linalg.solve(hess + jitter[:, None, None] * eye, v[..., None])[..., 0]
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                slope = np.einsum("bd,bd->b", v, hv) / np.maximum(norm, 1e-300) ** 3
                proposal = mu - (1.0 / np.maximum(norm, 1e-300) - 1.0) / slope
            bisect = np.where(lo > 0, np.sqrt(lo * hi), 1e-2 * hi)   # no lower bracket yet: shrink fast
            good = np.isfinite(proposal) & (proposal > lo) & (proposal < hi)
            mu = np.where(finished, mu, np.maximum(np.where(good, proposal, bisect), np.where(lo > 0, 0.0, floor)))
        # Interior solutions: μ = 0 exactly (Newton from the near-interior point).
        interior = active & (np.linalg.norm(v, axis=-1) < 1.0 - 1e-10)
        if interior.any():
            v0, _, _ = problem.newton(v, np.zeros(batch))
            accept = interior & (np.linalg.norm(v0, axis=-1) <= 1.0) & np.isfinite(v0).all(axis=-1)
            v = np.where(accept[:, None], v0, v)
    v = np.where(active[:, None], v, 0.0)
    logp, lse = problem.policy(v)
    dual_value = eta * np.einsum("bx,bx->b", probs, lse) + beta * np.einsum("bd,bd->b", problem.nu_white, v)
    w = np.linalg.solve(np.swapaxes(factor, -1, -2), v[..., None])[..., 0] * beta[:, None]     # w = βL⁻ᵀv
    return logp, w, dual_value


def _solve_cvxpy(features, theta, cov, nu, beta, ref_logprobs, eta, probs):
    """The primal concave program solved by cvxpy (CLARABEL), one problem at a time."""
    import cvxpy as cp

    batch, n_contexts, n_actions, _ = features.shape
    out = np.full((batch, n_contexts, n_actions), -np.inf)
    for b in range(batch):
        factor = cholesky(cov[b])
        white = geometry.whiten(features[b], factor)  # (X, K, d)
        nu_white = geometry.whiten(np.einsum("x,xd->d", probs[b], nu[b])[None, :], factor)[0]
        rewards = features[b] @ theta[b]
        support = np.isfinite(ref_logprobs[b])
        p = cp.Variable((n_contexts, n_actions), nonneg=True)
        ref = np.where(support, np.exp(ref_logprobs[b]), 1.0)
        gain = 0
        mean = -nu_white
        for x in range(n_contexts):
            gain = gain + probs[b, x] * (p[x] @ rewards[x] - eta * cp.sum(cp.rel_entr(p[x], ref[x])))
            mean = mean + probs[b, x] * (white[x].T @ p[x])
        constraints = [cp.sum(p, axis=1) == 1]
        if (~support).any():
            constraints.append(p[~support] == 0)
        program = cp.Problem(cp.Maximize(gain - beta[b] * cp.norm(mean, 2)), constraints)
        try:
            program.solve(solver=cp.CLARABEL)
        except cp.SolverError:
            # CLARABEL occasionally stalls on large, peaked (small η) instances; SCS is slower but robust.
            program.solve(solver=cp.SCS, eps=1e-8, max_iters=20_000)
        if p.value is None:
            raise ValueError("solver: cvxpy did not return a solution")
        value = np.where(support, np.maximum(p.value, 0.0), 0.0)
        with np.errstate(divide="ignore"):
            out[b] = normalize_logits(np.log(value))
    return out, None, None


def _broadcast(array: np.ndarray, shape: tuple, name: str) -> np.ndarray:
    try:
        return np.broadcast_to(array, shape)
    except ValueError:
        raise ValueError(f"{name}: shape {array.shape} does not broadcast to {shape} (the batch of features)") from None


#: Option I solvers ``(features, theta, cov, nu, beta, ref_logprobs, eta, context_probs)`` on a flat batch
#: → (log-probs, w or None, dual value or None).
SOLVERS: dict[str, Callable] = {"dual": _solve_dual, "cvxpy": _solve_cvxpy}


def lcb_policy(features, theta, cov, nu, beta, ref_logprobs, eta, context_probs=None, solver: str = "dual") -> LCBPolicySolution:
    """Option I: argmax_π Σ_x d0[φ(x,π)θ̂ − η KL(π‖π0)] − β‖Σ_x d0(φ(x,π) − ν(x))‖_{Σ⁻¹}.

    Args:
        features: φ (..., X, K, d); theta: θ̂ (..., d); cov: Σ_D (..., d, d), positive definite;
        nu: ν (..., X, d); beta: β ≥ 0, float or shape batch; ref_logprobs: log π0 (..., X, K);
        eta: η > 0; context_probs: d0 (X,) or (..., X), uniform when None;
        solver: a key of :data:`SOLVERS` (``"dual"`` exact and fast; ``"cvxpy"`` for checking).

    Returns:
        :class:`LCBPolicySolution`; β = 0 returns exactly O(φθ̂, η, π0).
    """
    check_choice(solver, "solver", SOLVERS)
    eta = check_eta(eta)
    features, nu = _check_features_nu(features, nu)
    batch = features.shape[:-3]
    n_contexts, n_actions, d = features.shape[-3:]
    theta = _broadcast(_check_theta(theta, features), batch + (d,), "theta")
    geometry.cholesky(cov)  # validates Σ (square, finite, symmetric, positive definite), naming cov
    cov = _broadcast(as_float_array(cov, "cov"), batch + (d, d), "cov")
    nu = _broadcast(nu, batch + (n_contexts, d), "nu")
    ref = _check_policy(logprob_array(ref_logprobs, "ref_logprobs"), "ref_logprobs", features)
    ref = _broadcast(ref, batch + (n_contexts, n_actions), "ref_logprobs")
    beta = _broadcast(_check_beta(beta), batch, "beta")
    probs = np.broadcast_to(check_context_probs(context_probs, n_contexts), batch + (n_contexts,))
    def flat(array):  # leading batch axes → one axis, as the solvers expect
        return np.ascontiguousarray(array).reshape((-1,) + array.shape[len(batch):])

    args = [flat(a) for a in (features, theta, cov, nu)] + [beta.reshape(-1), flat(ref), eta, flat(probs)]
    if not beta.any():
        logp = kernels.gibbs(np.einsum("...xkd,...d->...xk", features, theta), ref, eta)
        w = np.zeros(batch + (d,))
    else:
        logp, w, _ = SOLVERS[solver](*args)
        logp = logp.reshape(batch + (n_contexts, n_actions))
        w = None if w is None else w.reshape(batch + (d,))
    value = pessimistic_objective(logp, features, theta, cov, nu, beta, ref, eta, probs)
    dual = None
    if w is not None:
        rewards = np.einsum("...xkd,...d->...xk", features, theta - w)
        lse = eta * logsumexp(rewards / eta + ref, axis=-1)
        dual = np.einsum("...x,...x->...", probs, lse) + np.einsum("...d,...d->...", w, np.einsum("...x,...xd->...d", probs, nu))
    return LCBPolicySolution(logp, w, value, dual)
