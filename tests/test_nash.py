"""General preferences and the KL-regularised Nash game (DESIGN §4): models, solvers, theorems,
learning and the online Nash loop.

Property tests (hypothesis) are named ``test_property_*`` after the theorem they check:

- test_property_solvers_agree_on_a_symmetric_equilibrium
- test_property_residual_and_exploitability_vanish_at_equilibrium
- test_property_exploitability_is_a_nonnegative_duality_gap
- test_property_uniform_reference_on_rps_gives_uniform_equilibrium
- test_property_equilibrium_beats_every_policy_up_to_kl (P(π_η ≻ π′) ≥ ½ + η(KL(π_η‖π0) − KL(π′‖π0)))
- test_property_nash_md_obeys_munos_theorem_1
- test_property_bt_equilibrium_concentrates_on_condorcet_winner
- test_property_preference_models_are_antisymmetric
- test_property_antisymmetric_features_represent_the_linear_model
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, logsumexp

from rlbandit import kl, nash
from rlbandit.general_preferences import (
    PREFERENCE_SCENARIOS,
    PreferenceConfig,
    annotator_mixture,
    antisymmetric_features,
    bradley_terry,
    check_preference,
    condorcet_winner,
    fit_general,
    fit_general_preference,
    is_transitive,
    linear_general,
    make_preference_problem,
    make_preference_problems,
    pair_features,
    random_antisymmetric,
    rock_paper_scissors,
    sample_comparisons,
    unpack_weights,
)

ITERATIVE = ("fixed_point", "extragradient", "nash_md")


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------

@st.composite
def games(draw, min_eta=0.1, max_eta=5.0, zero_mass=True):
    """A random game: P (X, K, K) from one of the models, log π0 (possibly with zero-mass actions), η."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n_contexts = draw(st.integers(1, 3))
    n_actions = draw(st.integers(2, 6))
    kind = draw(st.sampled_from(["antisymmetric", "linear", "bt", "mixture"]))
    dim = 3
    features = rng.standard_normal((n_contexts, n_actions, dim))
    features /= np.maximum(1.0, np.linalg.norm(features, axis=-1, keepdims=True))
    scale = draw(st.floats(0.1, 4.0))
    if kind == "antisymmetric":
        pref = random_antisymmetric((n_contexts, n_actions), rng, scale)
    elif kind == "linear":
        m = rng.standard_normal((dim, dim))
        pref = linear_general(features, scale * (m - m.T), rng.standard_normal(dim))
    elif kind == "bt":
        pref = bradley_terry(scale * rng.standard_normal((n_contexts, n_actions)))
    else:
        pref = annotator_mixture(features, scale * rng.standard_normal((3, dim)))
    logits = draw(st.floats(0.0, 3.0)) * rng.standard_normal((n_contexts, n_actions))
    if zero_mass and n_actions > 2 and draw(st.booleans()):
        logits[:, 0] = -np.inf  # one action without mass under π0
    ref = logits - logsumexp(logits, axis=-1, keepdims=True)
    eta = float(np.exp(draw(st.floats(np.log(min_eta), np.log(max_eta)))))
    return pref, ref, eta


def _random_policy(rng, ref, concentration=1.0):
    """A random policy on π0's support (Dirichlet draws)."""
    p = rng.gamma(concentration, size=ref.shape) * np.isfinite(ref)
    p /= p.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore"):
        return np.log(p)


def _f(lp1, lp2, pref, ref, eta):
    """The game's payoff f(π1, π2) per context (brute force from its definition)."""
    p1, p2 = np.exp(lp1), np.exp(lp2)
    return (np.einsum("...a,...ab,...b->...", p1, pref, p2)
            - eta * kl(lp1, ref) + eta * kl(lp2, ref))


# ---------------------------------------------------------------------------------------------
# Preference models
# ---------------------------------------------------------------------------------------------

def test_check_preference_rejects_bad_arrays():
    good = rock_paper_scissors(2, 3)
    check_preference(good)
    bad = good.copy()
    bad[0, 0, 1] = 0.7  # P + Pᵀ ≠ 1
    with pytest.raises(ValueError, match="pref.*P \\+ Pᵀ = 1"):
        check_preference(bad)
    with pytest.raises(ValueError, match="pref.*\\[0, 1\\]"):
        check_preference(good * 2.0 - 0.5)
    with pytest.raises(ValueError, match="pref.*square"):
        check_preference(np.full((2, 3, 4), 0.5))
    with pytest.raises(ValueError, match="pref"):
        nash.solve(bad, np.log(np.full((2, 3), 1 / 3)), 1.0)
    with pytest.raises(ValueError, match="skew.*antisymmetric"):
        linear_general(np.ones((1, 2, 2)) / 2, np.eye(2), np.zeros(2))
    with pytest.raises(ValueError, match="method"):
        nash.solve(good, np.log(np.full((2, 3), 1 / 3)), 1.0, method="nope")
    with pytest.raises(ValueError, match="eta"):
        nash.exploitability(np.log(np.full((2, 3), 1 / 3)), good, np.log(np.full((2, 3), 1 / 3)), 0.0)
    with pytest.raises(ValueError, match="strength"):
        PreferenceConfig("rps", strength=2.0)


def test_preference_problem_validates_shapes():
    from rlbandit.general_preferences import PreferenceProblem

    pref = rock_paper_scissors(2, 3)
    ref = np.log(np.full((2, 3), 1 / 3))
    PreferenceProblem(np.zeros((2, 3, 2)), ref, pref)
    with pytest.raises(ValueError, match="pref"):
        PreferenceProblem(np.zeros((2, 3, 2)), ref, rock_paper_scissors(2, 4))
    with pytest.raises(ValueError, match="features"):
        PreferenceProblem(np.zeros((2, 4, 2)), ref, pref)
    with pytest.raises(ValueError, match="ref_logprobs"):
        PreferenceProblem(np.zeros((2, 3, 2)), ref + 1.0, pref)
    with pytest.raises(ValueError, match="scenario"):
        PreferenceConfig("nope")


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), scenario=st.sampled_from(sorted(PREFERENCE_SCENARIOS)))
def test_property_preference_models_are_antisymmetric(seed, scenario):
    config = PreferenceConfig(scenario, n_contexts=3, n_actions=5, dim=5 if scenario == "rps" else 3,
                              strength=0.8 if scenario == "rps" else 3.0, seed=seed)
    problem = make_preference_problem(config)
    pref = problem.pref
    np.testing.assert_allclose(pref + np.swapaxes(pref, -1, -2), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.diagonal(pref, axis1=-2, axis2=-1), 0.5, atol=1e-12)
    if scenario == "bt":  # A = 0: the linear model is BT on φθ
        np.testing.assert_allclose(pref, bradley_terry(problem.features @ problem.theta), atol=1e-12)
        assert is_transitive(pref).all()


def test_rock_paper_scissors_and_condorcet_paradox():
    pref = rock_paper_scissors(1, 3)
    np.testing.assert_array_equal(pref[0], [[0.5, 1.0, 0.0], [0.0, 0.5, 1.0], [1.0, 0.0, 0.5]])
    assert not is_transitive(pref).any() and condorcet_winner(pref)[0] == -1
    # Condorcet: three transitive annotators whose majority is a cycle 0 ≻ 1 ≻ 2 ≻ 0.
    features = np.eye(3)[None]  # φ(a) = e_a, so r_j(a) = θ_j[a]
    thetas = 20.0 * np.array([[3, 2, 1], [1, 3, 2], [2, 1, 3]], dtype=float)
    mixture = annotator_mixture(features, thetas)
    assert not is_transitive(mixture)[0]
    assert mixture[0, 0, 1] > 0.5 and mixture[0, 1, 2] > 0.5 and mixture[0, 2, 0] > 0.5
    for thetas_j in thetas:  # each annotator alone is transitive
        assert is_transitive(annotator_mixture(features, thetas_j[None]))[0]
    assert condorcet_winner(bradley_terry(np.array([[0.0, 2.0, 1.0]])))[0] == 1


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), dim=st.integers(2, 5))
def test_property_antisymmetric_features_represent_the_linear_model(seed, dim):
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((2, 4, dim))
    w = rng.standard_normal(dim * (dim - 1) // 2 + dim)
    skew, theta = unpack_weights(w, dim)
    np.testing.assert_allclose(skew, -skew.T)
    psi = antisymmetric_features(features)
    np.testing.assert_allclose(psi, -np.swapaxes(psi, -2, -3), atol=1e-12)
    np.testing.assert_allclose(expit(psi @ w), linear_general(features, skew, theta), atol=1e-12)
    # Brute force: φ(a)ᵀAφ(b) + θ·(φ(a) − φ(b)) entry by entry.
    x, a, b = 1, 2, 0
    logit = features[x, a] @ skew @ features[x, b] + theta @ (features[x, a] - features[x, b])
    assert np.isclose(psi[x, a, b] @ w, logit)


def test_sample_comparisons_matches_the_preference(rng):
    problems = make_preference_problems(PreferenceConfig("random_antisymmetric", n_contexts=2, n_actions=3), range(2))
    uniform = np.log(np.full((2, 3), 1 / 3))
    data = problems.sample_comparisons(uniform, problems.ref_logprobs, 60_000, rng)
    assert data.contexts.shape == (2, 60_000)
    for s in range(2):
        for x in range(2):
            for a in range(3):
                for b in range(3):
                    pick = (data.contexts[s] == x) & (data.actions1[s] == a) & (data.actions2[s] == b)
                    n = pick.sum()
                    p = problems.pref[s, x, a, b]
                    # 5 standard errors: a false alarm has probability ~1e-6 per cell.
                    assert abs(data.labels[s][pick].mean() - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12
    with pytest.raises(ValueError, match="m"):
        sample_comparisons(problems.pref, uniform, uniform, 0, rng)


def test_win_rate_properties_and_monte_carlo(rng):
    problem = make_preference_problem(PreferenceConfig("linear_general", n_contexts=3, n_actions=4, seed=3))
    lp1, lp2 = _random_policy(rng, problem.ref_logprobs), _random_policy(rng, problem.ref_logprobs)
    assert np.isclose(problem.win_rate(lp1, lp1), 0.5)
    assert np.isclose(problem.win_rate(lp1, lp2) + problem.win_rate(lp2, lp1), 1.0)
    data = problem.sample_comparisons(lp1, lp2, 200_000, rng)
    assert abs(data.labels.mean() - problem.win_rate(lp1, lp2)) < 5 * 0.5 / np.sqrt(200_000)


def test_fit_general_matches_sklearn(rng):
    from sklearn.linear_model import LogisticRegression

    problem = make_preference_problem(PreferenceConfig("linear_general", n_contexts=4, n_actions=5, dim=3, seed=1))
    data = problem.sample_comparisons(problem.ref_logprobs, problem.ref_logprobs, 3000, rng)
    psi = pair_features(problem.features, data)
    reg = 0.5
    w = fit_general(psi, data.labels, reg)
    sk = LogisticRegression(C=1.0 / reg, fit_intercept=False, tol=1e-12, max_iter=10_000).fit(psi, data.labels)
    np.testing.assert_allclose(w, sk.coef_[0], atol=1e-6)


def test_fit_general_recovers_the_true_model(rng):
    problem = make_preference_problem(PreferenceConfig("linear_general", n_contexts=8, n_actions=8, dim=3,
                                                       strength=3.0, seed=2))
    data = problem.sample_comparisons(problem.ref_logprobs, problem.ref_logprobs, 40_000, rng)
    skew, theta = fit_general_preference(problem.features, data, 1e-3)
    assert np.abs(skew - problem.skew).max() < 0.25 and np.abs(theta - problem.theta).max() < 0.15
    # A BT model of the same data cannot represent the cycles: its log-likelihood is worse.
    from rlbandit import bt_loss, fit_bt

    diffs = data.diffs(problem.features)
    bt = bt_loss(fit_bt(diffs, data.labels, 1e-3), diffs, data.labels, 1e-3)
    w = np.concatenate([skew[np.triu_indices(3, 1)], theta])
    general = bt_loss(w, pair_features(problem.features, data), data.labels, 1e-3)
    assert general < bt - 100.0


# ---------------------------------------------------------------------------------------------
# The game and its solvers
# ---------------------------------------------------------------------------------------------

@settings(max_examples=12, deadline=None)
@given(game=games(min_eta=0.2, max_eta=5.0))
def test_property_solvers_agree_on_a_symmetric_equilibrium(game):
    pref, ref, eta = game
    reference = nash.solve(pref, ref, eta, method="extragradient", tol=1e-12)
    for method in ("fixed_point", "nash_md", "cvxpy"):
        options = {"max_iter": 4000} if method == "nash_md" else {}
        with warnings.catch_warnings():  # Nash-MD's O(1/T) rate stops short of tol at this cap, by design
            warnings.simplefilter("ignore", nash.NotConvergedWarning)
            other = nash.solve(pref, ref, eta, method=method, **options)
        assert np.isneginf(other[~np.isfinite(ref)]).all()
        tol = {"fixed_point": 1e-12, "nash_md": 1e-6, "cvxpy": 1e-6}[method]
        assert kl(reference, other).max() < tol, method
    # Symmetric: π_η is a best response to itself in both seats, and the game's value is ½.
    np.testing.assert_allclose(np.exp(nash.best_response(reference, pref, ref, eta)), np.exp(reference), atol=1e-9)
    p = np.exp(reference)
    np.testing.assert_allclose(np.einsum("xa,xab,xb->x", p, pref, p), 0.5, atol=1e-12)
    # The cvxpy dual's objective at π_η equals the value ½ − η KL(π_η‖π0) + η KL(π_η‖π0) = ½ per context.
    pt = np.einsum("xab,xa->xb", pref, p)
    support = np.isfinite(ref)
    inner = -eta * logsumexp(np.where(support, ref - pt / eta, -np.inf), axis=-1)
    np.testing.assert_allclose(-eta * kl(reference, ref) + inner, 0.5, atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(game=games(min_eta=0.05, max_eta=20.0), method=st.sampled_from(("fixed_point", "extragradient")))
def test_property_residual_and_exploitability_vanish_at_equilibrium(game, method):
    pref, ref, eta = game
    lp = nash.solve(pref, ref, eta, method=method, tol=1e-11)
    assert nash.fixed_point_residual(lp, pref, ref, eta).max() <= 1e-10
    assert 0.0 <= nash.exploitability(lp, pref, ref, eta) <= 1e-12
    assert abs(nash.exploitability_via_partition(lp, pref, ref, eta)) <= 1e-10


@settings(max_examples=40, deadline=None)
@given(game=games(min_eta=0.01, max_eta=100.0), seed=st.integers(0, 10_000), concentration=st.floats(0.05, 5.0))
def test_property_exploitability_is_a_nonnegative_duality_gap(game, seed, concentration):
    pref, ref, eta = game
    rng = np.random.default_rng(seed)
    lp = _random_policy(rng, ref, concentration)
    gap = nash.exploitability(lp, pref, ref, eta, per_context=True)
    assert (gap >= 0).all()
    # Independent computation from the two closed-form inner values.
    assert np.isclose(gap.mean(), nash.exploitability_via_partition(lp, pref, ref, eta), rtol=1e-7, atol=1e-10)
    # A duality gap bounds f(π1, π) − f(π, π2) for every pair of deviations (brute force).
    for _ in range(5):
        dev1, dev2 = _random_policy(rng, ref, 0.5), _random_policy(rng, ref, 0.5)
        assert (_f(dev1, lp, pref, ref, eta) - _f(lp, dev2, pref, ref, eta) <= gap + 1e-9).all()
    # Zero only at the equilibrium: far from π_η (KL > 1e-4) the gap is positive.
    star = nash.solve(pref, ref, eta)
    far = kl(lp, star) > 1e-4
    assert (gap[far] > 0).all()


@settings(max_examples=15, deadline=None)
@given(n_actions=st.integers(3, 7), margin=st.floats(0.05, 1.0), eta=st.floats(0.02, 10.0),
       method=st.sampled_from(("extragradient", "fixed_point", "cvxpy")))
def test_property_uniform_reference_on_rps_gives_uniform_equilibrium(n_actions, margin, eta, method):
    pref = rock_paper_scissors(2, n_actions, margin)
    ref = np.full((2, n_actions), -np.log(n_actions))
    lp = nash.solve(pref, ref, eta, method=method)
    if method == "cvxpy":  # an interior-point solver: compare by KL (its floor is ~1e-9)
        assert kl(ref, lp).max() < 1e-7
    else:
        np.testing.assert_allclose(np.exp(lp), 1.0 / n_actions, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(game=games(min_eta=0.05, max_eta=10.0), seed=st.integers(0, 10_000))
def test_property_equilibrium_beats_every_policy_up_to_kl(game, seed):
    """For every π′: P(π_η ≻ π′) ≥ ½ + η (KL(π_η‖π0) − KL(π′‖π0)), per context."""
    pref, ref, eta = game
    rng = np.random.default_rng(seed)
    star = nash.solve(pref, ref, eta)
    opponents = [_random_policy(rng, ref, c) for c in (0.05, 0.3, 1.0, 5.0)]
    opponents += [ref, nash.best_response(ref, pref, ref, eta)]
    # the unregularised best responses (pure actions on π0's support)
    for b in np.flatnonzero(np.isfinite(ref).all(axis=0)):
        with np.errstate(divide="ignore"):
            opponents.append(np.log(np.broadcast_to(np.eye(ref.shape[-1])[b], ref.shape)))
    for other in opponents:
        wins = np.einsum("xa,xab,xb->x", np.exp(star), pref, np.exp(other))
        assert (wins >= 0.5 + eta * (kl(star, ref) - kl(other, ref)) - 1e-9).all()


@settings(max_examples=10, deadline=None)
@given(game=games(min_eta=0.05, max_eta=5.0))
def test_property_nash_md_obeys_munos_theorem_1(game):
    """Munos et al. (2023), Theorem 1: with η_t = 2/(τ(t+2)), KL(π*_τ ‖ π_T) ≤ 8/(τ²(T+1)) for T ≥ 1,
    from the one-step bound KL(π*, π_{t+1}) ≤ (1 − η_tτ) KL(π*, π_t) + 2η_t² (τ = η here)."""
    pref, ref, eta = game
    star = nash.solve(pref, ref, eta, tol=1e-13)
    n_steps = 200
    iterates = nash.nash_md_iterates(pref, ref, eta, n_steps)
    divergence = kl(star[None], iterates)  # (T+1, X), one bound per context (tabular theorem)
    steps = np.arange(n_steps + 1)
    bound = nash.nash_md_bound(eta, steps)[:, None]
    assert (divergence[1:] <= bound[1:] + 1e-12).all()
    lr = (2.0 / (eta * (steps[:-1] + 2)))[:, None]
    assert (divergence[1:] <= (1 - lr * eta) * divergence[:-1] + 2 * lr**2 + 1e-12).all()
    # And the iterates do converge: the last one is far inside the bound.
    assert divergence[-1].max() < 0.1 * bound[-1, 0]


@settings(max_examples=10, deadline=None)
@given(game=games(min_eta=0.05, max_eta=5.0), fraction=st.floats(0.01, 1.0))
def test_property_nash_md_constant_step_obeys_munos_theorem_1(game, fraction):
    """Theorem 1 with a constant step s ≤ 1/τ: KL(π* ‖ π_T) ≤ (1 − sτ)^T KL(π* ‖ π_0) + 2s/τ."""
    pref, ref, eta = game
    step = fraction / eta
    star = nash.solve(pref, ref, eta, tol=1e-13)
    iterates = nash.nash_md_iterates(pref, ref, eta, 100, step=step)
    divergence = kl(star[None], iterates)  # (T+1, X)
    steps = np.arange(101)[:, None]
    bound = nash.nash_md_constant_step_bound(eta, step, steps, divergence[0][None])
    assert (divergence <= bound + 1e-12).all()
    assert np.allclose(bound[0], divergence[0] + 2 * step / eta)


def test_nash_md_constant_step_bound_validates_and_limits():
    assert nash.nash_md_constant_step_bound(0.5, 1.0, 10**6, 3.0) == pytest.approx(4.0)  # → 2s/τ
    assert nash.nash_md_constant_step_bound(0.5, 2.0, 1, 3.0) == pytest.approx(8.0)  # sτ = 1: one step
    with pytest.raises(ValueError, match="step"):
        nash.nash_md_constant_step_bound(0.5, 2.5, 1, 0.0)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), n_actions=st.integers(3, 6))
def test_property_bt_equilibrium_concentrates_on_condorcet_winner(seed, n_actions):
    rng = np.random.default_rng(seed)
    rewards = rng.permutation(n_actions) * 0.5 + 0.1 * rng.random(n_actions)  # distinct, gaps ≥ 0.4
    pref = bradley_terry(rewards[None])
    winner = condorcet_winner(pref)[0]
    assert winner == np.argmax(rewards)
    ref = np.log(rng.dirichlet(np.ones(n_actions)))[None]
    mass = [float(np.exp(nash.solve(pref, ref, eta)[0, winner])) for eta in (1.0, 0.1, 0.03, 0.01)]
    assert all(b >= a - 1e-12 for a, b in zip(mass, mass[1:]))
    assert mass[-1] > 0.99


def test_nash_md_iterates_validate_and_start_at_reference():
    pref = rock_paper_scissors(1, 3, 0.5)
    ref = np.log(np.array([[0.2, 0.3, 0.5]]))
    its = nash.nash_md_iterates(pref, ref, 0.5, 3)
    assert its.shape == (4, 1, 3)
    np.testing.assert_allclose(its[0], ref)
    with pytest.raises(ValueError, match="n_steps"):
        nash.nash_md_iterates(pref, ref, 0.5, -1)


def test_worst_case_win_rate_is_at_most_half(rng):
    problem = make_preference_problem(PreferenceConfig("random_antisymmetric", n_contexts=3, n_actions=5, seed=4))
    for lp in (_random_policy(rng, problem.ref_logprobs), nash.solve(problem.pref, problem.ref_logprobs, 0.1)):
        assert nash.worst_case_win_rate(lp, problem.pref) <= 0.5 + 1e-12


# ---------------------------------------------------------------------------------------------
# Learning and the online loop
# ---------------------------------------------------------------------------------------------

def test_bt_rlhf_loses_to_nash_on_intransitive_preferences(rng):
    """With the true cyclic P, the Nash policy's advantage over BT-RLHF is guaranteed by the theorem."""
    problems = make_preference_problems(PreferenceConfig("linear_general", strength=6.0, theta_norm=0.5), range(4))
    eta = 0.05
    data = problems.sample_comparisons(problems.ref_logprobs, problems.ref_logprobs, 5000, rng)
    bt = nash.bt_rlhf_policy(problems.features, data, problems.ref_logprobs, eta, 1.0)
    star = nash.solve(problems.pref, problems.ref_logprobs, eta)
    wins = problems.win_rate(star, bt)
    kl_star = kl(star, problems.ref_logprobs).mean(axis=-1)  # uniform d0
    kl_bt = kl(bt, problems.ref_logprobs).mean(axis=-1)
    assert (wins >= 0.5 + eta * (kl_star - kl_bt) - 1e-9).all()
    gap = lambda lp: nash.exploitability(lp, problems.pref, problems.ref_logprobs, eta,  # noqa: E731
                                         context_probs=problems.context_probs)
    assert (gap(bt) > gap(star)).all()
    assert wins.mean() > 0.5


@pytest.mark.parametrize("enhancer", sorted(set(nash.ENHANCERS) - {"optimistic"}))
def test_online_nash_runs_for_every_enhancer(enhancer):
    problems = make_preference_problems(PreferenceConfig("linear_general", n_contexts=4, n_actions=5, dim=3), range(2))
    config = nash.OnlineNashConfig(eta=0.2, n_iterations=2, batch_size=30, enhancer=enhancer)
    frame = nash.run_online_nash(problems, config)
    assert len(frame) == 2 * 3
    assert list(frame.iteration.unique()) == [0, 1, 2]
    assert list(frame.n_comparisons.unique()) == [0, 30, 60]
    for column in ("exploitability", "win_rate_vs_ref", "win_rate_vs_bt", "worst_case_win_rate", "kl_nash_to_policy"):
        assert np.isfinite(frame[column]).all()
    assert (frame.exploitability >= 0).all()


def test_option_one_is_refused_in_the_nash_world():
    with pytest.raises(ValueError, match="enhancer: 'optimistic'"):
        nash.OnlineNashConfig(enhancer="optimistic")


def test_online_nash_learns_the_equilibrium():
    problems = make_preference_problems(PreferenceConfig("linear_general", n_contexts=6, n_actions=6, dim=3,
                                                         strength=4.0), range(4))
    config = nash.OnlineNashConfig(eta=0.2, n_iterations=8, batch_size=250, enhancer="ucb", seed=1)
    frame = nash.run_online_nash(problems, config)
    start = frame[frame.iteration == 0].exploitability.mean()
    end = frame[frame.iteration == 8].exploitability.mean()
    assert end < 0.2 * start
    with pytest.raises(ValueError, match="enhancer"):
        nash.OnlineNashConfig(enhancer="nope")


def _damped_fixed_point(pref, ref, eta, *, tol, max_iter, init=None):
    """A user's solver: the built-in fixed point, registered under another name."""
    return nash.SOLVERS["fixed_point"](pref, ref, eta, tol=tol, max_iter=max_iter, init=init)


def test_register_adds_a_solver_that_solve_runs():
    problems = make_preference_problems(PreferenceConfig("rps", n_contexts=2, n_actions=3, strength=0.5), range(2))
    nash.register("user_fixed_point", _damped_fixed_point, max_iter=50_000)
    try:
        got = nash.solve(problems.pref, problems.ref_logprobs, 0.3, "user_fixed_point")
        np.testing.assert_allclose(got, nash.solve(problems.pref, problems.ref_logprobs, 0.3), atol=1e-8)
        with pytest.raises(ValueError, match="already registered"):
            nash.register("user_fixed_point", nash.SOLVERS["nash_md"])
    finally:
        nash.SOLVERS.pop("user_fixed_point", None)


def test_online_names_are_served_by_nash():
    from rlbandit import nash_online

    assert nash.run_online_nash is nash_online.run_online_nash and nash.ENHANCERS is nash_online.ENHANCERS
    with pytest.raises(AttributeError):
        nash.no_such_name  # noqa: B018


# ---------------------------------------------------------------------------------------------
# Stochastic (sampled) Nash-MD (rlbandit.nash_dynamics)
# ---------------------------------------------------------------------------------------------

def _small_game(seed=0, n_contexts=2, n_actions=4, eta=0.5):
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(n_contexts, n_actions, n_actions))
    pref = 0.5 + 0.5 * np.tanh(m - np.swapaxes(m, -1, -2))
    ref = np.log(rng.dirichlet(np.ones(n_actions), size=n_contexts))
    return pref, ref, eta


def test_sample_actions_matches_the_distribution():
    from rlbandit.nash_dynamics import sample_actions

    probs = np.array([[0.1, 0.0, 0.6, 0.3]])
    with np.errstate(divide="ignore"):
        draws = sample_actions(np.log(probs), 200_000, np.random.default_rng(0))
    freq = np.bincount(draws.ravel(), minlength=4) / draws.size
    assert np.allclose(freq, probs[0], atol=5e-3)
    assert freq[1] == 0.0  # a zero-probability action is never drawn


def test_stochastic_nash_md_is_reproducible_and_tends_to_exact_nash_md():
    from rlbandit.nash_dynamics import stochastic_nash_md_iterates

    pref, ref, eta = _small_game()
    a = stochastic_nash_md_iterates(pref, ref, eta, 20, 3, np.random.default_rng(1))
    b = stochastic_nash_md_iterates(pref, ref, eta, 20, 3, np.random.default_rng(1))
    assert np.array_equal(a, b) and a.shape == (21,) + ref.shape
    exact = nash.nash_md_iterates(pref, ref, eta, 20)
    many = stochastic_nash_md_iterates(pref, ref, eta, 20, 20_000, np.random.default_rng(2))
    assert kl(exact[-1], many[-1]).max() < 0.05 * kl(exact[-1], a[-1]).max()
    with np.errstate(divide="ignore"):
        assert np.allclose(np.exp(a).sum(-1), 1.0)


def test_stochastic_nash_md_obeys_theorem_1_in_expectation():
    """Unbiased payoff estimates in [0, 1]: E KL(π* ‖ π_T) ≤ 8/(τ²(T+1)) (mean over 64 runs)."""
    from rlbandit.nash_dynamics import stochastic_nash_md_iterates

    pref, ref, eta = _small_game(eta=1.0)
    batch_pref = np.broadcast_to(pref, (64,) + pref.shape)
    star = nash.solve(pref, ref, eta, tol=1e-13)
    iterates = stochastic_nash_md_iterates(batch_pref, ref, eta, 200, 1, np.random.default_rng(3))
    expected = kl(star[None, None], iterates).mean(axis=1)  # (T+1, X)
    bound = nash.nash_md_bound(eta, np.arange(201))[:, None]
    assert (expected[1:] <= bound[1:]).all()
    assert expected[-1].max() < expected[1].max()


def test_stochastic_nash_md_validates():
    from rlbandit.nash_dynamics import stochastic_nash_md_iterates

    pref, ref, eta = _small_game()
    with pytest.raises(ValueError, match="rng"):
        stochastic_nash_md_iterates(pref, ref, eta, 2, 1, 0)
    with pytest.raises(ValueError, match="n_samples"):
        stochastic_nash_md_iterates(pref, ref, eta, 2, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="step"):
        stochastic_nash_md_iterates(pref, ref, eta, 2, 1, np.random.default_rng(0), step=3.0)


def test_solve_reports_non_convergence_refuses_a_zero_init_and_takes_huge_eta():
    """Issue 16: an unconverged solve warns (NotConvergedWarning, with its residual); an init without
    π0's support is refused; η = 1e200 gives π0 (no OverflowError from η² in the step)."""
    problems = make_preference_problems(PreferenceConfig("rps", n_contexts=2, n_actions=3, strength=0.5), range(2))
    pref, ref = problems.pref, problems.ref_logprobs
    with pytest.warns(nash.NotConvergedWarning, match="residual"):
        nash.solve(pref, ref, 0.01, "nash_md", max_iter=5)
    init = np.full(ref.shape, np.log(0.5))
    init[..., 0] = -np.inf
    with pytest.raises(ValueError, match="init: must give mass"):
        nash.solve(pref, ref, 0.3, "fixed_point", init=init)
    np.testing.assert_allclose(nash.solve(pref, ref, 1e200, "fixed_point"), np.broadcast_to(ref, pref.shape[:-1]),
                               atol=1e-12)
