"""The registry of contract cases: one valid example call per public function of the core modules.

:mod:`rlbandit.contracts` derives bad inputs from each valid call (NaN, ±inf, complex, wrong rank,
empty, a string, None in an array argument; NaN, ±inf, a string, None, zero or a negative where a
positive number is required in a scalar one; …) and checks the function answers each with a
``ValueError``/``TypeError`` naming the argument, or — only where :attr:`Case.allowed` says the
value is legitimate (−inf in log-probabilities marks zero mass) — with a result free of NaN.

Every public function in ``__all__`` of :data:`CONTRACT_MODULES` needs an entry in :data:`CASES`
(keyed ``module.name`` by the first module that exports it): the contract suite fails otherwise,
so no new function skips the checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from rlbandit import contract_inputs as v

__all__ = ["Case", "CASES", "CONTRACT_MODULES", "LOGPROB_OK"]

#: Modules whose public functions (``__all__``) must each have a case.
CONTRACT_MODULES = ("rlbandit.oracle", "rlbandit.reward", "rlbandit.geometry", "rlbandit.pessimism",
                    "rlbandit.sampling_oracles", "rlbandit.nash", "rlbandit.losses", "rlbandit.preferences",
                    "rlbandit.problem", "rlbandit.radii", "rlbandit.stats", "rlbandit.alignment_targets",
                    "rlbandit.asymptotics", "rlbandit.preference_models", "rlbandit.general_preferences",
                    "rlbandit.pg_fixed_points", "rlbandit.pg_objectives", "rlbandit.nash_dynamics", "rlbandit.online",
                    "rlbandit.offline", "rlbandit.offline_models", "rlbandit.dpo", "rlbandit.policy_gradient",
                    "rlbandit.policies", "rlbandit.nash_online", "rlbandit.enhancers")

#: What a log-probability argument legitimately accepts: −inf is zero mass.
LOGPROB_OK = ("-inf",)


@dataclass(frozen=True)
class Case:
    """One valid call of a public function and what its arguments legitimately accept.

    Attributes:
        kwargs: builds fresh valid keyword arguments (arrays are fresh on every call).
        positive: scalar arguments that must be > 0 (zero and a negative value are bad inputs).
        nonnegative: scalar arguments that must be >= 0 (a negative value is a bad input).
        allowed: argument → the bad-input kinds (:data:`rlbandit.contracts.KINDS`) it legitimately
            accepts; the function must then return a result without NaN.
        nan_result: argument → bad-input kinds for which a NaN in the result is the documented
            answer (the statistics of an empty set of replicates); the kinds count as allowed.
        cleanup: undoes a call's side effect (a registry entry), run after every call.
        unchecked: a kernel for arrays its callers validated (hot paths call it; its docstring
            says "unchecked"): the suite runs its valid call and skips the bad inputs.
    """

    kwargs: Callable[[], dict[str, Any]]
    positive: tuple[str, ...] = ()
    nonnegative: tuple[str, ...] = ()
    allowed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    nan_result: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    cleanup: Callable[[], None] | None = None
    unchecked: bool = False


#: What a set of replicates legitimately holds: NaN (dropped), ±inf (data), any shape (flattened).
_REPLICATES_OK = ("nan", "+inf", "-inf", "rank")

#: A leading batch axis is legitimate wherever functions batch: a trailing extra axis then reads as one.
_BATCH = ("rank",)

_LOGP = {"logprobs": LOGPROB_OK, "ref_logprobs": LOGPROB_OK, "ref": LOGPROB_OK}
_ORACLE = dict(rewards=v.rewards, ref_logprobs=v.ref)


def _call(**builders) -> Callable[[], dict[str, Any]]:
    """Keyword arguments from builders (callables are called per call; other values used as they are)."""
    return lambda: {k: (v() if callable(v) and not isinstance(v, type) else v) for k, v in builders.items()}


_XKD = dict(features=v.features, logprobs=v.pol)
_NASH = dict(logprobs=v.pol, pref=v.pref, ref_logprobs=v.ref, eta=0.5)

#: ``module.name`` → its case.
CASES: dict[str, Case] = {
    # oracle
    "rlbandit.oracle.gibbs": Case(_call(**_ORACLE, eta=0.5), positive=("eta",), allowed=_LOGP),
    "rlbandit.oracle.kl": Case(_call(logp=v.pol, logq=v.ref), allowed={"logp": LOGPROB_OK, "logq": LOGPROB_OK}),
    "rlbandit.oracle.value": Case(_call(logprobs=v.pol, **_ORACLE, eta=0.5, context_probs=lambda: np.full(3, 1 / 3)),
                                  positive=("eta",), allowed=_LOGP),
    "rlbandit.oracle.optimal_value": Case(_call(**_ORACLE, eta=0.5, context_probs=lambda: np.full(3, 1 / 3)),
                                          positive=("eta",), allowed=_LOGP),
    "rlbandit.oracle.log_partition": Case(_call(**_ORACLE, eta=0.5), positive=("eta",), allowed=_LOGP),
    "rlbandit.oracle.expected_reward": Case(_call(logprobs=v.pol, rewards=v.rewards), allowed=_LOGP),
    "rlbandit.oracle.normalize_logits": Case(_call(logits=v.rewards), allowed={"logits": LOGPROB_OK + _BATCH}),
    # reward learning
    "rlbandit.reward.fit_bt": Case(_call(diffs=v.diffs, labels=v.labels, reg=0.1, tol=1e-10, max_iter=50),
                                   positive=("tol", "max_iter"), nonnegative=("reg",)),
    "rlbandit.reward.bt_loss": Case(_call(theta=v.theta, diffs=v.diffs, labels=v.labels, reg=0.1),
                                    nonnegative=("reg",), allowed={"theta": _BATCH}),
    "rlbandit.reward.covariance": Case(_call(diffs=v.diffs, reg=0.1, scale=1.0), nonnegative=("reg", "scale"),
                                       allowed={"diffs": _BATCH}),
    "rlbandit.reward.mahalanobis_norm": Case(_call(vectors=v.diffs, cov=v.cov), allowed={"vectors": _BATCH}),
    "rlbandit.reward.cholesky": Case(_call(cov=v.cov)),
    "rlbandit.reward.bt_solver": Case(_call(n=100, d=4), positive=("n", "d")),
    # geometry
    "rlbandit.geometry.context_average": Case(_call(vectors=v.nu, context_probs=lambda: np.full(3, 1 / 3)),
                                              unchecked=True),
    "rlbandit.geometry.gap_norms": Case(_call(features=v.features, anchor=v.nu, cov=v.cov)),
    "rlbandit.geometry.inverse_norm": Case(_call(vectors=v.diffs, factor=v.factor), unchecked=True),
    "rlbandit.geometry.policy_features": Case(_call(**_XKD), allowed=_LOGP, unchecked=True),
    "rlbandit.geometry.policy_gap_norms": Case(_call(**_XKD, anchor=v.nu, cov=v.cov), allowed=_LOGP),
    "rlbandit.geometry.ucb_bonus": Case(_call(**_XKD, beta=0.5, cov=v.cov), nonnegative=("beta",), allowed=_LOGP),
    "rlbandit.geometry.whiten": Case(_call(vectors=v.diffs, factor=v.factor), unchecked=True),
    # pessimism
    "rlbandit.pessimism.lcb_policy": Case(_call(features=v.features, theta=v.theta, cov=v.cov, nu=v.nu, beta=0.3,
                                                ref_logprobs=v.ref, eta=0.5), positive=("eta",),
                                          nonnegative=("beta",), allowed=_LOGP),
    "rlbandit.pessimism.lcb_rewards": Case(_call(features=v.features, theta=v.theta, factor=v.factor, nu=v.nu,
                                                 beta=0.3),
                                           nonnegative=("beta",), allowed={"theta": _BATCH}),
    "rlbandit.pessimism.pessimistic_objective": Case(_call(logprobs=v.pol, features=v.features, theta=v.theta,
                                                           cov=v.cov, nu=v.nu, beta=0.3, ref_logprobs=v.ref, eta=0.5),
                                                     positive=("eta",), nonnegative=("beta",),
                                                     allowed={**_LOGP, "theta": _BATCH}),
    "rlbandit.pessimism.uncertainty": Case(_call(features=v.features, nu=v.nu, factor=v.factor)),
    # sampling oracles
    "rlbandit.sampling_oracles.best_of_n": Case(_call(**_ORACLE, n=4), positive=("n",), allowed=_LOGP),
    "rlbandit.sampling_oracles.best_of_n_kl": Case(_call(**_ORACLE, n=4), positive=("n",), allowed=_LOGP),
    "rlbandit.sampling_oracles.best_of_n_win_rate": Case(_call(**_ORACLE, n=4), positive=("n",), allowed=_LOGP),
    "rlbandit.sampling_oracles.best_of_n_kl_bound": Case(_call(n=4), positive=("n",)),
    "rlbandit.sampling_oracles.gibbs_matching_kl": Case(_call(**_ORACLE, target_kl=0.1, iterations=40),
                                                        positive=("iterations",), nonnegative=("target_kl",),
                                                        allowed=_LOGP),
    "rlbandit.sampling_oracles.gibbs_at_average_kl": Case(_call(**_ORACLE, target_kl=0.1, iterations=40),
                                                          positive=("iterations",), nonnegative=("target_kl",),
                                                          allowed=_LOGP),
    "rlbandit.sampling_oracles.select_top_per_prompt": Case(_call(rewards=v.rewards), allowed={"rewards": _BATCH}),
    "rlbandit.sampling_oracles.select_top_k": Case(_call(rewards=v.rewards, k=3), positive=("k",),
                                                   allowed={"rewards": _BATCH}),
    "rlbandit.sampling_oracles.rejection_sampling_finetune": Case(_call(
        problem=v.problem, config=lambda: __import__("rlbandit.sampling_oracles", fromlist=["RSConfig"]).RSConfig(
            n=4, prompts=8, rounds=1, seed=0))),
    # nash
    "rlbandit.nash.solve": Case(_call(pref=v.pref, ref_logprobs=v.ref, eta=0.5, tol=1e-8, max_iter=2000),
                                positive=("eta", "tol", "max_iter"), allowed=_LOGP),
    "rlbandit.nash.exploitability": Case(_call(**_NASH), positive=("eta",), allowed=_LOGP),
    "rlbandit.nash.exploitability_via_partition": Case(_call(**_NASH), positive=("eta",), allowed=_LOGP),
    "rlbandit.nash.fixed_point_residual": Case(_call(**_NASH), positive=("eta",), allowed=_LOGP),
    "rlbandit.nash.best_response": Case(_call(**_NASH), positive=("eta",), allowed=_LOGP),
    "rlbandit.nash.worst_case_win_rate": Case(_call(logprobs=v.pol, pref=v.pref), allowed=_LOGP),
    "rlbandit.nash.nash_md_iterates": Case(_call(pref=v.pref, ref_logprobs=v.ref, eta=0.5, n_steps=5, step=0.1),
                                           positive=("eta", "step"), nonnegative=("n_steps",),
                                           allowed=_LOGP),
    "rlbandit.nash.nash_md_bound": Case(_call(eta=0.5, n_steps=5), positive=("eta",), nonnegative=("n_steps",)),
    "rlbandit.nash.nash_md_constant_step_bound": Case(_call(eta=0.5, step=0.1, n_steps=5, initial_kl=0.2),
                                                      positive=("eta", "step"),
                                                      nonnegative=("n_steps", "initial_kl"),
                                                      allowed={"initial_kl": ("+inf",)}),
    "rlbandit.nash.register": Case(_call(name="contract_probe", solver=v.extragradient, max_iter=100),
                                   positive=("max_iter",), allowed={"name": ("unknown",)},
                                   cleanup=v.drop_probe_solver),
    "rlbandit.nash.min_response": Case(_call(logprobs=v.pol, pref=v.pref, ref=v.ref, eta=0.5), positive=("eta",),
                                       allowed=_LOGP),
    "rlbandit.nash.duality_gap_per_context": Case(_call(logprobs=v.pol, pref=v.pref, ref=v.ref, eta=0.5),
                                                  positive=("eta",), allowed=_LOGP),
    # losses (torch)
    "rlbandit.losses.preference_loss": Case(v.loss_kwargs, positive=("beta",), nonnegative=("label_smoothing",),
                                            allowed={k: LOGPROB_OK for k in ("policy_chosen_logps",
                                                                             "policy_rejected_logps",
                                                                             "ref_chosen_logps",
                                                                             "ref_rejected_logps")}),
    "rlbandit.losses.kl_estimate": Case(_call(logprobs=lambda: v.torch([-1.2, -0.7, -2.0]),
                                              ref_logprobs=lambda: v.torch([-1.0, -0.9, -1.5]), kind="k3"),
                                        allowed={"ref_logprobs": LOGPROB_OK}),  # π0 without mass: KL = +inf
    # preferences
    "rlbandit.preferences.sample_categorical": Case(_call(logprobs=v.pol, size=5, rng=v.rng), nonnegative=("size",),
                                                    allowed={"logprobs": LOGPROB_OK + _BATCH}),
    "rlbandit.preferences.sample_actions": Case(_call(logprobs=v.pol, contexts=lambda: np.array([0, 2, 1, 1]),
                                                      rng=v.rng), allowed={**_LOGP, "contexts": ("empty",)}),
    "rlbandit.preferences.sample_bt_labels": Case(_call(reward_diff=lambda: np.array([0.3, -1.2, 2.0]), rng=v.rng),
                                                  allowed={"reward_diff": ("+inf", "-inf", "rank", "empty")}),
    # problems
    "rlbandit.problem.make_problem": Case(_call(config=lambda: __import__(
        "rlbandit.problem", fromlist=["ProblemConfig"]).ProblemConfig(n_contexts=3, n_actions=4, dim=2))),
    "rlbandit.problem.make_problems": Case(_call(config=lambda: __import__(
        "rlbandit.problem", fromlist=["ProblemConfig"]).ProblemConfig(n_contexts=3, n_actions=4, dim=2),
        seeds=np.array([0, 1]))),
    "rlbandit.problem.stack_problems": Case(_call(problems=lambda: [v.problem(), v.problem()])),
    # radii
    "rlbandit.radii.curvature": Case(_call(theta_bound=2.0), nonnegative=("theta_bound",)),
    "rlbandit.radii.self_normalized_radius": Case(_call(diffs=v.diffs, reg=0.1, theta_bound=2.0, delta=0.1),
                                                  positive=("reg", "delta"), nonnegative=("theta_bound",),
                                                  allowed={"diffs": _BATCH}),
    "rlbandit.radii.xiong2024_radius": Case(_call(dim=2, T=3, m=4, reg=0.1, theta_bound=2.0, delta=0.1),
                                            positive=("dim", "T", "m", "delta"),
                                            nonnegative=("theta_bound", "reg")),
    "rlbandit.radii.zhu2023_radius": Case(_call(dim=2, reg=0.1, theta_bound=2.0, delta=0.1),
                                          positive=("dim", "reg", "delta"), nonnegative=("theta_bound",)),
    # statistics of results: NaN entries are dropped (a missing replicate), values of any shape are
    # flattened, ±inf are data; no value left gives NaN (documented)
    "rlbandit.stats.mean_se": Case(_call(values=v.replicates), allowed={"values": _REPLICATES_OK},
                                   nan_result={"values": ("+inf", "-inf", "empty")}),
    "rlbandit.stats.t_interval": Case(_call(values=v.replicates, level=0.9), positive=("level",),
                                      allowed={"values": _REPLICATES_OK},
                                      nan_result={"values": ("+inf", "-inf", "empty")}),
    "rlbandit.stats.format_mean_se": Case(_call(values=v.replicates), allowed={"values": _REPLICATES_OK + ("empty",)},
                                          nan_result={"values": ("+inf", "-inf")}),
    "rlbandit.stats.geometric_mean": Case(_call(values=v.replicates), allowed={"values": _REPLICATES_OK},
                                          nan_result={"values": ("-inf", "empty")}),
    "rlbandit.stats.log_mean_band": Case(_call(values=v.replicates, level=0.9), positive=("level",),
                                         allowed={"values": ("nan", "rank")}, nan_result={"values": ("empty",)}),
    "rlbandit.stats.loglog_slope": Case(_call(x=lambda: np.array([10.0, 20.0, 40.0]),
                                              values=lambda: np.array([0.4, 0.2, 0.1])), allowed={"values": ("rank",)}),
    "rlbandit.stats.bootstrap_means": Case(_call(values=v.replicates, rng=v.rng, n_boot=20), positive=("n_boot",),
                                           allowed={"values": ("rank",)},
                                           nan_result={"values": ("nan", "+inf", "-inf")}),
    "rlbandit.stats.bootstrap_ci": Case(_call(values=v.replicates, rng=v.rng, statistic=lambda: np.negative,
                                              n_boot=20, level=0.9), positive=("n_boot", "level"),
                                        allowed={"values": ("+inf", "-inf")}),
    "rlbandit.stats.percentile_interval": Case(_call(samples=lambda: np.array([0.3, 0.5, 0.4, 0.6]), level=0.9),
                                               positive=("level",), allowed={"samples": ("rank",)},
                                               nan_result={"samples": ("+inf", "-inf")}),
    # alignment targets and asymptotics
    "rlbandit.alignment_targets.ipo_target": Case(_call(**_ORACLE, beta=0.5), positive=("beta",), allowed=_LOGP),
    "rlbandit.alignment_targets.win_rate_against": Case(_call(rewards=v.rewards, behaviour_logprobs=v.ref),
                                                        allowed={"behaviour_logprobs": LOGPROB_OK}),
    "rlbandit.asymptotics.bt_fisher_information": Case(_call(problem=v.problem, logprobs1=v.pol, logprobs2=v.ref),
                                                       allowed={"logprobs1": LOGPROB_OK, "logprobs2": LOGPROB_OK}),
    "rlbandit.asymptotics.feature_covariance": Case(_call(problem=v.problem, logprobs=v.pol),
                                                    allowed={"logprobs": LOGPROB_OK + ("none",)}),  # None: π0
    "rlbandit.asymptotics.subopt_constant": Case(_call(problem=v.problem, eta=0.5), positive=("eta",)),
    "rlbandit.asymptotics.local_sample_size": Case(_call(problem=v.problem, eta=0.5), positive=("eta",)),
    # general preferences
    "rlbandit.preference_models.check_preference": Case(_call(pref=v.pref)),
    "rlbandit.preference_models.bradley_terry": Case(_call(rewards=v.rewards), allowed={"rewards": _BATCH}),
    "rlbandit.preference_models.linear_general": Case(_call(features=v.features, skew=v.skew, theta=v.theta),
                                                      allowed={"features": _BATCH, "theta": _BATCH}),
    "rlbandit.preference_models.linear_general_unchecked": Case(_call(features=v.features, skew=v.skew, theta=v.theta),
                                                                 unchecked=True),
    "rlbandit.preference_models.rock_paper_scissors": Case(_call(n_contexts=2, n_actions=3, margin=0.5),
                                                           positive=("n_contexts", "n_actions"),
                                                           nonnegative=("margin",)),
    "rlbandit.preference_models.random_antisymmetric": Case(_call(shape=(3, 4), rng=v.rng, scale=1.0),
                                                            nonnegative=("scale",)),
    "rlbandit.preference_models.annotator_mixture": Case(_call(features=v.features, thetas=lambda: np.stack(
        [v.theta(), -v.theta()]), weights=lambda: np.array([0.3, 0.7])),
        allowed={"features": _BATCH, "thetas": _BATCH}),
    "rlbandit.preference_models.antisymmetric_features": Case(_call(features=v.features), allowed={"features": _BATCH}),
    "rlbandit.preference_models.pair_features": Case(_call(features=v.features, data=v.data)),
    "rlbandit.preference_models.unpack_weights": Case(_call(weights=lambda: np.array([0.7, 0.8, -0.4]), dim=2),
                                                      positive=("dim",)),
    "rlbandit.preference_models.fit_general": Case(_call(psi=v.psi, labels=v.labels, reg=0.5), nonnegative=("reg",)),
    "rlbandit.preference_models.fit_general_preference": Case(_call(features=v.features, data=v.data, reg=0.5),
                                                              nonnegative=("reg",)),
    "rlbandit.preference_models.sample_comparisons": Case(_call(pref=v.pref, logprobs1=v.pol, logprobs2=v.ref, m=5,
                                                                rng=v.rng), positive=("m",),
                                                          allowed={"logprobs1": LOGPROB_OK, "logprobs2": LOGPROB_OK}),
    "rlbandit.preference_models.win_rate": Case(_call(logprobs1=v.pol, logprobs2=v.ref, pref=v.pref),
                                                 allowed={"logprobs1": LOGPROB_OK, "logprobs2": LOGPROB_OK}),
    "rlbandit.preference_models.win_rate_unchecked": Case(_call(lp1=v.pol, lp2=v.ref, pref=v.pref),
                                                          allowed={"lp1": LOGPROB_OK, "lp2": LOGPROB_OK},
                                                          unchecked=True),
    "rlbandit.preference_models.payoff": Case(_call(pref=v.pref, logprobs=v.pol), allowed=_LOGP, unchecked=True),
    "rlbandit.preference_models.is_transitive": Case(_call(pref=v.pref)),
    "rlbandit.preference_models.condorcet_winner": Case(_call(pref=v.pref)),
    "rlbandit.general_preferences.make_preference_problem": Case(_call(config=v.pref_config)),
    "rlbandit.general_preferences.make_preference_problems": Case(_call(config=v.pref_config,
                                                                        seeds=lambda: np.array([0, 1]))),
    # policy-gradient fixed points and objectives
    "rlbandit.pg_fixed_points.fixed_point": Case(_call(**_ORACLE, eta=0.5), positive=("eta",), allowed=_LOGP),
    "rlbandit.pg_fixed_points.forward_kl_policy": Case(_call(**_ORACLE, eta=0.5), positive=("eta",), allowed=_LOGP),
    "rlbandit.pg_fixed_points.grpo_fixed_point": Case(_call(**_ORACLE, eta=0.5, iterations=200),
                                                      positive=("eta", "iterations"), allowed=_LOGP),
    "rlbandit.pg_objectives.adaptive_kl_coefficient": Case(_call(eta=0.5, kl=0.2, target=0.1, horizon=100.0),
                                                           positive=("eta", "target", "horizon")),
    "rlbandit.pg_objectives.aggregate_token_loss": Case(_call(per_token=v.returns, mask=lambda: v.torch(
        [[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]]), loss_type="dapo")),
    "rlbandit.pg_objectives.clipped_surrogate": Case(_call(ratio=lambda: v.torch([1.1, 0.9, 1.3]),
                                                           advantages=lambda: v.torch([0.5, -0.2, 0.1]), clip=0.2),
                                                     positive=("clip",), allowed={"clip": ("none",)}),
    "rlbandit.pg_objectives.group_advantages": Case(_call(returns=v.returns), allowed={"returns": _BATCH}),
    "rlbandit.pg_objectives.leave_one_out_advantages": Case(_call(returns=v.returns), allowed={"returns": _BATCH}),
    "rlbandit.nash_dynamics.stochastic_nash_md_iterates": Case(_call(pref=v.pref, ref_logprobs=v.ref, eta=0.5,
                                                                     n_steps=3, n_samples=4, rng=v.rng),
                                                               positive=("eta", "n_samples"),
                                                               nonnegative=("n_steps",), allowed=_LOGP),
    "rlbandit.nash_dynamics.sample_actions": Case(_call(logprobs=v.pol, n_samples=4, rng=v.rng),
                                                  nonnegative=("n_samples",),
                                                  allowed={"logprobs": LOGPROB_OK + _BATCH}),
    # online iterative RLHF
    "rlbandit.online.theory_beta": Case(_call(dim=2, T=3, m=4, reg=0.1, reward_bound=2.0, delta=0.1),
                                        positive=("dim", "T", "m", "delta"), nonnegative=("reg", "reward_bound")),
    "rlbandit.online.optimistic_search": Case(_call(features=lambda: v.features()[None],
                                                    main_logprobs=lambda: v.pol()[None],
                                                    factor=lambda: v.factor()[None], beta=0.5, eta=0.5,
                                                    context_probs=lambda: np.full(3, 1 / 3), rng=v.rng,
                                                    n_random_directions=2, n_tilts=4, n_refine=1),
                                              positive=("eta", "n_tilts"),
                                              nonnegative=("beta", "n_refine", "n_random_directions"),
                                              allowed={"main_logprobs": LOGPROB_OK}),
    "rlbandit.online.best_of_n_logprobs": Case(_call(logprobs=v.pol, scores=v.rewards, n=3), positive=("n",),
                                               allowed=_LOGP),
    "rlbandit.online.iterate": Case(_call(problem=v.problem, eta=0.5, enhancer="ucb", T=2, m=4, rng=v.rng),
                                    positive=("eta", "T", "m")),
    "rlbandit.online.offline_baseline": Case(_call(problem=v.problem, eta=0.5, sizes=lambda: [4, 8], rng=v.rng),
                                             positive=("eta",)),
    "rlbandit.online.heldout_loglik": Case(_call(theta_hat=v.theta, diffs=v.diffs, labels=v.labels),
                                           allowed={"theta_hat": _BATCH}),
    "rlbandit.online.select_by_heldout": Case(_call(loglik=lambda: np.array([-0.7, -0.5, -0.6]),
                                                    values=lambda: np.array([0.3, 0.2, 0.25])),
                                              allowed={"loglik": ("-inf", "rank"), "values": ("+inf", "-inf", "rank")}),
    # offline RLHF
    "rlbandit.offline.learn": Case(_call(problem=v.problem, data=v.data, eta=0.5, method="lcb"), positive=("eta",)),
    "rlbandit.offline.register": Case(_call(name="contract_probe", fit=lambda: v.fit_mle),
                                      allowed={"name": ("unknown",)}, cleanup=v.drop_probe_method),
    "rlbandit.offline.make_options": Case(_call(method="lcb", beta=0.5)),
    "rlbandit.offline.fit_reward": Case(_call(problem=v.problem, data=v.data, reg=0.5), nonnegative=("reg",)),
    "rlbandit.offline.reference_features": Case(_call(problem=v.problem, reference="ref")),
    "rlbandit.offline.theory_beta": Case(_call(diffs=v.diffs, reg=0.1, theta_bound=2.0, delta=0.1),
                                         positive=("reg", "delta"), nonnegative=("theta_bound",),
                                         allowed={"diffs": _BATCH}),
    "rlbandit.offline.bootstrap_weights": Case(_call(n=6, n_models=3, batch_shape=(), rng=v.rng),
                                               positive=("n", "n_models"), allowed={"batch_shape": ("empty",)}),
    "rlbandit.offline.fit_ensemble": Case(_call(problem=v.problem, data=v.data, n_models=2, rng=v.rng),
                                          positive=("n_models",)),
    "rlbandit.offline.ensemble_rewards": Case(_call(features=v.features, nu=v.nu,
                                                    thetas=lambda: np.stack([v.theta(), -v.theta()])),
                                              allowed={"thetas": _BATCH}),
    "rlbandit.offline.diagnostics": Case(_call(problem=v.problem, data=v.data, eta=0.5, beta=0.3),
                                         positive=("eta",), nonnegative=("beta",)),
    "rlbandit.offline.coverage_coefficient": Case(_call(problem=v.problem, cov=v.cov, eta=0.5, n=6),
                                                  positive=("eta", "n")),
    "rlbandit.offline.behaviour_policies": Case(_call(problem=v.problem, design="reference", n=6), positive=("n",)),
    "rlbandit.offline.sample_offline_data": Case(_call(problem=v.problem, n=6, rng=v.rng), nonnegative=("n",)),
    "rlbandit.offline_models.check_data": Case(_call(problem=v.problem, data=v.data)),
    # approximate oracles: direct alignment, policy gradient, policies
    "rlbandit.dpo.train_dpo": Case(_call(problem=v.problem, data=v.data, config=lambda: v.dpo_config())),
    "rlbandit.dpo.policy_logprobs": Case(_call(policy=v.tabular_policy)),
    "rlbandit.dpo.online_dpo": Case(_call(problem=v.problem, config=lambda: __import__(
        "rlbandit.dpo", fromlist=["OnlineDPOConfig"]).OnlineDPOConfig(dpo=v.dpo_config(), iterations=2,
                                                                       pairs_per_iteration=8))),
    "rlbandit.dpo.dpo_objective": Case(_call(policy=lambda: v.tabular_policy(batched=True),
                                             ref_logprobs=lambda: v.torch(v.ref()[None]),
                                             data=lambda: v.data(batched=True), config=lambda: v.dpo_config()),
                                       allowed={"ref_logprobs": LOGPROB_OK}),
    "rlbandit.policy_gradient.train_policy_gradient": Case(_call(problem=v.problem, config=lambda: __import__(
        "rlbandit.policy_gradient", fromlist=["PGConfig"]).PGConfig(steps=4, batch_contexts=4, log_every=2))),
    "rlbandit.policy_gradient.exact_update_direction": Case(_call(rewards=v.rewards, ref_logprobs=v.ref, logprobs=v.pol,
                                                                  eta=0.5), positive=("eta",), allowed=_LOGP),
    "rlbandit.policies.make_policy": Case(_call(kind="tabular", problem=v.problem, eta=0.5), positive=("eta",)),
    "rlbandit.policies.as_tensor": Case(_call(array=v.rewards), allowed={"array": ("-inf", "rank", "empty")}),
    # the online Nash loop
    "rlbandit.nash_online.bt_rlhf_policy": Case(_call(features=v.features, data=v.data, ref_logprobs=v.ref, eta=0.5,
                                                      reg=0.5), positive=("eta",), nonnegative=("reg",),
                                                allowed=_LOGP),
    "rlbandit.nash_online.general_nash_policy": Case(_call(features=v.features, data=v.data, ref_logprobs=v.ref,
                                                           eta=0.5, reg=0.5), positive=("eta",), nonnegative=("reg",),
                                                     allowed=_LOGP),
    "rlbandit.nash_online.policy_metrics": Case(_call(problem=lambda: v.preference_problem(), logprobs=v.pol, eta=0.5,
                                                      nash=v.ref, bt=v.pol), positive=("eta",),
                                                allowed={"logprobs": LOGPROB_OK, "nash": LOGPROB_OK,
                                                         "bt": LOGPROB_OK}),
    "rlbandit.nash_online.run_online_nash": Case(_call(problem=lambda: v.preference_problem(),
                                                       config=lambda: v.nash_config())),
    "rlbandit.enhancers.register": Case(_call(name="contract_probe", enhancer=lambda: v.ucb_enhancer()),
                                        allowed={"name": ("unknown",)}, cleanup=v.drop_probe_enhancer),
}
