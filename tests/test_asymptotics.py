"""rlbandit.asymptotics: the Fisher information and the 1/n constant of the plug-in policy, each
against an independent computation (brute-force loops, a finite-difference Hessian, a second-order
perturbation of the exact SubOpt, and Monte Carlo with the toolkit's own sampler and MLE)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import rlbandit as rb
from rlbandit.asymptotics import bt_fisher_information, feature_covariance, local_sample_size, subopt_constant


def _problem(seed=1, X=3, K=4, d=2, scenario="random"):
    return rb.make_problem(rb.ProblemConfig(scenario=scenario, n_contexts=X, n_actions=K, dim=d, seed=seed))


def _sigmoid(u):
    return 1.0 / (1.0 + math.exp(-u))


def _expected_loglik(problem, theta, p1, p2):
    """E_{x, a∼π¹, a′∼π², y∼BT(θ*)} log P_θ(y | x, a, a′), by plain loops."""
    total = 0.0
    for x in range(problem.n_contexts):
        for a in range(problem.n_actions):
            for b in range(problem.n_actions):
                z = problem.features[x, a] - problem.features[x, b]
                w = problem.context_probs[x] * p1[x, a] * p2[x, b]
                q = _sigmoid(float(z @ problem.theta))
                u = float(z @ theta)
                total += w * (q * math.log(_sigmoid(u)) + (1 - q) * math.log(_sigmoid(-u)))
    return total


def _random_policy(rng, X, K):
    logits = rng.normal(size=(X, K))
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def test_fisher_equals_brute_force_sum_and_minus_hessian():
    problem = _problem(seed=3, X=2, K=3, d=3)
    rng = np.random.default_rng(0)
    lp1, lp2 = _random_policy(rng, 2, 3), _random_policy(rng, 2, 3)
    p1, p2 = np.exp(lp1), np.exp(lp2)
    fisher = bt_fisher_information(problem, lp1, lp2)
    brute = np.zeros((3, 3))
    for x in range(2):
        for a in range(3):
            for b in range(3):
                z = problem.features[x, a] - problem.features[x, b]
                s = _sigmoid(float(z @ problem.theta))
                brute += problem.context_probs[x] * p1[x, a] * p2[x, b] * s * (1 - s) * np.outer(z, z)
    np.testing.assert_allclose(fisher, brute, rtol=1e-12, atol=1e-15)
    # minus the Hessian of the expected log-likelihood at θ*, by central finite differences
    h, theta, eye = 1e-4, problem.theta, np.eye(3)
    hess = np.array([[(_expected_loglik(problem, theta + h * (eye[i] + eye[j]), p1, p2)
                       - _expected_loglik(problem, theta + h * (eye[i] - eye[j]), p1, p2)
                       - _expected_loglik(problem, theta - h * (eye[i] - eye[j]), p1, p2)
                       + _expected_loglik(problem, theta - h * (eye[i] + eye[j]), p1, p2)) / (4 * h * h)
                      for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(fisher, -hess, rtol=1e-5, atol=1e-8)
    # the default design is π0 × π0, and the matrix is symmetric PSD
    np.testing.assert_allclose(bt_fisher_information(problem), bt_fisher_information(problem, problem.ref_logprobs,
                                                                                      problem.ref_logprobs))
    assert np.linalg.eigvalsh(fisher).min() > -1e-14


def test_constant_is_the_second_order_term_of_the_exact_subopt():
    """SubOpt(O(φ(θ* + εv))) / ε² → vᵀ C_η v / (2η): the covariance half of the constant."""
    problem = _problem(seed=4, X=3, K=5, d=3)
    rng = np.random.default_rng(1)
    for eta in (0.3, 1.0, 5.0):
        cov = feature_covariance(problem, problem.optimal_policy(eta))
        for _ in range(3):
            v = rng.normal(size=3)
            eps = 1e-4
            policy = rb.gibbs(problem.features @ (problem.theta + eps * v), problem.ref_logprobs, eta)
            measured = problem.suboptimality(policy, eta) / eps ** 2
            np.testing.assert_allclose(measured, v @ cov @ v / (2 * eta), rtol=1e-3)


def test_batched_equals_per_seed_and_unidentified_directions_are_ignored():
    problems = rb.make_problems(rb.ProblemConfig(scenario="coverage_shift", n_contexts=4, n_actions=5, dim=3),
                                np.arange(3))
    batched = subopt_constant(problems, 0.5)
    assert batched.shape == (3,)
    for s in range(3):
        np.testing.assert_allclose(batched[s], subopt_constant(problems[s], 0.5), rtol=1e-12)
        np.testing.assert_allclose(bt_fisher_information(problems)[s], bt_fisher_information(problems[s]))
    # a coordinate constant over actions is never identified (I is singular); the constant ignores it
    base = _problem(seed=5, X=3, K=4, d=2)
    phi = np.concatenate([base.features * 0.8, np.full(base.features.shape[:-1] + (1,), 0.5)], -1)
    padded = rb.LinearBandit(phi, np.append(base.theta / 0.8, 0.7), base.ref_logprobs)
    assert abs(np.linalg.det(bt_fisher_information(padded))) < 1e-14
    reduced = rb.LinearBandit(base.features * 0.8, base.theta / 0.8, base.ref_logprobs)
    np.testing.assert_allclose(subopt_constant(padded, 0.7), subopt_constant(reduced, 0.7), rtol=1e-8)
    np.testing.assert_allclose(local_sample_size(padded, 0.7), local_sample_size(reduced, 0.7), rtol=1e-8)


def test_monte_carlo_mean_n_subopt_matches_the_prediction():
    """Many datasets of n comparisons (the toolkit's sampler, ridge fit_bt with λ = 1): the mean of
    n · SubOpt agrees with tr(C_η I⁻¹)/(2η) within 4 standard errors plus the O(n^{-½}) remainder."""
    problem = _problem(seed=1, X=3, K=4, d=2)
    reps, n = 400, 10_000
    batch = (reps,)
    copies = rb.LinearBandit(np.broadcast_to(problem.features, batch + problem.features.shape),
                             np.broadcast_to(problem.theta, batch + problem.theta.shape),
                             np.broadcast_to(problem.ref_logprobs, batch + problem.ref_logprobs.shape))
    data = copies.sample_preferences(copies.ref_logprobs, copies.ref_logprobs, n, np.random.default_rng(0))
    theta = rb.fit_bt(copies.diffs(data), data.labels, 1.0)
    rewards = np.einsum("sxkd,sd->sxk", copies.features, theta)
    for eta in (0.5, 2.0):
        scaled = n * copies.suboptimality(rb.gibbs(rewards, copies.ref_logprobs, eta), eta)
        mean, se = rb.stats.mean_se(scaled)
        predicted = float(subopt_constant(problem, eta))
        assert abs(mean - predicted) < 4 * se + 0.05 * predicted, (eta, mean, se, predicted)
    # the parameter error: n E‖θ̂ − θ*‖² → tr(I⁻¹)
    error = n * ((theta - problem.theta) ** 2).sum(-1)
    mean, se = rb.stats.mean_se(error)
    expected = np.trace(np.linalg.inv(bt_fisher_information(problem)))
    assert abs(mean - expected) < 4 * se + 0.05 * expected


def test_validation():
    problem = _problem()
    with pytest.raises(ValueError, match="problem"):
        subopt_constant(problem.features, 1.0)
    with pytest.raises(ValueError, match="eta"):
        subopt_constant(problem, 0.0)
    with pytest.raises(ValueError, match="logprobs1"):
        bt_fisher_information(problem, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="logprobs2"):
        bt_fisher_information(problem, None, np.zeros((3, 4)))  # not normalised
    with pytest.raises(ValueError, match="logprobs"):
        feature_covariance(problem, np.full((3, 4), np.nan))
