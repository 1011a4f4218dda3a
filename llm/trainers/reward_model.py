"""A Bradley–Terry reward model with a scalar head on the LM (r_ψ(x, y) = wᵀ h_last + b)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from llm.logprobs import Batch, make_batch, position_ids
from llm.trainers._common import (
    Guard,
    check_minibatch_fields,
    encode_examples,
    encode_prompts,
    encode_responses,
    minibatch_steps,
    progress_bar,
)

__all__ = ["LMRewardModel", "RMConfig", "train_lm_reward_model"]


class LMRewardModel:
    """r_ψ(x, y) = wᵀ h_last(x, y) + b: a scalar head on the LM's last hidden state at the last token.

    Owns a deep copy of the LM (so training it leaves the policy alone).
    """

    def __init__(self, lm, seed: int = 0):
        import torch

        self.lm = lm.copy()
        hidden = self.lm.model.config.hidden_size
        gen = torch.Generator().manual_seed(seed)
        self.head = torch.nn.Linear(hidden, 1).to(self.lm.device)
        with torch.no_grad():
            self.head.weight.copy_(torch.randn(1, hidden, generator=gen) / math.sqrt(hidden))
            self.head.bias.zero_()

    def parameters(self):
        return list(self.lm.model.parameters()) + list(self.head.parameters())

    def scores(self, batch: Batch):
        """r_ψ for each row of a prompt+response batch, shape (B,)."""
        import torch

        out = self.lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                            position_ids=position_ids(batch.attention_mask),
                            output_hidden_states=True, use_cache=False)
        hidden = out.hidden_states[-1]
        last = batch.prompt_length + batch.response_mask.sum(-1) - 1
        picked = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        return self.head(picked.float()).squeeze(-1)

    def __call__(self, prompts, responses, samples=None) -> np.ndarray:
        import torch

        tok = self.lm.tokenizer
        batch = make_batch(encode_prompts(tok, prompts), encode_responses(tok, responses), tok.pad_token_id,
                           self.lm.device)
        with torch.no_grad():
            return self.scores(batch).double().cpu().numpy()


@dataclass(frozen=True)
class RMConfig:
    steps: int = 100
    batch_size: int = 16
    lr: float = 1e-3
    max_grad_norm: float = 1.0
    seed: int = 0

    def __post_init__(self):
        check_minibatch_fields(self)


def train_lm_reward_model(lm, prompts, chosen, rejected, config: RMConfig, *, progress: bool = True):
    """Bradley–Terry reward model with a head on the LM: minimise −log σ(r_ψ(x,y_w) − r_ψ(x,y_l)).

    Returns (LMRewardModel, history DataFrame with step, loss, accuracy).
    """
    import torch
    import torch.nn.functional as F

    if not (len(prompts) == len(chosen) == len(rejected)) or not len(prompts):
        raise ValueError("chosen: prompts, chosen and rejected must be non-empty and of one length")
    rm = LMRewardModel(lm, seed=config.seed)
    tok = lm.tokenizer
    p_ids, c_ids, r_ids = encode_examples(lm, prompts, [chosen, rejected], ["chosen", "rejected"])
    opt = torch.optim.AdamW(rm.parameters(), lr=config.lr)
    rm.lm.model.train()

    class _Both(torch.nn.Module):  # the guard clips/inspects all trainable parameters
        def __init__(self):
            super().__init__()
            self.body, self.head = rm.lm.model, rm.head

        def save_pretrained(self, path):
            self.body.save_pretrained(path)

    guard = Guard(_Both())
    rows = []
    with progress_bar(config.steps, "reward model", progress) as bar:
        for step, idx in minibatch_steps(config, len(p_ids)):
            batch = make_batch([p_ids[i] for i in idx] * 2, [c_ids[i] for i in idx] + [r_ids[i] for i in idx],
                               tok.pad_token_id, lm.device)
            s = rm.scores(batch)
            margin = s[:len(idx)] - s[len(idx):]
            loss = -F.logsigmoid(margin).mean()
            guard.step(loss, opt, step, config.max_grad_norm)
            rows.append({"step": step, "loss": loss.item(), "accuracy": float((margin > 0).float().mean())})
            bar.set_postfix(loss=f"{rows[-1]['loss']:.3f}")
            bar.update()
    rm.lm.model.eval()
    return rm, pd.DataFrame(rows)

