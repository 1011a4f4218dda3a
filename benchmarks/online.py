"""Study ``online``: when does exploration pay in online iterative RLHF? (issue 5; DESIGN §3)

Xiong et al. (ICML 2024), Algorithm 2, in the exact linear bandit: D = D_off (possibly empty);
for t = 1..T, θ̂_t = MLE(D), main agent π¹_t = O(φθ̂_t, η, π0), an enhancer π²_t, and m new
Bradley–Terry comparisons of a¹ ∼ π¹_t against a² ∼ π²_t. For every scenario × η the sweep runs,
on the same seeded problems:

- ``online``: each enhancer of ``configs``'s ``enhancers`` (default :data:`ENHANCER_ORDER`) from an empty D;
- ``offline``: MLE on π0-vs-π0 comparisons with the same budget (n = (t−1)·m at iteration t);
- ``hybrid``: D_off = ``n_offline`` π0-vs-π0 comparisons, then online with ``reference``
  (Option II — the paper's hybrid algorithm), ``optimistic``, ``ucb`` and ``self``;
- on ``coverage_shift``, a β sweep (β = scale × the theory's β) for ``optimistic`` and ``ucb``;
- ``part = "long"``: budgets up to 3840 comparisons (m = 256) at η = 0.1 for a subset of enhancers;
- ``part = "mxT"``: the m × T trade-off at a fixed fitted budget (T − 1)·m = 512 comparisons;
- ``part = "dim"``: the dependence on d at the main sweep's budget (η = 0.1, d ∈ :data:`DIMS`).

Each row is one seed × iteration: SubOpt of π¹_t (the last iterate — a practical output rule,
computable without knowing θ*), the held-out rule (the iterate s ≤ t whose θ̂_s fits ``n_heldout``
fresh π0-vs-π0 comparisons best; ``heldout_suboptimality``), the best iterate so far
min_{s≤t} SubOpt(π¹_s) (the theory's output rule: an *oracle*, since it reads the true SubOpt), KL(π¹_t‖π0), KL(π*‖π0)
(``kl_optimal_ref``), KL(π²_t‖π¹_t), ‖θ̂_t − θ*‖ and the enhancer's uncertainty
E_x‖φ(x,π_a¹) − φ(x,π_a²)‖_{Σ_t⁻¹}.

The pure-online enhancers are ``configs``'s ``enhancers`` (default :data:`ENHANCER_ORDER`); a
run's ``enhancer`` is checked against :data:`rlbandit.online.ENHANCERS` when the run starts, and a
registered enhancer the study does not know runs with the study's options from its own random
stream. A user's enhancer joins the study without copying it::

    import dataclasses, functools
    from benchmarks import online
    from rlbandit import enhancers

    enhancers.register("mine", my_enhancer)  # (EnhancerInput, EnhancerOptions, rng) -> Enhancement
    STUDY = dataclasses.replace(online.STUDY, name="online_mine", configs=functools.partial(
        online.configs, enhancers=online.ENHANCER_ORDER + ("mine",)))

The report lists the built-in enhancers first, then the others by name.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rlbandit._checks import check_choice, check_positive_float, check_positive_ints
from rlbandit.study import Study, deferred

SCENARIOS = ("coverage_shift", "partial_coverage", "few_good", "random")
ENHANCER_ORDER = ("optimistic", "ucb", "uniform", "rejection", "reference", "self")
HYBRID_ENHANCERS = ("reference", "optimistic", "ucb", "self")
MODES = ("online", "offline", "hybrid")
#: ``main``: the headline grid (T = 16, m = 32); ``long``: larger budgets; ``mxT``: m × T at a fixed budget.
PARTS = ("main", "long", "mxT", "dim")
#: The long-budget cells: η = 0.1, m = 256, T = 16 (3840 comparisons for the final main agent).
LONG_ENHANCERS = ("optimistic", "ucb", "uniform", "self")
LONG_M = 256
#: The m × T cells: (T, m) with (T − 1)·m = 512 comparisons for the final main agent.
MXT_GRID = ((5, 128), (9, 64), (17, 32), (33, 16))
MXT_SCENARIOS = ("coverage_shift", "random")
MXT_ENHANCERS = ("optimistic", "ucb", "self")
EXPLORERS = ("optimistic", "ucb", "uniform")
#: The dimension cells: η = 0.1, the main sweep's T and m, d ∈ DIMS (the main sweep has d = 4).
DIMS = (2, 4, 8, 16)
DIM_SCENARIOS = ("coverage_shift", "random")
DIM_ENHANCERS = ("optimistic", "ucb", "self")
#: The plotted/tabulated label of a run: the enhancer, or "offline (π0 data)".
OFFLINE_LABEL = "offline (π0 data)"


@dataclass(frozen=True)
class OnlineConfig:
    """One run: one scenario × η × mode (× enhancer × β scale), vectorised over ``n_seeds`` problems.

    Attributes:
        scenario: a key of rlbandit.SCENARIOS.
        eta: η > 0.
        mode: ``online`` (empty D_off), ``hybrid`` (``n_offline`` π0 comparisons first) or
            ``offline`` (π0-only data at the same budgets; ``enhancer`` is ignored, use "").
        enhancer: a key of rlbandit.online.ENHANCERS (online / hybrid).
        beta_scale: β = beta_scale × the theory's β (rlbandit.online.theory_beta).
        T, m: iterations and comparisons per iteration.
        n_offline: |D_off| of the hybrid runs (and the offline curve extends to n_offline + T·m).
        n_seeds: problems per run (seeds base_seed·1000 + i), the same for every run of a scenario.
        n_contexts, n_actions, dim, theta_norm, shift: the scenario's sizes (rlbandit.ProblemConfig).
        reg: λ of the MLE and of Σ_t.
        n_draws: n of the ``rejection`` enhancer.
        base_seed: seeds the problems and the comparison streams.
        part: a key of :data:`PARTS` (which table of the report the run feeds; the same seeds).
        n_heldout: fresh π0-vs-π0 comparisons per seed kept out of D (online / hybrid): the practical
            output rule picks the iterate whose θ̂_t has the best log-likelihood on them
            (rlbandit.online.select_by_heldout); 0 = none. They are not counted in the budget.
    """

    scenario: str = "coverage_shift"
    eta: float = 1.0
    mode: str = "online"
    enhancer: str = "optimistic"
    beta_scale: float = 1.0
    T: int = 16
    m: int = 32
    n_offline: int = 256
    n_seeds: int = 24
    n_contexts: int = 8
    n_actions: int = 16
    dim: int = 4
    theta_norm: float = 2.0
    shift: float = 3.0
    reg: float = 1.0
    n_draws: int = 8
    base_seed: int = 0
    part: str = "main"
    n_heldout: int = 256

    def __post_init__(self):
        from rlbandit.online import ENHANCERS
        from rlbandit.problem import SCENARIOS as registry

        check_choice(self.scenario, "scenario", registry)
        check_positive_float(self.eta, "eta")
        if self.mode not in MODES:
            raise ValueError(f"mode: must be one of {MODES}, got {self.mode!r}")
        check_choice(self.part, "part", PARTS)
        if self.mode != "offline":
            check_choice(self.enhancer, "enhancer", ENHANCERS)
        check_positive_float(self.beta_scale, "beta_scale", allow_zero=True)
        check_positive_ints(self, ("T", "m", "n_seeds", "n_contexts", "n_actions", "dim", "n_draws"), numpy_ints=False)
        if not isinstance(self.n_offline, int) or self.n_offline < 0 or (self.mode == "hybrid" and self.n_offline < 1):
            raise ValueError(f"n_offline: must be an integer >= 0 (>= 1 for hybrid), got {self.n_offline!r}")
        if not isinstance(self.n_heldout, int) or self.n_heldout < 0:
            raise ValueError(f"n_heldout: must be an integer >= 0, got {self.n_heldout!r}")
        if self.n_seeds < 2:
            raise ValueError(f"n_seeds: need at least 2 seeds, got {self.n_seeds}")
        check_positive_float(self.reg, "reg", finite=False)


def configs(smoke: bool, enhancers: tuple[str, ...] = ENHANCER_ORDER) -> list[OnlineConfig]:
    """Full: 4 scenarios × η ∈ {0.1, 1} × (6 online + offline + 4 hybrid) + a β sweep on
    ``coverage_shift``; 24 seeds, T = 16, m = 32; plus the ``long`` part (4 scenarios, η = 0.1,
    :data:`LONG_ENHANCERS` + offline, m = :data:`LONG_M`) and the ``mxT`` part (:data:`MXT_SCENARIOS`,
    η = 0.1, :data:`MXT_ENHANCERS` + offline, :data:`MXT_GRID`). Smoke: one tiny problem, every mode and part.

    ``enhancers``: the pure-online runs, keys of rlbandit.online.ENHANCERS (the hybrid runs and the
    β sweep keep their built-in enhancers)."""
    enhancers = _check_enhancers(enhancers)
    if smoke:
        small = dict(scenario="coverage_shift", eta=1.0, T=3, m=8, n_offline=16, n_seeds=3, n_contexts=3,
                     n_actions=5, dim=3)
        runs = [OnlineConfig(mode="online", enhancer=e, **small) for e in enhancers]
        runs += [OnlineConfig(mode="offline", enhancer="", **small),
                 OnlineConfig(mode="hybrid", enhancer="reference", **small),
                 OnlineConfig(mode="online", enhancer="ucb", beta_scale=0.25, **small),
                 OnlineConfig(mode="online", enhancer="self", part="long", **{**small, "T": 4, "m": 16})]
        runs += [OnlineConfig(mode=mode, enhancer=e, part="mxT", **{**small, "T": T, "m": m})
                 for T, m in ((2, 16), (3, 8)) for mode, e in (("online", "self"), ("offline", ""))]
        runs += [OnlineConfig(mode=mode, enhancer=e, part="dim", **{**small, "dim": d})
                 for d in (2, 4) for mode, e in (("online", "self"), ("offline", ""))]
        return runs
    runs = []
    for scenario in SCENARIOS:
        for eta in (0.1, 1.0):
            runs += [OnlineConfig(scenario=scenario, eta=eta, mode="online", enhancer=e) for e in enhancers]
            runs.append(OnlineConfig(scenario=scenario, eta=eta, mode="offline", enhancer=""))
            runs += [OnlineConfig(scenario=scenario, eta=eta, mode="hybrid", enhancer=e) for e in HYBRID_ENHANCERS]
            if scenario == "coverage_shift":
                runs += [OnlineConfig(scenario=scenario, eta=eta, mode="online", enhancer=e, beta_scale=s)
                         for e in ("optimistic", "ucb") for s in (0.1, 0.3, 3.0)]
    for scenario in SCENARIOS:
        runs += [OnlineConfig(scenario=scenario, eta=0.1, mode="online", enhancer=e, m=LONG_M, part="long")
                 for e in LONG_ENHANCERS]
        runs.append(OnlineConfig(scenario=scenario, eta=0.1, mode="offline", enhancer="", m=LONG_M, part="long"))
    for scenario in MXT_SCENARIOS:
        for T, m in MXT_GRID:
            runs += [OnlineConfig(scenario=scenario, eta=0.1, mode="online", enhancer=e, T=T, m=m, part="mxT")
                     for e in MXT_ENHANCERS]
            runs.append(OnlineConfig(scenario=scenario, eta=0.1, mode="offline", enhancer="", T=T, m=m, part="mxT"))
    for scenario in DIM_SCENARIOS:
        for dim in DIMS:
            runs += [OnlineConfig(scenario=scenario, eta=0.1, mode="online", enhancer=e, dim=dim, part="dim")
                     for e in DIM_ENHANCERS]
            runs.append(OnlineConfig(scenario=scenario, eta=0.1, mode="offline", enhancer="", dim=dim, part="dim"))
    return runs


def _check_enhancers(enhancers) -> tuple[str, ...]:
    """A non-empty tuple of distinct keys of rlbandit.online.ENHANCERS, read now (not at import)."""
    from rlbandit.online import ENHANCERS

    if isinstance(enhancers, str) or not enhancers or len(set(enhancers)) != len(tuple(enhancers)):
        raise ValueError(f"enhancers: expected a non-empty tuple of distinct names, got {enhancers!r}")
    for name in enhancers:
        check_choice(name, "enhancers", ENHANCERS)
    return tuple(enhancers)


def _stream(enhancer: str) -> int:
    """The enhancer's index in the comparison streams' seeds: 1..6 for the built-ins (as always),
    a stable hash of the name above them for any other registered enhancer."""
    if enhancer in ENHANCER_ORDER:
        return 1 + ENHANCER_ORDER.index(enhancer)
    return 1 + len(ENHANCER_ORDER) + zlib.crc32(enhancer.encode())


def _problems(config: OnlineConfig):
    from rlbandit.problem import ProblemConfig, make_problems

    problem_config = ProblemConfig(scenario=config.scenario, n_contexts=config.n_contexts, n_actions=config.n_actions,
                                   dim=config.dim, theta_norm=config.theta_norm, shift=config.shift)
    seeds = config.base_seed * 1000 + np.arange(config.n_seeds)
    return make_problems(problem_config, seeds), seeds


def run(config: OnlineConfig) -> pd.DataFrame:
    """One run, vectorised over the seeds; one row per seed × iteration (or budget)."""
    from rlbandit.online import (
        ENHANCERS,
        OnlineOptions,
        iterate,
        offline_baseline,
        theory_beta,
    )

    start = time.perf_counter()
    problems, seeds = _problems(config)
    # The offline data stream is the same for the offline curve and the hybrid runs' D_off.
    data_rng = np.random.default_rng([config.base_seed, 17])
    offline_total = config.n_offline + config.T * config.m
    offline_data = problems.sample_preferences(problems.ref_logprobs, problems.ref_logprobs, max(offline_total, 1),
                                               data_rng)
    if config.mode == "offline":
        sizes = np.unique(np.concatenate([np.arange(config.T) * config.m,
                                          config.n_offline + np.arange(config.T + 1) * config.m]))
        frame = offline_baseline(problems, config.eta, sizes, data_rng, reg=config.reg, data=offline_data)
        frame["iteration"] = frame["n_comparisons"] // config.m + 1
        frame["n_online"] = 0
        frame["method"] = OFFLINE_LABEL
    else:
        check_choice(config.enhancer, "enhancer", ENHANCERS)  # the registry as it is now, in this process
        options = OnlineOptions(reg=config.reg, n_draws=config.n_draws)
        bound = float(np.linalg.norm(problems.theta, axis=-1).max())
        beta = config.beta_scale * theory_beta(config.dim, config.T, config.m, config.reg, bound, options.delta)
        d_off = offline_data.take(np.arange(config.n_offline)) if config.mode == "hybrid" else None
        rng = np.random.default_rng([config.base_seed, _stream(config.enhancer), int(config.eta * 1000),
                                     int(round(config.beta_scale * 1000))])
        heldout = (problems.sample_preferences(problems.ref_logprobs, problems.ref_logprobs, config.n_heldout,
                                               np.random.default_rng([config.base_seed, 23]))
                   if config.n_heldout else None)
        frame = iterate(problems, config.eta, config.enhancer, config.T, config.m, rng, beta=beta, offline_data=d_off,
                        reg=options.reg, n_draws=options.n_draws, heldout_data=heldout)
        frame["method"] = config.enhancer
    kl_optimal = problems.kl_to_ref(problems.optimal_policy(config.eta))
    frame["kl_optimal_ref"] = np.asarray(kl_optimal)[frame["seed"].to_numpy()]
    frame["seed"] = seeds[frame["seed"].to_numpy()]
    frame["wall_s"] = time.perf_counter() - start
    print(f"[online] {config.scenario} η={config.eta} {config.mode} {config.enhancer or ''} "
          f"β×{config.beta_scale}: {frame['wall_s'].iloc[0]:.1f}s", flush=True)
    return frame


STUDY = Study(
    name="online",
    description=(
        "When does exploration pay in online iterative RLHF? Suboptimality of the main agent against the number of "
        "comparisons for every enhancer (optimistic Option I, UCB, uniform, rejection sampling best-vs-worst, "
        "reference π0 = Option II, self) × scenario × η, beside offline learning from π0 data with the same budget; "
        "hybrid (offline π0 data + online) against pure online; a β sweep; budgets up to 3840 comparisons; the m × T "
        "trade-off at a fixed budget."
    ),
    configs=configs,
    run=run,
    report=deferred("benchmarks.online_report:report"),
    timing_columns=("wall_s",),  # stored apart: result files stay bit-reproducible
    symbols={
        "n_online": r"online comparisons $(t-1)\,m$",
        "best_suboptimality": r"oracle best-iterate SubOpt $\min_{s \leq t}$ SubOpt$(\pi^1_s)$",
        "heldout_suboptimality": r"held-out-selected SubOpt",
        "kl_enhancer_main": r"$\mathrm{KL}(\pi^2_t\|\pi^1_t)$",
        "uncertainty": r"$\mathbb{E}_x\|\phi(x,\pi^1)-\phi(x,\pi^2)\|_{\Sigma_t^{-1}}$",
    },
    tags=("bandit", "online"),
)
