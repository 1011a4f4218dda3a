"""Policy-gradient approximations of the Gibbs oracle on the KL-regularised bandit (DESIGN §5).

Objective J(π) = E_x[ E_{a∼π} r(x,a) − η KL(π(·|x) ‖ π0(·|x)) ], maximised over a torch policy
(:mod:`rlbandit.policies`, batched over seeds). One step collects a batch with the current policy
π_old and takes one (REINFORCE, RLOO) or ``epochs × minibatches`` (PPO, GRPO) gradient steps on

    loss = −Σ_i w_i · surrogate_i  +  [KL in loss]  η Σ_i w_i · k(log π(a_i|x_i), log π0(a_i|x_i))
    surrogate_i = A_i log π(a_i|x_i)                                   (unclipped)
                = min(ρ_i A_i, clip(ρ_i, 1 − ε, 1 + ε) A_i),  ρ_i = π/π_old   (clipped)
    R_i = r(x_i,a_i) − [KL in reward] η · k(log π_old(a_i|x_i), log π0(a_i|x_i))

with A_i = R_i − baseline (:data:`ADVANTAGES`). Two modes share this code:

- ``sampled``: x ∼ d0 (``batch_contexts`` prompts), ``group_size`` actions a ∼ π_old per prompt,
  w_i = 1/(B·G);
- ``exact``: every (x, a) with w = d0(x) π_old(a|x) and exact group moments — the expectation of the
  sampled update, so the iteration is deterministic and its fixed point is the method's own.

This module holds the advantage estimators, :data:`ALGORITHMS`, :class:`PGConfig` /
:class:`PGResult`, the trainer :func:`train_policy_gradient` and the exact expected update
:func:`exact_update_direction` (shape (X, K)). The exact fixed points of the KL options (Gibbs for
k1-in-reward and k2-in-loss, the forward-KL policy for k3-in-loss (GRPO's default), the greedy
limit for k1-in-loss, GRPO's η·σ_x temperature) are derived and computed in
:mod:`rlbandit.pg_fixed_points` and re-exported here (:func:`fixed_point`, :data:`FIXED_POINTS`,
:func:`forward_kl_policy`, :func:`grpo_fixed_point`); k3 in the reward is clamped to ±10 as in verl,
since π0/π overflows where π ≪ π0.

In sampled mode the group mean includes the sample itself, so E[A(a)] = (G−1)/G · (r(a) − E_π r):
with the KL in the loss the effective coefficient is η·G/(G−1) (times σ_x for GRPO) — trl's
GRPOTrainer convention, measured in ``llm.seq_bridge`` — and with the KL in the reward only the step
size changes. With the KL in the reward (k1) the std-normalised update is ∇J/σ_R: the Gibbs fixed
point survives, but the step is normalised and needs a decaying learning rate to settle.

The adaptive KL controller (Ziegler et al. 2019, §2.2; trl's ``AdaptiveKLController``) updates η
after each batch: η ← η (1 + clip(KL/target − 1, −0.2, 0.2) / horizon).
"""

from __future__ import annotations

import time

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import torch

from rlbandit import kernels
from rlbandit._checks import (
    check_instance,
    check_choice,
    check_context_probs,
    check_eta,
    check_positive_float,
    check_positive_ints,
    logprob_array,
    real_array,
)
from rlbandit.losses import KL_ESTIMATORS, kl_estimate
from rlbandit.kernels import expected_reward
from rlbandit.pg_fixed_points import FIXED_POINTS, fixed_point, forward_kl_policy, grpo_fixed_point
from rlbandit.pg_objectives import (
    adaptive_kl_coefficient,
    clipped_surrogate,
    group_advantages,
    leave_one_out_advantages,
)
from rlbandit.policies import POLICIES, as_tensor, make_policy

__all__ = ["PGConfig", "PGAlgorithm", "ALGORITHMS", "ADVANTAGES", "PGResult", "train_policy_gradient",
           "exact_update_direction",
           # re-exported from rlbandit.pg_fixed_points
           "fixed_point", "forward_kl_policy", "grpo_fixed_point", "FIXED_POINTS"]


# ----------------------------------------------------------------------------------------------
# Advantages


@dataclass
class _Batch:
    """One collected batch, shapes (S, B, G): B prompts × G actions per prompt (exact: B = X, G = K)."""

    contexts: torch.Tensor  # (S, B) long
    actions: torch.Tensor  # (S, B, G) long
    weights: torch.Tensor  # (S, B, G): sample weights (sum 1 per seed)
    group_weights: torch.Tensor  # (S, B, G): within-group weights (sum 1 per prompt)
    rewards: torch.Tensor  # (S, B, G) task reward r(x, a)
    old_logprobs: torch.Tensor  # (S, B, G)
    ref_logprobs: torch.Tensor  # (S, B, G)
    exact: bool


def _group_mean(values, batch: _Batch):
    return (values * batch.group_weights).sum(-1, keepdim=True)


def _adv_batch_mean(returns, batch: _Batch, values=None, eps=1e-8):
    """REINFORCE with the batch-mean baseline: A = R − Σ_i w_i R_i (exact: the d0·π mean)."""
    return returns - (returns * batch.weights).sum((-2, -1), keepdim=True) / batch.weights.sum((-2, -1), keepdim=True)


def _adv_loo(returns, batch: _Batch, values=None, eps=1e-8):
    """RLOO (Kool et al. 2019; Ahmadian et al. 2024): A_i = R_i − mean_{j≠i} R_j within the prompt's
    group (exact mode: the exact per-prompt mean, the leave-one-out estimator's expectation)."""
    if batch.exact:
        return returns - _group_mean(returns, batch)
    return leave_one_out_advantages(returns)


def _adv_group(returns, batch: _Batch, values=None, eps=1e-8):
    """GRPO (Shao et al. 2024, Eq. 3 outcome supervision): A = (R − mean_group) / (std_group + ε)."""
    if not batch.exact:
        return group_advantages(returns, scale="group", eps=eps)
    mean = _group_mean(returns, batch)
    std = torch.sqrt((batch.group_weights * (returns - mean) ** 2).sum(-1, keepdim=True))
    return (returns - mean) / (std + eps)


def _adv_group_mean(returns, batch: _Batch, values=None, eps=1e-8):
    """Dr. GRPO (Liu et al. 2025): A = R − mean_group (no std division)."""
    return returns - _group_mean(returns, batch)


def _adv_value(returns, batch: _Batch, values=None, eps=1e-8):
    """Learned value baseline (the critic of PPO): A = R − V(x), V a per-context table fitted by MSE."""
    return returns - values[..., None]


#: advantage name → (returns (S,B,G), batch, values (S,B) or None, eps) → advantages (S,B,G).
ADVANTAGES: dict[str, Callable] = {
    "batch_mean": _adv_batch_mean,
    "loo": _adv_loo,
    "group": _adv_group,
    "group_mean": _adv_group_mean,
    "value": _adv_value,
}


@dataclass(frozen=True)
class PGAlgorithm:
    """A policy-gradient method: its advantage estimator and whether it takes clipped-ratio steps
    (``epochs × minibatches`` per batch) or a single vanilla step."""

    advantage: str
    clipped: bool
    reference: str = ""


#: algorithm name → spec.
ALGORITHMS: dict[str, PGAlgorithm] = {
    "reinforce": PGAlgorithm("batch_mean", False, "Williams 1992, with a batch-mean baseline"),
    "rloo": PGAlgorithm("loo", False, "Ahmadian et al. 2024, 'Back to basics' (REINFORCE leave-one-out)"),
    "ppo": PGAlgorithm("value", True, "Schulman et al. 2017; Ziegler et al. 2019 (KL in reward, value baseline)"),
    "grpo": PGAlgorithm("group", True, "Shao et al. 2024, DeepSeekMath (group-normalised, clipped)"),
    "dr_grpo": PGAlgorithm("group_mean", True, "Liu et al. 2025, Dr. GRPO (group mean, no std)"),
}


# ----------------------------------------------------------------------------------------------
# Config and result


@dataclass(frozen=True)
class PGConfig:
    """Policy-gradient run.

    Attributes:
        algorithm: a key of :data:`ALGORITHMS`.
        policy: a key of :data:`rlbandit.policies.POLICIES` (``tabular`` / ``log_linear``).
        eta: η > 0 (the initial η when ``target_kl`` is set).
        steps: batches collected (iterations).
        mode: ``"sampled"`` or ``"exact"`` (module docstring).
        batch_contexts: prompts per batch (sampled mode).
        group_size: actions per prompt (sampled; ≥ 2 for loo/group advantages).
        lr: learning rate; lr_t = lr / (1 + lr_decay · t).
        lr_decay: ≥ 0.
        optimizer: ``"sgd"`` or ``"adam"``.
        kl_estimator: ``"k1"``, ``"k2"`` or ``"k3"``.
        kl_placement: ``"reward"`` (R = r − η k) or ``"loss"`` (+ η k in the loss).
        epochs, minibatches: passes and minibatches per batch for clipped algorithms.
        clip: ε of the clipped ratio.
        advantage: override of the algorithm's advantage estimator (a key of :data:`ADVANTAGES`).
        value_lr: learning rate of the tabular critic (``value`` advantage).
        target_kl: KL target of the adaptive controller (None = fixed η).
        kl_horizon: controller horizon (in steps).
        advantage_eps: ε added to the group std.
        log_every: record metrics every this many steps (and at the end).
        seed: seed of the torch generator (sampling).
    """

    algorithm: str = "reinforce"
    policy: str = "tabular"
    eta: float = 1.0
    steps: int = 200
    mode: str = "sampled"
    batch_contexts: int = 32
    group_size: int = 4
    lr: float = 0.1
    lr_decay: float = 0.0
    optimizer: str = "adam"
    kl_estimator: str = "k1"
    kl_placement: str = "reward"
    epochs: int = 4
    minibatches: int = 2
    clip: float = 0.2
    advantage: str | None = None
    value_lr: float = 0.5
    target_kl: float | None = None
    kl_horizon: float = 20.0
    advantage_eps: float = 1e-6
    log_every: int = 10
    seed: int = 0

    def __post_init__(self):
        check_choice(self.algorithm, "algorithm", ALGORITHMS)
        check_choice(self.policy, "policy", POLICIES)
        check_eta(self.eta)
        check_positive_ints(self, ("steps", "batch_contexts", "group_size", "epochs", "minibatches", "log_every"),
                            allow_bool=False)
        if self.mode not in ("sampled", "exact"):
            raise ValueError(f"mode: expected 'sampled' or 'exact', got {self.mode!r}")
        check_positive_float(self.lr, "lr")
        check_positive_float(self.lr_decay, "lr_decay", allow_zero=True, finite=False)
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer: expected 'sgd' or 'adam', got {self.optimizer!r}")
        check_choice(self.kl_estimator, "kl_estimator", KL_ESTIMATORS)
        if self.kl_placement not in ("reward", "loss"):
            raise ValueError(f"kl_placement: expected 'reward' or 'loss', got {self.kl_placement!r}")
        if not 0 < self.clip < 1:
            raise ValueError(f"clip: must lie in (0, 1), got {self.clip}")
        if self.advantage is not None:
            check_choice(self.advantage, "advantage", ADVANTAGES)
        if self.mode == "sampled" and self.advantage_name in ("loo", "group") and self.group_size < 2:
            raise ValueError(f"group_size: the {self.advantage_name!r} advantage needs group_size >= 2")
        if self.target_kl is not None and not self.target_kl > 0:
            raise ValueError(f"target_kl: must be > 0 or None, got {self.target_kl}")
        check_positive_float(self.kl_horizon, "kl_horizon", finite=False)
        check_positive_float(self.value_lr, "value_lr", finite=False)

    @property
    def advantage_name(self) -> str:
        return self.advantage if self.advantage is not None else ALGORITHMS[self.algorithm].advantage

    @property
    def samples_per_step(self) -> int:
        return self.batch_contexts * self.group_size


@dataclass(frozen=True)
class PGResult:
    """``logprobs``: the final policy (batch_shape + (X, K)); ``history``: tidy frame, one row per
    seed × logged step (step, samples, eta, kl_to_target, kl_target_to_policy, subopt, kl_to_ref,
    gold_reward, train_reward); ``eta``: the final η per seed."""

    logprobs: np.ndarray
    history: pd.DataFrame
    eta: np.ndarray = field(default=None)


# ----------------------------------------------------------------------------------------------
# Training


def _collect(policy_lp: torch.Tensor, rewards: torch.Tensor, ref: torch.Tensor, context_probs: torch.Tensor,
             config: PGConfig, gen: torch.Generator) -> _Batch:
    s, x, k = policy_lp.shape
    if config.mode == "exact":
        contexts = torch.arange(x).expand(s, x)
        actions = torch.arange(k).expand(s, x, k)
        probs = policy_lp.exp()
        group_w = probs
        weights = context_probs[..., None] * probs
        exact = True
    else:
        b, g = config.batch_contexts, config.group_size
        contexts = torch.multinomial(context_probs.expand(s, x), b, replacement=True, generator=gen)
        rows = torch.gather(policy_lp.exp(), 1, contexts[..., None].expand(s, b, k))
        actions = torch.multinomial(rows.reshape(s * b, k), g, replacement=True, generator=gen).reshape(s, b, g)
        weights = torch.full((s, b, g), 1.0 / (b * g), dtype=torch.float64)
        group_w = torch.full((s, b, g), 1.0 / g, dtype=torch.float64)
        exact = False
    gather = lambda table: table[torch.arange(s)[:, None, None], contexts[..., None], actions]  # noqa: E731
    return _Batch(contexts, actions, weights, group_w, gather(rewards), gather(policy_lp), gather(ref), exact)


def _metrics(problem, logprobs: np.ndarray, train_rewards: np.ndarray, eta_cfg: float) -> dict[str, np.ndarray]:
    target = kernels.gibbs(train_rewards, problem.ref_logprobs, eta_cfg)
    d0 = problem.context_probs
    return {
        "kl_to_target": kernels.weigh_contexts(np.maximum(kernels.kl(logprobs, target), 0.0), d0),
        "kl_target_to_policy": kernels.weigh_contexts(np.maximum(kernels.kl(target, logprobs), 0.0), d0),
        "subopt": problem.suboptimality(logprobs, eta_cfg),
        "kl_to_ref": problem.kl_to_ref(logprobs),
        "gold_reward": problem.gold_reward(logprobs),
        "train_reward": kernels.weigh_contexts(expected_reward(logprobs, train_rewards), d0),
    }


def _surrogate_loss(lp_all, batch: _Batch, adv, returns, eta, config: PGConfig, clipped: bool, chunk, n_mb: int):
    """The loss of one (mini)batch (module docstring), summed over seeds."""
    s = lp_all.shape[0]
    s_idx = torch.arange(s)[:, None, None]
    lp = lp_all[s_idx, batch.contexts[:, chunk, None], batch.actions[:, chunk]]
    w = batch.weights[:, chunk] * n_mb
    a = adv[:, chunk]
    if clipped:
        ratio = torch.exp(lp - batch.old_logprobs[:, chunk])
        surrogate = clipped_surrogate(ratio, a, config.clip)
    else:
        surrogate = a * lp
    # zero-weight entries (exact mode, π_old(a) = 0) contribute nothing, even where a term is ±inf
    loss = -torch.where(w > 0, w * surrogate, torch.zeros_like(w)).sum()
    if config.kl_placement == "loss":
        penalty = kl_estimate(lp, batch.ref_logprobs[:, chunk], config.kl_estimator)
        loss = loss + torch.where(w > 0, eta[:, None, None] * w * penalty, torch.zeros_like(w)).sum()
    return loss


def exact_update_direction(rewards, ref_logprobs, logprobs, eta, kl_estimator: str = "k1",
                           kl_placement: str = "reward", advantage: str = "loo", context_probs=None) -> np.ndarray:
    """The expected policy-gradient update at π (tabular logits), i.e. −∇_u of the exact-mode loss:

        E_{x∼d0, a∼π}[ A(x,a) ∇_u log π(a|x) ] − [KL in loss] η E_{x, a∼sg π}[ ∇_u k(a) ].

    Args: rewards, ref_logprobs, logprobs (π; full support) of shape (X, K); η; the KL option;
    the advantage estimator (exact moments); d0 (uniform when None).
    Returns: the ascent direction, shape (X, K); it vanishes exactly at the option's fixed point
    (:func:`fixed_point`) — k1-in-reward and k2-in-loss give ∇J.
    """
    from rlbandit.policies import TabularPolicy

    rewards = real_array(rewards, "rewards", ndim=2)
    x, k = rewards.shape
    # Full support: the update divides by π0 and π through their log-ratios, so −inf would give NaN.
    ref = logprob_array(ref_logprobs, "ref_logprobs", min_ndim=2)
    lp0 = logprob_array(logprobs, "logprobs", min_ndim=2)
    for name, array in (("ref_logprobs", ref), ("logprobs", lp0)):
        if array.shape != (x, k):
            raise ValueError(f"{name}: expected shape {(x, k)} like rewards, got {array.shape}")
    if not np.isfinite(ref).all():
        raise ValueError("ref_logprobs: π0 must have full support here (an entry is −inf)")
    d0 = check_context_probs(context_probs, x)
    if d0.shape != (x,):
        raise ValueError(f"context_probs: expected shape {(x,)}, got {d0.shape}")
    config = PGConfig(algorithm="rloo", mode="exact", eta=eta, kl_estimator=kl_estimator, kl_placement=kl_placement,
                      advantage=advantage)
    policy = TabularPolicy(ref[None], init=(lp0 - ref)[None])
    eta_t = torch.full((1,), float(eta), dtype=torch.float64)
    with torch.no_grad():
        lp_old = policy.logprobs()
        batch = _collect(lp_old, as_tensor(rewards[None]), as_tensor(ref[None]), as_tensor(d0[None]), config, None)
        returns = batch.rewards.clone()
        if kl_placement == "reward":
            returns = returns - eta_t[:, None, None] * KL_ESTIMATORS[kl_estimator](batch.ref_logprobs - batch.old_logprobs)
        returns = torch.where(batch.weights > 0, returns, torch.zeros_like(returns))
        adv = ADVANTAGES[advantage](returns, batch, None, 0.0)
    loss = _surrogate_loss(policy.logprobs(), batch, adv, returns, eta_t, config, False, torch.arange(x), 1)
    loss.backward()
    return -policy.logits.grad[0].numpy()


def train_policy_gradient(problem, config: PGConfig, rewards=None, *, progress: bool = False,
                          on_batch: Callable | None = None) -> PGResult:
    """Run the policy-gradient method ``config`` on ``problem`` and return the final policy.

    Args:
        problem: a LinearBandit, batched over seeds (leading axis) or not.
        config: :class:`PGConfig`.
        rewards: the training reward table r (batch_shape + (X, K)), e.g. a learned proxy r̂; the
            true r* when None. Metrics: ``kl_to_target`` = E_x KL(π ‖ O(r, η, π0)) against the Gibbs
            policy of the *training* reward; ``subopt``/``gold_reward`` on the true reward.
        progress: show a tqdm bar.
        on_batch: called after each step's batch is collected, with keyword arguments ``step``,
            ``old_logprobs`` (S, X, K), ``contexts`` (S, B), ``actions`` (S, B, G), ``weights``
            (S, B, G; the exact mode enumerates every action with weight d0·π_old) and ``exact`` —
            numpy arrays, for studies that count what the method sampled (e.g. rare actions).
    """
    if on_batch is not None and not callable(on_batch):
        raise ValueError(f"on_batch: expected a callable or None, got {on_batch!r}")
    check_instance(config, PGConfig, "config")
    from rlbandit.problem import LinearBandit, stack_problems

    check_instance(problem, LinearBandit, "problem")
    batched = bool(problem.batch_shape)
    prob = problem if batched else stack_problems([problem])
    if len(prob.batch_shape) != 1:
        raise ValueError(f"problem: expected at most one batch (seed) axis, got batch shape {prob.batch_shape}")
    s, x, k = prob.ref_logprobs.shape
    train_np = prob.rewards if rewards is None else np.broadcast_to(np.asarray(rewards, dtype=np.float64), (s, x, k))
    if not np.isfinite(train_np).all():
        raise ValueError("rewards: must be finite")
    algo = ALGORITHMS[config.algorithm]
    advantage = ADVANTAGES[config.advantage_name]
    kl_fn = KL_ESTIMATORS[config.kl_estimator]

    gen = torch.Generator().manual_seed(int(config.seed))
    policy = make_policy(config.policy, prob, config.eta)
    train_r = as_tensor(train_np)
    ref = as_tensor(prob.ref_logprobs)
    d0 = as_tensor(np.broadcast_to(prob.context_probs, (s, x)))
    values = torch.zeros(s, x, dtype=torch.float64)  # the tabular critic
    eta = torch.full((s,), float(config.eta), dtype=torch.float64)
    opt_cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.SGD
    opt = opt_cls(policy.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1.0 + config.lr_decay * t))
    rows: list[dict] = []
    # fit_seconds: wall time spent training so far, the evaluations below excluded (a per-budget cost)
    clock = {"start": time.perf_counter(), "evaluating": 0.0}

    def log(step: int):
        begin = time.perf_counter()
        fit_seconds = begin - clock["start"] - clock["evaluating"]
        lp = policy.logprobs().detach().numpy()
        metrics = _metrics(prob, lp, train_np, config.eta)
        samples = step * config.samples_per_step if config.mode == "sampled" else np.nan
        for seed in range(s):
            row = {"step": step, "seed": seed, "samples": samples, "eta": float(eta[seed]), "fit_seconds": fit_seconds}
            row.update({name: float(v[seed]) for name, v in metrics.items()})
            rows.append(row)
        clock["evaluating"] += time.perf_counter() - begin

    log(0)
    iterator = range(1, config.steps + 1)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc=f"{config.algorithm}/{config.mode}")
    eta_b = lambda: eta[:, None, None]  # noqa: E731
    for step in iterator:
        with torch.no_grad():
            lp_old = policy.logprobs()
            batch = _collect(lp_old, train_r, ref, d0, config, gen)
            if on_batch is not None:
                on_batch(step=step, old_logprobs=lp_old.numpy(), contexts=batch.contexts.numpy(),
                         actions=batch.actions.numpy(), weights=batch.weights.numpy(), exact=bool(batch.exact))
            returns = batch.rewards.clone()
            if config.kl_placement == "reward":
                penalty = kl_fn(batch.ref_logprobs - batch.old_logprobs)
                if config.kl_estimator == "k3":
                    # π0/π overflows where π ≪ π0; clamp as verl's low_var_kl does (±10)
                    penalty = penalty.clamp(-10.0, 10.0)
                returns = returns - eta_b() * penalty
            # exact mode enumerates actions π_old never takes (π0(a) = 0): keep them out of the moments
            returns = torch.where(batch.weights > 0, returns, torch.zeros_like(returns))
            ctx_values = torch.gather(values, 1, batch.contexts)
            adv = advantage(returns, batch, ctx_values, config.advantage_eps)
        n_mb = config.minibatches if algo.clipped else 1
        epochs = config.epochs if algo.clipped else 1
        b = batch.contexts.shape[1]
        for _ in range(epochs):
            perm = torch.randperm(b, generator=gen) if n_mb > 1 else torch.arange(b)
            for chunk in torch.tensor_split(perm, n_mb):
                if chunk.numel() == 0:
                    continue
                opt.zero_grad()
                loss = _surrogate_loss(policy.logprobs(), batch, adv, returns, eta, config, algo.clipped, chunk, n_mb)
                loss.backward()
                opt.step()
                if config.advantage_name == "value":
                    # critic: one exact least-squares step of V(x) toward the batch's mean return per context
                    with torch.no_grad():
                        wr = (batch.weights[:, chunk] * returns[:, chunk]).sum(-1)
                        wsum = batch.weights[:, chunk].sum(-1)
                        num = torch.zeros(s, x, dtype=torch.float64).scatter_add_(1, batch.contexts[:, chunk], wr)
                        den = torch.zeros(s, x, dtype=torch.float64).scatter_add_(1, batch.contexts[:, chunk], wsum)
                        seen = den > 0
                        target = torch.where(seen, num / den.clamp(min=1e-300), values)
                        values.add_(config.value_lr * (target - values))
        sched.step()
        if config.target_kl is not None:
            with torch.no_grad():
                lp_now = policy.logprobs()
                p = lp_now.exp()
                kl_now = (d0 * torch.where(p > 0, p * (lp_now - ref), torch.zeros_like(p)).sum(-1)).sum(-1)
                eta.copy_(adaptive_kl_coefficient(eta, kl_now, config.target_kl, config.kl_horizon))
        if step % config.log_every == 0 or step == config.steps:
            log(step)

    final = policy.logprobs().detach().numpy()
    history = pd.DataFrame(rows)
    return PGResult(final if batched else final[0], history, eta.numpy() if batched else eta.numpy()[0])
