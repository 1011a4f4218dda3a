"""Offline RLHF's estimation side (DESIGN §2): the Bradley–Terry reward model on D with its
covariance, the references ν(x), the theory's confidence radius, reward ensembles, the coverage
diagnostics of the theory's bound, and the data designs that produce D.

**Guarantee** (reproduced by :func:`diagnostics`): on the event ‖θ̂ − θ*‖_{Σ_D} ≤ β,
SubOpt(π̂_I) ≤ 2β‖E_x[φ(x,π*) − ν(x)]‖_{Σ_D⁻¹} ≤ 2β E_x‖φ(x,π*) − ν(x)‖_{Σ_D⁻¹} and
SubOpt(π̂_II) ≤ 2β E_x E_{a∼π*}‖φ(x,a) − ν(x)‖_{Σ_D⁻¹}.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

import numpy as np

from rlbandit import geometry, radii
from rlbandit._checks import (
    check_instance,
    as_float_array,
    check_choice,
    check_eta,
    check_logprobs,
    check_positive_float,
    integer,
    real_array,
    real_number,
)
from rlbandit.geometry import cholesky, covariance
from rlbandit.pessimism import uncertainty
from rlbandit.preferences import PreferenceData
from rlbandit.problem import LinearBandit
from rlbandit.reward import fit_bt

__all__ = [
    "AGGREGATORS", "BETA_RULES", "DESIGNS", "Diagnostics", "REFERENCES", "RewardModel", "behaviour_policies",
    "bootstrap_weights", "check_data", "coverage_coefficient", "diagnostics", "ensemble_rewards", "fit_ensemble",
    "fit_reward", "reference_features", "sample_offline_data", "theory_beta",
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


def _check_problem(problem) -> None:
    check_instance(problem, LinearBandit, "problem")


def check_data(problem, data):
    """D matches the problem: PreferenceData with the problem's batch shape, indices in range."""
    check_instance(problem, LinearBandit, "problem")
    check_instance(data, PreferenceData, "data")
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
    check_data(problem, data)
    reg = float(check_positive_float(reg, "reg"))
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
    _check_problem(problem)
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
    reg = float(check_positive_float(reg, "reg"))
    theta_bound = float(check_positive_float(theta_bound, "theta_bound"))
    delta = real_number(delta, "delta")
    if not 0.0 < delta < 1.0:
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
    n, n_models = integer(n, "n"), integer(n_models, "n_models")
    if isinstance(batch_shape, (str, bytes)) or not isinstance(batch_shape, (tuple, list)):
        raise ValueError(f"batch_shape: expected a tuple of sizes, got {batch_shape!r}")
    batch_shape = tuple(integer(size, "batch_shape") for size in batch_shape)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    return rng.multinomial(n, np.full(n, 1.0 / n), size=tuple(batch_shape) + (n_models,)).astype(np.float64)


def fit_ensemble(problem: LinearBandit, data: PreferenceData, n_models: int, rng: np.random.Generator | None,
                 regs=(1.0,), bootstrap: bool = True) -> np.ndarray:
    """θ_k for k = 1..n_models, shape batch_shape + (n_models, d).

    Member k uses ridge λ_k = regs[k mod len(regs)] and, with ``bootstrap``, its own multinomial
    resample of D (as per-comparison weights of :func:`rlbandit.reward.fit_bt`).
    """
    check_data(problem, data)
    n_models = integer(n_models, "n_models")
    regs = tuple(float(check_positive_float(r, "regs")) for r in regs)
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
    features = real_array(features, "features", min_ndim=3)
    thetas, nu = real_array(thetas, "thetas", min_ndim=2), real_array(nu, "nu", min_ndim=2)
    if thetas.shape[-1] != features.shape[-1]:
        raise ValueError(f"thetas: expected shape (..., k, {features.shape[-1]}) to match features, got {thetas.shape}")
    if nu.shape[-2:] != (features.shape[-3], features.shape[-1]):
        raise ValueError(f"nu: expected shape (..., {features.shape[-3]}, {features.shape[-1]}) to match features, "
                         f"got {nu.shape}")
    gap = features[..., None, :, :, :] - nu[..., None, :, None, :]
    return np.einsum("...mxkd,...md->...mxk", np.broadcast_to(gap, gap.shape[:-4] + (thetas.shape[-2],) + gap.shape[-3:]), thetas)


def _aggregate_min(rewards, c):
    return rewards.min(axis=-3)


def _aggregate_mean_std(rewards, c):
    ddof = 1 if rewards.shape[-3] > 1 else 0
    return rewards.mean(axis=-3) - c * rewards.std(axis=-3, ddof=ddof)


#: Ensemble aggregators ``(rewards (..., k, X, K), c) -> (..., X, K)``.
AGGREGATORS: dict[str, Callable] = {"min": _aggregate_min, "mean_std": _aggregate_mean_std}


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
    _check_problem(problem)
    eta = check_eta(eta)
    n = integer(n, "n")
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
    beta = real_array(beta, "beta")
    if (beta < 0).any():
        raise ValueError(f"beta: must be >= 0, got {beta}")
    beta = np.broadcast_to(beta, problem.batch_shape)
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
    _check_problem(problem)
    check_choice(design, "design", DESIGNS)
    return DESIGNS[design](problem, integer(n, "n"))


def sample_offline_data(problem: LinearBandit, n: int, rng: np.random.Generator, design: str = "reference") -> PreferenceData:
    """n comparisons per problem from the behaviour policies of ``design`` with BT labels on r*."""
    _check_problem(problem)
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: the number of comparisons must be a positive integer, got {n!r}")
    first, second = behaviour_policies(problem, design, int(n))
    return problem.sample_preferences(first, second, int(n), rng)
