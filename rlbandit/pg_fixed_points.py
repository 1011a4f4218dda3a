"""Closed-form fixed points of exact-gradient policy gradient on the KL-regularised bandit (DESIGN §5).

With exact gradients (the ``exact`` mode of :mod:`rlbandit.policy_gradient`) each KL option —
Schulman 2020's estimator k ∈ {k1, k2, k3} (:mod:`rlbandit.losses`), placed in the reward
(R = r − η k) or in the loss (+ η k) — drives the tabular policy to a fixed point. Per context x,
for rewards r and π0 of shape (..., K) (log-probs in and out, shapes as :func:`rlbandit.oracle.gibbs`):

- k1 in the reward (the classic r − η log π/π0; PPO-RLHF, Ziegler et al. 2019): the expected update
  is ∇J exactly, so the fixed point is the Gibbs policy O(r, η, π0);
- k2 in the loss: ∇ E_{sg π}[½ (log π/π0)²] = ∇ KL(π‖π0), so again ∇J and the Gibbs policy;
- k3 in the loss (GRPO's default): ∇ E_{sg π}[π0/π − 1 − log π0/π] = ∇ KL(π0‖π) (the *forward* KL),
  so it maximises E_π r − η KL(π0‖π): π(a) = η π0(a)/(λ − r(a)) with λ > max r solving Σ π = 1
  (:func:`forward_kl_policy`);
- k1 in the loss: E_{sg π}[∇ log π] = 0 — no regularisation at all (π → argmax r);
- k2 / k3 in the reward: biased regularisers with no closed-form fixed point here.

:data:`FIXED_POINTS` maps the four closed forms, :func:`fixed_point` looks one up.

Group-normalised advantages (GRPO, Shao et al. 2024) divide by the per-prompt std σ_x of the reward;
with the KL in the loss this rescales the reward per prompt, and the fixed point is the Gibbs policy
at the effective temperature η·σ_x(π) (:func:`grpo_fixed_point`) — and for small η no such interior
point exists, so the policy collapses to the greedy one; ``dr_grpo`` (Liu et al. 2025) drops the
division and keeps the Gibbs fixed point. These are the fixed points of the exact mode, whose group
moments are exact. Everything here is numpy (no torch).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from rlbandit import kernels
from rlbandit._checks import check_broadcast, check_eta, integer, logprob_array, real_array

__all__ = ["fixed_point", "forward_kl_policy", "grpo_fixed_point", "FIXED_POINTS"]


def forward_kl_policy(rewards, ref_logprobs, eta) -> np.ndarray:
    """argmax_π E_π r − η KL(π0 ‖ π) per row (the fixed point of "k3 in the loss"), as log-probs.

    Stationarity gives π(a) = η π0(a) / (λ − r(a)) with λ ∈ (max_{π0>0} r, max r + η] the root of
    Σ_a η π0(a)/(λ − r(a)) = 1 (monotone decreasing in λ; found by bisection to machine precision).
    Shapes as :func:`rlbandit.oracle.gibbs`.
    """
    eta = check_eta(eta)
    rewards, ref_logprobs = _rewards_and_ref(rewards, ref_logprobs)
    return _forward_tilt(rewards, ref_logprobs, np.full(rewards.shape[:-1] + (1,), eta))


def _rewards_and_ref(rewards, ref_logprobs) -> tuple[np.ndarray, np.ndarray]:
    """r (..., K), finite, and log π0 broadcastable to it, rows normalised (−inf = no mass), broadcast."""
    rewards = real_array(rewards, "rewards", min_ndim=1)
    ref_logprobs = logprob_array(ref_logprobs, "ref_logprobs")
    shape = check_broadcast(rewards.shape, ref_logprobs.shape, "rewards", "ref_logprobs")
    return np.broadcast_to(rewards, shape), np.broadcast_to(ref_logprobs, shape)


def _forward_tilt(rewards, ref_logprobs, temperature):
    """argmax_π E_π r − τ KL(π0‖π) with a per-row temperature τ (..., 1): π = τ π0/(λ − r)."""
    from scipy.special import logsumexp

    support = np.isfinite(ref_logprobs)
    p0 = np.exp(ref_logprobs)
    top = np.where(support, rewards, -np.inf).max(-1, keepdims=True)
    lo, hi = top.copy(), top + temperature
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            total = np.where(support, temperature * p0 / (mid - rewards), 0.0).sum(-1, keepdims=True)
        big = total > 1.0
        lo, hi = np.where(big, mid, lo), np.where(big, hi, mid)
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = np.where(support, np.log(temperature) + ref_logprobs - np.log(hi - rewards), -np.inf)
    return logp - logsumexp(logp, axis=-1, keepdims=True)


def grpo_fixed_point(rewards, ref_logprobs, eta, *, kl_estimator: str = "k2", iterations: int = 5000) -> np.ndarray:
    """The stable fixed point of std-normalised group advantages A = (r − mean_π r)/σ_π(x) with an
    exact KL gradient in the loss (exact moments), σ_π(x) = std_{a∼π}[r(x,a)].

    Dividing the reward term by σ_π while the KL term keeps its weight η is the KL term at weight
    η σ_π: the stationarity condition is that of the KL option at the effective temperature ησ_π,

    - ``kl_estimator="k2"`` (∇ KL(π‖π0)):  π = O(r, η σ_π, π0), a Gibbs policy;
    - ``kl_estimator="k3"`` (GRPO's default, ∇ KL(π0‖π)):  π = τ π0/(λ − r) with τ = η σ_π, the
      forward-KL policy at temperature ησ_π — *not* the forward-KL policy at η
      (:func:`forward_kl_policy`), which is the fixed point only without the std division (Dr. GRPO).

    Per context, σ solves σ = h(σ) := std of r under the tilt at temperature ησ. The iteration
    σ ← h(σ) started from h(∞) = std_π0(r) descends to the largest root, the one the dynamics reach
    from π0. When no positive root exists (small η: e.g. two actions with r = (1, 0) and k2 need
    η·max_p √(p(1−p))·logit(p)/π0 ≥ 1) the iteration tends to 0 and the policy collapses to the
    greedy one — GRPO's per-prompt normalisation then regularises nothing. With the KL in the
    reward (k1) the std only rescales the step: the fixed point stays Gibbs at η. Returns log-probs
    of shape ``rewards``.
    """
    if kl_estimator not in ("k2", "k3"):
        raise ValueError(f"kl_estimator: the std-normalised fixed point is known for 'k2' and 'k3' in the loss, "
                         f"got {kl_estimator!r}")
    tilt = _tilt if kl_estimator == "k2" else _forward_tilt
    eta = check_eta(eta)
    iterations = integer(iterations, "iterations")
    rewards, ref_logprobs = _rewards_and_ref(rewards, ref_logprobs)
    support = np.isfinite(ref_logprobs)
    r = np.where(support, rewards, 0.0)

    def std_under(logp):
        p = np.exp(logp)
        mean = (p * r).sum(-1, keepdims=True)
        return np.sqrt(np.maximum((p * (r - mean) ** 2).sum(-1, keepdims=True), 0.0))

    sigma = std_under(ref_logprobs)
    for _ in range(iterations):
        collapsed = sigma < 1e-12
        new = std_under(tilt(r, ref_logprobs, eta * np.maximum(sigma, 1e-300)))
        sigma = np.where(collapsed, 0.0, new)
    greedy = _greedy(rewards, ref_logprobs, eta)
    tilted = tilt(r, ref_logprobs, eta * np.maximum(sigma, 1e-300))
    return np.where(sigma > 1e-12, tilted, greedy)


def _tilt(rewards, ref_logprobs, temperature):
    """O(r, τ, π0) with a per-row temperature τ (..., 1)."""
    from scipy.special import logsumexp

    support = np.isfinite(ref_logprobs)
    top = np.where(support, rewards, -np.inf).max(-1, keepdims=True)
    z = np.where(support, (rewards - top) / temperature, 0.0) + ref_logprobs
    return z - logsumexp(z, axis=-1, keepdims=True)


def _greedy(rewards, ref_logprobs, eta):
    top = np.where(np.isfinite(ref_logprobs), rewards, -np.inf).max(-1, keepdims=True)
    logp = np.where(np.isfinite(ref_logprobs) & (rewards >= top), ref_logprobs, -np.inf)
    from scipy.special import logsumexp

    return logp - logsumexp(logp, axis=-1, keepdims=True)


#: (kl_estimator, kl_placement) → exact fixed point (rewards, ref_logprobs, eta) → log-probs.
FIXED_POINTS: dict[tuple[str, str], Callable] = {
    ("k1", "reward"): lambda r, ref, eta: kernels.gibbs(r, ref, check_eta(eta)),
    ("k2", "loss"): lambda r, ref, eta: kernels.gibbs(r, ref, check_eta(eta)),
    ("k3", "loss"): forward_kl_policy,
    ("k1", "loss"): _greedy,
}


def fixed_point(rewards, ref_logprobs, eta, kl_estimator: str = "k1", kl_placement: str = "reward") -> np.ndarray:
    """The exact fixed point of exact-gradient policy gradient (tabular class) for a KL option:
    Gibbs for k1-in-reward and k2-in-loss; the forward-KL policy for k3-in-loss; the greedy
    (argmax, unregularised) limit for k1-in-loss. Other combinations have no closed form here."""
    key = (kl_estimator, kl_placement)
    if key not in FIXED_POINTS:
        raise ValueError(f"kl_estimator, kl_placement: no closed-form fixed point for {key}; known: {sorted(FIXED_POINTS)}")
    return FIXED_POINTS[key](*_rewards_and_ref(rewards, ref_logprobs), eta)
