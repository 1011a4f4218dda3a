"""Supervised fine-tuning: token-mean NLL of responses given prompts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llm.logprobs import make_batch, sequence_logprobs
from llm.trainers._common import check_minibatch_fields, encode_examples, minibatch_steps, progress_bar, start_training

__all__ = ["SFTConfig", "sft"]


@dataclass(frozen=True)
class SFTConfig:
    """Supervised fine-tuning: token-mean NLL of responses given prompts."""

    steps: int = 100
    batch_size: int = 16
    lr: float = 1e-3
    warmup: int = 5
    max_grad_norm: float = 1.0
    seed: int = 0

    def __post_init__(self):
        check_minibatch_fields(self)


def sft(lm, prompts: Sequence[str], responses: Sequence[str], config: SFTConfig, *, progress: bool = True,
        desc: str = "sft", checkpoint_dir=None) -> list[float]:
    """Minimise −(1/|y|) Σ_t log π(y_t | x, y_<t) over minibatches of (prompt, response) pairs.

    Returns the loss per step.
    """
    if len(prompts) != len(responses) or not len(prompts):
        raise ValueError(f"responses: need one response per prompt and at least one pair, got {len(prompts)} prompts "
                         f"and {len(responses)} responses")
    tok = lm.tokenizer
    p_ids, r_ids = encode_examples(lm, prompts, [responses], ["prompts"])
    model = lm.model
    opt, sched, guard = start_training(model, config, checkpoint_dir)
    losses = []
    with progress_bar(config.steps, desc, progress) as bar:
        for step, idx in minibatch_steps(config, len(p_ids)):
            batch = make_batch([p_ids[i] for i in idx], [r_ids[i] for i in idx], tok.pad_token_id, lm.device)
            _, per = sequence_logprobs(model, batch, per_token=True)
            loss = -per.sum() / batch.response_mask.sum()
            guard.step(loss, opt, step, config.max_grad_norm, sched)
            losses.append(loss.item())
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            bar.update()
    model.eval()
    return losses


