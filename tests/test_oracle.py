"""The Gibbs oracle, KL and the objective (DESIGN §1): the five Gibbs facts as named property
tests, and every exact quantity against an independent computation (50-digit brute force with
mpmath, cvxpy)."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

import rlbandit as rb
from rlbandit import kernels
from tests.strategies import (
    REWARD_STEP,
    context_prob_arrays,
    etas,
    extreme_etas,
    gibbs_instances,
    grid_reward_arrays,
    logprob_arrays,
    moderate_etas,
    reward_arrays,
    shapes,
)

mpmath.mp.dps = 50


# --------------------------------------------------------------------------------------------
# Brute force in 50-digit arithmetic: an independent implementation of every exact quantity.
# --------------------------------------------------------------------------------------------

def _mp_gibbs_row(r, ref, eta):
    w = [mpmath.mpf(0) if not np.isfinite(lq) else mpmath.exp(mpmath.mpf(lq) + mpmath.mpf(ri) / eta) for ri, lq in zip(r, ref)]
    z = mpmath.fsum(w)
    return [wi / z for wi in w], z


def _mp_normalised(logprobs):
    """50-digit log-probabilities of the row normalised exactly (float rows are off by ~1e-16,
    which η = 1e8 would amplify; the library removes it too)."""
    finite = [mpmath.mpf(v) for v in logprobs if np.isfinite(v)]
    log_mass = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in finite))
    return [mpmath.mpf(v) - log_mass if np.isfinite(v) else None for v in logprobs]


def _mp_value_row(logp, r, ref, eta):
    """E_π r − η KL(π‖π0) for one context, in mpmath (−inf when π leaves π0's support)."""
    total = mpmath.mpf(0)
    for lp, ri, lq in zip(_mp_normalised(logp), r, _mp_normalised(ref)):
        if lp is None:
            continue
        if lq is None:
            return -mpmath.inf
        total += mpmath.exp(lp) * (mpmath.mpf(ri) - mpmath.mpf(eta) * (lp - lq))
    return total


def _mp_log_partition_row(r, ref, eta):
    """η log Σ π0 exp(r/η), shifted by the max reward on the support so the 50 digits are not lost."""
    top = max(ri for ri, lq in zip(r, ref) if np.isfinite(lq))
    s = mpmath.fsum(mpmath.exp(lq + (mpmath.mpf(ri) - top) / eta) for ri, lq in zip(r, _mp_normalised(ref)) if lq is not None)
    return mpmath.mpf(top) + mpmath.mpf(eta) * mpmath.log(s)


def _scale(rewards, eta):
    return 1.0 + float(np.abs(rewards).max())


# --------------------------------------------------------------------------------------------
# The five Gibbs facts of DESIGN §1
# --------------------------------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(gibbs_instances(batch=True))
def test_fact1_optimal_value_closed_form(instance):
    """J(O(r)) = Σ_x d0(x) η log Z(x) for every η in [1e-8, 1e8], without NaN or overflow."""
    rewards, ref, eta, d0 = instance
    policy = rb.gibbs(rewards, ref, eta)
    assert np.isfinite(logsumexp(policy, axis=-1)).all()
    np.testing.assert_allclose(logsumexp(policy, axis=-1), 0.0, atol=1e-12)
    closed = rb.optimal_value(rewards, ref, eta, d0)
    direct = rb.value(policy, rewards, ref, eta, d0)
    assert np.isfinite(closed).all() and np.isfinite(direct).all()
    np.testing.assert_allclose(direct, closed, rtol=0, atol=1e-10 * _scale(rewards, eta))


@settings(max_examples=100, deadline=None)
@given(gibbs_instances(), st.data())
def test_fact2_gap_is_eta_kl(instance, data):
    """J(O(r)) − J(π) = η Σ_x d0(x) KL(π‖O(r)) for every π (so O(r) is the unique maximiser)."""
    rewards, ref, eta, d0 = instance
    policy = data.draw(logprob_arrays(rewards.shape))
    optimal = rb.gibbs(rewards, ref, eta)
    gap = rb.optimal_value(rewards, ref, eta, d0) - rb.value(policy, rewards, ref, eta, d0)
    per_context = rb.kl(policy, optimal)
    with np.errstate(invalid="ignore"):
        weighted = np.where(d0 > 0, d0 * per_context, 0.0).sum()
    if np.isinf(weighted):
        assert gap == np.inf  # π leaves π0's support on a context with d0 > 0: J(π) = −inf
        return
    expected = eta * weighted
    assert gap >= -1e-10 * _scale(rewards, eta)
    np.testing.assert_allclose(gap, expected, rtol=1e-8, atol=1e-10 * _scale(rewards, eta))


@settings(max_examples=100, deadline=None)
@given(gibbs_instances(eta=moderate_etas(), allow_neg_inf=False), st.data())
def test_fact2_unique_maximiser(instance, data):
    """Every other policy has a strictly smaller objective (on contexts with d0 > 0)."""
    rewards, ref, eta, _ = instance
    d0 = data.draw(context_prob_arrays(rewards.shape[0], allow_zero=False))
    optimal = rb.gibbs(rewards, ref, eta)
    best = rb.value(optimal, rewards, ref, eta, d0)
    other = data.draw(logprob_arrays(rewards.shape))
    distance = float(np.abs(np.exp(other) - np.exp(optimal)).max())
    gap = best - rb.value(other, rewards, ref, eta, d0)
    assert gap >= -1e-12 * _scale(rewards, eta)
    if distance > 1e-3:
        assert gap > 0


@settings(max_examples=120, deadline=None)
@given(shapes(), st.data())
def test_fact3_shift_invariance(shape, data):
    """O(r + c(x)) = O(r) for any per-context shift c(x); exactly on the tie-prone grid at every η."""
    rewards = data.draw(grid_reward_arrays(shape))
    ref = data.draw(logprob_arrays(shape))
    eta = data.draw(etas())
    shift = data.draw(st.lists(st.integers(-40, 40), min_size=shape[0], max_size=shape[0]))
    shifted = rewards + REWARD_STEP * np.asarray(shift, dtype=np.float64)[:, None]
    a, b = rb.gibbs(rewards, ref, eta), rb.gibbs(shifted, ref, eta)
    np.testing.assert_allclose(np.exp(a), np.exp(b), atol=1e-12)
    assert (np.isinf(a) == np.isinf(b)).all()
    # continuous rewards and shifts: equal up to the rounding of r + c
    rewards = data.draw(reward_arrays(shape))
    c = data.draw(st.floats(-100.0, 100.0))
    a, b = rb.gibbs(rewards, ref, eta), rb.gibbs(rewards + c, ref, eta)
    assert float(np.max(rb.kl(a, b))) <= 1e-9 + 1e-13 * abs(c) / eta


@settings(max_examples=120, deadline=None)
@given(shapes(), st.data())
def test_fact4_limits(shape, data):
    """η → ∞ gives π0; η → 0 gives π0 restricted to argmax r over its support, renormalised."""
    rewards = data.draw(grid_reward_arrays(shape))
    ref = data.draw(logprob_arrays(shape))
    big = rb.gibbs(rewards, ref, 1e8)
    np.testing.assert_allclose(np.exp(big), np.exp(ref), atol=1e-6)
    assert (np.isinf(big) == np.isinf(ref)).all()
    tiny = rb.gibbs(rewards, ref, 1e-8)
    support = np.isfinite(ref)
    top = np.where(support, rewards, -np.inf).max(axis=-1, keepdims=True)
    argmax = support & (rewards == top)
    restricted = np.where(argmax, ref, -np.inf)
    expected = restricted - logsumexp(restricted, axis=-1, keepdims=True)
    np.testing.assert_allclose(np.exp(tiny), np.exp(expected), atol=1e-12)
    assert (np.exp(tiny)[~argmax] == 0).all() and (np.isinf(tiny) == ~support).all()
    # the closed-form value tends to E_π0 r and to the max over the support
    np.testing.assert_allclose(rb.log_partition(rewards, ref, 1e8), (np.exp(ref) * rewards).sum(-1), atol=1e-6)
    np.testing.assert_allclose(rb.log_partition(rewards, ref, 1e-8), top[..., 0], atol=1e-6)


def test_fact4_uniform_only_when_reference_weighs_maximisers_equally():
    rewards = np.array([[1.0, 1.0, 0.0, 1.0]])
    uniform = np.log(np.full((1, 4), 0.25))
    skewed = np.log(np.array([[0.5, 0.1, 0.2, 0.2]]))
    np.testing.assert_allclose(np.exp(rb.gibbs(rewards, uniform, 1e-8)), [[1 / 3, 1 / 3, 0, 1 / 3]], atol=1e-15)
    np.testing.assert_allclose(np.exp(rb.gibbs(rewards, skewed, 1e-8)), [[0.625, 0.125, 0, 0.25]], atol=1e-15)


def _cvxpy_gibbs(rewards_row, ref_row, eta):
    import cvxpy as cp

    support = np.isfinite(ref_row)
    r, q = rewards_row[support], np.exp(ref_row[support])
    pi = cp.Variable(r.size, nonneg=True)
    objective = cp.Maximize(r @ pi - eta * cp.sum(cp.rel_entr(pi, q)))
    problem = cp.Problem(objective, [cp.sum(pi) == 1])
    problem.solve(solver=cp.CLARABEL)
    full = np.zeros(ref_row.shape)
    full[support] = np.clip(pi.value, 0.0, None)
    return full / full.sum(), problem.value


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(max_examples=20, deadline=None)
@given(gibbs_instances(eta=moderate_etas()))
def test_fact5_cvxpy_agrees(instance):
    """cvxpy (CLARABEL) on max_π π·r − η KL(π‖π0) agrees with the closed form (by KL and value)."""
    rewards, ref, eta, _ = instance
    closed = rb.gibbs(rewards, ref, eta)
    per_context = rb.log_partition(rewards, ref, eta)
    for x in range(rewards.shape[0]):
        pi, objective = _cvxpy_gibbs(rewards[x], ref[x], eta)
        with np.errstate(divide="ignore"):
            log_pi = np.log(pi)
        assert abs(objective - per_context[x]) <= 1e-5 * (1.0 + abs(per_context[x]))
        assert float(np.abs(pi - np.exp(closed[x])).max()) <= 1e-4
        # the solver's policy is feasible, so its true objective is within its KL gap of the optimum
        assert float(kernels.kl(log_pi, closed[x])) * eta <= 1e-5 * (1.0 + abs(per_context[x]))


# --------------------------------------------------------------------------------------------
# KL, value, optimal value against brute force
# --------------------------------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(shapes(), st.data())
def test_kl_nonnegative_and_zero_only_for_equal_rows(shape, data):
    p = data.draw(logprob_arrays(shape))
    q = data.draw(logprob_arrays(shape))
    d = rb.kl(p, q)
    assert d.shape == shape[:-1]
    assert (d >= 0).all()
    assert (rb.kl(p, p) == 0).all()
    differs = np.abs(np.exp(p) - np.exp(q)).max(axis=-1) > 1e-6
    assert (d[differs] > 0).all()
    outside = (np.isfinite(p) & ~np.isfinite(q)).any(axis=-1)
    assert (np.isinf(d) == outside).all()


@settings(max_examples=80, deadline=None)
@given(shapes(max_contexts=2, max_actions=6), st.data())
def test_kl_matches_bruteforce(shape, data):
    p = data.draw(logprob_arrays(shape))
    q = data.draw(logprob_arrays(shape))
    d = rb.kl(p, q)
    for x in range(shape[0]):
        exact = _mp_kl_row(p[x], q[x])
        if exact == mpmath.inf:
            assert d[x] == np.inf
        else:
            assert abs(d[x] - float(exact)) <= 1e-12 * (1.0 + float(exact))


def _mp_kl_row(p, q):
    """KL of the rows normalised in 50-digit arithmetic (so float normalisation error does not count)."""
    mp_p = [mpmath.exp(mpmath.mpf(v)) if np.isfinite(v) else mpmath.mpf(0) for v in p]
    mp_q = [mpmath.exp(mpmath.mpf(v)) if np.isfinite(v) else mpmath.mpf(0) for v in q]
    sp, sq = mpmath.fsum(mp_p), mpmath.fsum(mp_q)
    total = mpmath.mpf(0)
    for a, b in zip(mp_p, mp_q):
        if a == 0:
            continue
        if b == 0:
            return mpmath.inf
        total += a / sp * mpmath.log((a / sp) / (b / sq))
    return total


def test_kl_no_cancellation_for_nearby_rows():
    p = np.log(np.array([0.3, 0.7]))
    q = np.log(np.array([0.3 + 1e-6, 0.7 - 1e-6]))
    exact = float(_mp_kl_row(p, q))  # ≈ 2.4e-12
    assert abs(float(rb.kl(p, q)) - exact) <= 1e-4 * exact


@settings(max_examples=80, deadline=None)
@given(gibbs_instances(), st.data())
def test_value_matches_bruteforce(instance, data):
    rewards, ref, eta, d0 = instance
    policy = data.draw(logprob_arrays(rewards.shape))
    got = rb.value(policy, rewards, ref, eta, d0)
    exact = mpmath.fsum(mpmath.mpf(w) * _mp_value_row(policy[x], rewards[x], ref[x], eta) for x, w in enumerate(d0) if w > 0)
    if exact == -mpmath.inf:
        assert got == -np.inf
    else:
        assert abs(got - float(exact)) <= 1e-9 * (_scale(rewards, eta) + abs(float(exact)))


@settings(max_examples=100, deadline=None)
@given(gibbs_instances())
def test_optimal_value_and_gibbs_match_bruteforce(instance):
    rewards, ref, eta, d0 = instance
    got = rb.optimal_value(rewards, ref, eta, d0)
    exact = mpmath.fsum(mpmath.mpf(w) * _mp_log_partition_row(rewards[x], ref[x], eta) for x, w in enumerate(d0))
    assert abs(got - float(exact)) <= 1e-12 * _scale(rewards, eta)
    policy = np.exp(rb.gibbs(rewards, ref, eta))
    for x in range(rewards.shape[0]):
        top = max(float(r) for r, q in zip(rewards[x], ref[x]) if np.isfinite(q))
        probs, _ = _mp_gibbs_row(rewards[x] - top, ref[x], eta)
        np.testing.assert_allclose(policy[x], [float(p) for p in probs], atol=1e-12)


@pytest.mark.parametrize("eta", [5e-324, 1e-300, 1e-8, 1.0, 1e8, 1e300, 1.7e308])
def test_extreme_eta_without_nan_or_overflow(eta):
    rng = np.random.default_rng(0)
    rewards = 5.0 * rng.standard_normal((3, 7))
    ref = rng.standard_normal((3, 7))
    ref[:, 2] = -np.inf
    ref[0, :] = [-800.0, 0.0, -np.inf, -900.0, -1000.0, -700.0, -850.0]  # nearly all mass on one action
    ref -= logsumexp(ref, axis=-1, keepdims=True)
    with np.errstate(over="raise", invalid="raise"):
        policy = rb.gibbs(rewards, ref, eta)
        opt = rb.optimal_value(rewards, ref, eta)
        val = rb.value(policy, rewards, ref, eta)
    assert not np.isnan(policy).any() and np.isfinite(opt) and np.isfinite(val)
    np.testing.assert_allclose(logsumexp(policy, axis=-1), 0.0, atol=1e-12)
    assert (np.isinf(policy) >= np.isinf(ref)).all()
    if eta <= 1e8:  # log-probs resolve KL to ~1e-32 only, so η·KL is meaningful for η ≲ 1e16
        assert abs(val - opt) <= 1e-9 * (1.0 + abs(opt))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(1, 9), extreme_etas(), st.data())
def test_gibbs_fast_path_matches_exact_shifted_path(n_rows, k, eta, data):
    rewards = data.draw(reward_arrays((n_rows, k)))
    ref = data.draw(logprob_arrays((n_rows, k)))
    for e in (eta, 1.0):
        fast = kernels.gibbs(rewards, ref, e, check=True)
        exact = kernels.gibbs_exact_rows(rewards, ref, e)
        np.testing.assert_allclose(np.exp(fast), np.exp(exact), atol=1e-12)
        assert (np.isinf(fast) == np.isinf(exact)).all()


@settings(max_examples=60, deadline=None)
@given(gibbs_instances(batch=True, eta=st.floats(0.01, 100.0)))
def test_gibbs_kernel_equals_its_reference_form(instance):
    """The compiled kernel computes the headline equation log π0 + r/η − log Z exactly."""
    rewards, ref, eta = instance[:3]
    got = kernels.gibbs(rewards, ref, eta, check=True)
    want = kernels.gibbs_reference(rewards, ref, eta)
    assert (np.isinf(got) == np.isinf(want)).all()
    np.testing.assert_allclose(np.exp(got), np.exp(want), atol=1e-12)


def test_gibbs_many_blocks_matches_rowwise_and_reports_the_bad_row():
    rng = np.random.default_rng(1)
    rewards = rng.standard_normal((3, 150, 1000))  # several blocks of the kernel
    ref = rng.standard_normal((3, 150, 1000))
    ref -= logsumexp(ref, axis=-1, keepdims=True)
    got = rb.gibbs(rewards, ref, 0.3)
    np.testing.assert_allclose(got, kernels.gibbs_exact_rows(rewards, ref, 0.3), atol=1e-12)
    bad = ref.copy()
    bad[2, 100, 5] += 0.5
    with pytest.raises(ValueError, match=r"ref_logprobs: .*row \(2, 100\)"):
        rb.gibbs(rewards, bad, 0.3)
    bad_rewards = rewards.copy()
    bad_rewards[1, 140, 999] = np.nan
    with pytest.raises(ValueError, match="rewards: contains NaN"):
        rb.gibbs(bad_rewards, ref, 0.3)


@settings(max_examples=60, deadline=None)
@given(gibbs_instances(batch=True))
def test_batched_equals_per_seed(instance):
    rewards, ref, eta, d0 = instance
    batched = rb.gibbs(rewards, ref, eta)
    values = rb.value(batched, rewards, ref, eta, d0)
    optimal = rb.optimal_value(rewards, ref, eta, d0)
    for s in range(rewards.shape[0]):
        np.testing.assert_array_equal(batched[s], rb.gibbs(rewards[s], ref[s], eta))
        assert values[s] == rb.value(batched[s], rewards[s], ref[s], eta, d0)
        assert optimal[s] == rb.optimal_value(rewards[s], ref[s], eta, d0)


def test_broadcasting_reference_and_context_weights():
    rng = np.random.default_rng(2)
    rewards = rng.standard_normal((2, 3, 4))
    ref = np.log(np.array([0.1, 0.2, 0.3, 0.4]))
    policy = rb.gibbs(rewards, ref, 0.5)
    np.testing.assert_array_equal(policy, rb.gibbs(rewards, np.broadcast_to(ref, rewards.shape), 0.5))
    d0 = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    values = rb.value(policy, rewards, ref, 0.5, d0)
    assert values.shape == (2,)
    np.testing.assert_allclose(values[1], rb.value(policy[1, :1], rewards[1, :1], ref, 0.5))
    uniform = rb.value(policy, rewards, ref, 0.5)
    np.testing.assert_allclose(uniform, rb.value(policy, rewards, ref, 0.5, np.full(3, 1 / 3)))


def test_zero_weight_context_with_infinite_kl_contributes_nothing():
    with np.errstate(divide="ignore"):
        ref = np.log(np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]]))
        policy = np.log(np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]))
    rewards = np.zeros((2, 3))
    with np.errstate(divide="ignore"):
        assert rb.value(policy, rewards, ref, 1.0, np.array([1.0, 0.0])) == 0.0
        assert rb.value(policy, rewards, ref, 1.0, np.array([0.5, 0.5])) == -np.inf


def test_same_inputs_same_numbers():
    rng = np.random.default_rng(3)
    rewards, ref = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    ref -= logsumexp(ref, axis=-1, keepdims=True)
    assert np.array_equal(rb.gibbs(rewards, ref, 0.7), rb.gibbs(rewards.copy(), ref.copy(), 0.7))
