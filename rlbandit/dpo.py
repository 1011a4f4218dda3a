"""Direct alignment on the bandit: offline DPO (and every loss of :data:`rlbandit.losses.LOSSES`),
online / iterative DPO with pairs from the current policy, and XPO's exploration term (DESIGN §5).

Offline DPO on comparisons D = {(x_i, a¹_i, a²_i, y_i)} minimises

    L(π) = (1/n) [ Σ_i ℓ(β log π/π0 (chosen_i) − β log π/π0 (rejected_i)) + (reg/2) ‖θ_π‖² ]

over a policy class, where chosen = a¹ when y = 1 and θ_π is the implicit-reward parameter: w for
the log-linear class π_w ∝ π0 exp(φw/β), and β·u for the tabular class π_u ∝ π0 exp(u). With the
sigmoid loss, β log π_w/π0 (a¹) − β log π_w/π0 (a²) = ⟨φ(x,a¹) − φ(x,a²), w⟩ (log Z cancels), so
the DPO objective *is* the Bradley–Terry negative log-likelihood with ridge reg: the DPO minimiser
is w = θ̂_MLE and π_DPO = O(φθ̂, β, π0) exactly (Rafailov et al. 2023, Thm 1; tested against
:func:`rlbandit.reward.fit_bt`). The tabular class is the same statement with one-hot features.

Online DPO (Guo et al. 2024, "Direct language model alignment from online AI feedback"; Xiong et
al. 2024 iterative DPO): each round draws m prompts, a¹, a² ∼ π_t, labels them by BT on the true
reward, adds them to D and refits (warm-started). XPO (Xie et al. 2024, arXiv:2405.21046, Alg. 1)
draws a² ∼ π0 instead and adds the optimism term α Σ_s log π(a²_s|x_s) to the loss, which pushes
mass away from what π0 already covers (trl's ``XPOTrainer``: ``alpha * log π(y_ref)``).
"""

from __future__ import annotations

import time

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from rlbandit import kernels
from rlbandit._checks import (
    check_instance,
    check_choice,
    check_eta,
    check_int,
    check_positive_float,
    check_positive_ints,
    logprob_array,
    tensor_argument,
)
from rlbandit.losses import LOSSES, preference_loss
from rlbandit.policies import LogLinearPolicy, TabularPolicy
from rlbandit.preferences import PreferenceData

__all__ = ["DPOConfig", "OnlineDPOConfig", "DPOResult", "train_dpo", "policy_logprobs", "online_dpo", "dpo_objective",
           "SAMPLERS"]


@dataclass(frozen=True)
class DPOConfig:
    """Offline DPO fit.

    Attributes:
        policy: ``"log_linear"`` or ``"tabular"``.
        beta: β > 0 (the KL coefficient η the fitted policy targets).
        loss_type: a key of :data:`rlbandit.losses.LOSSES` (``aot*`` sort over the whole dataset).
        label_smoothing: ε of the loss (cDPO / robust / exo_pair).
        reg: ridge on the implicit-reward parameter (the λ of the BT MLE it reproduces), ≥ 0.
        optimizer: ``"lbfgs"`` (full batch, strong Wolfe; exact minimiser of convex objectives) or
            ``"adam"`` (``steps`` full-batch steps at ``lr``; used to watch divergent objectives).
        steps: L-BFGS iterations or Adam steps.
        lr: Adam learning rate (L-BFGS uses 1 with line search).
        tolerance: L-BFGS stops when the gradient's max-norm falls below it (0: run all ``steps``,
            e.g. to follow an objective whose infimum is at infinity).
    """

    policy: str = "log_linear"
    beta: float = 1.0
    loss_type: str = "sigmoid"
    label_smoothing: float = 0.0
    reg: float = 1e-2
    optimizer: str = "lbfgs"
    steps: int = 200
    lr: float = 0.05
    tolerance: float = 1e-12

    def __post_init__(self):
        if self.policy not in ("log_linear", "tabular"):
            raise ValueError(f"policy: expected 'log_linear' or 'tabular', got {self.policy!r}")
        check_eta(self.beta)
        check_choice(self.loss_type, "loss_type", LOSSES)
        check_positive_float(self.reg, "reg", allow_zero=True, finite=False)
        if self.optimizer not in ("lbfgs", "adam"):
            raise ValueError(f"optimizer: expected 'lbfgs' or 'adam', got {self.optimizer!r}")
        check_int(self.steps, "steps", numpy_ints=False, allow_bool=False)
        check_positive_float(self.lr, "lr", finite=False)
        check_positive_float(self.tolerance, "tolerance", allow_zero=True, finite=False)


def _make(problem, config: DPOConfig, init=None):
    if config.policy == "log_linear":
        return LogLinearPolicy(problem.features, problem.ref_logprobs, config.beta, init=init)
    return TabularPolicy(problem.ref_logprobs, init=init)


def _theta(policy, config: DPOConfig) -> torch.Tensor:
    return policy.w if isinstance(policy, LogLinearPolicy) else config.beta * policy.logits


def _pair_logps(lp: torch.Tensor, data: PreferenceData):
    """log π at (chosen, rejected) for every comparison; lp (S, X, K), data arrays (S, n)."""
    s = lp.shape[0]
    rows = torch.arange(s)[:, None]
    ctx = torch.as_tensor(np.array(data.contexts))
    a1 = torch.as_tensor(np.array(data.actions1))
    a2 = torch.as_tensor(np.array(data.actions2))
    y = torch.as_tensor(np.array(data.labels)).bool()
    chosen = torch.where(y, a1, a2)
    rejected = torch.where(y, a2, a1)
    return lp[rows, ctx, chosen], lp[rows, ctx, rejected]


def _check_policy(policy) -> None:
    if not callable(getattr(policy, "logprobs", None)):
        raise ValueError(f"policy: expected a torch policy with .logprobs() (TabularPolicy, LogLinearPolicy), "
                         f"got {type(policy).__name__}")


def _check_problem(problem) -> None:
    from rlbandit.problem import LinearBandit

    check_instance(problem, LinearBandit, "problem")


def dpo_objective(policy, ref_logprobs: torch.Tensor, data: PreferenceData, config: DPOConfig,
                  explore=None, alpha: float = 0.0) -> torch.Tensor:
    """The DPO objective (module docstring) summed over seeds; ``explore`` = (contexts, actions)
    (S, n') of XPO's reference samples, whose α·Σ log π is added (also divided by n)."""
    _check_policy(policy)
    check_instance(data, PreferenceData, "data")
    check_instance(config, DPOConfig, "config")
    lp = policy.logprobs()
    ref_logprobs = tensor_argument(ref_logprobs, "ref_logprobs")
    if ref_logprobs.shape != lp.shape:
        raise ValueError(f"ref_logprobs: expected the policy's shape {tuple(lp.shape)}, got {tuple(ref_logprobs.shape)}")
    logprob_array(ref_logprobs.detach().cpu().numpy(), "ref_logprobs")
    return _objective(policy, ref_logprobs, data, config, explore, alpha)


def _objective(policy, ref_logprobs: torch.Tensor, data: PreferenceData, config: DPOConfig, explore, alpha):
    """:func:`dpo_objective` on validated inputs: the training loop calls it every step."""
    lp = policy.logprobs()
    pc, pr = _pair_logps(lp, data)
    rc, rr = _pair_logps(ref_logprobs, data)
    losses = preference_loss(pc, pr, rc, rr, config.beta, config.loss_type, config.label_smoothing)
    n = max(data.n, 1)
    theta = _theta(policy, config)
    total = losses.sum() + 0.5 * config.reg * (theta ** 2).sum()
    if explore is not None and alpha > 0:
        ctx, act = explore
        rows = torch.arange(lp.shape[0])[:, None]
        total = total + alpha * lp[rows, torch.as_tensor(np.array(ctx)), torch.as_tensor(np.array(act))].sum()
    return total / n


def train_dpo(problem, data: PreferenceData, config: DPOConfig, *, init=None, explore=None, alpha: float = 0.0):
    """Fit a policy by DPO on ``data`` (batched like ``problem``: data arrays (S, n) for S seeds).

    Args:
        problem: a LinearBandit (its φ, π0); batched over seeds or not.
        data: comparisons; ``data.batch_shape`` must equal ``problem.batch_shape``.
        config: :class:`DPOConfig`.
        init: warm start — w (S, d) for log-linear, u (S, X, K) for tabular.
        explore, alpha: XPO's reference samples and coefficient (see :func:`dpo_objective`).

    Returns:
        the fitted torch policy (``.logprobs()``, ``.w`` or ``.logits``).
    """
    from rlbandit.problem import stack_problems

    _check_problem(problem)
    check_instance(config, DPOConfig, "config")
    check_instance(data, PreferenceData, "data")
    batched = bool(problem.batch_shape)
    if data.batch_shape != problem.batch_shape:
        raise ValueError(f"data: batch shape {data.batch_shape} differs from the problem's {problem.batch_shape}")
    prob = problem if batched else stack_problems([problem])
    if not batched:
        data = PreferenceData(*(np.asarray(a)[None] for a in (data.contexts, data.actions1, data.actions2,
                                                               data.labels, data.source)))
        if explore is not None:
            explore = tuple(np.asarray(e)[None] for e in explore)
    policy = _make(prob, config, init)
    ref = torch.as_tensor(np.array(prob.ref_logprobs))
    if config.optimizer == "lbfgs":
        opt = torch.optim.LBFGS(policy.parameters(), lr=1.0, max_iter=config.steps, max_eval=2 * config.steps,
                                tolerance_grad=config.tolerance, tolerance_change=1e-3 * config.tolerance,
                                history_size=20,
                                line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = _objective(policy, ref, data, config, explore, alpha)
            loss.backward()
            return loss

        opt.step(closure)
    else:
        opt = torch.optim.Adam(policy.parameters(), lr=config.lr)
        for _ in range(config.steps):
            opt.zero_grad()
            _objective(policy, ref, data, config, explore, alpha).backward()
            opt.step()
    policy.batched = batched
    return policy


def policy_logprobs(policy) -> np.ndarray:
    """The fitted policy's log-probs as numpy (unbatched when the problem was)."""
    _check_policy(policy)
    lp = policy.logprobs().detach().numpy()
    return lp if getattr(policy, "batched", True) else lp[0]


# ----------------------------------------------------------------------------------------------
# Online / iterative DPO and XPO


def _sample_on_policy(problem, lp, m, rng, iteration):
    return problem.sample_preferences(lp, lp, m, rng, source=iteration), None


def _sample_reference(problem, lp, m, rng, iteration):
    data = problem.sample_preferences(lp, problem.ref_logprobs, m, rng, source=iteration)
    return data, (np.asarray(data.contexts), np.asarray(data.actions2))


#: pair sampler name → (problem, log π_t, m, rng, iteration) → (new data, XPO reference samples or None).
SAMPLERS = {"on_policy": _sample_on_policy, "reference": _sample_reference}


@dataclass(frozen=True)
class OnlineDPOConfig:
    """Online / iterative DPO and XPO.

    Attributes:
        dpo: the per-round fit (:class:`DPOConfig`).
        iterations: rounds T.
        pairs_per_iteration: m comparisons per round.
        sampler: ``"on_policy"`` (a¹, a² ∼ π_t: online DPO) or ``"reference"`` (a¹ ∼ π_t, a² ∼ π0,
            XPO's sampling).
        xpo_alpha: α of XPO's exploration term (0 = plain online DPO on those pairs).
        offline_pairs: comparisons from π0 × π0 before the first round (0 = none).
        seed: seed of the numpy generator.
    """

    dpo: DPOConfig = field(default_factory=DPOConfig)
    iterations: int = 10
    pairs_per_iteration: int = 32
    sampler: str = "on_policy"
    xpo_alpha: float = 0.0
    offline_pairs: int = 0
    seed: int = 0

    def __post_init__(self):
        check_instance(self.dpo, DPOConfig, "dpo")
        check_positive_ints(self, ("iterations", "pairs_per_iteration"), numpy_ints=False, allow_bool=False)
        check_choice(self.sampler, "sampler", SAMPLERS)
        check_positive_float(self.xpo_alpha, "xpo_alpha", allow_zero=True, finite=False)
        if self.xpo_alpha > 0 and self.sampler != "reference":
            raise ValueError("xpo_alpha: XPO's term needs sampler='reference' (a² ∼ π0)")
        check_int(self.offline_pairs, "offline_pairs", minimum=0, numpy_ints=False)


@dataclass(frozen=True)
class DPOResult:
    """``logprobs``: final policy; ``history``: one row per seed × round (iteration, comparisons,
    kl_to_target = E_x KL(π_t ‖ O(r*, β, π0)), subopt, kl_to_ref, gold_reward)."""

    logprobs: np.ndarray
    history: pd.DataFrame


def _record(rows, problem, lp, beta, iteration, comparisons, fit_seconds=float("nan")):
    target = problem.optimal_policy(beta)
    kl_t = kernels.weigh_contexts(np.maximum(kernels.kl(lp, target), 0.0), problem.context_probs)
    subopt = problem.suboptimality(lp, beta)
    kl_ref = problem.kl_to_ref(lp)
    gold = problem.gold_reward(lp)
    for seed in range(lp.shape[0]):
        rows.append({"iteration": iteration, "seed": seed, "comparisons": comparisons,
                     "kl_to_target": float(kl_t[seed]), "subopt": float(subopt[seed]),
                     "kl_to_ref": float(kl_ref[seed]), "gold_reward": float(gold[seed]),
                     "fit_seconds": fit_seconds})


def online_dpo(problem, config: OnlineDPOConfig, *, progress: bool = False) -> DPOResult:
    """Iterative DPO / XPO on ``problem`` (batched over seeds): labels from BT on the true reward."""
    from rlbandit.problem import stack_problems

    _check_problem(problem)
    check_instance(config, OnlineDPOConfig, "config")
    batched = bool(problem.batch_shape)
    prob = problem if batched else stack_problems([problem])
    rng = np.random.default_rng(config.seed)
    data = PreferenceData.empty(prob.batch_shape)
    if config.offline_pairs:
        data = prob.sample_preferences(prob.ref_logprobs, prob.ref_logprobs, config.offline_pairs, rng, source=0)
    explore_ctx, explore_act = [], []
    lp = np.array(prob.ref_logprobs)
    init = None
    rows: list[dict] = []
    start, evaluating = time.perf_counter(), 0.0  # fit_seconds: training time so far, evaluations excluded

    def record(t):
        nonlocal evaluating
        begin = time.perf_counter()
        _record(rows, prob, lp, config.dpo.beta, t, data.n, begin - start - evaluating)
        evaluating += time.perf_counter() - begin

    record(0)
    iterator = range(1, config.iterations + 1)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="online-dpo")
    for t in iterator:
        new, explore = SAMPLERS[config.sampler](prob, lp, config.pairs_per_iteration, rng, t)
        data = new if data.n == 0 else data.concat(new)
        if explore is not None:
            explore_ctx.append(explore[0])
            explore_act.append(explore[1])
        xpo = (np.concatenate(explore_ctx, -1), np.concatenate(explore_act, -1)) if config.xpo_alpha > 0 else None
        policy = train_dpo(prob, data, config.dpo, init=init, explore=xpo, alpha=config.xpo_alpha)
        init = (policy.w if config.dpo.policy == "log_linear" else policy.logits).detach().numpy()
        lp = policy.logprobs().detach().numpy()
        record(t)
    return DPOResult(lp if batched else lp[0], pd.DataFrame(rows))
