"""Study ``oracles``: how close does each approximate oracle practice uses get to the exact Gibbs
policy, and at what cost? (issue 7; DESIGN §5)

For every scenario × η, on the same seeded problems (vectorised over seeds), each method's policy
π̂ is compared with the exact oracle π* = O(r*, η, π0):

- ``kl_to_target`` = E_x KL(π̂ ‖ π*) — and since J(π*) − J(π̂) = η E_x KL(π̂‖π*) on the true reward,
  ``subopt`` = η · kl_to_target for every method that sees the true reward;
- against what it used, on one budget axis per unit: ``budget`` with ``budget_unit`` ∈ {"reward queries",
  "comparisons"} and ``budget_scope`` (see :data:`BUDGET`): policy gradient and rejection sampling count every
  sampled action scored by the reward (a training total); best-of-N counts its N reward queries *per prompt at
  inference* (it trains nothing); the preference-based methods count comparisons (each 2 samples + 1 label);
  exact-gradient ``kl_options`` read the whole X × K reward table. ``samples`` keeps the method's own count
  (the same number) and ``step`` the gradient iteration.

Methods (one run each, registry :data:`METHODS`):

- policy gradient on the true reward, sampled (``reinforce``, ``rloo``, ``ppo``, ``grpo``,
  ``dr_grpo``; tabular softmax, KL as k1 in the reward, except GRPO's k3 in the loss as in its paper);
- ``kl_options``: exact-gradient RLOO (Adam, 5 × ``steps``) for each KL estimator × placement, against
  Gibbs and against the documented fixed point (:func:`rlbandit.policy_gradient.fixed_point`);
- ``dpo_offline``: DPO (log-linear and tabular) and IPO on n comparisons of π0 against π0;
- ``dpo_online`` / ``xpo``: iterative DPO with on-policy pairs, and XPO (a² ∼ π0, α-bonus);
- ``best_of_n``: the exact best-of-N policy on the true reward, N = 1 … 4096 (samples = N per prompt);
- ``rejection_sampling``: rejection-sampling fine-tuning (tabular MLE on the top completion per prompt).

Cost: every run times the exact oracle (``problems.optimal_policy``, median of 21 calls) on the same
problems in the same process, and each row carries ``fit_wall_s``, the wall time of producing *that*
policy (that budget point): training up to it, excluding evaluation and best-of-N's bisection for the
Gibbs policy at equal KL (bookkeeping). ``fit_wall_s / oracle_wall_s`` is then a per-budget speed ratio
that survives a noisy shared machine; wall times are not bit-reproducible.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from rlbandit._checks import check_choice, check_positive_float, check_positive_ints
from rlbandit.study import Study, deferred

SCENARIOS = ("random", "coverage_shift", "few_good")
ETAS = (0.25, 1.0)
PG_METHODS = ("reinforce", "rloo", "ppo", "grpo", "dr_grpo")
KL_OPTIONS = (("k1", "reward"), ("k2", "loss"), ("k3", "loss"), ("k1", "loss"))
FAMILY = {**{m: "policy gradient" for m in PG_METHODS}, "kl_options": "policy gradient (exact)",
          "dpo_offline": "direct alignment", "dpo_online": "direct alignment", "xpo": "direct alignment",
          "best_of_n": "sampling", "rejection_sampling": "sampling"}
#: method → (budget unit, budget scope): what one unit of ``budget`` is and where it is spent.
BUDGET = {**{m: ("reward queries", "training total") for m in PG_METHODS},
          "kl_options": ("reward queries", "whole reward table (exact gradients)"),
          "dpo_offline": ("comparisons", "training total"), "dpo_online": ("comparisons", "training total"),
          "xpo": ("comparisons", "training total"),
          "best_of_n": ("reward queries", "per prompt, at inference"),
          "rejection_sampling": ("reward queries", "training total")}


@dataclass(frozen=True)
class OraclesConfig:
    """One run: one method on one scenario × η, vectorised over ``n_seeds`` problems.

    Attributes:
        scenario: a key of rlbandit.SCENARIOS.
        eta: η > 0.
        method: a key of :data:`METHODS`.
        n_seeds: problems per run (seeds base_seed·1000 + i; the same for every method).
        n_contexts, n_actions, dim: the problem's X, K, d.
        steps: gradient steps of the policy-gradient methods (sampled) and of ``kl_options``.
        batch_contexts, group_size: prompts per batch and actions per prompt (sampled PG).
        max_comparisons: the largest comparison budget of the preference-based methods.
        max_n: the largest N of best-of-N / rejection sampling.
        base_seed: seeds problems and sampling.
    """

    scenario: str = "random"
    eta: float = 1.0
    method: str = "ppo"
    n_seeds: int = 8
    n_contexts: int = 8
    n_actions: int = 16
    dim: int = 4
    steps: int = 400
    batch_contexts: int = 16
    group_size: int = 4
    max_comparisons: int = 4096
    max_n: int = 4096
    base_seed: int = 0

    def __post_init__(self):
        from rlbandit.problem import SCENARIOS as registry

        check_choice(self.scenario, "scenario", registry)
        check_positive_float(self.eta, "eta")
        check_choice(self.method, "method", METHODS)
        check_positive_ints(self, ("n_seeds", "n_contexts", "n_actions", "dim", "steps", "batch_contexts", "group_size",
                                   "max_comparisons", "max_n"), numpy_ints=False)
        if self.group_size < 2:
            raise ValueError(f"group_size: RLOO/GRPO need at least 2, got {self.group_size}")


def configs(smoke: bool) -> list[OraclesConfig]:
    """Full: 3 scenarios × η ∈ {0.25, 1} × 11 methods, 8 seeds. Smoke: one tiny problem, every method."""
    if smoke:
        small = dict(scenario="random", eta=1.0, n_seeds=2, n_contexts=3, n_actions=5, dim=3, steps=20,
                     batch_contexts=4, max_comparisons=64, max_n=16)
        return [OraclesConfig(method=m, **small) for m in METHODS]
    return [OraclesConfig(scenario=s, eta=e, method=m) for s in SCENARIOS for e in ETAS for m in METHODS]


def _problems(config: OraclesConfig):
    from rlbandit.problem import ProblemConfig, make_problems

    seeds = config.base_seed * 1000 + np.arange(config.n_seeds)
    problem_config = ProblemConfig(scenario=config.scenario, n_contexts=config.n_contexts,
                                   n_actions=config.n_actions, dim=config.dim)
    return make_problems(problem_config, seeds), seeds


def _measure(problems, logprobs, eta) -> dict[str, np.ndarray]:
    """Per-seed metrics of a policy (..., S, X, K) against π* = O(r*, η, π0)."""
    from rlbandit import kernels

    star = problems.optimal_policy(eta)
    return {"kl_to_target": kernels.weigh_contexts(np.maximum(kernels.kl(logprobs, star), 0.0), problems.context_probs),
            "subopt": problems.suboptimality(logprobs, eta),
            "kl_to_ref": problems.kl_to_ref(logprobs),
            "gold_reward": problems.gold_reward(logprobs)}


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def _rows(metrics: dict, seeds, **fields) -> list[dict]:
    out = []
    for i, seed in enumerate(seeds):
        row = {"seed": int(seed), **fields}
        row.update({k: float(v[i]) for k, v in metrics.items()})
        out.append(row)
    return out


_COLUMNS = ["seed", "step", "samples", "variant", "kl_to_target", "subopt", "kl_to_ref", "gold_reward", "fit_wall_s"]


def _pg(config: OraclesConfig, problems, seeds) -> pd.DataFrame:
    from rlbandit.policy_gradient import PGConfig, train_policy_gradient

    kl_estimator, placement = ("k3", "loss") if config.method == "grpo" else ("k1", "reward")
    pg = PGConfig(algorithm=config.method, policy="tabular", eta=config.eta, mode="sampled", steps=config.steps,
                  batch_contexts=config.batch_contexts, group_size=config.group_size, lr=0.1, lr_decay=0.02,
                  optimizer="adam", epochs=2, minibatches=2, kl_estimator=kl_estimator, kl_placement=placement,
                  log_every=max(1, config.steps // 25), seed=config.base_seed)
    history = train_policy_gradient(problems, pg).history
    history["fit_wall_s"] = history["fit_seconds"]  # the library's training clock, evaluations excluded
    history["seed"] = seeds[history["seed"].to_numpy()]
    history["variant"] = f"{config.method} ({kl_estimator} in {placement})"
    return history[_COLUMNS]


def _kl_options(config: OraclesConfig, problems, seeds) -> pd.DataFrame:
    from rlbandit import kernels
    from rlbandit.policy_gradient import PGConfig, fixed_point, train_policy_gradient

    frames = []
    for estimator, placement in KL_OPTIONS:
        # Adam: plain SGD is unstable for k3 (its curvature grows like π0/π where π ≪ π0)
        steps = 5 * config.steps
        pg = PGConfig(algorithm="rloo", policy="tabular", eta=config.eta, mode="exact", steps=steps, lr=0.1,
                      optimizer="adam", kl_estimator=estimator, kl_placement=placement,
                      log_every=max(1, steps // 25), seed=config.base_seed)
        result = train_policy_gradient(problems, pg)
        history = result.history
        history["fit_wall_s"] = history["fit_seconds"]
        own = fixed_point(problems.rewards, problems.ref_logprobs, config.eta, estimator, placement)
        # KL(fixed point ‖ π̂): finite also for the greedy limit of "k1 in loss"
        kl_own = kernels.weigh_contexts(np.maximum(kernels.kl(own, result.logprobs), 0.0), problems.context_probs)
        history["kl_fixed_point_to_policy"] = np.where(history["step"] == steps, kl_own[history["seed"]], np.nan)
        history["seed"] = seeds[history["seed"].to_numpy()]
        history["variant"] = f"{estimator} in {placement}"
        frames.append(history)
    frames += _grpo_ablation(config, problems, seeds)
    frame = pd.concat(frames, ignore_index=True)
    return frame[_COLUMNS + ["kl_fixed_point_to_policy"]]


#: GRPO vs Dr. GRPO changes two things at once (the std division and the KL placement): the 2 × 2
#: ablation, each cell scored against its own exact fixed point.
GRPO_ABLATION = (("group", "k3", "loss"), ("group_mean", "k3", "loss"), ("group", "k1", "reward"),
                 ("group_mean", "k1", "reward"))


def _ablation_target(advantage, estimator, placement, rewards, ref_logprobs, eta):
    from rlbandit.policy_gradient import fixed_point, grpo_fixed_point

    if advantage == "group" and placement == "loss":
        return grpo_fixed_point(rewards, ref_logprobs, eta, kl_estimator=estimator)
    return fixed_point(rewards, ref_logprobs, eta, estimator, placement)  # the std only rescales ∇J


def _grpo_ablation(config: OraclesConfig, problems, seeds) -> list[pd.DataFrame]:
    from rlbandit import kernels
    from rlbandit.policy_gradient import PGConfig, train_policy_gradient

    frames = []
    for advantage, estimator, placement in GRPO_ABLATION:
        steps = 5 * config.steps
        pg = PGConfig(algorithm="rloo", advantage=advantage, policy="tabular", eta=config.eta, mode="exact",
                      steps=steps, lr=0.1, lr_decay=0.02, optimizer="adam", kl_estimator=estimator,
                      kl_placement=placement, log_every=max(1, steps // 25), seed=config.base_seed)
        result = train_policy_gradient(problems, pg)
        history = result.history
        history["fit_wall_s"] = history["fit_seconds"]
        own = _ablation_target(advantage, estimator, placement, problems.rewards, problems.ref_logprobs, config.eta)
        kl_own = kernels.weigh_contexts(np.maximum(kernels.kl(own, result.logprobs), 0.0), problems.context_probs)
        history["kl_fixed_point_to_policy"] = np.where(history["step"] == steps, kl_own[history["seed"]], np.nan)
        history["seed"] = seeds[history["seed"].to_numpy()]
        history["variant"] = (f"{'std-normalised' if advantage == 'group' else 'mean-centred'} group advantage, "
                              f"{estimator} in {placement}")
        frames.append(history)
    return frames


def _budgets(config: OraclesConfig, start: int = 16) -> list[int]:
    sizes = [start]
    while sizes[-1] * 2 <= config.max_comparisons:
        sizes.append(sizes[-1] * 2)
    return sizes


def _dpo_offline(config: OraclesConfig, problems, seeds) -> pd.DataFrame:
    from rlbandit.dpo import DPOConfig, policy_logprobs, train_dpo

    rng = np.random.default_rng([config.base_seed, 7])
    data = problems.sample_preferences(problems.ref_logprobs, problems.ref_logprobs, config.max_comparisons, rng)
    variants = {"DPO, log-linear": DPOConfig(policy="log_linear", beta=config.eta, reg=1.0),
                "DPO, tabular": DPOConfig(policy="tabular", beta=config.eta, reg=1.0),
                "IPO, log-linear": DPOConfig(policy="log_linear", beta=config.eta, reg=1.0, loss_type="ipo"),
                "IPO, tabular": DPOConfig(policy="tabular", beta=config.eta, reg=1.0, loss_type="ipo"),
                "cDPO ε=0.1, log-linear": DPOConfig(policy="log_linear", beta=config.eta, reg=1.0, label_smoothing=0.1)}
    targets = _direct_alignment_targets(problems, config.eta)
    rows = []
    for n in _budgets(config):
        subset = data.take(np.arange(n))
        for name, dpo in variants.items():
            lp, fit = _timed(lambda: policy_logprobs(train_dpo(problems, subset, dpo)))
            metrics = _measure(problems, lp, config.eta)
            metrics["kl_fixed_point_to_policy"] = _kl_from(targets.get(name.split(",")[0]), lp, problems)
            rows += _rows(metrics, seeds, samples=n, step=np.nan, variant=name, fit_wall_s=fit)
    return pd.DataFrame(rows)


def _direct_alignment_targets(problems, eta) -> dict:
    """Each loss's own population optimum with π0 × π0 data (rlbandit.alignment_targets): DPO's is Gibbs,
    IPO's the Gibbs policy of the win rate against π0; cDPO's smoothed margins have no closed form."""
    from rlbandit.alignment_targets import ipo_target

    return {"DPO": problems.optimal_policy(eta), "IPO": ipo_target(problems.rewards, problems.ref_logprobs, eta)}


def _kl_from(target, logprobs, problems) -> np.ndarray:
    """E_x KL(target ‖ π̂) per seed (NaN where the variant has no closed-form target)."""
    from rlbandit import kernels

    if target is None:
        return np.full(problems.batch_shape, np.nan)
    return kernels.weigh_contexts(np.maximum(kernels.kl(target, logprobs), 0.0), problems.context_probs)


def _online(config: OraclesConfig, problems, seeds, sampler: str, alpha: float) -> pd.DataFrame:
    from rlbandit.dpo import DPOConfig, OnlineDPOConfig, online_dpo

    m = max(8, config.max_comparisons // 32)
    iterations = max(1, config.max_comparisons // m)
    online = OnlineDPOConfig(dpo=DPOConfig(policy="log_linear", beta=config.eta, reg=1.0), iterations=iterations,
                             pairs_per_iteration=m, sampler=sampler, xpo_alpha=alpha, seed=config.base_seed)
    history = online_dpo(problems, online).history
    history["fit_wall_s"] = history["fit_seconds"]
    history["seed"] = seeds[history["seed"].to_numpy()]
    history = history.rename(columns={"comparisons": "samples", "iteration": "step"})
    history["variant"] = "online DPO (a¹, a² ∼ π_t)" if alpha == 0 else f"XPO (a² ∼ π0, α = {alpha:g})"
    return history[_COLUMNS]


def _best_of_n(config: OraclesConfig, problems, seeds) -> pd.DataFrame:
    from rlbandit.sampling_oracles import best_of_n, gibbs_at_average_kl

    rows = []
    n = 1
    while n <= config.max_n:
        lp, fit = _timed(best_of_n, problems.rewards, problems.ref_logprobs, n)
        metrics = _measure(problems, lp, config.eta)
        # "Gibbs at the same KL", as in the frontier study: one η per problem with best-of-N's E_x KL
        frontier, _ = gibbs_at_average_kl(problems.rewards, problems.ref_logprobs, problems.kl_to_ref(lp),
                                          problems.context_probs)
        metrics["gibbs_gold_at_same_kl"] = problems.gold_reward(frontier)
        rows += _rows(metrics, seeds, samples=n, step=np.nan, variant="best-of-N (exact)", fit_wall_s=fit)
        n *= 2
    return pd.DataFrame(rows)


def _rejection_sampling(config: OraclesConfig, problems, seeds) -> pd.DataFrame:
    from rlbandit.sampling_oracles import RSConfig, rejection_sampling_finetune

    rows = []
    prompts = 16 * config.n_contexts
    n = 2
    while n <= min(config.max_n, 64):
        rs = RSConfig(n=n, prompts=prompts, prior=1.0, seed=config.base_seed)
        (lp, _), fit = _timed(rejection_sampling_finetune, problems, rs)
        rows += _rows(_measure(problems, lp, config.eta), seeds, samples=n * prompts, step=np.nan,
                      variant=f"RS fine-tuning ({prompts} prompts)", fit_wall_s=fit)
        n *= 2
    return pd.DataFrame(rows)


#: method → (config, problems, seeds) → frame with seed, step, samples, variant and the metrics.
METHODS: dict[str, Callable] = {
    **{m: _pg for m in PG_METHODS},
    "kl_options": _kl_options,
    "dpo_offline": _dpo_offline,
    "dpo_online": lambda c, p, s: _online(c, p, s, "on_policy", 0.0),
    "xpo": lambda c, p, s: _online(c, p, s, "reference", 0.01),
    "best_of_n": _best_of_n,
    "rejection_sampling": _rejection_sampling,
}


def run(config: OraclesConfig) -> pd.DataFrame:
    """One method on one scenario × η; rows = seed × budget (or step) × variant."""
    import torch

    torch.set_num_threads(1)
    problems, seeds = _problems(config)
    timings = []
    for _ in range(21):  # the median of single calls resists the shared machine's noise
        start = time.perf_counter()
        problems.optimal_policy(config.eta)
        timings.append(time.perf_counter() - start)
    oracle_wall = float(np.median(timings))
    start = time.perf_counter()
    frame = METHODS[config.method](config, problems, seeds)
    wall = time.perf_counter() - start
    frame["method"] = config.method
    frame["family"] = FAMILY[config.method]
    unit, scope = BUDGET[config.method]
    frame["budget"] = (config.n_contexts * config.n_actions if config.method == "kl_options"
                       else frame["samples"].astype(float))
    frame["budget_unit"] = unit
    frame["budget_scope"] = scope
    frame["wall_s"] = wall
    frame["oracle_wall_s"] = oracle_wall
    print(f"[oracles] {config.scenario} η={config.eta} {config.method}: {wall:.1f}s "
          f"({wall / oracle_wall:.3g}× the exact oracle)", flush=True)
    return frame


STUDY = Study(
    name="oracles",
    description=(
        "How close does each approximate oracle get to the exact Gibbs policy O(r*, η, π0), and at what cost? "
        "Policy gradient (REINFORCE, RLOO, PPO, GRPO, Dr. GRPO), the KL estimator × placement options, DPO and "
        "its variants offline and online (XPO), best-of-N and rejection-sampling fine-tuning; KL to Gibbs and "
        "SubOpt against a budget of reward queries or comparisons (compared at matched budgets, one unit each), "
        "and each budget point's fit time over one exact Gibbs call, on three scenarios × two η."
    ),
    configs=configs,
    run=run,
    report=deferred("benchmarks.oracles_report:report"),
    timing_columns=("fit_wall_s", "wall_s", "oracle_wall_s"),  # stored apart: result files stay bit-reproducible
    symbols={
        "kl_to_target": r"$\mathbb{E}_x\,\mathrm{KL}(\hat\pi\,\|\,\pi^*)$",
        "samples": "samples (actions drawn) / comparisons",
        "budget": "budget (reward queries or comparisons)",
        "step": "gradient step",
    },
    tags=("bandit", "oracles"),
)
