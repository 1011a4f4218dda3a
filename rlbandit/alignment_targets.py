"""Population optima of the direct-alignment losses on the tabular class (DESIGN §5): the policy
each loss converges to with unlimited data from a behaviour policy μ, so a trained policy can be
scored against its own target as well as against Gibbs.

With Bradley–Terry preferences p(a ≻ b | x) = σ(r(x,a) − r(x,b)) and pairs (a, b) ∼ μ × μ:

- DPO (sigmoid loss, β): the BT MLE of the implicit reward β log π/π0 is r, so π = O(r, β, π0),
  the Gibbs policy (:func:`rlbandit.oracle.gibbs`).
- IPO (Azar et al. 2024, trl's ``(h − 1/(2β))²``): the squared loss on h(a,b) = g(a) − g(b),
  g = log π/π0, is minimised at h = (2p(a ≻ b) − 1)/(2β); over the tabular class the weighted least
  squares gives g(a) − E_μ g = (P(a ≻ μ) − ½)/β, so

      π_IPO = O(P(· ≻ μ | x), β, π0),   P(a ≻ μ | x) = Σ_b μ(b|x) σ(r(x,a) − r(x,b)):

  the Gibbs policy of the *win rate against μ*, a bounded reward — IPO's optimum is not Gibbs of r.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from rlbandit import kernels
from rlbandit._checks import as_float_array, check_broadcast, check_finite, check_logprobs, check_positive_float

__all__ = ["ipo_target", "win_rate_against"]


def win_rate_against(rewards, behaviour_logprobs) -> np.ndarray:
    """P(a ≻ μ | x) = Σ_b μ(b|x) σ(r(x,a) − r(x,b)) under Bradley–Terry, shape (..., K).

    Args:
        rewards: r, shape (..., K), finite.
        behaviour_logprobs: log μ, broadcastable to ``rewards``.
    """
    rewards = as_float_array(rewards, "rewards", min_ndim=1)
    check_finite(rewards, "rewards")
    mu = as_float_array(behaviour_logprobs, "behaviour_logprobs", min_ndim=1)
    check_logprobs(mu, "behaviour_logprobs")
    shape = check_broadcast(rewards.shape, mu.shape, "rewards", "behaviour_logprobs")
    rewards, mu = np.broadcast_to(rewards, shape), np.broadcast_to(mu, shape)
    pairwise = expit(rewards[..., :, None] - rewards[..., None, :])  # [a, b] = σ(r(a) − r(b))
    return np.einsum("...ab,...b->...a", pairwise, np.exp(mu))


def ipo_target(rewards, ref_logprobs, beta, behaviour_logprobs=None) -> np.ndarray:
    """log π_IPO = log O(P(· ≻ μ | x), β, π0): IPO's population optimum on the tabular class.

    Args:
        rewards: the BT reward r, shape (..., K).
        ref_logprobs: log π0, broadcastable to ``rewards``.
        beta: IPO's β > 0 (trl's ``beta``; Azar et al.'s τ).
        behaviour_logprobs: log μ of the pairs' sampling policy (None: μ = π0, offline data).
    """
    beta = float(check_positive_float(beta, "beta"))
    ref = as_float_array(ref_logprobs, "ref_logprobs", min_ndim=1)
    check_logprobs(ref, "ref_logprobs")
    wins = win_rate_against(rewards, ref if behaviour_logprobs is None else behaviour_logprobs)
    return kernels.gibbs(wins, ref, beta)
