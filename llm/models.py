"""Language models and tokenizers: load any Hugging Face causal LM, or build the offline default.

- :func:`load_model` loads a causal LM + tokenizer from a local directory or a hub id (clear errors
  for a missing path and for a hub id while ``HF_HUB_OFFLINE`` is set), on the automatic device
  and dtype (CUDA + bf16 when present, CPU float32 otherwise).
- :func:`default_model` is the offline default: a byte-level BPE tokenizer trained on the synthetic
  review corpus (:mod:`llm.corpus`) and a small Llama-style model pretrained on it, built once and
  cached on disk (``$RLBANDIT_CACHE`` or ``~/.cache/rlbandit``), reused afterwards.

transformers/tokenizers are imported lazily (they take seconds to import).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rlbandit._checks import check_int, check_positive_float, check_positive_ints

__all__ = [
    "LanguageModel",
    "TinyLMConfig",
    "auto_device",
    "auto_dtype",
    "build_model",
    "build_tokenizer",
    "cache_dir",
    "check_tokenizer",
    "default_model",
    "load_model",
    "pretrain",
]


def auto_device():
    """``cuda`` when a GPU is present, else ``cpu`` (no code path assumes a GPU)."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def auto_dtype(device=None):
    """bf16 on a CUDA device that supports it, float32 otherwise."""
    import torch

    device = auto_device() if device is None else torch.device(device)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def cache_dir() -> Path:
    """Where built models live: ``$RLBANDIT_CACHE`` or ``~/.cache/rlbandit``."""
    return Path(os.environ.get("RLBANDIT_CACHE", Path.home() / ".cache" / "rlbandit"))


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


@dataclass
class LanguageModel:
    """A causal LM and its tokenizer (mutable: trainers update the model's weights in place)."""

    model: object  # transformers.PreTrainedModel
    tokenizer: object  # transformers.PreTrainedTokenizerBase

    @property
    def device(self):
        return next(self.model.parameters()).device

    @property
    def max_length(self) -> int:
        config = self.model.config
        return int(getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", 1024))

    def copy(self) -> LanguageModel:
        """A deep copy of the model (a frozen reference, or a fresh policy) sharing the tokenizer."""
        import copy

        clone = copy.deepcopy(self.model)
        return LanguageModel(clone, self.tokenizer)

    def frozen(self) -> LanguageModel:
        """A frozen, eval-mode deep copy: the reference policy π0."""
        ref = self.copy()
        ref.model.eval()
        ref.model.requires_grad_(False)
        return ref


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


def check_tokenizer(tokenizer) -> None:
    """A tokenizer usable for generation and training must have an EOS and a pad token."""
    if getattr(tokenizer, "eos_token_id", None) is None:
        raise ValueError("tokenizer: has no EOS token (eos_token_id is None); responses could never stop")
    if getattr(tokenizer, "pad_token_id", None) is None:
        raise ValueError("tokenizer: has no pad token (pad_token_id is None); set tokenizer.pad_token "
                         "(e.g. tokenizer.pad_token = tokenizer.eos_token) before batching")


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
    if not isinstance(config, TinyLMConfig):
        raise ValueError(f"config: expected a TinyLMConfig, got {type(config).__name__}")
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
    return _place(lm, device)


def _place(lm: LanguageModel, device, dtype=None) -> LanguageModel:
    import torch

    device = auto_device() if device is None else torch.device(device)
    dtype = auto_dtype(device) if dtype is None else dtype
    lm.model.to(device=device, dtype=dtype)
    return lm


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return 1 <= len(parts) <= 2 and all(parts) and not name.startswith((".", "~")) and "\\" not in name


def load_model(name_or_path: str, *, device=None, dtype=None) -> LanguageModel:
    """Load a causal LM and its tokenizer from a local directory or a Hugging Face hub id.

    Raises ValueError when the path does not exist, when a hub id is asked for while offline
    (``HF_HUB_OFFLINE=1``) and it is not in the local hub cache, or when the tokenizer lacks EOS
    (a missing pad token is set to EOS, the usual convention, since batching needs one).
    """
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path):
        raise ValueError(f"name_or_path: expected a directory or a hub id, got {name_or_path!r}")
    name = str(name_or_path)
    path = Path(name).expanduser()
    is_local = path.exists()
    if not is_local:
        if name.startswith(("/", ".", "~")) or not _looks_like_hub_id(name):
            raise ValueError(f"name_or_path: the model directory {name!r} does not exist")
        if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
            from huggingface_hub import try_to_load_from_cache

            if not isinstance(try_to_load_from_cache(name, "config.json"), str):
                raise ValueError(
                    f"name_or_path: {name!r} is a hub id, but HF_HUB_OFFLINE is set and it is not in the local "
                    "cache; download it first, pass a local directory, or use default_model() (built offline)")
    elif not (path / "config.json").exists():
        raise ValueError(f"name_or_path: {name!r} exists but holds no config.json (not a saved model directory)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device_ = auto_device() if device is None else device
    dtype = auto_dtype(device_) if dtype is None else dtype
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path) if is_local else name)
        model = AutoModelForCausalLM.from_pretrained(str(path) if is_local else name, dtype=dtype)
    except OSError as error:
        raise ValueError(f"name_or_path: could not load {name!r} ({error})") from None
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    check_tokenizer(tokenizer)
    tokenizer.padding_side = "left"
    model.to(device_)
    model.eval()
    return LanguageModel(model, tokenizer)


def parameter_count(model) -> int:
    return int(sum(np.prod(p.shape) for p in model.parameters()))
