"""Small valid inputs of the contract cases (:mod:`rlbandit.contract_cases`): X = 3 contexts,
K = 4 actions, d = 2 features; each call builds fresh arrays, so a probe may change them. Also the
clean-up functions of cases whose valid call registers something.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["rng", "rewards", "logp", "ref", "pol", "features", "theta", "diffs", "labels", "cov", "factor", "nu",
           "pref", "problem", "torch", "loss_kwargs", "skew", "data", "psi", "returns", "pref_config",
           "drop_probe_solver", "fit_mle", "drop_probe_method", "dpo_config", "tabular_policy", "preference_problem",
           "nash_config",
           "ucb_enhancer", "drop_probe_enhancer", "extragradient", "replicates"]



def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def rewards() -> np.ndarray:
    return np.array([[0.1, -0.3, 0.7, 0.2], [0.5, 0.0, -0.2, 0.4], [-0.1, 0.3, 0.2, -0.5]])


def logp(shift: float = 0.0) -> np.ndarray:
    logits = np.array([[0.2, -0.1, 0.4, 0.0], [0.3, 0.1, -0.2, 0.5], [0.0, 0.6, -0.4, 0.1]]) + shift * rewards()
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def ref() -> np.ndarray:
    return logp(0.0)


def pol() -> np.ndarray:
    return logp(1.5)


def features() -> np.ndarray:
    phi = np.stack([np.cos(np.arange(12.0)), np.sin(np.arange(12.0))], -1).reshape(3, 4, 2)
    return 0.9 * phi


def theta() -> np.ndarray:
    return np.array([0.8, -0.4])


def diffs() -> np.ndarray:
    return np.array([[0.5, -0.2], [-0.3, 0.7], [0.9, 0.1], [-0.6, -0.4], [0.2, 0.8], [0.4, -0.9]])


def labels() -> np.ndarray:
    return np.array([1.0, 0.0, 1.0, 0.0, 1.0, 1.0])


def cov() -> np.ndarray:
    return np.array([[1.5, 0.3], [0.3, 1.2]])


def factor() -> np.ndarray:
    return np.linalg.cholesky(cov())


def nu() -> np.ndarray:
    return np.einsum("xk,xkd->xd", np.exp(ref()), features())


def pref() -> np.ndarray:
    """P(a ≻ b | x) for X = 3, K = 4: σ of an antisymmetric matrix (so P + Pᵀ = 1, diagonal ½)."""
    s = np.array([[0.0, 0.8, -0.5, 0.3], [-0.8, 0.0, 0.6, -0.2], [0.5, -0.6, 0.0, 0.9], [-0.3, 0.2, -0.9, 0.0]])
    s = np.stack([s, 0.5 * s, -s])
    return 1.0 / (1.0 + np.exp(-s))


def problem(batched: bool = False):
    from rlbandit.problem import ProblemConfig, make_problem, make_problems

    config = ProblemConfig(n_contexts=3, n_actions=4, dim=2, seed=0)
    return make_problems(config, [0]) if batched else make_problem(config)


def torch(values) -> Any:
    import torch

    return torch.tensor(values, dtype=torch.float64)


def loss_kwargs() -> dict[str, Any]:
    return dict(policy_chosen_logps=torch([-1.2, -0.7, -2.0]), policy_rejected_logps=torch([-1.5, -0.9, -1.1]),
                ref_chosen_logps=torch([-1.3, -0.8, -1.9]), ref_rejected_logps=torch([-1.4, -1.0, -1.2]),
                beta=0.1, loss_type="sigmoid", label_smoothing=0.0)


def skew() -> np.ndarray:
    return np.array([[0.0, 0.7], [-0.7, 0.0]])


def data(batched: bool = False):
    from rlbandit.preferences import PreferenceData

    arrays = dict(contexts=np.array([0, 1, 2, 0, 1, 2]), actions1=np.array([0, 1, 2, 3, 0, 1]),
                  actions2=np.array([1, 2, 3, 0, 2, 3]), labels=np.array([1, 0, 1, 1, 0, 1]))
    return PreferenceData(**{k: a[None] if batched else a for k, a in arrays.items()})


def psi() -> np.ndarray:
    return np.array([[0.3, 0.5, -0.2], [-0.4, 0.1, 0.6], [0.2, -0.7, 0.3], [0.5, 0.2, -0.1], [-0.1, 0.4, 0.4],
                     [0.6, -0.3, 0.2]])


def returns():
    return torch([[1.0, 0.5, -0.2, 0.3], [0.2, 0.9, 0.4, -0.5]])


def pref_config():
    from rlbandit.general_preferences import PreferenceConfig

    return PreferenceConfig(n_contexts=3, n_actions=4, dim=2)


def drop_probe_solver() -> None:
    from rlbandit import nash

    for name in ("contract_probe", "no_such_choice"):  # the valid name and the probe's unknown one
        nash.SOLVERS.pop(name, None)


def fit_mle(problem, data, eta, options, rng):
    from rlbandit import offline

    return offline.METHODS["mle"].fit(problem, data, eta, options, rng)


def drop_probe_method() -> None:
    from rlbandit import offline

    for name in ("contract_probe", "no_such_choice"):
        offline.METHODS.pop(name, None)


def dpo_config():
    from rlbandit.dpo import DPOConfig

    return DPOConfig(steps=10, beta=0.5)


def tabular_policy(batched: bool = False):
    from rlbandit.policies import make_policy

    return make_policy("tabular", problem(batched), 0.5)


def nash_config():
    from rlbandit.nash_online import OnlineNashConfig

    return OnlineNashConfig(n_iterations=2, batch_size=8)


def preference_problem():
    from rlbandit.general_preferences import make_preference_problems

    return make_preference_problems(pref_config(), [0])


def ucb_enhancer():
    from rlbandit.enhancers import ENHANCERS

    return ENHANCERS["ucb"]


def drop_probe_enhancer() -> None:
    from rlbandit.enhancers import ENHANCERS

    for name in ("contract_probe", "no_such_choice"):
        ENHANCERS.pop(name, None)


def extragradient():
    from rlbandit import nash

    return nash.SOLVERS["extragradient"]


def replicates() -> np.ndarray:
    return np.array([0.3, 0.5, 0.4])
