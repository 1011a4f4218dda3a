"""Padding-free sequence log-probs for training: packed rows, and one prompt per preference pair.

Both forwards equal :func:`llm.logprobs.sequence_logprobs` on the padded batch of
:func:`llm.logprobs.make_batch` (the log-prob of a response is the masked sum of its tokens'
log-probs) up to float32 summation order; each is used only for a kind of model on which a probe
(:func:`packing_supported`, :func:`shared_prompt_supported`) verified that.
"""

from __future__ import annotations

import numpy as np

from llm.logprobs import make_batch, picked_logprobs, sequence_logprobs

__all__ = ["packed_sequence_logprobs", "packing_supported", "shared_prompt_sequence_logprobs",
           "shared_prompt_supported"]


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


def _lay_out(place, rows: int, capacity: int, pad_token_id: int, tokens, positions, extra=()):
    """The (rows, capacity) arrays of segments placed at (row, offset): token ids (pad elsewhere),
    positions, and each ``(per-segment values, fill, dtype)`` of ``extra``. The tail of every row is
    padding and a segment of its own: its positions restart at 0 (it attends causally to itself only,
    so no query row is all-masked). Returns [ids, pos, *extra arrays]."""
    ids = np.full((rows, capacity), pad_token_id, dtype=np.int64)
    pos = np.zeros((rows, capacity), dtype=np.int64)
    more = [np.full((rows, capacity), fill, dtype=dtype) for _, fill, dtype in extra]
    used = np.zeros(rows, dtype=np.int64)
    for i, (row, off) in enumerate(place):
        m = len(tokens[i])
        ids[row, off:off + m] = tokens[i]
        pos[row, off:off + m] = positions[i]
        for array, (values, _, _) in zip(more, extra):
            array[row, off:off + m] = values[i]
        used[row] = max(used[row], off + m)
    for row in range(rows):
        pos[row, used[row]:] = np.arange(capacity - used[row])
    return [ids, pos, *more]


def _segment_logprob_sums(model, ids, pos, attention_mask, pred_rows, pred_cols, targets, owner, n_out, device):
    """Run the decoder on packed rows, the LM head only on the predicting positions (row, col), and
    sum log softmax(W h)[target] per owner: a (n_out,) float32 tensor, differentiable."""
    import torch

    to = (lambda a: torch.from_numpy(np.asarray(a)).to(device)) if device is not None else \
        (lambda a: torch.from_numpy(np.asarray(a)))
    hidden = model.get_decoder()(input_ids=to(ids), position_ids=to(pos), attention_mask=attention_mask,
                                 use_cache=False).last_hidden_state
    logits = model.get_output_embeddings()(hidden[to(pred_rows), to(pred_cols)])
    logp = picked_logprobs(logits, to(np.asarray(targets, dtype=np.int64)))
    return torch.zeros(n_out, dtype=logp.dtype, device=logp.device).index_add(0, to(owner), logp)


def packed_sequence_logprobs(model, prompt_ids, response_ids, pad_token_id: int, device=None):
    """log π(y|x) for each (prompt, response) with no padding waste: sequences are packed into rows
    (first-fit, capacity 2 × the longest), positions restart at 0 for each sequence (so attention is
    block-diagonal — transformers' packed-sequence masks), and the LM head runs only on the
    positions that predict response tokens. Returns (B,) sums (float32).

    Equal to :func:`llm.logprobs.sequence_logprobs` on the padded batch (checked per model class by
    :func:`packing_supported`, and in the tests).
    """
    seqs = [list(p) + list(r) for p, r in zip(prompt_ids, response_ids)]
    lengths = [len(s) for s in seqs]
    capacity = 2 * max(lengths)
    place, rows = _pack(lengths, capacity)
    ids, pos = _lay_out(place, rows, capacity, pad_token_id, seqs, [np.arange(n) for n in lengths])
    pred_rows, pred_cols, targets, owner = [], [], [], []
    for i, (seq, (row, off)) in enumerate(zip(seqs, place)):
        n, p = len(seq), len(prompt_ids[i])
        r = n - p
        pred_rows += [row] * r
        pred_cols += list(range(off + p - 1, off + n - 1))
        targets += seq[p:]
        owner += [i] * r
    # no mask: the tail padding is its own segment (positions restart), never attended to
    return _segment_logprob_sums(model, ids, pos, None, pred_rows, pred_cols, targets, owner, len(seqs), device)


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


def _shared_attention_mask(model, segment, part, form: str, device):
    """The 4D mask (rows, 1, L, L): query q attends to key k iff same segment ∧ k ≤ q ∧
    ¬(q ∈ rejected ∧ k ∈ chosen), as a boolean (sdpa) or an additive float (eager) mask."""
    import torch

    seg, prt = torch.from_numpy(segment), torch.from_numpy(part)
    if device is not None:
        seg, prt = seg.to(device), prt.to(device)
    capacity = seg.shape[-1]
    causal = torch.ones(capacity, capacity, dtype=torch.bool, device=seg.device).tril()
    allowed = (seg[:, :, None] == seg[:, None, :]) & causal
    allowed &= ~((prt[:, :, None] == 2) & (prt[:, None, :] == 1))  # rejected never sees chosen
    allowed = allowed[:, None]  # (rows, 1, L, L): one mask for every head
    if form == "eager":  # eager attention adds the mask to the scores
        dtype = model.get_input_embeddings().weight.dtype
        allowed = torch.zeros(allowed.shape, dtype=dtype, device=seg.device).masked_fill(
            ~allowed, torch.finfo(dtype).min)
    return allowed


def shared_prompt_sequence_logprobs(model, prompt_ids, chosen_ids, rejected_ids, pad_token_id: int, device=None):
    """(log π(y_w|x), log π(y_l|x)) for n preference pairs, each prompt run **once** for both responses.

    Layout: pair i is one segment ``[x_i | y_w,i[:-1] | y_l,i[:-1]]`` of P_i + (C_i − 1) + (R_i − 1) tokens
    (a response's last token predicts nothing and is not fed); segments are packed first-fit into rows
    of a common width L (:func:`_pack_rows`), the rest of a row is padding (a segment of its own). Positions
    run 0 … P+C−2 over prompt and chosen and restart at P for the rejected response, and a 4D mask
    (rows, 1, L, L) lets query q attend to key k iff

        same segment  ∧  k ≤ q  ∧  ¬(q ∈ rejected ∧ k ∈ chosen),

    so every chosen token sees exactly (x, y_w,<t) and every rejected token exactly (x, y_l,<t), at
    the positions they have in the padded batch of :func:`llm.logprobs.make_batch`: the same keys, values
    and rotary phases, hence the same log-probs up to float summation order, and the gradient of the
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
    place, rows, capacity = _pack_rows([len(s) for s in seqs], getattr(config, "hidden_size", None))
    # segment −1: the rows' tail padding
    ids, pos, segment, part = _lay_out(place, rows, capacity, pad_token_id, seqs, positions,
                                       extra=(([i for i in range(n)], -1, np.int64), (parts, 0, np.int8)))
    allowed = _shared_attention_mask(model, segment, part, form, device)
    # one LM-head call over the C + R predicting positions of every pair; owner j < n: chosen j, n + j: rejected j
    preds = pred_c + pred_r
    pred_rows = np.concatenate([np.full(len(p), place[j % n][0]) for j, p in enumerate(preds)])
    pred_cols = np.concatenate([place[j % n][1] + p for j, p in enumerate(preds)])
    owner = np.concatenate([np.full(len(p), j) for j, p in enumerate(preds)])
    targets = np.concatenate([np.asarray(y, dtype=np.int64) for y in list(chosen_ids) + list(rejected_ids)])
    sums = _segment_logprob_sums(model, ids, pos, allowed, pred_rows, pred_cols, targets, owner, 2 * n, device)
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
