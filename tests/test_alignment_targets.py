"""IPO's population optimum against an independent computation: the weighted least squares of the
population IPO loss over tabular log-ratios, solved directly."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, logsumexp

from rlbandit import gibbs, kl
from rlbandit.alignment_targets import ipo_target, win_rate_against


def _population_ipo_minimiser(rewards, ref, beta, mu):
    """argmin over g of E_{a,b∼μ} E_y (h − y/(2β))², h = g(a) − g(b), y = ±1 with P(+1) = σ(r_a − r_b),
    by least squares over all ordered pairs; π ∝ π0 e^g."""
    k = len(rewards)
    rows, target, weight = [], [], []
    for a in range(k):
        for b in range(k):
            if a == b:
                continue
            e = np.zeros(k)
            e[a], e[b] = 1.0, -1.0
            rows.append(e)
            target.append((2 * expit(rewards[a] - rewards[b]) - 1) / (2 * beta))
            weight.append(np.exp(mu[a] + mu[b]))
    w = np.sqrt(np.array(weight))
    g = np.linalg.lstsq(np.array(rows) * w[:, None], np.array(target) * w, rcond=None)[0]
    logits = ref + g
    return logits - logsumexp(logits)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 6), st.floats(0.05, 5.0), st.booleans())
def test_ipo_target_minimises_the_population_ipo_loss(seed, k, beta, on_policy_mu):
    rng = np.random.default_rng(seed)
    rewards = rng.normal(0, 2, k)
    ref = np.log(rng.dirichlet(np.ones(k)))
    mu = np.log(rng.dirichlet(np.ones(k))) if on_policy_mu else ref
    got = ipo_target(rewards, ref, beta, None if not on_policy_mu else mu)
    want = _population_ipo_minimiser(rewards, ref, beta, mu)
    np.testing.assert_allclose(np.exp(got), np.exp(want), atol=1e-10)


def test_ipo_target_is_not_gibbs_and_win_rates_are_probabilities():
    rng = np.random.default_rng(1)
    rewards, ref = rng.normal(0, 3, (4, 5)), np.log(rng.dirichlet(np.ones(5), size=4))
    wins = win_rate_against(rewards, ref)
    assert ((wins > 0) & (wins < 1)).all()
    np.testing.assert_allclose(np.einsum("xk,xk->x", np.exp(ref), wins), 0.5, atol=1e-12)  # E_μ P(a ≻ μ) = ½
    assert kl(ipo_target(rewards, ref, 0.5), gibbs(rewards, ref, 0.5)).min() > 1e-3
    with pytest.raises(ValueError, match="beta"):
        ipo_target(rewards, ref, 0.0)
