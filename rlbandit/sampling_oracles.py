"""Sampling-based approximate oracles: best-of-N in closed form, rejection-sampling selection, and
rejection-sampling fine-tuning (DESIGN §5).

Best-of-N under π0 with reward r (ties among the N draws broken uniformly at random). Write
F(a) = π0(r(x,·) ≤ r(x,a)), F⁻(a) = π0(r(x,·) < r(x,a)) and G(a) = F(a) − F⁻(a) (the mass of a's tie
group). The best of N i.i.d. draws lands in a's tie group with probability F^N − (F⁻)^N, and within
the group each member is chosen in proportion to its π0 mass, so

    π_N(a|x) = π0(a|x) / G(a) · (F(a)^N − F⁻(a)^N)

(Beirami et al. 2024, "Theoretical guarantees on the best-of-n alignment policy", Lemma 1; with
distinct rewards G = π0(a)). Everything is computed in log space: log(F^N − F⁻^N) =
N log F + log(−expm1(N (log F⁻ − log F))), with log F taken from the lower cumulative mass when it
is small and from log1p(−upper mass) when it is close to one, so that tiny tails and huge N stay
exact. Facts (property tests): KL(π_N‖π0) ≤ log N − (N−1)/N; the win rate against π0 (ties count
½) is ≤ N/(N+1), with equality for a continuous reward; π_N never beats the Gibbs policy of the
same KL on expected reward (Gibbs is the KL-constrained optimum).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from rlbandit import kernels
from rlbandit._checks import (
    check_instance,
    as_float_array,
    check_broadcast,
    check_finite,
    check_logprobs,
    integer,
    logprob_array,
    real_array,
)
from rlbandit.kernels import expected_reward

__all__ = [
    "best_of_n",
    "best_of_n_kl",
    "best_of_n_win_rate",
    "best_of_n_kl_bound",
    "gibbs_matching_kl",
    "gibbs_at_average_kl",
    "select_top_per_prompt",
    "select_top_k",
    "RSConfig",
    "rejection_sampling_finetune",
]


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: the number of draws must be a positive integer, got {n!r}")
    return int(n)


def _tie_masses(rewards: np.ndarray, ref_logprobs: np.ndarray):
    """Per action: log F (mass with reward ≤ r(a)), log F⁻ (mass with reward < r(a)), log G.

    Shapes (..., K). Zero-mass actions still get their group's values (their own mass adds 0).
    """
    order = np.argsort(rewards, axis=-1, kind="stable")
    r_sorted = np.take_along_axis(rewards, order, -1)
    lp_sorted = np.take_along_axis(ref_logprobs, order, -1)
    k = rewards.shape[-1]
    idx = np.broadcast_to(np.arange(k), rewards.shape)
    new_group = np.ones(rewards.shape, dtype=bool)
    new_group[..., 1:] = r_sorted[..., 1:] != r_sorted[..., :-1]
    group_end = np.ones(rewards.shape, dtype=bool)
    group_end[..., :-1] = new_group[..., 1:]
    first = np.maximum.accumulate(np.where(new_group, idx, -1), axis=-1)
    last = np.flip(np.minimum.accumulate(np.flip(np.where(group_end, idx, k), -1), axis=-1), -1)
    with np.errstate(divide="ignore"):
        lower = np.logaddexp.accumulate(lp_sorted, axis=-1)  # log mass of sorted[0..i]
        upper = np.flip(np.logaddexp.accumulate(np.flip(lp_sorted, -1), axis=-1), -1)  # sorted[i..K-1]
    neg_inf = np.full(rewards.shape[:-1] + (1,), -np.inf)
    lower_ext = np.concatenate([neg_inf, lower], -1)  # lower_ext[i] = log mass of sorted[0..i-1]
    upper_ext = np.concatenate([upper, neg_inf], -1)  # upper_ext[i] = log mass of sorted[i..K-1]
    log_f_low = np.take_along_axis(lower_ext, last + 1, -1)  # ≤ r: from below
    log_above = np.take_along_axis(upper_ext, last + 1, -1)  # > r
    log_fm_low = np.take_along_axis(lower_ext, first, -1)  # < r: from below
    log_at_or_above = np.take_along_axis(upper_ext, first, -1)  # ≥ r
    with np.errstate(divide="ignore", invalid="ignore"):
        log_f = np.where(log_f_low < np.log(0.5), log_f_low, np.log1p(-np.exp(log_above)))
        log_fm = np.where(log_fm_low < np.log(0.5), log_fm_low, np.log1p(-np.exp(log_at_or_above)))
    log_g = _group_logmass(lp_sorted, first, last, _log_diff(log_f, log_fm))
    inverse = np.argsort(order, axis=-1, kind="stable")
    back = lambda a: np.take_along_axis(a, inverse, -1)  # noqa: E731
    return back(log_f), back(log_fm), back(log_g)


def _log_diff(log_a: np.ndarray, log_b: np.ndarray) -> np.ndarray:
    """log(exp(a) − exp(b)) for a ≥ b (−inf when equal)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(log_b == -np.inf, log_a, log_a + np.log(-np.expm1(np.minimum(log_b - log_a, 0.0))))


def _group_logmass(lp_sorted, first, last, fallback):
    """log of the total π0 mass of each action's tie group, summed directly over the group when
    groups are small (exact), via the cumulative difference otherwise."""
    size = last - first + 1
    if size.max() <= 64:
        k = lp_sorted.shape[-1]
        offsets = np.arange(int(size.max()))
        cols = first[..., None] + offsets  # (..., K, S)
        valid = cols <= last[..., None]
        cols = np.minimum(cols, k - 1)
        vals = np.take_along_axis(lp_sorted[..., None, :], cols, -1)
        vals = np.where(valid, vals, -np.inf)
        with np.errstate(divide="ignore"):
            peak = vals.max(-1, keepdims=True)
            safe = np.where(np.isfinite(peak), peak, 0.0)
            return (np.log(np.exp(vals - safe).sum(-1)) + safe[..., 0])
    return fallback


def _check_bon_inputs(rewards, ref_logprobs, n):
    rewards = as_float_array(rewards, "rewards", min_ndim=1)
    ref_logprobs = as_float_array(ref_logprobs, "ref_logprobs", min_ndim=1)
    check_finite(rewards, "rewards")
    check_logprobs(ref_logprobs, "ref_logprobs")
    shape = check_broadcast(rewards.shape, ref_logprobs.shape, "rewards", "ref_logprobs")
    return (np.broadcast_to(rewards, shape).astype(np.float64), np.broadcast_to(ref_logprobs, shape).astype(np.float64),
            _check_n(n))


def _best_of_n_unchecked(rewards, ref_logprobs, n):
    log_f, log_fm, log_g = _tie_masses(rewards, ref_logprobs)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.minimum(n * (log_fm - log_f), 0.0)
        log_top = n * log_f + np.log(-np.expm1(gap))
        out = ref_logprobs - log_g + log_top
    out = np.where(np.isfinite(ref_logprobs), out, -np.inf)
    # renormalise away the last ulp
    return out - logsumexp(out, axis=-1, keepdims=True)


def best_of_n(rewards, ref_logprobs, n) -> np.ndarray:
    """Exact log-probabilities of the best-of-N policy under π0 (ties broken uniformly at random).

    Args:
        rewards: r(x, a), shape (..., K), finite (the reward the selection uses, e.g. a proxy).
        ref_logprobs: log π0(a|x), broadcastable to ``rewards``; −inf = never drawn.
        n: N ≥ 1 draws (N = 1 returns π0).

    Returns:
        log π_N, the broadcast shape (..., K):
        π_N(a) = π0(a)/G(a) · (F(a)^N − F⁻(a)^N) (module docstring).
    """
    rewards, ref_logprobs, n = _check_bon_inputs(rewards, ref_logprobs, n)
    return _best_of_n_unchecked(rewards, ref_logprobs, n)


def best_of_n_kl(rewards, ref_logprobs, n) -> np.ndarray:
    """Exact KL(π_N ‖ π0) per row, shape (...,); ≤ log N − (N−1)/N (Beirami et al. 2024, Thm 1)."""
    rewards, ref_logprobs, n = _check_bon_inputs(rewards, ref_logprobs, n)
    return np.maximum(kernels.kl(_best_of_n_unchecked(rewards, ref_logprobs, n), ref_logprobs), 0.0)


def best_of_n_kl_bound(n) -> float:
    """The analytical formula log N − (N−1)/N: exact for continuous rewards, an upper bound always."""
    n = _check_n(n)
    return float(np.log(n) - (n - 1) / n)


def best_of_n_win_rate(rewards, ref_logprobs, n) -> np.ndarray:
    """P(r(x, a) > r(x, b)) + ½ P(r(x, a) = r(x, b)) for a ∼ π_N, b ∼ π0, per row (...,).

    = Σ_a π_N(a) (F⁻(a) + G(a)/2) ≤ N/(N+1) (equality only for a continuous reward distribution;
    Chebyshev's integral inequality on each tie group).
    """
    rewards, ref_logprobs, n = _check_bon_inputs(rewards, ref_logprobs, n)
    logp = _best_of_n_unchecked(rewards, ref_logprobs, n)
    _, log_fm, log_g = _tie_masses(rewards, ref_logprobs)
    score = np.exp(log_fm) + 0.5 * np.exp(log_g)
    return expected_reward(logp, score)


def _kl_search_inputs(rewards, ref_logprobs, target_kl, iterations, event_ndim: int):
    """Validated inputs of the bisections on η: rewards and log π0 with ``event_ndim`` trailing axes
    (K, or X and K) at least, their broadcast shape, the targets (finite, ≥ 0) broadcast to the
    leading axes, and the iteration count."""
    rewards = as_float_array(rewards, "rewards", min_ndim=event_ndim)
    ref_logprobs = as_float_array(ref_logprobs, "ref_logprobs", min_ndim=event_ndim)
    check_finite(rewards, "rewards")
    check_logprobs(ref_logprobs, "ref_logprobs")
    shape = check_broadcast(rewards.shape, ref_logprobs.shape, "rewards", "ref_logprobs")
    iterations = integer(iterations, "iterations")
    target = np.broadcast_to(real_array(target_kl, "target_kl", finite=False), shape[:-event_ndim])
    if (target < 0).any() or not np.isfinite(target).all():
        raise ValueError("target_kl: must be finite and >= 0")
    return rewards, ref_logprobs, shape, target, iterations


def gibbs_matching_kl(rewards, ref_logprobs, target_kl, *, iterations: int = 100):
    """The Gibbs policy O(r, η, π0) whose KL(·‖π0) equals ``target_kl``, per row.

    KL(O(r, η)‖π0) decreases monotonically in η, so η is found by bisection on log η between
    10⁻³ × the smallest reward gap (≈ greedy) and 10¹² × the reward spread (≈ π0). A target beyond the greedy limit's KL returns the smallest η.
    This is the frontier best-of-N is compared against: at equal KL, Gibbs has the largest E_π r.

    Returns:
        (log-probs (..., K), η (...,)).
    """
    rewards, ref_logprobs, shape, target, iterations = _kl_search_inputs(rewards, ref_logprobs, target_kl,
                                                                         iterations, 1)
    rewards, ref_logprobs = np.broadcast_to(rewards, shape), np.broadcast_to(ref_logprobs, shape)
    support = np.isfinite(ref_logprobs)
    masked = np.where(support, rewards, np.nan)
    top = np.nanmax(masked, axis=-1, keepdims=True)
    spread = top[..., 0] - np.nanmin(masked, axis=-1)
    ordered = np.sort(np.where(support, rewards, np.inf), axis=-1)
    gaps = np.diff(ordered, axis=-1)
    gaps = np.where(np.isfinite(gaps) & (gaps > 0), gaps, np.inf)
    gap_min = np.where(np.isfinite(gaps.min(-1, initial=np.inf)), gaps.min(-1, initial=np.inf), 1.0)
    constant = ~(spread > 0)
    # log η from "greedy" (η ≪ smallest gap) to "π0" (η ≫ spread)
    lo = np.where(constant, 0.0, np.log(np.where(constant, 1.0, gap_min)) - np.log(1e3))
    hi = np.where(constant, 0.0, np.log(np.where(constant, 1.0, spread)) + np.log(1e12))

    def tilt(log_eta):
        with np.errstate(invalid="ignore"):
            z = np.where(support, (rewards - top) / np.exp(log_eta)[..., None], 0.0) + ref_logprobs
        return z - logsumexp(z, axis=-1, keepdims=True)

    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        kl_mid = np.maximum(kernels.kl(tilt(mid), ref_logprobs), 0.0)
        too_far = kl_mid > target
        lo, hi = np.where(too_far, mid, lo), np.where(too_far, hi, mid)
    return np.minimum(tilt(hi), 0.0), np.exp(hi)


def gibbs_at_average_kl(rewards, ref_logprobs, target_kl, context_probs=None, *, iterations: int = 100):
    """The Gibbs policy O(r, η, π0) with ONE η per problem whose context-averaged KL
    E_x KL(π_η(·|x)‖π0(·|x)) equals ``target_kl`` — the reports' "Gibbs at the same KL".

    A Gibbs policy is indexed by a single η, so this is the point of the exact reward–KL frontier
    at that average KL: among all policies with that E_x KL it has the largest E_x E_π r (it
    maximises E r − η KL). :func:`gibbs_matching_kl` matches every context separately instead
    (a different, per-context policy family). E_x KL(π_η‖π0) decreases in η: bisection on log η
    from 10⁻⁶ to 10¹² × the reward spread.

    Args:
        rewards: r, shape (..., X, K); ref_logprobs: log π0, broadcastable; target_kl: (...,) ≥ 0;
        context_probs: d0, (X,) or (..., X) (uniform when None).

    Returns:
        (log-probs (..., X, K), η (...,)); a target beyond the greedy limit returns the smallest η.
    """
    rewards, ref_logprobs, shape, target, iterations = _kl_search_inputs(rewards, ref_logprobs, target_kl,
                                                                         iterations, 2)
    support = np.isfinite(ref_logprobs)
    masked = np.where(support, rewards, np.nan)
    spread = np.nanmax(masked, axis=(-2, -1)) - np.nanmin(masked, axis=(-2, -1))
    scale = np.where(spread > 0, spread, 1.0)
    lo, hi = np.log(scale * 1e-6), np.log(scale * 1e12)

    def policy(log_eta):
        return kernels.gibbs(rewards / np.exp(log_eta)[..., None, None], ref_logprobs, 1.0)

    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        kl_mid = kernels.weigh_contexts(np.maximum(kernels.kl(policy(mid), ref_logprobs), 0.0), context_probs)
        too_far = kl_mid > target
        lo, hi = np.where(too_far, mid, lo), np.where(too_far, hi, mid)
    return policy(hi), np.exp(hi)


# ----------------------------------------------------------------------------------------------
# Rejection-sampling selection (RLHF book, ch. "Rejection Sampling")


def select_top_per_prompt(rewards) -> np.ndarray:
    """S(R) = [argmax_j r_{1j}, …, argmax_j r_{Mj}]: the best completion's column per prompt.

    Args:
        rewards: R, shape (..., M, N) (M prompts × N completions), finite.

    Returns:
        int64 column indices, shape (..., M) (0-based; the first maximiser on ties).
    """
    rewards = as_float_array(rewards, "rewards", min_ndim=2)
    check_finite(rewards, "rewards")
    if rewards.shape[-1] == 0:
        raise ValueError("rewards: need at least one completion per prompt")
    return np.argmax(rewards, axis=-1).astype(np.int64)


def select_top_k(rewards, k: int) -> np.ndarray:
    """S_K(R_flat): flat indices of the K highest rewards over all prompt–completion pairs.

    Args:
        rewards: R, shape (..., M, N); the flat index of (i, j) is i·N + j (row-major), so prompt
            = index // N and completion = index % N.
        k: 1 ≤ K ≤ M·N.

    Returns:
        int64 flat indices, shape (..., K), ordered from the highest reward down; ties are broken
        by the lower flat index (a stable sort), so the result is deterministic.
    """
    rewards = real_array(rewards, "rewards", min_ndim=2)
    flat = rewards.reshape(rewards.shape[:-2] + (-1,))
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= flat.shape[-1]:
        raise ValueError(f"k: must be an integer in [1, {flat.shape[-1]}], got {k!r}")
    order = np.argsort(-flat, axis=-1, kind="stable")
    return order[..., :k].astype(np.int64)


# ----------------------------------------------------------------------------------------------
# Rejection-sampling fine-tuning


#: selection rule name → function (rewards (S, M, N), k) → boolean keep-mask (S, M, N).
def _keep_top_per_prompt(rewards: np.ndarray, k: int) -> np.ndarray:
    keep = np.zeros(rewards.shape, dtype=bool)
    np.put_along_axis(keep, select_top_per_prompt(rewards)[..., None], True, -1)
    return keep


def _keep_top_k(rewards: np.ndarray, k: int) -> np.ndarray:
    keep = np.zeros(rewards.shape[:-2] + (rewards.shape[-2] * rewards.shape[-1],), dtype=bool)
    np.put_along_axis(keep, select_top_k(rewards, k), True, -1)
    return keep.reshape(rewards.shape)


SELECTIONS = {"top_per_prompt": _keep_top_per_prompt, "top_k": _keep_top_k}


@dataclass(frozen=True)
class RSConfig:
    """Rejection-sampling fine-tuning (RAFT / ReST-style, iterated ``rounds`` times).

    Attributes:
        n: completions sampled per prompt (N).
        prompts: prompts per round (M), drawn from d0.
        selection: ``"top_per_prompt"`` or ``"top_k"`` (keep the ``top_k`` best pairs overall).
        top_k: K for ``"top_k"`` (default M, one per prompt on average).
        rounds: sample from the current policy, select, refit — repeated.
        policy: ``"tabular"`` (the fit is the exact maximum-likelihood solution: per-context
            empirical frequencies of the kept actions, smoothed by ``prior`` pseudo-counts of π0)
            or ``"log_linear"`` (maximum likelihood over π_w ∝ π0 exp(φw/η) by L-BFGS).
        eta: η of the log-linear class (its temperature only).
        prior: pseudo-count of π0 per context for the tabular fit (0 = pure empirical; contexts
            with no kept sample keep the previous policy).
        reg: ridge on w for the log-linear fit.
        seed: seed of the numpy generator.
    """

    n: int = 8
    prompts: int = 64
    selection: str = "top_per_prompt"
    top_k: int | None = None
    rounds: int = 1
    policy: str = "tabular"
    eta: float = 1.0
    prior: float = 0.0
    reg: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        _check_n(self.n)
        if not isinstance(self.prompts, int) or self.prompts < 1:
            raise ValueError(f"prompts: must be a positive integer, got {self.prompts!r}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection: unknown {self.selection!r}; expected one of {sorted(SELECTIONS)}")
        if self.top_k is not None and not 1 <= self.top_k <= self.n * self.prompts:
            raise ValueError(f"top_k: must lie in [1, n·prompts = {self.n * self.prompts}], got {self.top_k}")
        if not isinstance(self.rounds, int) or self.rounds < 1:
            raise ValueError(f"rounds: must be a positive integer, got {self.rounds!r}")
        if self.policy not in ("tabular", "log_linear"):
            raise ValueError(f"policy: expected 'tabular' or 'log_linear', got {self.policy!r}")
        if not self.eta > 0:
            raise ValueError(f"eta: must be > 0, got {self.eta}")
        if self.prior < 0:
            raise ValueError(f"prior: must be >= 0, got {self.prior}")
        if self.reg < 0:
            raise ValueError(f"reg: must be >= 0, got {self.reg}")


def _fit_log_linear_mle(problem, contexts, actions, weights, eta, reg, w0):
    """max_w Σ_i log π_w(a_i|x_i) − (reg/2)‖w‖², π_w ∝ π0 exp(φw/η), batched over seeds (torch L-BFGS)."""
    import torch

    from rlbandit.policies import LogLinearPolicy

    policy = LogLinearPolicy(problem.features, problem.ref_logprobs, eta, init=w0)
    s_index = torch.arange(contexts.shape[0])[:, None]
    ctx = torch.as_tensor(contexts)
    act = torch.as_tensor(actions)
    wts = torch.as_tensor(weights, dtype=torch.float64)
    total = wts.sum(-1).clamp(min=1.0)
    opt = torch.optim.LBFGS(policy.parameters(), lr=1.0, max_iter=200, tolerance_grad=1e-10,
                            tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        lp = policy.logprobs()[s_index, ctx, act]
        loss = (-(wts * lp).sum(-1) / total).sum() + 0.5 * reg * (policy.w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return policy


def rejection_sampling_finetune(problem, config: RSConfig, rewards=None, logprobs=None) -> tuple[np.ndarray, "object"]:
    """Rejection-sampling fine-tuning: sample N completions for M prompts from the current policy,
    score them with ``rewards``, keep the selected pairs, refit the policy to them by maximum
    likelihood (SFT); repeat ``rounds`` times.

    Args:
        problem: a LinearBandit (batched over seeds or not).
        config: :class:`RSConfig`.
        rewards: the scoring reward table (..., X, K) (a proxy r̂); the true r* when None.
        logprobs: the starting policy; π0 when None.

    Returns:
        (log-probs of the fitted policy, shape of ``problem.ref_logprobs``; a pandas frame with one
        row per seed × round: round, seed, samples (completions drawn so far), kept, kl_to_ref).

    With ``top_per_prompt``, one round, the tabular class and prior 0, the fit converges (M → ∞)
    to the best-of-N policy π_N — which is how the study checks it.
    """
    import pandas as pd

    check_instance(config, RSConfig, "config")
    if not all(hasattr(problem, name) for name in ("batch_shape", "rewards", "ref_logprobs", "features")):
        raise ValueError(f"problem: expected a LinearBandit, got {type(problem).__name__}")
    if rewards is not None:
        rewards = real_array(rewards, "rewards", min_ndim=2)
    if logprobs is not None:
        logprobs = logprob_array(logprobs, "logprobs", min_ndim=2)
    rng = np.random.default_rng(config.seed)
    batched = bool(problem.batch_shape)
    prob = problem if batched else _add_batch(problem)
    s = prob.batch_shape[0]
    scores = prob.rewards if rewards is None else np.broadcast_to(np.asarray(rewards, dtype=np.float64), prob.rewards.shape)
    current = np.array(np.broadcast_to(prob.ref_logprobs if logprobs is None else logprobs, prob.ref_logprobs.shape))
    x, k = prob.n_contexts, prob.n_actions
    top_k = config.top_k if config.top_k is not None else config.prompts
    rows, w = [], None
    from rlbandit.preferences import sample_actions

    for round_ in range(config.rounds):
        contexts = prob.sample_contexts(config.prompts, rng)  # (S, M)
        ctx_rep = np.repeat(contexts, config.n, axis=-1)  # (S, M·N)
        actions = sample_actions(current, ctx_rep, rng)
        flat_rows = np.arange(s)[:, None]
        r = scores[flat_rows, ctx_rep, actions].reshape(s, config.prompts, config.n)
        keep = SELECTIONS[config.selection](r, top_k).reshape(s, -1)
        if config.policy == "tabular":
            counts = np.zeros((s, x, k))
            np.add.at(counts, (np.repeat(flat_rows, ctx_rep.shape[1], 1)[keep], ctx_rep[keep], actions[keep]), 1.0)
            counts += config.prior * np.exp(prob.ref_logprobs)
            totals = counts.sum(-1, keepdims=True)
            with np.errstate(divide="ignore", invalid="ignore"):
                fitted = np.log(counts) - np.log(totals)
            current = np.where(totals > 0, fitted, current)
        else:
            policy = _fit_log_linear_mle(prob, ctx_rep, actions, keep.astype(float), config.eta, config.reg, w)
            w = policy.w.detach().numpy().copy()
            current = policy.logprobs().detach().numpy()
        kl_ref = prob.kl_to_ref(current)
        for seed in range(s):
            rows.append({"round": round_ + 1, "seed": seed, "samples": (round_ + 1) * config.prompts * config.n,
                         "kept": int(keep[seed].sum()), "kl_to_ref": float(kl_ref[seed])})
    return (current if batched else current[0]), pd.DataFrame(rows)


def _add_batch(problem):
    from rlbandit.problem import stack_problems

    return stack_problems([problem])
