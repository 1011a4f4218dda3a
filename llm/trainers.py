"""Trainers on causal LMs: SFT, reward models, DPO (every loss of ``rlbandit.losses``), PPO/RLOO,
best-of-N and rejection-sampling fine-tuning.

Every trainer updates ``policy.model`` in place, takes a frozen config dataclass and an explicit
seed, shows a progress bar (loss, reward, KL) when ``progress=True``, and returns its history as
a tidy DataFrame (one row per optimisation step). Before every optimiser step the loss and the
gradients are checked: a NaN/inf raises :class:`NonFiniteLossError` *before* the weights change,
so the model still holds the last good weights (and, with ``checkpoint_dir``, the last good
checkpoint on disk is kept, never overwritten by a diverged one).

Sequence-level conventions (as trl): log π(y|x) is the sum of response-token log-probs, EOS
included; DPO's β is DESIGN's η.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from llm.generation import (
    Batch,
    SamplingConfig,
    encode,
    forward_logits_and_hidden,
    generate,
    make_batch,
    missing_eos_penalty,
    sequence_logprobs,
    token_logprobs,
)
from rlbandit._checks import check_int, check_positive_float, check_positive_ints

__all__ = [
    "ADVANTAGES",
    "KL_MODES",
    "PG_ALGORITHMS",
    "DPOConfig",
    "DPOData",
    "LMRewardModel",
    "NonFiniteLossError",
    "PGConfig",
    "RMConfig",
    "RSConfig",
    "SFTConfig",
    "best_of_n",
    "dpo",
    "dpo_loss",
    "gae_advantages",
    "policy_gradient",
    "prepare_dpo_data",
    "rejection_sampling_finetune",
    "sft",
    "train_lm_reward_model",
]


class NonFiniteLossError(ValueError):
    """A loss or gradient became NaN/inf; training stopped before the weights were updated."""


class _Guard:
    """Checks loss and gradients before each optimiser step; keeps the last good checkpoint."""

    def __init__(self, model, checkpoint_dir=None, every: int = 50):
        self.model = model
        self.checkpoint_dir = checkpoint_dir
        self.every = every

    def step(self, loss, optimizer, step: int, max_grad_norm: float, scheduler=None):
        import torch

        if not torch.isfinite(loss.detach()):
            self._fail(f"loss is {loss.item()} at step {step}")
        loss.backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm if max_grad_norm > 0 else float("inf"))
        if not torch.isfinite(norm):
            self._fail(f"gradient norm is {norm.item()} at step {step}")
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if self.checkpoint_dir is not None and (step + 1) % self.every == 0:
            self.model.save_pretrained(self.checkpoint_dir)
        return float(norm)

    def _fail(self, what: str):
        for p in self.model.parameters():
            p.grad = None
        where = f"; the last good checkpoint is in {self.checkpoint_dir}" if self.checkpoint_dir else ""
        raise NonFiniteLossError(f"loss: {what}; training stopped before the update, the model keeps its last "
                                 f"good weights{where}")


def _optimizer(model, lr: float, warmup: int, steps: int):
    import torch

    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, warmup)) * (0.1 + 0.9 * max(0.0, 1 - s / max(1, steps))))
    return opt, sched


def _bar(total, desc, progress):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)


def _torch_generator(seed: int, device):
    import torch

    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


def _response_ids(tokenizer, responses):
    """Token ids of each response with EOS appended (so the model learns to stop)."""
    eos = tokenizer.eos_token_id
    return [ids + [eos] for ids in encode(tokenizer, responses, name="responses")]


def _prompt_ids(tokenizer, prompts):
    from llm.generation import _prompt_ids as ids

    return ids(tokenizer, prompts)


def _check_fits(lm, prompt_ids, response_ids, name="prompts"):
    longest = max((len(p) + len(r) for p, r in zip(prompt_ids, response_ids)), default=0)
    if longest > lm.max_length:
        raise ValueError(f"{name}: a prompt+response has {longest} tokens, longer than the model's context window "
                         f"of {lm.max_length} tokens")


def _check_minibatch_fields(config) -> None:
    """The fields the minibatch trainers' configs (SFT, DPO, reward model) share: steps ≥ 0,
    batch_size ≥ 1, lr > 0, max_grad_norm ≥ 0 (0 or inf: no clipping), and warmup ≥ 0 where the
    config has a warmup."""
    check_int(config.steps, "steps", minimum=0)
    check_int(config.batch_size, "batch_size")
    check_positive_float(config.lr, "lr")
    check_positive_float(config.max_grad_norm, "max_grad_norm", allow_zero=True, finite=False)
    if hasattr(config, "warmup"):
        check_int(config.warmup, "warmup", minimum=0)


# ----------------------------------------------------------------------------------------------
# SFT


@dataclass(frozen=True)
class SFTConfig:
    """Supervised fine-tuning: token-mean NLL of responses given prompts."""

    steps: int = 100
    batch_size: int = 16
    lr: float = 1e-3
    warmup: int = 5
    max_grad_norm: float = 1.0
    seed: int = 0

    def __post_init__(self):
        _check_minibatch_fields(self)


def sft(lm, prompts: Sequence[str], responses: Sequence[str], config: SFTConfig, *, progress: bool = True,
        desc: str = "sft", checkpoint_dir=None) -> list[float]:
    """Minimise −(1/|y|) Σ_t log π(y_t | x, y_<t) over minibatches of (prompt, response) pairs.

    Returns the loss per step.
    """
    if len(prompts) != len(responses) or not len(prompts):
        raise ValueError(f"responses: need one response per prompt and at least one pair, got {len(prompts)} prompts "
                         f"and {len(responses)} responses")
    tok = lm.tokenizer
    p_ids, r_ids = _prompt_ids(tok, prompts), _response_ids(tok, responses)
    _check_fits(lm, p_ids, r_ids)
    rng = np.random.default_rng(config.seed)
    model = lm.model
    model.train()
    opt, sched = _optimizer(model, config.lr, config.warmup, config.steps)
    guard = _Guard(model, checkpoint_dir)
    losses = []
    with _bar(config.steps, desc, progress) as bar:
        for step in range(config.steps):
            idx = rng.choice(len(p_ids), size=min(config.batch_size, len(p_ids)), replace=False)
            batch = make_batch([p_ids[i] for i in idx], [r_ids[i] for i in idx], tok.pad_token_id, lm.device)
            _, per = sequence_logprobs(model, batch, per_token=True)
            loss = -per.sum() / batch.response_mask.sum()
            guard.step(loss, opt, step, config.max_grad_norm, sched)
            losses.append(loss.item())
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            bar.update()
    model.eval()
    return losses


# ----------------------------------------------------------------------------------------------
# DPO


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
    seed: int = 0

    def __post_init__(self):
        from rlbandit.losses import LOSSES

        if self.loss_type not in LOSSES:
            raise ValueError(f"loss_type: unknown {self.loss_type!r}; expected one of {sorted(LOSSES)}")
        check_positive_float(self.beta, "beta")
        _check_minibatch_fields(self)
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


def _ref_logprobs(ref_lm, prompt_ids, response_ids, batch_size=64) -> np.ndarray:
    import torch

    from llm.generation import packed_sequence_logprobs, packing_supported

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
    tok = ref_lm.tokenizer
    p_ids = _prompt_ids(tok, prompts)
    if responses_are_ids:
        c_ids, r_ids = [list(c) for c in chosen], [list(r) for r in rejected]
    else:
        c_ids, r_ids = _response_ids(tok, chosen), _response_ids(tok, rejected)
    _check_fits(ref_lm, p_ids, c_ids, "chosen")
    _check_fits(ref_lm, p_ids, r_ids, "rejected")
    weights = np.ones(len(p_ids)) if weights is None else np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(p_ids),) or not np.all(np.isfinite(weights)) or (weights < 0).any():
        raise ValueError(f"weights: expected {len(p_ids)} finite weights >= 0")
    return DPOData(p_ids, c_ids, r_ids, _ref_logprobs(ref_lm, p_ids, c_ids), _ref_logprobs(ref_lm, p_ids, r_ids),
                   weights)


def dpo_loss(model, pad_token_id, prompt_ids, chosen_ids, rejected_ids, ref_chosen, ref_rejected,
             config: DPOConfig, weights=None, device=None):
    """Mean DPO-family loss of one minibatch: chosen and rejected in one forward pass.

    Returns (loss, chosen_logratios, rejected_logratios) (the last two detached, for logging).
    """
    import torch

    from llm.generation import packed_sequence_logprobs, packing_supported
    from rlbandit.losses import preference_loss

    n = len(prompt_ids)
    prompts, responses = list(prompt_ids) + list(prompt_ids), list(chosen_ids) + list(rejected_ids)
    if config.packed and packing_supported(model, pad_token_id):
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
        checkpoint_dir=None) -> pd.DataFrame:
    """Offline DPO on prepared pairs (see :func:`prepare_dpo_data`); updates ``policy`` in place.

    History columns: step, loss, reward_margin (β(ρ_w − ρ_l)), accuracy (share with ρ_w > ρ_l).
    """
    if not isinstance(data, DPOData):
        raise ValueError("data: expected DPOData from prepare_dpo_data(ref, prompts, chosen, rejected)")
    rng = np.random.default_rng(config.seed)
    model = policy.model
    model.train()
    opt, sched = _optimizer(model, config.lr, config.warmup, config.steps)
    guard = _Guard(model, checkpoint_dir)
    rows = []
    n = len(data)
    with _bar(config.steps, desc, progress) as bar:
        for step in range(config.steps):
            idx = rng.choice(n, size=min(config.batch_size, n), replace=False)
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
    model.eval()
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# PPO / RLOO


def _loo_advantages(rewards: np.ndarray, group: int) -> np.ndarray:
    """Leave-one-out baseline within groups of ``group`` samples of one prompt (RLOO, Ahmadian et al.
    2024): A_i = R_i − mean_{j≠i} R_j; with group = 1, the batch mean is the baseline."""
    if group == 1:
        return rewards - rewards.mean()
    r = rewards.reshape(-1, group)
    loo = (r.sum(-1, keepdims=True) - r) / (group - 1)
    return (r - loo).reshape(-1)


def gae_advantages(rewards, values, mask, gamma: float = 1.0, lam: float = 0.95):
    """Generalised advantage estimation (Schulman et al. 2016) over response tokens, as trl's PPO.

        δ_t = r_t + γ V_{t+1} − V_t,     A_t = δ_t + γλ A_{t+1},     R_t = A_t + V_t

    with V_{t+1} = 0 and A_{t+1} = 0 past each sequence's last token (so A_t = Σ_l (γλ)^l δ_{t+l}).
    Vectorised over the batch; one loop over T.

    Args:
        rewards: per-token rewards r_t, shape (B, T) (tensors, or array-likes converted by torch.as_tensor).
        values: V(s_t) of the state that emits token t, shape (B, T).
        mask: (B, T) in {0, 1}, right-padded (each row 1 … 1 0 … 0); padding is ignored.
        gamma, lam: discount γ and GAE λ, each in [0, 1].

    Returns:
        (advantages, returns), each (B, T), 0 on padding.
    """
    import torch

    rewards, values, mask = torch.as_tensor(rewards), torch.as_tensor(values), torch.as_tensor(mask)
    if rewards.ndim != 2 or rewards.shape != values.shape or rewards.shape != mask.shape:
        raise ValueError(f"values: rewards, values and mask must share one (B, T) shape, got {tuple(rewards.shape)}, "
                         f"{tuple(values.shape)}, {tuple(mask.shape)}")
    for value, name in ((gamma, "gamma"), (lam, "lam")):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}: must be in [0, 1], got {value}")
    m = mask.to(values.dtype)
    if not bool(((m == 0) | (m == 1)).all()) or bool((m[:, 1:] > m[:, :-1]).any()):
        raise ValueError("mask: must hold 0/1 and be right-padded (1 … 1 0 … 0 in each row)")
    rewards, values = rewards * m, values * m
    steps = rewards.shape[1]
    advantages = torch.zeros_like(values)
    last = torch.zeros_like(values[:, 0])
    for t in reversed(range(steps)):
        next_value = values[:, t + 1] if t + 1 < steps else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = (delta + gamma * lam * last) * m[:, t]
        advantages[:, t] = last
    return advantages, (advantages + values) * m


def _masked_whiten(x, mask, eps: float = 1e-8):
    """(x − mean) / √(var + eps) over the entries with mask = 1 (unbiased var, as trl); 0 elsewhere."""
    import torch

    m = mask.to(x.dtype)
    n = m.sum()
    mean = (x * m).sum() / n
    var = (((x - mean) ** 2) * m).sum() / (n - 1).clamp(min=1)
    return (x - mean) * torch.rsqrt(var + eps) * m


def _loo_token_advantages(scores, old_tok, ref_tok, mask, values, eta, config):
    """RLOO: R = score (− η Σ_t log π_old/π0 with kl_mode="reward"), A = R − mean of the other
    samples of the prompt, the same for every token. Returns ((B, 1), no returns)."""
    import torch

    if config.kl_mode == "reward":
        scores = scores - eta * (old_tok.sum(-1) - ref_tok.sum(-1)).double().cpu().numpy()
    adv = _loo_advantages(scores, config.samples_per_prompt)
    return torch.as_tensor(adv, dtype=torch.float32, device=old_tok.device)[:, None], None


def _gae_token_advantages(scores, old_tok, ref_tok, mask, values, eta, config):
    """trl's compute_rewards + GAE: r_t = −η (log π_old(y_t) − log π0(y_t)) (kl_mode="reward"; 0
    with "loss") plus the sequence score on the last response token; A by :func:`gae_advantages`,
    returns R = A + V_old, then A whitened over the batch's response tokens. Shapes (B, R)."""
    import torch

    m = mask.float()
    rewards = -eta * (old_tok - ref_tok) * m if config.kl_mode == "reward" else torch.zeros_like(m)
    last = (m.sum(-1).long() - 1).clamp(min=0)
    rows = torch.arange(len(m), device=m.device)
    rewards[rows, last] += torch.as_tensor(scores, dtype=rewards.dtype, device=m.device)
    adv, returns = gae_advantages(rewards, values, m, config.gamma, config.gae_lambda)
    return _masked_whiten(adv, m), returns


#: advantage estimator → fn(scores (B,), old_tok, ref_tok, mask, values, η, config) → (A, returns or None).
ADVANTAGES = {"loo": _loo_token_advantages, "gae": _gae_token_advantages}

#: PG algorithm → (epochs over each rollout, clipped?) — RLOO is one on-policy REINFORCE step.
PG_ALGORITHMS = {"ppo": "clipped ratio, several epochs per rollout", "rloo": "REINFORCE with leave-one-out baseline"}
#: where the KL penalty enters: the sequence reward (r − η k1) or the loss (+ η · mean kl_kind).
KL_MODES = ("reward", "loss")


@dataclass(frozen=True)
class PGConfig:
    """PPO / RLOO on sequence rewards with a KL penalty toward π0.

    Critic-free PPO: advantages are leave-one-out (RLOO) baselines over ``samples_per_prompt``
    responses of each prompt; PPO takes ``epochs`` clipped-ratio passes per rollout, RLOO one.
    ``kl_mode="reward"``: R = r − η Σ_t log(π/π0) (the sequence k1, whose REINFORCE gradient is
    exactly ∇[E r − η KL]); ``kl_mode="loss"``: R = r and η · mean_t kl_kind(π, π0) per token is
    added to the loss (GRPO's k3 by default). With ``target_kl`` the adaptive controller of Ziegler et
    al. (2019; trl's AdaptiveKLController, as ``rlbandit.policy_gradient``) updates η after each rollout:
    η ← η (1 + clip(KL/target − 1, −0.2, 0.2) / kl_horizon).

    ``advantage`` (a key of :data:`ADVANTAGES`): ``"loo"`` (default) is the critic-free baseline
    above; ``"gae"`` is the classic RLHF critic (InstructGPT, trl's PPO): a zero-initialised scalar
    value head on the policy's last hidden state gives V_t per response token, per-token rewards
    r_t = −η log(π_old/π0)(y_t) (kl_mode="reward"; 0 with "loss") plus the shaped score on the
    last token, GAE(``gamma``, ``gae_lambda``) advantages whitened over the batch's response tokens,
    and ``value_coef`` × ½ max((V − R)², (clip(V, V_old ± value_clip) − R)²) (masked mean) added
    to the loss.
    """

    algorithm: str = "ppo"
    eta: float = 0.1
    kl_mode: str = "reward"
    kl_kind: str = "k3"
    steps: int = 20  # rollouts
    prompts_per_step: int = 16
    samples_per_prompt: int = 4
    epochs: int = 2
    minibatches: int = 1
    clip: float = 0.2
    lr: float = 1e-3
    max_grad_norm: float = 1.0
    missing_eos_penalty: float = 1.0
    target_kl: float | None = None  # adaptive KL controller (Ziegler et al. 2019): None = fixed η
    kl_horizon: float = 20.0
    advantage: str = "loo"  # key of ADVANTAGES
    gamma: float = 1.0  # GAE discount (advantage="gae")
    gae_lambda: float = 0.95
    value_coef: float = 0.1
    value_clip: float = 0.2  # V stays within V_old ± value_clip in the clipped value loss
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    seed: int = 0

    def __post_init__(self):
        if self.advantage not in ADVANTAGES:
            raise ValueError(f"advantage: expected one of {sorted(ADVANTAGES)}, got {self.advantage!r}")
        for name in ("gamma", "gae_lambda"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: must be in [0, 1], got {value}")
        check_positive_float(self.value_coef, "value_coef", allow_zero=True)
        check_positive_float(self.value_clip, "value_clip", finite=False)  # inf: no value clipping
        if self.target_kl is not None and not (np.isfinite(self.target_kl) and self.target_kl > 0):
            raise ValueError(f"target_kl: must be a finite number > 0 (or None), got {self.target_kl}")
        check_positive_float(self.kl_horizon, "kl_horizon")
        if self.algorithm not in PG_ALGORITHMS:
            raise ValueError(f"algorithm: expected one of {sorted(PG_ALGORITHMS)}, got {self.algorithm!r}")
        if self.kl_mode not in KL_MODES:
            raise ValueError(f"kl_mode: expected one of {KL_MODES}, got {self.kl_mode!r}")
        if self.kl_kind not in ("k1", "k2", "k3"):
            raise ValueError(f"kl_kind: expected k1, k2 or k3, got {self.kl_kind!r}")
        check_positive_float(self.eta, "eta", allow_zero=True)
        check_positive_ints(self, ("steps", "prompts_per_step", "samples_per_prompt", "epochs", "minibatches"))
        check_positive_float(self.clip, "clip")
        check_positive_float(self.lr, "lr")
        check_positive_float(self.max_grad_norm, "max_grad_norm", allow_zero=True, finite=False)  # 0: no clip


class _PolicyWithValueHead:
    """The policy's LM plus a scalar value head V(s_t) = wᵀ h_t + b on its last hidden state (a
    shared trunk, as trl's ``AutoModelForCausalLMWithValueHead``); w, b start at 0."""

    def __init__(self, model, device):
        import torch

        hidden = model.config.hidden_size
        self.head = torch.nn.Linear(hidden, 1).to(device)
        with torch.no_grad():
            self.head.weight.zero_()
            self.head.bias.zero_()
        # optimiser and guard see trunk and head as one module; checkpoints hold the LM only
        self.module = torch.nn.Module()
        self.module.body, self.module.head = model, self.head
        self.module.save_pretrained = model.save_pretrained

    def __call__(self, model, batch: Batch):
        """(per-token log π (B, R), V (B, R)) of the batch, one forward pass."""
        logits, hidden = forward_logits_and_hidden(model, batch)
        tok_logp = token_logprobs(logits, batch.responses, batch.response_mask)
        return tok_logp, self.head(hidden.float()).squeeze(-1)


def policy_gradient(policy, ref, prompts: Sequence[str], reward_fn: Callable, config: PGConfig, *,
                    progress: bool = True, desc: str | None = None, checkpoint_dir=None) -> pd.DataFrame:
    """PPO or RLOO (``config.algorithm``) toward max E[r] − η KL(π ‖ π0); updates ``policy`` in place.

    Args:
        reward_fn: ``(prompts, responses, samples) -> rewards (n,)``; unfinished responses then lose
            ``missing_eos_penalty``.

    With ``config.advantage="gae"`` a fresh zero-initialised value head is built for the call,
    trained jointly with the policy (its parameters are in the optimiser and the gradient clip) and
    discarded on return; the loss is the policy surrogate (sum over tokens, mean over sequences,
    as with "loo") + ``value_coef`` × the clipped value loss.

    History columns: step, reward (mean gold of the rollout), kl (mean sequence k1), loss,
    finished, eta; with "gae" also value_loss (the last minibatch's).
    """
    import torch

    from rlbandit.losses import kl_estimate

    prompts = list(prompts)
    if not prompts:
        raise ValueError("prompts: need at least one prompt")
    rng = np.random.default_rng(config.seed)
    gen = _torch_generator(config.seed, policy.device)
    model = policy.model
    critic = _PolicyWithValueHead(model, policy.device) if config.advantage == "gae" else None
    trained = model if critic is None else critic.module
    opt, sched = _optimizer(trained, config.lr, 0, config.steps * config.epochs * config.minibatches)
    guard = _Guard(trained, checkpoint_dir)
    rows = []
    epochs = config.epochs if config.algorithm == "ppo" else 1
    k = config.samples_per_prompt
    step_id = 0
    eta = config.eta
    with _bar(config.steps, desc or config.algorithm, progress) as bar:
        for step in range(config.steps):
            chosen = [prompts[i] for i in rng.integers(len(prompts), size=config.prompts_per_step)]
            batch_prompts = [p for p in chosen for _ in range(k)]
            samples = generate(policy, batch_prompts, config.sampling, gen)
            batch = samples.batch
            with torch.no_grad():
                if critic is None:
                    old_logp, old_tok = sequence_logprobs(model, batch, per_token=True)
                    old_values = None
                else:
                    old_tok, old_values = critic(model, batch)
                    old_logp = old_tok.sum(-1)
                ref_logp, ref_tok = sequence_logprobs(ref.model, batch, per_token=True)
            gold = np.asarray(reward_fn(batch_prompts, samples.responses, samples), dtype=np.float64)
            if gold.shape != (len(batch_prompts),) or not np.all(np.isfinite(gold)):
                raise ValueError(f"reward_fn: must return {len(batch_prompts)} finite rewards, got shape {gold.shape}")
            shaped = missing_eos_penalty(gold, samples.finished, config.missing_eos_penalty)
            seq_kl = (old_logp - ref_logp).double().cpu().numpy()
            adv, returns = ADVANTAGES[config.advantage](shaped, old_tok, ref_tok, batch.response_mask, old_values,
                                                        eta, config)
            mask = batch.response_mask.float()
            model.train()
            order = np.arange(len(batch))
            value_loss = None
            for _ in range(epochs):
                rng.shuffle(order)
                for part in np.array_split(order, config.minibatches):
                    part_t = torch.as_tensor(part, device=policy.device)
                    sub = Batch(batch.input_ids[part_t], batch.attention_mask[part_t], batch.response_mask[part_t],
                                batch.prompt_length)
                    if critic is None:
                        _, tok_logp = sequence_logprobs(model, sub, per_token=True)
                    else:
                        tok_logp, values = critic(model, sub)
                    m = mask[part_t]
                    ratio = torch.exp(tok_logp - old_tok[part_t])
                    a = adv[part_t]  # (b, 1) for "loo", (b, R) for "gae"
                    if config.algorithm == "ppo":
                        surrogate = torch.minimum(ratio * a, ratio.clamp(1 - config.clip, 1 + config.clip) * a)
                    else:
                        surrogate = ratio * a  # = A ∇log π at the rollout's weights (on-policy)
                    # sequence-level objective: sum over tokens, mean over sequences
                    loss = -(surrogate * m).sum(-1).mean()
                    if config.kl_mode == "loss":
                        per_tok_kl = kl_estimate(tok_logp, ref_tok[part_t], config.kl_kind)
                        loss = loss + eta * ((per_tok_kl * m).sum(-1)).mean()
                    if critic is not None:
                        v_old, ret = old_values[part_t], returns[part_t]
                        clipped = v_old + (values - v_old).clamp(-config.value_clip, config.value_clip)
                        worst = torch.maximum((values - ret) ** 2, (clipped - ret) ** 2)
                        value_loss = 0.5 * (worst * m).sum() / m.sum().clamp(min=1)
                        loss = loss + config.value_coef * value_loss
                    guard.step(loss, opt, step_id, config.max_grad_norm, sched)
                    step_id += 1
            model.eval()
            rows.append({"step": step, "reward": float(gold.mean()), "kl": float(seq_kl.mean()),
                         "loss": loss.item(), "finished": float(samples.finished.mean()), "eta": eta})
            if value_loss is not None:
                rows[-1]["value_loss"] = value_loss.item()
            if config.target_kl is not None:
                error = float(np.clip(seq_kl.mean() / config.target_kl - 1.0, -0.2, 0.2))
                eta *= 1.0 + error / config.kl_horizon
            bar.set_postfix(reward=f"{rows[-1]['reward']:.3f}", kl=f"{rows[-1]['kl']:.3f}")
            bar.update()
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# Best-of-N and rejection sampling


def best_of_n(policy, prompts: Sequence[str], n: int, reward_fn: Callable, sampling: SamplingConfig, generator,
              *, missing_eos_penalty_value: float = 1.0):
    """For each prompt draw ``n`` responses and keep the one of highest reward (ties: the first).

    Returns (responses, rewards (m,), all_rewards (m, n)). Its KL to the sampler is at most
    log n − (n − 1)/n (Beirami et al. 2024), the bound the study prints beside the estimate.
    """
    check_int(n, "n")
    prompts = list(prompts)
    flat = [p for p in prompts for _ in range(n)]
    samples = generate(policy, flat, sampling, generator)
    rewards = np.asarray(reward_fn(flat, samples.responses, samples), dtype=np.float64)
    rewards = missing_eos_penalty(rewards, samples.finished, missing_eos_penalty_value).reshape(len(prompts), n)
    best = rewards.argmax(-1)
    picked = [samples.responses[i * n + b] for i, b in enumerate(best)]
    return picked, rewards[np.arange(len(prompts)), best], rewards


@dataclass(frozen=True)
class RSConfig:
    """Rejection-sampling fine-tuning (RAFT / ReST-style): best-of-n samples → SFT, ``rounds`` times."""

    rounds: int = 2
    n: int = 4
    prompts_per_round: int = 32
    sft: SFTConfig = field(default_factory=lambda: SFTConfig(steps=20, lr=5e-4))
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    seed: int = 0

    def __post_init__(self):
        check_positive_ints(self, ("rounds", "n", "prompts_per_round"))


def rejection_sampling_finetune(policy, prompts: Sequence[str], reward_fn: Callable, config: RSConfig, *,
                                progress: bool = True) -> pd.DataFrame:
    """Each round: best-of-n responses of the current policy on fresh prompts, then SFT on them."""
    from dataclasses import replace

    rng = np.random.default_rng(config.seed)
    gen = _torch_generator(config.seed, policy.device)
    rows = []
    for r in range(config.rounds):
        batch_prompts = [prompts[i] for i in rng.integers(len(prompts), size=config.prompts_per_round)]
        picked, best, all_r = best_of_n(policy, batch_prompts, config.n, reward_fn, config.sampling, gen)
        keep = [i for i, text in enumerate(picked) if text.strip()]
        if not keep:
            raise ValueError("reward_fn: every selected response is empty; nothing to fine-tune on")
        losses = sft(policy, [batch_prompts[i] for i in keep], [picked[i] for i in keep],
                     replace(config.sft, seed=config.seed + r), progress=progress, desc=f"rs round {r}")
        rows.append({"round": r, "best_reward": float(best.mean()), "sample_reward": float(all_r.mean()),
                     "sft_loss": losses[-1] if losses else float("nan")})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# Reward model with a head on the LM


class LMRewardModel:
    """r_ψ(x, y) = wᵀ h_last(x, y) + b: a scalar head on the LM's last hidden state at the last token.

    Owns a deep copy of the LM (so training it leaves the policy alone).
    """

    def __init__(self, lm, seed: int = 0):
        import torch

        self.lm = lm.copy()
        hidden = self.lm.model.config.hidden_size
        gen = torch.Generator().manual_seed(seed)
        self.head = torch.nn.Linear(hidden, 1).to(self.lm.device)
        with torch.no_grad():
            self.head.weight.copy_(torch.randn(1, hidden, generator=gen) / math.sqrt(hidden))
            self.head.bias.zero_()

    def parameters(self):
        return list(self.lm.model.parameters()) + list(self.head.parameters())

    def scores(self, batch: Batch):
        """r_ψ for each row of a prompt+response batch, shape (B,)."""
        import torch

        out = self.lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                            position_ids=(batch.attention_mask.cumsum(-1) - 1).clamp(min=0),
                            output_hidden_states=True, use_cache=False)
        hidden = out.hidden_states[-1]
        last = batch.prompt_length + batch.response_mask.sum(-1) - 1
        picked = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        return self.head(picked.float()).squeeze(-1)

    def __call__(self, prompts, responses, samples=None) -> np.ndarray:
        import torch

        tok = self.lm.tokenizer
        batch = make_batch(_prompt_ids(tok, prompts), _response_ids(tok, responses), tok.pad_token_id, self.lm.device)
        with torch.no_grad():
            return self.scores(batch).double().cpu().numpy()


@dataclass(frozen=True)
class RMConfig:
    steps: int = 100
    batch_size: int = 16
    lr: float = 1e-3
    max_grad_norm: float = 1.0
    seed: int = 0

    def __post_init__(self):
        _check_minibatch_fields(self)


def train_lm_reward_model(lm, prompts, chosen, rejected, config: RMConfig, *, progress: bool = True):
    """Bradley–Terry reward model with a head on the LM: minimise −log σ(r_ψ(x,y_w) − r_ψ(x,y_l)).

    Returns (LMRewardModel, history DataFrame with step, loss, accuracy).
    """
    import torch
    import torch.nn.functional as F

    if not (len(prompts) == len(chosen) == len(rejected)) or not len(prompts):
        raise ValueError("chosen: prompts, chosen and rejected must be non-empty and of one length")
    rm = LMRewardModel(lm, seed=config.seed)
    tok = lm.tokenizer
    p_ids, c_ids, r_ids = _prompt_ids(tok, prompts), _response_ids(tok, chosen), _response_ids(tok, rejected)
    _check_fits(lm, p_ids, c_ids, "chosen")
    _check_fits(lm, p_ids, r_ids, "rejected")
    rng = np.random.default_rng(config.seed)
    opt = torch.optim.AdamW(rm.parameters(), lr=config.lr)
    rm.lm.model.train()

    class _Both(torch.nn.Module):  # the guard clips/inspects all trainable parameters
        def __init__(self):
            super().__init__()
            self.body, self.head = rm.lm.model, rm.head

        def save_pretrained(self, path):
            self.body.save_pretrained(path)

    guard = _Guard(_Both())
    rows = []
    n = len(p_ids)
    with _bar(config.steps, "reward model", progress) as bar:
        for step in range(config.steps):
            idx = rng.choice(n, size=min(config.batch_size, n), replace=False)
            batch = make_batch([p_ids[i] for i in idx] * 2, [c_ids[i] for i in idx] + [r_ids[i] for i in idx],
                               tok.pad_token_id, lm.device)
            s = rm.scores(batch)
            margin = s[:len(idx)] - s[len(idx):]
            loss = -F.logsigmoid(margin).mean()
            guard.step(loss, opt, step, config.max_grad_norm)
            rows.append({"step": step, "loss": loss.item(), "accuracy": float((margin > 0).float().mean())})
            bar.set_postfix(loss=f"{rows[-1]['loss']:.3f}")
            bar.update()
    rm.lm.model.eval()
    return rm, pd.DataFrame(rows)
