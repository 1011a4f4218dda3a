"""Study ``llm``: RLHF on a real pretrained language model, offline (DESIGN §6; issue 11).

**The language-model world.** π0 is Hugging Face's SmolLM2-135M-Instruct (``llm.models.load_model(
"smollm2-135m-instruct")``, offline), frozen; the policy is a copy whose top two decoder layers
train (``llm.adapters``; ``adaptation`` in the config: "lora" adapters on every linear layer or
"full" fine-tuning instead — on these 2 CPU cores a LoRA step backpropagates through all 30 layers
and costs about 2.5× a top-two-layer step, so the CPU study buys more steps with "top"; the GPU
study fine-tunes every weight). Prompts are real instructions over many topics
(``llm.prompts``: "Write a short review of …", "Explain … in one sentence.", …) rendered with the
model's chat template and split **by topic** into training and held-out evaluation prompts: every
number in the report is measured on evaluation prompts no method trained on. φ(x, y) is the
all-MiniLM-L6-v2 embedding of instruction + response (384-d, unit norm); the gold reward is linear,
r*(x, y) = ⟨φ(x, y), θ*⟩ with θ* = ``gold_scale`` × the unit "positive minus negative review"
direction, so every number is a gold number; preferences are Bradley–Terry on r*.

**One data budget for every method.** Per seed, ``n_comparisons`` pairs (y¹, y²) ∼ π0 × π0 on the
training prompts with BT labels. DPO trains on them directly. The classic pipeline learns a reward
model from **the same pairs** — a BT head on φ (``llm.features.fit_feature_reward``, the MLE) and,
in the ``reward_model`` run, a head on the LM — and PPO (value head + GAE, as trl's PPOTrainer),
RLOO, GRPO and Dr. GRPO (trl's GRPOTrainer advantages, k3 in the loss) optimise that learned reward
(the gold reward only evaluates), each with the same number of reward-model queries; best-of-N and
rejection-sampling fine-tuning select with it too.

**Runs** (one method × KL coefficient η × seed each; rows are tidy, one per checkpoint):

- ``reference``: π0 on the evaluation prompts (the start of every curve);
- ``dpo``: offline DPO on the comparisons, β = η;
- ``ppo`` / ``rloo`` / ``grpo`` / ``dr_grpo``: policy gradient on the φ-head reward model, with
  held-out evaluations every ``eval_every`` rollouts (gold **and** proxy reward against √KL: the
  over-optimisation curves);
- ``best_of_n``: N = 1, 2, 4, … π0 samples per evaluation prompt, the proxy's best (KL: the analytic
  bound log N − (N−1)/N, marked as a bound);
- ``rs_ft``: rejection-sampling fine-tuning (best of 4 by the proxy → SFT, two rounds, as many
  reward-model queries as one PG run);
- ``reward_model``: held-out pairwise accuracy of both reward models against the gold preference;
- ``bandit``: the exact bandit built from the same comparisons — contexts = training prompts,
  actions = their 2n/X responses, π0 = uniform over them — where O(r*, η, π0) and the plug-in
  O(φθ̂, η, π0) are exact (what DPO and the RM-based methods approximate, restricted to the pool);
- ``seq_bridge``: the exact sequence-level bridge (``llm.seq_bridge``): responses of up to three
  tokens are enumerable, π*(y|x) ∝ π0(y|x) exp(r(x,y)/η) is exact, and each LM trainer's final
  KL(π̂‖π*) is measured.

KL(π‖π0) is sequence-level and estimated the same way for every LM policy: k1 = log π(y|x) −
log π0(y|x) averaged over the policy's own samples on the evaluation prompts, with its standard
error. Responses' length (tokens, EOS included) and the share that ends with EOS are reported.

The study is assembled here from :mod:`benchmarks.llm_sweep` (methods, ``LLMConfig``, the sweeps),
:mod:`benchmarks.llm_runs` (the world of a seed and one run per method) and
:mod:`benchmarks.llm_report` (tables, figures, findings); their public names are re-exported.
"""

from __future__ import annotations

from benchmarks.llm_report import (
    BRIDGE_CONVERGED,
    BRIDGE_CONVERGED_NATS,
    COLORS,
    bandit_table,
    best_of_n_table,
    bridge_table,
    budget_table,
    final_table,
    report,
    reward_model_table,
)
from benchmarks.llm_runs import InstructionReward, run
from benchmarks.llm_sweep import (
    ADAPTATIONS,
    BRIDGE_METHODS,
    ETA_METHODS,
    ETAS,
    METHODS,
    MODELS,
    PG_EPOCHS,
    PG_RECIPES,
    RS_N,
    RS_ROUNDS,
    SYSTEM,
    LLMConfig,
    configs,
    rs_sft_steps,
    sweep,
)
from rlbandit.study import Study

__all__ = [
    "ADAPTATIONS",
    "BRIDGE_CONVERGED",
    "BRIDGE_CONVERGED_NATS",
    "BRIDGE_METHODS",
    "COLORS",
    "ETAS",
    "ETA_METHODS",
    "METHODS",
    "MODELS",
    "PG_EPOCHS",
    "PG_RECIPES",
    "RS_N",
    "RS_ROUNDS",
    "STUDY",
    "SYSTEM",
    "InstructionReward",
    "LLMConfig",
    "bandit_table",
    "best_of_n_table",
    "bridge_table",
    "budget_table",
    "configs",
    "final_table",
    "report",
    "reward_model_table",
    "rs_sft_steps",
    "run",
    "sweep",
]

STUDY = Study(
    name="llm",
    description=("RLHF on a real pretrained LM (SmolLM2-135M-Instruct, offline): DPO beside the classic "
                 "preferences → learned reward model → PPO / RLOO / GRPO / Dr. GRPO pipeline, best-of-N and "
                 "rejection-sampling fine-tuning, all from the same Bradley–Terry comparisons and scored on held-out "
                 "prompts by a known gold reward; a reward–KL sweep per method; the exact bandit built from the "
                 "comparisons; and the exact sequence-level bridge."),
    configs=configs,
    run=run,
    report=report,
    tags=("llm",),
    timing_columns=("seconds", "world_seconds", "run_seconds"),  # stored apart: results stay bit-reproducible
    symbols={"proxy_reward": "proxy reward (learned RM)", "rm_queries": "reward-model queries"},
)
