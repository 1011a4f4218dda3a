"""The optimistic search at scale (issue 17): bounded memory, chunking that changes nothing, and
the memory-budget helper (rlbandit.budget).

Property tests (hypothesis): chunked and unchunked searches return bitwise the same policy; the
policy is feasible when K exceeds the actions searched (screening and pruning active); it beats
the best feasible mixture of π¹ with a single action (the screening's certified value, computed
here independently with an explicit Σ⁻¹); ``chunk_size`` is the largest chunk that fits.
Memory: the peak traced allocation of a run stays near its budget while the same work at once
is over it.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rlbandit as rb
from rlbandit import budget, online
from rlbandit.oracle import normalize_logits
from rlbandit.optimistic import optimistic_search
from rlbandit.reward import cholesky
from tests.strategies import assert_optimistic_feasible, optimistic_instance, optimistic_objective_and_kl

FAST = settings(max_examples=8, deadline=None)
MiB = 1 << 20


def _instance(seed, S=2, X=4, K=40, d=4):
    return optimistic_instance(seed, S, X, K, d)[1:]


def _search(phi, main, cov, beta, eta, probs, seed, **kw):
    return optimistic_search(phi, main, cholesky(cov), beta, eta, probs, np.random.default_rng(seed), **kw)


# ---------------------------------------------------------------------------------------------
# Chunking changes nothing; memory stays near the budget
# ---------------------------------------------------------------------------------------------

@FAST
@given(seed=st.integers(0, 10_000), extra=st.sampled_from([0.3, 0.6, 1.2, 2.5]),
       constraint=st.sampled_from(["expected", "per_context"]), K=st.sampled_from([6, 40]))
def test_chunked_equals_unchunked_exactly(seed, extra, constraint, K):
    """Budgets from one context per chunk up to all at once (with and without the whitened gaps
    kept between passes) give bitwise the same policy: same candidates, same choice."""
    phi, main, cov, beta, eta, probs = _instance(seed, K=K)
    whole = _search(phi, main, cov, beta, eta, probs, seed, constraint=constraint, memory_budget="1G")
    small = 4 * MiB + int(extra * MiB)  # the cache-sized blocks + room for 1 to 8 of the 8 contexts
    chunked = _search(phi, main, cov, beta, eta, probs, seed, constraint=constraint, memory_budget=small)
    assert np.array_equal(whole, chunked)
    if extra == 0.3:  # the work really was split: all at once it is over this budget
        with pytest.raises(ValueError, match="memory budget"):
            _search(phi, main, cov, beta, eta, probs, seed, constraint=constraint, memory_budget=small,
                    on_exceed="raise")


def test_peak_memory_stays_near_the_budget():
    """X = 96 contexts, K = 400: all at once the work is over a 12 MiB budget (on_exceed='raise'
    refuses it), yet the chunked run's traced peak stays under the budget plus the result and the
    per-context candidate store (< 2 MiB here); the whole search at once would hold the tilted
    policies of every direction × size × action of every context (hundreds of MiB)."""
    rng = np.random.default_rng(3)
    X, K, d = 96, 400, 8
    phi = rng.standard_normal((1, X, K, d)) / np.sqrt(d)
    main = normalize_logits(rng.standard_normal((1, X, K)))
    factor = np.linalg.cholesky(np.eye(d)[None] * 2.0)
    args = (phi, main, factor, np.array([2.0]), 1.0, np.full(X, 1.0 / X))
    limit = 12 * MiB
    with pytest.raises(ValueError, match="over the memory budget"):
        optimistic_search(*args, np.random.default_rng(0), memory_budget=limit, on_exceed="raise")
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out = optimistic_search(*args, np.random.default_rng(0), memory_budget=limit)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak <= limit + 2 * MiB, peak / MiB
    u, kl = optimistic_objective_and_kl(out, phi, main, np.eye(d)[None] * 2.0)
    assert ((u * 2.0 - kl).mean() >= -1e-10) and u.mean() > 0


def test_one_context_over_the_budget_fails_at_once():
    phi, main, cov, beta, eta, probs = _instance(0, K=40)
    with pytest.raises(ValueError, match=r"K = 40 actions.*over the memory budget of 4 MiB"):
        _search(phi, main, cov, beta, eta, probs, 0, memory_budget="4M")


# ---------------------------------------------------------------------------------------------
# Accuracy where directions are pruned and screened (K > n_action_directions)
# ---------------------------------------------------------------------------------------------

def _best_single_action_mixture(phi, main, cov, beta, eta, steps=60):
    """max_a α*_a‖g_a‖ over mixtures (1 − α)π¹ + αδ_a feasible per context, by bisection on α
    with the KL of the mixture computed from its probabilities: (S, X)."""
    S, X, K, _ = phi.shape
    p = np.exp(main)
    best = np.zeros((S, X))
    eye = np.eye(K)
    for a in range(K):  # a mixture with α = 1 is a point mass: log 0 = −inf off a
        lo, hi = np.zeros((S, X)), np.ones((S, X))
        for _ in range(steps):
            mid = 0.5 * (lo + hi)
            with np.errstate(divide="ignore"):
                mix = np.log((1 - mid[..., None]) * p + mid[..., None] * eye[a])
            u, kl = optimistic_objective_and_kl(mix, phi, main, cov)
            ok = beta[:, None] * u - eta * kl >= 0
            lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
        with np.errstate(divide="ignore"):
            mix = np.log((1 - lo[..., None]) * p + lo[..., None] * eye[a])
        u, _ = optimistic_objective_and_kl(mix, phi, main, cov)
        best = np.maximum(best, u)
    return best


@FAST
@given(seed=st.integers(0, 10_000), constraint=st.sampled_from(["expected", "per_context"]))
def test_feasible_when_pruned(seed, constraint):
    phi, main, cov, beta, eta, probs = _instance(seed, K=48, d=5)
    lp = _search(phi, main, cov, beta, eta, probs, seed, constraint=constraint, n_action_directions=8)
    u = assert_optimistic_feasible(lp, phi, main, cov, beta, eta, probs, constraint)
    assert np.all((probs * u).sum(-1) > 0)


@FAST
@given(seed=st.integers(0, 10_000))
def test_beats_best_single_action_mixture(seed):
    """Per context, the search's value ≥ max_a α*_a‖φ(x,a) − φ(x,π¹)‖_{Σ⁻¹}, the value of the best
    feasible mixture of π¹ with one action (the tilt along that action's gap dominates it)."""
    phi, main, cov, beta, eta, probs = _instance(seed, X=3, K=30, d=4)
    lp = _search(phi, main, cov, beta, eta, probs, seed, constraint="per_context", n_action_directions=6)
    u, _ = optimistic_objective_and_kl(lp, phi, main, cov)
    assert np.all(u >= _best_single_action_mixture(phi, main, cov, beta, eta) * (1 - 1e-6))


def test_search_options_are_validated():
    phi, main, cov, beta, eta, probs = _instance(0, K=6)
    for kw, name in (({"n_action_directions": 0}, "n_action_directions"),
                     ({"n_full_directions": 0}, "n_full_directions"),
                     ({"n_eigen_directions": -1}, "n_eigen_directions"), ({"on_exceed": "never"}, "on_exceed"),
                     ({"memory_budget": "lots"}, "memory_budget"), ({"n_tilts": True}, "n_tilts")):
        with pytest.raises(ValueError, match=name):
            _search(phi, main, cov, beta, eta, probs, 0, **kw)


# ---------------------------------------------------------------------------------------------
# rlbandit.budget
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [("1024", 1024), ("512M", 512 * MiB), ("1.5GiB", 3 * (1 << 29)),
                                            ("2g", 2 << 30), ("64 kb", 64 << 10), (4096, 4096), (2.0**20, MiB)])
def test_parse_bytes(text, expected):
    assert budget.parse_bytes(text) == expected


@pytest.mark.parametrize("value", ["", "12 parsecs", "-5M", "0", 0, 0.5, float("nan"), float("inf"), True, None, [1]])
def test_parse_bytes_rejects(value):
    with pytest.raises(ValueError, match="memory_budget"):
        budget.parse_bytes(value)


def test_memory_budget_precedence(monkeypatch):
    monkeypatch.delenv(budget.ENV_VAR, raising=False)
    assert budget.memory_budget() == budget.DEFAULT_BUDGET == 1 << 30
    monkeypatch.setenv(budget.ENV_VAR, "256M")
    assert budget.memory_budget() == 256 * MiB
    assert budget.memory_budget("2G") == 2 << 30  # an explicit argument wins
    monkeypatch.setenv(budget.ENV_VAR, "plenty")
    with pytest.raises(ValueError, match=budget.ENV_VAR):
        budget.memory_budget()


@settings(max_examples=60, deadline=None)
@given(per_item=st.integers(1, 10**7), n=st.integers(0, 10**5), limit=st.integers(1, 10**9),
       fixed=st.integers(0, 10**8))
def test_chunk_size_is_the_largest_chunk_that_fits(per_item, n, limit, fixed):
    if limit - fixed < per_item:
        with pytest.raises(ValueError, match="over the memory budget"):
            budget.chunk_size(per_item, n, limit, fixed_bytes=fixed)
        return
    size = budget.chunk_size(per_item, n, limit, fixed_bytes=fixed)
    assert 1 <= size <= max(n, 1)
    assert fixed + size * per_item <= limit
    assert size == max(n, 1) or fixed + (size + 1) * per_item > limit
    parts = budget.chunks(n, size)
    assert [i for part in parts for i in range(n)[part]] == list(range(n))
    assert all(part.stop - part.start <= size for part in parts)
    if fixed + n * per_item > limit:
        with pytest.raises(ValueError, match=r"on_exceed='raise'"):
            budget.chunk_size(per_item, n, limit, fixed_bytes=fixed, on_exceed="raise")
    else:
        assert budget.chunk_size(per_item, n, limit, fixed_bytes=fixed, on_exceed="raise") == max(n, 1)


def test_chunk_size_message_names_sizes_and_budget():
    with pytest.raises(ValueError, match=r"^demo \(n = 3\): one item needs 2 MiB on top of 0 B fixed, over the "
                                         r"memory budget of 1 MiB"):
        budget.chunk_size(2 * MiB, 3, "1M", what="demo (n = 3)")


@pytest.mark.parametrize("kw, name", [({"bytes_per_item": 0}, "bytes_per_item"),
                                      ({"bytes_per_item": -3}, "bytes_per_item"),
                                      ({"n_items": -1}, "n_items"), ({"n_items": 2.5}, "n_items"),
                                      ({"fixed_bytes": -1}, "fixed_bytes"), ({"on_exceed": "spill"}, "on_exceed"),
                                      ({"n_items": True}, "n_items"), ({"budget": "x"}, "memory_budget")])
def test_chunk_size_validates(kw, name):
    args = {"bytes_per_item": 8, "n_items": 10, "budget": 1024, **kw}
    with pytest.raises(ValueError, match=name):
        budget.chunk_size(**args)


def test_chunks_validates():
    with pytest.raises(ValueError, match="size"):
        budget.chunks(10, 0)
    with pytest.raises(ValueError, match="n_items"):
        budget.chunks(-1, 3)
    assert budget.chunks(0, 4) == []


def test_iterate_passes_the_memory_budget_to_the_optimistic_search():
    """The budget is an option of `online.iterate`: a budget that one context cannot fit in fails at
    once naming the budget; a bad budget is a named error before any work."""
    problem = rb.make_problems(rb.ProblemConfig(scenario="random", n_contexts=4, n_actions=6, dim=3), seeds=[0])
    with pytest.raises(ValueError, match="budget"):
        online.iterate(problem, 1.0, "optimistic", T=1, m=20, rng=np.random.default_rng(0), memory_budget=64)
    with pytest.raises(ValueError, match="memory_budget"):
        online.iterate(problem, 1.0, "optimistic", T=1, m=20, rng=np.random.default_rng(0), memory_budget="lots")
    with pytest.raises(ValueError, match="on_exceed"):
        online.iterate(problem, 1.0, "optimistic", T=1, m=20, rng=np.random.default_rng(0), on_exceed="swap")
    small = online.iterate(problem, 1.0, "optimistic", T=2, m=20, rng=np.random.default_rng(0), memory_budget="64M")
    default = online.iterate(problem, 1.0, "optimistic", T=2, m=20, rng=np.random.default_rng(0))
    pd.testing.assert_frame_equal(small, default)
