"""Bradley–Terry MLE, its norm-constrained variant, covariance and Σ⁻¹-norms (DESIGN §2), each
against an independent computation (scikit-learn, cvxpy, explicit inverses)."""

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


def _gradient(theta, diffs, labels, reg, weights=None):
    resid = expit(diffs @ theta) - labels
    if weights is not None:
        resid = resid * weights
    return diffs.T @ resid + reg * theta


def _sklearn(diffs, labels, reg, weights=None):
    model = LogisticRegression(fit_intercept=False, C=np.inf if reg == 0 else 1.0 / reg, tol=1e-12, max_iter=100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(diffs, labels, sample_weight=weights)
    return model.coef_[0]


def _random_bt(rng, n, d, scale=2.0):
    diffs = rng.uniform(-1, 1, (n, d)) / np.sqrt(d)
    theta = scale * rng.standard_normal(d)
    labels = (rng.random(n) < expit(diffs @ theta)).astype(int)
    return diffs, labels


@pytest.mark.parametrize("reg", [0.0, 0.1, 1.0, 10.0])
def test_fit_bt_matches_sklearn(reg):
    rng = np.random.default_rng(int(reg * 10))
    diffs, labels = _random_bt(rng, 2000, 6)
    theta = rb.fit_bt(diffs, labels, reg)
    np.testing.assert_allclose(theta, _sklearn(diffs, labels, reg), atol=2e-6)
    assert np.abs(_gradient(theta, diffs, labels, reg)).max() <= 1e-9  # exact: the gradient vanishes


def test_fit_bt_weighted_matches_sklearn_and_repeated_rows():
    rng = np.random.default_rng(7)
    diffs, labels = _random_bt(rng, 1500, 5)
    weights = rng.integers(0, 4, 1500).astype(float)
    theta = rb.fit_bt(diffs, labels, 0.5, weights=weights)
    np.testing.assert_allclose(theta, _sklearn(diffs, labels, 0.5, weights), atol=2e-6)
    repeated = np.repeat(np.arange(1500), weights.astype(int))
    np.testing.assert_allclose(theta, rb.fit_bt(diffs[repeated], labels[repeated], 0.5), atol=1e-10)


def test_fit_bt_large_n_sketched_hessian_is_exact():
    """n > 2·sketch rows takes the sketched-Hessian path; the answer is still the exact minimiser."""
    rng = np.random.default_rng(8)
    diffs, labels = _random_bt(rng, 30_000, 8)
    theta = rb.fit_bt(diffs, labels, 1.0)
    assert np.abs(_gradient(theta, diffs, labels, 1.0)).max() <= 1e-12 * len(labels)
    np.testing.assert_allclose(theta, _sklearn(diffs, labels, 1.0), atol=2e-6)


def test_fit_bt_batched_equals_per_seed():
    rng = np.random.default_rng(9)
    data = [_random_bt(rng, 400, 4) for _ in range(3)]
    diffs = np.stack([d for d, _ in data])
    labels = np.stack([y for _, y in data])
    batched = rb.fit_bt(diffs, labels, 0.3)
    for s in range(3):
        np.testing.assert_allclose(batched[s], rb.fit_bt(diffs[s], labels[s], 0.3), rtol=0, atol=1e-11)
    weights = rng.random(labels.shape)
    batched = rb.fit_bt(diffs, labels, 0.3, bound=0.5, weights=weights)
    for s in range(3):
        single = rb.fit_bt(diffs[s], labels[s], 0.3, bound=0.5, weights=weights[s])
        np.testing.assert_allclose(batched[s], single, atol=1e-11)


@settings(max_examples=60, deadline=None)
@given(bt_datasets(batch=True, weighted=True), st.floats(1e-3, 10.0))
def test_fit_bt_stationarity(dataset, reg):
    """Property: θ̂ is a stationary point of the strictly convex loss (so the unique minimiser)."""
    diffs, labels, weights = dataset
    theta = rb.fit_bt(diffs, labels, reg, weights=weights)
    for s in range(diffs.shape[0]):
        grad = _gradient(theta[s], diffs[s], labels[s], reg, weights[s])
        assert np.abs(grad).max() <= 1e-9 * (1.0 + weights[s].sum())
    loss = rb.bt_loss(theta, diffs, labels, reg, weights)
    for step in (1e-3, -1e-3):
        assert (rb.bt_loss(theta + step, diffs, labels, reg, weights) >= loss - 1e-12).all()


def _cvxpy_ball(diffs, labels, reg, bound):
    import cvxpy as cp

    theta = cp.Variable(diffs.shape[1])
    logits = diffs @ theta
    objective = cp.sum(cp.logistic(logits)) - labels @ logits + 0.5 * reg * cp.sum_squares(theta)
    problem = cp.Problem(cp.Minimize(objective), [cp.norm(theta, 2) <= bound])
    problem.solve(solver=cp.CLARABEL)
    return theta.value


@pytest.mark.parametrize("reg,bound", [(0.0, 0.5), (0.0, 2.0), (1.0, 0.3), (1.0, 50.0)])
def test_fit_bt_norm_constrained_matches_cvxpy_and_kkt(reg, bound):
    rng = np.random.default_rng(11)
    diffs, labels = _random_bt(rng, 300, 4, scale=4.0)
    theta = rb.fit_bt(diffs, labels, reg, bound=bound)
    assert np.linalg.norm(theta) <= bound * (1 + 1e-12)
    np.testing.assert_allclose(theta, _cvxpy_ball(diffs, labels, reg, bound), atol=2e-5)
    # KKT: ∇L(θ̂) + μ θ̂ = 0 with μ ≥ 0, μ > 0 only on the sphere.
    grad = _gradient(theta, diffs, labels, reg)
    if np.linalg.norm(theta) < bound * (1 - 1e-9):
        assert np.abs(grad).max() <= 1e-8
    else:
        mu = -grad @ theta / (theta @ theta)
        assert mu >= 0
        assert np.abs(grad + mu * theta).max() <= 1e-6 * (1 + np.abs(grad).max())


def test_fit_bt_separable():
    diffs = np.array([[1.0, 0.0], [0.5, 0.2], [-1.0, 0.1], [0.0, 0.0]])
    labels = np.array([1, 1, 0, 1])
    with pytest.raises(ValueError, match="reg"):
        rb.fit_bt(diffs, labels, 0.0)
    theta = rb.fit_bt(diffs, labels, 0.0, bound=3.0)  # the constrained MLE exists
    np.testing.assert_allclose(np.linalg.norm(theta), 3.0, rtol=1e-12)
    np.testing.assert_allclose(theta, _cvxpy_ball(diffs, labels, 0.0, 3.0), atol=1e-4)
    assert np.isfinite(rb.fit_bt(diffs, labels, 1e-3)).all()


def test_mle_consistency_theta_hat_converges_to_theta_star():
    """Seeded statistical test: on BT data from a LinearBandit, ‖θ̂ − θ*‖ shrinks like 1/√n."""
    problems = rb.make_problems(rb.ProblemConfig(n_contexts=10, n_actions=10, dim=4, theta_norm=2.0), range(8))
    rng = np.random.default_rng(12)
    data = problems.sample_preferences(problems.ref_logprobs, problems.ref_logprobs, 64_000, rng)
    diffs = problems.diffs(data)
    errors = []
    for n in (1000, 8000, 64_000):
        theta = rb.fit_bt(diffs[:, :n], data.labels[:, :n], 1e-3)
        errors.append(np.linalg.norm(theta - problems.theta, axis=-1).mean())
    assert errors[0] > errors[1] > errors[2]
    slope = np.polyfit(np.log([1000, 8000, 64_000]), np.log(errors), 1)[0]
    assert -0.75 < slope < -0.3  # the √n rate (−0.5), with a margin far beyond 8-seed noise
    assert errors[2] < 0.25


def test_bt_loss_explicit():
    rng = np.random.default_rng(13)
    diffs, labels = _random_bt(rng, 50, 3)
    theta = rng.standard_normal(3)
    logits = diffs @ theta
    explicit = sum(np.log1p(np.exp(-t)) if y == 1 else np.log1p(np.exp(t)) for t, y in zip(logits, labels))
    assert np.isclose(rb.bt_loss(theta, diffs, labels, 0.7), explicit + 0.35 * theta @ theta, rtol=1e-13)


def test_covariance_and_mahalanobis_against_explicit_inverse():
    rng = np.random.default_rng(14)
    diffs = rng.standard_normal((3, 40, 5))
    cov = rb.covariance(diffs, 0.5, scale=0.25)
    for s in range(3):
        np.testing.assert_allclose(cov[s], 0.5 * np.eye(5) + 0.25 * sum(np.outer(z, z) for z in diffs[s]), rtol=1e-12)
    vectors = rng.standard_normal((3, 7, 5))
    norms = rb.mahalanobis_norm(vectors, cov)
    assert norms.shape == (3, 7)
    for s in range(3):
        inverse = np.linalg.inv(cov[s])
        explicit = np.sqrt(np.einsum("nd,de,ne->n", vectors[s], inverse, vectors[s]))
        np.testing.assert_allclose(norms[s], explicit, rtol=1e-10)
    factor = rb.cholesky(cov)
    np.testing.assert_array_equal(rb.mahalanobis_norm(vectors, factor=factor), norms)
    single = rb.mahalanobis_norm(vectors[0, 0], cov[0])
    assert single.shape == () and np.isclose(single, norms[0, 0], rtol=1e-13)


@settings(max_examples=40, deadline=None)
@given(bt_datasets(max_n=60), st.floats(1e-3, 5.0), st.floats(0.0, 2.0))
def test_mahalanobis_property(dataset, reg, scale):
    diffs = dataset[0]
    cov = rb.covariance(diffs, reg, scale)
    vectors = np.vstack([diffs[:5], np.eye(diffs.shape[1])])
    norms = rb.mahalanobis_norm(vectors, cov)
    explicit = np.sqrt(np.maximum(np.einsum("nd,de,ne->n", vectors, np.linalg.inv(cov), vectors), 0.0))
    np.testing.assert_allclose(norms, explicit, rtol=1e-8, atol=1e-12)
    assert (norms <= np.linalg.norm(vectors, axis=-1) / np.sqrt(reg) * (1 + 1e-9)).all()  # Σ ⪰ λI


def test_fit_bt_reproducible():
    rng = np.random.default_rng(15)
    diffs, labels = _random_bt(rng, 500, 3)
    assert np.array_equal(rb.fit_bt(diffs, labels, 1.0), rb.fit_bt(diffs.copy(), labels.copy(), 1.0))


def test_newton_reports_non_convergence():
    rng = np.random.default_rng(16)
    diffs, labels = _random_bt(rng, 200, 3)
    theta, converged, _ = reward._newton(diffs, labels.astype(float), 1.0, None, np.zeros(3), tol=1e-20, max_iter=1)
    assert not converged
    with pytest.raises(ValueError, match="reg"):
        rb.fit_bt(diffs, labels, 1.0, max_iter=1)
