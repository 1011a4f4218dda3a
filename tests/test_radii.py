"""Confidence radii (rlbandit.radii): one curvature convention κ_B = σ′(2B), each radius in the
paper's own normalisation, and the online/offline entry points reading the same registry."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit

from rlbandit import offline, online, radii


@settings(max_examples=50, deadline=None)
@given(st.floats(0.01, 8.0))
def test_curvature_is_the_least_slope_on_reward_differences_in_minus_2b_2b(bound):
    """Brute force: min of σ′ over a grid of [−2B, 2B] (‖φ‖ ≤ 1 ⇒ |⟨z, θ⟩| ≤ 2B)."""
    s = np.linspace(-2 * bound, 2 * bound, 20001)
    slope = expit(s) * (1 - expit(s))
    assert radii.curvature(bound) == pytest.approx(slope.min(), rel=1e-12)
    assert radii.curvature(bound) == pytest.approx(1 / (2 + np.exp(-2 * bound) + np.exp(2 * bound)), rel=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 64), st.integers(1, 10_000), st.floats(1e-3, 10.0), st.floats(0.05, 5.0), st.floats(0.01, 0.5))
def test_zhu2023_radius_in_the_papers_normalisation(dim, n, reg_paper, bound, delta):
    """Zhu et al. use Σ = (1/n)Σzzᵀ + λ′I and β′ = √((d + log 1/δ)/(γ²n) + λ′B²); in the unnormalised
    Σ_D = nΣ (λ = nλ′) the radius scales by √n."""
    gamma = 1 / (2 + np.exp(-2 * bound) + np.exp(2 * bound))
    paper = np.sqrt((dim + np.log(1 / delta)) / (gamma**2 * n) + reg_paper * bound**2)
    assert radii.zhu2023_radius(dim, n * reg_paper, bound, delta) == pytest.approx(np.sqrt(n) * paper, rel=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 64), st.floats(1e-3, 10.0), st.floats(0.05, 5.0), st.floats(0.01, 0.5))
def test_one_round_of_one_comparison_xiong2024_is_zhu2023(dim, reg, bound, delta):
    """Same lemma, same curvature: T = m = 1 makes the two radii one formula."""
    assert radii.xiong2024_radius(dim, 1, 1, reg, bound, delta) == pytest.approx(
        radii.zhu2023_radius(dim, reg, bound, delta), rel=1e-12)


def test_online_and_offline_entry_points_read_the_registry():
    assert online.theory_beta(4, 10, 50, 1.0, 2.0, 0.1) == radii.RADII["xiong2024"](4, 10, 50, 1.0, 2.0, 0.1)
    rng = np.random.default_rng(0)
    diffs = rng.uniform(-1, 1, (3, 40, 4)) / 2
    theta_hat = rng.standard_normal((3, 4))
    for rule in offline.BETA_RULES:
        got = offline.theory_beta(diffs, 1.0, 2.0, 0.1, theta_hat, rule)
        assert got.shape == (3,)
    np.testing.assert_array_equal(offline.theory_beta(diffs, 1.0, 2.0, 0.1, theta_hat, "self_normalized"),
                                  radii.self_normalized_radius(diffs, 1.0, 2.0, 0.1, theta_hat))
    np.testing.assert_allclose(offline.theory_beta(diffs, 1.0, 2.0, 0.1, theta_hat, "zhu2023"),
                               radii.zhu2023_radius(4, 1.0, 2.0, 0.1))


def test_self_normalized_curvature_is_never_below_the_convention_when_theta_hat_is_in_the_ball():
    """κ = σ′(max‖z‖·max(B, ‖θ̂‖)) ≥ κ_B when ‖z‖ ≤ 2 and ‖θ̂‖ ≤ B: the data-dependent radius is
    at most the one computed with κ_B."""
    rng = np.random.default_rng(1)
    diffs = rng.uniform(-1, 1, (5, 100, 3)) / np.sqrt(3)
    bound = 1.5
    theta_hat = rng.standard_normal((5, 3))
    theta_hat *= bound * rng.uniform(0, 1, (5, 1)) / np.linalg.norm(theta_hat, axis=-1, keepdims=True)
    beta = radii.self_normalized_radius(diffs, 1.0, bound, 0.1, theta_hat)
    kappa = radii.curvature(bound)
    logdet = np.linalg.slogdet(np.eye(3) + np.swapaxes(diffs, -1, -2) @ diffs)[1]
    numerator = 0.5 * np.sqrt(2 * np.log(10) + logdet) + bound
    assert (beta <= numerator / kappa + 1e-12).all()


@pytest.mark.parametrize("call, name", [
    (lambda: radii.zhu2023_radius(3, 1.0, 2.0, 1.5), "delta"),
    (lambda: radii.zhu2023_radius(3, "a", 2.0, 0.1), "reg"),
    (lambda: radii.xiong2024_radius(3, 0, 5, 1.0, 2.0, 0.1), "T"),
    (lambda: radii.curvature(-1.0), "theta_bound"),
    (lambda: radii.self_normalized_radius(np.ones((2, 3)), 1.0, None, 0.1), "theta_bound"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
