"""Which weights a trainer updates: all of them, LoRA adapters, or only the top of the network.

:func:`adapt` returns a NEW :class:`~llm.models.LanguageModel` (a deep copy; the original is
untouched) whose parameters have ``requires_grad`` set for the chosen mode only. The trainers
need no change: their optimiser keeps the parameters with ``requires_grad``, and the adapted
model keeps the forward signature, ``config``, ``save_pretrained``, ``get_decoder`` and
``get_output_embeddings`` they and the packed forward use.

- ``full``: every weight trains (the default; what the trainers do on a plain model).
- ``lora``: peft LoRA adapters W + (α/r)·B·A on the linear layers (not the output head); B starts
  at zero, so the adapted policy starts exactly at π0. ``save_pretrained`` writes the adapter only.
- ``top``: the last ``top_layers`` decoder layers and the final norm; the embeddings and the output
  head stay frozen (a tied head *is* the embedding matrix; an untied one is frozen too, so the mode
  means the same parameter set for both kinds of model).

On a CPU, LoRA or top layers make a 135 M-parameter model trainable in seconds per step; keep
``full`` for a GPU (see ENVIRONMENT.md).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

from llm.models import LanguageModel
from rlbandit._checks import check_choice, check_instance, check_int, check_positive_float

__all__ = ["ADAPTATIONS", "Adaptation", "adapt", "trainable_parameter_count"]


@dataclass(frozen=True)
class Adaptation:
    """How a model is adapted for training (see the module docstring for the modes)."""

    mode: str = "full"
    lora_r: int = 16
    lora_alpha: float = 32.0
    lora_dropout: float = 0.0
    target_modules: str | tuple[str, ...] = "all-linear"  # peft's name for every linear layer but the head
    top_layers: int = 2

    def __post_init__(self):
        check_choice(self.mode, "mode", ADAPTATIONS, kind="adaptation mode")
        check_int(self.lora_r, "lora_r", allow_bool=False)
        check_positive_float(self.lora_alpha, "lora_alpha")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_dropout: must be in [0, 1), got {self.lora_dropout}")
        if isinstance(self.target_modules, list):  # a list is the natural spelling; keep the config hashable
            object.__setattr__(self, "target_modules", tuple(self.target_modules))
        modules = self.target_modules
        if isinstance(modules, str):
            if modules != "all-linear":
                raise ValueError(f"target_modules: expected 'all-linear' or a tuple of module names, got {modules!r}")
        elif not (isinstance(modules, tuple) and modules and all(isinstance(m, str) and m for m in modules)):
            raise ValueError(f"target_modules: expected 'all-linear' or a non-empty tuple of module names, "
                             f"got {modules!r}")
        check_int(self.top_layers, "top_layers", allow_bool=False)


def _full(model, adaptation: Adaptation):
    model.requires_grad_(True)
    return model


def _lora(model, adaptation: Adaptation):
    from peft import LoraConfig, get_peft_model

    modules = adaptation.target_modules
    config = LoraConfig(r=adaptation.lora_r, lora_alpha=adaptation.lora_alpha, lora_dropout=adaptation.lora_dropout,
                        target_modules=modules if isinstance(modules, str) else list(modules), bias="none",
                        task_type="CAUSAL_LM")
    try:
        return get_peft_model(model, config)
    except ValueError as error:  # e.g. a target module name the model does not have
        raise ValueError(f"target_modules: peft could not place LoRA adapters ({error})") from None


def _decoder_stack(model):
    """(decoder layers, final norm) of a Llama-style (``layers``, ``norm``) or GPT-2-style (``h``,
    ``ln_f``) decoder."""
    decoder = model.get_decoder()
    layers = getattr(decoder, "layers", None) or getattr(decoder, "h", None)
    norm = getattr(decoder, "norm", None) or getattr(decoder, "ln_f", None)
    if layers is None or norm is None:
        raise ValueError(f"mode: 'top' needs a decoder with a list of layers and a final norm; "
                         f"{type(decoder).__name__} has neither layers/h nor norm/ln_f")
    return layers, norm


def _top(model, adaptation: Adaptation):
    layers, norm = _decoder_stack(model)
    if adaptation.top_layers > len(layers):
        raise ValueError(f"top_layers: the model has {len(layers)} decoder layers, asked to train the top "
                         f"{adaptation.top_layers}")
    model.requires_grad_(False)
    for layer in layers[len(layers) - adaptation.top_layers:]:
        layer.requires_grad_(True)
    norm.requires_grad_(True)
    return model


# mode → function(model copy, adaptation) -> the model to train (the copy itself, or a wrapper of it)
ADAPTATIONS: dict[str, Callable] = {"full": _full, "lora": _lora, "top": _top}


def adapt(lm: LanguageModel, adaptation: Adaptation) -> LanguageModel:
    """A new LanguageModel (deep copy of ``lm.model``, same tokenizer) training only the weights of
    ``adaptation.mode``; ``lm`` itself is left unchanged. The training/eval mode is kept."""
    check_instance(lm, LanguageModel, "lm")
    check_instance(adaptation, Adaptation, "adaptation")
    training = lm.model.training
    model = ADAPTATIONS[adaptation.mode](copy.deepcopy(lm.model), adaptation)
    model.train(training)
    return LanguageModel(model, lm.tokenizer)


def trainable_parameter_count(model) -> int:
    """Number of weights with ``requires_grad`` (a tied weight counted once)."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
