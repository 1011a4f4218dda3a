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
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from llm.features import LinearGold
from rlbandit._checks import check_int, check_positive_float
from rlbandit.study import ReportContent, ReportFigure, Study

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
#: one colour per method in every figure (colour-blind palette order).
COLORS = {"reference": "#000000", "dpo": "#0173b2", "ppo": "#de8f05", "rloo": "#029e73", "grpo": "#d55e00",
          "dr_grpo": "#cc78bc", "best_of_n": "#ca9161", "rs_ft": "#56b4e9", "gibbs_gold": "#555555",
          "gibbs_rm": "#949494"}
MODELS = ("smollm2-135m-instruct", "tiny")
#: the system turn of every chat prompt
SYSTEM = "Answer in one or two short sentences."
ADAPTATIONS = ("lora", "top", "full")


@dataclass(frozen=True)
class LLMConfig:
    """One run: one method at one KL coefficient and seed (module docstring).

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
        if self.method not in METHODS:
            raise ValueError(f"method: expected one of {METHODS}, got {self.method!r}")
        if self.model not in MODELS:
            raise ValueError(f"model: expected one of {MODELS}, got {self.model!r}")
        if self.adaptation not in ADAPTATIONS:
            raise ValueError(f"adaptation: expected one of {ADAPTATIONS}, got {self.adaptation!r}")
        if self.method in ETA_METHODS:
            check_positive_float(self.eta, "eta")
        elif self.eta != 0:
            raise ValueError(f"eta: method {self.method!r} has no KL coefficient; use eta=0, got {self.eta}")
        for name in ("n_comparisons", "train_prompts", "eval_prompts", "eval_samples", "max_new_tokens", "pg_steps",
                     "prompts_per_step", "samples_per_prompt", "eval_every", "dpo_steps", "batch_size", "bon_max"):
            check_int(getattr(self, name), name)
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


# ----------------------------------------------------------------------------------------------
# The world of one seed (built once per process: π0, prompts, gold, comparisons, reward model)

_WORLDS: dict = {}


@dataclass(frozen=True, eq=False)
class InstructionReward(LinearGold):
    """r(x, y) = ⟨φ(instruction(x) + "\\n" + y), θ⟩: :class:`llm.features.LinearGold` on the MiniLM
    embedding of the raw instruction and the response (the chat-template markup of the rendered
    prompt x is not text a reader judges). ``instructions`` maps each rendered prompt to its instruction."""

    instructions: dict = field(default_factory=dict)

    def features(self, prompts, responses) -> np.ndarray:
        return self.embedder([self.instructions[p] + "\n" + r for p, r in zip(prompts, responses)])


def _base_model(config: LLMConfig):
    from llm.models import load_model

    if config.model == "tiny":
        from llm.tiny import TinyLMConfig, default_model

        return default_model(TinyLMConfig.tiny(), progress=False)
    return load_model(config.model)


def _world(config: LLMConfig) -> dict:
    import torch

    from llm.features import Embedder, bt_labels, fit_feature_reward, sentiment_direction
    from llm.generation import SamplingConfig, generate
    from llm.prompts import split_prompts

    key = (config.model, config.n_comparisons, config.train_prompts, config.eval_prompts, config.eval_samples,
           config.max_new_tokens, config.gold_scale, config.reg, config.seed)
    if key in _WORLDS:
        return _WORLDS[key]
    lm = _WORLDS.get(("lm", config.model))
    if lm is None:
        lm = _WORLDS.setdefault(("lm", config.model), _base_model(config))
        lm.model.eval()
        lm.model.requires_grad_(False)  # π0 is the frozen reference of every run; adapt() copies it to train
    # one held-out split for every seed; a short system turn replaces SmolLM2's default one (~20 tokens
    # of every forward pass) and asks for the brief answers a 24-token budget can finish
    split = split_prompts(lm.tokenizer, seed=0, system=SYSTEM)
    if len(split.train) < config.train_prompts or len(split.eval) < config.eval_prompts:
        raise ValueError(f"train_prompts: the split has {len(split.train)} training and {len(split.eval)} evaluation "
                         "prompts")
    train = list(split.train[:config.train_prompts])
    held_out = list(split.eval[:config.eval_prompts])
    instructions = dict(zip(split.train, split.train_instructions)) | dict(zip(split.eval, split.eval_instructions))
    embedder = _WORLDS.setdefault("embedder", Embedder())
    direction = _WORLDS.setdefault("direction", sentiment_direction(embedder))
    gold = InstructionReward(config.gold_scale * direction, embedder, instructions)
    sampling = SamplingConfig(max_new_tokens=config.max_new_tokens)
    gen = torch.Generator().manual_seed(10_000 + config.seed)
    per_prompt = config.n_comparisons // config.train_prompts
    pool_prompts = [p for p in train for _ in range(2 * per_prompt)]  # 2 responses per comparison
    pool = generate(lm, pool_prompts, sampling, gen)
    pool_features = gold.features(pool_prompts, pool.responses)
    pool_gold = pool_features @ gold.theta
    # comparison i of prompt x pairs its responses 2i and 2i + 1
    first, second = np.arange(0, len(pool_prompts), 2), np.arange(1, len(pool_prompts), 2)
    labels = bt_labels(pool_gold[first], pool_gold[second], np.random.default_rng(config.seed))
    chosen = np.where(labels == 1, first, second)
    rejected = np.where(labels == 1, second, first)
    rm = fit_feature_reward(pool_features[first], pool_features[second], labels, embedder, reg=config.reg)
    proxy = InstructionReward(rm.theta, embedder, instructions)
    eval_flat = [p for p in held_out for _ in range(config.eval_samples)]
    ref_eval = generate(lm, eval_flat, sampling, gen)
    world = dict(lm=lm, train=train, eval_flat=eval_flat, gold=gold, proxy=proxy, sampling=sampling,
                 pool_prompts=pool_prompts, pool_responses=pool.responses, pool_features=pool_features,
                 chosen=chosen, rejected=rejected, ref_eval=ref_eval, ref_eval_gold=gold(eval_flat, ref_eval.responses))
    _WORLDS[key] = world
    return world


def _policy(config: LLMConfig, world: dict):
    """(trainable policy, frozen π0, trainable-parameter count): a fresh copy of π0 with its adapters
    (π0 itself, frozen once in :func:`_world`, is the reference)."""
    from llm.adapters import adapt, trainable_parameter_count

    policy = adapt(world["lm"], _adaptation(config.adaptation, world))
    return policy, world["lm"], trainable_parameter_count(policy.model)


def _adaptation(mode: str, world: dict):
    """``mode`` with its defaults (LoRA r = 16; the top two decoder layers, or all of a shallower model)."""
    from llm.adapters import Adaptation

    layers = int(getattr(world["lm"].model.config, "num_hidden_layers", 2))
    return Adaptation(mode=mode, top_layers=min(2, layers))


def _evaluate(policy, ref, world: dict, config: LLMConfig) -> dict:
    """Held-out gold, proxy, sequence KL (k1 ± SE, k3), win rate against π0, length and EOS share."""
    from llm.online import evaluate_policy

    return evaluate_policy(policy, ref, world["eval_flat"], world["gold"], world["sampling"], 20_000 + config.seed,
                           ref_rewards=world["ref_eval_gold"], proxy=world["proxy"])


# ----------------------------------------------------------------------------------------------
# Runs


def _run_reference(config, world):
    ref = world["lm"]
    row = _evaluate(ref, ref, world, config)
    return pd.DataFrame([{**row, "step": 0, "rm_queries": 0}])


def _run_dpo(config, world):
    from llm.trainers import DPOConfig, dpo, prepare_dpo_data

    policy, ref, n_trainable = _policy(config, world)
    prompts, responses = world["pool_prompts"], world["pool_responses"]
    data = prepare_dpo_data(ref, [prompts[i] for i in world["chosen"]], [responses[i] for i in world["chosen"]],
                            [responses[i] for i in world["rejected"]])
    rows = []

    def checkpoint(step: int):
        done = step + 1
        if done == config.dpo_steps // 2 or done == config.dpo_steps:
            rows.append({**_evaluate(policy, ref, world, config), "step": done, "rm_queries": 0})

    dpo(policy, data, DPOConfig(beta=config.eta, steps=config.dpo_steps, batch_size=config.batch_size,
                                lr=config.dpo_lr, seed=config.seed), progress=False, callback=checkpoint)
    return pd.DataFrame(rows).assign(trainable_parameters=n_trainable)


def _run_pg(config, world):
    from llm.trainers import PGConfig, policy_gradient

    policy, ref, n_trainable = _policy(config, world)
    pg = PGConfig(eta=config.eta, steps=config.pg_steps, prompts_per_step=config.prompts_per_step,
                  samples_per_prompt=config.samples_per_prompt, epochs=PG_EPOCHS, lr=config.pg_lr,
                  missing_eos_penalty=0.0, sampling=world["sampling"], seed=config.seed, **PG_RECIPES[config.method])
    rows = []
    per_step = config.prompts_per_step * config.samples_per_prompt

    def checkpoint(step: int):
        done = step + 1
        if done % config.eval_every == 0 or done == config.pg_steps:
            rows.append({**_evaluate(policy, ref, world, config), "step": done, "rm_queries": done * per_step})

    history = policy_gradient(policy, ref, world["train"], world["proxy"], pg, progress=False, callback=checkpoint)
    frame = pd.DataFrame(rows)
    train = history.groupby(np.minimum((history["step"] // config.eval_every + 1) * config.eval_every,
                                       config.pg_steps))[["reward", "kl"]].mean()
    frame["train_proxy_reward"] = frame["step"].map(train["reward"])
    frame["train_kl"] = frame["step"].map(train["kl"])
    return frame.assign(trainable_parameters=n_trainable)


def _run_best_of_n(config, world):
    """Best-of-N by the proxy on the evaluation prompts: N = 1, 2, 4, …, bon_max from one draw of
    bon_max π0 samples per evaluation response slot, split into bon_max/N disjoint groups of N."""
    import torch
    from scipy.special import expit

    from llm.generation import generate
    from rlbandit.sampling_oracles import best_of_n_kl_bound

    flat = world["eval_flat"]
    gen = torch.Generator().manual_seed(30_000 + config.seed)
    big = [p for p in flat for _ in range(config.bon_max)]
    samples = generate(world["lm"], big, world["sampling"], gen)
    gold = world["gold"](big, samples.responses).reshape(len(flat), config.bon_max)
    proxy = world["proxy"](big, samples.responses).reshape(len(flat), config.bon_max)
    lengths = samples.lengths.reshape(len(flat), config.bon_max)
    finished = samples.finished.reshape(len(flat), config.bon_max)
    rows = []
    n = 1
    while n <= config.bon_max:
        groups = config.bon_max // n
        split = lambda a: a[:, :groups * n].reshape(len(flat), groups, n)  # noqa: E731
        pick = split(proxy).argmax(-1)[..., None]
        take = lambda a: np.take_along_axis(split(a), pick, -1)[..., 0]  # noqa: E731
        best_gold = take(gold)
        rows.append({"n": n, "step": n, "rm_queries": n * len(flat), "gold_reward": float(best_gold.mean()),
                     "gold_reward_se": float(best_gold.mean(-1).std(ddof=1) / np.sqrt(len(flat))),
                     "proxy_reward": float(take(proxy).mean()), "kl_to_ref": best_of_n_kl_bound(n),
                     "kl_is_bound": True, "length": float(take(lengths).mean()),
                     "finished": float(take(finished).mean()),
                     "win_rate": float(expit(best_gold - world["ref_eval_gold"][:, None]).mean())})
        n *= 2
    return pd.DataFrame(rows)


#: rejection-sampling fine-tuning: rounds of best-of-RS_N selection then SFT
RS_ROUNDS, RS_N = 2, 4


def _rs_sft_steps(dpo_steps: int) -> int:
    """SFT steps per RS round: a quarter of DPO's steps (at least 2)."""
    return max(2, dpo_steps // 4)


def _run_rs_ft(config, world):
    from llm.trainers import RSConfig, SFTConfig, rejection_sampling_finetune

    policy, ref, n_trainable = _policy(config, world)
    # as many reward-model queries as one PG run: rounds × prompts × n = pg_steps × prompts × samples
    rs = RSConfig(rounds=RS_ROUNDS, n=RS_N, prompts_per_round=max(1, config.rm_queries // (RS_ROUNDS * RS_N)),
                  sft=SFTConfig(steps=_rs_sft_steps(config.dpo_steps), batch_size=config.batch_size,
                                lr=config.dpo_lr),
                  sampling=world["sampling"], missing_eos_penalty=0.0, seed=config.seed)
    rejection_sampling_finetune(policy, world["train"], world["proxy"], rs, progress=False)
    queries = rs.rounds * rs.prompts_per_round * rs.n
    return pd.DataFrame([{**_evaluate(policy, ref, world, config), "step": rs.rounds, "rm_queries": queries,
                          "trainable_parameters": n_trainable}])


def _pair_accuracy(scores, gold) -> float:
    """Share of held-out pairs (responses 2i, 2i+1 of one prompt) the scores order as the gold reward does."""
    s, g = np.asarray(scores).reshape(-1, 2), np.asarray(gold).reshape(-1, 2)
    return float(np.mean(np.sign(s[:, 0] - s[:, 1]) == np.sign(g[:, 0] - g[:, 1])))


def _run_reward_model(config, world):
    """Both reward models of the same comparisons, scored on held-out pairs (π0's two responses to
    each evaluation prompt) against the gold preference sign(r*(y¹) − r*(y²)), and on the
    training pairs against their BT labels."""
    from llm.adapters import adapt
    from llm.trainers import RMConfig, train_lm_reward_model

    flat, responses = world["eval_flat"], world["ref_eval"].responses
    pairs = [(i, i + 1) for i in range(0, len(flat) - 1, 2) if flat[i] == flat[i + 1]]
    idx = np.asarray(pairs).reshape(-1)
    gold = world["ref_eval_gold"][idx]
    prompts, pool = world["pool_prompts"], world["pool_responses"]
    chosen = [pool[i] for i in world["chosen"]]
    rejected = [pool[i] for i in world["rejected"]]
    c_prompts = [prompts[i] for i in world["chosen"]]
    start = time.perf_counter()
    # the reward model trains its head and the top two decoder layers of a copy of π0
    base = adapt(world["lm"], _adaptation("top", world))
    lm_rm, _ = train_lm_reward_model(base, c_prompts, chosen, rejected,
                                           RMConfig(steps=config.dpo_steps, batch_size=config.batch_size,
                                                    lr=config.dpo_lr, seed=config.seed), progress=False)
    seconds = time.perf_counter() - start
    sub = [flat[i] for i in idx]
    texts = [responses[i] for i in idx]
    rows = []
    for name, rm in (("phi_head", world["proxy"]), ("lm_head", lm_rm)):
        train_margin = np.asarray(rm(c_prompts, chosen)) - np.asarray(rm(c_prompts, rejected))
        rows.append({"reward_model": name, "heldout_accuracy": _pair_accuracy(rm(sub, texts), gold),
                     "train_label_accuracy": float(np.mean(train_margin > 0)), "heldout_pairs": len(pairs),
                     "comparisons": config.n_comparisons, "seconds": seconds if name == "lm_head" else np.nan})
    return pd.DataFrame(rows)


def _run_bandit(config, world):
    """The exact bandit on the comparison pool: X = training prompts, K = 2n/X responses each."""
    from rlbandit import LinearBandit, expected_reward, gibbs

    x = config.train_prompts
    features = world["pool_features"].reshape(x, -1, world["pool_features"].shape[-1])
    features = features / np.maximum(1.0, np.linalg.norm(features, axis=-1, keepdims=True))
    k = features.shape[1]
    problem = LinearBandit(features, world["gold"].theta, np.full((x, k), -np.log(k)))
    rows = []
    for name, theta in (("gibbs_gold", world["gold"].theta), ("gibbs_rm", world["proxy"].theta)):
        policy = gibbs(features @ theta, problem.ref_logprobs, config.eta)
        rows.append({"policy": name, "gold_reward": float(problem.gold_reward(policy)),
                     "proxy_reward": float(problem.context_probs
                                           @ expected_reward(policy, features @ world["proxy"].theta)),
                     "kl_to_ref": float(problem.kl_to_ref(policy)),
                     "suboptimality": float(problem.suboptimality(policy, config.eta)), "pool_size": k})
    return pd.DataFrame(rows)


#: the LM trainers measured in the sequence-level bridge (keys of ``llm.seq_bridge.SEQUENCE_METHODS``).
BRIDGE_METHODS = ("dpo_exact", "ppo", "ppo_gae", "rloo", "grpo", "dr_grpo")
#: a bridge run counts as converged when KL(π̂ ‖ its fixed point) is within this share of KL(π0 ‖ π*)
#: and below BRIDGE_CONVERGED_NATS.
BRIDGE_CONVERGED = 0.05
BRIDGE_CONVERGED_NATS = 0.2


def _run_seq_bridge(config):
    """Each LM trainer in the exact sequence-level world at this η (one fresh world per method)."""
    from llm.seq_bridge import SequenceBridgeConfig, make_sequence_world, run_method

    rows = []
    for method in BRIDGE_METHODS:
        world = make_sequence_world(SequenceBridgeConfig(seed=config.seed))
        result = run_method(world, method, config.eta, seed=config.seed)
        rows.append({"bridge_method": result.pop("method"),
                     **{k: v for k, v in result.items() if k not in ("eta", "seed")}})
    return pd.DataFrame(rows)


_RUNS = {"reference": _run_reference, "dpo": _run_dpo, **{m: _run_pg for m in PG_RECIPES},
         "best_of_n": _run_best_of_n, "rs_ft": _run_rs_ft, "reward_model": _run_reward_model, "bandit": _run_bandit}


def run(config: LLMConfig) -> pd.DataFrame:
    """One method at one η and seed; rows as the module docstring says."""
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    if config.method == "seq_bridge":
        frame = _run_seq_bridge(config)
        world_name = "seq_bridge"
    else:
        world = _world(config)
        built = time.perf_counter() - start
        frame = _RUNS[config.method](config, world).assign(world_seconds=built)
        world_name = "bandit" if config.method == "bandit" else "lm"
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    frame = frame.assign(world=world_name, run_seconds=time.perf_counter() - start, device=device)
    print(f"[llm] {config.method} eta={config.eta} seed={config.seed}: {len(frame)} rows in "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    return frame


# ----------------------------------------------------------------------------------------------
# Report

_POLICY_METHODS = ("dpo", *PG_RECIPES, "rs_ft")


def _se(values) -> float:
    values = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


def _final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The last held-out checkpoint of every LM policy run (DPO, PG, RS-FT) and π0's row."""
    lm = frame[(frame["world"] == "lm") & frame["method"].isin(("reference",) + _POLICY_METHODS)]
    last = lm.groupby("run_id")["step"].transform("max")
    return lm[lm["step"] == last]


def final_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Held-out results per method × η at the last checkpoint, averaged over the seeds run.

    Gains are paired: each run minus π0 of its own seed (same world, same held-out prompts), so
    ``gold_gain`` compares every cell with the π0 it started from. ``*_se``: standard error across
    seeds (NaN with one seed); ``*_sample_se``: the held-out estimate's own sampling standard error
    (for a gain, policy and π0 combined), averaged over seeds.
    """
    final = _with_gains(frame, _final_rows(frame))
    ref = final[final["method"] == "reference"].set_index("seed")
    rows = []
    for (method, eta), g in final.groupby(["method", "eta"], sort=False):
        gold_gain = g["gold_gain"].to_numpy()
        base_var = 0.0 if method == "reference" else ref.reindex(g["seed"])["gold_reward_se"].to_numpy() ** 2
        gain_sample_se = np.sqrt(g["gold_reward_se"].to_numpy() ** 2 + base_var)
        rows.append({"method": method, "eta": eta, "seeds": g["seed"].nunique(),
                     "gold_reward": g["gold_reward"].mean(), "gold_sample_se": g["gold_reward_se"].mean(),
                     "gold_gain": float(np.mean(gold_gain)), "gold_gain_se": _se(gold_gain),
                     "gold_gain_sample_se": float(np.mean(gain_sample_se)),
                     "proxy_reward": g["proxy_reward"].mean(), "proxy_gain": g["proxy_gain"].mean(),
                     "kl_to_ref": g["kl_to_ref"].mean(), "kl_se": _se(g["kl_to_ref"]),
                     "kl_sample_se": g["kl_to_ref_se"].mean(), "win_rate": g["win_rate"].mean(),
                     "length": g["length"].mean(), "finished": g["finished"].mean()})
    table = pd.DataFrame(rows)
    order = {m: i for i, m in enumerate(METHODS)}
    return table.sort_values(["method", "eta"], key=lambda c: c.map(order) if c.name == "method" else c) \
        .reset_index(drop=True)


def budget_table(frame: pd.DataFrame) -> pd.DataFrame:
    """What each method consumed per run, in stated units: BT comparisons (the shared data), reward-
    model queries, policy samples drawn while training, optimiser steps, trainable weights, wall time."""
    rows = []
    for method, g in frame[frame["world"] == "lm"].groupby("method", sort=False):
        c = g.iloc[0]
        n = int(c["n_comparisons"])
        if method == "reference":
            continue
        if method == "dpo":
            spent = dict(rm_queries=0, train_samples=0, optimiser_steps=int(c["dpo_steps"]))
        elif method in PG_RECIPES:
            q = int(c["pg_steps"] * c["prompts_per_step"] * c["samples_per_prompt"])
            epochs = 1 if PG_RECIPES[method]["algorithm"] == "rloo" else PG_EPOCHS
            spent = dict(rm_queries=q, train_samples=q, optimiser_steps=int(c["pg_steps"]) * epochs)
        elif method == "rs_ft":
            q = int(g["rm_queries"].max())
            spent = dict(rm_queries=q, train_samples=q, optimiser_steps=RS_ROUNDS * _rs_sft_steps(int(c["dpo_steps"])))
        elif method == "best_of_n":
            spent = dict(rm_queries=f"N × {int(c['eval_prompts'] * c['eval_samples'])} (at inference)",
                         train_samples=0, optimiser_steps=0)
        elif method == "reward_model":
            spent = dict(rm_queries=0, train_samples=0, optimiser_steps=int(c["dpo_steps"]))
        else:
            continue
        trainable = g["trainable_parameters"].dropna()
        rows.append({"method": method, "comparisons": n,
                     "comparisons_used_via": "directly" if method in ("dpo", "reward_model") else "reward model",
                     **spent, "trainable_parameters": int(trainable.iloc[0]) if len(trainable) else np.nan,
                     "run_seconds": g.groupby("run_id")["run_seconds"].first().mean()})
    return pd.DataFrame(rows)


def reward_model_table(frame: pd.DataFrame) -> pd.DataFrame:
    rm = frame[frame["method"] == "reward_model"]
    if rm.empty:
        return pd.DataFrame()
    return rm.groupby("reward_model", sort=False).agg(
        heldout_accuracy=("heldout_accuracy", "mean"), heldout_se=("heldout_accuracy", _se),
        train_label_accuracy=("train_label_accuracy", "mean"), heldout_pairs=("heldout_pairs", "first"),
        comparisons=("comparisons", "first"), seeds=("seed", "nunique")).reset_index()


def _with_gains(frame: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with gold_gain / proxy_gain: minus π0's held-out gold / proxy of the same seed (each seed
    has its own comparisons, so its own reward model: proxies are comparable only within a seed)."""
    ref = frame[(frame["world"] == "lm") & (frame["method"] == "reference")].groupby("seed")[
        ["gold_reward", "proxy_reward"]].mean()
    base = ref.reindex(rows["seed"])
    return rows.assign(gold_gain=rows["gold_reward"].to_numpy() - base["gold_reward"].to_numpy(),
                       proxy_gain=rows["proxy_reward"].to_numpy() - base["proxy_reward"].to_numpy())


def best_of_n_table(frame: pd.DataFrame) -> pd.DataFrame:
    bon = frame[frame["method"] == "best_of_n"]
    if bon.empty:
        return pd.DataFrame()
    bon = _with_gains(frame, bon)
    return bon.groupby("n").agg(gold_reward=("gold_reward", "mean"), gold_se=("gold_reward", _se),
                                gold_gain=("gold_gain", "mean"), proxy_gain=("proxy_gain", "mean"),
                                proxy_reward=("proxy_reward", "mean"), kl_bound=("kl_to_ref", "first"),
                                win_rate=("win_rate", "mean"), length=("length", "mean"),
                                finished=("finished", "mean"), seeds=("seed", "nunique")).reset_index()


def bandit_table(frame: pd.DataFrame) -> pd.DataFrame:
    b = frame[frame["world"] == "bandit"]
    if b.empty:
        return pd.DataFrame()
    return b.groupby(["policy", "eta"]).agg(gold_reward=("gold_reward", "mean"), gold_se=("gold_reward", _se),
                                            proxy_reward=("proxy_reward", "mean"), kl_to_ref=("kl_to_ref", "mean"),
                                            pool_size=("pool_size", "first"), seeds=("seed", "nunique")).reset_index()


def bridge_table(frame: pd.DataFrame) -> pd.DataFrame:
    b = frame[frame["world"] == "seq_bridge"]
    if b.empty:
        return pd.DataFrame()
    cols = [c for c in ("kl_ref_to_optimal", "kl_to_optimal", "kl_ratio", "target", "kl_to_target",
                        "kl_target_to_optimal", "kl_to_ref", "sampled_kl_k1", "sampled_kl_k1_se", "steps", "seconds")
            if c in b]
    numeric = [c for c in cols if pd.api.types.is_numeric_dtype(b[c])]
    agg = {c: (c, "mean") for c in numeric} | {c: (c, "first") for c in cols if c not in numeric}
    table = b.groupby(["bridge_method", "eta"], sort=False).agg(**agg, seeds=("seed", "nunique")).reset_index()
    if {"kl_to_target", "kl_ref_to_optimal"} <= set(table):
        done = (table["kl_to_target"] <= BRIDGE_CONVERGED * table["kl_ref_to_optimal"]) \
            & (table["kl_to_target"] <= BRIDGE_CONVERGED_NATS)
        table["converged"] = np.where(done, "yes", "no (step cap)")
    return table


def _pareto_figure(frame: pd.DataFrame, final: pd.DataFrame):
    from rlbandit import plots

    fig, axes = plots.new_figure(1, panel_size=(6.0, 4.3))
    ax = axes[0]
    for method in _POLICY_METHODS + ("reference",):
        sub = final[final["method"] == method]
        if sub.empty:
            continue
        if method == "reference":  # the origin: π0 itself
            ax.plot([0.0], [0.0], "o", color=COLORS[method], label="π0 (reference)", ms=5)
            continue
        x = np.sqrt(sub["kl_to_ref"].clip(lower=0)).to_numpy()
        # error bars: the SE across seeds where there are several, else the run's own sampling SE;
        # SE of √KL by the delta method, se(KL) / (2 √KL)
        several = (sub["seeds"] > 1).to_numpy()
        gold_se = np.where(several, sub["gold_gain_se"], sub["gold_sample_se"])
        kl_se = np.where(several, sub["kl_se"], sub["kl_sample_se"])
        xerr = np.nan_to_num(kl_se / (2 * np.maximum(x, 1e-9)))
        gold = sub["gold_gain"].to_numpy()
        for mask, face in ((several, COLORS[method]), (~several, "white")):
            if mask.any():
                ax.errorbar(x[mask], gold[mask], xerr=xerr[mask], yerr=np.nan_to_num(gold_se[mask]), fmt="o",
                            color=COLORS[method], mfc=face, capsize=3, ms=5,
                            label=method if (face != "white" or not several.any()) else None)
        for _, r in sub.iterrows():
            ax.annotate(f"η={r['eta']:g}", (np.sqrt(max(r["kl_to_ref"], 0)), r["gold_gain"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points", color=COLORS[method])
    bon = best_of_n_table(frame)
    if not bon.empty:
        ax.plot(np.sqrt(bon["kl_bound"]), bon["gold_gain"], ls="--", marker="s", ms=4, color=COLORS["best_of_n"],
                label="best_of_n (x: √ of the KL bound)")
    ax.set_xlabel(r"$\sqrt{\mathrm{KL}(\pi\|\pi_0)}$ (sequence level, held-out samples)")
    ax.axhline(0.0, color="0.6", lw=0.8, zorder=0)
    ax.set_ylabel("held-out gold gain over π0 (same seed)")
    ax.set_title("Reward–KL frontier on held-out prompts")
    ax.legend(fontsize=7, loc="best")
    return fig


def _overopt_figure(frame: pd.DataFrame):
    """Gold and proxy gains over π0 (same seed) along training, against √KL, per method; η by line style."""
    from rlbandit import plots

    runs = frame[(frame["world"] == "lm") & frame["method"].isin(tuple(PG_RECIPES) + ("dpo",))]
    runs = _with_gains(frame, runs)
    fig, axes = plots.new_figure(2, ncols=2, panel_size=(4.6, 3.6))
    styles = dict(zip(sorted(runs["eta"].unique()), ("-", "--", ":", "-.")))
    for ax, column, name in zip(axes, ("gold_gain", "proxy_gain"), ("gold", "proxy (learned reward model)")):
        for (method, eta), g in runs.groupby(["method", "eta"], sort=False):
            means = g.groupby("step")[["kl_to_ref", column]].mean().sort_index()
            path = pd.concat([pd.DataFrame({"kl_to_ref": [0.0], column: [0.0]}), means], ignore_index=True)
            ax.plot(np.sqrt(path["kl_to_ref"].clip(lower=0)), path[column], marker="o", ms=3,
                    color=COLORS[method], ls=styles[eta], label=f"{method} η={eta:g}")
        ax.axhline(0.0, color="0.6", lw=0.8, zorder=0)
        ax.set_xlabel(r"$\sqrt{\mathrm{KL}(\pi\|\pi_0)}$")
        ax.set_ylabel(f"held-out {name} gain over π0")
    axes[0].set_title("Gold reward along training")
    axes[1].set_title("Proxy reward along training")
    axes[1].legend(fontsize=6, loc="best", ncol=2)
    return fig


def report(frame: pd.DataFrame) -> ReportContent:
    frame = frame.copy()
    per_eta = frame[frame["eta"] > 0].groupby("eta")["seed"].nunique()
    seeds_text = ", ".join(f"{n} at η = {e:g}" for e, n in per_eta.items())
    final = final_table(frame)
    tables = []
    if not final.empty:
        tables.append(("Held-out results at the last checkpoint (means over the seeds run; gains paired with π0 of the "
                       "same seed; *_se across seeds, blank with one seed; *_sample_se the held-out estimate's own "
                       "sampling SE)", final.round(3)))
    budgets = budget_table(frame)
    if not budgets.empty:
        tables.append(("Budgets per run, in stated units (every method sees the same BT comparisons)", budgets))
    rms = reward_model_table(frame)
    if not rms.empty:
        tables.append(("Reward models from the same comparisons: held-out pairwise accuracy against the gold "
                       "preference (π0's two responses to each evaluation prompt)", rms.round(3)))
    bon = best_of_n_table(frame)
    if not bon.empty:
        tables.append(("Best-of-N by the learned reward model on held-out prompts (KL: the analytic bound "
                       "log N − (N−1)/N, not an estimate)", bon.round(3)))
    bandit = bandit_table(frame)
    if not bandit.empty:
        tables.append(("The exact bandit on the comparison pool (π0 uniform over each training prompt's "
                       "responses): the optimum O(r*, η, π0) and the plug-in O(φθ̂, η, π0)", bandit.round(4)))
    bridge = bridge_table(frame)
    if not bridge.empty:
        tables.append(("Sequence-level bridge: distance of each LM trainer's policy to the exact sequence-level "
                       "Gibbs policy π* (and to its own fixed point where that differs)", bridge))
    figures = []
    if not final.empty:
        figures.append(ReportFigure("pareto", _pareto_figure(frame, final),
                                    "Held-out gold gain over π0 of the same seed against √KL(π‖π0) at the last "
                                    "checkpoint, per method and KL "
                                    "coefficient. Filled markers: means over seeds, error bars ± one standard error "
                                    "across seeds (of the gain over π0); hollow markers: one seed, error bars ± the "
                                    "run's own sampling standard error. Best-of-N's x is the square root of its "
                                    "analytic KL bound, not an estimate. Every trained run is budget-capped, not "
                                    "converged (notes)."))
        figures.append(ReportFigure("overoptimization", _overopt_figure(frame),
                                    "Gold (left) and proxy (right) reward gains over π0 of the same seed on held-out "
                                    "prompts along training, against √KL(π‖π0), from π0 (0, 0) through each "
                                    f"checkpoint; means over the seeds run ({seeds_text}), line style = η. Each seed "
                                    "has its own reward model, so proxies compare only within a seed."))
    return ReportContent(summary=_summary(frame, final, rms, bon, bandit, bridge), tables=tuple(tables),
                         figures=tuple(figures), notes=_notes(frame))


def _summary(frame, final, rms, bon, bandit, bridge) -> str:
    """Findings in plain words, each number read from a table of this report."""
    lines = []
    if final.empty:
        return "No LM runs stored."
    c = frame.iloc[0]
    training = {"top": "its top two decoder layers trained", "lora": "LoRA adapters (r = 16) trained",
                "full": "every weight trained"}[c["adaptation"]]
    seeds = frame.groupby("eta")["seed"].nunique()
    lines.append(f"Model: **{c['model']}** ({training}), {int(c['train_prompts'])} training prompts, "
                 f"{int(c['eval_prompts'])} held-out prompts of unseen topics × {int(c['eval_samples'])} responses, "
                 f"{int(c['n_comparisons'])} BT comparisons per seed for every method, responses of at most "
                 f"{int(c['max_new_tokens'])} tokens; seeds per η: "
                 + ", ".join(f"{e:g}: {n}" for e, n in seeds.items() if e > 0)
                 + f" (methods without η: {int(seeds.get(0.0, 0))}).")
    ref = final[final["method"] == "reference"]
    if len(ref):
        r = ref.iloc[0]
        lines.append(f"- π0's held-out gold reward is {r['gold_reward']:.3f} (sampling SE {r['gold_sample_se']:.3f}, "
                     f"mean over {int(r['seeds'])} seeds); its responses average {r['length']:.1f} tokens and "
                     f"{r['finished']:.0%} end with EOS.")
    trained = final[final["method"] != "reference"]
    if len(trained):
        name = lambda r: r["method"] + (f" (η={r['eta']:g})" if r["eta"] > 0 else "")  # noqa: E731
        best = trained.loc[trained["gold_gain"].idxmax()]
        spread = f", SE across seeds {best['gold_gain_se']:.3f}" if best["seeds"] > 1 else ", one seed"
        lines.append(f"- Largest mean held-out gold gain over π0 of the same seed: {name(best)}, "
                     f"{best['gold_gain']:+.3f} (sampling SE {best['gold_gain_sample_se']:.3f}{spread}) at KL "
                     f"{best['kl_to_ref']:.2f} nats, win rate against π0 {best['win_rate']:.2f}. Held-out proxy gains "
                     f"range from {trained['proxy_gain'].min():+.3f} to {trained['proxy_gain'].max():+.3f}.")
        # a gain counts when it exceeds twice the larger of its two standard errors
        noise = 2 * np.fmax(trained["gold_gain_se"].fillna(0).to_numpy(), trained["gold_gain_sample_se"].to_numpy())
        gains = trained["gold_gain"].to_numpy()
        above = [f"{name(r)} {r['gold_gain']:+.2f}" for (_, r), g, n in zip(trained.iterrows(), gains, noise) if g > n]
        below = [f"{name(r)} {r['gold_gain']:+.2f}" for (_, r), g, n in zip(trained.iterrows(), gains, noise) if g < -n]
        lines.append(f"- Gold gains beyond two standard errors (the larger of the across-seed and the sampling SE): "
                     f"{', '.join(above) if above else 'none'}; losses beyond two: "
                     f"{', '.join(below) if below else 'none'}; the other {len(trained) - len(above) - len(below)} of "
                     f"{len(trained)} method × η cells are within noise of π0 at this budget.")
        lines.append(f"- Length and stopping: mean response length {trained['length'].min():.1f}–"
                     f"{trained['length'].max():.1f} tokens across cells (π0: "
                     f"{float(ref['length'].iloc[0]) if len(ref) else float('nan'):.1f}); EOS share "
                     f"{trained['finished'].min():.0%}–{trained['finished'].max():.0%} (π0: "
                     f"{float(ref['finished'].iloc[0]) if len(ref) else float('nan'):.0%}).")
        pg = trained[trained["method"].isin(tuple(PG_RECIPES))]
        if len(pg):
            lines.append(f"- Over-optimisation at this budget: the policy-gradient cells moved the held-out proxy by "
                         f"{pg['proxy_gain'].mean():+.3f} on average (in its own units) and the gold by "
                         f"{pg['gold_gain'].mean():+.3f}: with the proxy barely optimised there is little to "
                         "over-optimise; the figure follows both along training.")
    if not rms.empty:
        parts = [f"{r['reward_model']} {r['heldout_accuracy']:.2f}" for _, r in rms.iterrows()]
        lines.append(f"- Reward models from the same {int(rms['comparisons'].iloc[0])} comparisons, held-out pairwise "
                     f"accuracy against the gold preference: {', '.join(parts)} "
                     f"({int(rms['heldout_pairs'].iloc[0])} held-out pairs per seed). The φ-head's lead is built "
                     "into the scenario — the gold reward is linear in φ, so that model is well specified — and is "
                     "a check, not a finding about reward models.")
    if not bon.empty:
        top = bon.iloc[-1]
        trained = final[final["method"] != "reference"]
        beats = trained[trained["gold_reward"] >= top["gold_reward"]]
        lines.append(f"- Best-of-{int(top['n'])} by the learned reward: held-out gold {top['gold_reward']:.3f} "
                     f"(best-of-1 {bon['gold_reward'].iloc[0]:.3f}; proxy {bon['proxy_reward'].iloc[0]:.3f} → "
                     f"{top['proxy_reward']:.3f}) within the KL bound {top['kl_bound']:.2f}; "
                     + ("no trained policy reaches it at this budget." if beats.empty else
                        f"trained policies at or above it: {', '.join(beats['method'])}."))
    if not bandit.empty:
        for eta, g in bandit.groupby("eta"):
            opt = g[g["policy"] == "gibbs_gold"].iloc[0]
            plug = g[g["policy"] == "gibbs_rm"].iloc[0]
            lines.append(f"- Exact bandit on the pool (η = {eta:g}): the optimum reaches gold {opt['gold_reward']:.3f} "
                         f"at KL {opt['kl_to_ref']:.3f}; the plug-in policy of the learned reward "
                         f"{plug['gold_reward']:.3f} at KL {plug['kl_to_ref']:.3f}.")
    if not bridge.empty and "kl_to_optimal" in bridge:
        for eta, g in bridge.groupby("eta"):
            parts = [f"{r['bridge_method']} {r['kl_to_optimal']:.1e}"
                     + ("" if r["target"] == "gibbs" else f" (to its own fixed point, {r['target']}: "
                                                         f"{r['kl_to_target']:.1e})")
                     + ("" if r.get("converged", "yes") == "yes" else " [not converged]") for _, r in g.iterrows()]
            lines.append(f"- Sequence-level bridge at η = {eta:g}, KL(π̂‖π*) at the end (from KL(π0‖π*) = "
                         f"{g['kl_ref_to_optimal'].iloc[0]:.2f}): {'; '.join(parts)}.")
    return "\n".join(lines)


def _notes(frame: pd.DataFrame) -> str:
    devices = sorted(set(frame["device"].dropna())) if "device" in frame else []
    if any(d != "cpu" for d in devices):
        gpu_line = f"- Ran on: {', '.join(devices)} (bf16 on the GPU)."
    else:
        gpu_line = ("- Ran on the CPU only. The GPU scale (`bash benchmarks/llm_gpu.sh`: the `llm_gpu` study, full "
                    "fine-tuning, 512 comparisons, 3 seeds, reports in `reports/llm_gpu/`) has not yet run on a GPU.")
    c = frame.iloc[0]
    capped = (f"- **Every LM run is budget-capped, not converged**: {int(c['pg_steps'])} policy-gradient rollouts of "
              f"{int(c['prompts_per_step'] * c['samples_per_prompt'])} responses, {int(c['dpo_steps'])} DPO steps of "
              f"{int(c['batch_size'])} pairs, two RS rounds. The tables compare methods at this budget, not their "
              "fixed points; the sequence-level bridge measures where each trainer converges.")
    return "\n".join([
        capped,
        "- Every LM number is estimated on held-out prompts whose topics no method trained on "
        "(`llm.prompts.split_prompts`, split by topic); the bandit and bridge worlds are exact.",
        "- The gold reward is linear in the MiniLM embedding of instruction + response, so the linear "
        "theory's reward model (BT head on φ) is well specified; the LM-head reward model is not linear in φ.",
        "- PPO here is trl's PPOTrainer recipe (zero-initialised value head on the policy trunk, per-token "
        "k1 KL in the reward, GAE, whitened advantages, clipped value loss); RLOO uses the leave-one-out "
        "baseline over the prompt's samples; GRPO / Dr. GRPO use trl's GRPOTrainer advantages and k3 in the "
        "loss (token mean per response for GRPO, a constant normaliser for Dr. GRPO). With k3 in the loss and "
        "std-normalised advantages GRPO's fixed point is not the Gibbs policy (see the bridge table).",
        "- Every method optimises the same learned reward as it is: no penalty for responses cut at the length "
        "cap (trl's `missing_eos_penalty` is off), so length and EOS share are outcomes, reported beside gold.",
        "- Best-of-N's KL is the analytic bound log N − (N−1)/N (Beirami et al. 2024); the others' KL is the "
        "sequence-level k1 estimate from the policy's own samples, with its standard error.",
        "- The exact bandit restricts each training prompt to the responses of its comparisons, so its "
        "numbers are not on the LM's KL scale; they show what the plug-in reward model is worth when the "
        "oracle is exact.",
        gpu_line,
        "- Speed against trl and Hugging Face generate: see [speed.md](speed.md) "
        "(`python -m benchmarks.speed_llm --out reports/llm/speed.md`).",
    ])


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
    symbols={"proxy_reward": "proxy reward (learned RM)", "rm_queries": "reward-model queries"},
)
