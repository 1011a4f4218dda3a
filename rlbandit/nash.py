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

import warnings

from typing import Callable

import numpy as np

from rlbandit import kernels
from rlbandit._checks import check_choice, check_eta, check_int, logprob_array, real_array, real_number, same_callable
from rlbandit.kernels import normalize_logits
from rlbandit.preference_models import (
    check_preference,
    payoff,
)

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
    "nash_md_constant_step_bound",
    "register",
    "NotConvergedWarning",
    "min_response",
    "duality_gap_per_context",
]


# ---------------------------------------------------------------------------------------------
# Validation and the exact quantities
# ---------------------------------------------------------------------------------------------

def _check_game(pref, ref_logprobs, eta, ref_name="ref_logprobs"):
    pref = check_preference(pref)
    ref = logprob_array(ref_logprobs, ref_name, min_ndim=2)
    try:
        ref = np.broadcast_to(ref, pref.shape[:-1])
    except ValueError:
        raise ValueError(f"{ref_name}: shape {ref.shape} does not broadcast to pref's {pref.shape[:-1]}") from None
    return pref, np.array(ref), check_eta(eta)


def _check_policy(logprobs, shape, name="logprobs"):
    logprobs = logprob_array(logprobs, name, min_ndim=2)
    try:
        np.broadcast_shapes(logprobs.shape, shape)
    except ValueError:
        raise ValueError(f"{name}: shape {logprobs.shape} does not broadcast with the game's {shape}") from None
    return logprobs


def _max_response(logprobs, pref, ref, eta):
    """O(Pπ, η, π0): the max player's best response to an opponent playing π."""
    return kernels.gibbs(payoff(pref, logprobs), ref, eta)


def _min_response(logprobs, pref, ref, eta):
    return kernels.gibbs(-np.einsum("...ab,...a->...b", pref, np.exp(logprobs)), ref, eta)


def min_response(logprobs, pref, ref, eta):
    """O(−Pᵀπ, η, π0): the min player's best response to π (log π (..., X, K), P (..., X, K, K),
    log π0 ``ref`` broadcastable to (..., X, K), η > 0) → (..., X, K)."""
    pref, ref, eta = _check_game(pref, ref, eta, ref_name="ref")
    return _min_response(_check_policy(logprobs, ref.shape), pref, ref, eta)


def best_response(logprobs, pref, ref_logprobs, eta) -> np.ndarray:
    """The opponent's KL-regularised best response argmin_π′ f(π, π′) = O(−Pᵀπ, η, π0), (..., X, K).

    Since Pᵀπ = 1 − Pπ this equals O(Pπ): the best response is the same for either seat.
    """
    pref, ref, eta = _check_game(pref, ref_logprobs, eta)
    logprobs = _check_policy(logprobs, ref.shape)
    return _min_response(logprobs, pref, ref, eta)


def _duality_gap(logprobs, pref, ref, eta):
    up = kernels.kl(logprobs, _max_response(logprobs, pref, ref, eta))
    down = kernels.kl(logprobs, _min_response(logprobs, pref, ref, eta))
    return eta * (np.maximum(up, 0.0) + np.maximum(down, 0.0))


def duality_gap_per_context(logprobs, pref, ref, eta):
    """The exact duality gap η[KL(π‖O(Pπ)) + KL(π‖O(−Pᵀπ))] per context, shape (..., X) (arguments
    as in :func:`min_response`)."""
    pref, ref, eta = _check_game(pref, ref, eta, ref_name="ref")
    return _duality_gap(_check_policy(logprobs, ref.shape), pref, ref, eta)


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
    gap = _duality_gap(logprobs, pref, ref, eta)
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
    floor = 1.0 / (1.0 + (lipschitz / eta) ** 2)  # η²/(η² + L²) without squaring η (overflows at η ≳ 1e154)
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
    if step is not None:
        step = real_number(step, "step", minimum=0.0, strict=True, maximum=1.0 / eta)
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
    return 8.0 / (eta**2 * (_steps(n_steps) + 1.0))


def _steps(n_steps) -> np.ndarray:
    """T, an integer >= 0 or an array of them, as floats."""
    steps = real_array(n_steps, "n_steps")
    if (steps < 0).any() or (steps != np.round(steps)).any():
        raise ValueError(f"n_steps: expected integers >= 0, got {n_steps!r}")
    return steps


def nash_md_constant_step_bound(eta, step, n_steps, initial_kl) -> np.ndarray:
    """Munos et al. (2023) Theorem 1, constant step η_t = ``step`` ≤ 1/τ (τ = η):

        KL(π*_τ ‖ π_T) ≤ (1 − step·τ)^T KL(π*_τ ‖ π_0) + 2·step/τ,

    the one-step inequality KL_{t+1} ≤ (1 − step·τ) KL_t + 2·step² unrolled (Σ_k (1 − step·τ)^k ≤ 1/(step·τ)).
    ``initial_kl`` is KL(π* ‖ π_0) (broadcast against ``n_steps``).
    """
    eta = check_eta(eta)
    step = real_number(step, "step", minimum=0.0, strict=True, maximum=1.0 / eta)
    initial_kl = real_array(initial_kl, "initial_kl", finite=False)
    if np.isnan(initial_kl).any() or (initial_kl < 0).any():
        raise ValueError(f"initial_kl: a KL divergence is >= 0 (+inf allowed), got {initial_kl}")
    return (1.0 - step * eta) ** _steps(n_steps) * initial_kl + 2.0 * step / eta


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
    tol = real_number(tol, "tol", minimum=0.0, strict=True)
    max_iter = _DEFAULT_MAX_ITER[method] if max_iter is None else max_iter
    check_int(max_iter, "max_iter")
    if init is not None:
        init = np.broadcast_to(_check_policy(init, ref.shape, "init"), ref.shape)
        if (np.isfinite(init) != np.isfinite(ref)).any():
            raise ValueError("init: must give mass exactly where π0 does (the equilibrium has π0's support, and "
                             "a zero of the starting policy can never be undone in log space)")
    logprobs, iterations = SOLVERS[method](pref, ref, eta, tol=tol, max_iter=max_iter, init=init)
    if method != "cvxpy" and iterations >= max_iter:
        residual = float(_residual(logprobs, pref, ref, eta).max())
        if residual > tol:
            warnings.warn(NotConvergedWarning(f"solve: {method!r} stopped at max_iter={max_iter} with fixed-point "
                                              f"residual {residual:.3g} > tol={tol:g}; raise max_iter or use "
                                              "another method"), stacklevel=2)
    return (logprobs, iterations) if return_iterations else logprobs


class NotConvergedWarning(RuntimeWarning):
    """An iterative Nash solver hit its iteration cap before the residual reached ``tol``."""


def register(name: str, solver: Callable, *, max_iter: int = 100_000, replace: bool = False) -> Callable:
    """Add a Nash solver to :data:`SOLVERS` (so :func:`solve`, the online loop and the ``nash`` study
    can use it; the study reads the registry when it runs).

    Args:
        name: the key, a Python identifier.
        solver: ``(pref, ref, eta, *, tol, max_iter, init) -> (log π, iterations)`` on validated
            arrays (pref (..., X, K, K), ref (..., X, K), init None or log-probs of ref's shape); a
            module-level function, so process workers can import it.
        max_iter: the iteration cap :func:`solve` passes when the caller gives none.
        replace: allow replacing an existing entry (False: a taken name raises ValueError).
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name: expected a Python identifier, got {name!r}")
    if not callable(solver):
        raise ValueError(f"solver: expected a callable, got {solver!r}")
    check_int(max_iter, "max_iter")
    if name in SOLVERS and not replace and not same_callable(SOLVERS[name], solver):
        raise ValueError(f"name: solver {name!r} is already registered (pass replace=True to override)")
    SOLVERS[name] = solver
    _DEFAULT_MAX_ITER[name] = int(max_iter)
    return solver


#: Names that live in :mod:`rlbandit.nash_online` (which imports this module), served lazily.
_ONLINE_NAMES = ("ENHANCERS", "NashWorld", "OnlineNashConfig", "bt_rlhf_policy", "general_nash_policy",
                 "policy_metrics", "run_online_nash")


def __getattr__(name: str):
    if name in _ONLINE_NAMES:
        from rlbandit import nash_online

        return getattr(nash_online, name)
    raise AttributeError(f"module 'rlbandit.nash' has no attribute {name!r}")

