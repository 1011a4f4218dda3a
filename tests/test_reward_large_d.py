"""Bradley–Terry MLE at large d (issue 17): the L-BFGS path of ``fit_bt`` returns the same θ̂ as
exact Newton (and as scikit-learn, the independent computation), and ``solver="auto"`` picks the
path by the cost model of :func:`rlbandit.reward.bt_solver`."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

import rlbandit as rb
import rlbandit.reward as reward
from tests.strategies import bt_datasets


def _sklearn(diffs, labels, reg, weights=None):
    model = LogisticRegression(fit_intercept=False, C=1.0 / reg, tol=1e-12, max_iter=100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(diffs, labels, sample_weight=weights)
    return model.coef_[0]


def _anisotropic(diffs, rng, decades):
    """Rotate the features and spread their scales over ``decades`` orders of magnitude."""
    d = diffs.shape[-1]
    rotation, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (diffs * 10.0 ** (-decades * np.arange(d) / max(d - 1, 1))) @ rotation.T


@settings(max_examples=40, deadline=None)
@given(bt_datasets(batch=True, weighted=True, max_dim=8), st.floats(1e-3, 10.0), st.floats(0.0, 2.5),
       st.integers(0, 2**32 - 1))
def test_lbfgs_and_newton_agree_with_each_other_and_sklearn(dataset, reg, decades, seed):
    """Property: both minimisers return the unique minimiser of the strictly convex loss — to 1e-8
    of each other, and to scikit-learn's own precision of it — on batched, weighted, anisotropic data."""
    diffs, labels, weights = dataset
    diffs = _anisotropic(diffs, np.random.default_rng(seed), decades)
    newton = rb.fit_bt(diffs, labels, reg, weights=weights, solver="newton")
    lbfgs = rb.fit_bt(diffs, labels, reg, weights=weights, solver="lbfgs")
    np.testing.assert_allclose(lbfgs, newton, rtol=0, atol=1e-8)
    s = int(seed % diffs.shape[0])
    if len(np.unique(labels[s][weights[s] > 0])) == 2:  # scikit-learn needs both classes
        np.testing.assert_allclose(lbfgs[s], _sklearn(diffs[s], labels[s], reg, weights[s]), atol=1e-5)


@pytest.mark.parametrize("decades", [0.0, 3.0])
def test_lbfgs_sketched_preconditioner_both_branches(decades):
    """n > 2·sketch rows: the preconditioner is a strided subsample — diagonal for isotropic
    features, the full d×d sketch for rotated anisotropic ones — and θ̂ is still exact."""
    rng = np.random.default_rng(21)
    n, d = 9000, 24
    diffs = _anisotropic(rng.uniform(-1, 1, (n, d)) / np.sqrt(d), rng, decades)
    labels = (rng.random(n) < expit(diffs @ (3.0 * rng.standard_normal(d)))).astype(int)
    prob = np.full((n,), 0.5)
    precond = reward._preconditioner(diffs, prob * (1 - prob), np.asarray(0.5), max(1, n // reward._sketch_rows(d)))
    assert precond.shape == ((d,) if decades == 0.0 else (d, d))
    lbfgs = rb.fit_bt(diffs, labels, 0.5, solver="lbfgs")
    grad = diffs.T @ (expit(diffs @ lbfgs) - labels) + 0.5 * lbfgs
    assert np.abs(grad).max() <= 1e-10 * n
    np.testing.assert_allclose(lbfgs, rb.fit_bt(diffs, labels, 0.5, solver="newton"), rtol=0, atol=1e-8)
    np.testing.assert_allclose(lbfgs, _sklearn(diffs, labels, 0.5), atol=1e-5)


def test_bt_solver_cost_model():
    """Exact Newton where its one n·d² Hessian (≈ d/_BLAS3_SPEEDUP passes over the data) costs
    less than L-BFGS's extra passes, or where n is too small to amortise the sketch; else L-BFGS."""
    assert reward.bt_solver(10**5, 8) == "newton"
    assert reward.bt_solver(10**5, 32) == "newton"
    assert reward.bt_solver(10**4, 8) == "newton"
    assert reward.bt_solver(10**5, 256) == "lbfgs"
    assert reward.bt_solver(10**5, 384) == "lbfgs"
    assert reward.bt_solver(10**6, 384) == "lbfgs"
    assert reward.bt_solver(2000, 384) == "newton"  # n ≤ 2·sketch rows: Newton's Hessians are cheap


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10**7), st.integers(1, 2000))
def test_bt_solver_is_the_cheaper_by_its_cost_model(n, d):
    """Property: "lbfgs" exactly when the Hessian's cost in passes exceeds L-BFGS's extra passes
    and n exceeds twice the sketch; the choice is monotone in d for fixed n and in n for fixed d."""
    hessian_passes = n * d * d / reward._BLAS3_SPEEDUP / (n * d)
    big = n > 2 * max(reward._SKETCH_ROWS, 16 * d)
    expected = "lbfgs" if big and hessian_passes > reward._LBFGS_EXTRA_PASSES else "newton"
    assert reward.bt_solver(n, d) == expected
    if reward.bt_solver(n, d) == "lbfgs":
        assert reward.bt_solver(2 * n, d) == "lbfgs"


def test_auto_uses_bt_solver_and_solver_is_validated():
    rng = np.random.default_rng(22)
    n, d = 9000, 130
    assert reward.bt_solver(n, d) == "lbfgs"
    diffs = rng.uniform(-1, 1, (n, d)) / np.sqrt(d)
    labels = (rng.random(n) < expit(diffs @ rng.standard_normal(d))).astype(int)
    auto = rb.fit_bt(diffs, labels, 1.0)
    np.testing.assert_array_equal(auto, rb.fit_bt(diffs, labels, 1.0, solver="lbfgs"))
    np.testing.assert_allclose(auto, rb.fit_bt(diffs, labels, 1.0, solver="newton"), rtol=0, atol=1e-8)
    for bad in ("newton-cg", "", None, 3):
        with pytest.raises(ValueError, match="solver"):
            rb.fit_bt(diffs[:10], labels[:10], 1.0, solver=bad)
    for n_bad, d_bad, name in ((0, 3, "n"), (5, 0, "d"), (2.5, 3, "n"), (5, "3", "d")):
        with pytest.raises(ValueError, match=f"^{name}:"):
            reward.bt_solver(n_bad, d_bad)


def test_lbfgs_reports_non_convergence():
    diffs = np.array([[1.0, 0.0], [0.5, 0.2], [-1.0, 0.1], [0.0, 0.0]])
    labels = np.array([1, 1, 0, 1])
    with pytest.raises(ValueError, match="reg"):  # separable with λ = 0: no MLE
        rb.fit_bt(diffs, labels, 0.0, solver="lbfgs")
    rng = np.random.default_rng(23)
    diffs = rng.uniform(-1, 1, (300, 6))
    labels = (rng.random(300) < expit(diffs @ rng.standard_normal(6))).astype(int)
    theta, converged, _ = reward._lbfgs(diffs, labels.astype(float), np.asarray(1.0), None, np.zeros(6),
                                        tol=1e-26, max_iter=2)
    assert not converged


def test_lbfgs_norm_bound_uses_newton():
    """The constrained fit always takes the Newton path (its KKT root-finding needs H)."""
    rng = np.random.default_rng(24)
    diffs = rng.uniform(-1, 1, (200, 4))
    labels = (rng.random(200) < expit(diffs @ (4 * rng.standard_normal(4)))).astype(int)
    np.testing.assert_array_equal(rb.fit_bt(diffs, labels, 0.1, bound=0.5, solver="lbfgs"),
                                  rb.fit_bt(diffs, labels, 0.1, bound=0.5, solver="newton"))


def test_check_finite_one_reduction_fast_path_is_exact():
    """The validation of ``diffs`` (and every finite check) sums once on the happy path; a sum
    that overflows on finite entries must still pass, and NaN / ±inf must still be named."""
    from rlbandit._checks import check_finite

    check_finite(np.array([1e308, 1e308, -1e308]), "x")  # the sum overflows; every entry is finite
    for bad, what in (([1.0, np.nan], "NaN"), ([np.inf, -np.inf], "inf"), ([1.0, -np.inf], "inf")):
        with pytest.raises(ValueError, match=f"^x: contains {what}"):
            check_finite(np.array(bad), "x")
    with pytest.raises(ValueError, match="^diffs: contains inf"):
        rb.fit_bt(np.array([[1.0, np.inf], [0.5, 0.2]]), np.array([1, 0]), 1.0, solver="lbfgs")
