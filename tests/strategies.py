"""Shared hypothesis strategies for rlbandit's tests.

Import them from any test module as ``from tests.strategies import ...`` (``tests/conftest.py``
puts the repository root on ``sys.path``). Every strategy returns plain numpy float64 arrays (or
rlbandit objects) that satisfy the contract of DESIGN §1, and deliberately includes the hard cases:

- log-probability rows with ``-inf`` entries (zero mass), peaked rows and uniform rows;
- rewards on a coarse grid, so exact ties between actions are common;
- η from 1e-8 to 1e8 (log-uniform, the extremes included);
- small linear bandits, single or batched over a leading seed axis.

Arrays are kept small (K ≤ 8, X ≤ 4) so hundreds of examples run in seconds; size tests with
``settings(max_examples=..., deadline=None)``.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import logsumexp

__all__ = [
    "optimistic_instance",
    "optimistic_objective_and_kl",
    "etas",
    "moderate_etas",
    "extreme_etas",
    "seeds",
    "shapes",
    "logits_arrays",
    "logprob_arrays",
    "full_support_logprob_arrays",
    "reward_arrays",
    "grid_reward_arrays",
    "context_prob_arrays",
    "gibbs_instances",
    "linear_bandits",
    "batched_linear_bandits",
    "problem_configs",
    "bt_datasets",
]

#: Values every log-uniform η strategy can reach, including both extremes.
ETA_MIN, ETA_MAX = 1e-8, 1e8
#: Grid of the tie-prone rewards: multiples of REWARD_STEP in [−REWARD_GRID, REWARD_GRID]·step.
REWARD_STEP, REWARD_GRID = 0.25, 8


def etas(min_value: float = ETA_MIN, max_value: float = ETA_MAX) -> st.SearchStrategy[float]:
    """η > 0, log-uniform on [min_value, max_value], with both extremes drawn often."""
    lo, hi = np.log10(min_value), np.log10(max_value)
    return st.one_of(
        st.sampled_from([float(min_value), float(max_value)]),
        st.floats(lo, hi, allow_nan=False, allow_infinity=False).map(lambda e: float(10.0**e)),
    )


def moderate_etas() -> st.SearchStrategy[float]:
    """η in [0.05, 20]: where an iterative solver (cvxpy) is accurate."""
    return etas(0.05, 20.0)


def extreme_etas() -> st.SearchStrategy[float]:
    """η in [1e-8, 1e-4] ∪ [1e4, 1e8]: the regimes where naive exp(r/η) under- or overflows."""
    return st.one_of(etas(ETA_MIN, 1e-4), etas(1e4, ETA_MAX))


def seeds() -> st.SearchStrategy[int]:
    """Seeds for numpy Generators drawn inside a test."""
    return st.integers(0, 2**32 - 1)


def shapes(max_contexts: int = 4, max_actions: int = 8, batch: bool = False) -> st.SearchStrategy[tuple[int, ...]]:
    """(X, K) or, with ``batch``, (S, X, K) with S ≤ 3."""
    core = st.tuples(st.integers(1, max_contexts), st.integers(1, max_actions))
    if not batch:
        return core
    return st.tuples(st.integers(1, 3)).flatmap(lambda s: core.map(lambda c: s + c))


def logits_arrays(shape, *, allow_neg_inf: bool = True, scale: float = 20.0) -> st.SearchStrategy[np.ndarray]:
    """Unnormalised log-weights of ``shape`` (..., K): finite values in [−scale, scale] (including
    exact duplicates) and, with ``allow_neg_inf``, −inf entries; every row keeps ≥ 1 finite entry."""
    elements = st.one_of(
        st.sampled_from([0.0, -1.0, 1.0, -scale]),
        st.floats(-scale, scale, allow_nan=False, allow_infinity=False),
    )
    if allow_neg_inf:
        elements = st.one_of(elements, st.just(-np.inf))

    def fix(array: np.ndarray) -> np.ndarray:
        array = np.array(array, dtype=np.float64)
        empty = ~np.isfinite(array).any(axis=-1)
        array[empty, 0] = 0.0  # a row with no mass is not a distribution
        return array

    return hnp.arrays(np.float64, shape, elements=elements).map(fix)


def logprob_arrays(shape, *, allow_neg_inf: bool = True, scale: float = 20.0) -> st.SearchStrategy[np.ndarray]:
    """Normalised log-probabilities of ``shape`` (..., K) (logsumexp of every row is 0), with
    −inf entries (zero mass) when ``allow_neg_inf``, peaked rows (spread up to e^±scale) and ties."""
    return logits_arrays(shape, allow_neg_inf=allow_neg_inf, scale=scale).map(
        lambda a: a - logsumexp(a, axis=-1, keepdims=True)
    )


def full_support_logprob_arrays(shape, scale: float = 5.0) -> st.SearchStrategy[np.ndarray]:
    """Normalised log-probabilities with every entry finite (full support)."""
    return logprob_arrays(shape, allow_neg_inf=False, scale=scale)


def reward_arrays(shape, bound: float = 5.0) -> st.SearchStrategy[np.ndarray]:
    """Finite rewards in [−bound, bound] of ``shape``; half the examples lie on the tie-prone grid."""
    continuous = hnp.arrays(np.float64, shape, elements=st.floats(-bound, bound, allow_nan=False, allow_infinity=False))
    return st.one_of(grid_reward_arrays(shape), continuous)


def grid_reward_arrays(shape) -> st.SearchStrategy[np.ndarray]:
    """Rewards on the grid REWARD_STEP·{−REWARD_GRID..REWARD_GRID}: exact ties are common and every
    gap between distinct values is ≥ REWARD_STEP (exactly representable in binary)."""
    return hnp.arrays(np.int64, shape, elements=st.integers(-REWARD_GRID, REWARD_GRID)).map(
        lambda a: a.astype(np.float64) * REWARD_STEP
    )


def context_prob_arrays(n_contexts: int, *, allow_zero: bool = True) -> st.SearchStrategy[np.ndarray]:
    """d0 over ``n_contexts`` contexts (sums to 1); with ``allow_zero`` some contexts get no weight."""
    return logprob_arrays((n_contexts,), allow_neg_inf=allow_zero, scale=3.0).map(np.exp).map(lambda p: p / p.sum())


@st.composite
def gibbs_instances(draw, *, batch: bool = False, eta=None, allow_neg_inf: bool = True):
    """(rewards, ref_logprobs, eta, context_probs): one contextual problem in array form.

    Shapes: rewards and ref_logprobs (X, K) (or (S, X, K) with ``batch``), context_probs (X,).
    ``eta`` is a strategy (default :func:`etas`).
    """
    shape = draw(shapes(batch=batch))
    rewards = draw(reward_arrays(shape))
    ref_logprobs = draw(logprob_arrays(shape, allow_neg_inf=allow_neg_inf))
    eta_value = draw(etas() if eta is None else eta)
    context_probs = draw(context_prob_arrays(shape[-2]))
    return rewards, ref_logprobs, eta_value, context_probs


def _unit_ball(rng: np.random.Generator, shape, dim: int) -> np.ndarray:
    v = rng.standard_normal(tuple(shape) + (dim,))
    v /= np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    return v * rng.uniform(0.0, 1.0, tuple(shape) + (1,))


def _bandit(seed: int, batch: tuple[int, ...], n_contexts: int, n_actions: int, dim: int,
            theta_norm: float, zero_mass: bool):
    from rlbandit import LinearBandit

    rng = np.random.default_rng(seed)
    features = _unit_ball(rng, batch + (n_contexts, n_actions), dim)
    theta = rng.standard_normal(batch + (dim,))
    theta *= theta_norm / np.maximum(np.linalg.norm(theta, axis=-1, keepdims=True), 1e-12)
    logits = 2.0 * rng.standard_normal(batch + (n_contexts, n_actions))
    if zero_mass and n_actions > 1:
        hole = rng.random(logits.shape) < 0.25
        hole[..., 0] = False  # keep every row non-empty
        logits[hole] = -np.inf
    context_logits = rng.standard_normal(n_contexts)
    context_probs = np.exp(context_logits - logsumexp(context_logits))
    return LinearBandit(features, theta, logits - logsumexp(logits, axis=-1, keepdims=True), context_probs)


@st.composite
def linear_bandits(draw, *, max_contexts: int = 4, max_actions: int = 8, max_dim: int = 4, zero_mass=None):
    """A small :class:`rlbandit.LinearBandit` (no batch axis): random features in the unit ball,
    ‖θ*‖ ∈ [0, 4], a Gaussian-logit π0 (with zero-mass actions when ``zero_mass`` — drawn when
    None) and a random d0."""
    x = draw(st.integers(1, max_contexts))
    k = draw(st.integers(1, max_actions))
    d = draw(st.integers(1, max_dim))
    norm = draw(st.floats(0.0, 4.0))
    holes = draw(st.booleans()) if zero_mass is None else zero_mass
    return _bandit(draw(seeds()), (), x, k, d, norm, holes)


@st.composite
def batched_linear_bandits(draw, *, max_seeds: int = 3, max_contexts: int = 4, max_actions: int = 8, max_dim: int = 4):
    """A :class:`rlbandit.LinearBandit` batched over a leading seed axis of size ≤ ``max_seeds``."""
    s = draw(st.integers(1, max_seeds))
    x = draw(st.integers(1, max_contexts))
    k = draw(st.integers(1, max_actions))
    d = draw(st.integers(1, max_dim))
    norm = draw(st.floats(0.0, 4.0))
    return _bandit(draw(seeds()), (s,), x, k, d, norm, draw(st.booleans()))


def problem_configs(scenarios=None, *, max_contexts: int = 5, max_actions: int = 10, max_dim: int = 4):
    """A :class:`rlbandit.ProblemConfig` for a registered scenario (all of them when ``scenarios``
    is None), with small sizes and a drawn seed."""
    from rlbandit import SCENARIOS, ProblemConfig

    names = sorted(SCENARIOS) if scenarios is None else list(scenarios)

    @st.composite
    def build(draw):
        k = draw(st.integers(2, max_actions))
        return ProblemConfig(
            scenario=draw(st.sampled_from(names)),
            n_contexts=draw(st.integers(1, max_contexts)),
            n_actions=k,
            dim=draw(st.integers(1, max_dim)),
            theta_norm=draw(st.floats(0.1, 4.0)),
            n_good=draw(st.integers(1, k)),
            seed=draw(st.integers(0, 10_000)),
        )

    return build()


@st.composite
def bt_datasets(draw, *, max_n: int = 200, max_dim: int = 5, batch: bool = False, weighted: bool = False):
    """(diffs, labels, weights) of a logistic-regression (BT) problem: z_i = φ¹ − φ² with
    ‖z_i‖ ≤ 2, labels drawn from BT with a random θ (so the data are rarely separable), and
    optional non-negative weights (None unless ``weighted``). Shapes (..., n, d), (..., n)."""
    n = draw(st.integers(5, max_n))
    d = draw(st.integers(1, max_dim))
    lead = (draw(st.integers(1, 3)),) if batch else ()
    rng = np.random.default_rng(draw(seeds()))
    diffs = _unit_ball(rng, lead + (n,), d) - _unit_ball(rng, lead + (n,), d)
    theta = rng.standard_normal(lead + (d,)) * draw(st.floats(0.0, 3.0))
    logits = np.einsum("...nd,...d->...n", diffs, theta)
    labels = (rng.random(lead + (n,)) < 1.0 / (1.0 + np.exp(-logits))).astype(np.int64)
    weights = rng.integers(0, 4, size=lead + (n,)).astype(np.float64) if weighted else None
    return diffs, labels, weights


# ---------------------------------------------------------------------------------------------
# Instances of Option I's search (tests/test_online.py, tests/test_optimistic_scaling.py)
# ---------------------------------------------------------------------------------------------

def optimistic_instance(seed, S=2, X=3, K=5, d=3):
    """A random input of :func:`rlbandit.optimistic.optimistic_search`: ``(rng, φ (S, X, K, d) in the
    unit ball, log π¹, Σ = I + Σ zzᵀ from 0–14 comparisons, β (S,), η, d0)``."""
    from rlbandit.oracle import normalize_logits

    rng = np.random.default_rng(seed)
    phi = rng.standard_normal((S, X, K, d))
    phi /= np.maximum(1.0, np.linalg.norm(phi, axis=-1, keepdims=True))
    main = normalize_logits(1.5 * rng.standard_normal((S, X, K)))
    z = 0.5 * rng.standard_normal((S, int(rng.integers(0, 15)), d))
    cov = np.eye(d) + np.swapaxes(z, -1, -2) @ z
    beta = rng.uniform(0.3, 5.0, S)
    eta = float(rng.uniform(0.1, 2.0))
    probs = rng.dirichlet(np.ones(X))
    return rng, phi, main, cov, beta, eta, probs


def optimistic_objective_and_kl(logprobs, phi, main, cov):
    """Independent computation of Option I's objective and KL: explicit Σ⁻¹, per context (S, X)
    norms ‖φ(x,π′) − φ(x,π¹)‖_{Σ⁻¹} and KL(π′‖π¹)."""
    p, q = np.exp(logprobs), np.exp(main)
    g = np.einsum("sxk,sxkd->sxd", p - q, phi)
    u = np.sqrt(np.einsum("sxd,sde,sxe->sx", g, np.linalg.inv(cov), g))
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(p > 0, p * (np.log(p) - main), 0.0).sum(-1)
    return u, kl


def assert_optimistic_feasible(logprobs, phi, main, cov, beta, eta, probs, constraint):
    """Option I's constraint β U ≥ η KL holds for ``logprobs`` (in d0-expectation, or per context for
    ``constraint="per_context"``) up to round-off; returns the objective U per context (S, X)."""
    u, kl = optimistic_objective_and_kl(logprobs, phi, main, cov)
    slack = beta[:, None] * u - eta * kl
    if constraint == "expected":
        assert np.all((probs * slack).sum(-1) >= -1e-10)
    else:
        assert np.all(slack >= -1e-10)
    return u
