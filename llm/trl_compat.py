"""trl 1.16's DPOTrainer on our models, offline: for the parity test and the speed benchmark.

trl is a test-only extra (``pip install rlbandit[trl]``); nothing else in ``llm`` imports it.
Offline use needs an explicit reference model (a deep copy), ``report_to=[]`` and the CPU;
trl patches ``model.forward``, so each trainer gets its own fresh copy of the model.
"""

from __future__ import annotations

import copy

__all__ = ["our_dpo_loss", "trl_dpo_loss", "trl_dpo_trainer"]


def trl_dpo_trainer(lm, prompts, chosen, rejected, *, ref_lm=None, beta: float, loss_type: str = "sigmoid",
                    label_smoothing: float = 0.0, batch_size: int = 8, max_steps: int = 1, lr: float = 1e-3,
                    output_dir: str, seed: int = 0, precompute_ref_log_probs: bool = False):
    """A trl ``DPOTrainer`` on a deep copy of ``lm.model``; the reference is a deep copy of ``ref_lm.model``
    (default: of ``lm.model``)."""
    import logging

    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    logging.getLogger("trl").setLevel(logging.ERROR)
    model = copy.deepcopy(lm.model)
    model.train()
    ref = copy.deepcopy((ref_lm or lm).model)
    ref.eval()
    dataset = Dataset.from_dict({"prompt": list(prompts), "chosen": list(chosen), "rejected": list(rejected)})
    args = DPOConfig(output_dir=output_dir, per_device_train_batch_size=batch_size, max_steps=max_steps,
                     learning_rate=lr, beta=beta, loss_type=[loss_type], label_smoothing=label_smoothing,
                     report_to=[], logging_steps=1, save_strategy="no", use_cpu=True, bf16=False,
                     disable_tqdm=True, seed=seed, dataloader_num_workers=0, max_length=None,
                     lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
                     precompute_ref_log_probs=precompute_ref_log_probs)
    return DPOTrainer(model=model, ref_model=ref, args=args, train_dataset=dataset, processing_class=lm.tokenizer)


def trl_dpo_loss(lm, prompts, chosen, rejected, *, ref_lm=None, beta: float, loss_type: str = "sigmoid",
                 label_smoothing: float = 0.0, output_dir: str) -> float:
    """trl's DPO loss on the whole dataset as one batch (so the sampler's order does not matter)."""
    import torch

    trainer = trl_dpo_trainer(lm, prompts, chosen, rejected, ref_lm=ref_lm, beta=beta, loss_type=loss_type,
                              label_smoothing=label_smoothing, batch_size=len(prompts), output_dir=output_dir)
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.eval()  # no dropout either way; eval keeps the comparison deterministic
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, batch)
    return float(loss)


def our_dpo_loss(lm, prompts, chosen, rejected, *, ref_lm=None, beta: float, loss_type: str = "sigmoid",
                 label_smoothing: float = 0.0) -> float:
    """The same loss through :func:`llm.trainers.dpo_loss` (reference = ``ref_lm``, default a frozen copy of ``lm``)."""
    import torch

    from llm.trainers import DPOConfig, dpo_loss, prepare_dpo_data

    ref = ref_lm or lm.frozen()
    data = prepare_dpo_data(ref, prompts, chosen, rejected)
    config = DPOConfig(beta=beta, loss_type=loss_type, label_smoothing=label_smoothing)
    with torch.no_grad():
        loss, _, _ = dpo_loss(lm.model, lm.tokenizer.pad_token_id, data.prompt_ids, data.chosen_ids, data.rejected_ids,
                              data.ref_chosen, data.ref_rejected, config, device=lm.device)
    return float(loss)
