"""The shared-prompt DPO forward (each prompt run once per preference pair) against the padded batch.

:func:`llm.packing.shared_prompt_sequence_logprobs` packs ``[x | y_w[:-1] | y_l[:-1]]`` per pair
with a block attention mask (the rejected response sees the prompt, never the chosen one) and
positions restarting at P for the rejected response. It must give, in float32:

1. the padded batch's log-probs (:func:`llm.logprobs.sequence_logprobs` on :func:`make_batch`), pair
   by pair, for unequal prompt and response lengths (one-token responses included), on the tiny model,
   on a LoRA-wrapped one (adapters perturbed away from zero, so they matter) and under eager attention;
2. the padded path's DPO loss and, after one backward, every parameter's gradient (relative error
   ‖g_shared − g_padded‖ / ‖g_padded‖ ≤ 1e-5 per parameter), full weights and LoRA;
3. a fallback: a model that ignores the 4D mask fails the once-per-class probe, and ``dpo_loss`` then
   uses the packed forward with the same loss.

Parity with trl is tests/test_llm_parity.py (``dpo_loss``'s default forward is this one).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import llm.packing as packing
from llm.corpus import reviews
from llm.generation import (
    make_batch,
    packed_sequence_logprobs,
    sequence_logprobs,
    shared_prompt_sequence_logprobs,
    shared_prompt_supported,
)
from llm.tiny import TinyLMConfig, default_model
from llm.trainers import DPOConfig, dpo, dpo_loss
from llm.trainers._common import encode_prompts, encode_responses

torch.set_num_threads(1)
# raised inside peft 0.21 when it wraps a model (it still reads transformers' old name), not by this code
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")

# float32 sums in another order: measured ≤ 1.5e-5 (tiny) / 3.1e-5 (LoRA) absolute on log-probs of magnitude
# 3–150, i.e. ≤ 2.5e-7 relative (1–2 ulp of the sum; the packed forward differs from the padded one alike)
LOGP_TOL = {"atol": 1e-5, "rtol": 1e-6}
# per parameter ‖g_shared − g_padded‖ / ‖g_padded‖ (the bound); measured ≤ 7.2e-7 (full), 1.4e-6 (LoRA)
GRAD_REL_TOL = 1e-5


@pytest.fixture(scope="module")
def tiny_lm():
    return default_model(TinyLMConfig.tiny(), cache=False, progress=False)


@pytest.fixture(scope="module")
def pairs(tiny_lm):
    """Six pairs with unequal prompt, chosen and rejected lengths, plus a pair whose chosen response is
    EOS alone and one whose rejected response is (a one-token response feeds no token of its own)."""
    tok = tiny_lm.tokenizer
    prompts, chosen, _ = reviews(6, np.random.default_rng(0))
    _, rejected, _ = reviews(6, np.random.default_rng(1))
    prompts = list(prompts) + ["Review of the lamp:", "A"]
    chosen = list(chosen) + ["", " The lid is flimsy and the handle is very poor."]
    rejected = list(rejected) + [" Five stars.", ""]
    p, c, r = encode_prompts(tok, prompts), encode_responses(tok, chosen), encode_responses(tok, rejected)
    assert len({len(x) for x in p}) > 2 and len({len(x) for x in c}) > 2 and len({len(x) for x in r}) > 2
    assert min(len(x) for x in c) == 1 and min(len(x) for x in r) == 1
    return p, c, r


def _lora(lm):
    """A LoRA-wrapped copy whose B matrices are random (at B = 0 the adapters would not change a thing)."""
    from llm.adapters import Adaptation, adapt

    adapted = adapt(lm, Adaptation(mode="lora", lora_r=4))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in adapted.model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
    return adapted


def _padded(model, pad, p, c, r):
    """The reference: chosen and rejected as two rows each of the padded batch (prompt sent twice)."""
    logps = sequence_logprobs(model, make_batch(list(p) + list(p), list(c) + list(r), pad)).float()
    return logps[:len(p)], logps[len(p):]


def _assert_equal_to_padded(model, pad, pairs):
    with torch.no_grad():
        chosen, rejected = shared_prompt_sequence_logprobs(model, *pairs, pad)
        ref_c, ref_r = _padded(model, pad, *pairs)
    assert chosen.shape == rejected.shape == (len(pairs[0]),)
    torch.testing.assert_close(chosen, ref_c, **LOGP_TOL)
    torch.testing.assert_close(rejected, ref_r, **LOGP_TOL)
    assert not torch.allclose(chosen, rejected)  # two different responses, not one computed twice


def test_logprobs_equal_padded_forward(tiny_lm, pairs):
    _assert_equal_to_padded(tiny_lm.model, tiny_lm.tokenizer.pad_token_id, pairs)
    assert shared_prompt_supported(tiny_lm.model, tiny_lm.tokenizer.pad_token_id)


def test_logprobs_equal_padded_forward_lora(tiny_lm, pairs):
    lora = _lora(tiny_lm)
    pad = tiny_lm.tokenizer.pad_token_id
    with torch.no_grad():  # the perturbed adapters do change the model, so the check below is not the base's
        assert not torch.allclose(_padded(lora.model, pad, *pairs)[0], _padded(tiny_lm.model, pad, *pairs)[0])
    _assert_equal_to_padded(lora.model, pad, pairs)
    assert shared_prompt_supported(lora.model, pad)


def test_logprobs_equal_padded_forward_eager_attention(tiny_lm, pairs):
    """Eager attention takes the mask as additive scores, sdpa as booleans: both forms are built."""
    eager = tiny_lm.copy()
    eager.model.set_attn_implementation("eager")
    assert eager.model.config._attn_implementation == "eager"
    _assert_equal_to_padded(eager.model, tiny_lm.tokenizer.pad_token_id, pairs)


def test_layout_feeds_each_prompt_once(pairs):
    """Σ P + C + R − 2 tokens per pair (a response's last token predicts nothing), against 2P + C + R."""
    p, c, r = pairs
    seqs, positions, parts, pred_c, pred_r = packing._shared_layout(p, c, r)
    for i in range(len(p)):
        assert len(seqs[i]) == len(p[i]) + len(c[i]) + len(r[i]) - 2
        n_p, n_c = len(p[i]), len(c[i]) - 1
        # the rejected response's positions continue the prompt's, exactly as in its own padded row
        np.testing.assert_array_equal(positions[i][parts[i] == 2], np.arange(n_p, n_p + len(r[i]) - 1))
        assert pred_c[i][0] == pred_r[i][0] == n_p - 1  # both first tokens read the prompt's last state
        assert len(pred_c[i]) == len(c[i]) and len(pred_r[i]) == len(r[i])
        if n_c:
            assert pred_r[i][1:].min(initial=n_p + n_c) >= n_p + n_c  # rejected reads only its own inputs


def test_pack_rows_places_every_segment_once():
    lengths = [29, 57, 43, 57, 49, 60, 10, 22]
    for hidden in (None, 32, 576):
        place, rows, width = packing._pack_rows(lengths, hidden)
        assert width >= max(lengths) and rows >= -(-sum(lengths) // width)
        cover = np.zeros((rows, width), dtype=int)
        for (row, off), n in zip(place, lengths):
            cover[row, off:off + n] += 1
        assert cover.max() == 1 and cover.sum() == sum(lengths)  # disjoint, inside the rows
        assert cover.sum(1).max() == width  # trimmed to the fullest row
    # an unknown width (no attention cost) minimises padded tokens; a narrow model prefers short rows
    assert packing._pack_rows(lengths, None)[1] < packing._pack_rows(lengths, 32)[1]


def test_logprobs_equal_padded_forward_long_rows(tiny_lm, pairs, monkeypatch):
    """Rows of several segments each, with tail padding: the widths chosen for a wide model."""
    pack_rows = packing._pack_rows
    monkeypatch.setattr(packing, "_pack_rows", lambda lengths, hidden: pack_rows(lengths, None))
    place, rows, width = packing._pack_rows([len(s) for s in packing._shared_layout(*pairs)[0]], 32)
    assert rows < len(pairs[0]) / 2
    _assert_equal_to_padded(tiny_lm.model, tiny_lm.tokenizer.pad_token_id, pairs)


def _loss_and_gradients(model, pad, pairs, ref_c, ref_r, weights, **flags):
    config = DPOConfig(beta=0.1, **flags)
    model.zero_grad(set_to_none=True)
    loss, rho_w, rho_l = dpo_loss(model, pad, *pairs, ref_c, ref_r, config, weights=weights)
    loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
    return loss.item(), rho_w, rho_l, grads


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_dpo_loss_and_every_gradient_equal_padded(tiny_lm, pairs, mode):
    """One backward of the DPO loss: shared prompt against the padded batch (and the packed forward)."""
    lm = tiny_lm.copy() if mode == "full" else _lora(tiny_lm)
    model, pad = lm.model, tiny_lm.tokenizer.pad_token_id
    model.train()
    n = len(pairs[0])
    rng = np.random.default_rng(0)
    with torch.no_grad():  # a reference away from the policy, so the loss and its gradient are non-trivial
        c0, r0 = _padded(model, pad, *pairs)
    ref_c = np.minimum(c0.double().numpy() + rng.normal(0, 2, n), 0.0)  # a log-probability stays ≤ 0
    ref_r = np.minimum(r0.double().numpy() + rng.normal(0, 2, n), 0.0)
    weights = rng.uniform(0.5, 2.0, n)
    shared = _loss_and_gradients(model, pad, pairs, ref_c, ref_r, weights, share_prompt=True)
    padded = _loss_and_gradients(model, pad, pairs, ref_c, ref_r, weights, share_prompt=False, packed=False)
    packed = _loss_and_gradients(model, pad, pairs, ref_c, ref_r, weights, share_prompt=False, packed=True)
    assert abs(shared[0] - np.log(2)) > 1e-3
    # ρ = log π − log π0: its error is the log-prob's, whose tolerance scales with |log π| ≈ |log π0|
    rho_tol = {"rtol": 0.0, "atol": LOGP_TOL["atol"] + LOGP_TOL["rtol"] * float(np.abs([ref_c, ref_r]).max())}
    for other in (padded, packed):
        assert shared[0] == pytest.approx(other[0], rel=1e-6, abs=1e-6)
        torch.testing.assert_close(shared[1], other[1], **rho_tol)
        torch.testing.assert_close(shared[2], other[2], **rho_tol)
        assert shared[3].keys() == other[3].keys()
    grads, reference = shared[3], padded[3]
    if mode == "lora":
        assert grads and all("lora_" in name for name in grads)
    else:
        assert len(grads) == len(list(model.parameters()))
    for name, g in reference.items():
        rel = float((grads[name].double() - g.double()).norm() / g.double().norm().clamp(min=1e-30))
        assert rel <= GRAD_REL_TOL, f"{name}: relative gradient error {rel:.2e}"
    assert sum(float(g.norm()) ** 2 for g in reference.values()) > 1e-12  # not 0 == 0


def test_dpo_training_runs_equal(tiny_lm, pairs):
    """Three ``dpo`` steps from the same weights: the same losses with and without the shared prompt."""
    from llm.trainers import DPOData

    n = len(pairs[0])
    data = DPOData(*pairs, np.full(n, -20.0), np.full(n, -25.0), np.ones(n))
    histories = []
    for share in (True, False):
        config = DPOConfig(beta=0.1, steps=3, batch_size=4, lr=1e-3, share_prompt=share, packed=False)
        histories.append(dpo(tiny_lm.copy(), data, config, progress=False))
    np.testing.assert_allclose(histories[0]["loss"], histories[1]["loss"], rtol=1e-5, atol=1e-6)


def _ignore_4d_masks(lm):
    """A copy whose decoder drops a ready 4D mask (as an architecture that always builds its own
    would): the padded and packed forwards are unaffected, the shared-prompt layout breaks."""
    broken = lm.copy()
    decoder = broken.model.get_decoder()
    forward = decoder.forward

    def dropping(*args, attention_mask=None, **kwargs):
        if attention_mask is not None and attention_mask.ndim == 4:
            attention_mask = None
        return forward(*args, attention_mask=attention_mask, **kwargs)

    decoder.forward = dropping
    return broken


def test_unsupported_model_falls_back(tiny_lm, pairs, monkeypatch):
    monkeypatch.setattr(packing, "_SHARED", {})  # the probe is cached per class; this copy's class is the same
    broken = _ignore_4d_masks(tiny_lm)
    pad = tiny_lm.tokenizer.pad_token_id
    assert not shared_prompt_supported(broken.model, pad)
    with torch.no_grad():  # what the probe caught: the layout is wrong for this model
        _, rejected = shared_prompt_sequence_logprobs(broken.model, *pairs, pad)
        assert not torch.allclose(rejected, _padded(broken.model, pad, *pairs)[1], atol=1e-3)
    n = len(pairs[0])
    args = (broken.model, pad, *pairs, np.zeros(n), np.zeros(n))
    with torch.no_grad():
        fallback, _, _ = dpo_loss(*args, DPOConfig(share_prompt=True))
        padded, _, _ = dpo_loss(*args, DPOConfig(share_prompt=False, packed=False))
    assert fallback.item() == pytest.approx(padded.item(), rel=1e-6)


def test_attention_without_4d_masks_is_unsupported(tiny_lm, pairs, monkeypatch):
    monkeypatch.setattr(packing, "_MASK_FORMS", ("eager",))  # as if sdpa took no ready 4D mask
    monkeypatch.setattr(packing, "_SHARED", {})
    pad = tiny_lm.tokenizer.pad_token_id
    with pytest.raises(ValueError, match="model: attention implementation 'sdpa'"):
        shared_prompt_sequence_logprobs(tiny_lm.model, *pairs, pad)
    assert not shared_prompt_supported(tiny_lm.model, pad)


def test_invalid_inputs_and_config(tiny_lm, pairs):
    p, c, r = pairs
    pad = tiny_lm.tokenizer.pad_token_id
    with pytest.raises(ValueError, match="prompt_ids: prompt 1 is empty"):
        shared_prompt_sequence_logprobs(tiny_lm.model, [p[0], []], c[:2], r[:2], pad)
    with pytest.raises(ValueError, match="rejected_ids: response 0 is empty"):
        shared_prompt_sequence_logprobs(tiny_lm.model, p[:1], c[:1], [[]], pad)
    with pytest.raises(ValueError, match="chosen_ids: prompts, chosen and rejected"):
        shared_prompt_sequence_logprobs(tiny_lm.model, p[:2], c[:1], r[:2], pad)
    with pytest.raises(ValueError, match="share_prompt"):
        DPOConfig(share_prompt="yes")
    with pytest.raises(ValueError, match="packed"):
        DPOConfig(packed=1)


def test_packed_and_shared_agree_on_one_pair(tiny_lm):
    """The smallest case: one pair, one row of exactly its segment, against the packed forward."""
    tok = tiny_lm.tokenizer
    p, c, r = [[5, 6, 7]], [[8, 9, tok.eos_token_id]], [[10, tok.eos_token_id]]
    with torch.no_grad():
        chosen, rejected = shared_prompt_sequence_logprobs(tiny_lm.model, p, c, r, tok.pad_token_id)
        packed = packed_sequence_logprobs(tiny_lm.model, p + p, c + r, tok.pad_token_id)
    torch.testing.assert_close(torch.cat([chosen, rejected]), packed, **LOGP_TOL)
