"""LinearBandit and the scenario registry: exact quantities against the oracle functions and
explicit sums, batched against per-seed, and reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rlbandit as rb
from tests.strategies import batched_linear_bandits, etas, linear_bandits, logprob_arrays, moderate_etas, problem_configs


@settings(max_examples=80, deadline=None)
@given(linear_bandits(), etas(1e-4, 1e4), st.data())
def test_problem_quantities_match_oracle_functions(problem, eta, data):
    rewards = np.einsum("xkd,d->xk", problem.features, problem.theta)
    np.testing.assert_allclose(problem.rewards, rewards, atol=1e-14)
    policy = data.draw(logprob_arrays(problem.rewards.shape))
    star = problem.optimal_policy(eta)
    np.testing.assert_array_equal(star, rb.gibbs(problem.rewards, problem.ref_logprobs, eta))
    assert problem.optimal_value(eta) == pytest.approx(
        float(rb.optimal_value(problem.rewards, problem.ref_logprobs, eta, problem.context_probs)), abs=1e-12)
    value = problem.value(policy, eta)
    expected = rb.value(policy, problem.rewards, problem.ref_logprobs, eta, problem.context_probs)
    assert value == expected or np.isclose(value, expected, rtol=1e-12, atol=1e-12)
    subopt = problem.suboptimality(policy, eta)
    d0 = problem.context_probs
    with np.errstate(invalid="ignore"):
        kl_star = np.where(d0 > 0, d0 * rb.kl(policy, star), 0.0).sum()
    if np.isfinite(subopt):
        # Gibbs fact 2 on the problem: SubOpt(π) = η E_x KL(π‖π*) ≥ 0
        assert subopt >= -1e-10 * (1 + abs(problem.optimal_value(eta)))
        assert subopt == pytest.approx(eta * kl_star, rel=1e-7, abs=1e-9 * (1 + eta))
        assert problem.combined_metric(policy, eta) >= subopt - 1e-10
    else:
        assert subopt == np.inf and kl_star == np.inf
    assert abs(problem.suboptimality(star, eta)) <= 1e-10 * (1 + abs(problem.optimal_value(eta)))
    assert abs(problem.combined_metric(star, eta)) <= 1e-10 * (1 + abs(problem.optimal_value(eta)))


def test_gold_reward_kl_and_policy_features_explicit(small_problem):
    rng = np.random.default_rng(3)
    logits = rng.standard_normal(small_problem.rewards.shape)
    policy = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    p, d0 = np.exp(policy), small_problem.context_probs
    gold = sum(d0[x] * sum(p[x, a] * small_problem.rewards[x, a] for a in range(7)) for x in range(5))
    assert small_problem.gold_reward(policy) == pytest.approx(gold, rel=1e-13)
    ref = np.exp(small_problem.ref_logprobs)
    kl = sum(d0[x] * sum(p[x, a] * np.log(p[x, a] / ref[x, a]) for a in range(7)) for x in range(5))
    assert small_problem.kl_to_ref(policy) == pytest.approx(kl, rel=1e-10)
    phi = small_problem.policy_features(policy)
    for x in range(5):
        np.testing.assert_allclose(phi[x], sum(p[x, a] * small_problem.features[x, a] for a in range(7)), atol=1e-15)


@settings(max_examples=40, deadline=None)
@given(batched_linear_bandits(), moderate_etas(), st.data())
def test_batched_equals_per_seed(problems, eta, data):
    policy = data.draw(logprob_arrays(problems.ref_logprobs.shape, allow_neg_inf=False))
    values = problems.value(policy, eta)
    star = problems.optimal_policy(eta)
    for s in range(problems.batch_shape[0]):
        one = problems[s]
        np.testing.assert_allclose(star[s], one.optimal_policy(eta), atol=1e-13)
        assert values[s] == pytest.approx(float(one.value(policy[s], eta)), rel=1e-12, abs=1e-12)
        assert problems.optimal_value(eta)[s] == pytest.approx(float(one.optimal_value(eta)), rel=1e-12, abs=1e-12)
        assert problems.suboptimality(policy, eta)[s] == pytest.approx(float(one.suboptimality(policy[s], eta)), rel=1e-9, abs=1e-11)
    # one unbatched policy broadcast over every seed
    shared = policy[0]
    np.testing.assert_allclose(problems.value(shared, eta), [problems[s].value(shared, eta) for s in range(problems.batch_shape[0])], rtol=1e-12, atol=1e-12)


def test_batched_sampling_matches_shapes_and_support(batched_problems):
    rng = np.random.default_rng(4)
    policy = batched_problems.optimal_policy(0.5)
    data = batched_problems.sample_preferences(batched_problems.ref_logprobs, policy, 200, rng)
    assert data.contexts.shape == (3, 200) and data.batch_shape == (3,)
    diffs = batched_problems.diffs(data)
    assert diffs.shape == (3, 200, 3)
    for s in range(3):
        np.testing.assert_array_equal(diffs[s], batched_problems.features[s][data.contexts[s], data.actions1[s]]
                                      - batched_problems.features[s][data.contexts[s], data.actions2[s]])


@settings(max_examples=40, deadline=None)
@given(problem_configs())
def test_make_problem_reproducible_and_valid(config):
    a, b = rb.make_problem(config), rb.make_problem(config)
    for name in ("features", "theta", "ref_logprobs", "context_probs"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert (np.linalg.norm(a.features, axis=-1) <= 1 + 1e-9).all()
    np.testing.assert_allclose(np.exp(a.ref_logprobs).sum(-1), 1.0, atol=1e-12)
    if config.scenario in ("random", "coverage_shift", "few_good"):
        assert np.linalg.norm(a.theta) == pytest.approx(config.theta_norm)


def test_scenarios_differ_by_seed_and_have_their_shape():
    base = rb.ProblemConfig(n_contexts=20, n_actions=12, dim=4, seed=0)
    a = rb.make_problem(base)
    b = rb.make_problem(rb.ProblemConfig(n_contexts=20, n_actions=12, dim=4, seed=1))
    assert not np.array_equal(a.features, b.features)
    # coverage shift: π0 puts less mass on each context's best action than on an average action
    shifted = rb.make_problem(rb.ProblemConfig(scenario="coverage_shift", n_contexts=20, n_actions=12, dim=4, seed=0))
    best = shifted.rewards.argmax(-1)
    mass_on_best = np.exp(shifted.ref_logprobs[np.arange(20), best])
    assert mass_on_best.mean() < 1.0 / 12 / 5
    # few good: exactly n_good actions per context beat all others by the scenario's gap
    few = rb.make_problem(rb.ProblemConfig(scenario="few_good", n_contexts=20, n_actions=12, dim=4, n_good=2, seed=0))
    top = np.sort(few.rewards, axis=-1)
    assert (top[:, -2] > top[:, -3] + 0.5).all()


def test_make_problems_equals_stacked_problems():
    config = rb.ProblemConfig(n_contexts=3, n_actions=4, dim=2)
    batch = rb.make_problems(config, [4, 7])
    assert batch.batch_shape == (2,)
    for index, seed in enumerate([4, 7]):
        one = rb.make_problem(rb.ProblemConfig(n_contexts=3, n_actions=4, dim=2, seed=seed))
        np.testing.assert_array_equal(batch[index].features, one.features)
        np.testing.assert_array_equal(batch[index].theta, one.theta)


def test_problem_is_frozen_and_read_only(small_problem):
    with pytest.raises(Exception):
        small_problem.theta = np.zeros(3)
    with pytest.raises(ValueError):
        small_problem.features[0, 0, 0] = 1.0
    with pytest.raises(ValueError):
        small_problem.rewards[0, 0] = 1.0
