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

The pessimistic pieces live in :mod:`rlbandit.pessimism`, the reward model, radius, ensembles,
diagnostics and data designs in :mod:`rlbandit.offline_models`; this module is the registry of
methods (:data:`METHODS`, :func:`register`) and the entry point :func:`learn`.

**β.** Either a number, or ``"theory"``: the radius of the confidence set {θ : ‖θ − θ̂‖_{Σ_D} ≤ β}
that holds with probability ≥ 1 − δ, see :func:`theory_beta` (rules ``"self_normalized"`` — explicit
constants, Abbasi-Yadkori et al. 2011 Thm 1 with the curvature argument of Zhu et al. 2023 Lemma 3.1 —
and ``"zhu2023"``, Zhu et al.'s Lemma 3.1 rate with its unspecified constant set to 1).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

import numpy as np

from rlbandit import kernels
from rlbandit._checks import check_choice, check_eta, check_int, check_positive_float, same_callable
from rlbandit.offline_models import (
    AGGREGATORS,
    BETA_RULES,
    DESIGNS,
    REFERENCES,
    Diagnostics,
    RewardModel,
    behaviour_policies,
    bootstrap_weights,
    check_data,
    coverage_coefficient,
    diagnostics,
    ensemble_rewards,
    fit_ensemble,
    fit_reward,
    reference_features,
    sample_offline_data,
    theory_beta,
)
from rlbandit.pessimism import SOLVERS, LCBPolicySolution, lcb_policy, lcb_rewards, pessimistic_objective, uncertainty
from rlbandit.preferences import PreferenceData
from rlbandit.problem import LinearBandit

__all__ = [
    "learn", "register", "METHODS", "MLEOptions", "LCBOptions", "LCBPolicyOptions", "EnsembleOptions",
    "EnsembleMeanStdOptions", "RewardModel", "fit_reward", "reference_features", "REFERENCES",
    "uncertainty", "lcb_rewards", "lcb_policy", "LCBPolicySolution", "pessimistic_objective",
    "SOLVERS", "theory_beta", "BETA_RULES", "bootstrap_weights", "fit_ensemble", "ensemble_rewards",
    "AGGREGATORS", "Method", "make_options", "Diagnostics", "diagnostics", "coverage_coefficient", "DESIGNS",
    "behaviour_policies", "sample_offline_data",
]


# ---------------------------------------------------------------------------------------------
# Options and the public entry point
# ---------------------------------------------------------------------------------------------

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
        float(check_positive_float(self.reg, "reg"))
        if self.bound is not None:
            float(check_positive_float(self.bound, "bound"))


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
            float(check_positive_float(self.beta, "beta", allow_zero=True))
        if self.theta_bound is not None:
            float(check_positive_float(self.theta_bound, "theta_bound"))
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
        float(check_positive_float(self.reg, "reg"))
        for r in tuple(self.regs):
            float(check_positive_float(r, "regs"))
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
        float(check_positive_float(self.c, "c", allow_zero=True))
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


def register(name: str, fit: Callable, options: type = MLEOptions, *, replace: bool = False) -> Method:
    """Add an offline method to :data:`METHODS`, so :func:`learn` and the ``offline`` study run it.

    Args:
        name: the method's key, a Python identifier.
        fit: ``(problem, data, eta, options, rng) -> log-probs`` of shape batch_shape + (X, K): a
            module-level function (process workers import it), composed from this module's pieces
            (``fit_reward``, ``reference_features``, ``lcb_rewards``, ``rlbandit.kernels.gibbs``, …).
        options: its frozen options dataclass (validated in ``__post_init__``); every field needs a
            default, since the study runs a method with its defaults plus ``reg``.
        replace: allow replacing an existing entry (False: a taken name raises ValueError).

    Returns:
        the registered :class:`Method`.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name: expected a Python identifier, got {name!r}")
    if not callable(fit):
        raise ValueError(f"fit: expected a callable (problem, data, eta, options, rng) -> log-probs, got {fit!r}")
    if not isinstance(options, type) or not hasattr(options, "__dataclass_fields__"):
        raise ValueError(f"options: expected a dataclass type, got {options!r}")
    method = Method(options, fit)
    taken = METHODS.get(name)
    if taken is not None and not replace and not (same_callable(taken.options, options) and same_callable(taken.fit, fit)):
        raise ValueError(f"name: method {name!r} is already registered (pass replace=True to override)")
    METHODS[name] = method
    return method


def make_options(method: str, **options):
    """The validated options dataclass of ``method`` (unknown option → ValueError naming it)."""
    check_choice(method, "method", METHODS)
    cls = METHODS[method].options
    known = {f.name for f in fields(cls)}
    for name in options:
        if name not in known:
            raise ValueError(f"{name}: not an option of method {method!r}; its options are {sorted(known)}")
    return cls(**options)


class _MethodDefault:
    """Marks an option left to the method's own default (shown by ``help(learn)``)."""

    def __repr__(self) -> str:
        return "<the method's default>"


_DEFAULT = _MethodDefault()


def learn(problem: LinearBandit, data: PreferenceData, eta, method: str = "mle", rng: np.random.Generator | None = None,
          *, options=None, reg=_DEFAULT, bound=_DEFAULT, beta=_DEFAULT, reference=_DEFAULT, theta_bound=_DEFAULT,
          delta=_DEFAULT, beta_rule=_DEFAULT, solver=_DEFAULT, n_models=_DEFAULT, regs=_DEFAULT, bootstrap=_DEFAULT,
          c=_DEFAULT) -> np.ndarray:
    """Learn a policy offline from preference data.

    Args:
        problem: the bandit (features, π0, d0; θ* is never read); batched problems (..., X, K, d)
            need data with the same batch shape.
        data: the comparisons D.
        eta: η > 0.
        method: a key of :data:`METHODS` (``mle``, ``lcb``, ``lcb_policy``, ``ensemble_min``,
            ``ensemble_mean_std``, or one added by :func:`register`).
        rng: the generator for the bootstrap of the ensembles (required there, unused elsewhere).
        options: a ready options dataclass of the method (e.g. ``LCBOptions(beta=2.0)``, or a
            registered method's own); exclusive with the keywords below.
        reg: ridge λ > 0 (all methods; default 1).  bound: ‖θ‖ ≤ B for the constrained MLE
            (``mle``, ``lcb``, ``lcb_policy``).  beta: β ≥ 0 or ``"theory"`` (``lcb``,
            ``lcb_policy``; default 1).  reference: ν — ``"ref"``, ``"zero"`` or log-probs (LCBs,
            ensembles).  theta_bound, delta, beta_rule: B, δ and the rule of β = "theory".
            solver: ``"dual"`` or ``"cvxpy"`` (``lcb_policy``).  n_models, regs, bootstrap:
            ensemble size, member ridges, resampling (ensembles).  c: the std weight of
            ``ensemble_mean_std``. Each is validated by the method's options dataclass
            (:class:`MLEOptions`, :class:`LCBOptions`, :class:`LCBPolicyOptions`,
            :class:`EnsembleOptions`, :class:`EnsembleMeanStdOptions`); one the method does not
            have raises ValueError naming it.

    Returns:
        log-probs of the learned policy, shape batch_shape + (X, K).
    """
    eta = check_eta(eta)
    given = {name: value for name, value in (("reg", reg), ("bound", bound), ("beta", beta), ("reference", reference),
                                             ("theta_bound", theta_bound), ("delta", delta), ("beta_rule", beta_rule),
                                             ("solver", solver), ("n_models", n_models), ("regs", regs),
                                             ("bootstrap", bootstrap), ("c", c)) if value is not _DEFAULT}
    check_choice(method, "method", METHODS)
    if options is None:
        opts = make_options(method, **given)
    elif given:
        raise ValueError(f"options: give either options or keyword options, not both (got {sorted(given)})")
    elif not isinstance(options, METHODS[method].options):
        raise ValueError(f"options: expected a {METHODS[method].options.__name__} for method {method!r}, "
                         f"got {type(options).__name__}")
    else:
        opts = options
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    check_data(problem, data)
    return METHODS[method].fit(problem, data, eta, opts, rng)
