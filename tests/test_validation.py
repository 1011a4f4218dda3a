"""Bad input → ValueError that names the offending argument, for every public core function."""

from __future__ import annotations

import numpy as np
import pytest

import rlbandit as rb
from rlbandit import losses, nash, offline, radii, stats
from rlbandit.preferences import PreferenceData, sample_bt_labels

R = np.array([[0.0, 1.0, 2.0], [1.0, 0.5, -1.0]])
REF = np.log(np.array([[0.2, 0.3, 0.5], [0.6, 0.4, 1e-300]]))
REF = REF - np.log(np.exp(REF).sum(-1, keepdims=True))
UNNORMALISED = np.log(np.array([[0.2, 0.3, 0.6], [0.6, 0.4, 1e-300]]))
FEATURES = np.full((2, 3, 2), 0.5)
THETA = np.array([1.0, -1.0])
DIFFS = np.array([[0.5, 0.1], [-0.2, 0.3], [0.1, -0.4]])
LABELS = np.array([1, 0, 1])


def _nan(a):
    a = np.array(a, dtype=float)
    a.flat[1] = np.nan
    return a


def _inf(a):
    a = np.array(a, dtype=float)
    a.flat[1] = np.inf
    return a


CASES = [
    # (call, argument named in the message)
    (lambda: rb.gibbs(R[:, :2], REF, 1.0), "rewards"),
    (lambda: rb.gibbs(_nan(R), REF, 1.0), "rewards"),
    (lambda: rb.gibbs(_inf(R), REF, 1.0), "rewards"),
    (lambda: rb.gibbs(-_inf(R), REF, 1.0), "rewards"),
    (lambda: rb.gibbs(R, REF, 0.0), "eta"),
    (lambda: rb.gibbs(R, REF, -1.0), "eta"),
    (lambda: rb.gibbs(R, REF, np.inf), "eta"),
    (lambda: rb.gibbs(R, REF, np.nan), "eta"),
    (lambda: rb.gibbs(R, REF, "one"), "eta"),
    (lambda: rb.gibbs(R, UNNORMALISED, 1.0), "ref_logprobs"),
    (lambda: rb.gibbs(R, _nan(REF), 1.0), "ref_logprobs"),
    (lambda: rb.gibbs(R, -REF, 1.0), "ref_logprobs"),
    (lambda: rb.gibbs(R, np.full((2, 3), -np.inf), 1.0), "ref_logprobs"),
    (lambda: rb.gibbs(np.zeros((2, 0)), np.zeros((2, 0)), 1.0), "ref_logprobs"),
    (lambda: rb.gibbs(_nan(R), REF[0], 1.0), "rewards"),
    (lambda: rb.gibbs(R, UNNORMALISED[0], 1.0), "ref_logprobs"),
    (lambda: rb.kl(REF, UNNORMALISED), "logq"),
    (lambda: rb.kl(_nan(REF), REF), "logp"),
    (lambda: rb.kl(REF, np.log(np.full((2, 2), 0.5))), "logp"),
    (lambda: rb.value(REF, R, REF, 0.0), "eta"),
    (lambda: rb.value(UNNORMALISED, R, REF, 1.0), "logprobs"),
    (lambda: rb.value(REF[0], R, REF, 1.0), "logprobs"),
    (lambda: rb.value(REF, _nan(R), REF, 1.0), "rewards"),
    (lambda: rb.value(REF, R, REF, 1.0, [0.5, 0.6]), "context_probs"),
    (lambda: rb.value(REF, R, REF, 1.0, [1.5, -0.5]), "context_probs"),
    (lambda: rb.value(REF, R, REF, 1.0, [1.0]), "context_probs"),
    (lambda: rb.optimal_value(R, REF, -2.0), "eta"),
    (lambda: rb.optimal_value(_inf(R), REF, 1.0), "rewards"),
    (lambda: rb.log_partition(R, UNNORMALISED, 1.0), "ref_logprobs"),
    # LinearBandit
    (lambda: rb.LinearBandit(np.full((2, 3, 2), 0.8), THETA, REF), "features"),  # ‖φ‖ > 1
    (lambda: rb.LinearBandit(_nan(FEATURES), THETA, REF), "features"),
    (lambda: rb.LinearBandit(FEATURES[0], THETA, REF), "features"),
    (lambda: rb.LinearBandit(FEATURES, THETA[:1], REF), "theta"),
    (lambda: rb.LinearBandit(FEATURES, _nan(THETA), REF), "theta"),
    (lambda: rb.LinearBandit(FEATURES, THETA, REF[:, :2]), "ref_logprobs"),
    (lambda: rb.LinearBandit(FEATURES, THETA, UNNORMALISED), "ref_logprobs"),
    (lambda: rb.LinearBandit(FEATURES, THETA, REF, [0.3, 0.3]), "context_probs"),
    (lambda: _problem().value(REF[:, :2], 1.0), "logprobs"),
    (lambda: _problem().value(UNNORMALISED, 1.0), "logprobs"),
    (lambda: _problem().value(REF, 0.0), "eta"),
    (lambda: _problem().optimal_policy(-1.0), "eta"),
    (lambda: _problem().sample_preferences(REF, REF, 0, np.random.default_rng(0)), "m"),
    (lambda: _problem().sample_preferences(REF, REF, 5, 0), "rng"),
    (lambda: _problem().sample_preferences(UNNORMALISED, REF, 5, np.random.default_rng(0)), "logprobs1"),
    (lambda: _problem().sample_preferences(REF, np.stack([REF, REF]), 5, np.random.default_rng(0)), "logprobs2"),
    (lambda: _problem()[0], "index"),
    (lambda: rb.ProblemConfig(scenario="nope"), "scenario"),
    (lambda: rb.ProblemConfig(n_actions=0), "n_actions"),
    (lambda: rb.ProblemConfig(theta_norm=-1.0), "theta_norm"),
    (lambda: rb.ProblemConfig(n_good=99), "n_good"),
    (lambda: rb.make_problem({"scenario": "random"}), "config"),
    (lambda: rb.stack_problems([]), "problems"),
    # preferences
    (lambda: PreferenceData([0, 1], [0, 1], [1, 0], [1, 2]), "labels"),
    (lambda: PreferenceData([0, 1], [0, 1], [1, 0], [1]), "labels"),
    (lambda: PreferenceData([0, -1], [0, 1], [1, 0], [1, 0]), "contexts"),
    (lambda: PreferenceData([0, 1], [0.5, 1], [1, 0], [1, 0]), "actions1"),
    (lambda: rb.sample_categorical(np.full((2, 3), -np.inf), 3, np.random.default_rng(0)), "logprobs"),
    (lambda: rb.sample_categorical(REF, -1, np.random.default_rng(0)), "size"),
    (lambda: rb.sample_categorical(REF, 3, 42), "rng"),
    (lambda: rb.sample_actions(REF, np.array([0, 5]), np.random.default_rng(0)), "contexts"),
    (lambda: rb.sample_actions(REF, np.array([[0, 1]]), np.random.default_rng(0)), "contexts"),
    (lambda: sample_bt_labels(np.array([np.nan]), np.random.default_rng(0)), "reward_diff"),
    # reward learning
    (lambda: rb.fit_bt(DIFFS, np.array([1, 0, 2]), 1.0), "labels"),
    (lambda: rb.fit_bt(DIFFS, np.array([1, 0, 0.5]), 1.0), "labels"),
    (lambda: rb.fit_bt(DIFFS, LABELS[:2], 1.0), "labels"),
    (lambda: rb.fit_bt(np.zeros((0, 2)), np.zeros(0), 1.0), "diffs"),
    (lambda: rb.fit_bt(_nan(DIFFS), LABELS, 1.0), "diffs"),
    (lambda: rb.fit_bt(DIFFS[0], LABELS[0], 1.0), "diffs"),
    (lambda: rb.fit_bt(DIFFS, LABELS, -1.0), "reg"),
    (lambda: rb.fit_bt(DIFFS, LABELS, "a"), "reg"),
    (lambda: rb.fit_bt(DIFFS, LABELS, 1.0, bound=0.0), "bound"),
    (lambda: rb.fit_bt(DIFFS, LABELS, 1.0, bound="x"), "bound"),
    (lambda: rb.fit_bt(DIFFS, LABELS, 1.0, weights=np.array([1.0, -1.0, 1.0])), "weights"),
    (lambda: rb.fit_bt(DIFFS, LABELS, 1.0, weights=np.ones(2)), "weights"),
    (lambda: rb.fit_bt(DIFFS, LABELS, 1.0, max_iter=0), "max_iter"),
    # issue 16: complex inputs, a zero-dimensional feature space, mis-shaped context weights, bad factors
    (lambda: rb.gibbs(np.array([[1 + 1j, 0.0]]), np.log([[0.5, 0.5]]), 1.0), "rewards"),
    (lambda: rb.fit_bt(np.zeros((3, 0)), LABELS, 1.0), "diffs"),
    (lambda: rb.fit_bt(DIFFS, LABELS, 1.0, tol="a"), "tol"),
    (lambda: rb.value(np.log(np.full((2, 3, 4), 0.25)), np.zeros((2, 3, 4)), np.log(np.full((2, 3, 4), 0.25)), 1.0,
                      np.full((5, 3), 1 / 3)), "context_probs"),
    (lambda: rb.mahalanobis_norm(np.ones(2), np.array([[1.0, 0.5], [0.0, 1.0]])), "cov"),
    (lambda: rb.mahalanobis_norm(np.ones(2), factor=np.array([[1.0, 0.5], [0.0, 1.0]])), "factor"),
    (lambda: rb.mahalanobis_norm(np.array([np.nan, 1.0]), np.eye(2)), "vectors"),
    (lambda: rb.ProblemConfig(ref_scale=1e308), "ref_scale"),
    (lambda: rb.ProblemConfig(n_actions=1), "n_actions"),
    (lambda: rb.ProblemConfig(seed=1.5), "seed"),
    (lambda: rb.ProblemConfig(n_good=1.5), "n_good"),
    (lambda: rb.ProblemConfig(theta_norm="2"), "theta_norm"),
    (lambda: rb.covariance(DIFFS, -1.0), "reg"),
    (lambda: rb.covariance(DIFFS, 1.0, scale=np.nan), "scale"),
    (lambda: rb.covariance(_inf(DIFFS), 1.0), "diffs"),
    (lambda: rb.cholesky(-np.eye(2)), "cov"),
    (lambda: rb.cholesky(np.ones((2, 3))), "cov"),
    (lambda: rb.mahalanobis_norm(np.ones(3), np.eye(2)), "vectors"),
    (lambda: rb.mahalanobis_norm(np.ones(2)), "cov"),
    (lambda: rb.mahalanobis_norm(np.ones(2), factor=np.ones((2, 3))), "factor"),
    (lambda: rb.mahalanobis_norm(np.ones((3, 1, 2)), np.stack([np.eye(2)] * 2)), "vectors"),
    # issue 16, the TypeErrors that named nothing: each is now a ValueError naming its argument
    (lambda: radii.zhu2023_radius(2, 0.1, 1.0, "a"), "delta"),
    (lambda: radii.zhu2023_radius(2, "a", 1.0, 0.1), "reg"),
    (lambda: offline.LCBOptions(beta=None), "beta"),
    (lambda: offline.LCBPolicyOptions(beta=None), "beta"),
    (lambda: offline.MLEOptions(reg="a"), "reg"),
    (lambda: nash.solve(np.full((2, 3, 3), 0.5), np.log(np.full((2, 3), 1 / 3)), 1.0, tol="a"), "tol"),
    (lambda: nash.nash_md_bound(1.0, 2.5), "n_steps"),
    (lambda: stats.t_interval([1.0, 2.0], level="a"), "level"),
    (lambda: losses.kl_estimate(None, [-1.0]), "logprobs"),
    (lambda: rb.make_problems(rb.ProblemConfig(), [0, 1.5]), "seeds"),
]


def _problem():
    return rb.LinearBandit(FEATURES, THETA, REF)


@pytest.mark.parametrize("call,argument", CASES, ids=[f"{i}-{a}" for i, (_, a) in enumerate(CASES)])
def test_bad_input_raises_value_error_naming_the_argument(call, argument):
    with pytest.raises(ValueError) as info:
        with np.errstate(all="ignore"):
            call()
    assert str(info.value).split(":")[0].split(" ")[0] == argument, str(info.value)


def test_good_input_passes_the_same_checks():
    """The fixtures above are valid where not deliberately broken (so the cases test one thing)."""
    problem = _problem()
    assert np.isfinite(problem.value(REF, 1.0))
    assert np.isfinite(rb.gibbs(R, REF, 1.0)).any()
    assert np.isfinite(rb.fit_bt(DIFFS, LABELS, 1.0)).all()
    data = problem.sample_preferences(REF, REF, 5, np.random.default_rng(0))
    assert data.n == 5
    # log-probabilities a few ulps above zero (a row with all mass on one action) are accepted
    assert np.isfinite(rb.kl(np.array([[1e-16, -40.0]]), np.array([[0.0, -40.0]]))).all()


def test_gibbs_exact_when_rewards_span_more_than_the_float_range():
    """r − max r overflows for r = ±1e308; the kernel then divides first: log-probs (0, −2e8) at η = 1e300."""
    got = rb.gibbs([[1e308, -1e308]], np.log([[0.5, 0.5]]), 1e300)
    np.testing.assert_allclose(got, [[0.0, -2e8]], rtol=1e-12)

