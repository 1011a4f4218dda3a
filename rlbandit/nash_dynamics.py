"""Learning dynamics of the KL-regularised preference game beyond the exact solvers of
:mod:`rlbandit.nash`: stochastic (sampled) Nash-MD.

Nash-MD (Munos et al. 2023) needs the payoff P(a ≻ π_t^τ) = E_{b∼π_t^τ} P(a ≻ b) of every action
against the regularised opponent π_t^τ ∝ π_t^{1−η_tτ} π0^{η_tτ}. In practice the opponent is only
sampled: :func:`stochastic_nash_md_iterates` replaces the expectation by the mean over ``n_samples``
opponents b_1 … b_m ∼ π_t^τ drawn from an explicit ``numpy.random.Generator``. The estimate is
unbiased and lies in [0, 1], so Theorem 1's argument bounds the *expected* KL(π* ‖ π_T): the noise
enters the one-step inequality only through a zero-mean linear term.
"""

from __future__ import annotations

import numpy as np

from rlbandit._checks import as_float_array, check_eta, check_int, check_logprobs, integer, logprob_array, real_number
from rlbandit.kernels import normalize_logits
from rlbandit.preference_models import check_preference

__all__ = ["stochastic_nash_md_iterates", "sample_actions"]


def sample_actions(logprobs: np.ndarray, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """``n_samples`` i.i.d. actions from each distribution exp(logprobs) (..., K) → indices (..., m)."""
    logprobs = logprob_array(logprobs, "logprobs")
    n_samples = integer(n_samples, "n_samples", minimum=0)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    return _sample_actions(logprobs, n_samples, rng)


def _sample_actions(logprobs: np.ndarray, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    cdf = np.cumsum(np.exp(logprobs), axis=-1)
    u = rng.random(logprobs.shape[:-1] + (n_samples,)) * cdf[..., -1:]
    index = (u[..., :, None] >= cdf[..., None, :]).sum(axis=-1)
    return np.minimum(index, logprobs.shape[-1] - 1)


def stochastic_nash_md_iterates(pref, ref_logprobs, eta, n_steps: int, n_samples: int, rng: np.random.Generator,
                                *, step: float | None = None) -> np.ndarray:
    """Nash-MD with the opponent's expectation replaced by ``n_samples`` samples, shape (T+1, ..., X, K).

        π_t^τ ∝ π_t^{1−η_tτ} π0^{η_tτ};   b_1 … b_m ∼ π_t^τ (per context, fresh each step);
        π_{t+1} ∝ π_t^τ exp(η_t · (1/m) Σ_i P(· ≻ b_i));   τ = η, π_0 = π0,

    with η_t = 2/(τ(t+2)) (Theorem 1's schedule) or the constant ``step`` ∈ (0, 1/η]. As m → ∞ it
    becomes :func:`rlbandit.nash.nash_md_iterates`.
    """
    pref = check_preference(pref)
    ref = as_float_array(ref_logprobs, "ref_logprobs", min_ndim=2)
    check_logprobs(ref, "ref_logprobs")
    try:
        ref = np.array(np.broadcast_to(ref, pref.shape[:-1]))
    except ValueError:
        raise ValueError(f"ref_logprobs: shape {ref.shape} does not broadcast to pref's {pref.shape[:-1]}") from None
    eta = check_eta(eta)
    check_int(n_steps, "n_steps", minimum=0)
    check_int(n_samples, "n_samples", minimum=1)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    if step is not None:
        step = real_number(step, "step", minimum=0.0, strict=True, maximum=1.0 / eta)
    support = np.isfinite(ref)
    ref0 = np.where(support, ref, 0.0)
    logp = ref.copy()
    out = [logp]
    for t in range(n_steps):
        lr = 2.0 / (eta * (t + 2)) if step is None else step
        alpha = min(1.0, lr * eta)
        mixture = normalize_logits(np.where(support, (1 - alpha) * np.where(support, logp, 0.0) + alpha * ref0,
                                            -np.inf))
        opponents = _sample_actions(mixture, n_samples, rng)  # (..., X, m)
        index = np.broadcast_to(opponents[..., None, :], pref.shape[:-1] + (n_samples,))
        estimate = np.take_along_axis(pref, index, axis=-1).mean(axis=-1)  # (..., X, K)
        logp = normalize_logits(np.where(support, mixture + lr * estimate, -np.inf))
        out.append(logp)
    return np.stack(out)
