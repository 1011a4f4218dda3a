"""The token-batch layout and masked sequence log-probabilities (the pure pieces every trainer shares).

Batch layout used everywhere: prompts are **left**-padded to a common length P, responses are
**right**-padded to a common length R, and the two blocks are concatenated:

    input_ids      (B, P + R)   [pad … pad prompt | response … eos pad … pad]
    attention_mask (B, P + R)   1 on real tokens
    response_mask  (B, R)       1 on response tokens (EOS included), 0 on padding

so the response token at column t is predicted by the logits at column P + t − 1, and positions
are ``cumsum(attention_mask) − 1`` (left padding does not shift them).

    log π(y|x) = Σ_t m_t log softmax(logits_{P+t−1})[y_t]          (masked sequence log-prob)

Sampling lives in :mod:`llm.generation`, the padding-free packed forwards in :mod:`llm.packing`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Batch",
    "forward_logits",
    "forward_logits_and_hidden",
    "make_batch",
    "picked_logprobs",
    "position_ids",
    "sequence_logprobs",
    "token_logprobs",
]


@dataclass(frozen=True, eq=False)
class Batch:
    """Prompt+response token batch in the layout of the module docstring."""

    input_ids: object  # torch.LongTensor (B, P + R)
    attention_mask: object  # (B, P + R)
    response_mask: object  # (B, R)
    prompt_length: int  # P

    @property
    def responses(self):
        return self.input_ids[:, self.prompt_length:]

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


def make_batch(prompt_ids, response_ids, pad_token_id: int, device=None) -> Batch:
    """Left-pad the prompts, right-pad the responses, concatenate (see module docstring).

    Args:
        prompt_ids: list of B token-id lists (may be empty).
        response_ids: list of B token-id lists (each non-empty).
    """
    import torch

    if len(prompt_ids) != len(response_ids):
        raise ValueError(f"response_ids: {len(response_ids)} responses for {len(prompt_ids)} prompts")
    if any(len(r) == 0 for r in response_ids):
        raise ValueError("response_ids: every response needs at least one token")
    n = len(prompt_ids)
    p_len = max((len(p) for p in prompt_ids), default=0)
    r_len = max(len(r) for r in response_ids)
    ids = np.full((n, p_len + r_len), pad_token_id, dtype=np.int64)
    attn = np.zeros((n, p_len + r_len), dtype=np.int64)
    for i, (p, r) in enumerate(zip(prompt_ids, response_ids)):
        ids[i, p_len - len(p):p_len] = p
        ids[i, p_len:p_len + len(r)] = r
        attn[i, p_len - len(p):p_len + len(r)] = 1
    ids, attn = torch.from_numpy(ids), torch.from_numpy(attn)
    if device is not None:
        ids, attn = ids.to(device), attn.to(device)
    return Batch(ids, attn, attn[:, p_len:].clone(), p_len)


def position_ids(attention_mask):
    """Positions of a left-padded batch: ``cumsum(attention_mask) − 1``, 0 on the left padding."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


def _forward_responses(model, batch: Batch, **kwargs):
    """The model's output on every column but the last (each predicts the next token)."""
    if batch.prompt_length == 0:
        raise ValueError("batch: prompts must have at least one token (prepend BOS to empty prompts)")
    return model(input_ids=batch.input_ids[:, :-1], attention_mask=batch.attention_mask[:, :-1],
                 position_ids=position_ids(batch.attention_mask)[:, :-1], use_cache=False, **kwargs)


def forward_logits(model, batch: Batch):
    """Logits that predict the response tokens, shape (B, R, V): columns P−1 … P+R−2."""
    return _forward_responses(model, batch).logits[:, batch.prompt_length - 1:]


def forward_logits_and_hidden(model, batch: Batch):
    """As :func:`forward_logits`, plus the last hidden state at the same columns.

    Returns (logits (B, R, V), hidden (B, R, H)): column t holds the state s_t = (x, y_<t) that
    predicts y_t — where a value head reads V(s_t) (trl's ``AutoModelForCausalLMWithValueHead``).
    """
    p = batch.prompt_length
    out = _forward_responses(model, batch, output_hidden_states=True)
    return out.logits[:, p - 1:], out.hidden_states[-1][:, p - 1:]


def picked_logprobs(logits, tokens):
    """log softmax(logits)[y]: the log-prob of each token id under its logits, shape ``tokens.shape``.

    Args: logits (..., V), computed in float32 when they are in a lower precision; tokens (...) ids.
    """
    import torch

    logits = logits.float()
    return torch.gather(logits, -1, tokens.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def token_logprobs(logits, tokens, mask):
    """m_t · log softmax(logits_t)[y_t], shape (B, R): per-token log-probs, 0 where masked.

    Args:
        logits: (B, R, V), any float dtype (computed in float32).
        tokens: (B, R) token ids; mask: (B, R) in {0, 1}.
    """
    import torch

    if logits.shape[:2] != tokens.shape or tokens.shape != mask.shape:
        raise ValueError(f"logits/tokens/mask: shapes {tuple(logits.shape)}, {tuple(tokens.shape)}, "
                         f"{tuple(mask.shape)} do not match as (B, R, V), (B, R), (B, R)")
    logp = picked_logprobs(logits, tokens)
    return torch.where(mask.bool(), logp, torch.zeros_like(logp))


def sequence_logprobs(model, batch: Batch, *, per_token: bool = False):
    """log π(y|x) = Σ_t m_t log π(y_t | x, y_<t), shape (B,) (and (B, R) per token if asked)."""
    logits = forward_logits(model, batch)
    per = token_logprobs(logits, batch.responses, batch.response_mask)
    return (per.sum(-1), per) if per_token else per.sum(-1)
