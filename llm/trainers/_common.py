"""What every LM trainer shares: the NaN guard (checks loss and gradients before each optimiser
step, keeps the last good checkpoint), the AdamW optimiser with warmup and linear decay, progress
bars, seeded torch generators, tokenisation of prompts/responses (EOS appended to responses, as
trl) and config checks."""

from __future__ import annotations

import numpy as np

from llm.generation import encode, encode_prompts
from rlbandit._checks import check_int, check_positive_float

__all__ = ["NonFiniteLossError", "Guard", "progress_bar", "check_fits", "check_minibatch_fields", "make_optimizer",
           "encode_examples", "encode_prompts", "encode_responses", "minibatch_steps", "start_training",
           "torch_generator"]


class NonFiniteLossError(ValueError):
    """A loss or gradient became NaN/inf; training stopped before the weights were updated."""


class Guard:
    """Checks loss and gradients before each optimiser step; keeps the last good checkpoint."""

    def __init__(self, model, checkpoint_dir=None, every: int = 50):
        self.model = model
        self.checkpoint_dir = checkpoint_dir
        self.every = every

    def step(self, loss, optimizer, step: int, max_grad_norm: float, scheduler=None):
        import torch

        if not torch.isfinite(loss.detach()):
            self._fail(f"loss is {loss.item()} at step {step}")
        loss.backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm if max_grad_norm > 0 else float("inf"))
        if not torch.isfinite(norm):
            self._fail(f"gradient norm is {norm.item()} at step {step}")
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if self.checkpoint_dir is not None and (step + 1) % self.every == 0:
            self.model.save_pretrained(self.checkpoint_dir)
        return float(norm)

    def _fail(self, what: str):
        for p in self.model.parameters():
            p.grad = None
        where = f"; the last good checkpoint is in {self.checkpoint_dir}" if self.checkpoint_dir else ""
        raise NonFiniteLossError(f"loss: {what}; training stopped before the update, the model keeps its last "
                                 f"good weights{where}")


def make_optimizer(model, lr: float, warmup: int, steps: int):
    import torch

    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, warmup)) * (0.1 + 0.9 * max(0.0, 1 - s / max(1, steps))))
    return opt, sched


def start_training(model, config, checkpoint_dir=None):
    """Put a minibatch trainer's model in train mode → (optimiser, schedule, guard): AdamW with warmup
    and linear decay over ``config.steps`` (:func:`make_optimizer`) and the NaN guard."""
    model.train()
    opt, sched = make_optimizer(model, config.lr, config.warmup, config.steps)
    return opt, sched, Guard(model, checkpoint_dir)


def minibatch_steps(config, n: int):
    """For each of ``config.steps`` steps, (step, indices of min(batch_size, n) of the n examples drawn
    without replacement), all from one stream seeded by ``config.seed``."""
    rng = np.random.default_rng(config.seed)
    for step in range(config.steps):
        yield step, rng.choice(n, size=min(config.batch_size, n), replace=False)


def progress_bar(total, desc, progress):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)


def torch_generator(seed: int, device):
    import torch

    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


def encode_responses(tokenizer, responses):
    """Token ids of each response with EOS appended (so the model learns to stop)."""
    eos = tokenizer.eos_token_id
    return [ids + [eos] for ids in encode(tokenizer, responses, name="responses")]


def check_fits(lm, prompt_ids, response_ids, name="prompts"):
    longest = max((len(p) + len(r) for p, r in zip(prompt_ids, response_ids)), default=0)
    if longest > lm.max_length:
        raise ValueError(f"{name}: a prompt+response has {longest} tokens, longer than the model's context window "
                         f"of {lm.max_length} tokens")


def encode_examples(lm, prompts, response_lists, names, *, are_ids: bool = False) -> list[list]:
    """[prompt ids, ids of each list of responses]: responses get EOS appended (:func:`encode_responses`),
    or are taken as token ids already with ``are_ids``; every prompt + response must fit the context
    window (:func:`check_fits`, the error naming the list by ``names``)."""
    p_ids = encode_prompts(lm.tokenizer, prompts)
    out = [p_ids]
    for responses, name in zip(response_lists, names, strict=True):
        ids = [list(r) for r in responses] if are_ids else encode_responses(lm.tokenizer, responses)
        check_fits(lm, p_ids, ids, name)
        out.append(ids)
    return out


def check_minibatch_fields(config) -> None:
    """The fields the minibatch trainers' configs (SFT, DPO, reward model) share: steps ≥ 0,
    batch_size ≥ 1, lr > 0, max_grad_norm ≥ 0 (0 or inf: no clipping), and warmup ≥ 0 where the
    config has a warmup."""
    check_int(config.steps, "steps", minimum=0)
    check_int(config.batch_size, "batch_size")
    check_positive_float(config.lr, "lr")
    check_positive_float(config.max_grad_norm, "max_grad_norm", allow_zero=True, finite=False)
    if hasattr(config, "warmup"):
        check_int(config.warmup, "warmup", minimum=0)


