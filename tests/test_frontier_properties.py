"""The facts behind study ``frontier`` are theorems; here they are property tests on random small
problems (the report then only shows what is not a theorem: how far each practical method falls
short of the frontier).

Along the η path π_η = O(r, η, π0) with ONE η shared by all contexts (d0-weighted), with
R(η) = E_x E_{π_η} r and K(η) = E_x KL(π_η‖π0):

- ``test_frontier_is_monotone``: R and K both increase as η falls;
- ``test_frontier_is_concave_in_kl``: R as a function of K is concave — secant slopes between
  neighbouring η_{i+1} < η_i lie in [η_{i+1}, η_i] (mean-value theorem with slope η) and fall as K grows;
- ``test_frontier_slope_is_eta``: dR/dK = η (envelope theorem; dR/dη = −Var/η², dK/dη = −Var/η³),
  by central finite differences;
- ``test_best_of_n_on_or_below_frontier``: exact best-of-N under π0 has gold reward ≤ the frontier's
  at its own average KL (``sampling_oracles.gibbs_at_average_kl``, the reports' one definition),
  rewards with ties included.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rlbandit import gibbs
from rlbandit.kernels import expected_reward, kl, weigh_contexts
from rlbandit.sampling_oracles import best_of_n, gibbs_at_average_kl

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def problems(draw, ties: bool = False):
    """(rewards (X, K), log π0 (X, K), d0 (X,)): X ≤ 4, K ≤ 8, full-support π0, rewards of spread ≥ 0.1."""
    seed = draw(st.integers(0, 2**32 - 1))
    x, k = draw(st.integers(1, 4)), draw(st.integers(2, 8))
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=(x, k)) * draw(st.sampled_from([0.3, 1.0, 3.0]))
    if ties:
        rewards = np.round(rewards * 2) / 2
    rewards[:, 0] += 0.1  # no context is constant... unless rounding made it so
    rewards[:, 1] -= 0.1 if not ties else 0.5
    logits = rng.normal(size=(x, k)) * draw(st.sampled_from([0.0, 1.0, 3.0]))
    ref = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    d0 = rng.dirichlet(np.ones(x))
    return rewards, ref, d0


def _path(rewards, ref, d0, etas):
    """(R, K) along the η path."""
    pols = [gibbs(rewards, ref, float(eta)) for eta in etas]
    reward = np.array([weigh_contexts(expected_reward(p, rewards), d0) for p in pols])
    kls = np.array([weigh_contexts(np.maximum(kl(p, ref), 0.0), d0) for p in pols])
    return reward, kls


ETAS = np.geomspace(1e2, 1e-2, 41)  # falling η: KL and reward rising


@SETTINGS
@given(problems())
def test_frontier_is_monotone(problem):
    rewards, ref, d0 = problem
    reward, kls = _path(rewards, ref, d0, ETAS)
    assert (np.diff(kls) >= -1e-12).all()
    assert (np.diff(reward) >= -1e-12).all()


@SETTINGS
@given(problems())
def test_frontier_is_concave_in_kl(problem):
    rewards, ref, d0 = problem
    reward, kls = _path(rewards, ref, d0, ETAS)
    dk, dr = np.diff(kls), np.diff(reward)
    ok = dk > 1e-9  # secants above round-off
    slope = dr[ok] / dk[ok]
    hi, lo = ETAS[:-1][ok], ETAS[1:][ok]
    assert (slope >= lo * (1 - 1e-5) - 1e-9).all() and (slope <= hi * (1 + 1e-5) + 1e-9).all()
    # the secant slopes fall as KL grows: concave (the brackets [η_{i+1}, η_i] are ordered)
    assert (np.diff(slope) <= 1e-5 * np.abs(slope).max() + 1e-9).all()


@SETTINGS
@given(problems(), st.floats(0.05, 5.0))
def test_frontier_slope_is_eta(problem, eta):
    rewards, ref, d0 = problem
    h = 1e-4
    reward, kls = _path(rewards, ref, d0, [eta * (1 + h), eta * (1 - h)])
    dk = kls[1] - kls[0]
    if dk < 1e-10:  # the tilt barely moves π at this η (reward spread ≪ η or ≫ η): no slope to read
        return
    np.testing.assert_allclose((reward[1] - reward[0]) / dk, eta, rtol=1e-3)


@SETTINGS
@given(st.one_of(problems(), problems(ties=True)), st.integers(1, 64))
def test_best_of_n_on_or_below_frontier(problem, n):
    rewards, ref, d0 = problem
    bon = best_of_n(rewards, ref, n)
    bon_reward = weigh_contexts(expected_reward(bon, rewards), d0)
    bon_kl = weigh_contexts(np.maximum(kl(bon, ref), 0.0), d0)
    frontier, eta = gibbs_at_average_kl(rewards, ref, bon_kl, d0)
    frontier_reward = weigh_contexts(expected_reward(frontier, rewards), d0)
    frontier_kl = weigh_contexts(np.maximum(kl(frontier, ref), 0.0), d0)
    assert frontier_kl <= bon_kl + 1e-9  # the shared-η Gibbs point at (or just inside) the same KL budget
    assert frontier_reward >= bon_reward - 1e-9
