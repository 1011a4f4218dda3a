"""Shared pytest setup: the repository root on ``sys.path`` (so ``from tests.strategies import …``
works under xdist), hypothesis profiles, and small seeded fixtures.

Hypothesis profiles (choose with ``HYPOTHESIS_PROFILE=dev``):

- ``ci`` (default): no per-example deadline (the machine is shared and timings are noisy) and
  derandomised, so a CI run is reproducible;
- ``dev``: random exploration, for hunting new counterexamples locally.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], print_blob=True)
settings.register_profile("ci", derandomize=True, **_COMMON)
settings.register_profile("dev", **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, fixed-seed generator per test."""
    return np.random.default_rng(20261121)


@pytest.fixture
def small_problem():
    """A small random LinearBandit (X=5, K=7, d=3)."""
    from rlbandit import ProblemConfig, make_problem

    return make_problem(ProblemConfig(scenario="random", n_contexts=5, n_actions=7, dim=3, seed=11))


@pytest.fixture
def batched_problems():
    """Three random LinearBandits stacked on a leading seed axis (S=3, X=4, K=6, d=3)."""
    from rlbandit import ProblemConfig, make_problems

    return make_problems(ProblemConfig(scenario="random", n_contexts=4, n_actions=6, dim=3), range(3))
