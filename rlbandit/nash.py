"""The KL-regularised preference game and its Nash equilibrium (DESIGN §4).

For a preference model P (..., X, K, K) with P + Pᵀ = 1, reference π0 and η > 0, the game is

    max_π min_π′  f(π, π′) = E_x[ π(·|x)ᵀ P(x) π′(·|x) − η KL(π‖π0) + η KL(π′‖π0) ].

It separates over contexts, is strongly concave–convex, and has a unique equilibrium, which is
symmetric: π_η = O(P π_η, η, π0) ∝ π0 exp(P π_η / η) (Munos et al. 2023; Ye, Xiong et al. 2024).
Both inner problems are Gibbs in closed form, so the duality gap of any π is exact:

    max_π1 f(π1, π) − min_π2 f(π, π2) = η E_x[ KL(π ‖ O(Pπ)) + KL(π ‖ O(−Pᵀπ)) ]        (≥ 0, = 0 iff π = π_η)

(the identity η log Z(r) + η KL(π‖π0) − ⟨π, r⟩ = η KL(π ‖ O(r)) applied to both players).

Solvers (``SOLVERS``), all vectorised over leading (seed) axes and contexts, in log space:

- ``fixed_point``   damped fixed point / mirror descent: log π ← (1−α) log π + α log O(Pπ), with
                    α halved whenever the fixed-point residual grows;
- ``nash_md``       Nash-MD (Munos et al. 2023): π_t^τ ∝ π_t^{1−η_tτ} π0^{η_tτ} (geometric mixture),
                    π_{t+1} ∝ π_t^τ exp(η_t P π_t^τ), step η_t = 2/(τ(t+2)) with τ = η;
- ``extragradient`` mirror prox on the regularised game (a half step, then the step from the
                    half-step's payoff);
- ``cvxpy``         the concave dual max_π −η KL(π‖π0) − η log Σ_b π0(b) exp(−(Pᵀπ)_b/η).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from rlbandit import kernels
from rlbandit._checks import (
    as_float_array,
    check_choice,
    check_eta,
    check_int,
    check_logprobs,
    check_positive_float,
    check_positive_ints,
)
from rlbandit.enhancers import ENHANCERS, EnhancerInput, EnhancerOptions
from rlbandit.geometry import covariance, mahalanobis_norm
from rlbandit.iterative import run_rounds
from rlbandit.kernels import normalize_logits
from rlbandit.preference_models import (
    PreferenceProblem,
    antisymmetric_features,
    check_preference,
    fit_general,
    linear_general_unchecked,
    pair_features,
    payoff,
    unpack_weights,
    win_rate_unchecked,
)
from rlbandit.preferences import sample_categorical
from rlbandit.reward import fit_bt

__all__ = [
    "solve",
    "SOLVERS",
    "exploitability",
    "exploitability_via_partition",
    "fixed_point_residual",
    "best_response",
    "worst_case_win_rate",
    "nash_md_iterates",
    "nash_md_bound",
    "bt_rlhf_policy",
    "general_nash_policy",
    "ENHANCERS",
    "NashWorld",
    "policy_metrics",
    "OnlineNashConfig",
    "run_online_nash",
]


# ---------------------------------------------------------------------------------------------
# Validation and the exact quantities
# ---------------------------------------------------------------------------------------------

def _check_game(pref, ref_logprobs, eta):
    pref = check_preference(pref)
    ref = as_float_array(ref_logprobs, "ref_logprobs", min_ndim=2)
    check_logprobs(ref, "ref_logprobs")
    try:
        ref = np.broadcast_to(ref, pref.shape[:-1])
    except ValueError:
        raise ValueError(f"ref_logprobs: shape {ref.shape} does not broadcast to pref's {pref.shape[:-1]}") from None
    return pref, np.array(ref), check_eta(eta)


def _check_policy(logprobs, shape, name="logprobs"):
    logprobs = as_float_array(logprobs, name, min_ndim=2)
    check_logprobs(logprobs, name)
    try:
        np.broadcast_shapes(logprobs.shape, shape)
    except ValueError:
        raise ValueError(f"{name}: shape {logprobs.shape} does not broadcast with the game's {shape}") from None
    return logprobs


def _max_response(logprobs, pref, ref, eta):
    """O(Pπ, η, π0): the max player's best response to an opponent playing π."""
    return kernels.gibbs(payoff(pref, logprobs), ref, eta)


def _min_response(logprobs, pref, ref, eta):
    """O(−Pᵀπ, η, π0): the min player's best response to π."""
    return kernels.gibbs(-np.einsum("...ab,...a->...b", pref, np.exp(logprobs)), ref, eta)


def best_response(logprobs, pref, ref_logprobs, eta) -> np.ndarray:
    """The opponent's KL-regularised best response argmin_π′ f(π, π′) = O(−Pᵀπ, η, π0), (..., X, K).

    Since Pᵀπ = 1 − Pπ this equals O(Pπ): the best response is the same for either seat.
    """
    pref, ref, eta = _check_game(pref, ref_logprobs, eta)
    logprobs = _check_policy(logprobs, ref.shape)
    return _min_response(logprobs, pref, ref, eta)


def _exploitability_per_context(logprobs, pref, ref, eta):
    up = kernels.kl(logprobs, _max_response(logprobs, pref, ref, eta))
    down = kernels.kl(logprobs, _min_response(logprobs, pref, ref, eta))
    return eta * (np.maximum(up, 0.0) + np.maximum(down, 0.0))


def exploitability(logprobs, pref, ref_logprobs, eta, context_probs=None, *, per_context: bool = False) -> np.ndarray:
    """Duality gap max_π1 f(π1, π) − min_π2 f(π, π2) of playing π in both seats.

        = η E_x[ KL(π ‖ O(Pπ)) + KL(π ‖ O(−Pᵀπ)) ]  ≥ 0, and = 0 iff π = π_η.

    Args:
        logprobs: log π, shape (..., X, K).
        pref: P, shape (..., X, K, K).
        ref_logprobs: log π0, broadcastable to (..., X, K).
        eta: η > 0.
        context_probs: d0; uniform when None.
        per_context: return the gap per context (..., X) instead of its d0-average (...,).
    """
    pref, ref, eta = _check_game(pref, ref_logprobs, eta)
    logprobs = _check_policy(logprobs, ref.shape)
    gap = _exploitability_per_context(logprobs, pref, ref, eta)
    return gap if per_context else kernels.weigh_contexts(gap, context_probs)


def exploitability_via_partition(logprobs, pref, ref_logprobs, eta, context_probs=None) -> np.ndarray:
    """The same duality gap from the two closed-form inner values (an independent computation):

        max_π1 f(π1, π) = E_x[ η log Σ_a π0 exp((Pπ)_a/η) + η KL(π‖π0) ]
        min_π2 f(π, π2) = E_x[ −η KL(π‖π0) − η log Σ_b π0 exp(−(Pᵀπ)_b/η) ]
    """
    pref, ref, eta = _check_game(pref, ref_logprobs, eta)
    logprobs = _check_policy(logprobs, ref.shape)
    p = np.exp(logprobs)
    kl0 = np.maximum(kernels.kl(logprobs, ref), 0.0)
    upper = kernels.log_partition(payoff(pref, logprobs), ref, eta) + eta * kl0
    lower = -eta * kl0 - kernels.log_partition(-np.einsum("...ab,...a->...b", pref, p), ref, eta)
    return kernels.weigh_contexts(upper - lower, context_probs)


def _residual(logprobs, pref, ref, eta):
    target = _max_response(logprobs, pref, ref, eta)
    support = np.isfinite(ref)
    diff = np.where(support, logprobs - np.where(support, target, 0.0), 0.0)
    return np.abs(diff).max(axis=-1)


def fixed_point_residual(logprobs, pref, ref_logprobs, eta) -> np.ndarray:
    """max_a |log π(a|x) − log O(Pπ, η, π0)(a|x)| over π0's support, per context (..., X)."""
    pref, ref, eta = _check_game(pref, ref_logprobs, eta)
    logprobs = _check_policy(logprobs, ref.shape)
    return _residual(logprobs, pref, ref, eta)


def worst_case_win_rate(logprobs, pref, context_probs=None) -> np.ndarray:
    """E_x min_b P(π ≻ b | x): the win rate against the (unregularised) best response, ≤ ½."""
    pref = check_preference(pref)
    logprobs = _check_policy(logprobs, pref.shape[:-1])
    per_context = np.einsum("...ab,...a->...b", pref, np.exp(logprobs)).min(axis=-1)
    return kernels.weigh_contexts(per_context, context_probs)


# ---------------------------------------------------------------------------------------------
# Solvers
# ---------------------------------------------------------------------------------------------

def _normalize(logits, support):
    """log-softmax of ``logits`` restricted to ``support`` (zero mass elsewhere)."""
    return normalize_logits(np.where(support, logits, -np.inf))


def _mix(logp, logq, weight, support):
    """Geometric mixture ∝ p^{1−w} q^w (w broadcast over (..., X, 1)), zero outside the support."""
    a = np.where(support, logp, 0.0)
    b = np.where(support, logq, 0.0)
    return _normalize((1.0 - weight) * a + weight * b, support)


def _fixed_point(pref, ref, eta, *, tol, max_iter, init=None):
    support = np.isfinite(ref)
    logp = ref.copy() if init is None else np.array(init, dtype=np.float64)
    # Mirror descent log π ← (1−α) log π + α log O(Pπ) is the step γ = α/η on the regularised game;
    # for a strongly monotone game (modulus η, Lipschitz L = 2 max|P − ½|) γ ≤ η/L² always converges,
    # so α never drops below α_min = η²/(η² + L²). Above it, α adapts to the residual.
    lipschitz = 2.0 * np.abs(pref - 0.5).max()
    floor = eta**2 / (eta**2 + lipschitz**2 + 1e-300)
    damping = np.ones(ref.shape[:-1] + (1,))
    residual = _residual(logp, pref, ref, eta)
    for it in range(1, max_iter + 1):
        if residual.max() <= tol:
            return logp, it - 1
        target = _max_response(logp, pref, ref, eta)
        candidate = _mix(logp, target, damping, support)
        new_residual = _residual(candidate, pref, ref, eta)
        # Reject a step that increases the residual (unless α is already at the safe floor).
        reject = (new_residual > residual) & (damping[..., 0] > floor)
        logp = np.where(reject[..., None], logp, candidate)
        residual = np.where(reject, residual, new_residual)
        damping = np.where(reject[..., None], np.maximum(floor, 0.5 * damping), np.minimum(1.0, 1.2 * damping))
    return logp, max_iter


def _nash_md_step(logp, t, pref, ref, eta, support, step=None):
    lr = 2.0 / (eta * (t + 2)) if step is None else step
    alpha = min(1.0, lr * eta)
    mixture = _mix(logp, ref, alpha, support)
    return _normalize(mixture + lr * payoff(pref, mixture), support)


def _nash_md(pref, ref, eta, *, tol, max_iter, init=None, step=None):
    support = np.isfinite(ref)
    logp = ref.copy() if init is None else np.array(init, dtype=np.float64)
    for t in range(max_iter):
        if t % 16 == 0 and _residual(logp, pref, ref, eta).max() <= tol:
            return logp, t
        logp = _nash_md_step(logp, t, pref, ref, eta, support, step)
    return logp, max_iter


def nash_md_iterates(pref, ref_logprobs, eta, n_steps: int, *, step: float | None = None, init=None) -> np.ndarray:
    """Nash-MD's iterates π_0 … π_T (Munos et al. 2023, tabular, exact payoffs), shape (T+1, ..., X, K).

    π_t^τ ∝ π_t^{1−η_tτ} π0^{η_tτ};  π_{t+1} ∝ π_t^τ exp(η_t P π_t^τ);  τ = η;
    η_t = 2/(τ(t+2)) by default (Theorem 1's schedule), or the constant ``step``. π_0 = π0 unless ``init``.
    """
    pref, ref, eta = _check_game(pref, ref_logprobs, eta)
    check_int(n_steps, "n_steps", minimum=0)
    if step is not None and not (np.isfinite(step) and 0 < step <= 1.0 / eta):
        raise ValueError(f"step: a constant step must lie in (0, 1/η], got {step}")
    support = np.isfinite(ref)
    logp = ref.copy() if init is None else _check_policy(init, ref.shape, "init").copy()
    out = [logp]
    for t in range(n_steps):
        logp = _nash_md_step(logp, t, pref, ref, eta, support, step)
        out.append(logp)
    return np.stack(out)


def nash_md_bound(eta, n_steps) -> np.ndarray:
    """Munos et al. (2023) Theorem 1: KL(π*_τ ‖ π_T) ≤ 8/(τ²(T+1)) for η_t = 2/(τ(t+2)), T ≥ 1.

    It follows from their one-step inequality KL(π*, π_{t+1}) ≤ (1 − η_tτ) KL(π*, π_t) + 2η_t²
    by induction (at t = 0, η_0τ = 1 gives KL(π*, π_1) ≤ 2/τ² ≤ 8/(2τ²)).
    """
    eta = check_eta(eta)
    n_steps = np.asarray(n_steps, dtype=np.float64)
    return 8.0 / (eta**2 * (n_steps + 1.0))


def _extragradient(pref, ref, eta, *, tol, max_iter, init=None, step=None):
    support = np.isfinite(ref)
    logp = ref.copy() if init is None else np.array(init, dtype=np.float64)
    # KL is 1-strongly convex in ℓ1 and ‖P(π − π′)‖∞ ≤ max|P − ½|·‖π − π′‖₁, so γ = 1/(η + 2 max|P − ½|)
    # keeps γη ≤ 1 and γL ≤ 1/2: mirror prox converges linearly at rate ~ (1 + γη)^{-1}.
    spread = np.abs(pref - 0.5).max()
    gamma = 1.0 / (eta + 2.0 * spread + 1e-12) if step is None else step
    keep, pull = 1.0 - gamma * eta, gamma * eta
    base = lambda lp: np.where(support, keep * np.where(support, lp, 0.0) + pull * np.where(support, ref, 0.0), -np.inf)  # noqa: E731
    for it in range(max_iter):
        if it % 4 == 0 and _residual(logp, pref, ref, eta).max() <= tol:
            return logp, it
        anchor = base(logp)
        half = _normalize(anchor + gamma * payoff(pref, logp), support)
        logp = _normalize(anchor + gamma * payoff(pref, half), support)
    return logp, max_iter


def _cvxpy(pref, ref, eta, *, tol=None, max_iter=None, init=None):
    """The concave dual per (batch, context), all in one cvxpy problem (CLARABEL)."""
    import cvxpy as cp

    flat_pref = pref.reshape((-1,) + pref.shape[-2:])
    flat_ref = ref.reshape((-1, ref.shape[-1]))
    out = np.full(flat_ref.shape, -np.inf)
    objective, constraints, variables = 0, [], []
    for row in range(flat_ref.shape[0]):
        idx = np.flatnonzero(np.isfinite(flat_ref[row]))
        q = np.exp(flat_ref[row, idx])
        q = q / q.sum()
        sub = flat_pref[row][np.ix_(idx, idx)]
        p = cp.Variable(idx.size, nonneg=True)
        # min_π′ [πᵀPπ′ + η KL(π′‖π0)] = −η log Σ_b π0(b) exp(−(Pᵀπ)_b / η)
        objective += -eta * cp.sum(cp.rel_entr(p, q)) - eta * cp.log_sum_exp(np.log(q) - (sub.T @ p) / eta)
        constraints.append(cp.sum(p) == 1)
        variables.append((row, idx, p))
    problem = cp.Problem(cp.Maximize(objective), constraints)
    try:
        problem.solve(solver=cp.CLARABEL)
    except cp.error.SolverError:
        problem.solve(solver=cp.SCS, eps=1e-9)
    for row, idx, p in variables:
        value = np.maximum(np.asarray(p.value, dtype=np.float64), 0.0)
        with np.errstate(divide="ignore"):
            out[row, idx] = np.log(value / value.sum())
    return out.reshape(ref.shape), 1


#: Solver name → ``(pref, ref_logprobs, eta, *, tol, max_iter, init) -> (logprobs, iterations)``.
SOLVERS: dict[str, Callable[..., tuple[np.ndarray, int]]] = {
    "fixed_point": _fixed_point,
    "nash_md": _nash_md,
    "extragradient": _extragradient,
    "cvxpy": _cvxpy,
}

_DEFAULT_MAX_ITER = {"fixed_point": 100_000, "nash_md": 20_000, "extragradient": 100_000, "cvxpy": 1}


def solve(pref, ref_logprobs, eta, method: str = "extragradient", *, tol: float = 1e-10,
          max_iter: int | None = None, init=None, return_iterations: bool = False):
    """The symmetric Nash equilibrium π_η = O(Pπ_η, η, π0) of the KL-regularised game.

    Args:
        pref: P, shape (..., X, K, K), P + Pᵀ = 1.
        ref_logprobs: log π0, broadcastable to (..., X, K).
        eta: η > 0.
        method: a key of :data:`SOLVERS`.
        tol: stop when the fixed-point residual max |log π − log O(Pπ)| ≤ tol (iterative solvers).
        max_iter: iteration cap (a per-solver default when None).
        init: starting log-policy (π0 when None).
        return_iterations: also return the number of iterations used.

    Returns:
        log π_η, shape (..., X, K) (and the iteration count when asked).
    """
    check_choice(method, "method", SOLVERS, kind="solver")
    pref, ref, eta = _check_game(pref, ref_logprobs, eta)
    tol = float(tol)
    check_positive_float(tol, "tol")
    max_iter = _DEFAULT_MAX_ITER[method] if max_iter is None else max_iter
    check_int(max_iter, "max_iter")
    if init is not None:
        init = np.broadcast_to(_check_policy(init, ref.shape, "init"), ref.shape)
    logprobs, iterations = SOLVERS[method](pref, ref, eta, tol=tol, max_iter=max_iter, init=init)
    return (logprobs, iterations) if return_iterations else logprobs


# ---------------------------------------------------------------------------------------------
# Learned policies: BT-RLHF and the Nash policy of a learned general model
# ---------------------------------------------------------------------------------------------

def bt_rlhf_policy(features, data, ref_logprobs, eta, reg: float) -> np.ndarray:
    """BT-RLHF: θ̂ = BT MLE on z = φ(a¹) − φ(a²), policy O(φθ̂, η, π0), shape (..., X, K)."""
    features = np.asarray(features, dtype=np.float64)
    eta = check_eta(eta)
    if data.n == 0:
        return np.broadcast_to(ref_logprobs, features.shape[:-1]).copy()
    theta = fit_bt(data.diffs(features), data.labels, reg)
    rewards = (features * theta[..., None, None, :]).sum(axis=-1)
    return kernels.gibbs(rewards, ref_logprobs, eta)


def general_nash_policy(features, data, ref_logprobs, eta, reg: float, method: str = "extragradient"):
    """Nash equilibrium of the MLE linear general model: (log π̂_η (..., X, K), P̂ (..., X, K, K), ŵ)."""
    features = np.asarray(features, dtype=np.float64)
    dim = features.shape[-1]
    n_weights = dim * (dim - 1) // 2 + dim
    if data.n == 0:
        w = np.zeros(features.shape[:-3] + (n_weights,))
    else:
        w = fit_general(pair_features(features, data), data.labels, reg)
    skew, theta = unpack_weights(w, dim)
    pref_hat = linear_general_unchecked(features, skew, theta)
    return solve(pref_hat, ref_logprobs, eta, method=method), pref_hat, w


# ---------------------------------------------------------------------------------------------
# Online iterative Nash learning (Ye, Xiong et al. 2024)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OnlineNashConfig:
    """The online iterative Nash loop.

    Attributes:
        eta: η > 0.
        n_iterations: T ≥ 1 rounds of collection.
        batch_size: m ≥ 1 comparisons per round (per seed).
        enhancer: a key of :data:`rlbandit.enhancers.ENHANCERS` (``ucb``, the optimistic best
            response of Ye, Xiong et al.; ``uncertainty``; ``rejection``; ``reference``; ``self``;
            ``uniform``; ``optimistic`` needs per-action features and is not available here).
        beta: β ≥ 0, width of the uncertainty bonus.
        reg: λ > 0, ridge coefficient of both MLEs and of Σ_t = λI + Σ_i ψ_iψ_iᵀ.
        n_offline: comparisons from π0 × π0 collected before round 1.
        solver: Nash solver for the main agent.
        seed: seed of the data generator.
        n_draws: n of the ``rejection`` enhancer (draws of π¹ per context), ≥ 2.
    """

    eta: float = 0.2
    n_iterations: int = 10
    batch_size: int = 100
    enhancer: str = "ucb"
    beta: float = 1.0
    reg: float = 1.0
    n_offline: int = 0
    solver: str = "extragradient"
    seed: int = 0
    n_draws: int = 8

    def __post_init__(self):
        check_eta(self.eta)
        check_positive_ints(self, ("n_iterations", "batch_size"))
        check_int(self.n_offline, "n_offline", minimum=0)
        check_choice(self.enhancer, "enhancer", ENHANCERS)
        check_choice(self.solver, "solver", SOLVERS)
        check_positive_float(self.beta, "beta", allow_zero=True)
        check_positive_float(self.reg, "reg")
        if self.enhancer == "optimistic":
            raise ValueError("enhancer: 'optimistic' (Option I) needs per-action features; the Nash world's ψ is a "
                             "pair feature — use 'ucb' (the optimistic best response) or 'uncertainty'")
        EnhancerOptions(n_draws=self.n_draws)

    @property
    def enhancer_options(self) -> EnhancerOptions:
        return EnhancerOptions(n_draws=self.n_draws)


def policy_metrics(problem: PreferenceProblem, logprobs, eta, *, nash, bt) -> dict[str, np.ndarray]:
    """Exact metrics of a policy under the true P (each of shape batch_shape)."""
    pref, ref, probs = problem.pref, problem.ref_logprobs, problem.context_probs
    kl_ref = kernels.weigh_contexts(np.maximum(kernels.kl(logprobs, ref), 0.0), probs)
    kl_bt = kernels.weigh_contexts(np.maximum(kernels.kl(bt, ref), 0.0), probs)
    win_bt = win_rate_unchecked(logprobs, bt, pref, probs)
    return {
        "exploitability": kernels.weigh_contexts(_exploitability_per_context(logprobs, pref, ref, eta), probs),
        "win_rate_vs_ref": win_rate_unchecked(logprobs, ref, pref, probs),
        "win_rate_vs_bt": win_bt,
        # the game's payoff f(π, π_BT) = P(π ≻ π_BT) − η KL(π‖π0) + η KL(π_BT‖π0); ≥ ½ for π = π_η
        "payoff_vs_bt": win_bt - eta * kl_ref + eta * kl_bt,
        "win_rate_vs_nash": win_rate_unchecked(logprobs, nash, pref, probs),
        "win_rate_vs_best_response": win_rate_unchecked(logprobs, _min_response(logprobs, pref, ref, eta), pref, probs),
        "worst_case_win_rate": kernels.weigh_contexts(np.einsum("...ab,...a->...b", pref, np.exp(logprobs)).min(axis=-1), probs),
        "kl_to_ref": kl_ref,
        "kl_nash_to_policy": kernels.weigh_contexts(np.maximum(kernels.kl(nash, logprobs), 0.0), probs),
    }


@dataclass(frozen=True, eq=False)
class NashWorld:
    """General preferences on a PreferenceProblem, main agent π¹_t = the Nash policy of P̂_t
    (a :class:`rlbandit.iterative.World`; the loop is :func:`rlbandit.iterative.run_rounds`).

    Per action b against the main agent: ŝ(b) = P̂_t(b ≻ π¹_t), u(b) = E_{a∼π¹_t}‖ψ(x,b,a)‖_{Σ_t⁻¹},
    ŝ⁺(b) = E_{a∼π¹_t} min(P̂_t(b ≻ a) + β‖ψ(x,b,a)‖_{Σ_t⁻¹}, 1), with Σ_t = λI + Σ_i ψ_iψ_iᵀ.
    Each round also records BT-RLHF fitted on the same D, against the same exact π_η.
    """

    problem: PreferenceProblem
    config: "OnlineNashConfig"

    def __post_init__(self):
        problem = self.problem
        object.__setattr__(self, "nash", solve(problem.pref, problem.ref_logprobs, self.config.eta))
        object.__setattr__(self, "psi", antisymmetric_features(problem.features))  # (..., X, K, K, D)
        probs = np.broadcast_to(problem.context_probs, problem.batch_shape + (problem.n_contexts,))
        with np.errstate(divide="ignore"):
            object.__setattr__(self, "log_context_probs", np.log(probs))

    def observe(self, data):
        problem, config = self.problem, self.config
        features, ref, eta = problem.features, problem.ref_logprobs, config.eta
        main, pref_hat, _ = general_nash_policy(features, data, ref, eta, config.reg, config.solver)
        dim_psi = self.psi.shape[-1]
        if data.n:
            cov = covariance(pair_features(features, data), config.reg)
        else:
            cov = np.broadcast_to(config.reg * np.eye(dim_psi), problem.batch_shape + (dim_psi, dim_psi))
        pair_uncertainty = mahalanobis_norm(self.psi, cov)  # (..., X, K, K): u(x, b, a)
        p = np.exp(main)
        scores = np.einsum("...ba,...a->...b", pref_hat, p)
        uncertainty = np.einsum("...ba,...a->...b", pair_uncertainty, p)
        upper = np.einsum("...ba,...a->...b", np.minimum(pref_hat + config.beta * pair_uncertainty, 1.0), p)
        beta = np.full(problem.batch_shape, float(config.beta))
        state = EnhancerInput(main, scores, uncertainty, upper, ref, problem.context_probs, eta, beta)
        return state, bt_rlhf_policy(features, data, ref, eta, config.reg)

    def draw_contexts(self, m, rng):
        return sample_categorical(self.log_context_probs, m, rng)

    def label(self, contexts, actions1, actions2, rng):
        pref = self.problem.pref
        flat = pref.reshape((-1,) + pref.shape[-3:])
        rows = np.arange(flat.shape[0])[:, None]
        p = flat[rows, contexts.reshape(flat.shape[0], -1), actions1.reshape(flat.shape[0], -1),
                 actions2.reshape(flat.shape[0], -1)].reshape(contexts.shape)
        return (rng.random(p.shape) < p).astype(np.int8)

    def record(self, t, data, state, bt, out):
        problem, eta = self.problem, self.config.eta
        main = state.main_logprobs
        metrics = {"n_comparisons": data.n, **policy_metrics(problem, main, eta, nash=self.nash, bt=bt)}
        metrics["bt_exploitability"] = kernels.weigh_contexts(
            _exploitability_per_context(bt, problem.pref, problem.ref_logprobs, eta), problem.context_probs)
        metrics["enhancer_kl_to_main"] = kernels.weigh_contexts(np.maximum(kernels.kl(out.logprobs2, main), 0.0),
                                                                problem.context_probs)
        return metrics


def _with_seed_axis(problem: PreferenceProblem) -> PreferenceProblem:
    """The unbatched problem as a batch of one seed."""
    lead = lambda a: None if a is None else np.asarray(a)[None]  # noqa: E731
    probs = problem.context_probs
    return PreferenceProblem(lead(problem.features), lead(problem.ref_logprobs), lead(problem.pref),
                             probs if probs.ndim == 1 else lead(probs), lead(problem.skew), lead(problem.theta))


def run_online_nash(problem: PreferenceProblem, config: OnlineNashConfig, *, progress: bool = False) -> pd.DataFrame:
    """Online iterative Nash learning with a linear general preference model, batched over seeds.

    For t = 0..T: fit (Â, θ̂) by MLE on D (ŵ = 0 while D is empty), main agent π¹_t = Nash of P̂_t,
    enhancer π²_t from :data:`rlbandit.enhancers.ENHANCERS` (through :class:`NashWorld`); record
    π¹_t's exact metrics under the true P (and those of BT-RLHF fitted on the same D); then, for
    t < T, collect m comparisons a¹ ∼ π¹_t, a² ∼ π²_t, y ∼ P into D.

    Returns:
        one row per seed × iteration: seed, iteration, n_comparisons, exploitability,
        win_rate_vs_ref, win_rate_vs_bt, payoff_vs_bt, win_rate_vs_nash, win_rate_vs_best_response,
        worst_case_win_rate, kl_to_ref, kl_nash_to_policy, bt_exploitability, enhancer_kl_to_main.
    """
    if not isinstance(problem, PreferenceProblem):
        raise ValueError(f"problem: expected a PreferenceProblem, got {type(problem).__name__}")
    if not isinstance(config, OnlineNashConfig):
        raise ValueError(f"config: expected an OnlineNashConfig, got {type(config).__name__}")
    if len(problem.batch_shape) > 1:
        raise ValueError(f"problem: expected at most one batch (seed) axis, got batch shape {problem.batch_shape}")
    from rlbandit.preferences import PreferenceData

    if problem.batch_shape == ():  # the loop is batched over one seed axis
        problem = _with_seed_axis(problem)
    rng = np.random.default_rng(config.seed)
    ref = problem.ref_logprobs
    data = PreferenceData.empty(problem.batch_shape)
    if config.n_offline:
        data = problem.sample_comparisons(ref, ref, config.n_offline, rng)
    world = NashWorld(problem, config)
    return run_rounds(world, config.enhancer, config.enhancer_options, range(config.n_iterations + 1),
                      config.batch_size, rng, data, progress=progress, desc="online nash")
