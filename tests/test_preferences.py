"""Sampling (categorical, per-context actions, Bradley–Terry labels) and the PreferenceData record.
Frequencies are checked with exact binomial / chi-square tests at fixed seeds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, logsumexp
from scipy.stats import binomtest, chisquare

import rlbandit as rb
from rlbandit.preferences import PreferenceData, _inverse_cdf, sample_bt_labels
from tests.strategies import logprob_arrays, seeds, shapes

#: p-value threshold of the seeded frequency tests (a fixed seed: the tests are deterministic;
#: the threshold only says the seed was not cherry-picked into a tail).
ALPHA = 1e-3


def test_bt_label_frequencies_match_sigmoid():
    rng = np.random.default_rng(100)
    gaps = np.array([-3.0, -1.0, -0.2, 0.0, 0.5, 2.0])
    draws = 20_000
    labels = sample_bt_labels(np.repeat(gaps, draws).reshape(len(gaps), draws), rng)
    assert labels.dtype == np.int8 and set(np.unique(labels)) <= {0, 1}
    for gap, row in zip(gaps, labels):
        result = binomtest(int(row.sum()), draws, float(expit(gap)))
        assert result.pvalue > ALPHA, (gap, row.mean(), expit(gap))


def test_sample_preferences_label_frequencies_match_bt_on_true_reward():
    problem = rb.make_problem(rb.ProblemConfig(n_contexts=3, n_actions=4, dim=2, seed=5))
    rng = np.random.default_rng(101)
    data = problem.sample_preferences(problem.ref_logprobs, problem.ref_logprobs, 60_000, rng)
    gaps = problem.rewards[data.contexts, data.actions1] - problem.rewards[data.contexts, data.actions2]
    # pool comparisons by their exact reward gap; each pool is a binomial with p = σ(gap)
    keys, inverse = np.unique(np.round(gaps, 12), return_inverse=True)
    tested = 0
    for index, gap in enumerate(keys):
        pool = data.labels[inverse == index]
        if pool.size >= 500:
            assert binomtest(int(pool.sum()), pool.size, float(expit(gap))).pvalue > ALPHA / len(keys)
            tested += 1
    assert tested >= 5


def test_sample_categorical_frequencies_and_never_zero_mass():
    rng = np.random.default_rng(102)
    probs = np.array([[0.0, 0.1, 0.2, 0.0, 0.3, 0.4, 0.0],
                      [0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5],
                      [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]])
    with np.errstate(divide="ignore"):
        logprobs = np.log(probs)
    draws = rb.sample_categorical(logprobs, 50_000, rng)
    assert draws.shape == (3, 50_000)
    for row, p in zip(draws, probs):
        counts = np.bincount(row, minlength=7)
        assert (counts[p == 0] == 0).all()
        support = p > 0
        if support.sum() > 1:
            assert chisquare(counts[support], 50_000 * p[support]).pvalue > ALPHA


def test_inverse_cdf_never_returns_trailing_zero_mass_action():
    """Rounding of the row offsets can push u ≈ 1 past a row's end; the clamp keeps it on the
    row's last action with positive mass."""
    cdf = np.tile(np.array([0.25, 0.5, 1.0, 1.0, 1.0]), (100_000, 1))
    rows = np.arange(100_000)
    u = np.full(100_000, np.nextafter(1.0, 0.0))
    picks = _inverse_cdf(cdf, rows, u)
    assert picks.max() == 2
    picks = _inverse_cdf(cdf, rows, np.zeros(100_000))
    assert (picks == 0).all()


@settings(max_examples=60, deadline=None)
@given(shapes(max_contexts=3, max_actions=6), seeds(), st.data())
def test_sample_categorical_support_property(shape, seed, data):
    logprobs = data.draw(logprob_arrays(shape))
    draws = rb.sample_categorical(logprobs, 200, np.random.default_rng(seed))
    assert draws.shape == shape[:-1] + (200,)
    chosen = np.take_along_axis(logprobs, draws, axis=-1)
    assert np.isfinite(chosen).all()


def test_sample_actions_per_context_frequencies_batched():
    rng = np.random.default_rng(103)
    logits = rng.standard_normal((2, 3, 5))
    logits[0, 1, 2] = -np.inf
    logprobs = logits - logsumexp(logits, axis=-1, keepdims=True)
    contexts = np.tile(np.repeat(np.arange(3), 20_000), (2, 1))
    actions = rb.sample_actions(logprobs, contexts, rng)
    assert actions.shape == contexts.shape
    for s in range(2):
        for x in range(3):
            counts = np.bincount(actions[s][contexts[s] == x], minlength=5)
            p = np.exp(logprobs[s, x])
            assert (counts[p == 0] == 0).all()
            assert chisquare(counts[p > 0], 20_000 * p[p > 0] / p[p > 0].sum()).pvalue > ALPHA


def test_sample_contexts_follow_d0():
    features = np.zeros((4, 2, 1))
    problem = rb.LinearBandit(features, np.zeros(1), np.log(np.full((4, 2), 0.5)), np.array([0.1, 0.0, 0.6, 0.3]))
    contexts = problem.sample_contexts(30_000, np.random.default_rng(104))
    counts = np.bincount(contexts, minlength=4)
    assert counts[1] == 0
    assert chisquare(counts[[0, 2, 3]], 30_000 * np.array([0.1, 0.6, 0.3])).pvalue > ALPHA


def test_same_seed_same_data(small_problem):
    a = small_problem.sample_preferences(small_problem.ref_logprobs, small_problem.optimal_policy(1.0), 300, np.random.default_rng(5))
    b = small_problem.sample_preferences(small_problem.ref_logprobs, small_problem.optimal_policy(1.0), 300, np.random.default_rng(5))
    for name in ("contexts", "actions1", "actions2", "labels", "source"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    c = small_problem.sample_preferences(small_problem.ref_logprobs, small_problem.optimal_policy(1.0), 300, np.random.default_rng(6))
    assert not np.array_equal(a.actions1, c.actions1)


def test_preference_data_diffs_take_concat_empty():
    rng = np.random.default_rng(105)
    features = rng.standard_normal((2, 3, 4, 2))
    data = PreferenceData(contexts=[[0, 2, 1], [1, 1, 0]], actions1=[[3, 0, 1], [2, 2, 0]],
                          actions2=[[1, 1, 1], [0, 3, 3]], labels=[[1, 0, 1], [0, 0, 1]])
    diffs = data.diffs(features)
    assert diffs.shape == (2, 3, 2)
    for s in range(2):
        for i in range(3):
            x, a1, a2 = data.contexts[s, i], data.actions1[s, i], data.actions2[s, i]
            np.testing.assert_array_equal(diffs[s, i], features[s, x, a1] - features[s, x, a2])
    taken = data.take([2, 0])
    assert np.array_equal(taken.contexts, [[1, 0], [0, 1]])
    joined = data.concat(taken)
    assert joined.n == 5 and joined.batch_shape == (2,)
    assert np.array_equal(joined.source[:, 3:], np.ones((2, 2)))  # the second dataset's tags are shifted
    empty = PreferenceData.empty((2,))
    assert empty.n == 0 and len(empty.concat(data)) == 3
    with pytest.raises(ValueError, match="features"):
        data.diffs(features[:, :2])  # context index 2 does not exist
    with pytest.raises(ValueError, match="labels"):
        PreferenceData([0], [0], [1], [2])
    assert not data.contexts.flags.writeable


def test_behaviour_policies_are_remembered(small_problem):
    eta = 0.5
    data = small_problem.sample_preferences(small_problem.ref_logprobs, small_problem.optimal_policy(eta), 50,
                                            np.random.default_rng(1), source=0)
    (lp1, lp2), = data.behaviour
    np.testing.assert_allclose(lp1, small_problem.ref_logprobs, atol=1e-15)
    np.testing.assert_allclose(lp2, small_problem.optimal_policy(eta), atol=1e-15)
