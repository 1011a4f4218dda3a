"""Offline KL-regularised RLHF with pessimism (DESIGN §2; Xiong et al. ICML 2024; Zhu, Jordan & Jiao 2023).

From a fixed preference dataset D, fit the Bradley–Terry MLE θ̂ and the covariance
Σ_D = λI + Σ_i z_i z_iᵀ (z_i = φ(x_i,a¹_i) − φ(x_i,a²_i)), then return a policy as log-probs (..., X, K):

- ``mle``: O(φθ̂, η, π0) — plain MLE followed by the Gibbs oracle;
- ``lcb`` (pointwise pessimism, Xiong et al. Option II):
  r̂(x,a) = φ(x,a)θ̂ − β‖φ(x,a) − ν(x)‖_{Σ_D⁻¹}, policy O(r̂, η, π0);
- ``lcb_policy`` (policy-level pessimism, Xiong et al. Option I / Zhu et al. pessimistic MLE):
  π̂ = argmax_π E_x[φ(x,π)θ̂ − η KL(π‖π0)] − β‖E_x[φ(x,π) − ν(x)]‖_{Σ_D⁻¹}, solved exactly;
- ``ensemble_min`` / ``ensemble_mean_std``: k reward models (bootstrap resamples and/or several
  ridge coefficients), rewards centred at ν and aggregated as min_k r_k or mean_k r_k − c·std_k r_k
  (Coste et al. 2023, "worst-case" and "uncertainty-weighted" optimisation), then Gibbs.

The reference ν(x) is ``"ref"`` = φ(x,π0) (default), ``"zero"``, or φ(x,π) of a given policy
(pass its log-probs). Because O(r + c(x)) = O(r), ν only matters through the bonus.

**Option I solver.** With −β‖u‖_{Σ⁻¹} = min_{‖w‖_Σ ≤ β} −⟨w, u⟩ and Sion's minimax theorem,

    max_π Ĵ(π) = min_{‖w‖_Σ ≤ β} g(w),   g(w) = Σ_x d0(x) η log Σ_a π0(a|x) e^{φ(x,a)(θ̂ − w)/η} + ⟨w, ν̄⟩,

ν̄ = Σ_x d0(x) ν(x), and the maximiser is the Gibbs policy π_w = O(φ(θ̂ − w), η, π0) of the saddle
point. g is smooth and convex in d dimensions (∇g = ν̄ − E_x φ(x,π_w), ∇²g = E_x Cov_{π_w}(φ)/η),
so the solver (``"dual"``) whitens w = β L⁻ᵀv (Σ = LLᵀ, ‖v‖ ≤ 1) and solves the trust-region
problem min_{‖v‖≤1} g exactly: damped Newton on g + (μ/2)‖v‖² for the multiplier μ, with μ found by
a safeguarded Newton iteration on the secular equation 1/‖v(μ)‖ = 1 (Moré & Sorensen 1983).
``"cvxpy"`` solves the primal concave program directly (small problems; the independent check).

**β.** Either a number, or ``"theory"``: the radius of the confidence set {θ : ‖θ − θ̂‖_{Σ_D} ≤ β}
that holds with probability ≥ 1 − δ, see :func:`theory_beta` (rules ``"self_normalized"`` — explicit
constants, Abbasi-Yadkori et al. 2011 Thm 1 with the curvature argument of Zhu et al. 2023 Lemma 3.1 —
and ``"zhu2023"``, Zhu et al.'s Lemma 3.1 rate with its unspecified constant set to 1).

**Guarantee** (reproduced by :func:`diagnostics`): on the event ‖θ̂ − θ*‖_{Σ_D} ≤ β,
SubOpt(π̂_I) ≤ 2β‖E_x[φ(x,π*) − ν(x)]‖_{Σ_D⁻¹} ≤ 2β E_x‖φ(x,π*) − ν(x)‖_{Σ_D⁻¹} and
SubOpt(π̂_II) ≤ 2β E_x E_{a∼π*}‖φ(x,a) − ν(x)‖_{Σ_D⁻¹}.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

import numpy as np
from scipy.special import logsumexp

from rlbandit import geometry, kernels, radii
from rlbandit._checks import (
    as_float_array,
    check_choice,
    check_eta,
    check_int,
    check_logprobs,
    check_positive_float,
)
from rlbandit.oracle import normalize_logits
from rlbandit.preferences import PreferenceData
from rlbandit.problem import LinearBandit
from rlbandit.reward import cholesky, covariance, fit_bt

__all__ = [
    "learn", "METHODS", "MLEOptions", "LCBOptions", "LCBPolicyOptions", "EnsembleOptions",
    "EnsembleMeanStdOptions", "RewardModel", "fit_reward", "reference_features", "REFERENCES",
    "uncertainty", "lcb_rewards", "lcb_policy", "LCBPolicySolution", "pessimistic_objective",
    "SOLVERS", "theory_beta", "BETA_RULES", "bootstrap_weights", "fit_ensemble", "ensemble_rewards",
    "AGGREGATORS", "Method", "make_options", "Diagnostics", "diagnostics", "coverage_coefficient", "DESIGNS",
    "behaviour_policies", "sample_offline_data",
]


# ---------------------------------------------------------------------------------------------
# Reward model and reference features
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class RewardModel:
    """θ̂ (..., d), Σ_D (..., d, d), its lower Cholesky factor, λ and n."""

    theta: np.ndarray
    cov: np.ndarray
    factor: np.ndarray
    reg: float
    n: int


def _check_pair(problem, data):
    if not isinstance(problem, LinearBandit):
        raise ValueError(f"problem: expected a LinearBandit, got {type(problem).__name__}")
    if not isinstance(data, PreferenceData):
        raise ValueError(f"data: expected a PreferenceData, got {type(data).__name__}")
    if data.batch_shape != problem.batch_shape:
        raise ValueError(f"data: batch shape {data.batch_shape} differs from the problem's {problem.batch_shape}")
    if data.n == 0:
        raise ValueError("data: the dataset is empty (n = 0 comparisons)")
    if data.contexts.max() >= problem.n_contexts:
        raise ValueError(f"data: context index out of range for X = {problem.n_contexts}")
    if max(data.actions1.max(), data.actions2.max()) >= problem.n_actions:
        raise ValueError(f"data: action index out of range for K = {problem.n_actions}")


def fit_reward(problem: LinearBandit, data: PreferenceData, reg: float = 1.0, bound=None) -> RewardModel:
    """θ̂ = BT MLE (ridge λ, optional ‖θ‖ ≤ B) and Σ_D = λI + Σ_i z_i z_iᵀ on ``problem``'s features."""
    _check_pair(problem, data)
    reg = _positive(reg, "reg")
    diffs = problem.diffs(data)
    theta = fit_bt(diffs, data.labels, reg, bound=bound)
    cov = covariance(diffs, reg)
    return RewardModel(theta, cov, cholesky(cov), reg, data.n)


def _reference_ref(problem: LinearBandit) -> np.ndarray:
    return problem.policy_features(problem.ref_logprobs)


def _reference_zero(problem: LinearBandit) -> np.ndarray:
    return np.zeros(problem.batch_shape + (problem.n_contexts, problem.dim))


#: Named references ν(x): ``"ref"`` = φ(x,π0), ``"zero"`` = 0. A log-prob array means φ(x,π).
REFERENCES: dict[str, Callable[[LinearBandit], np.ndarray]] = {"ref": _reference_ref, "zero": _reference_zero}


def reference_features(problem: LinearBandit, reference="ref") -> np.ndarray:
    """ν(x), shape batch_shape + (X, d): a key of :data:`REFERENCES` or φ(x,π) for log-probs π (..., X, K)."""
    if isinstance(reference, str):
        if reference not in REFERENCES:
            raise ValueError(f"reference: unknown reference {reference!r}; choose one of {sorted(REFERENCES)} or pass log-probs")
        return REFERENCES[reference](problem)
    lp = as_float_array(reference, "reference", min_ndim=2)
    if lp.shape[-2:] != (problem.n_contexts, problem.n_actions):
        raise ValueError(f"reference: expected log-probs of shape (..., {problem.n_contexts}, {problem.n_actions}), got {lp.shape}")
    check_logprobs(lp, "reference")
    return np.broadcast_to(problem.policy_features(lp), problem.batch_shape + (problem.n_contexts, problem.dim)).copy()


# ---------------------------------------------------------------------------------------------
# Pointwise LCB (Option II)
# ---------------------------------------------------------------------------------------------

def uncertainty(features, nu, factor) -> np.ndarray:
    """‖φ(x,a) − ν(x)‖_{Σ⁻¹}, shape (..., X, K).

    Args:
        features: φ (..., X, K, d); nu: ν (..., X, d); factor: lower Cholesky L of Σ (..., d, d).
    """
    gap = np.asarray(features, dtype=np.float64) - np.asarray(nu, dtype=np.float64)[..., None, :]
    return geometry.inverse_norm(gap, np.asarray(factor, dtype=np.float64))


def lcb_rewards(features, theta, factor, nu, beta) -> np.ndarray:
    """r̂(x,a) = φ(x,a)θ̂ − β‖φ(x,a) − ν(x)‖_{Σ⁻¹} (Option II), shape (..., X, K).

    ``beta`` is a float ≥ 0 or an array of shape batch (one β per problem).
    """
    beta = np.asarray(beta, dtype=np.float64)
    if (beta < 0).any() or not np.isfinite(beta).all():
        raise ValueError(f"beta: must be finite and >= 0, got {beta}")
    rewards = np.einsum("...xkd,...d->...xk", features, theta)
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
    logprobs = np.asarray(logprobs, dtype=np.float64)
    eta = check_eta(eta)
    probs = _context_weights(context_probs, np.shape(features)[-3])
    phi_pi = geometry.policy_features(logprobs, features)
    gain = np.einsum("...xd,...d->...x", phi_pi, theta) - eta * np.maximum(kernels.kl(logprobs, ref_logprobs), 0.0)
    u = geometry.context_average(phi_pi - nu, probs)
    norm = geometry.inverse_norm(u[..., None, :], cholesky(cov))[..., 0]
    return np.einsum("...x,...x->...", probs, gain) - np.asarray(beta) * norm


def _context_weights(context_probs, n_contexts):
    if context_probs is None:
        return np.full(n_contexts, 1.0 / n_contexts)
    return np.asarray(context_probs, dtype=np.float64)


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
    features = as_float_array(features, "features", min_ndim=3)
    batch = features.shape[:-3]
    n_contexts, n_actions, d = features.shape[-3:]
    theta = np.broadcast_to(as_float_array(theta, "theta"), batch + (d,))
    cov = np.broadcast_to(as_float_array(cov, "cov"), batch + (d, d))
    nu = np.broadcast_to(as_float_array(nu, "nu"), batch + (n_contexts, d))
    ref = np.broadcast_to(as_float_array(ref_logprobs, "ref_logprobs"), batch + (n_contexts, n_actions))
    beta = np.broadcast_to(as_float_array(beta, "beta"), batch)
    if (beta < 0).any() or not np.isfinite(beta).all():
        raise ValueError(f"beta: must be finite and >= 0, got {beta}")
    probs = np.broadcast_to(_context_weights(context_probs, n_contexts), batch + (n_contexts,))
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


# ---------------------------------------------------------------------------------------------
# β from theory
# ---------------------------------------------------------------------------------------------

def _beta_zhu2023(diffs, reg, theta_bound, delta, theta_hat):
    return np.full(diffs.shape[:-2], radii.zhu2023_radius(diffs.shape[-1], reg, theta_bound, delta))


#: Offline β rules ``(diffs, reg, theta_bound, delta, theta_hat) -> β (...,)``, named as in
#: :data:`rlbandit.radii.RADII` (where each is derived, with the curvature convention).
BETA_RULES: dict[str, Callable] = {"self_normalized": radii.self_normalized_radius, "zhu2023": _beta_zhu2023}


def theory_beta(diffs, reg: float, theta_bound: float, delta: float = 0.1, theta_hat=None, rule: str = "self_normalized") -> np.ndarray:
    """The confidence radius β(δ) with P(‖θ̂ − θ*‖_{Σ_D} ≤ β) ≥ 1 − δ when ‖θ*‖ ≤ B; shape diffs.shape[:-2].

    Args:
        diffs: z (..., n, d); reg: λ > 0; theta_bound: B ≥ ‖θ*‖; delta: δ in (0, 1);
        theta_hat: the fitted θ̂ (..., d) (the ``self_normalized`` rule needs it); rule: a key of
        :data:`BETA_RULES`.
    """
    check_choice(rule, "rule", BETA_RULES, kind="β rule")
    diffs = as_float_array(diffs, "diffs", min_ndim=2)
    reg = _positive(reg, "reg")
    theta_bound = _positive(theta_bound, "theta_bound")
    if not (0.0 < float(delta) < 1.0):
        raise ValueError(f"delta: must be in (0, 1), got {delta}")
    if theta_hat is None:
        theta_hat = np.zeros(diffs.shape[:-2] + diffs.shape[-1:])
    return BETA_RULES[rule](diffs, reg, theta_bound, float(delta), np.asarray(theta_hat, dtype=np.float64))


# ---------------------------------------------------------------------------------------------
# Ensembles
# ---------------------------------------------------------------------------------------------

def bootstrap_weights(n: int, n_models: int, batch_shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Multinomial bootstrap counts: each member resamples the n comparisons with replacement;
    shape batch_shape + (n_models, n), every row sums to n."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=tuple(batch_shape) + (n_models,)).astype(np.float64)


def fit_ensemble(problem: LinearBandit, data: PreferenceData, n_models: int, rng: np.random.Generator | None,
                 regs=(1.0,), bootstrap: bool = True) -> np.ndarray:
    """θ_k for k = 1..n_models, shape batch_shape + (n_models, d).

    Member k uses ridge λ_k = regs[k mod len(regs)] and, with ``bootstrap``, its own multinomial
    resample of D (as per-comparison weights of :func:`rlbandit.reward.fit_bt`).
    """
    _check_pair(problem, data)
    regs = tuple(_positive(r, "regs") for r in regs)
    if not regs:
        raise ValueError("regs: need at least one ridge coefficient")
    diffs = problem.diffs(data)
    batch = problem.batch_shape
    n, d = diffs.shape[-2:]
    if bootstrap:
        if not isinstance(rng, np.random.Generator):
            raise ValueError("rng: a bootstrap ensemble needs a numpy.random.Generator")
        weights = bootstrap_weights(n, n_models, batch, rng)
    else:
        weights = np.ones(batch + (n_models, n))
    member_regs = np.array([regs[k % len(regs)] for k in range(n_models)])
    thetas = np.empty(batch + (n_models, d))
    for reg in np.unique(member_regs):
        idx = np.flatnonzero(member_regs == reg)
        z = np.broadcast_to(diffs[..., None, :, :], batch + (idx.size, n, d))
        y = np.broadcast_to(data.labels[..., None, :], batch + (idx.size, n))
        thetas[..., idx, :] = fit_bt(z, y, float(reg), weights=weights[..., idx, :])
    return thetas


def ensemble_rewards(features, thetas, nu) -> np.ndarray:
    """Member rewards centred at the reference, r_k(x,a) = (φ(x,a) − ν(x))θ_k, shape (..., k, X, K)."""
    gap = np.asarray(features)[..., None, :, :, :] - np.asarray(nu)[..., None, :, None, :]
    return np.einsum("...mxkd,...md->...mxk", np.broadcast_to(gap, gap.shape[:-4] + (thetas.shape[-2],) + gap.shape[-3:]), thetas)


def _aggregate_min(rewards, c):
    return rewards.min(axis=-3)


def _aggregate_mean_std(rewards, c):
    ddof = 1 if rewards.shape[-3] > 1 else 0
    return rewards.mean(axis=-3) - c * rewards.std(axis=-3, ddof=ddof)


#: Ensemble aggregators ``(rewards (..., k, X, K), c) -> (..., X, K)``.
AGGREGATORS: dict[str, Callable] = {"min": _aggregate_min, "mean_std": _aggregate_mean_std}


# ---------------------------------------------------------------------------------------------
# Options and the public entry point
# ---------------------------------------------------------------------------------------------

def _positive(value, name, *, allow_zero=False):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a float, got {value!r}") from None
    return check_positive_float(value, name, allow_zero=allow_zero)


def _check_reference(reference):
    if isinstance(reference, str):
        if reference not in REFERENCES:
            raise ValueError(f"reference: unknown reference {reference!r}; choose one of {sorted(REFERENCES)} or pass log-probs")
    elif not isinstance(reference, np.ndarray):
        raise ValueError(f"reference: expected a name in {sorted(REFERENCES)} or a log-prob array, got {type(reference).__name__}")


@dataclass(frozen=True)
class MLEOptions:
    """reg: ridge λ > 0; bound: optional ‖θ‖ ≤ B for the constrained MLE."""

    reg: float = 1.0
    bound: float | None = None

    def __post_init__(self):
        _positive(self.reg, "reg")
        if self.bound is not None:
            _positive(self.bound, "bound")


@dataclass(frozen=True, eq=False)
class LCBOptions(MLEOptions):
    """beta: β ≥ 0 or ``"theory"`` (:func:`theory_beta` with ``beta_rule``, ``theta_bound`` B ≥ ‖θ*‖
    and ``delta``); reference: ν (``"ref"``, ``"zero"`` or log-probs of a policy)."""

    beta: float | str = 1.0
    reference: str | np.ndarray = "ref"
    theta_bound: float | None = None
    delta: float = 0.1
    beta_rule: str = "self_normalized"

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.beta, str):
            if self.beta != "theory":
                raise ValueError(f"beta: expected a float >= 0 or 'theory', got {self.beta!r}")
            if self.theta_bound is None:
                raise ValueError("theta_bound: beta='theory' needs the norm bound B >= ‖θ*‖")
        else:
            _positive(self.beta, "beta", allow_zero=True)
        if self.theta_bound is not None:
            _positive(self.theta_bound, "theta_bound")
        if not (0.0 < float(self.delta) < 1.0):
            raise ValueError(f"delta: must be in (0, 1), got {self.delta}")
        check_choice(self.beta_rule, "beta_rule", BETA_RULES, kind="rule")
        _check_reference(self.reference)


@dataclass(frozen=True, eq=False)
class LCBPolicyOptions(LCBOptions):
    """LCBOptions plus solver: a key of :data:`SOLVERS`."""

    solver: str = "dual"

    def __post_init__(self):
        super().__post_init__()
        check_choice(self.solver, "solver", SOLVERS)


@dataclass(frozen=True, eq=False)
class EnsembleOptions:
    """n_models: k ≥ 1 (≥ 2 for mean−c·std); regs: ridge per member (cycled), default (reg,);
    reg: λ when regs is empty; bootstrap: resample D per member; reference: ν for centring."""

    n_models: int = 5
    reg: float = 1.0
    regs: tuple = ()
    bootstrap: bool = True
    reference: str | np.ndarray = "ref"

    def __post_init__(self):
        check_int(self.n_models, "n_models")
        _positive(self.reg, "reg")
        for r in tuple(self.regs):
            _positive(r, "regs")
        if not isinstance(self.bootstrap, bool):
            raise ValueError(f"bootstrap: expected a bool, got {self.bootstrap!r}")
        if not self.bootstrap and len(set(self.regs)) <= 1 and self.n_models > 1:
            raise ValueError("bootstrap: without bootstrap, members differ only through regs; give several regs")
        _check_reference(self.reference)

    @property
    def member_regs(self) -> tuple:
        return tuple(self.regs) if self.regs else (self.reg,)


@dataclass(frozen=True, eq=False)
class EnsembleMeanStdOptions(EnsembleOptions):
    """EnsembleOptions plus c ≥ 0, the weight of the member standard deviation."""

    c: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        _positive(self.c, "c", allow_zero=True)
        if self.n_models < 2:
            raise ValueError(f"n_models: mean − c·std needs at least 2 members, got {self.n_models}")


def _resolve_beta(problem, data, model, options) -> np.ndarray:
    if isinstance(options.beta, str):
        return theory_beta(problem.diffs(data), options.reg, options.theta_bound, options.delta, model.theta, options.beta_rule)
    return np.full(problem.batch_shape, float(options.beta))


def _learn_mle(problem, data, eta, options, rng):
    model = fit_reward(problem, data, options.reg, options.bound)
    return kernels.gibbs(np.einsum("...xkd,...d->...xk", problem.features, model.theta), problem.ref_logprobs, eta)


def _learn_lcb(problem, data, eta, options, rng):
    model = fit_reward(problem, data, options.reg, options.bound)
    nu = reference_features(problem, options.reference)
    rewards = lcb_rewards(problem.features, model.theta, model.factor, nu, _resolve_beta(problem, data, model, options))
    return kernels.gibbs(rewards, problem.ref_logprobs, eta)


def _learn_lcb_policy(problem, data, eta, options, rng):
    model = fit_reward(problem, data, options.reg, options.bound)
    nu = reference_features(problem, options.reference)
    beta = _resolve_beta(problem, data, model, options)
    return lcb_policy(problem.features, model.theta, model.cov, nu, beta, problem.ref_logprobs, eta,
                      problem.context_probs, options.solver).logprobs


def _ensemble(aggregator):
    def learn_ensemble(problem, data, eta, options, rng):
        thetas = fit_ensemble(problem, data, options.n_models, rng, options.member_regs, options.bootstrap)
        rewards = ensemble_rewards(problem.features, thetas, reference_features(problem, options.reference))
        return kernels.gibbs(AGGREGATORS[aggregator](rewards, getattr(options, "c", 0.0)), problem.ref_logprobs, eta)

    return learn_ensemble


@dataclass(frozen=True)
class Method:
    """A registered offline method: its options dataclass and ``(problem, data, eta, options, rng) -> log-probs``."""

    options: type
    fit: Callable


#: Offline methods by name.
METHODS: dict[str, Method] = {
    "mle": Method(MLEOptions, _learn_mle),
    "lcb": Method(LCBOptions, _learn_lcb),
    "lcb_policy": Method(LCBPolicyOptions, _learn_lcb_policy),
    "ensemble_min": Method(EnsembleOptions, _ensemble("min")),
    "ensemble_mean_std": Method(EnsembleMeanStdOptions, _ensemble("mean_std")),
}


def make_options(method: str, **options):
    """The validated options dataclass of ``method`` (unknown option → ValueError naming it)."""
    check_choice(method, "method", METHODS)
    cls = METHODS[method].options
    known = {f.name for f in fields(cls)}
    for name in options:
        if name not in known:
            raise ValueError(f"{name}: not an option of method {method!r}; its options are {sorted(known)}")
    return cls(**options)


def learn(problem: LinearBandit, data: PreferenceData, eta, method: str = "mle", rng: np.random.Generator | None = None,
          **options) -> np.ndarray:
    """Learn a policy offline from preference data.

    Args:
        problem: the bandit (features, π0, d0; θ* is never read); batched problems (..., X, K, d)
            need data with the same batch shape.
        data: the comparisons D.
        eta: η > 0.
        method: a key of :data:`METHODS` (``mle``, ``lcb``, ``lcb_policy``, ``ensemble_min``,
            ``ensemble_mean_std``).
        rng: the generator for the bootstrap of the ensembles (required there, unused elsewhere).
        **options: fields of the method's options dataclass (e.g. ``beta``, ``reference``, ``reg``,
            ``n_models``, ``c``); an unknown name raises ValueError naming it.

    Returns:
        log-probs of the learned policy, shape batch_shape + (X, K).
    """
    eta = check_eta(eta)
    opts = make_options(method, **options)
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    _check_pair(problem, data)
    return METHODS[method].fit(problem, data, eta, opts, rng)


# ---------------------------------------------------------------------------------------------
# Diagnostics: coverage and the theory's bound
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Diagnostics:
    """Per-problem diagnostics (arrays of shape batch_shape).

    Attributes:
        beta: the β used in the bounds.
        width: ‖θ̂ − θ*‖_{Σ_D}, the smallest β for which the confidence event holds.
        covered: width ≤ β (the event under which the bounds are theorems).
        coverage: √n ‖E_x[φ(x,π*) − φ(x,π0)]‖_{Σ_D⁻¹} (= ‖·‖ in (Σ_D/n)⁻¹): the coverage coefficient
            of the data for (π*, π0); bounded in n under good coverage, ∝ √n along unexplored directions.
        coverage_pointwise: √n E_x E_{a∼π*}‖φ(x,a) − φ(x,π0)‖_{Σ_D⁻¹}.
        bound_policy: 2β‖E_x[φ(x,π*) − ν(x)]‖_{Σ_D⁻¹} (Option I's bound).
        bound: 2β E_x‖φ(x,π*) − ν(x)‖_{Σ_D⁻¹} (the bound as usually stated; ≥ bound_policy).
        bound_pointwise: 2β E_x E_{a∼π*}‖φ(x,a) − ν(x)‖_{Σ_D⁻¹} (Option II's bound).
    """

    beta: np.ndarray
    width: np.ndarray
    covered: np.ndarray
    coverage: np.ndarray
    coverage_pointwise: np.ndarray
    bound_policy: np.ndarray
    bound: np.ndarray
    bound_pointwise: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def coverage_coefficient(problem: LinearBandit, cov, eta, n: int, policy=None) -> np.ndarray:
    """√n ‖E_x[φ(x,π) − φ(x,π0)]‖_{Σ⁻¹} for π = π* (default) or the given log-probs; shape batch."""
    eta = check_eta(eta)
    factor = cholesky(cov)
    target = problem.optimal_policy(eta) if policy is None else policy
    gap = problem.policy_features(target) - problem.policy_features(problem.ref_logprobs)
    mean = geometry.context_average(gap, problem.context_probs)
    return np.sqrt(n) * geometry.inverse_norm(mean[..., None, :], factor)[..., 0]


def diagnostics(problem: LinearBandit, data: PreferenceData, eta, beta, reference="ref", reg: float = 1.0,
                bound=None, model: RewardModel | None = None) -> Diagnostics:
    """Coverage of D for (π*, π0), the confidence width, and the theory's bounds with this β.

    ``beta`` is a float or an array of shape batch (e.g. from :func:`theory_beta`). The bounds are
    upper bounds on SubOpt(π̂) of ``lcb_policy`` / ``lcb`` with the same β, ν, λ whenever ``covered``.
    ``model`` reuses a :func:`fit_reward` result of the same data (then ``reg`` and ``bound`` are its own).
    """
    eta = check_eta(eta)
    if model is None:
        model = fit_reward(problem, data, reg, bound)
    elif not isinstance(model, RewardModel) or model.theta.shape != problem.theta.shape:
        raise ValueError("model: expected a RewardModel fitted on this problem's data")
    beta = np.broadcast_to(np.asarray(beta, dtype=np.float64), problem.batch_shape)
    probs = np.broadcast_to(problem.context_probs, problem.batch_shape + (problem.n_contexts,))
    star = problem.optimal_policy(eta)
    nu = reference_features(problem, reference)
    phi_star = problem.policy_features(star)
    phi_ref = problem.policy_features(problem.ref_logprobs)
    error = model.theta - problem.theta
    width = np.linalg.norm(np.einsum("...dk,...d->...k", model.factor, error), axis=-1)   # ‖Lᵀ(θ̂ − θ*)‖ = ‖θ̂ − θ*‖_Σ
    mean_gap = geometry.context_average(phi_star - nu, probs)
    mean_ref_gap = geometry.context_average(phi_star - phi_ref, probs)
    per_context = geometry.inverse_norm(phi_star - nu, model.factor)
    pointwise = np.einsum("...xk,...xk->...x", np.exp(star), uncertainty(problem.features, nu, model.factor))
    pointwise_ref = np.einsum("...xk,...xk->...x", np.exp(star), uncertainty(problem.features, phi_ref, model.factor))
    sqrt_n = np.sqrt(model.n)
    return Diagnostics(
        beta=beta.copy(),
        width=width,
        covered=width <= beta,
        coverage=sqrt_n * geometry.inverse_norm(mean_ref_gap[..., None, :], model.factor)[..., 0],
        coverage_pointwise=sqrt_n * np.einsum("...x,...x->...", probs, pointwise_ref),
        bound_policy=2 * beta * geometry.inverse_norm(mean_gap[..., None, :], model.factor)[..., 0],
        bound=2 * beta * np.einsum("...x,...x->...", probs, per_context),
        bound_pointwise=2 * beta * np.einsum("...x,...x->...", probs, pointwise),
    )


# ---------------------------------------------------------------------------------------------
# Data designs: which behaviour policies produce the offline comparisons
# ---------------------------------------------------------------------------------------------

def _design_reference(problem, n):
    return problem.ref_logprobs, problem.ref_logprobs


def _design_uniform(problem, n):
    uniform = np.full(problem.batch_shape + (problem.n_contexts, problem.n_actions), -np.log(problem.n_actions))
    return uniform, uniform


def _design_zhu_rare_pair(problem, n):
    """Zhu, Jordan & Jiao (2023, Thm 3.9): a2 is always compared, against a1 w.p. 1 − 1/n and
    against a3 w.p. 1/n, so the pair that identifies θ₁ is seen O(1) times at every n (actions are
    indices 0..3 of the ``zhu_example`` scenario)."""
    if problem.n_actions < 4:
        raise ValueError(f"design: 'zhu_rare_pair' needs the 4-action problem (scenario 'zhu_example'), got K = {problem.n_actions}")
    shape = problem.batch_shape + (problem.n_contexts, problem.n_actions)
    first = np.zeros(problem.n_actions)
    second = np.zeros(problem.n_actions)
    first[1] = 1.0
    second[0], second[2] = 1.0 - 1.0 / n, 1.0 / n
    with np.errstate(divide="ignore"):
        return np.broadcast_to(np.log(first), shape), np.broadcast_to(np.log(second), shape)


#: Data designs ``(problem, n) -> (log π¹, log π²)``; comparisons are (x ∼ d0, a¹ ∼ π¹, a² ∼ π²).
DESIGNS: dict[str, Callable] = {"reference": _design_reference, "uniform": _design_uniform,
                                "zhu_rare_pair": _design_zhu_rare_pair}


def behaviour_policies(problem: LinearBandit, design: str, n: int):
    """(log π¹, log π²) of the data design ``design`` for a dataset of n comparisons."""
    check_choice(design, "design", DESIGNS)
    return DESIGNS[design](problem, n)


def sample_offline_data(problem: LinearBandit, n: int, rng: np.random.Generator, design: str = "reference") -> PreferenceData:
    """n comparisons per problem from the behaviour policies of ``design`` with BT labels on r*."""
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: the number of comparisons must be a positive integer, got {n!r}")
    first, second = behaviour_policies(problem, design, int(n))
    return problem.sample_preferences(first, second, int(n), rng)
