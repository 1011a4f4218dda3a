"""llm pure pieces: masked sequence log-probs, sampling filters, generation, model loading errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from llm.generation import (
    SamplingConfig,
    check_tokenizer,
    encode,
    filter_logits,
    generate,
    make_batch,
    missing_eos_penalty,
    sequence_logprobs,
    token_logprobs,
)
from llm.models import LanguageModel, load_model
from llm.tiny import TinyLMConfig, default_model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_lm():
    return default_model(TinyLMConfig.tiny(), cache=False, progress=False)


def test_sequence_logprobs_masking_matches_manual(tiny_lm):
    """Left-padded prompts + right-padded responses give exactly the per-sequence sums of an
    unpadded, one-sequence-at-a-time computation."""
    tok = tiny_lm.tokenizer
    prompts = ["Review of the lamp:", "Review of the coffee maker:", "Review of the tent:"]
    responses = [" Great.", " The lid is very flimsy and the handle is poor.", " It arrived on Monday."]
    p_ids = encode(tok, prompts)
    r_ids = [r + [tok.eos_token_id] for r in encode(tok, responses)]
    batch = make_batch(p_ids, r_ids, tok.pad_token_id)
    with torch.no_grad():
        total, per = sequence_logprobs(tiny_lm.model, batch, per_token=True)
        for i in range(3):
            ids = torch.tensor([p_ids[i] + r_ids[i]])
            logp = torch.log_softmax(tiny_lm.model(input_ids=ids).logits[0].double(), -1)
            manual = sum(logp[len(p_ids[i]) + t - 1, r_ids[i][t]] for t in range(len(r_ids[i])))
            assert float(total[i]) == pytest.approx(float(manual), abs=1e-4)
            # padded positions carry exactly zero
            assert torch.all(per[i, len(r_ids[i]):] == 0)
            assert int(batch.response_mask[i].sum()) == len(r_ids[i])


def test_token_logprobs_rejects_bad_shapes():
    with pytest.raises(ValueError, match="logits/tokens/mask"):
        token_logprobs(torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long), torch.ones(2, 4))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=2, max_size=12), st.integers(0, 12), st.floats(0.05, 1.0))
def test_filter_logits_keeps_topk_and_nucleus(values, top_k, top_p):
    """Survivors ⊆ top-k, their softmax mass ≥ top_p of the top-k-filtered distribution, argmax survives."""
    logits = torch.tensor([values], dtype=torch.float64)
    out = filter_logits(logits, top_k, top_p)
    kept = torch.isfinite(out[0])
    assert kept[int(logits.argmax())]
    if 0 < top_k < len(values):
        assert int(kept.sum()) <= len(values)  # ties at the k-th value may keep more than k
        kth = torch.topk(logits[0], top_k).values[-1]
        assert torch.all(logits[0][kept] >= kth)
    base = filter_logits(logits, top_k, 1.0)
    probs = torch.softmax(base[0], -1)
    assert float(probs[kept].sum()) >= top_p - 1e-9


def test_generation_is_deterministic_for_a_seed(tiny_lm):
    prompts = ["Review of the lamp:", "Review of the sofa:"] * 3
    config = SamplingConfig(max_new_tokens=20, temperature=0.9, top_k=50, top_p=0.95)
    a = generate(tiny_lm, prompts, config, torch.Generator().manual_seed(3))
    b = generate(tiny_lm, prompts, config, torch.Generator().manual_seed(3))
    c = generate(tiny_lm, prompts, config, torch.Generator().manual_seed(4))
    assert a.responses == b.responses
    assert torch.equal(a.batch.input_ids, b.batch.input_ids)
    assert a.responses != c.responses


def test_generation_stops_at_eos_and_marks_unfinished(tiny_lm):
    tok = tiny_lm.tokenizer
    samples = generate(tiny_lm, ["Review of the lamp:"] * 16, SamplingConfig(max_new_tokens=6),
                       torch.Generator().manual_seed(0))
    responses = samples.batch.responses
    for i in range(len(samples.finished)):
        row = responses[i][samples.batch.response_mask[i].bool()].tolist()
        if samples.finished[i]:
            assert row[-1] == tok.eos_token_id and tok.eos_token_id not in row[:-1]
        else:
            assert len(row) == 6 and tok.eos_token_id not in row
    assert (~samples.finished).any()  # 6 tokens is too short for most reviews
    rewards = missing_eos_penalty(np.ones(16), samples.finished, 2.0)
    assert np.all(rewards[~samples.finished] == -1.0) and np.all(rewards[samples.finished] == 1.0)


def test_generation_matches_sequence_logprobs_of_its_own_samples(tiny_lm):
    """Greedy decoding (tiny temperature) picks the argmax token; its log-probs are consistent."""
    samples = generate(tiny_lm, ["Review of the kettle:"] * 2, SamplingConfig(max_new_tokens=8, temperature=1e-4),
                       torch.Generator().manual_seed(0))
    assert samples.responses[0] == samples.responses[1]
    with torch.no_grad():
        logp = sequence_logprobs(tiny_lm.model, samples.batch)
    assert torch.all(logp <= 0) and torch.allclose(logp[0], logp[1], atol=1e-5)


def test_bad_input_errors(tiny_lm, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="does not exist"):
        load_model(str(tmp_path / "nope"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="HF_HUB_OFFLINE"):
        load_model("someone/some-model-that-is-not-cached")
    long_prompt = "Review of the lamp: " + "very " * 200
    with pytest.raises(ValueError, match="context window"):
        generate(tiny_lm, [long_prompt], SamplingConfig(max_new_tokens=4), torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="temperature"):
        SamplingConfig(temperature=0.0)

    class NoEos:
        eos_token_id = None
        pad_token_id = 0

    with pytest.raises(ValueError, match="EOS"):
        check_tokenizer(NoEos())

    class NoPad:
        eos_token_id = 2
        pad_token_id = None

    with pytest.raises(ValueError, match="pad"):
        check_tokenizer(NoPad())
    with pytest.raises(ValueError, match="EOS"):
        generate(LanguageModel(tiny_lm.model, NoEos()), ["x"], SamplingConfig(), torch.Generator())


def test_saved_model_round_trips(tiny_lm, tmp_path):
    tiny_lm.model.save_pretrained(tmp_path)
    tiny_lm.tokenizer.save_pretrained(tmp_path)
    loaded = load_model(str(tmp_path), device="cpu")
    batch = make_batch(encode(tiny_lm.tokenizer, ["Review of the lamp:"]),
                       [encode(tiny_lm.tokenizer, [" Great."])[0]], tiny_lm.tokenizer.pad_token_id)
    with torch.no_grad():
        assert torch.allclose(sequence_logprobs(loaded.model, batch), sequence_logprobs(tiny_lm.model, batch))


def test_packed_logprobs_equal_padded(tiny_lm):
    """The padding-free packed forward (training path) equals the padded batch, sequence by sequence."""
    from llm.generation import packed_sequence_logprobs, packing_supported
    from llm.packing import _pack

    tok = tiny_lm.tokenizer
    prompts = encode(tok, ["Review of the lamp:", "Review of the sofa:", "Review of the tent:", "Review of the kettle:"])
    responses = [r + [tok.eos_token_id] for r in encode(tok, [" Great.", " The lid is very flimsy and poor.",
                                                               " It arrived on Monday.", " Five stars."])]
    with torch.no_grad():
        packed = packed_sequence_logprobs(tiny_lm.model, prompts, responses, tok.pad_token_id)
        padded = sequence_logprobs(tiny_lm.model, make_batch(prompts, responses, tok.pad_token_id))
    torch.testing.assert_close(packed, padded.float(), atol=1e-4, rtol=1e-4)
    assert packing_supported(tiny_lm.model, tok.pad_token_id)
    place, rows = _pack([5, 3, 4, 2], 8)
    assert rows == 2 and sorted(place) == [(0, 0), (0, 5), (1, 0), (1, 4)]


def test_default_model_is_built_once_and_reused(tmp_path, monkeypatch):
    from llm.models import cache_dir

    monkeypatch.setenv("RLBANDIT_CACHE", str(tmp_path))
    config = TinyLMConfig.tiny(steps=3, corpus_size=200)
    first = default_model(config, progress=False)
    folder = cache_dir() / f"tiny-lm-{config.key()}"
    assert (folder / "done").exists() and (folder / "config.json").exists()
    second = default_model(config, progress=False)  # loaded from disk, not rebuilt
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(),
                                                  second.model.state_dict().values()))
    assert second.tokenizer.eos_token_id == first.tokenizer.eos_token_id
    with pytest.raises(ValueError, match="steps"):
        TinyLMConfig(steps=-1)
