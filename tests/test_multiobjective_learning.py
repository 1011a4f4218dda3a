"""Learning conflicting preferences (rlbandit.multiobjective_learning), each claim against an
independent computation: per-head fit_bt and scikit-learn for the heads, cvxpy for the gate MLE on
the simplex, the CLT for its consistency, explicit Σ⁻¹ and Monte Carlo for the per-head bounds."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.special import expit
from scipy.stats import chi2
from sklearn.linear_model import LogisticRegression

from rlbandit import multiobjective_learning as ml
from rlbandit.geometry import covariance
from rlbandit.oracle import gibbs
from rlbandit.reward import fit_bt


def _heads_data(seed, k, n, d=3, batch=(), scale=1.5):
    rng = np.random.default_rng(seed)
    diffs = rng.normal(size=batch + (n, d))
    thetas = scale * rng.normal(size=batch + (k, d))
    attributes = rng.integers(0, k, size=batch + (n,))
    margins = np.einsum("...nd,...kd->...nk", diffs, thetas)
    own = np.take_along_axis(margins, attributes[..., None], axis=-1)[..., 0]
    labels = (rng.random(batch + (n,)) < expit(own)).astype(int)
    return diffs, labels, attributes, thetas, rng


def _gate_data(seed, k, n, gate, *, scale=2.0):
    """Margins of k true heads and labels of one user with reward Σ_i g_i h_i."""
    rng = np.random.default_rng(seed)
    margins = scale * rng.normal(size=(n, k))
    labels = (rng.random(n) < expit(margins @ gate)).astype(int)
    return margins, labels


# --- heads -----------------------------------------------------------------------------------

@settings(max_examples=15)
@given(seed=st.integers(0, 10**6), k=st.integers(1, 3), reg=st.floats(0.05, 3.0))
def test_multi_head_mle_is_per_head_fit_bt_and_sklearn(seed, k, reg):
    diffs, labels, attributes, _, _ = _heads_data(seed, k, 60 * k)
    heads = ml.fit_heads(diffs, labels, attributes, k, reg)
    assert heads.shape == (k, 3)
    for i in range(k):
        rows = attributes == i
        assert np.allclose(heads[i], fit_bt(diffs[rows], labels[rows], reg), atol=1e-10)
        assume(0 < labels[rows].sum() < rows.sum())
        sk = LogisticRegression(C=1.0 / reg, fit_intercept=False, tol=1e-12, max_iter=10_000)
        sk.fit(diffs[rows], labels[rows])
        assert np.allclose(heads[i], sk.coef_[0], atol=1e-5)


def test_multi_head_mle_is_batched_and_weighted():
    diffs, labels, attributes, _, rng = _heads_data(3, 2, 80, batch=(3,))
    weights = rng.integers(0, 3, size=labels.shape).astype(float)
    heads = ml.fit_heads(diffs, labels, attributes, 2, 0.5, weights)
    for s in range(3):
        for i in range(2):
            w = weights[s] * (attributes[s] == i)
            assert np.allclose(heads[s, i], fit_bt(diffs[s], labels[s], 0.5, weights=w), atol=1e-10)


def test_head_covariances_use_only_each_heads_comparisons():
    diffs, _, attributes, _, _ = _heads_data(4, 3, 50, batch=(2,))
    covs = ml.head_covariances(diffs, attributes, 3, 0.3)
    for s in range(2):
        for i in range(3):
            rows = diffs[s][attributes[s] == i]
            assert np.allclose(covs[s, i], 0.3 * np.eye(3) + rows.T @ rows, atol=1e-12)
            assert np.allclose(covs[s, i], covariance(rows, 0.3), atol=1e-12)


def test_head_margins_are_inner_products():
    diffs, _, _, thetas, _ = _heads_data(5, 3, 7, batch=(2,))
    margins = ml.head_margins(diffs, thetas)
    assert margins.shape == (2, 7, 3)
    assert np.isclose(margins[1, 4, 2], diffs[1, 4] @ thetas[1, 2], atol=1e-14)


# --- the gate --------------------------------------------------------------------------------

def _cvxpy_gate(margins, labels):
    g = cp.Variable(margins.shape[1])
    t = margins @ g
    problem = cp.Problem(cp.Maximize(labels @ t - cp.sum(cp.logistic(t))), [g >= 0, cp.sum(g) == 1])
    problem.solve(solver=cp.CLARABEL)
    return np.asarray(g.value), problem.value


@settings(max_examples=20)
@given(seed=st.integers(0, 10**6), k=st.integers(2, 4), n=st.integers(20, 400), one_hot=st.booleans())
def test_gate_mle_matches_cvxpy_on_the_simplex(seed, k, n, one_hot):
    rng = np.random.default_rng(seed)
    gate = np.eye(k)[rng.integers(k)] if one_hot else rng.dirichlet(np.ones(k))
    margins, labels = _gate_data(seed, k, n, gate)
    fitted = ml.fit_gates(margins, labels)[0]
    assert fitted.shape == (k,) and np.isclose(fitted.sum(), 1.0, atol=1e-12) and (fitted >= 0).all()
    g_cvx, best = _cvxpy_gate(margins, labels)
    ours = ml.gate_loglik(fitted, margins, labels)
    assert ours >= best - 1e-7 * max(1.0, abs(best))  # at least as good as the conic solver
    assert ours <= best + 1e-6 * max(1.0, abs(best))
    # both are optimal; the maximiser is unique when the margins span R^k (n ≥ 20 Gaussian rows)
    assert np.abs(fitted - g_cvx).max() < 1e-4
    # KKT on the simplex: every coordinate in the support has the largest partial derivative
    t = margins @ fitted
    grad = margins.T @ (labels - expit(t))
    support = fitted > 1e-9
    assert grad[~support].max(initial=-np.inf) <= grad[support].min() + 1e-6 * max(1.0, np.abs(grad).max())


@settings(max_examples=6)
@given(seed=st.integers(0, 10**6), k=st.integers(2, 3))
def test_gate_mle_is_consistent_within_the_clt_ellipsoid(seed, k):
    rng = np.random.default_rng(seed)
    gate = 0.15 + 0.7 * rng.dirichlet(np.ones(k))
    gate /= gate.sum()
    n = 20_000
    margins, labels = _gate_data(seed, k, n, gate, scale=1.0)
    fitted = ml.fit_gates(margins, labels)[0]
    # asymptotic law on the tangent space {Σ u = 0}: Cov(ĝ) = B (Bᵀ I B)⁻¹ Bᵀ, I the Fisher information
    t = margins @ gate
    info = (margins * (expit(t) * expit(-t))[:, None]).T @ margins
    basis = np.linalg.qr(np.vstack([np.ones(k), np.eye(k)[:-1]]).T)[0][:, 1:]  # orthonormal, ⊥ 1
    u = basis.T @ (fitted - gate)
    statistic = u @ (basis.T @ info @ basis) @ u  # ≈ χ²_{k−1}
    assert statistic < chi2.ppf(1 - 1e-4, k - 1)
    assert np.linalg.norm(fitted - gate) < 0.1  # and the error itself is CLT-sized (~1/√n · O(1))


def test_gate_mle_edge_cases():
    rng = np.random.default_rng(12)
    labels = (rng.random(60) < 0.5).astype(int)
    assert np.array_equal(ml.fit_gates(rng.normal(size=(60, 1)), labels), [[1.0]])  # k = 1: Δ_1 = {1}
    # huge margins (σ saturates): the returned gate beats every point of a dense grid of Δ_3
    margins = 300.0 * rng.normal(size=(60, 3))
    fitted = ml.fit_gates(margins, labels)[0]
    grid = rng.dirichlet(np.ones(3), size=5000)
    assert ml.gate_loglik(fitted, margins, labels) >= ml.gate_loglik(grid, margins[None], labels[None]).max() - 1e-9
    # too few iterations: a ValueError naming max_iter, not a silent non-optimum
    with pytest.raises(ValueError, match="^max_iter"):
        ml.fit_gates(3.0 * rng.normal(size=(200, 3)), (rng.random(200) < 0.5).astype(int), max_iter=1)


def test_gates_per_group_and_tabular_in_the_context_equal_separate_fits():
    rng = np.random.default_rng(11)
    n, k = 600, 3
    margins = 2.0 * rng.normal(size=(2, n, k))
    users, contexts = rng.integers(0, 2, size=(2, n)), rng.integers(0, 3, size=(2, n))
    labels = (rng.random((2, n)) < 0.5).astype(int)
    per_user = ml.fit_user_gates(margins, labels, users, 2, n_contexts=3)
    tabular = ml.fit_user_gates(margins, labels, users, 2, contexts, 3)
    assert per_user.shape == tabular.shape == (2, 2, 3, k)
    for s in range(2):
        for v in range(2):
            rows = users[s] == v
            single = ml.fit_gates(margins[s][rows], labels[s][rows])[0]
            assert np.allclose(per_user[s, v], single[None, :], atol=1e-8)
            for x in range(3):
                cell = rows & (contexts[s] == x)
                assert np.allclose(tabular[s, v, x], ml.fit_gates(margins[s][cell], labels[s][cell])[0], atol=1e-8)


def test_gate_recovers_the_user_from_learned_heads_end_to_end():
    diffs, labels, attributes, thetas, rng = _heads_data(21, 2, 6000, scale=2.0)
    heads = ml.fit_heads(diffs, labels, attributes, 2, 0.1)
    gate = np.array([0.7, 0.3])
    user_diffs = rng.normal(size=(6000, 3))
    user_labels = (rng.random(6000) < expit(user_diffs @ (gate @ thetas))).astype(int)
    fitted = ml.fit_gates(ml.head_margins(user_diffs, heads), user_labels)[0]
    assert np.abs(fitted - gate).max() < 0.08


# --- per-head bounds -------------------------------------------------------------------------

def _bandit(seed, k=2, n_contexts=3, n_actions=4, d=3, batch=()):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=batch + (n_contexts, n_actions, d))
    features /= np.maximum(1.0, np.linalg.norm(features, axis=-1, keepdims=True))
    ref = rng.normal(size=batch + (n_contexts, n_actions))
    ref -= np.log(np.exp(ref).sum(-1, keepdims=True))
    a = rng.normal(size=batch + (k, d, d))
    covs = 0.5 * np.eye(d) + a @ np.swapaxes(a, -1, -2)
    thetas = rng.normal(size=batch + (k, d))
    return features, ref, covs, thetas, rng


@settings(max_examples=15)
@given(seed=st.integers(0, 10**6), k=st.integers(1, 3), eta=st.floats(0.1, 5.0))
def test_pessimistic_policy_is_gibbs_of_the_gated_lcb_with_explicit_inverses(seed, k, eta):
    features, ref, covs, thetas, rng = _bandit(seed, k=k, batch=(2,))
    betas = rng.uniform(0.0, 2.0, size=k)
    gates = rng.dirichlet(np.ones(k), size=(2, 3, 3))  # (S, V, X, k), tabular in x
    policies = ml.pessimistic_user_policies(features, thetas, covs, betas, gates, ref, eta)
    nu = np.einsum("sxa,sxad->sxd", np.exp(ref), features)
    gap = features - nu[:, :, None, :]
    width = np.sqrt(np.einsum("sxad,side,sxae->sixa", gap, np.linalg.inv(covs), gap))  # (S, k, X, K)
    lower = np.einsum("sxad,sid->sixa", features, thetas) - betas[None, :, None, None] * width
    for v in range(3):
        reward = np.einsum("sxi,sixa->sxa", gates[:, v], lower)
        assert np.allclose(policies[:, v], gibbs(reward, ref, eta), atol=1e-10)
    bounds = ml.head_bounds(features, thetas, covs, nu, betas)
    assert np.allclose(bounds.upper - bounds.lower, 2 * betas[None, :, None, None] * width, atol=1e-10)


def test_gated_lcb_is_the_minimum_over_the_product_of_ellipsoids():
    features, ref, covs, thetas, rng = _bandit(7, k=2)
    betas, gate = np.array([0.8, 1.5]), np.array([0.35, 0.65])
    nu = np.einsum("xa,xad->xd", np.exp(ref), features)
    bounds = ml.head_bounds(features, thetas, covs, nu, betas)
    gated_lower = np.einsum("i,ixa->xa", gate, bounds.lower) - (gate @ (thetas @ nu.T))[:, None]  # rel. to ν
    # θ_i on the boundary of {‖θ − θ̂_i‖_{Σ_i} ≤ β_i}: the gated reward never goes below the LCB, and the
    # minimiser θ_i = θ̂_i − β_i Σ_i⁻¹u/‖u‖_{Σ_i⁻¹} (u = φ − ν) attains it
    chol = np.linalg.cholesky(covs)
    draws = rng.normal(size=(4000, 2, 3))
    draws /= np.linalg.norm(draws, axis=-1, keepdims=True)
    sampled = thetas + betas[:, None] * np.linalg.solve(np.swapaxes(chol, -1, -2)[None], draws[..., None])[..., 0]
    rel = features - nu[:, None, :]
    gated = np.einsum("i,mid,xad->mxa", gate, sampled, rel)
    assert (gated >= gated_lower - 1e-10).all()
    x, a = 1, 2
    u = rel[x, a]
    solved = np.linalg.solve(covs, np.broadcast_to(u[:, None], (2, 3, 1)))[..., 0]  # Σ_i⁻¹u, (k, d)
    worst = thetas - betas[:, None] * solved / np.sqrt(solved @ u)[:, None]
    assert np.isclose(gate @ (worst @ u), gated_lower[x, a], atol=1e-10)


def test_gated_lcb_covers_the_true_reward_with_probability_at_least_one_minus_delta():
    """Monte Carlo over 300 datasets: fit both heads, and count the datasets on which the gated LCB
    (relative to φ(x, π0)) lies below the true gated reward at every (x, a)."""
    k, d, n, reps, delta, reg = 2, 3, 400, 300, 0.1, 1.0
    features, ref, _, _, rng = _bandit(8, k=k, d=d)
    truth = np.array([[1.0, -0.5, 0.3], [-0.4, 0.6, 0.8]])
    diffs = rng.normal(size=(reps, n, d)) / np.sqrt(d)
    attributes = rng.integers(0, k, size=(reps, n))
    own = np.einsum("rnd,rnd->rn", diffs, truth[attributes])
    labels = (rng.random((reps, n)) < expit(own)).astype(int)
    heads = ml.fit_heads(diffs, labels, attributes, k, reg)
    covs = ml.head_covariances(diffs, attributes, k, reg)
    # asymptotically ‖θ̂ − θ*‖²_H ~ χ²_d with H ⪰ κ Σ_D; κ = σ'(max |z·θ*|) bounds the curvature
    kappa = (expit(own) * expit(-own)).min()
    betas = np.full(k, np.sqrt(chi2.ppf(1 - delta / k, d) / kappa) + np.sqrt(reg) * 1.2)
    nu = np.einsum("xa,xad->xd", np.exp(ref), features)
    bounds = ml.head_bounds(features, heads, covs, nu, betas)  # (reps, k, X, K)
    gate = np.array([0.4, 0.6])
    lower = np.einsum("i,rixa->rxa", gate, bounds.lower) - np.einsum("i,rid,xd->rx", gate, heads, nu)[..., None]
    upper = np.einsum("i,rixa->rxa", gate, bounds.upper) - np.einsum("i,rid,xd->rx", gate, heads, nu)[..., None]
    true = np.einsum("i,id,xad->xa", gate, truth, features - nu[:, None, :])
    covered = ((lower <= true) & (true <= upper)).all(axis=(-1, -2))
    assert covered.mean() >= 1 - delta - 3 * np.sqrt(delta * (1 - delta) / reps)
    # the bound is not vacuous: without the width, coverage fails on many datasets
    mean = np.einsum("i,rixa->rxa", gate, bounds.lower + bounds.width)
    mean = mean - np.einsum("i,rid,xd->rx", gate, heads, nu)[..., None]
    assert (mean <= true).all(axis=(-1, -2)).mean() < 0.5


def test_optimistic_policy_is_gibbs_of_the_gated_ucb_around_the_anchor():
    features, ref, covs, thetas, rng = _bandit(9, k=2)
    anchor_policy = gibbs(rng.normal(size=ref.shape), ref, 1.0)
    gates = np.broadcast_to(np.array([0.2, 0.8]), (1, 3, 2))
    policy = ml.optimistic_user_policies(features, thetas, covs, np.array([1.0, 0.5]), gates, anchor_policy, ref, 0.7)
    nu = np.einsum("xa,xad->xd", np.exp(anchor_policy), features)
    bounds = ml.head_bounds(features, thetas, covs, nu, np.array([1.0, 0.5]))
    assert np.allclose(policy[0], gibbs(0.2 * bounds.upper[0] + 0.8 * bounds.upper[1], ref, 0.7), atol=1e-12)


# --- validation ------------------------------------------------------------------------------

def _bad_cases():
    diffs, labels, attributes, thetas, _ = _heads_data(1, 2, 30)
    margins = ml.head_margins(diffs, thetas)
    features, ref, covs, th, _ = _bandit(2, k=2)
    nu = np.einsum("xa,xad->xd", np.exp(ref), features)
    gates = np.full((1, 3, 2), 0.5)
    return [
        ("k", lambda: ml.fit_heads(diffs, labels, attributes, 0, 0.1)),
        ("attributes", lambda: ml.fit_heads(diffs, labels, attributes + 5, 2, 0.1)),
        ("attributes", lambda: ml.fit_heads(diffs, labels, np.zeros(30, dtype=int), 2, 0.1)),  # head 1 empty
        ("attributes", lambda: ml.fit_heads(diffs, labels, attributes.astype(float), 2, 0.1)),
        ("labels", lambda: ml.fit_heads(diffs, labels * 2, attributes, 2, 0.1)),
        ("reg", lambda: ml.head_covariances(diffs, attributes, 2, -1.0)),
        ("margins", lambda: ml.fit_gates(margins[:, :0], labels)),
        ("groups", lambda: ml.fit_gates(margins, labels, attributes, 3)),
        ("n_groups", lambda: ml.fit_gates(margins, labels, attributes)),
        ("weights", lambda: ml.fit_gates(margins, labels, weights=-np.ones(30))),
        ("max_iter", lambda: ml.fit_gates(margins, labels, max_iter=0)),
        ("gates", lambda: ml.gate_loglik(np.ones(3) / 3, margins, labels)),
        ("contexts", lambda: ml.fit_user_gates(margins, labels, attributes, 2, attributes + 4, 3)),
        ("thetas", lambda: ml.head_margins(diffs, np.zeros((0, 3)))),
        ("betas", lambda: ml.head_bounds(features, th, covs, nu, np.array([1.0, -1.0]))),
        ("betas", lambda: ml.head_bounds(features, th, covs, nu, np.ones(3))),
        ("covs", lambda: ml.head_bounds(features, th, covs[:1], nu, np.ones(2))),
        ("cov", lambda: ml.head_bounds(features, th, -covs, nu, np.ones(2))),
        ("anchor", lambda: ml.head_bounds(features, th, covs, nu[:, :2], np.ones(2))),
        ("gates", lambda: ml.pessimistic_user_policies(features, th, covs, np.ones(2), gates[..., :1], ref, 1.0)),
        ("gates", lambda: ml.pessimistic_user_policies(features, th, covs, np.ones(2), gates * 2, ref, 1.0)),
        ("anchor_logprobs", lambda: ml.optimistic_user_policies(features, th, covs, np.ones(2), gates,
                                                                ref[:, :2], ref, 1.0)),
        ("eta", lambda: ml.pessimistic_user_policies(features, th, covs, np.ones(2), gates, ref, 0.0)),
    ]


@pytest.mark.parametrize("index", range(len(_bad_cases())))
def test_bad_input_raises_value_error_naming_the_argument(index):
    name, call = _bad_cases()[index]
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call()
