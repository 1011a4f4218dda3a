"""Offline DPO with every loss of ``rlbandit.losses`` (β is DESIGN's η), on prepared pairs whose
reference log-probs are computed once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from llm.logprobs import make_batch, sequence_logprobs
from llm.packing import (
    packed_sequence_logprobs,
    packing_supported,
    shared_prompt_sequence_logprobs,
    shared_prompt_supported,
)
from llm.trainers._common import check_minibatch_fields, encode_examples, minibatch_steps, progress_bar, start_training
from rlbandit._checks import check_choice, check_positive_float

__all__ = ["DPOConfig", "DPOData", "dpo", "dpo_loss", "prepare_dpo_data", "reference_logprobs"]


@dataclass(frozen=True)
class DPOConfig:
    """Offline DPO with any loss of ``rlbandit.losses.LOSSES``; β is DESIGN's η."""

    beta: float = 0.1
    loss_type: str = "sigmoid"
    label_smoothing: float = 0.0
    steps: int = 100
    batch_size: int = 16
    lr: float = 1e-3
    warmup: int = 0
    max_grad_norm: float = 1.0
    packed: bool = True  # padding-free packed forward when the model class supports it (verified once)
    # each prompt run once for its chosen and rejected response (llm.packing.shared_prompt_sequence_logprobs)
    # when the model supports it (verified once); otherwise the packed or padded forward above
    share_prompt: bool = True
    seed: int = 0

    def __post_init__(self):
        from rlbandit.losses import LOSSES

        check_choice(self.loss_type, "loss_type", LOSSES)
        check_positive_float(self.beta, "beta")
        check_minibatch_fields(self)
        for name in ("packed", "share_prompt"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: expected True or False, got {getattr(self, name)!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing: must be in [0, 1), got {self.label_smoothing}")


@dataclass(frozen=True, eq=False)
class DPOData:
    """Tokenised preference pairs and their reference log-probs (computed once)."""

    prompt_ids: list
    chosen_ids: list
    rejected_ids: list
    ref_chosen: np.ndarray  # log π0(y_w|x), (n,)
    ref_rejected: np.ndarray
    weights: np.ndarray  # per-pair weight (soft labels / bootstrap counts), (n,)

    def __len__(self):
        return len(self.prompt_ids)


def reference_logprobs(ref_lm, prompt_ids, response_ids, batch_size=64) -> np.ndarray:
    import torch

    out = []
    pad = ref_lm.tokenizer.pad_token_id
    packed = packing_supported(ref_lm.model, pad)
    with torch.no_grad():
        for s in range(0, len(prompt_ids), batch_size):
            p, r = prompt_ids[s:s + batch_size], response_ids[s:s + batch_size]
            if packed:
                logp = packed_sequence_logprobs(ref_lm.model, p, r, pad, ref_lm.device)
            else:
                logp = sequence_logprobs(ref_lm.model, make_batch(p, r, pad, ref_lm.device))
            out.append(logp.double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def prepare_dpo_data(ref_lm, prompts, chosen, rejected, weights=None, *, responses_are_ids=False) -> DPOData:
    """Tokenise (x, y_w, y_l) (EOS appended to responses, as trl) and precompute log π0 once."""
    if not (len(prompts) == len(chosen) == len(rejected)) or not len(prompts):
        raise ValueError(f"chosen: prompts, chosen and rejected must be non-empty and of one length, got "
                         f"{len(prompts)}, {len(chosen)}, {len(rejected)}")
    p_ids, c_ids, r_ids = encode_examples(ref_lm, prompts, [chosen, rejected], ["chosen", "rejected"],
                                          are_ids=responses_are_ids)
    weights = np.ones(len(p_ids)) if weights is None else np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(p_ids),) or not np.all(np.isfinite(weights)) or (weights < 0).any():
        raise ValueError(f"weights: expected {len(p_ids)} finite weights >= 0")
    return DPOData(p_ids, c_ids, r_ids, reference_logprobs(ref_lm, p_ids, c_ids),
                   reference_logprobs(ref_lm, p_ids, r_ids), weights)


def dpo_loss(model, pad_token_id, prompt_ids, chosen_ids, rejected_ids, ref_chosen, ref_rejected,
             config: DPOConfig, weights=None, device=None):
    """Mean DPO-family loss of one minibatch: chosen and rejected in one forward pass.

    The forward, by preference: the shared-prompt layout (``config.share_prompt``; each prompt once
    per pair, :func:`llm.packing.shared_prompt_sequence_logprobs`), the packed one
    (``config.packed``; padding-free, prompt twice), the padded batch — each used only where the
    model was verified to give the padded batch's log-probs. All three give the same loss and
    gradients up to float32 summation order (tests/test_llm_dpo_shared_prompt.py).

    Returns (loss, chosen_logratios, rejected_logratios) (the last two detached, for logging).
    """
    import torch

    from rlbandit.losses import preference_loss

    n = len(prompt_ids)
    prompts, responses = list(prompt_ids) + list(prompt_ids), list(chosen_ids) + list(rejected_ids)
    if config.share_prompt and shared_prompt_supported(model, pad_token_id):
        logps = torch.cat(shared_prompt_sequence_logprobs(model, prompt_ids, chosen_ids, rejected_ids, pad_token_id,
                                                          device))
    elif config.packed and packing_supported(model, pad_token_id):
        logps = packed_sequence_logprobs(model, prompts, responses, pad_token_id, device)
    else:
        logps = sequence_logprobs(model, make_batch(prompts, responses, pad_token_id, device))
    lengths = torch.as_tensor([len(r) for r in responses], dtype=logps.dtype, device=logps.device)
    ref_c = torch.as_tensor(ref_chosen, dtype=logps.dtype, device=logps.device)
    ref_r = torch.as_tensor(ref_rejected, dtype=logps.dtype, device=logps.device)
    per = preference_loss(logps[:n], logps[n:], ref_c, ref_r, config.beta, config.loss_type, config.label_smoothing,
                          chosen_lengths=lengths[:n], rejected_lengths=lengths[n:])
    if weights is None:
        loss = per.mean()
    else:
        w = torch.as_tensor(weights, dtype=per.dtype, device=per.device)
        loss = (w * per).sum() / w.sum().clamp(min=1e-12)
    return loss, (logps[:n] - ref_c).detach(), (logps[n:] - ref_r).detach()


def dpo(policy, data: DPOData, config: DPOConfig, *, progress: bool = True, desc: str = "dpo",
        checkpoint_dir=None, callback=None) -> pd.DataFrame:
    """Offline DPO on prepared pairs (see :func:`prepare_dpo_data`); updates ``policy`` in place.

    ``callback(step)`` runs after each optimiser step with the policy in eval mode (e.g. a held-out
    evaluation at checkpoints); training then resumes with the same optimiser state.

    History columns: step, loss, reward_margin (β(ρ_w − ρ_l)), accuracy (share with ρ_w > ρ_l).
    """
    if not isinstance(data, DPOData):
        raise ValueError("data: expected DPOData from prepare_dpo_data(ref, prompts, chosen, rejected)")
    model = policy.model
    opt, sched, guard = start_training(model, config, checkpoint_dir)
    rows = []
    with progress_bar(config.steps, desc, progress) as bar:
        for step, idx in minibatch_steps(config, len(data)):
            loss, rho_w, rho_l = dpo_loss(model, policy.tokenizer.pad_token_id, [data.prompt_ids[i] for i in idx],
                                          [data.chosen_ids[i] for i in idx], [data.rejected_ids[i] for i in idx],
                                          data.ref_chosen[idx], data.ref_rejected[idx], config,
                                          weights=data.weights[idx], device=policy.device)
            guard.step(loss, opt, step, config.max_grad_norm, sched)
            margin = float(config.beta * (rho_w - rho_l).mean())
            rows.append({"step": step, "loss": loss.item(), "reward_margin": margin,
                         "accuracy": float((rho_w > rho_l).float().mean())})
            bar.set_postfix(loss=f"{rows[-1]['loss']:.3f}", margin=f"{margin:.2f}")
            bar.update()
            if callback is not None:
                model.eval()
                callback(step)
                model.train()
    model.eval()
    return pd.DataFrame(rows)


