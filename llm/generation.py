"""Sampling responses from a causal LM, and the rules around them (EOS, length cap, KL from samples).

:func:`generate` samples one response per prompt with a KV cache into a :class:`llm.logprobs.Batch`
(prompts left-padded, responses right-padded). The batch layout and the masked sequence log-prob
live in :mod:`llm.logprobs`, the padding-free training forwards in :mod:`llm.packing`; their names
are re-exported here, their long-standing import path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llm.logprobs import (
    Batch,
    forward_logits,
    forward_logits_and_hidden,
    make_batch,
    position_ids,
    sequence_logprobs,
    token_logprobs,
)
from llm.packing import (
    packed_sequence_logprobs,
    packing_supported,
    shared_prompt_sequence_logprobs,
    shared_prompt_supported,
)
from rlbandit._checks import check_int, check_positive_float

__all__ = [
    "Batch",
    "Samples",
    "SamplingConfig",
    "check_tokenizer",
    "encode",
    "encode_prompts",
    "filter_logits",
    "forward_logits",
    "forward_logits_and_hidden",
    "generate",
    "kl_from_samples",
    "make_batch",
    "missing_eos_penalty",
    "packed_sequence_logprobs",
    "packing_supported",
    "sequence_logprobs",
    "shared_prompt_sequence_logprobs",
    "shared_prompt_supported",
    "token_logprobs",
]


@dataclass(frozen=True)
class SamplingConfig:
    """How responses are sampled: temperature, top-k (0 = off), top-p (1 = off), length cap."""

    max_new_tokens: int = 40
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self):
        check_int(self.max_new_tokens, "max_new_tokens")
        check_positive_float(self.temperature, "temperature")
        check_int(self.top_k, "top_k", minimum=0)  # 0 = no top-k filter
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p: must be in (0, 1], got {self.top_p}")


@dataclass(frozen=True, eq=False)
class Samples:
    """Sampled responses: the token batch plus decoded texts and which responses ended with EOS."""

    prompts: list
    responses: list  # decoded response texts (without EOS)
    batch: Batch
    finished: np.ndarray  # bool (B,): True when the response ended with EOS within max_new_tokens

    @property
    def lengths(self) -> np.ndarray:
        return self.batch.response_mask.sum(-1).cpu().numpy()


def check_tokenizer(tokenizer) -> None:
    """A tokenizer usable for generation and training must have an EOS and a pad token."""
    if getattr(tokenizer, "eos_token_id", None) is None:
        raise ValueError("tokenizer: has no EOS token (eos_token_id is None); responses could never stop")
    if getattr(tokenizer, "pad_token_id", None) is None:
        raise ValueError("tokenizer: has no pad token (pad_token_id is None); set tokenizer.pad_token "
                         "(e.g. tokenizer.pad_token = tokenizer.eos_token) before batching")


def encode(tokenizer, texts, *, name: str = "texts") -> list[list[int]]:
    """Token ids of each text (no special tokens added)."""
    if isinstance(texts, str):
        raise ValueError(f"{name}: expected a list of strings, got one string")
    return [list(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def _check_context(prompt_ids, room: int, max_length: int, name: str = "prompts") -> None:
    longest = max((len(p) for p in prompt_ids), default=0)
    if longest + room > max_length:
        raise ValueError(f"{name}: the longest prompt has {longest} tokens; with {room} response tokens it exceeds "
                         f"the model's context window of {max_length} tokens")


def filter_logits(logits, top_k: int = 0, top_p: float = 1.0):
    """Set to −inf every logit outside the top-k and outside the smallest top-p nucleus.

    Shape (B, V) → (B, V); the most likely token always survives.
    """
    import torch

    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # drop a token when the mass strictly before it already reaches top_p
        drop_sorted = (probs.cumsum(-1) - probs) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def generate(lm, prompts, config: SamplingConfig, generator, *, batch_size: int = 256) -> Samples:
    """Sample one response per prompt with a KV cache, stopping each at EOS.

    Responses that reach ``max_new_tokens`` without EOS are kept and marked ``finished=False``
    (see :func:`missing_eos_penalty` for the reward rule). Deterministic for a fixed ``generator``
    (a ``torch.Generator``; on the model's device for speed, or on the CPU).
    """
    import torch

    tokenizer, model = lm.tokenizer, lm.model
    check_tokenizer(tokenizer)
    prompts = list(prompts)
    prompt_ids = encode_prompts(tokenizer, prompts)
    _check_context(prompt_ids, config.max_new_tokens, lm.max_length)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    device = lm.device
    responses: list[list[int]] = []
    finished = []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            chunk = prompt_ids[start:start + batch_size]
            tokens, done = _sample_chunk(model, chunk, config, generator, eos, pad, device)
            responses.extend(tokens)
            finished.extend(done)
    model.train(was_training)
    batch = make_batch(prompt_ids, responses, pad, device)
    texts = tokenizer.batch_decode([[t for t in r if t != eos] for r in responses], skip_special_tokens=True)
    return Samples(prompts, texts, batch, np.asarray(finished, dtype=bool))


def encode_prompts(tokenizer, prompts):
    """Prompt token ids; an empty prompt becomes [BOS] (a response needs a token to condition on)."""
    ids = encode(tokenizer, prompts, name="prompts")
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    return [p if p else [start] for p in ids]


def _cache_name() -> str:
    """The KV cache's name in model inputs and outputs: ``cache`` from transformers 5.2x on (which
    deprecates ``past_key_values`` and removes it in 5.40), ``past_key_values`` before."""
    global _CACHE_NAME
    if _CACHE_NAME is None:
        from transformers.modeling_outputs import CausalLMOutputWithPast

        _CACHE_NAME = "cache" if "cache" in getattr(CausalLMOutputWithPast, "__dataclass_fields__", {}) \
            else "past_key_values"
    return _CACHE_NAME


_CACHE_NAME: str | None = None


def _sample_chunk(model, prompt_ids, config, generator, eos, pad, device):
    import torch

    empty = [[pad]] * len(prompt_ids)  # placeholder response to build the prompt block
    batch = make_batch(prompt_ids, empty, pad, device)
    p = batch.prompt_length
    attn = batch.attention_mask[:, :p]
    positions = position_ids(attn)
    out = model(input_ids=batch.input_ids[:, :p], attention_mask=attn, position_ids=positions, use_cache=True)
    n = len(prompt_ids)
    alive = torch.ones(n, dtype=torch.bool, device=device)
    tokens = torch.full((n, config.max_new_tokens), pad, dtype=torch.long, device=device)
    position = positions[:, -1]
    length = 0
    for t in range(config.max_new_tokens):
        logits = out.logits[:, -1].float() / config.temperature
        logits = filter_logits(logits, config.top_k, config.top_p)
        probs = torch.softmax(logits, -1)
        if generator.device != probs.device:  # a CPU generator drives sampling for a model on another device
            nxt = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(device)
        else:
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        nxt = torch.where(alive, nxt, torch.full_like(nxt, pad))
        tokens[:, t] = nxt
        length = t + 1
        alive = alive & (nxt != eos)
        if not alive.any() or t + 1 == config.max_new_tokens:
            break
        attn = torch.cat([attn, torch.ones(n, 1, dtype=attn.dtype, device=device)], dim=-1)
        position = position + 1
        out = model(input_ids=nxt[:, None], attention_mask=attn, position_ids=position[:, None],
                    **{_cache_name(): getattr(out, _cache_name())}, use_cache=True)
    tokens = tokens[:, :length].cpu().numpy()
    responses, done = [], []
    for row in tokens:
        hit = np.flatnonzero(row == eos)
        if hit.size:
            responses.append(row[:hit[0] + 1].tolist())
            done.append(True)
        else:
            responses.append(row.tolist())
            done.append(False)
    return responses, done


def missing_eos_penalty(rewards, finished, penalty: float) -> np.ndarray:
    """The reward rule for unfinished responses: r − penalty where the response hit the length cap
    without EOS (trl's ``missing_eos_penalty`` convention), r elsewhere. Shape (n,)."""
    rewards = np.asarray(rewards, dtype=np.float64)
    finished = np.asarray(finished, dtype=bool)
    if rewards.shape != finished.shape:
        raise ValueError(f"finished: shape {finished.shape} differs from rewards {rewards.shape}")
    if not np.isfinite(penalty) or penalty < 0:
        raise ValueError(f"penalty: must be finite and >= 0, got {penalty}")
    return np.where(finished, rewards, rewards - penalty)


def kl_from_samples(policy_logprobs, ref_logprobs, kind: str = "k3"):
    """KL(π ‖ π0) estimated from responses y ~ π: the mean of ``rlbandit.losses.kl_estimate`` over
    samples, with log π(y|x), log π0(y|x) the sequence log-probs (shape (n,)). Returns (mean, stderr)."""
    import torch

    from rlbandit.losses import kl_estimate

    est = kl_estimate(torch.as_tensor(policy_logprobs, dtype=torch.float64),
                      torch.as_tensor(ref_logprobs, dtype=torch.float64), kind)
    est = torch.as_tensor(est, dtype=torch.float64).reshape(-1)
    n = est.numel()
    stderr = float(est.std(unbiased=True) / np.sqrt(n)) if n > 1 else float("nan")
    return float(est.mean()), stderr
