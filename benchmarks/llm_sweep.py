"""The ``llm`` study's sweep (:mod:`benchmarks.llm`): its methods, the config of one run, and the
CPU and smoke sweeps."""

from __future__ import annotations

from dataclasses import dataclass

from rlbandit._checks import (
    check_choice,
    check_int,
    check_positive_float,
    check_positive_ints,
)

#: PG method → the PGConfig fields that make it (trl's recipes; ``llm.trainers.PGConfig``).
PG_RECIPES = {
    "ppo": dict(algorithm="ppo", advantage="gae", kl_mode="reward", loss_type="sequence"),
    "rloo": dict(algorithm="rloo", advantage="loo", kl_mode="reward", loss_type="sequence"),
    "grpo": dict(algorithm="ppo", advantage="grpo", kl_mode="loss", kl_kind="k3", loss_type="grpo"),
    "dr_grpo": dict(algorithm="ppo", advantage="dr_grpo", kl_mode="loss", kl_kind="k3", loss_type="dr_grpo"),
}
#: PPO-style passes over each rollout (RLOO takes one on-policy step; ``llm.trainers.PGConfig``)
PG_EPOCHS = 2
#: methods with a KL coefficient η (the others run once per seed with η = 0).
ETA_METHODS = ("dpo", *PG_RECIPES, "bandit", "seq_bridge")
METHODS = ("reference", "dpo", *PG_RECIPES, "best_of_n", "rs_ft", "reward_model", "bandit", "seq_bridge")
MODELS = ("smollm2-135m-instruct", "tiny")
#: the system turn of every chat prompt
SYSTEM = "Answer in one or two short sentences."
ADAPTATIONS = ("lora", "top", "full")
#: rejection-sampling fine-tuning: rounds of best-of-RS_N selection then SFT
RS_ROUNDS, RS_N = 2, 4
#: the LM trainers measured in the sequence-level bridge (keys of ``llm.seq_bridge.SEQUENCE_METHODS``).
BRIDGE_METHODS = ("dpo_exact", "ppo", "ppo_gae", "rloo", "grpo", "dr_grpo")


def rs_sft_steps(dpo_steps: int) -> int:
    """SFT steps per RS round: a quarter of DPO's steps (at least 2)."""
    return max(2, dpo_steps // 4)


@dataclass(frozen=True)
class LLMConfig:
    """One run: one method at one KL coefficient and seed (:mod:`benchmarks.llm`).

    Attributes:
        method: one of METHODS; eta: KL coefficient η (DPO's β) for ETA_METHODS, else 0.
        model: "smollm2-135m-instruct" (the real default) or "tiny" (a test-size LM built in seconds).
        adaptation: what trains — "lora" adapters (r = 16, every linear layer), the "top" 2 decoder
            layers, or "full" fine-tuning.
        n_comparisons: BT comparisons per seed (DPO's data = the reward model's data); a multiple of
            train_prompts (each training prompt gets n/X pairs).
        train_prompts, eval_prompts: how many training / held-out prompts (disjoint topics).
        eval_samples: responses per evaluation prompt for every held-out estimate.
        max_new_tokens: response length cap.
        pg_steps, prompts_per_step, samples_per_prompt: PG rollouts and their size (RM queries =
            pg_steps × prompts_per_step × samples_per_prompt); eval_every: held-out checkpoints.
        pg_lr, dpo_lr, dpo_steps, batch_size: optimiser settings.
        bon_max: largest N of best-of-N (powers of two).
        gold_scale: ‖θ*‖; reg: ridge λ of the BT MLE.
        seed: data, sampling and training seed (the prompt split is fixed across seeds).
    """

    method: str = "dpo"
    eta: float = 0.1
    model: str = "smollm2-135m-instruct"
    adaptation: str = "top"
    n_comparisons: int = 96
    train_prompts: int = 24
    eval_prompts: int = 24
    eval_samples: int = 2
    max_new_tokens: int = 24
    pg_steps: int = 10
    prompts_per_step: int = 4
    samples_per_prompt: int = 4
    eval_every: int = 5
    pg_lr: float = 2e-4
    dpo_lr: float = 2e-4
    dpo_steps: int = 24
    batch_size: int = 8
    bon_max: int = 16
    gold_scale: float = 30.0
    reg: float = 1.0
    seed: int = 0

    def __post_init__(self):
        check_choice(self.method, "method", METHODS)
        check_choice(self.model, "model", MODELS)
        check_choice(self.adaptation, "adaptation", ADAPTATIONS)
        if self.method in ETA_METHODS:
            check_positive_float(self.eta, "eta")
        elif self.eta != 0:
            raise ValueError(f"eta: method {self.method!r} has no KL coefficient; use eta=0, got {self.eta}")
        check_positive_ints(self, ("n_comparisons", "train_prompts", "eval_prompts", "eval_samples", "max_new_tokens",
                                   "pg_steps", "prompts_per_step", "samples_per_prompt", "eval_every", "dpo_steps",
                                   "batch_size", "bon_max"))
        check_int(self.seed, "seed", minimum=0)
        if self.n_comparisons % self.train_prompts:
            raise ValueError(f"n_comparisons: must be a multiple of train_prompts = {self.train_prompts} (each "
                             f"training prompt gets the same number of pairs), got {self.n_comparisons}")
        if self.samples_per_prompt < 2:
            raise ValueError(f"samples_per_prompt: group advantages need >= 2, got {self.samples_per_prompt}")
        if self.eval_samples < 2:
            raise ValueError(f"eval_samples: held-out pairs need >= 2 responses per prompt, got {self.eval_samples}")
        for name in ("pg_lr", "dpo_lr", "gold_scale", "reg"):
            check_positive_float(getattr(self, name), name)

    @property
    def rm_queries(self) -> int:
        """Reward-model queries of one PG run."""
        return self.pg_steps * self.prompts_per_step * self.samples_per_prompt


_CPU = dict(n_comparisons=96, train_prompts=24, eval_prompts=24, eval_samples=2, max_new_tokens=24, pg_steps=10,
            prompts_per_step=4, samples_per_prompt=4, eval_every=5, dpo_steps=24, batch_size=8, bon_max=16)
_SMOKE = dict(model="tiny", n_comparisons=8, train_prompts=4, eval_prompts=3, eval_samples=2, max_new_tokens=8,
              pg_steps=2, prompts_per_step=2, samples_per_prompt=2, eval_every=1, dpo_steps=2, batch_size=4,
              bon_max=4, pg_lr=1e-3, dpo_lr=1e-3)
ETAS = (0.05, 0.2)


def sweep(base: dict, etas, seeds) -> list[LLMConfig]:
    """Every method at every η (η methods) or once (the others), for each seed."""
    out = []
    for seed in seeds:
        for method in METHODS:
            for eta in (etas if method in ETA_METHODS else (0.0,)):
                out.append(LLMConfig(method=method, eta=eta, seed=seed, **base))
    return out


def configs(smoke: bool) -> list[LLMConfig]:
    """Full (CPU, SmolLM2, top two layers trained): seed 0 × η ∈ {0.05, 0.2} × (DPO, PPO, RLOO, GRPO,
    Dr. GRPO, bandit, sequence bridge) + best-of-N, RS-FT, reward models and π0; seed 1 repeats every
    method at η = 0.2 only (the CPU budget: a policy run takes 5–10 min on these 2 shared cores), so
    the bands across seeds are at η = 0.2. Smoke: every method on the test-size LM, one seed, one η
    (CI, about a minute)."""
    if smoke:
        return sweep(_SMOKE, (0.2,), (0,))
    return sweep(_CPU, ETAS, (0,)) + sweep(_CPU, (ETAS[-1],), (1,))
