"""Study ``rate``: how fast does Gibbs(MLE) converge, and with what constant? (issues 3, 13; DESIGN §2)

Data: n Bradley–Terry comparisons x ∼ d0, a¹, a² ∼ π0 (good coverage). θ̂ = ridge BT MLE
(λ = ``reg``), π̂ = O(φθ̂, η, π0). The exact SubOpt(π̂) = J*(π*) − J*(π̂) is measured on
``n_seeds`` seeded problems at log-spaced n (nested data: the first n comparisons of one stream,
so each seed's curve is a path, as in practice).

The bounds of the pessimism/MLE literature have the shape √d·C*/√n (slope −½ on log–log axes).
For a fixed η > 0 the KL-regularised objective is strongly concave in π, and Fact 2 of DESIGN
gives SubOpt(π̂) = η E_x KL(π̂‖π*) ≈ (1/2η) E_x Var_π*(⟨φ, θ̂ − θ*⟩): quadratic in the reward
error, so with √n(θ̂ − θ*) → N(0, I(θ*)⁻¹) the plug-in policy has the exact limit
n·E SubOpt → tr(E_x Cov_π*(φ) · I(θ*)⁻¹)/(2η) (``rlbandit.asymptotics.subopt_constant``; I is the
BT Fisher information per π0 × π0 comparison, the ridge drops out). Each run stores that
prediction per seed × η beside the measurement, and ``n_loc`` = tr(E_x Cov_π0(φ) I⁻¹)/η², the n
at which the typical reward error reaches η (the expansion needs n ≫ n_loc).

Each run is one scenario × d, vectorised over seeds, and evaluates every η on the same θ̂
(the MLE does not depend on η). Rows: seed × n × η with SubOpt, the combined metric
J*(π*) − J*(π̂) + η KL(π*‖π̂), KL(π̂‖π*), KL(π̂‖π0), ‖θ̂ − θ*‖, and the per-seed predictions
``predicted`` (lim n·SubOpt), ``cov_star`` (tr E_x Cov_π*(φ)), ``n_loc``. The report is
``benchmarks/rate_report.py``.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rlbandit._checks import (
    check_choice,
    check_int,
    check_positive_float,
    check_positive_ints,
)
from rlbandit.study import Study, deferred

__all__ = ["RateConfig", "configs", "run", "STUDY", "SCENARIOS", "DIMS"]


@dataclass(frozen=True)
class RateConfig:
    """One run: a scenario × dimension d, every η in ``etas``, vectorised over ``n_seeds`` problems.

    Attributes:
        scenario: a key of rlbandit.SCENARIOS.
        dim: d.
        etas: the η values evaluated on the same θ̂ (each > 0).
        n_contexts, n_actions: X, K.
        n_seeds: problems (seeds base_seed·1000 + i).
        n_min, n_max, n_points: the n grid, ``n_points`` log-spaced integers in [n_min, n_max].
        reg: λ of the ridge BT MLE.
        base_seed: seeds the problems and the comparison stream.
        predict: also store the asymptotic predictions (``predicted``, ``cov_star``, ``n_loc``) per
            seed × η (exact sums over X·K² pairs; the report needs them).
    """

    scenario: str = "random"
    dim: int = 4
    etas: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)
    n_contexts: int = 20
    n_actions: int = 20
    n_seeds: int = 24
    n_min: int = 10
    n_max: int = 100_000
    n_points: int = 17
    reg: float = 1.0
    base_seed: int = 0
    predict: bool = True

    def __post_init__(self):
        from rlbandit import SCENARIOS

        check_choice(self.scenario, "scenario", SCENARIOS)
        check_positive_ints(self, ("dim", "n_contexts", "n_actions", "n_min"), numpy_ints=False)
        check_int(self.base_seed, "base_seed", minimum=0, numpy_ints=False)
        if not isinstance(self.n_seeds, int) or self.n_seeds < 2:
            raise ValueError(f"n_seeds: need at least 2 seeds for intervals, got {self.n_seeds!r}")
        if not isinstance(self.n_max, int) or self.n_max <= self.n_min:
            raise ValueError(f"n_max: must be an integer > n_min = {self.n_min}, got {self.n_max!r}")
        if not isinstance(self.n_points, int) or self.n_points < 3:
            raise ValueError(f"n_points: need at least 3 sizes to fit a slope, got {self.n_points!r}")
        if not isinstance(self.etas, tuple) or not self.etas or not all(np.isfinite(e) and e > 0 for e in self.etas):
            raise ValueError(f"etas: must be a non-empty tuple of finite η > 0, got {self.etas!r}")
        check_positive_float(self.reg, "reg")
        if not isinstance(self.predict, bool):
            raise ValueError(f"predict: expected a bool, got {self.predict!r}")

    @property
    def sizes(self) -> np.ndarray:
        return np.unique(np.geomspace(self.n_min, self.n_max, self.n_points).round().astype(int))


SCENARIOS = ("random", "coverage_shift")
DIMS = (2, 4, 8, 16)


def configs(smoke: bool) -> list[RateConfig]:
    """Full: scenarios {random, coverage_shift} × d ∈ {2, 4, 8, 16}, η ∈ {0.001, 0.01, 0.1, 1, 10},
    X = K = 20, 24 seeds, 17 sizes n ∈ [10, 10⁵]. Smoke: one tiny run per scenario."""
    if smoke:
        return [RateConfig(scenario=s, dim=2, etas=(0.1, 1.0), n_contexts=4, n_actions=5, n_seeds=4,
                           n_min=10, n_max=300, n_points=5) for s in SCENARIOS]
    return [RateConfig(scenario=s, dim=d) for s in SCENARIOS for d in DIMS]


def run(config: RateConfig) -> pd.DataFrame:
    """One scenario × d: SubOpt of Gibbs(φθ̂_n) for every n of the grid and every η, per seed."""
    from rlbandit import ProblemConfig, fit_bt, gibbs, kl, make_problems

    start = time.perf_counter()
    seeds = config.base_seed * 1000 + np.arange(config.n_seeds)
    problems = make_problems(ProblemConfig(scenario=config.scenario, n_contexts=config.n_contexts,
                                           n_actions=config.n_actions, dim=config.dim), seeds)
    rng = np.random.default_rng([config.base_seed, config.dim, zlib.crc32(config.scenario.encode())])
    sizes = config.sizes
    data = problems.sample_preferences(problems.ref_logprobs, problems.ref_logprobs, int(sizes[-1]), rng)
    diffs = problems.diffs(data)
    optimal = {eta: problems.optimal_policy(eta) for eta in config.etas}
    predictions = {eta: _predictions(problems, eta) if config.predict else {} for eta in config.etas}
    probs = np.broadcast_to(problems.context_probs, problems.batch_shape + (problems.n_contexts,))
    frames = []
    for n in sizes:
        theta = fit_bt(diffs[..., :n, :], data.labels[..., :n], config.reg)
        rewards = np.einsum("sxkd,sd->sxk", problems.features, theta)
        error = np.linalg.norm(theta - problems.theta, axis=-1)
        for eta in config.etas:
            policy = gibbs(rewards, problems.ref_logprobs, eta)
            kl_to_opt = (probs * kl(policy, optimal[eta])).sum(-1)
            frames.append(pd.DataFrame({
                "seed": seeds, "n": int(n), "eta": float(eta),
                "subopt": problems.suboptimality(policy, eta),
                "combined": problems.combined_metric(policy, eta),
                "kl_to_opt": kl_to_opt,
                "kl_to_ref": problems.kl_to_ref(policy),
                "theta_error": error,
                **predictions[eta],
            }))
    frame = pd.concat(frames, ignore_index=True)
    print(f"[rate] {config.scenario} d={config.dim}: {len(sizes)} sizes × {len(config.etas)} η × "
          f"{config.n_seeds} seeds in {time.perf_counter() - start:.1f}s", flush=True)
    return frame


def _predictions(problems, eta: float) -> dict[str, np.ndarray]:
    """Per seed: the predicted lim n·SubOpt, tr E_x Cov_π*(φ) and n_loc (rlbandit.asymptotics)."""
    from rlbandit import asymptotics

    cov = asymptotics.feature_covariance(problems, problems.optimal_policy(eta))
    return {"predicted": asymptotics.subopt_constant(problems, eta),
            "cov_star": np.trace(cov, axis1=-2, axis2=-1),
            "n_loc": asymptotics.local_sample_size(problems, eta)}


STUDY = Study(
    name="rate",
    description=("How fast does the plug-in policy Gibbs(φθ̂_MLE) approach π* as the number n of π0 comparisons "
                 "grows — the √d/√n shape of the bounds or the 1/n fast rate of KL-regularised objectives — with "
                 "what constant, and where does it change? Sweeps scenario × d × η × n (log-spaced) over 24 seeds; "
                 "beside each measurement, the exact asymptotic prediction lim n·SubOpt = tr(E_x Cov_π*(φ) "
                 "I(θ*)⁻¹)/(2η) of `rlbandit.asymptotics`."),
    configs=configs,
    run=run,
    report=deferred("benchmarks.rate_report:report"),
    symbols={
        "local_slope": r"local slope $d\log\mathrm{SubOpt}/d\log n$",
        "ratio": r"$n\,\mathrm{SubOpt}\;/\;\mathrm{tr}(C_\eta I^{-1})/(2\eta)$",
    },
    tags=("bandit", "offline", "rates"),
)


