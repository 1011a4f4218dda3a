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
    "encode_prompts",
    "filter_logits",
    "forward_logits",
    "forward_logits_and_hidden",
    "generate",
    "kl_from_samples",
    "make_batch",
    "missing_eos_penalty",
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


def _probe(cache: dict, model, pad_token_id: int, check) -> bool:
    """Whether ``check(model, pick, device)`` holds for this kind of model, decided once per (model
    class, wrapped class, attention implementation, vocabulary size) and remembered in ``cache``.

    ``pick(n, start)`` gives n token ids inside the model's vocabulary (never the pad), so a
    tiny-vocabulary model (the bridges) can neither fail the probe nor decide the answer for a
    different model of the same class; a peft wrapper answers for the architecture it wraps. Any
    exception means no.
    """
    import torch

    config = getattr(model, "config", None)
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    key = (type(model).__name__, type(base).__name__, getattr(config, "_attn_implementation", None), vocab)
    if key not in cache:
        usable = [i for i in range(vocab) if i != pad_token_id][:10]
        if len(usable) < 2:
            cache[key] = False
            return False
        pick = lambda n, start: [usable[(start + j) % len(usable)] for j in range(n)]  # noqa: E731
        try:
            with torch.no_grad():
                cache[key] = bool(check(model, pick, next(model.parameters()).device))
        except Exception:  # noqa: BLE001 - any failure means: use the slower, plain path
            cache[key] = False
    return cache[key]


def packing_supported(model, pad_token_id: int) -> bool:
    """Whether this model gives the same log-probs packed as padded (probed once, :func:`_probe`)."""
    import torch

    def check(model, pick, device):
        prompts, responses = [pick(3, 0), pick(1, 3)], [pick(2, 4), pick(4, 6)]
        a = packed_sequence_logprobs(model, prompts, responses, pad_token_id, device)
        b = sequence_logprobs(model, make_batch(prompts, responses, pad_token_id, device))
        return torch.allclose(a, b.float(), atol=1e-4, rtol=1e-4)

    return _probe(_PACKING, model, pad_token_id, check)


# ----------------------------------------------------------------------------------------------
# Shared-prompt (prompt once per preference pair) sequence log-probs for DPO training

# the attention implementations whose attention takes a ready 4D mask, and in which form:
# sdpa a boolean mask (True = attend), eager an additive float mask (0 = attend, dtype min = masked)
_MASK_FORMS = ("sdpa", "eager")


def _shared_layout(prompt_ids, chosen_ids, rejected_ids):
    """Per pair i the input tokens ``x_i | y_w[:-1] | y_l[:-1]``, their positions, their part (0 prompt,
    1 chosen, 2 rejected), and for every response token the offset (within the pair) of the input
    that predicts it. The last token of a response predicts nothing, so it is not fed."""
    seqs, positions, parts, pred_c, pred_r = [], [], [], [], []
    for i, (p, c, r) in enumerate(zip(prompt_ids, chosen_ids, rejected_ids)):
        if not p:
            raise ValueError(f"prompt_ids: prompt {i} is empty (prepend BOS: a response's first token is "
                             "predicted from the prompt's last)")
        if not c or not r:
            raise ValueError(f"{'chosen_ids' if not c else 'rejected_ids'}: response {i} is empty")
        n_p, n_c, n_r = len(p), len(c) - 1, len(r) - 1
        seqs.append(list(p) + list(c[:-1]) + list(r[:-1]))
        # the rejected response continues the prompt, not the chosen one: its positions restart at P
        positions.append(np.concatenate([np.arange(n_p + n_c), n_p + np.arange(n_r)]))
        parts.append(np.repeat(np.array([0, 1, 2], dtype=np.int8), [n_p, n_c, n_r]))
        # y_t is predicted at the input before it: the prompt's last token for t = 0, else y_{t−1}
        pred_c.append(np.concatenate([[n_p - 1], n_p + np.arange(n_c)]))
        pred_r.append(np.concatenate([[n_p - 1], n_p + n_c + np.arange(n_r)]))
    return seqs, positions, parts, pred_c, pred_r


def _pack_rows(lengths, hidden_size=None):
    """First-fit-decreasing rows for segments of these lengths, the row width chosen to minimise the
    padded transformer cost → (list of (row, offset) per segment, rows, width).

    Every row is padded to the longest one, so a step costs about rows · width · (1 + width / κ):
    the per-token projections and MLP, plus attention over the whole row (the 4D mask hides other
    segments but the kernel still computes them). For a Llama block of width H (MLP 8H/3, grouped
    K/V) the projections cost ≈ 10.7 H² multiply-adds per token and attention ≈ 2 H per token pair,
    hence κ ≈ 5 H (≈ 2900 tokens for SmolLM2's H = 576: long rows are nearly free, padding is not).
    Widths tried: 1× … 4× the longest segment in quarter steps, each trimmed to its fullest row.
    """
    longest = max(lengths)
    kappa = 5.0 * hidden_size if hidden_size else float("inf")
    best = None
    for quarters in range(4, 17):
        place, rows = _pack(lengths, -(-longest * quarters // 4))
        used = np.zeros(rows, dtype=np.int64)
        for (row, off), n in zip(place, lengths):
            used[row] = max(used[row], off + n)
        width = int(used.max())
        cost = rows * width * (1.0 + width / kappa)
        if best is None or cost < best[0]:
            best = (cost, place, rows, width)
    return best[1:]


def shared_prompt_sequence_logprobs(model, prompt_ids, chosen_ids, rejected_ids, pad_token_id: int, device=None):
    """(log π(y_w|x), log π(y_l|x)) for n preference pairs, each prompt run **once** for both responses.

    Layout: pair i is one segment ``[x_i | y_w,i[:-1] | y_l,i[:-1]]`` of P_i + (C_i − 1) + (R_i − 1) tokens
    (a response's last token predicts nothing and is not fed); segments are packed first-fit into rows
    of a common width L (:func:`_pack_rows`), the rest of a row is padding (a segment of its own). Positions
    run 0 … P+C−2 over prompt and chosen and restart at P for the rejected response, and a 4D mask
    (rows, 1, L, L) lets query q attend to key k iff

        same segment  ∧  k ≤ q  ∧  ¬(q ∈ rejected ∧ k ∈ chosen),

    so every chosen token sees exactly (x, y_w,<t) and every rejected token exactly (x, y_l,<t), at
    the positions they have in the padded batch of :func:`make_batch`: the same keys, values and
    rotary phases, hence the same log-probs up to float summation order, and the gradient of the
    prompt's keys/values collects both responses' contributions (as the sum over two forwards would).
    y_0 of both responses is predicted from the hidden state of x's last token. The LM head runs only
    on the C + R predicting positions:

        log π(y|x) = Σ_t log softmax(W h_{pred(t)})[y_t]

    Tokens: Σ_i (P_i + C_i + R_i − 2) against Σ_i (2 P_i + C_i + R_i) packed separately
    (:func:`packed_sequence_logprobs`). Needs an attention implementation that takes a ready 4D mask
    (``sdpa``, ``eager``); check a model with :func:`shared_prompt_supported`.

    Args:
        prompt_ids, chosen_ids, rejected_ids: n token-id lists each (prompts and responses non-empty).
    Returns:
        (chosen (n,), rejected (n,)) float32 sums, differentiable.
    """
    import torch

    n = len(prompt_ids)
    if not (len(chosen_ids) == len(rejected_ids) == n) or n == 0:
        raise ValueError(f"chosen_ids: prompts, chosen and rejected must be non-empty and of one length, got "
                         f"{n}, {len(chosen_ids)}, {len(rejected_ids)}")
    config = getattr(model, "config", None)
    form = getattr(config, "_attn_implementation", None)
    if form not in _MASK_FORMS:
        raise ValueError(f"model: attention implementation {form!r} does not take a custom 4D mask; "
                         f"expected one of {_MASK_FORMS}")
    seqs, positions, parts, pred_c, pred_r = _shared_layout(prompt_ids, chosen_ids, rejected_ids)
    lengths = [len(s) for s in seqs]
    place, rows, capacity = _pack_rows(lengths, getattr(config, "hidden_size", None))
    ids = np.full((rows, capacity), pad_token_id, dtype=np.int64)
    pos = np.zeros((rows, capacity), dtype=np.int64)
    segment = np.full((rows, capacity), -1, dtype=np.int64)  # −1: the row's tail padding
    part = np.zeros((rows, capacity), dtype=np.int8)
    used = np.zeros(rows, dtype=np.int64)
    for i, (row, off) in enumerate(place):
        m = lengths[i]
        ids[row, off:off + m] = seqs[i]
        pos[row, off:off + m] = positions[i]
        segment[row, off:off + m] = i
        part[row, off:off + m] = parts[i]
        used[row] = max(used[row], off + m)
    for row in range(rows):  # the tail attends causally to itself only (no query row may be all-masked)
        pos[row, used[row]:] = np.arange(capacity - used[row])
    to = (lambda a: torch.from_numpy(a).to(device)) if device is not None else torch.from_numpy
    seg, prt = to(segment), to(part)
    causal = torch.ones(capacity, capacity, dtype=torch.bool, device=seg.device).tril()
    allowed = (seg[:, :, None] == seg[:, None, :]) & causal
    allowed &= ~((prt[:, :, None] == 2) & (prt[:, None, :] == 1))  # rejected never sees chosen
    allowed = allowed[:, None]  # (rows, 1, L, L): one mask for every head
    if form == "eager":  # eager attention adds the mask to the scores
        dtype = model.get_input_embeddings().weight.dtype
        allowed = torch.zeros(allowed.shape, dtype=dtype, device=seg.device).masked_fill(
            ~allowed, torch.finfo(dtype).min)
    hidden = model.get_decoder()(input_ids=to(ids), position_ids=to(pos), attention_mask=allowed,
                                 use_cache=False).last_hidden_state
    # one LM-head call over the C + R predicting positions of every pair; owner j < n: chosen j, n + j: rejected j
    preds = pred_c + pred_r
    pred_rows = np.concatenate([np.full(len(p), place[j % n][0]) for j, p in enumerate(preds)])
    pred_cols = np.concatenate([place[j % n][1] + p for j, p in enumerate(preds)])
    owner = np.concatenate([np.full(len(p), j) for j, p in enumerate(preds)])
    targets = np.concatenate([np.asarray(y, dtype=np.int64) for y in list(chosen_ids) + list(rejected_ids)])
    logits = model.get_output_embeddings()(hidden[to(pred_rows), to(pred_cols)]).float()
    logp = torch.gather(logits, -1, to(targets)[:, None]).squeeze(-1) - torch.logsumexp(logits, -1)
    sums = torch.zeros(2 * n, dtype=logp.dtype, device=logp.device).index_add(0, to(owner), logp)
    return sums[:n], sums[n:]


_SHARED: dict = {}


def shared_prompt_supported(model, pad_token_id: int) -> bool:
    """Whether :func:`shared_prompt_sequence_logprobs` gives this model the padded batch's log-probs,
    probed once per kind of model (:func:`_probe`) on two pairs of unequal prompt and response
    lengths; any failure (e.g. an attention implementation that ignores or rejects a 4D mask) means no.
    """
    import torch

    def check(model, pick, device):
        prompts, chosen, rejected = [pick(3, 0), pick(1, 3)], [pick(2, 4), pick(4, 6)], [pick(3, 5), pick(1, 8)]
        c, r = shared_prompt_sequence_logprobs(model, prompts, chosen, rejected, pad_token_id, device)
        b = sequence_logprobs(model, make_batch(prompts + prompts, chosen + rejected, pad_token_id, device))
        return torch.allclose(torch.cat([c, r]), b.float(), atol=1e-4, rtol=1e-4)

    return _probe(_SHARED, model, pad_token_id, check)
