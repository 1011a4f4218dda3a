"""rlbandit: the exact mathematics of KL-regularised RLHF in a linear contextual bandit.

Core names are imported eagerly (numpy/scipy only, so ``import rlbandit`` stays fast); the
algorithm modules (``offline``, ``online``, ``nash``, ``losses``, …) and the sampling oracles load
on first use.
"""

from __future__ import annotations

import importlib

from rlbandit.geometry import cholesky, covariance, mahalanobis_norm
from rlbandit.oracle import (
    expected_reward,
    gibbs,
    kl,
    log_partition,
    normalize_logits,
    optimal_value,
    value,
)
from rlbandit.preferences import PreferenceData, sample_actions, sample_categorical
from rlbandit.problem import (
    SCENARIOS,
    LinearBandit,
    ProblemConfig,
    make_problem,
    make_problems,
    stack_problems,
)
from rlbandit.reward import bt_loss, fit_bt

__version__ = "0.1.0"

__all__ = [
    "gibbs", "kl", "value", "optimal_value", "log_partition", "expected_reward", "normalize_logits",
    "PreferenceData", "sample_actions", "sample_categorical",
    "LinearBandit", "ProblemConfig", "make_problem", "make_problems", "stack_problems", "SCENARIOS",
    "fit_bt", "bt_loss", "covariance", "cholesky", "mahalanobis_norm",
]

#: Submodules loaded lazily on attribute access (some import torch).
_LAZY_MODULES = {"offline", "online", "nash", "general_preferences", "losses", "policies", "policy_gradient",
                 "dpo", "sampling_oracles", "study", "plots", "store", "runner", "reports", "cli", "enhancers",
                 "iterative", "nash_online", "offline_models", "pessimism", "optimistic", "preference_models",
                 "pg_fixed_points", "stats", "loading", "radii"}
#: Functions re-exported lazily from the module that defines them.
_LAZY_NAMES = {
    "best_of_n": "rlbandit.sampling_oracles",
    "best_of_n_kl": "rlbandit.sampling_oracles",
    "best_of_n_win_rate": "rlbandit.sampling_oracles",
    "best_of_n_kl_bound": "rlbandit.sampling_oracles",
    "select_top_per_prompt": "rlbandit.sampling_oracles",
    "select_top_k": "rlbandit.sampling_oracles",
    "load_results": "rlbandit.loading",
    "load_study": "rlbandit.loading",
    "list_studies": "rlbandit.loading",
}


def __dir__():
    return sorted(set(globals()) | _LAZY_MODULES | set(_LAZY_NAMES))


def __getattr__(name: str):
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    if name in _LAZY_MODULES:
        return importlib.import_module(f"rlbandit.{name}")
    raise AttributeError(f"module 'rlbandit' has no attribute {name!r}")
