"""General (possibly intransitive) preferences: the named scenarios, and the toolkit's public face (DESIGN §4).

This module holds the scenario registry: :class:`PreferenceConfig` names a scenario and its sizes,
:data:`PREFERENCE_SCENARIOS` maps the name to a builder ``(config, rng) -> PreferenceProblem``, and
:func:`make_preference_problem(s) <make_preference_problems>` draw one problem (or one per seed,
stacked on a leading axis) with

    φ(x, a) ∈ R^d, ½ ≤ ‖φ‖ ≤ 1,   shape (X, K, d)          (one-hot for ``rps`` when d ≥ K)
    log π0 = normalize(ref_scale · N(0, 1)),   shape (X, K)
    P,   shape (X, K, K):
      bt                     σ(⟨θ, φ(a) − φ(b)⟩),  ‖θ‖ = theta_norm                  (A = 0)
      linear_general         σ(φ(a)ᵀAφ(b) + ⟨θ, φ(a) − φ(b)⟩),  A = −Aᵀ, ‖A‖_F = strength
      rps                    the K-cycle with margin = strength
      random_antisymmetric   ½ + ½·tanh(M − Mᵀ),  M ~ N(0, strength²)
      annotators             (1/J) Σ_j σ(⟨θ_j, φ(a) − φ(b)⟩),  ‖θ_j‖ = theta_norm

The preference-model mathematics (validation, payoff and win rate, the models, antisymmetric
features and the MLE of the linear general model, comparison sampling, :class:`PreferenceProblem`)
lives in :mod:`rlbandit.preference_models` and is re-exported here unchanged, so
``from rlbandit.general_preferences import ...`` reaches every public name of both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from rlbandit._checks import check_choice, check_instance, check_positive_float, check_positive_ints
from rlbandit.preference_models import (
    ANTISYMMETRY_TOL,
    PreferenceProblem,
    annotator_mixture,
    antisymmetric_features,
    bradley_terry,
    check_preference,
    condorcet_winner,
    fit_general,
    fit_general_preference,
    is_transitive,
    linear_general,
    linear_general_unchecked,
    pair_features,
    payoff,
    random_antisymmetric,
    rock_paper_scissors,
    sample_comparisons,
    unpack_weights,
    win_rate,
    win_rate_unchecked,
)

__all__ = [
    # re-exported from rlbandit.preference_models
    "ANTISYMMETRY_TOL",
    "check_preference",
    "bradley_terry",
    "linear_general",
    "linear_general_unchecked",
    "rock_paper_scissors",
    "random_antisymmetric",
    "annotator_mixture",
    "antisymmetric_features",
    "pair_features",
    "unpack_weights",
    "fit_general",
    "fit_general_preference",
    "sample_comparisons",
    "win_rate",
    "win_rate_unchecked",
    "payoff",
    "is_transitive",
    "condorcet_winner",
    "PreferenceProblem",
    # defined here
    "PreferenceConfig",
    "PREFERENCE_SCENARIOS",
    "make_preference_problem",
    "make_preference_problems",
]


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PreferenceConfig:
    """A named preference scenario (a key of :data:`PREFERENCE_SCENARIOS`) and its sizes.

    Attributes:
        scenario: ``bt``, ``linear_general``, ``rps``, ``random_antisymmetric`` or ``annotators``.
        n_contexts, n_actions, dim: X, K, d.
        theta_norm: ‖θ‖ of the transitive part (per annotator for ``annotators``).
        strength: size of the intransitive part (‖A‖_F for ``linear_general``, the scale of M for
            ``random_antisymmetric``, the margin for ``rps``); ignored by ``bt``.
        n_annotators: J for ``annotators``.
        ref_scale: spread of π0's logits (0 = uniform π0).
        seed: seed of the generator that draws the problem.
    """

    scenario: str = "linear_general"
    n_contexts: int = 8
    n_actions: int = 8
    dim: int = 4
    theta_norm: float = 1.0
    strength: float = 4.0
    n_annotators: int = 3
    ref_scale: float = 0.5
    seed: int = 0

    def __post_init__(self):
        check_choice(self.scenario, "scenario", PREFERENCE_SCENARIOS)
        check_positive_ints(self, ("n_contexts", "n_actions", "dim", "n_annotators"))
        if self.scenario == "rps" and self.n_actions < 3:
            raise ValueError(f"n_actions: the rps scenario needs at least 3 actions, got {self.n_actions}")
        if self.scenario in ("linear_general",) and self.dim < 2:
            raise ValueError(f"dim: the linear general model needs d >= 2, got {self.dim}")
        for name in ("theta_norm", "strength", "ref_scale"):
            check_positive_float(getattr(self, name), name, allow_zero=True)
        if self.scenario == "rps" and not (0 < self.strength <= 1):
            raise ValueError(f"strength: the rps margin must lie in (0, 1], got {self.strength}")


def _ball(rng, shape, dim):
    v = rng.standard_normal(shape + (dim,))
    v /= np.linalg.norm(v, axis=-1, keepdims=True)
    return v * rng.uniform(0.5, 1.0, shape + (1,))


def _direction(rng, dim, norm):
    v = rng.standard_normal(dim)
    return norm * v / max(np.linalg.norm(v), 1e-12)


def _ref(rng, config):
    logits = config.ref_scale * rng.standard_normal((config.n_contexts, config.n_actions))
    return logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)


def _scenario_linear(config: PreferenceConfig, rng: np.random.Generator, strength: float) -> PreferenceProblem:
    features = _ball(rng, (config.n_contexts, config.n_actions), config.dim)
    theta = _direction(rng, config.dim, config.theta_norm)
    m = rng.standard_normal((config.dim, config.dim))
    skew = m - m.T
    norm = np.linalg.norm(skew)
    skew = strength * skew / norm if norm > 0 else skew
    pref = linear_general_unchecked(features, skew, theta)
    return PreferenceProblem(features, _ref(rng, config), pref, skew=skew, theta=theta)


def _bt(config, rng):
    """Linear BT: A = 0 (transitive)."""
    return _scenario_linear(config, rng, 0.0)


def _linear_general_scenario(config, rng):
    """Linear general model with ‖A‖_F = strength: intransitive when A dominates θ."""
    return _scenario_linear(config, rng, config.strength)


def _rps(config, rng):
    """K-cycles in every context, features one-hot (so the linear general model is well specified
    when d ≥ K; otherwise random features)."""
    pref = rock_paper_scissors(config.n_contexts, config.n_actions, config.strength)
    if config.dim >= config.n_actions:
        features = np.broadcast_to(np.eye(config.n_actions, config.dim), (config.n_contexts, config.n_actions, config.dim)).copy()
    else:
        features = _ball(rng, (config.n_contexts, config.n_actions), config.dim)
    return PreferenceProblem(features, _ref(rng, config), pref)


def _random_antisymmetric(config, rng):
    """P = ½ + ½ tanh(M − Mᵀ) per context with M ~ N(0, strength²); random features."""
    features = _ball(rng, (config.n_contexts, config.n_actions), config.dim)
    pref = random_antisymmetric((config.n_contexts, config.n_actions), rng, config.strength)
    return PreferenceProblem(features, _ref(rng, config), pref)


def _annotators(config, rng):
    """A uniform mixture of J BT annotators with independent θ_j (‖θ_j‖ = theta_norm)."""
    features = _ball(rng, (config.n_contexts, config.n_actions), config.dim)
    thetas = np.stack([_direction(rng, config.dim, config.theta_norm) for _ in range(config.n_annotators)])
    return PreferenceProblem(features, _ref(rng, config), annotator_mixture(features, thetas))


#: Scenario name → builder ``(config, rng) -> PreferenceProblem``.
PREFERENCE_SCENARIOS: dict[str, Callable[[PreferenceConfig, np.random.Generator], PreferenceProblem]] = {
    "bt": _bt,
    "linear_general": _linear_general_scenario,
    "rps": _rps,
    "random_antisymmetric": _random_antisymmetric,
    "annotators": _annotators,
}


def make_preference_problem(config: PreferenceConfig) -> PreferenceProblem:
    """Build ``config.scenario`` from ``config.seed``; same config → same problem."""
    check_instance(config, PreferenceConfig, "config")
    return PREFERENCE_SCENARIOS[config.scenario](config, np.random.default_rng(config.seed))


def make_preference_problems(config: PreferenceConfig, seeds) -> PreferenceProblem:
    """One problem per seed, stacked on a leading axis (true A, θ stacked when every problem has them)."""
    from dataclasses import replace

    check_instance(config, PreferenceConfig, "config")
    if seeds is None or isinstance(seeds, (str, bytes)):
        raise ValueError(f"seeds: expected a sequence of integer seeds, got {seeds!r}")
    values = np.asarray(list(seeds) if not isinstance(seeds, np.ndarray) else seeds)
    integral = values.size == 0 or np.issubdtype(values.dtype, np.integer) or (
        np.issubdtype(values.dtype, np.floating) and np.isfinite(values).all() and (values == np.round(values)).all())
    if values.ndim != 1 or not integral or (values < 0).any():
        raise ValueError(f"seeds: expected a 1-d sequence of integers >= 0, got {values.tolist()}")
    problems = [make_preference_problem(replace(config, seed=int(s))) for s in values]
    if not problems:
        raise ValueError("seeds: need at least one seed")
    stack = lambda name: np.stack([getattr(p, name) for p in problems])  # noqa: E731
    has_linear = all(p.skew is not None for p in problems)
    return PreferenceProblem(stack("features"), stack("ref_logprobs"), stack("pref"),
                             np.stack([p.context_probs for p in problems]),
                             stack("skew") if has_linear else None, stack("theta") if has_linear else None)
