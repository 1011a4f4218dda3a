"""Speed of the llm world against references measured in the same run. Timings on a shared machine
are noisy, so every implementation is timed in interleaved rounds (ours, reference, ours, …), each
number is a median, and only ratios measured in one run count:

1. **DPO training step** — :func:`llm.trainers.dpo` against trl 1.16's ``DPOTrainer`` on the same
   model, the same preference pairs, the same batch size, the same torch threads and a precomputed
   reference for both (ours: :func:`llm.trainers.prepare_dpo_data`; trl: ``precompute_ref_log_probs``),
   activation checkpointing off for trl (it trades compute for memory; ours never recomputes), trl also
   with ``padding_free=True``. Ours twice: with its default forward, each prompt run once per pair
   (``DPOConfig(share_prompt=True)``, :func:`llm.generation.shared_prompt_sequence_logprobs`), and
   with the packed forward that sends the prompt once with each response (``share_prompt=False``).
   A step is the interval between consecutive optimiser steps (batch assembly + forward + backward +
   clipping + AdamW); the first step of each round is dropped.
   Goal: ours ≤ 0.7 × trl's time. With full weights and with LoRA (``llm.adapters``) adapters.
2. **Generation** — tokens/s of :func:`llm.generation.generate` (KV cache, top-k/top-p, EOS
   stopping) against Hugging Face ``model.generate(do_sample=True)`` on the same prompts, same limits.
3. **One PPO iteration, split** — generation, scoring (MiniLM embedding + a linear head,
   :class:`llm.features.LinearGold`), the old-policy and reference log-prob passes and one update
   step (forward, :func:`llm.trainers.pg_loss`, backward, clip, AdamW), each timed on its own, plus
   one end-to-end :func:`llm.trainers.policy_gradient` iteration as a check on the sum.

Run: ``nice -n 10 .venv/bin/python -m benchmarks.speed_llm [--model tiny] [--out reports/llm/speed.md]``
(default model: SmolLM2-135M-Instruct, offline; ``--model tiny`` is a quick run on the test-size model).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import pandas as pd

__all__ = ["dpo_input_tokens", "dpo_step_times", "generation_throughput", "machine_info", "main",
           "ppo_iteration_split"]

OURS_SHARED = "llm.trainers.dpo (shared prompt)"
OURS_PACKED = "llm.trainers.dpo (packed, prompt twice)"
TRL = "trl DPOTrainer"


def machine_info(threads: int) -> dict:
    """Threads, cores, load and library versions: what the ratios were measured under."""
    import torch

    def v(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return "absent"

    return {"torch threads": threads, "cpu cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__, "transformers": v("transformers"),
            "trl": v("trl"), "peft": v("peft"), "accelerate": v("accelerate"),
            "sentence-transformers": v("sentence-transformers"),
            "load average (1, 5, 15 min)": "{:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())}


def _pairs(tokenizer, n: int, seed: int = 0):
    """n preference pairs: two review texts of the synthetic corpus as chosen / rejected, after
    instruction prompts rendered with the model's chat template (SmolLM2) or, for a model without
    one (the tiny model, whose 64-token window the instructions would overflow), the corpus' prompts."""
    from llm.corpus import reviews
    from llm.prompts import instruction_prompts, render

    prompts, chosen, _ = reviews(n, np.random.default_rng(seed))
    _, rejected, _ = reviews(n, np.random.default_rng(seed + 1))
    if getattr(tokenizer, "chat_template", None):
        prompts = list(render(tokenizer, instruction_prompts(n, seed=seed)))
    return list(prompts), chosen, rejected


def _policy(lm, mode: str):
    """The model to train: a deep copy with every weight trainable, or with LoRA adapters."""
    if mode == "full":
        return lm.copy()
    from llm.adapters import Adaptation, adapt

    return adapt(lm, Adaptation(mode=mode))


def _ours_dpo_round(policy, data, config):
    """Run ``dpo`` for ``config.steps`` steps; seconds between consecutive optimiser steps."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    from llm.trainers import dpo

    stamps = []
    handle = register_optimizer_step_post_hook(lambda *a: stamps.append(time.perf_counter()))
    try:
        dpo(policy, data, config, progress=False)
    finally:
        handle.remove()
    return list(np.diff(stamps))


def _trl_runner(trainer):
    """A function running one ``trainer.train()`` round; returns seconds between consecutive step ends."""
    from transformers import TrainerCallback

    stamps = []

    class Stamp(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            stamps.append(time.perf_counter())

    trainer.add_callback(Stamp())

    def run():
        stamps.clear()
        trainer.train()
        return list(np.diff(stamps))

    return run


def dpo_input_tokens(prompt_ids, chosen_ids, rejected_ids) -> dict:
    """Tokens the transformer body runs on over the pairs, per forward layout (padding of the packed
    rows aside): the shared prompt feeds Σ P + C + R − 2 (x once; a response's last token predicts
    nothing), the packed forward Σ 2P + C + R."""
    p = sum(len(x) for x in prompt_ids)
    c, r = sum(len(y) for y in chosen_ids), sum(len(y) for y in rejected_ids)
    return {"shared": p + c + r - 2 * len(prompt_ids), "packed": 2 * p + c + r, "prompt": p, "responses": c + r}


def dpo_step_times(lm, *, mode: str = "full", batch_size: int = 8, steps_per_round: int = 3, rounds: int = 3,
                   lr: float = 1e-5, beta: float = 0.1) -> tuple[pd.DataFrame, dict]:
    """Median seconds per DPO step: ours (shared prompt; packed, prompt twice), trl (precomputed
    reference), trl (+ ``padding_free=True``).

    Each round runs ``steps_per_round`` steps of each implementation in turn (one trl ``train()``
    call per round on a trainer built once); the first interval of each round is dropped.
    Returns (table, notes).
    """
    from llm.trainers import DPOConfig, prepare_dpo_data
    from llm.trl_compat import trl_dpo_trainer

    n = batch_size * steps_per_round  # one epoch per trl round, so every round sees the same batches
    prompts, chosen, rejected = _pairs(lm.tokenizer, n)
    policy = _policy(lm, mode)
    start = time.perf_counter()
    data = prepare_dpo_data(lm, prompts, chosen, rejected)  # π0 = lm (LoRA adapters start at zero: the same)
    precompute = {"llm.trainers.dpo": time.perf_counter() - start}
    ref_lm = None if mode == "lora" else lm  # a peft policy: trl's reference is the adapters switched off
    config = DPOConfig(beta=beta, steps=steps_per_round, batch_size=batch_size, lr=lr, warmup=0, max_grad_norm=1.0)
    packed = DPOConfig(**{**config.__dict__, "share_prompt": False})
    runners = {OURS_SHARED: lambda: _ours_dpo_round(policy, data, config),
               OURS_PACKED: lambda: _ours_dpo_round(policy, data, packed)}
    precompute[OURS_SHARED] = precompute[OURS_PACKED] = precompute.pop("llm.trainers.dpo")
    trainers = {}
    tmp = tempfile.TemporaryDirectory()
    for name, padding_free in ((TRL, False), ("trl DPOTrainer, padding_free=True", True)):
        start = time.perf_counter()
        trainer = trl_dpo_trainer(policy if mode == "lora" else lm, prompts, chosen, rejected, ref_lm=ref_lm,
                                  beta=beta, batch_size=batch_size, max_steps=steps_per_round, lr=lr,
                                  output_dir=tmp.name, precompute_ref_log_probs=True, padding_free=padding_free)
        precompute[name] = time.perf_counter() - start  # includes tokenising the data set
        trainers[name] = trainer
        runners[name] = _trl_runner(trainer)
    times = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            times[name] += run()
    tmp.cleanup()
    # the same batches: response tokens (EOS included) as each side tokenised them
    ours_tokens = sum(len(c) + len(r) for c, r in zip(data.chosen_ids, data.rejected_ids))
    ds = trainers[TRL].train_dataset
    trl_tokens = sum(len(c) + len(r) for c, r in zip(ds["chosen_ids"], ds["rejected_ids"]))
    rows = [{"implementation": name, "median_step_s": statistics.median(t), "min_step_s": min(t), "samples": len(t),
             "setup_s": precompute[name]} for name, t in times.items()]
    frame = pd.DataFrame(rows)
    trl_step = float(frame.loc[frame["implementation"] == TRL, "median_step_s"].iloc[0])
    frame["ratio_to_trl"] = frame["median_step_s"] / trl_step
    notes = {"padding_free_honoured": bool(trainers["trl DPOTrainer, padding_free=True"].padding_free),
             "response_tokens": (ours_tokens, trl_tokens), "pairs": n, "trl_version": version("trl"),
             "input_tokens": dpo_input_tokens(data.prompt_ids, data.chosen_ids, data.rejected_ids)}
    return frame, notes


def generation_throughput(lm, prompts, *, max_new_tokens: int = 32, repeats: int = 3) -> pd.DataFrame:
    """Generated tokens per second (EOS included, nothing after it): ours vs Hugging Face ``generate``
    (sampling at temperature 1, top-k 50, top-p 0.95, KV cache, the same prompts), interleaved."""
    import torch

    from llm.generation import SamplingConfig, generate

    config = SamplingConfig(max_new_tokens=max_new_tokens, top_k=50, top_p=0.95)
    tok = lm.tokenizer
    enc = tok(list(prompts), return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    enc = {k: v.to(lm.device) for k, v in enc.items()}
    ours, theirs = [], []
    lm.model.eval()
    for r in range(repeats):
        start = time.perf_counter()
        samples = generate(lm, prompts, config, torch.Generator().manual_seed(r))
        ours.append(float(samples.lengths.sum()) / (time.perf_counter() - start))
        torch.manual_seed(r)
        start = time.perf_counter()
        with torch.no_grad():
            out = lm.model.generate(**enc, do_sample=True, temperature=1.0, top_k=50, top_p=0.95,
                                    max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id,
                                    eos_token_id=tok.eos_token_id)
        elapsed = time.perf_counter() - start
        new = out[:, enc["input_ids"].shape[1]:]
        is_eos = (new == tok.eos_token_id).int()
        upto_eos = (is_eos.cumsum(-1) - is_eos) == 0  # tokens up to and including the first EOS of each row
        theirs.append(float(upto_eos.sum()) / elapsed)
    frame = pd.DataFrame([
        {"implementation": "llm.generation.generate", "median_tokens_per_s": statistics.median(ours)},
        {"implementation": "transformers generate(do_sample=True)", "median_tokens_per_s": statistics.median(theirs)}])
    frame["ratio_to_hf"] = frame["median_tokens_per_s"] / frame["median_tokens_per_s"].iloc[1]
    return frame


def ppo_iteration_split(lm, reward_fn, prompts, *, mode: str = "full", samples_per_prompt: int = 4,
                        max_new_tokens: int = 24, repeats: int = 3, lr: float = 1e-5,
                        seed: int = 0) -> tuple[pd.DataFrame, float]:
    """Median seconds of each phase of one PPO iteration (PGConfig defaults: LOO advantages, KL in the
    reward, sequence loss, clip 0.2; one epoch, one minibatch), timed phase by phase over ``repeats``
    iterations; then one end-to-end ``policy_gradient`` iteration with the same settings.

    Every rollout (the ``repeats`` and the end-to-end one) samples with its own seed, so a reward
    that memoises its features (``llm.features.Embedder`` does) never scores the same texts twice.

    Returns (table of phases, end-to-end seconds)."""
    import torch

    from llm.generation import SamplingConfig, generate, sequence_logprobs
    from llm.trainers import ADVANTAGES, PGConfig, pg_loss, policy_gradient

    sampling = SamplingConfig(max_new_tokens=max_new_tokens, top_k=50, top_p=0.95)
    config = PGConfig(steps=1, prompts_per_step=len(prompts), samples_per_prompt=samples_per_prompt, epochs=1,
                      minibatches=1, sampling=sampling, lr=lr, seed=seed + repeats)
    policy, ref = _policy(lm, mode), lm
    model = policy.model
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    batch_prompts = [p for p in prompts for _ in range(samples_per_prompt)]
    phases = {"generation (llm.generation.generate)": [], "scoring (MiniLM embedding + linear head)": [],
              "old-policy log-probs (no grad)": [], "reference log-probs (no grad)": [],
              "update step (forward, pg_loss, backward, clip, AdamW)": []}
    names = list(phases)
    tokens = []
    for r in range(repeats):
        stamps = [time.perf_counter()]
        samples = generate(policy, batch_prompts, sampling, torch.Generator().manual_seed(seed + r))
        batch = samples.batch
        stamps.append(time.perf_counter())
        scores = np.asarray(reward_fn(batch_prompts, samples.responses, samples), dtype=np.float64)
        stamps.append(time.perf_counter())
        with torch.no_grad():
            _, old_tok = sequence_logprobs(model, batch, per_token=True)
            stamps.append(time.perf_counter())
            _, ref_tok = sequence_logprobs(ref.model, batch, per_token=True)
            stamps.append(time.perf_counter())
        adv, _ = ADVANTAGES[config.advantage](scores, old_tok, ref_tok, batch.response_mask, None, config.eta, config)
        model.train()
        _, tok_logp = sequence_logprobs(model, batch, per_token=True)
        loss = pg_loss(tok_logp, old_tok, ref_tok, adv, batch.response_mask, clip=config.clip, eta=config.eta,
                       kl_kind=None, loss_type=config.loss_type, max_length=max_new_tokens)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], config.max_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        model.eval()
        stamps.append(time.perf_counter())
        for name, dt in zip(names, np.diff(stamps)):
            phases[name].append(float(dt))
        tokens.append(int(batch.response_mask.sum()))
    frame = pd.DataFrame([{"phase": name, "median_s": statistics.median(t)} for name, t in phases.items()])
    frame["share"] = frame["median_s"] / frame["median_s"].sum()
    frame.attrs["response_tokens"] = statistics.median(tokens)
    start = time.perf_counter()
    policy_gradient(_policy(lm, mode), ref, list(prompts), reward_fn, config, progress=False)
    return frame, time.perf_counter() - start


def _markdown(frame: pd.DataFrame) -> str:
    """A markdown table (pandas' to_markdown needs the optional tabulate package)."""
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _load(name: str):
    if name == "tiny":
        from llm.tiny import TinyLMConfig, default_model

        return default_model(TinyLMConfig.tiny(), cache=False, progress=False), "the test-size tiny Llama (llm.tiny)"
    from llm.models import load_model

    return load_model("smollm2-135m-instruct"), "SmolLM2-135M-Instruct (offline, float32)"


def main(argv=None):
    import torch

    from llm.adapters import trainable_parameter_count

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("smollm2", "tiny"), default="smollm2")
    parser.add_argument("--modes", default="full,lora", help="comma-separated llm.adapters modes for DPO and PPO")
    parser.add_argument("--batch-size", type=int, default=8, help="DPO pairs per step")
    parser.add_argument("--steps-per-round", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gen-prompts", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="generation and PPO repeats")
    parser.add_argument("--ppo-prompts", type=int, default=4)
    parser.add_argument("--ppo-samples", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="write the markdown result here")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    before = machine_info(args.threads)
    wall = time.perf_counter()
    lm, described = _load(args.model)
    lm.model.eval()
    n_params = sum(p.numel() for p in lm.model.parameters())
    print(f"model: {described}, {n_params:,} parameters, device {lm.device}", flush=True)

    sections = []
    verdicts = []
    for mode in modes:
        frame, notes = dpo_step_times(lm, mode=mode, batch_size=args.batch_size,
                                      steps_per_round=args.steps_per_round, rounds=args.rounds)
        print(f"DPO ({mode}):\n{frame}", flush=True)
        by_name = frame.set_index("implementation")["ratio_to_trl"]
        ratio, packed_ratio = float(by_name[OURS_SHARED]), float(by_name[OURS_PACKED])
        pf = float(by_name["trl DPOTrainer, padding_free=True"])
        best = ratio / min(1.0, pf)  # against the faster of the two trl rows
        tokens = notes["input_tokens"]
        pf_note = ("trl honoured it" if notes["padding_free_honoured"] else
                   f"trl {notes['trl_version']} switched it off at construction (warning: temporarily unavailable "
                   "after a refactor; it falls back to padding), so the two trl rows run the same code and differ "
                   "by noise only")
        trainable = trainable_parameter_count(_policy(lm, mode).model)
        ours_tok, trl_tok = notes["response_tokens"]
        verdicts.append(f"{mode}: ours {ratio:.2f}× trl ({'met' if ratio <= 0.7 else 'NOT met'}; {best:.2f}× the "
                        f"faster trl row; the packed forward with the prompt twice {packed_ratio:.2f}×)")
        sections += [f"### DPO step, {mode} weights ({trainable:,} trainable)", "", _markdown(frame), "",
                     (f"**Our DPO step takes {ratio:.2f}× trl's time** (goal ≤ 0.7×: "
                     f"{'met' if ratio <= 0.7 else 'NOT met'}) with the shared prompt, {packed_ratio:.2f}× with the "
                     f"packed forward that sends each prompt twice ({ratio / packed_ratio:.2f}× the packed step). "
                     f"Tokens through the transformer body per epoch: {tokens['shared']} shared against "
                     f"{tokens['packed']} packed ({tokens['shared'] / tokens['packed']:.2f}×; prompts are "
                     f"{2 * tokens['prompt'] / tokens['packed']:.0%} of the packed tokens). "
                     f"trl with `padding_free=True`: {pf:.2f}× trl's default "
                     f"time — {pf_note}; of the two, {'padding_free=True' if pf < 1 else 'the default'} measured "
                     f"faster here (ours is {best:.2f}× the faster one). "
                     f"Same batches: {notes['pairs']} pairs, {ours_tok} response tokens as we tokenise them, "
                     f"{trl_tok} as trl does (it tokenises prompt + response jointly). `setup_s`: reference "
                      "log-probs (ours) / trainer construction with tokenising and reference precompute (trl)."), ""]

    gen_prompts = _pairs(lm.tokenizer, args.gen_prompts, seed=1)[0]
    gen = generation_throughput(lm, gen_prompts, max_new_tokens=args.max_new_tokens, repeats=args.repeats)
    print(f"generation:\n{gen}", flush=True)

    from llm.features import Embedder, LinearGold

    ppo_prompts = _pairs(lm.tokenizer, args.ppo_prompts, seed=2)[0]
    ppo_sections = []
    for i, mode in enumerate(modes):
        embedder = Embedder()  # a fresh feature memo per mode (and a seed per rollout, below)
        theta = np.random.default_rng(0).standard_normal(embedder.dim)  # .dim loads MiniLM before any timing
        reward = LinearGold(theta / np.linalg.norm(theta), embedder)
        split, end_to_end = ppo_iteration_split(lm, reward, ppo_prompts, mode=mode, samples_per_prompt=args.ppo_samples,
                                                max_new_tokens=args.max_new_tokens, repeats=args.repeats,
                                                seed=1000 * (i + 1))
        print(f"PPO ({mode}):\n{split}\nend to end {end_to_end:.2f} s", flush=True)
        total = float(split["median_s"].sum())
        ppo_sections += [f"### One PPO iteration, {mode} weights", "", _markdown(split), "",
                         (f"Sum of the phases {total:.3g} s; one end-to-end `policy_gradient` iteration with the same "
                         f"settings (1 run) {end_to_end:.3g} s ({end_to_end / total:.2f}× the sum). "
                         f"{args.ppo_prompts} prompts × {args.ppo_samples} samples, ≤ {args.max_new_tokens} new tokens "
                          f"(median {split.attrs['response_tokens']} response tokens per rollout)."), ""]

    after = machine_info(args.threads)
    info = "\n".join(f"- {k}: {v}" for k, v in before.items() if not k.startswith("load")) + \
        f"\n- load average (1, 5, 15 min): {before['load average (1, 5, 15 min)']} at the start, " \
        f"{after['load average (1, 5, 15 min)']} at the end\n- wall time of the run: {time.perf_counter() - wall:.0f} s"
    text = "\n".join([
        "# llm speed (ratios against references in the same run)", "",
        (f"Model: {described}, {n_params:,} parameters, CPU, float32, {args.threads} torch thread(s). "
        "**The machine was shared with other jobs during this run** (see the load averages), so absolute "
        "seconds are inflated and noisy; the implementations were timed in interleaved rounds and only "
         "the ratios measured in this one run are meaningful."), "",
        "Generated by `python -m benchmarks.speed_llm " + " ".join(argv) + "`.", "",
        "## Machine", "", info, "",
        (f"## DPO training step (batch {args.batch_size} pairs; median over {args.rounds} interleaved rounds × "
        f"{args.steps_per_round - 1} steady steps; trl with precomputed reference log-probs and activation "
         "checkpointing off, as ours)"), "", *sections,
        "Summary: " + "; ".join(verdicts) + ".", "",
        ("Where the difference comes from: ours runs each prompt once per pair — `[x | y_w | y_l]` as one segment "
         "with a block attention mask (the rejected response sees the prompt, never the chosen one) and positions "
         "restarting at the prompt's end for the rejected response — and packs the segments of a batch into rows "
         "padded only at their tails, so the transformer body runs on little padding and never on a prompt twice "
         "(the packed row: one sequence per response, packed likewise, so each prompt is sent twice); "
         "trl pads chosen and rejected to the longest sequence of the batch (its fused LM head, like ours, "
         "projects only the positions that predict response tokens, but also computes entropy, mean logits and "
         "top-1 hits there for its per-step metrics) and goes through the Trainer's per-step machinery. Both "
         "compute the same loss and gradients (tests/test_llm_parity.py)."), "",
        (f"## Generation throughput ({args.gen_prompts} prompts, ≤ {args.max_new_tokens} new tokens, top-k 50, "
         f"top-p 0.95, median of {args.repeats} interleaved repeats)"), "", _markdown(gen), "",
        f"## PPO iteration split (median of {args.repeats} iterations)", "", *ppo_sections])
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return text


if __name__ == "__main__":
    main()
