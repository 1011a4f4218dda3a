"""The ``llm`` study's runs (:mod:`benchmarks.llm`): the world of one seed (π0, prompts, gold reward,
comparisons, reward model; built once per process) and one function per method, each returning the
run's tidy rows."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmarks.llm_sweep import (
    BRIDGE_METHODS,
    PG_EPOCHS,
    PG_RECIPES,
    RS_N,
    RS_ROUNDS,
    SYSTEM,
    LLMConfig,
    rs_sft_steps,
)
from llm.features import LinearGold

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

    from llm.features import (
        Embedder,
        bt_labels,
        fit_feature_reward,
        sentiment_direction,
    )
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


def _run_rs_ft(config, world):
    from llm.trainers import RSConfig, SFTConfig, rejection_sampling_finetune

    policy, ref, n_trainable = _policy(config, world)
    # as many reward-model queries as one PG run: rounds × prompts × n = pg_steps × prompts × samples
    rs = RSConfig(rounds=RS_ROUNDS, n=RS_N, prompts_per_round=max(1, config.rm_queries // (RS_ROUNDS * RS_N)),
                  sft=SFTConfig(steps=rs_sft_steps(config.dpo_steps), batch_size=config.batch_size,
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
