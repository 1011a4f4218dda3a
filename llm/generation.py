"""Pure pieces on token tensors: batching, sampling, masked sequence log-probabilities, KL.

Batch layout used everywhere: prompts are **left**-padded to a common length P, responses are
**right**-padded to a common length R, and the two blocks are concatenated:

    input_ids      (B, P + R)   [pad … pad prompt | response … eos pad … pad]
    attention_mask (B, P + R)   1 on real tokens
    response_mask  (B, R)       1 on response tokens (EOS included), 0 on padding

so the response token at column t is predicted by the logits at column P + t − 1, and positions
are ``cumsum(attention_mask) − 1`` (left padding does not shift them).

    log π(y|x) = Σ_t m_t log softmax(logits_{P+t−1})[y_t]          (masked sequence log-prob)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlbandit._checks import check_int, check_positive_float

__all__ = [
    "Batch",
    "Samples",
    "SamplingConfig",
    "check_tokenizer",
    "encode",
    "filter_logits",
    "forward_logits",
    "forward_logits_and_hidden",
    "generate",
    "kl_from_samples",
    "make_batch",
    "missing_eos_penalty",
    "sequence_logprobs",
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


def _positions(attention_mask):
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


def forward_logits(model, batch: Batch):
    """Logits that predict the response tokens, shape (B, R, V): columns P−1 … P+R−2."""
    p = batch.prompt_length
    if p == 0:
        raise ValueError("batch: prompts must have at least one token (prepend BOS to empty prompts)")
    out = model(input_ids=batch.input_ids[:, :-1], attention_mask=batch.attention_mask[:, :-1],
                position_ids=_positions(batch.attention_mask)[:, :-1], use_cache=False)
    return out.logits[:, p - 1:]


def forward_logits_and_hidden(model, batch: Batch):
    """As :func:`forward_logits`, plus the last hidden state at the same columns.

    Returns (logits (B, R, V), hidden (B, R, H)): column t holds the state s_t = (x, y_<t) that
    predicts y_t — where a value head reads V(s_t) (trl's ``AutoModelForCausalLMWithValueHead``).
    """
    p = batch.prompt_length
    if p == 0:
        raise ValueError("batch: prompts must have at least one token (prepend BOS to empty prompts)")
    out = model(input_ids=batch.input_ids[:, :-1], attention_mask=batch.attention_mask[:, :-1],
                position_ids=_positions(batch.attention_mask)[:, :-1], use_cache=False, output_hidden_states=True)
    return out.logits[:, p - 1:], out.hidden_states[-1][:, p - 1:]


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
    logits = logits.float()
    picked = torch.gather(logits, -1, tokens.unsqueeze(-1)).squeeze(-1)
    logp = picked - torch.logsumexp(logits, dim=-1)
    return torch.where(mask.bool(), logp, torch.zeros_like(logp))


def sequence_logprobs(model, batch: Batch, *, per_token: bool = False):
    """log π(y|x) = Σ_t m_t log π(y_t | x, y_<t), shape (B,) (and (B, R) per token if asked)."""
    logits = forward_logits(model, batch)
    per = token_logprobs(logits, batch.responses, batch.response_mask)
    return (per.sum(-1), per) if per_token else per.sum(-1)


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
    prompt_ids = _prompt_ids(tokenizer, prompts)
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


def _prompt_ids(tokenizer, prompts):
    """Prompt token ids; an empty prompt becomes [BOS] (a response needs a token to condition on)."""
    ids = encode(tokenizer, prompts, name="prompts")
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    return [p if p else [start] for p in ids]


def _sample_chunk(model, prompt_ids, config, generator, eos, pad, device):
    import torch

    empty = [[pad]] * len(prompt_ids)  # placeholder response to build the prompt block
    batch = make_batch(prompt_ids, empty, pad, device)
    p = batch.prompt_length
    attn = batch.attention_mask[:, :p]
    positions = _positions(attn)
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
                    past_key_values=out.past_key_values, use_cache=True)
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


# ----------------------------------------------------------------------------------------------
# Packed (padding-free) sequence log-probs for training


def _pack(lengths, capacity):
    """First-fit-decreasing bins of total length ≤ capacity → list of (row, offset) per item."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    free: list[int] = []
    place = [None] * len(lengths)
    for i in order:
        n = lengths[i]
        for row, room in enumerate(free):
            if room >= n:
                place[i] = (row, capacity - room)
                free[row] -= n
                break
        else:
            free.append(capacity - n)
            place[i] = (len(free) - 1, 0)
    return place, len(free)


def packed_sequence_logprobs(model, prompt_ids, response_ids, pad_token_id: int, device=None):
    """log π(y|x) for each (prompt, response) with no padding waste: sequences are packed into rows
    (first-fit, capacity 2 × the longest), positions restart at 0 for each sequence (so attention is
    block-diagonal — transformers' packed-sequence masks), and the LM head runs only on the
    positions that predict response tokens. Returns (B,) sums (float32).

    Equal to :func:`sequence_logprobs` on the padded batch (checked per model class by
    :func:`packing_supported`, and in the tests).
    """
    import torch

    seqs = [list(p) + list(r) for p, r in zip(prompt_ids, response_ids)]
    lengths = [len(s) for s in seqs]
    capacity = 2 * max(lengths)
    place, rows = _pack(lengths, capacity)
    ids = np.full((rows, capacity), pad_token_id, dtype=np.int64)
    pos = np.zeros((rows, capacity), dtype=np.int64)
    used = np.zeros(rows, dtype=np.int64)
    pred_rows, pred_cols, targets, owner = [], [], [], []
    for i, (seq, (row, off)) in enumerate(zip(seqs, place)):
        n, p = len(seq), len(prompt_ids[i])
        ids[row, off:off + n] = seq
        pos[row, off:off + n] = np.arange(n)
        used[row] = max(used[row], off + n)
        r = n - p
        pred_rows += [row] * r
        pred_cols += list(range(off + p - 1, off + n - 1))
        targets += seq[p:]
        owner += [i] * r
    for row in range(rows):  # the tail padding is its own segment (positions restart), never attended to
        pos[row, used[row]:] = np.arange(capacity - used[row])
    to = (lambda a: torch.from_numpy(a).to(device)) if device is not None else torch.from_numpy
    hidden = model.get_decoder()(input_ids=to(ids), position_ids=to(pos), attention_mask=None,
                                 use_cache=False).last_hidden_state
    picked = hidden[to(np.asarray(pred_rows)), to(np.asarray(pred_cols))]
    logits = model.get_output_embeddings()(picked).float()
    tgt = to(np.asarray(targets))
    logp = torch.gather(logits, -1, tgt[:, None]).squeeze(-1) - torch.logsumexp(logits, -1)
    out = torch.zeros(len(seqs), dtype=logp.dtype, device=logp.device)
    return out.index_add(0, to(np.asarray(owner)), logp)


_PACKING: dict = {}


def packing_supported(model, pad_token_id: int) -> bool:
    """Whether this model gives the same log-probs packed as padded.

    Checked once per (model class, wrapped class, attention implementation, vocabulary size) with token ids
    inside the model's vocabulary, so a tiny-vocabulary model (the single-token bridge) can
    neither fail the probe nor decide the answer for a different model of the same class.
    """
    import torch

    config = getattr(model, "config", None)
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    # a peft wrapper (PeftModelForCausalLM) answers for the architecture it wraps
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    key = (type(model).__name__, type(base).__name__, getattr(config, "_attn_implementation", None), vocab)
    if key not in _PACKING:
        usable = [i for i in range(vocab) if i != pad_token_id][:10]
        if len(usable) < 2:
            _PACKING[key] = False
            return False
        pick = lambda n, start: [usable[(start + j) % len(usable)] for j in range(n)]  # noqa: E731
        try:
            prompts, responses = [pick(3, 0), pick(1, 3)], [pick(2, 4), pick(4, 6)]
            with torch.no_grad():
                device = next(model.parameters()).device
                a = packed_sequence_logprobs(model, prompts, responses, pad_token_id, device)
                b = sequence_logprobs(model, make_batch(prompts, responses, pad_token_id, device))
            _PACKING[key] = bool(torch.allclose(a, b.float(), atol=1e-4, rtol=1e-4))
        except Exception:  # noqa: BLE001 - any failure means: use the padded path
            _PACKING[key] = False
    return _PACKING[key]
