"""The compiled Gibbs kernel (rlbandit.compiled) against independent computations: its exp against
np.exp and its polynomial against mpmath; both row paths (short rows in blocks, long rows one by
one) against the exact shifted path and the three-line reference, with the validation it does in
the same pass."""

from __future__ import annotations

import mpmath
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

import rlbandit as rb
from rlbandit import compiled, kernels
from rlbandit._checks import NORMALISATION_TOL
from tests.strategies import extreme_etas, logprob_arrays, reward_arrays


def test_exp_polynomial_is_the_chebyshev_interpolant_of_exp():
    mpmath.mp.dps = 40
    half = mpmath.log(2) / 2
    coefficients, error = mpmath.chebyfit(mpmath.exp, [-half, half], len(compiled.EXP_COEFFICIENTS), error=True)
    assert error < 2.5e-16
    np.testing.assert_array_equal(np.array([float(c) for c in coefficients]), np.array(compiled.EXP_COEFFICIENTS))


@numba.njit
def _map(function, x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = function(x[i])
    return out


@pytest.mark.parametrize("low, high", [(-708.0, 709.0), (-1.0, 1.0), (-1e-3, 1e-3), (-708.0, -700.0)])
def test_inline_exp_is_within_three_ulp_of_numpy(low, high):
    x = np.concatenate([np.linspace(low, high, 200_001), np.random.default_rng(0).uniform(low, high, 100_000)])
    want = np.exp(x)
    assert (np.abs(_map(compiled.exp64, x) - want) <= 3.0 * np.spacing(want)).all()
    assert (np.abs(_map(compiled.exp_coarse, x) / want - 1.0) <= 2e-7).all()


def _assert_gibbs_exact(rewards, ref, eta):
    got = kernels.gibbs(rewards, ref, eta, check=True)
    exact = kernels.gibbs_exact_rows(rewards.reshape(-1, rewards.shape[-1]), ref.reshape(-1, ref.shape[-1]), eta)
    exact = exact.reshape(rewards.shape)
    assert (np.isinf(got) == np.isinf(exact)).all()
    finite = np.isfinite(exact)
    np.testing.assert_allclose(got[finite], exact[finite], atol=1e-12, rtol=1e-14)  # log π ≈ −1e7 at small η


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([3, 255, 256, 700]), st.integers(1, 4), st.one_of(extreme_etas(), st.floats(0.05, 20.0)),
       st.data())
def test_both_row_paths_match_the_exact_shifted_path(k, n_rows, eta, data):
    """k < LONG_ROW takes the blocked path, k ≥ LONG_ROW the row-by-row one; −inf entries, ties
    and extreme η (rows handed back to the exact path) included."""
    rewards = data.draw(reward_arrays((n_rows, k)))
    ref = data.draw(logprob_arrays((n_rows, k)))
    _assert_gibbs_exact(rewards, ref, eta)


@pytest.mark.parametrize("k", [7, 300])
def test_rows_outside_the_fast_range_go_to_the_exact_path(k):
    """A row whose partition sum would overflow (r/η ≈ 800) or underflow (all of π0's mass on
    rewards 1e3·η below the rest) is recomputed exactly, next to ordinary rows."""
    rng = np.random.default_rng(k)
    rewards = rng.standard_normal((4, k))
    ref = np.log(rng.dirichlet(np.ones(k), size=4))
    rewards[1] += 800.0
    ref[2, 1:] = -np.inf
    ref[2, 0] = 0.0
    rewards[2, 0] = -1e3
    _assert_gibbs_exact(rewards, ref, 1.0)
    assert np.isfinite(kernels.gibbs(rewards, ref, 1.0)).sum() == 3 * k + 1


@pytest.mark.parametrize("k", [5, 400])
@pytest.mark.parametrize("offset, accepted", [(0.9 * NORMALISATION_TOL, True), (1.1 * NORMALISATION_TOL, False)])
def test_the_in_pass_mass_check_keeps_the_normalisation_tolerance(k, offset, accepted):
    rng = np.random.default_rng(0)
    ref = np.log(rng.dirichlet(np.ones(k), size=3)) + np.log1p(np.array([[0.0], [offset], [0.0]]))
    rewards = rng.standard_normal((3, k))
    if accepted:
        np.testing.assert_allclose(logsumexp(rb.gibbs(rewards, ref, 0.5), axis=-1), 0.0, atol=1e-12)
    else:
        with pytest.raises(ValueError, match=r"ref_logprobs: rows must be normalised.*row \(1,\)"):
            rb.gibbs(rewards, ref, 0.5)


@pytest.mark.parametrize("k", [5, 400])
@pytest.mark.parametrize(
    "where, value, message",
    [
        ("rewards", np.nan, "rewards: contains NaN"),
        ("rewards", np.inf, "rewards: contains inf"),
        ("rewards", -np.inf, "rewards: contains inf"),
        ("ref", np.nan, "ref_logprobs: contains NaN"),
        ("ref", 0.5, "ref_logprobs: log-probabilities must be <= 0"),
    ],
)
def test_invalid_entries_are_found_in_the_same_pass(k, where, value, message):
    rng = np.random.default_rng(1)
    rewards = rng.standard_normal((2, 3, k))
    ref = np.log(rng.dirichlet(np.ones(k), size=(2, 3)))
    (rewards if where == "rewards" else ref)[1, 2, k - 1] = value
    with pytest.raises(ValueError, match=message):
        rb.gibbs(rewards, ref, 1.0)


def test_unchecked_kernel_on_broadcast_and_empty_inputs():
    rng = np.random.default_rng(2)
    rewards = rng.standard_normal((3, 4, 6))
    ref = np.log(rng.dirichlet(np.ones(6), size=4))
    np.testing.assert_allclose(kernels.gibbs(rewards, ref, 0.7), kernels.gibbs_reference(rewards, ref, 0.7), atol=1e-12)
    assert kernels.gibbs(np.empty((0, 6)), np.empty((0, 6)), 1.0).shape == (0, 6)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), st.sampled_from([2, 9, 300]), st.data())
def test_tilt_weights_match_the_numpy_expression(n, c, g, k, data):
    """e = exp(max(t·h + log π¹ − peak, −300)) (0 off the support), the peak and Σ e·h, against the
    same expression in NumPy (the optimistic search's tilted policies)."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    h = rng.uniform(-1.0, 1.0, (n, c, k))
    ref = data.draw(logprob_arrays((n, k)))
    tilt = np.concatenate([np.zeros((n, c, 1)), rng.choice(np.geomspace(1e-2, 1e3, 24), (n, c, g))], axis=-1)
    e, peak, eh = compiled.tilt_weights(h, ref, tilt, -300.0)
    with np.errstate(invalid="ignore"):
        z = tilt[..., None] * h[:, :, None, :] + ref[:, None, None, :]
    want_peak = z.max(axis=-1)
    want = np.where(np.isfinite(ref)[:, None, None, :], np.exp(np.maximum(z - want_peak[..., None], -300.0)), 0.0)
    np.testing.assert_allclose(peak, want_peak, rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(e, want, rtol=1e-11, atol=1e-300)
    assert (e[np.broadcast_to(np.isneginf(ref)[:, None, None, :], e.shape)] == 0.0).all()  # no mass stays exactly 0
    np.testing.assert_allclose(eh, (want * h[:, :, None, :]).sum(axis=-1), rtol=1e-11, atol=1e-12 * k)
