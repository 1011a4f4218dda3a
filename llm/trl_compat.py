"""trl 1.16's DPOTrainer and GRPOTrainer on our models, offline: for the parity tests and the speed benchmark.

trl is a test-only extra (``pip install rlbandit[trl]``); nothing else in ``llm`` imports it.
Offline use needs an explicit reference model (a deep copy) or precomputed reference log-probs,
``report_to=[]`` and the CPU; trl patches ``model.forward``, so each trainer gets its own deep
copy of the model.

The helpers here only *build* trl objects and translate batches between the two layouts; the
comparisons themselves live in ``tests/test_llm_parity.py`` and ``benchmarks/speed_llm.py``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

__all__ = ["gradients", "relative_errors", "trl_dpo_trainer", "trl_grpo_inputs", "trl_grpo_trainer",
           "trl_logged_losses", "whole_dataset_batch"]


def _quiet():
    import logging

    logging.getLogger("trl").setLevel(logging.ERROR)


def _is_peft(model) -> bool:
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


def trl_dpo_trainer(lm, prompts, chosen, rejected, *, ref_lm=None, beta: float, loss_type: str = "sigmoid",
                    label_smoothing: float = 0.0, batch_size: int = 8, max_steps: int = 1, lr: float = 1e-3,
                    output_dir: str, seed: int = 0, precompute_ref_log_probs: bool = False,
                    max_grad_norm: float = 1.0, lr_factors: Sequence[float] | None = None,
                    padding_free: bool = False, activation_checkpointing: bool = False):
    """A trl ``DPOTrainer`` on a deep copy of ``lm.model``.

    The reference is a deep copy of ``ref_lm.model`` (default: of ``lm.model``); for a peft
    (LoRA) policy with no ``ref_lm`` it is the policy with its adapters disabled (trl's own rule).

    Optimiser: AdamW (β = (0.9, 0.999), ε = 1e-8, no weight decay), gradient clipping at
    ``max_grad_norm`` and a constant learning rate with no warm-up — trl's own optimiser
    (transformers' default, fused AdamW on torch ≥ 2.8) and scheduler. With ``lr_factors`` the
    trainer is handed a ``torch.optim.AdamW`` whose step-``s`` learning rate is
    ``lr · lr_factors[s]`` instead (to replay the schedule another trainer used, step for step).

    ``activation_checkpointing`` (transformers 5's name for gradient checkpointing) defaults to
    False, unlike trl's ``gradient_checkpointing=True``: it only trades compute for memory, and
    timing it would compare a setting, not the implementations.
    ``padding_free`` is passed through; trl 1.16 disables it with a warning (see the benchmark).
    """
    import torch
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    _quiet()
    model = copy.deepcopy(lm.model)
    model.train()
    if ref_lm is None and _is_peft(model):
        ref = None  # trl disables the adapters for the reference
    else:
        ref = copy.deepcopy((ref_lm or lm).model)
        ref.eval()
    optimizers = (None, None)
    if lr_factors is not None:
        factors = [float(f) for f in lr_factors]
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: factors[min(s, len(factors) - 1)])
        optimizers = (opt, sched)
    dataset = Dataset.from_dict({"prompt": list(prompts), "chosen": list(chosen), "rejected": list(rejected)})
    args = DPOConfig(output_dir=output_dir, per_device_train_batch_size=batch_size, max_steps=max_steps,
                     learning_rate=lr, beta=beta, loss_type=[loss_type], label_smoothing=label_smoothing,
                     report_to=[], logging_steps=1, save_strategy="no", use_cpu=True, bf16=False,
                     disable_tqdm=True, seed=seed, dataloader_num_workers=0, max_length=None,
                     lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_grad_norm=max_grad_norm,
                     precompute_ref_log_probs=precompute_ref_log_probs, padding_free=padding_free,
                     activation_checkpointing=activation_checkpointing)
    return DPOTrainer(model=model, ref_model=ref, args=args, train_dataset=dataset, processing_class=lm.tokenizer,
                      optimizers=optimizers)


def whole_dataset_batch(trainer):
    """The trainer's whole training set as one collated batch (its ``per_device_train_batch_size``
    must be the dataset size, so the sampler's order cannot change which pairs are in it)."""
    n = len(trainer.train_dataset)
    if trainer.args.per_device_train_batch_size != n:
        raise ValueError(f"trainer: per_device_train_batch_size is {trainer.args.per_device_train_batch_size}, "
                         f"expected the dataset size {n}")
    return next(iter(trainer.get_train_dataloader()))


def trl_logged_losses(trainer) -> list[float]:
    """The per-step training losses trl logged (``logging_steps=1``), in step order."""
    return [float(row["loss"]) for row in trainer.state.log_history if "loss" in row]


def trl_grpo_trainer(lm, prompts, reward_fn: Callable, *, group_size: int, max_completion_length: int,
                     clip: float, eta: float, loss_type: str, scale_rewards: str = "group",
                     use_bias_correction_kl: bool = True, output_dir: str, seed: int = 0):
    """A trl ``GRPOTrainer`` on a deep copy of ``lm.model`` (generation with transformers'
    ``generate``, no vLLM), ``per_device_train_batch_size`` = ``len(prompts) · group_size``.

    ``eta`` is trl's β (the per-token k3 KL coefficient). trl builds its reference model for β ≠ 0
    by reloading the policy from its hub path, which an in-memory model does not have; so the
    trainer is built with β = 0 and ``trainer.beta`` is set afterwards — ``_compute_loss`` only
    reads ``self.beta`` and ``inputs["ref_per_token_logps"]`` (supplied by :func:`trl_grpo_inputs`).

    ``use_bias_correction_kl`` is trl 1.16's option (default True) that multiplies the per-token KL by
    the differentiable ratio π/π_old; False gives the KL term of the GRPO paper (and of
    ``llm.trainers.pg_loss``).
    """
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    _quiet()
    model = copy.deepcopy(lm.model)
    args = GRPOConfig(output_dir=output_dir, per_device_train_batch_size=len(prompts) * group_size,
                      num_generations=group_size, max_completion_length=max_completion_length, beta=0.0,
                      epsilon=clip, loss_type=loss_type, scale_rewards=scale_rewards, report_to=[], use_cpu=True,
                      bf16=False, disable_tqdm=True, seed=seed, logging_steps=1, save_strategy="no",
                      activation_checkpointing=False, use_bias_correction_kl=use_bias_correction_kl)
    trainer = GRPOTrainer(model=model, reward_funcs=reward_fn, args=args,
                          train_dataset=Dataset.from_dict({"prompt": list(prompts)}), processing_class=lm.tokenizer)
    trainer.beta = float(eta)
    return trainer


def trl_grpo_inputs(batch, advantages, old_tok, ref_tok) -> dict:
    """A :class:`llm.generation.Batch` (left-padded prompts | right-padded responses — trl's GRPO
    layout too) as the inputs dict of trl 1.16's ``GRPOTrainer._compute_loss``.

    Args:
        advantages: (B,) or (B, 1) sequence advantages; old_tok, ref_tok: (B, R) per-token log-probs
            under the rollout and reference policies.
    """
    p = batch.prompt_length
    adv = advantages.reshape(-1)
    mask = batch.response_mask
    return {"prompt_ids": batch.input_ids[:, :p], "prompt_mask": batch.attention_mask[:, :p],
            "completion_ids": batch.input_ids[:, p:], "completion_mask": mask,
            "advantages": adv, "old_per_token_logps": old_tok, "ref_per_token_logps": ref_tok,
            "num_items_in_batch": mask.sum()}


def gradients(model) -> dict:
    """name → a detached copy of the parameter's gradient (parameters without one are left out)."""
    return {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}


def relative_errors(ours: dict, theirs: dict) -> dict:
    """name → ‖ours − theirs‖ / ‖theirs‖ per tensor (the absolute norm where ‖theirs‖ = 0)."""
    if ours.keys() != theirs.keys():
        raise ValueError(f"theirs: different tensors: {sorted(set(ours) ^ set(theirs))}")
    out = {}
    for name, b in theirs.items():
        diff = float((ours[name].double() - b.double()).norm())
        scale = float(b.double().norm())
        out[name] = diff / scale if scale > 0 else diff
    return out
