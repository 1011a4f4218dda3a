"""PPO / RLOO / GRPO / Dr. GRPO on sequence rewards with a KL penalty toward π0 (the LM world's
policy-gradient family); the clipped surrogate, the adaptive KL controller, the leave-one-out and
group advantages and the token aggregations are the pure functions of :mod:`rlbandit.pg_objectives`
(shared with the bandit world)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from llm.generation import (
    Batch,
    SamplingConfig,
    forward_logits_and_hidden,
    generate,
    missing_eos_penalty,
    sequence_logprobs,
    token_logprobs,
)
from llm.trainers._common import Guard, make_optimizer, progress_bar, torch_generator
from rlbandit._checks import check_choice, check_positive_float, check_positive_ints
from rlbandit.pg_objectives import (
    LOSS_AGGREGATIONS,
    adaptive_kl_coefficient,
    aggregate_token_loss,
    clipped_surrogate,
    group_advantages,
    leave_one_out_advantages,
)

__all__ = ["ADVANTAGES", "KL_MODES", "PG_ALGORITHMS", "PGConfig", "gae_advantages", "pg_loss", "policy_gradient"]


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


def _sequence_returns(scores, old_tok, ref_tok, eta, config):
    """R = score − η Σ_t (log π_old(y_t) − log π0(y_t)) with kl_mode="reward" (the sequence k1),
    R = score with "loss"; a float64 tensor (B,) on the tokens' device."""
    import torch

    returns = torch.as_tensor(np.asarray(scores, dtype=np.float64), device=old_tok.device)
    if config.kl_mode == "reward":
        returns = returns - eta * (old_tok.sum(-1) - ref_tok.sum(-1)).double()
    return returns


def _grouped(returns, config):
    """(B,) → (B / G, G): the ``samples_per_prompt`` responses of each prompt are consecutive."""
    return returns.reshape(-1, config.samples_per_prompt)


def _loo_token_advantages(scores, old_tok, ref_tok, mask, values, eta, config):
    """RLOO: A = R − mean of the other samples of the prompt (:func:`leave_one_out_advantages`;
    with one sample per prompt the batch mean is the baseline), the same for every token.
    Returns ((B, 1), no returns)."""
    returns = _sequence_returns(scores, old_tok, ref_tok, eta, config)
    if config.samples_per_prompt == 1:
        adv = returns - returns.mean()
    else:
        adv = leave_one_out_advantages(_grouped(returns, config)).reshape(-1)
    return adv.float()[:, None], None


def _grpo_token_advantages(scores, old_tok, ref_tok, mask, values, eta, config):
    """GRPO (Shao et al. 2024; trl's GRPOTrainer): A = (R − mean_group) / (std_group + 1e-4), the
    same for every token (:func:`group_advantages`, scale "group"). Returns ((B, 1), no returns)."""
    returns = _sequence_returns(scores, old_tok, ref_tok, eta, config)
    return group_advantages(_grouped(returns, config), scale="group").reshape(-1).float()[:, None], None


def _dr_grpo_token_advantages(scores, old_tok, ref_tok, mask, values, eta, config):
    """Dr. GRPO (Liu et al. 2025): A = R − mean_group, no std division (scale "none")."""
    returns = _sequence_returns(scores, old_tok, ref_tok, eta, config)
    return group_advantages(_grouped(returns, config), scale="none").reshape(-1).float()[:, None], None


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


def pg_loss(tok_logp, old_tok, ref_tok, advantages, mask, *, clip: float | None, eta: float,
            kl_kind: str | None, loss_type: str = "sequence", max_length: int | None = None,
            bias_correction_kl: bool = False):
    """The policy-gradient loss of one minibatch of responses (to minimise):

        ℓ_t = −min(ρ_t A_t, clip(ρ_t, 1 ± ε) A_t) + η k(log π(y_t), log π0(y_t)),  ρ_t = π(y_t)/π_old(y_t)

    reduced over tokens by ``loss_type`` (:func:`rlbandit.pg_objectives.aggregate_token_loss`).

    Args:
        tok_logp: log π(y_t | x, y_<t) under the current weights, (B, T), with gradients.
        old_tok: the same under the rollout's weights π_old, (B, T); ref_tok: under π0, (B, T).
        advantages: (B, 1) (one advantage per response) or (B, T) (per token, e.g. GAE).
        mask: (B, T) response mask (1 on response tokens, EOS included).
        clip: PPO's ε; None = no clipping (ρ A: REINFORCE at ρ = 1).
        eta: KL coefficient of the in-loss penalty; kl_kind: "k1"/"k2"/"k3" per-token estimator
            (:func:`rlbandit.losses.kl_estimate`) or None for no KL term in the loss.
        loss_type: "sequence" | "grpo" | "bnpo" | "dapo" | "dr_grpo"; max_length: dr_grpo's T_max.
        bias_correction_kl: weight the per-token KL by the (differentiable) ratio ρ_t, as trl 1.16's
            GRPOTrainer does by default (``use_bias_correction_kl``; DeepSeek-V3.2): an importance
            correction for off-policy minibatches that also adds η k ∇log π to the gradient on-policy.
    """
    import torch

    from rlbandit.losses import kl_estimate

    ratio = torch.exp(tok_logp - old_tok)
    per_token = -clipped_surrogate(ratio, advantages, clip)
    if kl_kind is not None:
        kl = kl_estimate(tok_logp, ref_tok, kl_kind)
        per_token = per_token + eta * (kl * ratio if bias_correction_kl else kl)
    return aggregate_token_loss(per_token, mask, loss_type, max_length)


#: advantage estimator → fn(scores (B,), old_tok, ref_tok, mask, values, η, config) → (A, returns or None).
ADVANTAGES = {"loo": _loo_token_advantages, "gae": _gae_token_advantages, "grpo": _grpo_token_advantages,
              "dr_grpo": _dr_grpo_token_advantages}

#: PG algorithm → (epochs over each rollout, clipped?) — RLOO is one on-policy REINFORCE step.
PG_ALGORITHMS = {"ppo": "clipped ratio, several epochs per rollout", "rloo": "REINFORCE with leave-one-out baseline"}
#: where the KL penalty enters: the sequence reward (r − η k1) or the loss (+ η · mean kl_kind).
KL_MODES = ("reward", "loss")


@dataclass(frozen=True)
class PGConfig:
    """PPO / RLOO / GRPO / Dr. GRPO on sequence rewards with a KL penalty toward π0.

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
    to the loss; ``"grpo"`` (A = (R − group mean)/(group std + 1e-4)) and ``"dr_grpo"`` (A = R −
    group mean) are trl's GRPOTrainer advantages (``scale_rewards`` "group" / "none").

    ``loss_type`` (a key of :data:`rlbandit.pg_objectives.LOSS_AGGREGATIONS`, trl's names) reduces
    the per-token loss: ``"sequence"`` (default) sums over tokens and averages over responses — the
    sequence-level objective whose gradient is that of E r − η KL(π‖π0) of whole responses;
    ``"grpo"`` averages tokens per response, ``"bnpo"``/``"dapo"`` over the batch's tokens,
    ``"dr_grpo"`` divides by B · max_new_tokens. trl's GRPO recipe is ``algorithm="ppo",
    advantage="grpo", kl_mode="loss", kl_kind="k3", loss_type="grpo"`` (or ``"dapo"``, its default;
    ``bias_correction_kl=True`` is its default KL weighting), Dr. GRPO's ``advantage="dr_grpo",
    loss_type="dr_grpo"``.
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
    loss_type: str = "sequence"  # key of rlbandit.pg_objectives.LOSS_AGGREGATIONS
    bias_correction_kl: bool = False  # trl GRPOTrainer's default True: the in-loss KL weighted by π/π_old
    gamma: float = 1.0  # GAE discount (advantage="gae")
    gae_lambda: float = 0.95
    value_coef: float = 0.1
    value_clip: float = 0.2  # V stays within V_old ± value_clip in the clipped value loss
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    seed: int = 0

    def __post_init__(self):
        check_choice(self.advantage, "advantage", ADVANTAGES)
        check_choice(self.loss_type, "loss_type", LOSS_AGGREGATIONS)
        for name in ("gamma", "gae_lambda"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: must be in [0, 1], got {value}")
        check_positive_float(self.value_coef, "value_coef", allow_zero=True)
        check_positive_float(self.value_clip, "value_clip", finite=False)  # inf: no value clipping
        if self.target_kl is not None and not (np.isfinite(self.target_kl) and self.target_kl > 0):
            raise ValueError(f"target_kl: must be a finite number > 0 (or None), got {self.target_kl}")
        check_positive_float(self.kl_horizon, "kl_horizon")
        check_choice(self.algorithm, "algorithm", PG_ALGORITHMS)
        check_choice(self.kl_mode, "kl_mode", KL_MODES)
        check_choice(self.kl_kind, "kl_kind", ("k1", "k2", "k3"))
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
                    progress: bool = True, desc: str | None = None, checkpoint_dir=None,
                    callback: Callable[[int], None] | None = None) -> pd.DataFrame:
    """PPO or RLOO (``config.algorithm``) toward max E[r] − η KL(π ‖ π0); updates ``policy`` in place.

    Args:
        reward_fn: ``(prompts, responses, samples) -> rewards (n,)``; unfinished responses then lose
            ``missing_eos_penalty``.

    With ``config.advantage="gae"`` a fresh zero-initialised value head is built for the call,
    trained jointly with the policy (its parameters are in the optimiser and the gradient clip) and
    discarded on return; the loss is the policy surrogate (sum over tokens, mean over sequences,
    as with "loo") + ``value_coef`` × the clipped value loss.

    ``callback(step)`` runs after each rollout's update (e.g. a held-out evaluation at checkpoints;
    the policy is in eval mode then, and training resumes with the same optimiser state).

    History columns: step, reward (mean of ``reward_fn`` over the rollout), kl (mean sequence k1),
    loss, finished, eta; with "gae" also value_loss (the last minibatch's).
    """
    import torch

    prompts = list(prompts)
    if not prompts:
        raise ValueError("prompts: need at least one prompt")
    rng = np.random.default_rng(config.seed)
    gen = torch_generator(config.seed, policy.device)
    model = policy.model
    critic = _PolicyWithValueHead(model, policy.device) if config.advantage == "gae" else None
    trained = model if critic is None else critic.module
    opt, sched = make_optimizer(trained, config.lr, 0, config.steps * config.epochs * config.minibatches)
    guard = Guard(trained, checkpoint_dir)
    rows = []
    epochs = config.epochs if config.algorithm == "ppo" else 1
    k = config.samples_per_prompt
    step_id = 0
    eta = config.eta
    with progress_bar(config.steps, desc or config.algorithm, progress) as bar:
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
                    loss = pg_loss(tok_logp, old_tok[part_t], ref_tok[part_t], adv[part_t], m,
                                   clip=config.clip if config.algorithm == "ppo" else None, eta=eta,
                                   kl_kind=config.kl_kind if config.kl_mode == "loss" else None,
                                   loss_type=config.loss_type, max_length=config.sampling.max_new_tokens,
                                   bias_correction_kl=config.bias_correction_kl)
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
                eta = adaptive_kl_coefficient(eta, float(seq_kl.mean()), config.target_kl, config.kl_horizon)
            bar.set_postfix(reward=f"{rows[-1]['reward']:.3f}", kl=f"{rows[-1]['kl']:.3f}")
            bar.update()
            if callback is not None:
                callback(step)
    return pd.DataFrame(rows)


