"""Learning the KL-regularised preference game from data (DESIGN §4; Ye, Xiong et al. 2024): the
BT-RLHF and general-preference policies of a dataset, and online iterative Nash learning — the
Nash world of :mod:`rlbandit.iterative` (:class:`NashWorld`), with the shared enhancers of
:mod:`rlbandit.enhancers`. The game, its exact quantities and solvers are in :mod:`rlbandit.nash`,
which also serves this module's names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rlbandit import kernels
from rlbandit._checks import (
    check_instance,
    check_choice,
    check_eta,
    check_int,
    check_positive_float,
    check_positive_ints,
    logprob_array,
    real_array,
)
from rlbandit.enhancers import ENHANCERS, EnhancerInput, EnhancerOptions
from rlbandit.geometry import covariance, mahalanobis_norm
from rlbandit.iterative import run_rounds
from rlbandit.nash import SOLVERS, duality_gap_per_context, min_response, solve
from rlbandit.preference_models import (
    PreferenceProblem,
    antisymmetric_features,
    fit_general,
    linear_general_unchecked,
    pair_features,
    unpack_weights,
    win_rate_unchecked,
)
from rlbandit.preferences import PreferenceData, sample_categorical
from rlbandit.reward import fit_bt

__all__ = ["ENHANCERS", "NashWorld", "OnlineNashConfig", "bt_rlhf_policy", "general_nash_policy", "policy_metrics",
           "run_online_nash"]


# ---------------------------------------------------------------------------------------------
# Learned policies: BT-RLHF and the Nash policy of a learned general model
# ---------------------------------------------------------------------------------------------

def bt_rlhf_policy(features, data, ref_logprobs, eta, reg: float) -> np.ndarray:
    """BT-RLHF: θ̂ = BT MLE on z = φ(a¹) − φ(a²), policy O(φθ̂, η, π0), shape (..., X, K)."""
    features, ref_logprobs = _check_learning(features, data, ref_logprobs)
    eta = check_eta(eta)
    if data.n == 0:
        return np.broadcast_to(ref_logprobs, features.shape[:-1]).copy()
    theta = fit_bt(data.diffs(features), data.labels, reg)
    rewards = (features * theta[..., None, None, :]).sum(axis=-1)
    return kernels.gibbs(rewards, ref_logprobs, eta)


def _check_learning(features, data, ref_logprobs) -> tuple[np.ndarray, np.ndarray]:
    """φ (..., X, K, d) finite, D a PreferenceData, log π0 with φ's (X, K)."""
    features = real_array(features, "features", min_ndim=3)
    check_instance(data, PreferenceData, "data")
    ref_logprobs = logprob_array(ref_logprobs, "ref_logprobs", min_ndim=2)
    if ref_logprobs.shape[-2:] != features.shape[-3:-1]:
        raise ValueError(f"ref_logprobs: expected shape (..., {features.shape[-3]}, {features.shape[-2]}) to match "
                         f"features of shape {features.shape}, got {ref_logprobs.shape}")
    return features, ref_logprobs


def general_nash_policy(features, data, ref_logprobs, eta, reg: float, method: str = "extragradient"):
    """Nash equilibrium of the MLE linear general model: (log π̂_η (..., X, K), P̂ (..., X, K, K), ŵ)."""
    features, ref_logprobs = _check_learning(features, data, ref_logprobs)
    dim = features.shape[-1]
    n_weights = dim * (dim - 1) // 2 + dim
    if data.n == 0:
        w = np.zeros(features.shape[:-3] + (n_weights,))
    else:
        w = fit_general(pair_features(features, data), data.labels, reg)
    skew, theta = unpack_weights(w, dim)
    pref_hat = linear_general_unchecked(features, skew, theta)
    return solve(pref_hat, ref_logprobs, eta, method=method), pref_hat, w


# ---------------------------------------------------------------------------------------------
# Online iterative Nash learning (Ye, Xiong et al. 2024)
# ---------------------------------------------------------------------------------------------

def _check_policy(logprobs, name: str, shape: tuple) -> np.ndarray:
    logprobs = logprob_array(logprobs, name, min_ndim=2)
    try:
        return np.broadcast_to(logprobs, shape)
    except ValueError:
        raise ValueError(f"{name}: shape {logprobs.shape} does not broadcast to the problem's {shape}") from None


@dataclass(frozen=True)
class OnlineNashConfig:
    """The online iterative Nash loop.

    Attributes:
        eta: η > 0.
        n_iterations: T ≥ 1 rounds of collection.
        batch_size: m ≥ 1 comparisons per round (per seed).
        enhancer: a key of :data:`rlbandit.enhancers.ENHANCERS` (``ucb``, the optimistic best
            response of Ye, Xiong et al.; ``uncertainty``; ``rejection``; ``reference``; ``self``;
            ``uniform``; ``optimistic`` needs per-action features and is not available here).
        beta: β ≥ 0, width of the uncertainty bonus.
        reg: λ > 0, ridge coefficient of both MLEs and of Σ_t = λI + Σ_i ψ_iψ_iᵀ.
        n_offline: comparisons from π0 × π0 collected before round 1.
        solver: Nash solver for the main agent.
        seed: seed of the data generator.
        n_draws: n of the ``rejection`` enhancer (draws of π¹ per context), ≥ 2.
    """

    eta: float = 0.2
    n_iterations: int = 10
    batch_size: int = 100
    enhancer: str = "ucb"
    beta: float = 1.0
    reg: float = 1.0
    n_offline: int = 0
    solver: str = "extragradient"
    seed: int = 0
    n_draws: int = 8

    def __post_init__(self):
        check_eta(self.eta)
        check_positive_ints(self, ("n_iterations", "batch_size"))
        check_int(self.n_offline, "n_offline", minimum=0)
        check_choice(self.enhancer, "enhancer", ENHANCERS)
        check_choice(self.solver, "solver", SOLVERS)
        check_positive_float(self.beta, "beta", allow_zero=True)
        check_positive_float(self.reg, "reg")
        if self.enhancer == "optimistic":
            raise ValueError("enhancer: 'optimistic' (Option I) needs per-action features; the Nash world's ψ is a "
                             "pair feature — use 'ucb' (the optimistic best response) or 'uncertainty'")
        EnhancerOptions(n_draws=self.n_draws)

    @property
    def enhancer_options(self) -> EnhancerOptions:
        return EnhancerOptions(n_draws=self.n_draws)


def policy_metrics(problem: PreferenceProblem, logprobs, eta, *, nash, bt) -> dict[str, np.ndarray]:
    """Exact metrics of a policy under the true P (each of shape batch_shape)."""
    check_instance(problem, PreferenceProblem, "problem")
    pref, ref, probs = problem.pref, problem.ref_logprobs, problem.context_probs
    eta = check_eta(eta)
    shape = ref.shape
    logprobs, nash, bt = (_check_policy(value, name, shape) for name, value in (("logprobs", logprobs),
                                                                                ("nash", nash), ("bt", bt)))
    kl_ref = kernels.weigh_contexts(np.maximum(kernels.kl(logprobs, ref), 0.0), probs)
    kl_bt = kernels.weigh_contexts(np.maximum(kernels.kl(bt, ref), 0.0), probs)
    win_bt = win_rate_unchecked(logprobs, bt, pref, probs)
    return {
        "exploitability": kernels.weigh_contexts(duality_gap_per_context(logprobs, pref, ref, eta), probs),
        "win_rate_vs_ref": win_rate_unchecked(logprobs, ref, pref, probs),
        "win_rate_vs_bt": win_bt,
        # the game's payoff f(π, π_BT) = P(π ≻ π_BT) − η KL(π‖π0) + η KL(π_BT‖π0); ≥ ½ for π = π_η
        "payoff_vs_bt": win_bt - eta * kl_ref + eta * kl_bt,
        "win_rate_vs_nash": win_rate_unchecked(logprobs, nash, pref, probs),
        "win_rate_vs_best_response": win_rate_unchecked(logprobs, min_response(logprobs, pref, ref, eta), pref, probs),
        "worst_case_win_rate": kernels.weigh_contexts(np.einsum("...ab,...a->...b", pref, np.exp(logprobs)).min(axis=-1), probs),
        "kl_to_ref": kl_ref,
        "kl_nash_to_policy": kernels.weigh_contexts(np.maximum(kernels.kl(nash, logprobs), 0.0), probs),
    }


@dataclass(frozen=True, eq=False)
class NashWorld:
    """General preferences on a PreferenceProblem, main agent π¹_t = the Nash policy of P̂_t
    (a :class:`rlbandit.iterative.World`; the loop is :func:`rlbandit.iterative.run_rounds`).

    Per action b against the main agent: ŝ(b) = P̂_t(b ≻ π¹_t), u(b) = E_{a∼π¹_t}‖ψ(x,b,a)‖_{Σ_t⁻¹},
    ŝ⁺(b) = E_{a∼π¹_t} min(P̂_t(b ≻ a) + β‖ψ(x,b,a)‖_{Σ_t⁻¹}, 1), with Σ_t = λI + Σ_i ψ_iψ_iᵀ.
    Each round also records BT-RLHF fitted on the same D, against the same exact π_η.
    """

    problem: PreferenceProblem
    config: "OnlineNashConfig"

    def __post_init__(self):
        problem = self.problem
        object.__setattr__(self, "nash", solve(problem.pref, problem.ref_logprobs, self.config.eta))
        object.__setattr__(self, "psi", antisymmetric_features(problem.features))  # (..., X, K, K, D)
        probs = np.broadcast_to(problem.context_probs, problem.batch_shape + (problem.n_contexts,))
        with np.errstate(divide="ignore"):
            object.__setattr__(self, "log_context_probs", np.log(probs))

    def observe(self, data):
        problem, config = self.problem, self.config
        features, ref, eta = problem.features, problem.ref_logprobs, config.eta
        main, pref_hat, _ = general_nash_policy(features, data, ref, eta, config.reg, config.solver)
        dim_psi = self.psi.shape[-1]
        if data.n:
            cov = covariance(pair_features(features, data), config.reg)
        else:
            cov = np.broadcast_to(config.reg * np.eye(dim_psi), problem.batch_shape + (dim_psi, dim_psi))
        pair_uncertainty = mahalanobis_norm(self.psi, cov)  # (..., X, K, K): u(x, b, a)
        p = np.exp(main)
        scores = np.einsum("...ba,...a->...b", pref_hat, p)
        uncertainty = np.einsum("...ba,...a->...b", pair_uncertainty, p)
        upper = np.einsum("...ba,...a->...b", np.minimum(pref_hat + config.beta * pair_uncertainty, 1.0), p)
        beta = np.full(problem.batch_shape, float(config.beta))
        state = EnhancerInput(main, scores, uncertainty, upper, ref, problem.context_probs, eta, beta)
        return state, bt_rlhf_policy(features, data, ref, eta, config.reg)

    def draw_contexts(self, m, rng):
        return sample_categorical(self.log_context_probs, m, rng)

    def label(self, contexts, actions1, actions2, rng):
        pref = self.problem.pref
        flat = pref.reshape((-1,) + pref.shape[-3:])
        rows = np.arange(flat.shape[0])[:, None]
        p = flat[rows, contexts.reshape(flat.shape[0], -1), actions1.reshape(flat.shape[0], -1),
                 actions2.reshape(flat.shape[0], -1)].reshape(contexts.shape)
        return (rng.random(p.shape) < p).astype(np.int8)

    def record(self, t, data, state, bt, out):
        problem, eta = self.problem, self.config.eta
        main = state.main_logprobs
        metrics = {"n_comparisons": data.n, **policy_metrics(problem, main, eta, nash=self.nash, bt=bt)}
        metrics["bt_exploitability"] = kernels.weigh_contexts(
            duality_gap_per_context(bt, problem.pref, problem.ref_logprobs, eta), problem.context_probs)
        metrics["enhancer_kl_to_main"] = kernels.weigh_contexts(np.maximum(kernels.kl(out.logprobs2, main), 0.0),
                                                                problem.context_probs)
        return metrics


def _with_seed_axis(problem: PreferenceProblem) -> PreferenceProblem:
    """The unbatched problem as a batch of one seed."""
    lead = lambda a: None if a is None else np.asarray(a)[None]  # noqa: E731
    probs = problem.context_probs
    return PreferenceProblem(lead(problem.features), lead(problem.ref_logprobs), lead(problem.pref),
                             probs if probs.ndim == 1 else lead(probs), lead(problem.skew), lead(problem.theta))


def run_online_nash(problem: PreferenceProblem, config: OnlineNashConfig, *, progress: bool = False) -> pd.DataFrame:
    """Online iterative Nash learning with a linear general preference model, batched over seeds.

    For t = 0..T: fit (Â, θ̂) by MLE on D (ŵ = 0 while D is empty), main agent π¹_t = Nash of P̂_t,
    enhancer π²_t from :data:`rlbandit.enhancers.ENHANCERS` (through :class:`NashWorld`); record
    π¹_t's exact metrics under the true P (and those of BT-RLHF fitted on the same D); then, for
    t < T, collect m comparisons a¹ ∼ π¹_t, a² ∼ π²_t, y ∼ P into D.

    Returns:
        one row per seed × iteration: seed, iteration, n_comparisons, exploitability,
        win_rate_vs_ref, win_rate_vs_bt, payoff_vs_bt, win_rate_vs_nash, win_rate_vs_best_response,
        worst_case_win_rate, kl_to_ref, kl_nash_to_policy, bt_exploitability, enhancer_kl_to_main.
    """
    check_instance(problem, PreferenceProblem, "problem")
    check_instance(config, OnlineNashConfig, "config")
    if len(problem.batch_shape) > 1:
        raise ValueError(f"problem: expected at most one batch (seed) axis, got batch shape {problem.batch_shape}")
    from rlbandit.preferences import PreferenceData

    if problem.batch_shape == ():  # the loop is batched over one seed axis
        problem = _with_seed_axis(problem)
    rng = np.random.default_rng(config.seed)
    ref = problem.ref_logprobs
    data = PreferenceData.empty(problem.batch_shape)
    if config.n_offline:
        data = problem.sample_comparisons(ref, ref, config.n_offline, rng)
    world = NashWorld(problem, config)
    return run_rounds(world, config.enhancer, config.enhancer_options, range(config.n_iterations + 1),
                      config.batch_size, rng, data, progress=progress, desc="online nash")
