"""Direct-alignment (DPO-family) losses and the k1/k2/k3 KL estimators, in torch.

Every loss is a small pure function of the four sequence log-probabilities of a preference
pair (chosen = y_w, rejected = y_l) under the trained policy π_θ and the frozen reference π0,
and returns one loss per example: any batch shape in, the same shape out (no reduction).
Shared notation (trl's):

    chosen_logratios   ρ_w = log π_θ(y_w|x) − log π0(y_w|x)
    rejected_logratios ρ_l = log π_θ(y_l|x) − log π0(y_l|x)
    logits             Δ   = ρ_w − ρ_l          (the implicit reward margin divided by β)

``preference_loss(..., loss_type=NAME)`` dispatches through the registry ``LOSSES``; each entry's
docstring cites the paper and the formula, and matches trl 1.16 ``DPOTrainer._compute_loss``
(``f_divergence_type="reverse_kl"``) where trl has the loss. Optional ``chosen_lengths`` /
``rejected_lengths`` (token counts) give the length-normalised forms trl uses for ``ipo`` and
``sigmoid_norm``; in the bandit world (one action = one "token") they default to 1.

KL estimators (Schulman 2020, "Approximating KL divergence", http://joschu.net/blog/kl-approx.html),
for a sample a ∼ π with log-ratio log r = log π0(a) − log π(a):

    k1 = −log r                 unbiased for KL(π‖π0), high variance, can be negative
    k2 = ½ (log r)²             biased, low variance; its gradient is the gradient of KL (on-policy)
    k3 = (r − 1) − log r        unbiased, ≥ 0, low variance (used by GRPO)
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from rlbandit._checks import real_number, tensor_argument

__all__ = ["LOSSES", "preference_loss", "kl_estimate", "KL_ESTIMATORS", "PairTerms"]


class PairTerms:
    """The quantities every loss is written in (all tensors of the same batch shape).

    Attributes: ``chosen_logps``, ``rejected_logps``, ``ref_chosen_logps``, ``ref_rejected_logps``
    (the inputs), ``chosen_logratios`` ρ_w, ``rejected_logratios`` ρ_l, ``logits`` Δ = ρ_w − ρ_l,
    ``chosen_lengths`` / ``rejected_lengths`` (token counts, ≥ 1), ``beta`` β,
    ``label_smoothing`` ε, ``discopop_tau`` τ.
    """

    __slots__ = ("chosen_logps", "rejected_logps", "ref_chosen_logps", "ref_rejected_logps",
                 "chosen_logratios", "rejected_logratios", "logits", "chosen_lengths", "rejected_lengths",
                 "beta", "label_smoothing", "discopop_tau")

    def __init__(self, chosen_logps, rejected_logps, ref_chosen_logps, ref_rejected_logps,
                 chosen_lengths, rejected_lengths, beta, label_smoothing, discopop_tau):
        self.chosen_logps = chosen_logps
        self.rejected_logps = rejected_logps
        self.ref_chosen_logps = ref_chosen_logps
        self.ref_rejected_logps = ref_rejected_logps
        self.chosen_logratios = chosen_logps - ref_chosen_logps
        self.rejected_logratios = rejected_logps - ref_rejected_logps
        self.logits = self.chosen_logratios - self.rejected_logratios
        self.chosen_lengths = chosen_lengths
        self.rejected_lengths = rejected_lengths
        self.beta = beta
        self.label_smoothing = label_smoothing
        self.discopop_tau = discopop_tau


def _sigmoid(t: PairTerms) -> torch.Tensor:
    """DPO (Rafailov et al. 2023, arXiv:2305.18290, Eq. 7), with conservative label smoothing
    (cDPO, Mitchell 2023, "A note on DPO with noisy preferences"; trl ≤ 0.x ``sigmoid``):

        ℓ = −(1 − ε) log σ(βΔ) − ε log σ(−βΔ).

    ε = 0 is trl 1.16's ``sigmoid``. Its population minimiser over a log-linear / tabular class is
    the Gibbs policy of the Bradley–Terry MLE (the "secretly a reward model" identity).
    """
    return _smoothed(_scale(t.beta, t.logits), t.label_smoothing)


def _scale(beta: float, x: torch.Tensor) -> torch.Tensor:
    """β·x with β·0 = 0 even when β overflows the tensor's dtype (1e300 in float32 is inf, inf·0 NaN);
    elsewhere exactly β·x, gradient included."""
    z = beta * x
    return torch.where(torch.isnan(z) & (x == 0), torch.zeros_like(z), z)


def _smoothed(z: torch.Tensor, eps: float) -> torch.Tensor:
    """−(1 − ε) log σ(z) − ε log σ(−z), with the ε term absent (not 0 · ∞) when ε = 0."""
    loss = -(1.0 - eps) * F.logsigmoid(z)
    return loss - eps * F.logsigmoid(-z) if eps > 0 else loss


def _robust(t: PairTerms) -> torch.Tensor:
    """Robust DPO (Chowdhury et al. 2024, "Provably robust DPO", arXiv:2403.00409, Eq. 8):
    the unbiased loss under labels flipped with probability ε < ½,

        ℓ = [ −(1 − ε) log σ(βΔ) + ε log σ(−βΔ) ] / (1 − 2ε).      (trl ``robust``)
    """
    z = _scale(t.beta, t.logits)
    eps = t.label_smoothing
    loss = -(1.0 - eps) * F.logsigmoid(z)
    if eps > 0:  # absent, not 0 · (−∞), when ε = 0
        loss = loss + eps * F.logsigmoid(-z)
    return loss / (1.0 - 2.0 * eps)


def _hinge(t: PairTerms) -> torch.Tensor:
    """SLiC-HF hinge (Zhao et al. 2023, arXiv:2305.10425, Eq. 2 with δ = 1/β):

        ℓ = max(0, 1 − βΔ).      (trl ``hinge``)
    """
    return torch.relu(1.0 - _scale(t.beta, t.logits))


def _ipo(t: PairTerms) -> torch.Tensor:
    """IPO (Azar et al. 2023, "A general theoretical paradigm…", arXiv:2310.12036, Eq. 17; τ = β):

        ℓ = (Δ̄ − 1/(2β))²,   Δ̄ = ρ_w/|y_w| − ρ_l/|y_l|

    (trl ``ipo`` normalises each log-ratio by its completion length; length 1 gives the paper's
    Δ). Its minimiser is the regularised solution with margin Δ = 1/(2β), never a deterministic
    policy.
    """
    delta = t.chosen_logratios / t.chosen_lengths - t.rejected_logratios / t.rejected_lengths
    return (delta - 1.0 / (2.0 * t.beta)) ** 2


def _exo_pair(t: PairTerms) -> torch.Tensor:
    """EXO-pref (Ji et al. 2024, "Towards efficient exact optimization…", arXiv:2402.00856, Eq. 16),
    K = 2: KL(p_θ ‖ p_ε) between p_θ = softmax(β ρ) over {chosen, rejected} and p_ε = (1 − ε, ε):

        ℓ = σ(βΔ)(log σ(βΔ) − log(1 − ε)) + σ(−βΔ)(log σ(−βΔ) − log ε).   (trl ``exo_pair``)

    Needs ε > 0 (the paper and trl recommend 1e-3).
    """
    z = _scale(t.beta, t.logits)
    eps = t.label_smoothing
    p, q = torch.sigmoid(z), torch.sigmoid(-z)
    # a side of zero probability contributes 0 (p log p → 0), not 0 · (−∞)
    return (torch.where(p > 0, p * (F.logsigmoid(z) - math.log1p(-eps)), 0.0)
            + torch.where(q > 0, q * (F.logsigmoid(-z) - math.log(eps)), 0.0))


def _nca_pair(t: PairTerms) -> torch.Tensor:
    """NCA (Chen et al. 2024, "Noise contrastive alignment…", arXiv:2402.05369, Eq. 8), K = 2:

        ℓ = −log σ(βρ_w) − ½ log σ(−βρ_w) − ½ log σ(−βρ_l).      (trl ``nca_pair``)
    """
    zw = _scale(t.beta, t.chosen_logratios)
    zl = _scale(t.beta, t.rejected_logratios)
    return -F.logsigmoid(zw) - 0.5 * F.logsigmoid(-zw) - 0.5 * F.logsigmoid(-zl)


def _bco_pair(t: PairTerms) -> torch.Tensor:
    """BCO on pairs (Jung et al. 2024, "Binary classifier optimization…", arXiv:2404.04656; trl's
    paired form without the running reward shift δ):

        ℓ = −log σ(βρ_w) − log σ(−βρ_l).      (trl ``bco_pair``)
    """
    return -F.logsigmoid(_scale(t.beta, t.chosen_logratios)) - F.logsigmoid(-_scale(t.beta, t.rejected_logratios))


def _sppo_hard(t: PairTerms) -> torch.Tensor:
    """SPPO with hard win probabilities (Wu et al. 2024, "Self-play preference optimization",
    arXiv:2405.00675, Eq. 4.7 with P(y_w ≻ π) = 1, P(y_l ≻ π) = 0, η = 1/β):

        ℓ = (ρ_w − 1/(2β))² + (ρ_l + 1/(2β))².      (trl ``sppo_hard``)
    """
    half = 0.5 / t.beta
    return (t.chosen_logratios - half) ** 2 + (t.rejected_logratios + half) ** 2


def _aot_sorted(a: torch.Tensor, b: torch.Tensor, t: PairTerms) -> torch.Tensor:
    a, b = torch.sort(a, dim=-1).values, torch.sort(b, dim=-1).values
    # equal order statistics (both −inf: zero-mass responses at the same quantile) differ by 0, not NaN
    delta = torch.where(a == b, torch.zeros_like(a), a - b)
    return _smoothed(_scale(t.beta, delta), t.label_smoothing)


def _aot(t: PairTerms) -> torch.Tensor:
    """AOT, paired (Melnyk et al. 2024, "Distributional preference alignment of LLMs via optimal
    transport", arXiv:2406.05882): first-order stochastic dominance of the policy's log-ratio
    margins over the reference's, via sorting across the batch (last axis):

        δ = sort(log π_θ(y_w) − log π_θ(y_l)) − sort(log π0(y_w) − log π0(y_l)),
        ℓ = −(1 − ε) log σ(βδ) − ε log σ(−βδ).      (trl ``aot``)

    Not per-pair: the i-th loss belongs to the i-th order statistic, so the batch is the last axis.
    """
    return _aot_sorted(t.chosen_logps - t.rejected_logps, t.ref_chosen_logps - t.ref_rejected_logps, t)


def _aot_pair(t: PairTerms) -> torch.Tensor:
    """AOT, unpaired (Melnyk et al. 2024, arXiv:2406.05882): sorted chosen log-ratios against sorted
    rejected log-ratios across the batch (last axis),

        δ = sort(ρ_w) − sort(ρ_l),   ℓ = −(1 − ε) log σ(βδ) − ε log σ(−βδ).

    trl ≤ 0.x ``aot_pair``; trl 1.16 ``aot_unpaired``.
    """
    return _aot_sorted(t.chosen_logratios, t.rejected_logratios, t)


def _apo_zero(t: PairTerms) -> torch.Tensor:
    """APO-zero (D'Oosterlinck et al. 2024, "Anchored preference optimization…", arXiv:2408.06266,
    Eq. 7): push the chosen likelihood up and the rejected down, each anchored at the reference,

        ℓ = (1 − σ(βρ_w)) + σ(βρ_l).      (trl ``apo_zero``)
    """
    return (1.0 - torch.sigmoid(_scale(t.beta, t.chosen_logratios))) + torch.sigmoid(_scale(t.beta, t.rejected_logratios))


def _apo_down(t: PairTerms) -> torch.Tensor:
    """APO-down (D'Oosterlinck et al. 2024, arXiv:2408.06266, Eq. 8): push both likelihoods down,
    the rejected one more,

        ℓ = σ(βρ_w) + (1 − σ(βΔ)).      (trl ``apo_down``)
    """
    return torch.sigmoid(_scale(t.beta, t.chosen_logratios)) + (1.0 - torch.sigmoid(_scale(t.beta, t.logits)))


def _discopop(t: PairTerms) -> torch.Tensor:
    """DiscoPOP / log-ratio modulated loss (Chris Lu et al. 2024, "Discovering preference
    optimization algorithms with and for LLMs", arXiv:2406.08414, Eq. 5), τ = 0.05 by default:

        z = βΔ,  w = σ(z/τ),  ℓ = (1 − w)(−log σ(z)) + w exp(−z).      (trl ``discopop``)

    Computed in log space — w·exp(−z) = exp(log σ(z/τ) − z) — so a large negative margin gives the
    finite (τ < 1) limit instead of 0 · ∞ (trl's form is NaN from z ≈ −89 in float32).
    """
    z = _scale(t.beta, t.logits)
    tau = t.discopop_tau
    log_second = F.logsigmoid(z / tau) - z
    # z = −∞ (the chosen response has no mass): log σ(z/τ) − z → z(1/τ − 1)
    limit = -math.inf if tau < 1.0 else (math.inf if tau > 1.0 else 0.0)
    log_second = torch.where(torch.isneginf(z), torch.full_like(z, limit), log_second)
    first = torch.sigmoid(-z / tau) * -F.logsigmoid(z)  # not F.softplus: it returns x itself above 20
    first = torch.where(torch.isposinf(z), torch.zeros_like(z), first)  # σ(−∞)·softplus(−∞) = 0 · 0
    return first + torch.exp(log_second)


def _sigmoid_norm(t: PairTerms) -> torch.Tensor:
    """Length-normalised DPO (trl 1.16 ``sigmoid_norm``; the average-log-prob margin of
    SimPO/R-DPO-style objectives, Meng et al. 2024 arXiv:2405.14734 without the margin γ):

        ℓ = −log σ(β (ρ_w/|y_w| − ρ_l/|y_l|)).
    """
    delta = t.chosen_logratios / t.chosen_lengths - t.rejected_logratios / t.rejected_lengths
    return -F.logsigmoid(_scale(t.beta, delta))


#: loss_type → per-example loss of a :class:`PairTerms`.
LOSSES: dict[str, Callable[[PairTerms], torch.Tensor]] = {
    "sigmoid": _sigmoid,
    "robust": _robust,
    "hinge": _hinge,
    "ipo": _ipo,
    "exo_pair": _exo_pair,
    "nca_pair": _nca_pair,
    "bco_pair": _bco_pair,
    "sppo_hard": _sppo_hard,
    "aot": _aot,
    "aot_pair": _aot_pair,
    "aot_unpaired": _aot_pair,
    "apo_zero": _apo_zero,
    "apo_down": _apo_down,
    "discopop": _discopop,
    "sigmoid_norm": _sigmoid_norm,
}

#: loss types whose label_smoothing must lie in [0, ½) (ε is a flip rate) or in (0, 1) (exo_pair).
_FLIP_RATE_LOSSES = {"sigmoid", "robust", "aot", "aot_pair", "aot_unpaired"}


def _as_lengths(lengths, like: torch.Tensor, name: str) -> torch.Tensor | float:
    if lengths is None:
        return 1.0
    lengths = torch.as_tensor(lengths, dtype=like.dtype, device=like.device)
    if not torch.isfinite(lengths).all() or (lengths < 1).any():
        raise ValueError(f"{name}: token counts must be finite and >= 1")
    return lengths


#: Largest log-probability accepted (float rounding of a certain response's log-prob near 0).
_LOGP_TOL = 1e-5


def preference_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps,
                    beta: float, loss_type: str = "sigmoid", label_smoothing: float = 0.0, *,
                    chosen_lengths=None, rejected_lengths=None, discopop_tau: float = 0.05) -> torch.Tensor:
    """Per-example direct-alignment loss of type ``loss_type`` (see :data:`LOSSES`).

    Args:
        policy_chosen_logps, policy_rejected_logps: log π_θ(y_w|x), log π_θ(y_l|x); tensors of one
            batch shape (...,) — gradients flow through these.
        ref_chosen_logps, ref_rejected_logps: log π0(y_w|x), log π0(y_l|x), broadcastable to it.
        beta: β > 0 (the KL coefficient η of DESIGN; IPO's τ).
        loss_type: a key of :data:`LOSSES`.
        label_smoothing: ε — the assumed label-flip rate for sigmoid (cDPO), robust, aot*
            (0 ≤ ε < ½), the target's loser mass for exo_pair (0 < ε < 1); ignored otherwise.
        chosen_lengths, rejected_lengths: completion token counts for the length-normalised
            ``ipo`` and ``sigmoid_norm``; 1 when omitted.
        discopop_tau: τ > 0 of ``discopop``.

    Returns:
        the per-example losses, the broadcast batch shape (``aot*`` sort along the last axis).
    """
    if loss_type not in LOSSES:
        raise ValueError(f"loss_type: unknown {loss_type!r}; expected one of {sorted(LOSSES)}")
    beta = real_number(beta, "beta", minimum=0.0, strict=True)
    eps = real_number(label_smoothing, "label_smoothing")
    if loss_type == "exo_pair":
        if not 0.0 < eps < 1.0:
            raise ValueError(f"label_smoothing: exo_pair needs 0 < label_smoothing < 1 (EXO recommends 1e-3), got {eps}")
    elif loss_type in _FLIP_RATE_LOSSES and not 0.0 <= eps < 0.5:
        raise ValueError(f"label_smoothing: must lie in [0, 0.5) for {loss_type!r}, got {eps}")
    discopop_tau = real_number(discopop_tau, "discopop_tau", minimum=0.0, strict=True)
    tensors = []
    for name, value in (("policy_chosen_logps", policy_chosen_logps), ("policy_rejected_logps", policy_rejected_logps),
                        ("ref_chosen_logps", ref_chosen_logps), ("ref_rejected_logps", ref_rejected_logps)):
        value = tensor_argument(value, name)
        if torch.isnan(value).any():
            raise ValueError(f"{name}: contains NaN")
        if (value > _LOGP_TOL).any():
            raise ValueError(f"{name}: log-probabilities must be <= 0 (got {float(value.max()):.3g})")
        tensors.append(value)
    try:
        shape = torch.broadcast_shapes(*(v.shape for v in tensors))
    except RuntimeError:
        raise ValueError("policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps: "
                         f"shapes {[tuple(v.shape) for v in tensors]} do not broadcast") from None
    for policy, ref, side in ((tensors[0], tensors[2], "chosen"), (tensors[1], tensors[3], "rejected")):
        if (torch.isneginf(policy) & torch.isneginf(ref)).any():
            raise ValueError(f"policy_{side}_logps, ref_{side}_logps: both −inf for one example (a response "
                             "neither policy can produce; its log-ratio is undefined)")
    if loss_type in {"aot", "aot_pair", "aot_unpaired"} and len(shape) == 0:
        raise ValueError("policy_chosen_logps: aot losses sort over a batch; expected at least one axis")
    terms = PairTerms(*tensors, _as_lengths(chosen_lengths, tensors[0], "chosen_lengths"),
                      _as_lengths(rejected_lengths, tensors[0], "rejected_lengths"), beta, eps, float(discopop_tau))
    losses = LOSSES[loss_type](terms)
    return losses if losses.shape == shape else losses.expand(shape)


# ----------------------------------------------------------------------------------------------
# KL estimators


def _k1(log_ratio: torch.Tensor) -> torch.Tensor:
    """k1 = −log r = log π(a) − log π0(a)."""
    return -log_ratio


def _k2(log_ratio: torch.Tensor) -> torch.Tensor:
    """k2 = ½ (log r)²."""
    return 0.5 * log_ratio ** 2


def _k3(log_ratio: torch.Tensor) -> torch.Tensor:
    """k3 = (r − 1) − log r = expm1(log r) − log r (≥ 0, exact for tiny log r)."""
    return torch.expm1(log_ratio) - log_ratio


#: kind → estimator of the log-ratio log r = log π0(a) − log π(a).
KL_ESTIMATORS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"k1": _k1, "k2": _k2, "k3": _k3}


def kl_estimate(logprobs, ref_logprobs, kind: str = "k1") -> torch.Tensor:
    """Per-sample estimate of KL(π ‖ π0) from a ∼ π (Schulman 2020).

    Args:
        logprobs: log π(a) of sampled actions/sequences, any shape (gradients flow through it).
        ref_logprobs: log π0(a), broadcastable to ``logprobs``.
        kind: ``"k1"`` (log π − log π0), ``"k2"`` (½(log π0 − log π)²) or ``"k3"``
            ((π0/π − 1) − log(π0/π)).

    Returns:
        per-sample estimates, the broadcast shape. E_π[k1] = E_π[k3] = KL(π‖π0); E_π[k2] ≥ 0 is a
        second-order approximation of it; ∇_θ E[k2] (with the samples held fixed) is the gradient of
        KL(π_θ‖π0), which is why "k2 in the loss" regularises exactly while "k1 in the loss" does not.
    """
    if kind not in KL_ESTIMATORS:
        raise ValueError(f"kind: unknown KL estimator {kind!r}; expected one of {sorted(KL_ESTIMATORS)}")
    logprobs = tensor_argument(logprobs, "logprobs")
    ref_logprobs = tensor_argument(ref_logprobs, "ref_logprobs").to(logprobs.dtype)
    for name, value in (("logprobs", logprobs), ("ref_logprobs", ref_logprobs)):
        if torch.isnan(value).any():
            raise ValueError(f"{name}: contains NaN")
        if (value > _LOGP_TOL).any():
            raise ValueError(f"{name}: log-probabilities must be <= 0 (got {float(value.max()):.3g})")
    if torch.isneginf(logprobs).any():
        raise ValueError("logprobs: contains −inf; a sampled action has mass under π (only π0 may give it none)")
    try:
        torch.broadcast_shapes(logprobs.shape, ref_logprobs.shape)
    except RuntimeError:
        raise ValueError(f"logprobs has shape {tuple(logprobs.shape)}, which does not broadcast with "
                         f"ref_logprobs of shape {tuple(ref_logprobs.shape)}") from None
    return KL_ESTIMATORS[kind](ref_logprobs - logprobs)
