"""Your own offline method in the built-in ``offline`` study, without copying the study:

    rlbandit run examples/custom_method.py [--smoke] [--workers N]     # → results/offline_shrunk/
    rlbandit report examples/custom_method.py [--smoke]

The method — the MLE's reward scaled by s ∈ (0, 1], a pessimism that needs no Σ_D — is registered
with ``rlbandit.offline.register``; the study reads the registry when each run starts (process
workers import this file first, so they see it too) and reports it beside mle, the LCBs and the
ensembles on the same data.
"""

import dataclasses
import functools

import numpy as np

import rlbandit as rb
from rlbandit import kernels, offline


@dataclasses.dataclass(frozen=True)
class ShrunkOptions:
    """reg: ridge λ > 0 of the MLE; shrink: s ∈ (0, 1]."""

    reg: float = 1.0
    shrink: float = 0.5

    def __post_init__(self):
        if not self.reg > 0:
            raise ValueError(f"reg: must be > 0, got {self.reg}")
        if not 0 < self.shrink <= 1:
            raise ValueError(f"shrink: must lie in (0, 1], got {self.shrink}")


def shrunk_mle(problem, data, eta, options: ShrunkOptions, rng):
    """π̂ = O(s·φθ̂, η, π0): shrinking r̂ toward 0 pulls π̂ toward π0, as a larger η would."""
    model = offline.fit_reward(problem, data, options.reg)
    rewards = np.einsum("...xkd,...d->...xk", problem.features, options.shrink * model.theta)
    return kernels.gibbs(rewards, problem.ref_logprobs, eta)


offline.register("shrunk_mle", shrunk_mle, ShrunkOptions)

_BUILT_IN = rb.load_study("offline")
STUDY = dataclasses.replace(
    _BUILT_IN, name="offline_shrunk",
    configs=functools.partial(_BUILT_IN.configs, methods=("mle", "lcb", "lcb_policy", "ensemble_min",
                                                          "ensemble_mean_std", "shrunk_mle")))
