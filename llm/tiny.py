"""The tiny offline default: a byte-level BPE tokenizer trained on the synthetic review corpus
(:mod:`llm.corpus`) and a small Llama-style model pretrained on it, built once per configuration
and cached on disk (``$RLBANDIT_CACHE`` or ``~/.cache/rlbandit``), reused afterwards.

It exists for fast tests and CPU smoke runs; the real default LM is SmolLM2-135M-Instruct
(``llm.models.load_model("smollm2-135m-instruct")``). This module sits above :mod:`llm.trainers`
(pretraining is SFT), so :mod:`llm.models` never imports it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass

from llm.models import LanguageModel, cache_dir, load_model, place
from rlbandit._checks import check_instance, check_int, check_positive_float, check_positive_ints

__all__ = ["TinyLMConfig", "build_model", "build_tokenizer", "default_model", "pretrain"]


@dataclass(frozen=True)
class TinyLMConfig:
    """The offline default model: tokenizer, architecture and pretraining budget.

    The default (≈0.6 M parameters, ~2 min of pretraining on 2 CPU cores) writes readable
    reviews; tests use :meth:`tiny` (seconds).
    """

    vocab_size: int = 1024  # BPE vocabulary incl. the 256 byte symbols and 3 special tokens
    hidden_size: int = 128
    n_layers: int = 2
    n_heads: int = 4
    intermediate_size: int = 384
    max_length: int = 64  # context window in tokens
    corpus_size: int = 20000  # documents of the synthetic corpus
    steps: int = 700  # pretraining steps
    batch_size: int = 32
    lr: float = 3e-3
    seed: int = 0

    def __post_init__(self):
        check_positive_ints(self, ("vocab_size", "hidden_size", "n_layers", "n_heads", "intermediate_size",
                                   "max_length", "corpus_size", "batch_size"))
        check_int(self.steps, "steps", minimum=0)
        if self.vocab_size < 260:
            raise ValueError(f"vocab_size: a byte-level BPE needs >= 260 tokens, got {self.vocab_size}")
        if self.hidden_size % self.n_heads:
            raise ValueError(f"n_heads: must divide hidden_size = {self.hidden_size}, got {self.n_heads}")
        check_positive_float(self.lr, "lr", finite=False)

    @staticmethod
    def tiny(**overrides) -> TinyLMConfig:
        """A model small enough for unit tests (a few seconds to build)."""
        base = dict(vocab_size=512, hidden_size=32, n_layers=1, n_heads=2, intermediate_size=64, max_length=64,
                    corpus_size=600, steps=30, batch_size=16, lr=1e-2)
        base.update(overrides)
        return TinyLMConfig(**base)

    def key(self) -> str:
        """A short hash naming the cache folder of this configuration."""
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def build_tokenizer(texts, vocab_size: int):
    """A byte-level BPE tokenizer trained on ``texts``, wrapped as a ``PreTrainedTokenizerFast``.

    Special tokens: ``<|pad|>`` (0), ``<|bos|>`` (1), ``<|eos|>`` (2). No file or download needed.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|pad|>", "<|bos|>", "<|eos|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", bos_token="<|bos|>",
                                      eos_token="<|eos|>")
    wrapped.padding_side = "left"
    return wrapped


def build_model(config: TinyLMConfig, vocab_size: int, eos_token_id: int, pad_token_id: int, bos_token_id: int):
    """A randomly initialised Llama-style causal LM (seeded by ``config.seed``)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    hf_config = LlamaConfig(vocab_size=vocab_size, hidden_size=config.hidden_size,
                            intermediate_size=config.intermediate_size, num_hidden_layers=config.n_layers,
                            num_attention_heads=config.n_heads, num_key_value_heads=config.n_heads,
                            max_position_embeddings=config.max_length, tie_word_embeddings=True,
                            eos_token_id=eos_token_id, pad_token_id=pad_token_id, bos_token_id=bos_token_id)
    torch.manual_seed(config.seed)  # HF initialisers draw from the global generator; seed it explicitly
    return LlamaForCausalLM(hf_config)


def pretrain(lm: LanguageModel, texts, config: TinyLMConfig, *, progress: bool = True) -> list[float]:
    """Next-token pretraining on whole documents (each ending with EOS); returns the loss curve."""
    from llm.trainers import SFTConfig, sft

    return sft(lm, [""] * len(texts), list(texts),
               SFTConfig(steps=config.steps, batch_size=config.batch_size, lr=config.lr, seed=config.seed,
                         warmup=max(1, config.steps // 20)),
               progress=progress, desc="pretrain")


def _build_default(config: TinyLMConfig, *, progress: bool) -> LanguageModel:
    from llm.corpus import corpus_text

    texts = corpus_text(config.corpus_size, seed=config.seed)
    tokenizer = build_tokenizer(texts, config.vocab_size)
    model = build_model(config, len(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id,
                        tokenizer.bos_token_id)
    lm = LanguageModel(model, tokenizer)
    pretrain(lm, texts, config, progress=progress)
    lm.model.eval()
    return lm


def default_model(config: TinyLMConfig | None = None, *, device=None, cache: bool = True,
                  progress: bool = True) -> LanguageModel:
    """The offline default LM: built and pretrained once per configuration, cached on disk, reused.

    Args:
        config: architecture and pretraining budget (default :class:`TinyLMConfig`).
        device: where to put it (automatic when None).
        cache: read/write ``cache_dir()/tiny-lm-<hash>``; False builds in memory only.
    """
    config = TinyLMConfig() if config is None else config
    check_instance(config, TinyLMConfig, "config")
    folder = cache_dir() / f"tiny-lm-{config.key()}"
    if cache and (folder / "done").exists():
        return load_model(str(folder), device=device)
    start = time.perf_counter()
    lm = _build_default(config, progress=progress)
    if cache:
        folder.mkdir(parents=True, exist_ok=True)
        lm.model.save_pretrained(folder)
        lm.tokenizer.save_pretrained(folder)
        (folder / "config.rlbandit.json").write_text(json.dumps(asdict(config), indent=1))
        (folder / "done").write_text(f"built in {time.perf_counter() - start:.1f} s\n")
    return place(lm, device)
