"""The linear contextual bandit and its named scenarios (DESIGN §1).

A :class:`LinearBandit` holds φ (X, K, d), θ* (d,), log π0 (X, K) and d0 (X,). A batch of
problems (one per seed) adds leading axes to every array: φ (..., X, K, d), θ* (..., d), …; all
methods broadcast over them, so a sweep vectorises across seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np

from rlbandit import kernels
from rlbandit._checks import (
    check_instance,
    as_float_array,
    check_broadcast,
    check_choice,
    check_context_probs,
    check_eta,
    check_finite,
    check_int,
    check_logprobs,
    check_positive_float,
    check_positive_ints,
)
from rlbandit.kernels import expected_reward, normalize_logits
from rlbandit.preferences import PreferenceData, sample_actions, sample_bt_labels, sample_categorical

__all__ = ["LinearBandit", "ProblemConfig", "make_problem", "make_problems", "stack_problems", "SCENARIOS"]

#: Slack on ‖φ(x,a)‖ ≤ 1 for floating-point round-off.
_NORM_SLACK = 1e-9


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.float64, copy=True)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class LinearBandit:
    """A KL-regularised linear contextual bandit r*(x,a) = ⟨φ(x,a), θ*⟩.

    Args:
        features: φ, shape (..., X, K, d), finite, every ‖φ(x,a)‖ ≤ 1.
        theta: θ*, shape (..., d).
        ref_logprobs: log π0, shape (..., X, K), rows normalised (−inf = zero mass).
        context_probs: d0, shape (X,) or (..., X); uniform when None.
    """

    features: np.ndarray
    theta: np.ndarray
    ref_logprobs: np.ndarray
    context_probs: np.ndarray | None = None

    def __post_init__(self):
        features = as_float_array(self.features, "features", min_ndim=3)
        check_finite(features, "features")
        batch = features.shape[:-3]
        n_contexts, n_actions, dim = features.shape[-3:]
        if min(n_contexts, n_actions, dim) < 1:
            raise ValueError(f"features: every axis of (X, K, d) must be >= 1, got {features.shape}")
        norms = np.linalg.norm(features, axis=-1)
        if (norms > 1.0 + _NORM_SLACK).any():
            index = tuple(int(i) for i in np.argwhere(norms > 1.0 + _NORM_SLACK)[0])
            raise ValueError(f"features: every feature vector must satisfy ‖φ(x,a)‖ <= 1; "
                             f"‖φ‖ = {float(norms[index]):.6g} at index {index}")
        theta = as_float_array(self.theta, "theta", min_ndim=1)
        if theta.shape != batch + (dim,):
            raise ValueError(f"theta: expected shape {batch + (dim,)}, got {theta.shape}")
        check_finite(theta, "theta")
        ref = as_float_array(self.ref_logprobs, "ref_logprobs", min_ndim=2)
        if ref.shape != batch + (n_contexts, n_actions):
            raise ValueError(f"ref_logprobs: expected shape {batch + (n_contexts, n_actions)}, got {ref.shape}")
        check_logprobs(ref, "ref_logprobs")
        probs = check_context_probs(self.context_probs, n_contexts)
        if probs.shape not in ((n_contexts,), batch + (n_contexts,)):
            raise ValueError(f"context_probs: expected shape ({n_contexts},) or {batch + (n_contexts,)}, got {probs.shape}")
        object.__setattr__(self, "features", _readonly(features))
        object.__setattr__(self, "theta", _readonly(theta))
        object.__setattr__(self, "ref_logprobs", _readonly(normalize_logits(ref)))
        object.__setattr__(self, "context_probs", _readonly(probs))

    # -- shapes ---------------------------------------------------------------------------
    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.features.shape[:-3]

    @property
    def n_contexts(self) -> int:
        return self.features.shape[-3]

    @property
    def n_actions(self) -> int:
        return self.features.shape[-2]

    @property
    def dim(self) -> int:
        return self.features.shape[-1]

    def __getitem__(self, index) -> "LinearBandit":
        """One problem (or a sub-batch) of a batch: ``problems[s]``."""
        if not self.batch_shape:
            raise ValueError("index: this problem has no batch axis to index")
        probs = self.context_probs if self.context_probs.ndim == 1 else self.context_probs[index]
        return LinearBandit(self.features[index], self.theta[index], self.ref_logprobs[index], probs)

    # -- exact quantities -----------------------------------------------------------------
    @cached_property
    def rewards(self) -> np.ndarray:
        """r*(x,a) = ⟨φ(x,a), θ*⟩, shape (..., X, K)."""
        rewards = np.einsum("...xkd,...d->...xk", self.features, self.theta)
        rewards.setflags(write=False)
        return rewards

    def optimal_policy(self, eta) -> np.ndarray:
        """π* = O(r*, η, π0) as log-probs (..., X, K)."""
        return kernels.gibbs(self.rewards, self.ref_logprobs, check_eta(eta))

    def optimal_value(self, eta) -> np.ndarray:
        """J*(π*) = Σ_x d0 η log Z(x), shape batch_shape."""
        return kernels.weigh_contexts(kernels.log_partition(self.rewards, self.ref_logprobs, check_eta(eta)), self.context_probs)

    def _policy(self, logprobs, name: str = "logprobs") -> np.ndarray:
        logprobs = as_float_array(logprobs, name, min_ndim=2)
        expected = (self.n_contexts, self.n_actions)
        if logprobs.shape[-2:] != expected:
            raise ValueError(f"{name}: expected shape (..., {expected[0]}, {expected[1]}), got {logprobs.shape}")
        check_broadcast(logprobs.shape[:-2], self.batch_shape, f"{name} (leading axes)", "the problem's batch")
        check_logprobs(logprobs, name)
        # Remove the (≤ tolerance) normalisation error so values and KLs are those of distributions.
        return kernels.renormalise(logprobs)

    def value(self, logprobs, eta) -> np.ndarray:
        """J*(π) on the true reward, shape broadcast(logprobs.shape[:-2], batch_shape)."""
        logprobs = self._policy(logprobs)
        return kernels.weigh_contexts(kernels.per_context_value(logprobs, self.rewards, self.ref_logprobs, check_eta(eta)), self.context_probs)

    def suboptimality(self, logprobs, eta) -> np.ndarray:
        """SubOpt(π̂) = J*(π*) − J*(π̂) ≥ 0 (the KL-regularised gap on the true reward)."""
        eta = check_eta(eta)
        return self.optimal_value(eta) - self.value(logprobs, eta)

    def combined_metric(self, logprobs, eta) -> np.ndarray:
        """The theory's metric J*(π*) − J*(π̂) + η E_x KL(π*‖π̂)."""
        eta = check_eta(eta)
        logprobs = self._policy(logprobs)
        kl_star = kernels.kl(self.optimal_policy(eta), logprobs)
        return self.suboptimality(logprobs, eta) + eta * kernels.weigh_contexts(kl_star, self.context_probs)

    def gold_reward(self, logprobs) -> np.ndarray:
        """E_x E_{a∼π} r*(x,a), the gold reward of over-optimisation plots."""
        logprobs = self._policy(logprobs)
        return kernels.weigh_contexts(expected_reward(logprobs, self.rewards), self.context_probs)

    def kl_to_ref(self, logprobs) -> np.ndarray:
        """E_x KL(π(·|x) ‖ π0(·|x))."""
        logprobs = self._policy(logprobs)
        return kernels.weigh_contexts(np.maximum(kernels.kl(logprobs, self.ref_logprobs), 0.0), self.context_probs)

    def policy_features(self, logprobs) -> np.ndarray:
        """φ(x, π) = Σ_a π(a|x) φ(x,a), shape (..., X, d)."""
        p = np.exp(self._policy(logprobs))
        return np.einsum("...xk,...xkd->...xd", p, self.features)

    # -- data -------------------------------------------------------------------------------
    def sample_contexts(self, m: int, rng: np.random.Generator) -> np.ndarray:
        """x_i ~ d0, shape batch_shape + (m,)."""
        probs = np.broadcast_to(self.context_probs, self.batch_shape + (self.n_contexts,))
        with np.errstate(divide="ignore"):
            return sample_categorical(np.log(probs), m, rng)

    def sample_preferences(self, logprobs1, logprobs2, m: int, rng: np.random.Generator,
                           *, source: int = 0) -> PreferenceData:
        """m comparisons x ∼ d0, a¹ ∼ π¹(·|x), a² ∼ π²(·|x), y ∼ Bernoulli(σ(r*(x,a¹) − r*(x,a²))).

        Args:
            logprobs1, logprobs2: behaviour policies, shape batch_shape + (X, K) (or (X, K),
                broadcast over the batch).
            m: comparisons per batch element, ≥ 1.
            rng: the only source of randomness.
        """
        if not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(f"m: the number of comparisons must be a positive integer, got {m!r}")
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
        shape = self.batch_shape + (self.n_contexts, self.n_actions)
        lp1, lp2 = self._policy(logprobs1, "logprobs1"), self._policy(logprobs2, "logprobs2")
        for name, lp in (("logprobs1", lp1), ("logprobs2", lp2)):
            if np.broadcast_shapes(lp.shape, shape) != shape:
                raise ValueError(f"{name}: shape {lp.shape} has more leading axes than the problem's batch {self.batch_shape}")
        lp1, lp2 = np.broadcast_to(lp1, shape), np.broadcast_to(lp2, shape)
        contexts = self.sample_contexts(m, rng)
        actions1 = sample_actions(lp1, contexts, rng)
        actions2 = sample_actions(lp2, contexts, rng)
        r1 = gather_rewards(self.rewards, contexts, actions1)
        r2 = gather_rewards(self.rewards, contexts, actions2)
        labels = sample_bt_labels(r1 - r2, rng)
        return PreferenceData(contexts, actions1, actions2, labels,
                              np.full(contexts.shape, source, dtype=np.int64), ((lp1, lp2),))

    def diffs(self, data: PreferenceData) -> np.ndarray:
        """z_i = φ(x_i,a¹_i) − φ(x_i,a²_i) for this problem's features, shape (..., n, d)."""
        return data.diffs(self.features)


def gather_rewards(rewards: np.ndarray, contexts: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """r(x_i, a_i) for index arrays: rewards (..., X, K), contexts/actions (..., m) → (..., m)."""
    flat = rewards.reshape((-1,) + rewards.shape[-2:])
    rows = np.arange(flat.shape[0])[:, None]
    out = flat[rows, contexts.reshape(flat.shape[0], -1), actions.reshape(flat.shape[0], -1)]
    return out.reshape(contexts.shape)


def stack_problems(problems) -> LinearBandit:
    """Stack problems of equal (X, K, d) into one batched problem with a leading seed axis."""
    if problems is None or isinstance(problems, (str, bytes)) or not hasattr(problems, "__iter__"):
        raise ValueError(f"problems: expected an iterable of LinearBandit problems, got {problems!r}")
    problems = list(problems)
    if not problems:
        raise ValueError("problems: need at least one problem to stack")
    strangers = [type(p).__name__ for p in problems if not isinstance(p, LinearBandit)]
    if strangers:
        raise ValueError(f"problems: expected LinearBandit problems, got {strangers[0]}")
    shapes = {p.features.shape for p in problems}
    if len(shapes) != 1:
        raise ValueError(f"problems: all problems must have the same shapes, got {sorted(shapes)}")
    probs = [np.broadcast_to(p.context_probs, p.batch_shape + (p.n_contexts,)) for p in problems]
    return LinearBandit(np.stack([p.features for p in problems]), np.stack([p.theta for p in problems]),
                        np.stack([p.ref_logprobs for p in problems]), np.stack(probs))


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProblemConfig:
    """A named scenario and its sizes; ``make_problem`` turns it into a LinearBandit.

    Attributes:
        scenario: a key of :data:`SCENARIOS`.
        n_contexts, n_actions, dim: X, K, d.
        theta_norm: ‖θ*‖ (rewards lie in [−‖θ*‖, ‖θ*‖]).
        ref_scale: spread of π0's logits (0 = uniform π0).
        shift: scenario strength (how little mass π0 puts on the best actions under
            ``coverage_shift``; the gap between good and bad actions under ``few_good``).
        n_good: number of good actions per context under ``few_good``.
        seed: seed of the generator that draws the problem.
    """

    scenario: str = "random"
    n_contexts: int = 8
    n_actions: int = 16
    dim: int = 4
    theta_norm: float = 2.0
    ref_scale: float = 1.0
    shift: float = 3.0
    n_good: int = 2
    seed: int = 0

    def __post_init__(self):
        check_choice(self.scenario, "scenario", SCENARIOS)
        check_positive_ints(self, ("n_contexts", "n_actions", "dim", "n_good"))
        check_int(self.seed, "seed", minimum=0)
        if self.n_actions < 2:
            raise ValueError(f"n_actions: a comparison needs at least 2 actions, got {self.n_actions}")
        check_positive_float(self.theta_norm, "theta_norm")
        check_positive_float(self.ref_scale, "ref_scale", allow_zero=True)
        if not self.ref_scale <= _MAX_REF_SCALE:
            raise ValueError(f"ref_scale: π0's logits ref_scale·N(0, 1) must stay finite; expected <= "
                             f"{_MAX_REF_SCALE:g}, got {self.ref_scale}")
        if isinstance(self.shift, (str, bytes)) or not np.isfinite(float(self.shift)):
            raise ValueError(f"shift: must be a finite real number, got {self.shift!r}")
        if not (1 <= self.n_good <= self.n_actions):
            raise ValueError(f"n_good: must be in [1, n_actions={self.n_actions}], got {self.n_good}")


#: Largest ref_scale: beyond it π0 is one-hot to machine precision and its logits overflow.
_MAX_REF_SCALE = 1e100


def _unit_ball(rng: np.random.Generator, shape: tuple[int, ...], dim: int) -> np.ndarray:
    """Random vectors with directions uniform on the sphere and norms uniform in [0.5, 1]."""
    v = rng.standard_normal(shape + (dim,))
    v /= np.linalg.norm(v, axis=-1, keepdims=True)
    return v * rng.uniform(0.5, 1.0, shape + (1,))


def _theta(rng: np.random.Generator, config: ProblemConfig) -> np.ndarray:
    theta = rng.standard_normal(config.dim)
    return config.theta_norm * theta / np.linalg.norm(theta)


def _random(config: ProblemConfig, rng: np.random.Generator) -> LinearBandit:
    """Random features in the unit ball, random θ*, π0 = softmax of Gaussian logits."""
    features = _unit_ball(rng, (config.n_contexts, config.n_actions), config.dim)
    theta = _theta(rng, config)
    ref = normalize_logits(config.ref_scale * rng.standard_normal((config.n_contexts, config.n_actions)))
    return LinearBandit(features, theta, ref)


def _coverage_shift(config: ProblemConfig, rng: np.random.Generator) -> LinearBandit:
    """π0 anti-correlated with r*: log π0 ∝ −shift·standardised r*, so the best actions are rare
    under π0 (but never impossible)."""
    features = _unit_ball(rng, (config.n_contexts, config.n_actions), config.dim)
    theta = _theta(rng, config)
    rewards = features @ theta
    z = (rewards - rewards.mean(axis=-1, keepdims=True)) / (rewards.std(axis=-1, keepdims=True) + 1e-12)
    noise = config.ref_scale * 0.25 * rng.standard_normal(z.shape)
    return LinearBandit(features, theta, normalize_logits(-config.shift * z + noise))


def _few_good(config: ProblemConfig, rng: np.random.Generator) -> LinearBandit:
    """Only ``n_good`` actions per context have a high reward: their features point along θ*,
    the others point away from it by ``shift``/‖θ*‖ in reward units."""
    theta = _theta(rng, config)
    direction = theta / np.linalg.norm(theta)
    x, k, d = config.n_contexts, config.n_actions, config.dim
    noise = 0.3 * _unit_ball(rng, (x, k), d)
    sign = np.full((x, k), -1.0)
    for row in range(x):
        sign[row, rng.choice(k, size=config.n_good, replace=False)] = 1.0
    raw = 0.7 * sign[..., None] * direction + noise
    features = raw / np.maximum(1.0, np.linalg.norm(raw, axis=-1, keepdims=True))
    ref = normalize_logits(config.ref_scale * rng.standard_normal((x, k)))
    return LinearBandit(features, theta, ref)


#: Scenario name → builder ``(config, rng) -> LinearBandit``.
SCENARIOS: dict[str, Callable[[ProblemConfig, np.random.Generator], LinearBandit]] = {
    "random": _random,
    "coverage_shift": _coverage_shift,
    "few_good": _few_good,
}


def make_problem(config: ProblemConfig) -> LinearBandit:
    """Build the scenario ``config.scenario`` from ``config.seed``; same config → same problem."""
    check_instance(config, ProblemConfig, "config")
    return SCENARIOS[config.scenario](config, np.random.default_rng(config.seed))


def make_problems(config: ProblemConfig, seeds) -> LinearBandit:
    """One problem per seed (``config`` with ``seed`` replaced), stacked on a leading axis."""
    from dataclasses import replace

    check_instance(config, ProblemConfig, "config")
    if seeds is None or isinstance(seeds, (str, bytes)):
        raise ValueError(f"seeds: expected a sequence of integer seeds, got {seeds!r}")
    values = np.asarray(list(seeds) if not isinstance(seeds, np.ndarray) else seeds)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"seeds: expected a non-empty 1-d sequence of seeds, got shape {values.shape}")
    integral = np.issubdtype(values.dtype, np.integer) or (
        np.issubdtype(values.dtype, np.floating) and np.isfinite(values).all() and (values == np.round(values)).all())
    if not integral or (values < 0).any():
        raise ValueError(f"seeds: expected integers >= 0, got {values.tolist()}")
    return stack_problems(make_problem(replace(config, seed=int(seed))) for seed in values)


# ---------------------------------------------------------------------------------------------
# Offline-coverage scenarios (issue 4: rlbandit.offline and benchmarks/offline.py)
# ---------------------------------------------------------------------------------------------

def _good_coverage(config: ProblemConfig, rng: np.random.Generator) -> LinearBandit:
    """Random features in the unit ball and a nearly uniform π0 (logits 0.2·ref_scale·N(0,1)):
    π0-vs-π0 comparisons explore every feature direction, so the data covers (π*, π0) well."""
    features = _unit_ball(rng, (config.n_contexts, config.n_actions), config.dim)
    theta = _theta(rng, config)
    ref = normalize_logits(0.2 * config.ref_scale * rng.standard_normal((config.n_contexts, config.n_actions)))
    return LinearBandit(features, theta, ref)


def _partial_coverage(config: ProblemConfig, rng: np.random.Generator) -> LinearBandit:
    """Data covers π* but not a few rarely compared *trap* actions along an unexplored direction.

    The last feature coordinate e_t is the unexplored direction. Ordinary actions live in the
    first d − 1 coordinates (radius ≤ 0.75). max(1, K // 8) trap actions per context have
    φ = 0.75·u + 0.6·e_t (+ tiny noise), u the unit direction of θ*'s explored part; θ* =
    ‖θ*‖(u − e_t)/√2, so a trap's true reward ≈ 0.1‖θ*‖ is far below the best ordinary action,
    yet with θ̂_t ≈ 0 (ridge shrinkage, few comparisons) it looks as good as the best. π0 puts log-mass
    −``shift`` on traps (rarely compared) and ``ref_scale``·N(0,1)/2 logits on the others.
    (With d = 1 there is no explored part: ordinary actions have φ = 0 and θ* = −‖θ*‖e_t.)
    """
    x, k, d = config.n_contexts, config.n_actions, config.dim
    n_traps = min(k, max(1, k // 8))
    u = np.zeros(d)
    if d > 1:
        explored = rng.standard_normal(d - 1)
        u[:-1] = explored / np.linalg.norm(explored)
    e_t = np.zeros(d)
    e_t[-1] = 1.0
    theta = config.theta_norm * (u - e_t) / np.linalg.norm(u - e_t)
    features = np.zeros((x, k, d))
    if d > 1:
        features[..., :-1] = 0.75 * _unit_ball(rng, (x, k), d - 1)
    logits = 0.5 * config.ref_scale * rng.standard_normal((x, k))
    for row in range(x):
        traps = rng.choice(k, size=n_traps, replace=False)
        jitter = 0.03 * _unit_ball(rng, (n_traps,), d)
        features[row, traps] = 0.75 * u + 0.6 * e_t + jitter
        logits[row, traps] = -config.shift
    features /= np.maximum(1.0, np.linalg.norm(features, axis=-1, keepdims=True))
    return LinearBandit(features, theta, normalize_logits(logits))


def _zhu_example(config: ProblemConfig, rng: np.random.Generator) -> LinearBandit:
    """The 4-action example of Zhu, Jordan & Jiao (2023, Thm 3.9) where MLE + greedy fails at every n.

    φ(a1) = (1,1,0), φ(a2) = (1,0,0), φ(a3) = 0, φ(a4) = (0,1,0), scaled by 1/√2 so ‖φ‖ ≤ 1, and
    θ* = √2(−1, 0.1, 0.9), so r* = (−0.9, −1, 0, 0.1): a4 is best; π0 is uniform. The example itself
    is X = 1, K = 4, d = 3 (the study uses those sizes); larger configs repeat the context
    ``n_contexts`` times, pad φ and θ* with zeros to d = max(3, dim) and add K = max(4, n_actions) − 4
    extra copies of a3. Pair it with the data design ``rlbandit.offline.DESIGNS['zhu_rare_pair']``
    (a2 vs a1 w.p. 1 − 1/n, a2 vs a3 w.p. 1/n): θ₂ is learned, θ₁ only from O(1) comparisons, so
    r̂(a1) ≥ r̂(a4) with constant probability at every n.
    """
    x, k, d = config.n_contexts, max(4, config.n_actions), max(3, config.dim)
    features = np.zeros((x, k, d))
    features[:, :4, :3] = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]) / np.sqrt(2.0)
    theta = np.zeros(d)
    theta[:3] = np.sqrt(2.0) * np.array([-1.0, 0.1, 0.9])
    return LinearBandit(features, theta, np.full((x, k), -np.log(k)))


SCENARIOS.update({
    "good_coverage": _good_coverage,
    "partial_coverage": _partial_coverage,
    "zhu_example": _zhu_example,
})
