"""Pure pieces of policy-gradient RLHF, shared by the bandit (:mod:`rlbandit.policy_gradient`) and the
language-model trainers (:mod:`llm.trainers.policy_gradient`): the PPO clipped surrogate, the
adaptive KL controller, the leave-one-out and group advantages, and the token aggregations of the
per-token loss (trl's ``loss_type`` names).

All functions take torch tensors (any float dtype) and return tensors of the same dtype; they
broadcast over leading axes and never loop over samples.
"""

from __future__ import annotations

import torch

from rlbandit._checks import integer, real_number, tensor_argument

__all__ = [
    "LOSS_AGGREGATIONS",
    "adaptive_kl_coefficient",
    "aggregate_token_loss",
    "clipped_surrogate",
    "group_advantages",
    "leave_one_out_advantages",
]


def clipped_surrogate(ratio: torch.Tensor, advantages: torch.Tensor, clip: float | None) -> torch.Tensor:
    """PPO's clipped surrogate (Schulman et al. 2017), to be *maximised*:

        s = min(ρ A, clip(ρ, 1 − ε, 1 + ε) A),      ρ = π/π_old;   ε = None gives s = ρ A

    (ρ A has the REINFORCE gradient A ∇log π at ρ = 1, i.e. on the rollout's own weights).
    ``ratio`` and ``advantages`` broadcast against each other; the result has their common shape.
    """
    ratio, advantages = _finite(ratio, "ratio"), _finite(advantages, "advantages")
    try:
        torch.broadcast_shapes(ratio.shape, advantages.shape)
    except RuntimeError:
        raise ValueError(f"ratio, advantages: shapes {tuple(ratio.shape)} and {tuple(advantages.shape)} do not "
                         "broadcast") from None
    if clip is None:
        return ratio * advantages
    clip = real_number(clip, "clip", minimum=0.0, strict=True)
    return torch.minimum(ratio * advantages, ratio.clamp(1.0 - clip, 1.0 + clip) * advantages)


def adaptive_kl_coefficient(eta, kl, target: float, horizon: float, limit: float = 0.2):
    """The adaptive KL controller of Ziegler et al. (2019, §2.2; trl's ``AdaptiveKLController``):

        η ← η (1 + clip(KL/target − 1, −limit, limit) / horizon)

    ``eta`` and ``kl`` are floats or tensors of one shape (one η per seed); returns the new η.
    """
    target = real_number(target, "target", minimum=0.0, strict=True)
    horizon = real_number(horizon, "horizon", minimum=0.0, strict=True)
    limit = real_number(limit, "limit", minimum=0.0)
    if isinstance(eta, torch.Tensor):
        if not (torch.isfinite(eta).all() and (eta > 0).all()):
            raise ValueError("eta: every KL coefficient must be finite and > 0")
    else:
        real_number(eta, "eta", minimum=0.0, strict=True)
    if isinstance(kl, torch.Tensor):
        kl = _finite(kl, "kl")
    else:
        kl = real_number(kl, "kl")  # an estimate: may be negative, never NaN or infinite
    if isinstance(kl, torch.Tensor):
        error = torch.clamp(kl / target - 1.0, -limit, limit)
    else:
        error = min(max(float(kl) / target - 1.0, -limit), limit)
    return eta * (1.0 + error / horizon)


def leave_one_out_advantages(returns: torch.Tensor) -> torch.Tensor:
    """RLOO (Kool et al. 2019; Ahmadian et al. 2024): within each group (last axis, G ≥ 2 samples
    of one prompt) A_i = R_i − (1/(G−1)) Σ_{j≠i} R_j. Shape (..., G) → (..., G); with G = 1 the
    baseline is 0 and A = R."""
    returns = _finite(returns, "returns", nonempty=True)
    g = returns.shape[-1]
    if g == 1:
        return returns.clone()
    return returns - (returns.sum(-1, keepdim=True) - returns) / (g - 1)


#: group advantage scale → divides the centred returns (GRPO) or not (Dr. GRPO); trl's ``scale_rewards``.
_SCALES = ("group", "batch", "none")


def group_advantages(returns: torch.Tensor, *, scale: str = "group", eps: float = 1e-4) -> torch.Tensor:
    """GRPO's group-relative advantages (Shao et al. 2024, Eq. 3; trl's GRPOTrainer):

        A_i = (R_i − mean_group R) / (std + ε)

    with the unbiased standard deviation of the group (``scale="group"``), of the whole batch
    (``"batch"``), or no division at all (``"none"``: Dr. GRPO, Liu et al. 2025). ``returns`` has
    shape (..., G), G samples per prompt on the last axis; ε = 1e-4 as trl.
    """
    if scale not in _SCALES:
        raise ValueError(f"scale: expected one of {_SCALES}, got {scale!r}")
    returns = _finite(returns, "returns", nonempty=True)
    eps = real_number(eps, "eps", minimum=0.0)
    centred = returns - returns.mean(-1, keepdim=True)
    if scale == "none":
        return centred
    if scale == "group":
        std = returns.std(-1, keepdim=True) if returns.shape[-1] > 1 else torch.zeros_like(returns)
    else:
        std = returns.std() if returns.numel() > 1 else torch.zeros((), dtype=returns.dtype)
    return centred / (std + eps)


def _finite(value, name: str, nonempty: bool = False) -> torch.Tensor:
    """A real floating tensor without NaN or ±inf (and with at least one entry when ``nonempty``)."""
    value = tensor_argument(value, name)
    if not torch.isfinite(value).all():
        raise ValueError(f"{name}: contains NaN or inf; every entry must be finite")
    if nonempty and (value.ndim == 0 or value.shape[-1] == 0):
        raise ValueError(f"{name}: expected shape (..., G) with G >= 1, got {tuple(value.shape)}")
    return value


def _aggregate_sequence(per_token, mask, max_length):
    return (per_token * mask).sum(-1).mean()


def _aggregate_grpo(per_token, mask, max_length):
    return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()


def _aggregate_tokens(per_token, mask, max_length):
    return (per_token * mask).sum() / mask.sum().clamp(min=1.0)


def _aggregate_dr_grpo(per_token, mask, max_length):
    return (per_token * mask).sum() / (per_token.shape[0] * max_length)


#: loss_type → aggregation of a per-token loss ℓ (B, T) under the response mask m (B, T):
#:  ``sequence``: (1/B) Σ_i Σ_t m ℓ — the sequence-level objective (sum of token terms = the sequence's
#:  log-ratio and KL), whose gradient is the REINFORCE gradient of E[R] − η KL(π‖π0) of whole responses;
#:  ``grpo``: (1/B) Σ_i (Σ_t m ℓ / Σ_t m) — token mean per sequence (DeepSeekMath; length-biased);
#:  ``bnpo`` / ``dapo``: Σ m ℓ / Σ m — token mean over the batch (one process: the same);
#:  ``dr_grpo``: Σ m ℓ / (B · T_max) — a constant normaliser (Liu et al. 2025).
LOSS_AGGREGATIONS = {
    "sequence": _aggregate_sequence,
    "grpo": _aggregate_grpo,
    "bnpo": _aggregate_tokens,
    "dapo": _aggregate_tokens,
    "dr_grpo": _aggregate_dr_grpo,
}


def aggregate_token_loss(per_token: torch.Tensor, mask: torch.Tensor, loss_type: str,
                         max_length: int | None = None) -> torch.Tensor:
    """Reduce a per-token loss (B, T) to a scalar by ``loss_type`` (:data:`LOSS_AGGREGATIONS`);
    ``max_length`` is dr_grpo's T_max (default: T, the padded response length)."""
    if loss_type not in LOSS_AGGREGATIONS:
        raise ValueError(f"loss_type: expected one of {sorted(LOSS_AGGREGATIONS)}, got {loss_type!r}")
    per_token, mask = _finite(per_token, "per_token"), _finite(mask, "mask")
    if (mask < 0).any():
        raise ValueError("mask: a response mask holds weights >= 0 (1 = token, 0 = padding)")
    if max_length is not None:
        max_length = integer(max_length, "max_length")
    if per_token.ndim != 2 or mask.shape != per_token.shape:
        raise ValueError(f"mask: per_token and mask must share one (B, T) shape, got {tuple(per_token.shape)} and "
                         f"{tuple(mask.shape)}")
    m = mask.to(per_token.dtype)
    return LOSS_AGGREGATIONS[loss_type](per_token, m, per_token.shape[1] if max_length is None else max_length)
