"""Large-n asymptotics of the plug-in policy Gibbs(φθ̂_MLE): the exact constant of its 1/n rate.

With n Bradley–Terry comparisons x ∼ d0, a ∼ π¹(·|x), a′ ∼ π²(·|x) and z = φ(x,a) − φ(x,a′), the
(ridge) MLE is asymptotically normal, √n(θ̂ − θ*) → N(0, I(θ*)⁻¹) with the Fisher information per
comparison

    I(θ*) = E_{x∼d0, a∼π¹, a′∼π²} [σ′(⟨z, θ*⟩) z zᵀ],   σ′ = σ(1 − σ)

(a fixed ridge λ adds λ/n to the Hessian and a bias O(1/n) to θ̂, so it drops out of the limit).
Fact 2 of DESIGN gives SubOpt(O(φθ̂)) = η E_x KL(O(φθ̂) ‖ π*), and the KL between two Gibbs
policies whose rewards differ by δ = ⟨φ, θ̂ − θ*⟩ is Var_π*(δ)/(2η²) + O(δ³/η³); hence

    n · SubOpt(O(φθ̂, η, π0))  →  tr(C_η I(θ*)⁻¹) / (2η)   in expectation over the data,
    C_η = E_{x∼d0} Cov_{a∼π*(·|x)}(φ(x,a)).

The limit needs the reward error ‖φ(θ̂ − θ*)‖ ≪ η; :func:`local_sample_size` is the n at which the
reward error's typical size under π0 reaches η, tr(C_∞ I⁻¹)/η² (C_∞ = E_x Cov_π0(φ)): well
below it the expansion does not apply (at small η, π̂ mostly differs from π* by a wrong argmax).

Directions of θ that no comparison identifies (I v = 0) leave φ·v constant over each context's
support, so C_η v = 0 too; the inverse is the Moore–Penrose pseudo-inverse on I's range.

Every function is exact (finite sums over x, a, a′; no sampling), vectorised over the problem's
batch (seeds) and validated at the boundary.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from rlbandit import kernels
from rlbandit._checks import as_float_array, check_eta, check_instance, check_logprobs
from rlbandit.problem import LinearBandit

__all__ = ["bt_fisher_information", "feature_covariance", "subopt_constant", "local_sample_size"]


def _check_problem(problem) -> LinearBandit:
    check_instance(problem, LinearBandit, "problem")
    return problem


def _probs(problem: LinearBandit, logprobs, name: str) -> np.ndarray:
    """exp(logprobs) broadcast to the problem's batch, shape batch + (X, K); π0 when None."""
    shape = problem.batch_shape + (problem.n_contexts, problem.n_actions)
    if logprobs is None:
        return np.exp(problem.ref_logprobs)
    logprobs = as_float_array(logprobs, name, min_ndim=2)
    if logprobs.shape[-2:] != shape[-2:] or np.broadcast_shapes(logprobs.shape, shape) != shape:
        raise ValueError(f"{name}: expected shape {shape} (or one that broadcasts to it), got {logprobs.shape}")
    check_logprobs(logprobs, name)
    return np.broadcast_to(np.exp(kernels.renormalise(logprobs)), shape)


def _context_weights(problem: LinearBandit) -> np.ndarray:
    return np.broadcast_to(problem.context_probs, problem.batch_shape + (problem.n_contexts,))


def bt_fisher_information(problem, logprobs1=None, logprobs2=None) -> np.ndarray:
    """Bradley–Terry Fisher information per comparison at θ*, shape batch + (d, d).

    I = Σ_x d0(x) Σ_{a,a′} π¹(a|x) π²(a′|x) σ′(r*(x,a) − r*(x,a′)) z zᵀ with z = φ(x,a) − φ(x,a′),
    i.e. minus the Hessian at θ* of the expected log-likelihood of one comparison.

    Args:
        problem: a :class:`~rlbandit.LinearBandit` (batched over seeds or not).
        logprobs1, logprobs2: the behaviour policies of a¹ and a², log-probs (X, K) or batch + (X, K);
            π0 when None (the design of the ``rate`` study).
    """
    problem = _check_problem(problem)
    p1, p2 = _probs(problem, logprobs1, "logprobs1"), _probs(problem, logprobs2, "logprobs2")
    rewards, phi = problem.rewards, problem.features
    gaps = rewards[..., :, None] - rewards[..., None, :]                      # (..., X, K, K)
    weights = _context_weights(problem)[..., :, None, None] * p1[..., :, None] * p2[..., None, :] \
        * expit(gaps) * expit(-gaps)                                           # W(x, a, a′)
    # z zᵀ = φ_a φ_aᵀ + φ_a′ φ_a′ᵀ − φ_a φ_a′ᵀ − φ_a′ φ_aᵀ, summed without forming z (X·K²·d)
    row, col = weights.sum(-1), weights.sum(-2)                               # (..., X, K)
    diag = np.einsum("...xa,...xad,...xae->...de", row + col, phi, phi)
    cross = np.einsum("...xab,...xad,...xbe->...de", weights, phi, phi)
    return diag - cross - np.swapaxes(cross, -1, -2)


def feature_covariance(problem, logprobs) -> np.ndarray:
    """E_{x∼d0} Cov_{a∼π(·|x)}(φ(x,a)), shape batch + (d, d), for a policy given as log-probs."""
    problem = _check_problem(problem)
    p = _probs(problem, logprobs, "logprobs")
    phi = problem.features
    mean = np.einsum("...xa,...xad->...xd", p, phi)
    second = np.einsum("...xa,...xad,...xae->...xde", p, phi, phi)
    cov = second - mean[..., :, None] * mean[..., None, :]
    return np.einsum("...x,...xde->...de", _context_weights(problem), cov)


def _pinv(matrix: np.ndarray) -> np.ndarray:
    """Moore–Penrose inverse of symmetric PSD matrices (batched), eigenvalues below 1e-10·max dropped."""
    values, vectors = np.linalg.eigh(matrix)
    keep = values > 1e-10 * np.maximum(values[..., -1:], np.finfo(float).tiny)
    inv = np.where(keep, 1.0 / np.where(keep, values, 1.0), 0.0)
    return np.einsum("...ik,...k,...jk->...ij", vectors, inv, vectors)


def _trace_against_inverse(cov: np.ndarray, fisher: np.ndarray) -> np.ndarray:
    return np.einsum("...ij,...ji->...", cov, _pinv(fisher))


def subopt_constant(problem, eta, logprobs1=None, logprobs2=None) -> np.ndarray:
    """The predicted lim_{n→∞} n · E SubOpt(O(φθ̂_n, η, π0)) = tr(C_η I(θ*)⁻¹)/(2η), shape batch.

    C_η = E_x Cov_π*(φ) with π* = O(r*, η, π0); I(θ*) from :func:`bt_fisher_information` with the
    comparisons' behaviour policies (π0 × π0 when None). Independent of the ridge λ."""
    problem = _check_problem(problem)
    eta = check_eta(eta)
    cov = feature_covariance(problem, problem.optimal_policy(eta))
    return _trace_against_inverse(cov, bt_fisher_information(problem, logprobs1, logprobs2)) / (2.0 * eta)


def local_sample_size(problem, eta, logprobs1=None, logprobs2=None) -> np.ndarray:
    """n_loc = tr(E_x Cov_π0(φ) · I(θ*)⁻¹)/η², shape batch: the n at which the asymptotic variance of
    the reward error under π0, E_x Var_π0(⟨φ, θ̂ − θ*⟩), equals η² — the local expansion behind
    :func:`subopt_constant` needs n ≫ n_loc."""
    problem = _check_problem(problem)
    eta = check_eta(eta)
    cov = feature_covariance(problem, problem.ref_logprobs)
    return _trace_against_inverse(cov, bt_fisher_information(problem, logprobs1, logprobs2)) / eta ** 2
