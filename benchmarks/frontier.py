"""Study ``frontier``: the exact reward–KL frontier of the Gibbs oracle, and how far below it every
practical method lands (issues 3, 14; DESIGN §1, §5).

For η on a log grid, π_η = O(r*, η, π0) maximises E r* − η KL(π‖π0), so the points
(KL(π_η‖π0), E_{π_η} r*) trace the *frontier*: the most gold reward any policy can reach at a given
KL budget (Lagrangian duality). That the frontier is increasing, concave in KL with slope η, and
that exact best-of-N lies on or below it are theorems, kept as property tests in
``tests/test_frontier_properties.py``; this study measures what is not a theorem — each method's
*shortfall*: the frontier's gold reward at the method's own KL minus the method's gold reward,
with "the frontier at that KL" = ``sampling_oracles.gibbs_at_average_kl`` (one η per problem
matching the context-averaged KL).

Methods, each swept over its knob on the same problems (one run = one scenario, vectorised over
seeds), all trained or selected on the true reward r* (no proxy: over-optimisation is study
``overoptimization``'s subject):

- ``gibbs``: the exact frontier, η on a log grid;
- ``best_of_n``: exact best-of-N under π0 (closed-form distribution with ties), N sweep;
- ``ppo``, ``rloo``, ``grpo``: tabular softmax policy, sampled, KL in the reward, a few η;
- ``dpo``, ``ipo``: offline, log-linear class, from a fixed set of π0-vs-π0 BT comparisons, a few β;
- ``rejection_sampling``: one round of RAFT-style fine-tuning (top-1 of N per prompt, tabular MLE), a few N.

Rows: seed × method × knob value with gold reward, KL(π‖π0), the fraction of the achievable
reward gain, the frontier's reward at that KL, the shortfall and the budget (reward queries or
comparisons) the point used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rlbandit._checks import check_choice, check_int
from rlbandit.study import Study, deferred

__all__ = ["FrontierConfig", "configs", "run", "STUDY", "SCENARIOS", "METHODS", "KNOBS"]

SCENARIOS = ("random", "coverage_shift", "few_good")
#: the policy-gradient methods (keys of rlbandit.policy_gradient.ALGORITHMS) and direct-alignment losses
PG_METHODS = ("ppo", "rloo", "grpo")
DPO_LOSSES = {"dpo": "sigmoid", "ipo": "ipo"}
#: every method of the study (hue levels with a fixed colour in rlbandit.palette.COLORS)
METHODS = ("gibbs", "best_of_n", *PG_METHODS, *DPO_LOSSES, "rejection_sampling")
#: each method's knob
KNOBS = {"gibbs": "η", "best_of_n": "N", "ppo": "η", "rloo": "η", "grpo": "η", "dpo": "β", "ipo": "β",
         "rejection_sampling": "N"}


@dataclass(frozen=True)
class FrontierConfig:
    """One run: a scenario, every method over its knob, vectorised over ``n_seeds`` problems.

    Attributes:
        scenario: a key of rlbandit.SCENARIOS.
        n_contexts, n_actions, dim: X, K, d.
        n_seeds: problems (seeds base_seed·1000 + i).
        eta_min, eta_max, n_etas: the log-spaced η grid of the exact frontier.
        bon_ns: the N of best-of-N.
        pg_etas, pg_steps, pg_batch_contexts, pg_group_size, pg_lr: PPO / RLOO / GRPO (tabular,
            sampled; steps × batch_contexts × group_size reward queries).
        dpo_betas, dpo_comparisons: the β of DPO / IPO and the π0-vs-π0 comparisons they learn from.
        rs_ns, rs_prompts: the N of rejection-sampling fine-tuning and its prompts (prompts × N queries).
        base_seed: seeds the problems and every sampler.
    """

    scenario: str = "random"
    n_contexts: int = 8
    n_actions: int = 16
    dim: int = 4
    n_seeds: int = 16
    eta_min: float = 1e-3
    eta_max: float = 1e3
    n_etas: int = 61
    bon_ns: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
    pg_etas: tuple[float, ...] = (0.1, 0.3, 1.0)
    pg_steps: int = 200
    pg_batch_contexts: int = 16
    pg_group_size: int = 4
    pg_lr: float = 0.1
    dpo_betas: tuple[float, ...] = (0.1, 0.3, 1.0)
    dpo_comparisons: int = 512
    rs_ns: tuple[int, ...] = (2, 8, 32)
    rs_prompts: int = 256
    base_seed: int = 0

    def __post_init__(self):
        from rlbandit import SCENARIOS as REGISTRY

        check_choice(self.scenario, "scenario", REGISTRY)
        for name in ("n_contexts", "n_actions", "dim", "n_seeds", "n_etas", "pg_steps", "pg_batch_contexts",
                     "pg_group_size", "dpo_comparisons", "rs_prompts"):
            minimum = 2 if name in ("n_seeds", "n_etas", "pg_group_size") else 1
            check_int(getattr(self, name), name, minimum=minimum, numpy_ints=False)
        if not (0 < self.eta_min < self.eta_max < np.inf):
            raise ValueError(f"eta_min, eta_max: need 0 < eta_min < eta_max < inf, got {self.eta_min}, {self.eta_max}")
        for name in ("bon_ns", "rs_ns"):
            ns = getattr(self, name)
            if not isinstance(ns, tuple) or not all(isinstance(n, int) and n >= 1 for n in ns):
                raise ValueError(f"{name}: must be a tuple of integers >= 1, got {ns!r}")
        for name in ("pg_etas", "dpo_betas"):
            values = getattr(self, name)
            if not isinstance(values, tuple) or not all(isinstance(v, (int, float)) and 0 < v < np.inf for v in values):
                raise ValueError(f"{name}: must be a tuple of finite numbers > 0, got {values!r}")
        if not 0 < self.pg_lr < np.inf:
            raise ValueError(f"pg_lr: must be finite and > 0, got {self.pg_lr}")

    @property
    def etas(self) -> np.ndarray:
        return np.geomspace(self.eta_min, self.eta_max, self.n_etas)


def configs(smoke: bool) -> list[FrontierConfig]:
    """Full: three scenarios, X = 8, K = 16, d = 4, 16 seeds, 61 η ∈ [10⁻³, 10³], N ∈ {1, …, 1024};
    PPO / RLOO / GRPO at η ∈ {0.1, 0.3, 1} (200 steps of 16 × 4 samples), DPO / IPO at
    β ∈ {0.1, 0.3, 1} from 512 comparisons, rejection sampling at N ∈ {2, 8, 32} on 256 prompts.
    Smoke: tiny problems, 7 η, N ≤ 8, a few steps."""
    if smoke:
        return [FrontierConfig(scenario=s, n_contexts=3, n_actions=6, dim=3, n_seeds=3, eta_min=0.01, eta_max=100.0,
                               n_etas=7, bon_ns=(1, 2, 8), pg_etas=(0.3, 1.0), pg_steps=4, pg_batch_contexts=4,
                               pg_group_size=2, dpo_betas=(0.3, 1.0), dpo_comparisons=32, rs_ns=(2, 4), rs_prompts=8)
                for s in SCENARIOS]
    return [FrontierConfig(scenario=s) for s in SCENARIOS]


def _weigh(values: np.ndarray, probs: np.ndarray) -> np.ndarray:
    return (values * probs).sum(-1)


def _point_rows(problems, seeds, method: str, knob_value: float, logprobs: np.ndarray, budget: float,
                budget_unit: str) -> pd.DataFrame:
    """One method's point per seed, with the frontier's gold reward at its own KL."""
    from rlbandit.sampling_oracles import gibbs_at_average_kl

    reward, kl_ref = problems.gold_reward(logprobs), problems.kl_to_ref(logprobs)
    # "Gibbs at the same KL": one η per problem matching the context-averaged KL
    frontier, frontier_eta = gibbs_at_average_kl(problems.rewards, problems.ref_logprobs, kl_ref,
                                                 problems.context_probs)
    frontier_reward = problems.gold_reward(frontier)
    return pd.DataFrame({"seed": seeds, "kind": method, "knob": KNOBS[method], "knob_value": float(knob_value),
                         "eta": knob_value if KNOBS[method] == "η" else np.nan,
                         "N": float(knob_value) if KNOBS[method] == "N" else np.nan,
                         "reward": reward, "kl_to_ref": kl_ref, "frontier_eta": frontier_eta,
                         "frontier_reward": frontier_reward, "shortfall": frontier_reward - reward,
                         "budget": float(budget), "budget_unit": budget_unit})


def _approximate_rows(config: FrontierConfig, problems, seeds) -> list[pd.DataFrame]:
    """PPO / RLOO / GRPO, DPO / IPO and rejection-sampling fine-tuning over their knobs."""
    from rlbandit.dpo import DPOConfig, policy_logprobs, train_dpo
    from rlbandit.policy_gradient import PGConfig, train_policy_gradient
    from rlbandit.sampling_oracles import RSConfig, rejection_sampling_finetune

    rows = []
    queries = config.pg_steps * config.pg_batch_contexts * config.pg_group_size
    for i, method in enumerate(PG_METHODS):
        for j, eta in enumerate(config.pg_etas):
            pg = PGConfig(algorithm=method, policy="tabular", eta=float(eta), steps=config.pg_steps, mode="sampled",
                          batch_contexts=config.pg_batch_contexts, group_size=config.pg_group_size, lr=config.pg_lr,
                          log_every=config.pg_steps, seed=config.base_seed * 1000 + 10 * i + j)
            result = train_policy_gradient(problems, pg)
            rows.append(_point_rows(problems, seeds, method, eta, result.logprobs, queries, "reward queries"))
    rng = np.random.default_rng([config.base_seed, 14])
    data = problems.sample_preferences(problems.ref_logprobs, problems.ref_logprobs, config.dpo_comparisons, rng)
    for method, loss in DPO_LOSSES.items():
        for beta in config.dpo_betas:
            policy = train_dpo(problems, data, DPOConfig(policy="log_linear", beta=float(beta), loss_type=loss))
            rows.append(_point_rows(problems, seeds, method, beta, policy_logprobs(policy), config.dpo_comparisons,
                                    "comparisons"))
    for j, n in enumerate(config.rs_ns):
        logprobs, _ = rejection_sampling_finetune(problems, RSConfig(n=n, prompts=config.rs_prompts,
                                                                     seed=config.base_seed * 1000 + 100 + j))
        rows.append(_point_rows(problems, seeds, "rejection_sampling", n, logprobs, config.rs_prompts * n,
                                "reward queries"))
    return rows


def run(config: FrontierConfig) -> pd.DataFrame:
    """The Gibbs frontier and every method's points of one scenario, per seed."""
    from rlbandit import ProblemConfig, gibbs, make_problems
    from rlbandit.sampling_oracles import best_of_n

    start = time.perf_counter()
    seeds = config.base_seed * 1000 + np.arange(config.n_seeds)
    problems = make_problems(ProblemConfig(scenario=config.scenario, n_contexts=config.n_contexts,
                                           n_actions=config.n_actions, dim=config.dim), seeds)
    rewards, ref = problems.rewards, problems.ref_logprobs
    probs = np.broadcast_to(problems.context_probs, problems.batch_shape + (problems.n_contexts,))
    base = problems.gold_reward(ref)
    best = _weigh(np.where(np.isfinite(ref), rewards, -np.inf).max(-1), probs)
    rows = []
    for eta in config.etas:
        policy = gibbs(rewards, ref, eta)
        p = np.exp(policy)
        reward = problems.gold_reward(policy)
        # exact slope of the frontier: dE r/dη = −Var_π(r)/η², dKL/dη = −Var_π(r)/η³ ⇒ dE r/dKL = η
        var = _weigh((p * (rewards - (p * rewards).sum(-1, keepdims=True)) ** 2).sum(-1), probs)
        rows.append(pd.DataFrame({
            "seed": seeds, "kind": "gibbs", "knob": "η", "knob_value": float(eta), "eta": float(eta), "N": np.nan,
            "reward": reward, "kl_to_ref": problems.kl_to_ref(policy), "value": problems.value(policy, eta),
            "optimal_value": problems.optimal_value(eta), "reward_var": var, "frontier_eta": float(eta),
            "frontier_reward": reward, "shortfall": 0.0, "budget": np.nan, "budget_unit": "exact"}))
    for n in config.bon_ns:
        # exact distribution: N reward queries per response drawn, no training
        rows.append(_point_rows(problems, seeds, "best_of_n", n, best_of_n(rewards, ref, n), n,
                                "reward queries per response"))
    rows += _approximate_rows(config, problems, seeds)
    frame = pd.concat(rows, ignore_index=True)
    index = np.tile(np.arange(config.n_seeds), len(rows))
    frame["ref_reward"], frame["max_reward"] = base[index], best[index]
    frame["gain_fraction"] = (frame["reward"] - frame["ref_reward"]) / np.maximum(
        frame["max_reward"] - frame["ref_reward"], 1e-300)
    print(f"[frontier] {config.scenario}: {len(rows)} settings × {config.n_seeds} seeds "
          f"in {time.perf_counter() - start:.2f}s", flush=True)
    return frame


STUDY = Study(
    name="frontier",
    description=("The exact reward–KL frontier of the Gibbs oracle and the reward–KL Pareto plot of the methods "
                 "practice uses: how much gold reward does each of best-of-N, rejection-sampling fine-tuning, "
                 "PPO, RLOO, GRPO, DPO and IPO leave on the table at its own KL from π0? Sweeps η over six "
                 "decades for the frontier and each method's knob (η, β or N) on three scenarios × 16 seeds "
                 "(X = 8 contexts, K = 16 actions, d = 4)."),
    configs=configs,
    run=run,
    report=deferred("benchmarks.frontier_report:report"),
    symbols={
        "gain_fraction": (r"reward gain $\frac{\mathbb{E}_\pi r^* - \mathbb{E}_{\pi_0} r^*}"
                          r"{\mathbb{E}\max r^* - \mathbb{E}_{\pi_0} r^*}$"),
        "shortfall": r"frontier $-$ method's gold reward at equal KL",
    },
    tags=("bandit", "oracle"),
)
