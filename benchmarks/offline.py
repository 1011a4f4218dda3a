"""Study ``offline``: when does pessimism help offline KL-regularised RLHF, when does it cost, and
how should β be chosen? (issue 4; DESIGN §2)

For every scenario × η, a batch of problems (one per seed) is drawn; for every dataset size n a
dataset is sampled per seed from the scenario's data design, and every method of
:mod:`rlbandit.offline` learns a policy from it: plain MLE, the two LCBs (Option II pointwise
``lcb``, Option I policy-level ``lcb_policy``) over a β grid and the theory's β (both references
ν = φ(x,π0) and ν = 0), and the two ensembles. Each row records the exact SubOpt, the combined
metric, KL(π̂‖π0), the coverage coefficient, the confidence width ‖θ̂ − θ*‖_Σ and the theory's
bound for that β.

The methods are a config field, ``methods``: :data:`METHOD_ORDER` (the built-ins, which the report
compares; the default) followed by any other names, each checked against
:data:`rlbandit.offline.METHODS` when a run starts. A registered method the study does not know is
learned with its default options (``reg`` = the config's λ where it has one) from the same data as
the built-ins and recorded like ``mle``; it draws from its own random stream, so adding it leaves
the built-ins' results unchanged. A user's method joins the study without copying it::

    import dataclasses, functools
    from benchmarks import offline
    from rlbandit import offline as library

    library.register("mine", my_fit, MyOptions)  # (problem, data, eta, options, rng) -> log-probs
    STUDY = dataclasses.replace(offline.STUDY, name="offline_mine", configs=functools.partial(
        offline.configs, methods=offline.METHOD_ORDER + ("mine",)))
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from rlbandit._checks import check_choice, check_positive_float
from rlbandit.study import Study, deferred

#: Scenario → data design (rlbandit.offline.DESIGNS); the rest use π0-vs-π0 comparisons.
_DESIGN_OF = {"zhu_example": "zhu_rare_pair"}
#: What each scenario is meant to show (used in the report).
_SCENARIO_ROLE = {
    "good_coverage": "π0 near uniform: the data explores every direction",
    "partial_coverage": "data covers π*, but rarely compared trap actions lie along an unexplored direction",
    "zhu_example": "Zhu, Jordan & Jiao (2023) 4-action example: θ₁ seen O(1) times at every n",
    "coverage_shift": "π0 anti-correlated with r*: the best actions are rarely compared",
}
SCENARIOS = tuple(_SCENARIO_ROLE)
METHOD_ORDER = ("mle", "lcb", "lcb_policy", "ensemble_min", "ensemble_mean_std")
#: Rows the study adds beside the registry's methods: the norm-constrained MLE ‖θ‖ ≤ B (Zhu et al. 2023).
STUDY_ROWS = ("mle_bounded",)
#: Run kinds: the main sweep, the Option I solver timing, and the small sweeps of the coverage
#: coefficient (``coverage_shift``'s shift) and of the dimension d (same code as ``sweep``).
KINDS = ("sweep", "speed", "coverage", "dim")


@dataclass(frozen=True)
class OfflineConfig:
    """One run: a scenario at one η, all methods × n × β over ``n_seeds`` seeded problems.

    Attributes:
        scenario: a key of rlbandit.SCENARIOS (its data design comes from ``_DESIGN_OF``).
        eta: η > 0.
        n_values: dataset sizes n (comparisons per problem).
        n_seeds: problems (and datasets) per n, vectorised.
        betas: the β grid of the sweep for ``lcb`` / ``lcb_policy`` (0 = MLE); the theory's β
            (``self_normalized`` rule with B = ‖θ*‖ bound ``theta_norm``, δ = ``delta``) is added.
        beta_default: the β of the headline method comparison (must be in ``betas``).
        n_contexts, n_actions, dim, theta_norm, shift: the scenario's sizes (rlbandit.ProblemConfig).
        n_models, c: ensemble size and the std weight of mean − c·std.
        reg: the ridge λ of the MLE and of Σ_D.
        base_seed: seeds the problems (base_seed·1000 + i) and the data generator.
        methods: keys of rlbandit.offline.METHODS to learn (``sweep``): :data:`METHOD_ORDER`, then
            any other registered names.
        kind: ``"sweep"`` (methods × n × β), ``"coverage"`` / ``"dim"`` (the same computation, small
            sweeps of the shift of π0 away from π* and of d) or ``"speed"`` (Option I solvers timed
            against each other on the first n of ``n_values``: exact dual vs cvxpy, as ratios).
    """

    scenario: str = "partial_coverage"
    eta: float = 0.1
    n_values: tuple = (25, 50, 100, 200, 400, 800, 1600, 3200)
    n_seeds: int = 24
    betas: tuple = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0)
    beta_default: float = 1.0
    n_contexts: int = 8
    n_actions: int = 16
    dim: int = 4
    theta_norm: float = 2.0
    shift: float = 3.0
    n_models: int = 5
    c: float = 1.0
    reg: float = 1.0
    delta: float = 0.1
    base_seed: int = 0
    methods: tuple = METHOD_ORDER
    kind: str = "sweep"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {KINDS}, got {self.kind!r}")
        if (not isinstance(self.methods, tuple) or self.methods[:len(METHOD_ORDER)] != METHOD_ORDER
                or len(set(self.methods)) != len(self.methods) or not all(isinstance(m, str) for m in self.methods)):
            raise ValueError(f"methods: expected the built-in methods {METHOD_ORDER} (the report compares against "
                             f"them) followed by other distinct method names, got {self.methods!r}")
        from rlbandit.problem import SCENARIOS as registry

        check_choice(self.scenario, "scenario", registry)
        check_positive_float(self.eta, "eta")
        if not self.n_values or any(int(n) != n or n < 1 for n in self.n_values):
            raise ValueError(f"n_values: need positive integers, got {self.n_values}")
        if self.n_seeds < 2:
            raise ValueError(f"n_seeds: need at least 2 seeds, got {self.n_seeds}")
        if any(b < 0 for b in self.betas) or self.beta_default not in self.betas:
            raise ValueError(f"betas: need β ≥ 0 containing beta_default={self.beta_default}, got {self.betas}")
        if self.n_models < 2:
            raise ValueError(f"n_models: ensembles need at least 2 members, got {self.n_models}")
        if not (self.reg > 0 and 0 < self.delta < 1 and self.c >= 0):
            raise ValueError("reg: must be > 0 (and delta in (0, 1), c >= 0)")


def configs(smoke: bool, methods: tuple[str, ...] = METHOD_ORDER) -> list[OfflineConfig]:
    """Four scenarios × η ∈ {0.1, 1}; the smoke sweep is two tiny runs. ``methods``: the sweep's
    methods (the config field of that name)."""
    if smoke:
        small = dict(eta=0.1, n_values=(50, 200), n_seeds=3, betas=(0.0, 1.0), dim=3, methods=methods)
        return [OfflineConfig(scenario="partial_coverage", n_contexts=3, n_actions=8, **small),
                OfflineConfig(scenario="zhu_example", n_contexts=1, n_actions=4, **small)]
    sizes = {"zhu_example": dict(n_contexts=1, n_actions=4, dim=3, n_seeds=64)}
    sweep = [OfflineConfig(scenario=s, eta=eta, methods=methods, **sizes.get(s, {})) for s in SCENARIOS
             for eta in (0.1, 1.0)]
    small = dict(n_values=(400,), betas=(0.0, 1.0), methods=methods)
    coverage = [OfflineConfig(scenario="coverage_shift", eta=eta, shift=shift, kind="coverage", **small)
                for eta in (0.1, 1.0) for shift in (0.0, 1.0, 2.0, 4.0, 6.0)]
    dims = [OfflineConfig(scenario="partial_coverage", eta=eta, dim=dim, kind="dim", **small)
            for eta in (0.1, 1.0) for dim in (2, 8, 16)]
    speed = [OfflineConfig(scenario="partial_coverage", eta=eta, n_values=(400,), n_seeds=8, n_contexts=x, n_actions=k,
                           kind="speed") for eta, x, k in ((0.1, 8, 16), (1.0, 8, 16), (1.0, 32, 64))]
    return sweep + coverage + dims + speed


def _speed(config: OfflineConfig) -> pd.DataFrame:
    """Option I solvers on the same batch: wall time (best of 3) and agreement, as ratios."""
    from rlbandit import offline
    from rlbandit.oracle import gibbs
    from rlbandit.problem import ProblemConfig, make_problems

    problems = make_problems(ProblemConfig(scenario=config.scenario, n_contexts=config.n_contexts,
                                           n_actions=config.n_actions, dim=config.dim), np.arange(config.n_seeds))
    data = offline.sample_offline_data(problems, int(config.n_values[0]), np.random.default_rng(config.base_seed))
    model = offline.fit_reward(problems, data, config.reg)
    nu = offline.reference_features(problems)
    args = (problems.features, model.theta, model.cov, nu, config.beta_default, problems.ref_logprobs, config.eta,
            problems.context_probs)
    timed = {
        "lcb_policy (dual)": lambda: offline.lcb_policy(*args, solver="dual"),
        "lcb_policy (cvxpy)": lambda: offline.lcb_policy(*args, solver="cvxpy"),
        "lcb (pointwise)": lambda: gibbs(offline.lcb_rewards(problems.features, model.theta, model.factor, nu,
                                                             config.beta_default), problems.ref_logprobs, config.eta),
    }
    seconds, values = {}, {}
    for name, call in timed.items():
        best = np.inf
        for _ in range(3):
            start = time.perf_counter()
            out = call()
            best = min(best, time.perf_counter() - start)
        seconds[name] = best
        values[name] = getattr(out, "value", None)
    gap = float(np.max(np.abs(values["lcb_policy (dual)"] - values["lcb_policy (cvxpy)"])))
    print(f"[offline] speed X={config.n_contexts} K={config.n_actions} η={config.eta}: "
          + ", ".join(f"{k} {v:.3f}s" for k, v in seconds.items()), flush=True)
    return pd.DataFrame([dict(solver=name, seconds=sec, ratio_to_cvxpy=sec / seconds["lcb_policy (cvxpy)"],
                              ratio_to_pointwise=sec / seconds["lcb (pointwise)"], value_gap=gap)
                         for name, sec in seconds.items()])


def _rows(problems, eta, seeds, n, method, logprobs, reference, beta, beta_rule, diag, bound_key) -> pd.DataFrame:
    """One row per seed: the exact metrics of a learned policy and, for the LCBs, its diagnostics."""
    probs = np.broadcast_to(problems.context_probs, problems.rewards.shape[:-1])
    row = dict(seed=seeds, n=n, method=method, reference=reference, beta=np.broadcast_to(beta, seeds.shape),
               beta_rule=beta_rule, suboptimality=problems.suboptimality(logprobs, eta),
               combined=problems.combined_metric(logprobs, eta), kl_to_ref=problems.kl_to_ref(logprobs),
               gold_reward=problems.gold_reward(logprobs),
               subopt_ref=problems.suboptimality(problems.ref_logprobs, eta),  # the SubOpt of doing nothing
               reward_span=np.einsum("...x,...x->...", probs, np.ptp(problems.rewards, axis=-1)))
    if diag is not None:
        row.update(width=diag.width, covered=diag.covered, coverage=diag.coverage, bound=getattr(diag, bound_key),
                   bound_mean_norm=diag.bound)
    return pd.DataFrame(row)


def _check_methods(methods) -> tuple[str, ...]:
    """The config's methods, each a key of rlbandit.offline.METHODS as the registry is now."""
    from rlbandit.offline import METHODS

    for name in methods:
        check_choice(name, "methods", METHODS)
    return tuple(methods)


def _default_options(name: str, config: OfflineConfig) -> dict:
    """A registered method's options in the study: its defaults, with the config's ridge λ where it has one."""
    from rlbandit.offline import METHODS

    return {"reg": config.reg} if "reg" in {f.name for f in fields(METHODS[name].options)} else {}


def _lcb_rows(record, problems, data, model, theory, radius, config: OfflineConfig) -> None:
    """The β sweep of both LCBs: both references ν, the fixed β grid, the theory β and (ν = φ(x,π0))
    the oracle β = the realised radius ‖θ̂ − θ*‖_Σ of each seed, the smallest β the theorem covers."""
    from rlbandit import offline
    from rlbandit.oracle import gibbs

    eta = config.eta
    settings = [("ref", "fixed", b) for b in config.betas] + [("ref", "theory", theory),
                                                                ("ref", "oracle", radius),
                                                                ("zero", "fixed", config.beta_default),
                                                                ("zero", "theory", theory)]
    for reference, beta_rule, beta in settings:
        nu = offline.reference_features(problems, reference)
        beta = np.broadcast_to(np.asarray(beta, dtype=np.float64), problems.batch_shape)
        diag = offline.diagnostics(problems, data, eta, beta, reference, model=model)
        rewards = offline.lcb_rewards(problems.features, model.theta, model.factor, nu, beta)
        record("lcb", gibbs(rewards, problems.ref_logprobs, eta), reference, beta, beta_rule, diag, "bound_pointwise")
        solution = offline.lcb_policy(problems.features, model.theta, model.cov, nu, beta, problems.ref_logprobs,
                                      eta, problems.context_probs)
        record("lcb_policy", solution.logprobs, reference, beta, beta_rule, diag, "bound_policy")


def run(config: OfflineConfig) -> pd.DataFrame:
    """All methods × n × β for one scenario and η, vectorised over the seeds (or the solver timing)."""
    if config.kind == "speed":
        return _speed(config)
    from rlbandit import offline
    from rlbandit.problem import ProblemConfig, make_problems

    extras = [name for name in _check_methods(config.methods) if name not in METHOD_ORDER]
    problem_config = ProblemConfig(scenario=config.scenario, n_contexts=config.n_contexts, n_actions=config.n_actions,
                                   dim=config.dim, theta_norm=config.theta_norm, shift=config.shift)
    seeds = config.base_seed * 1000 + np.arange(config.n_seeds)
    problems = make_problems(problem_config, seeds)
    theta_bound = float(np.linalg.norm(problems.theta, axis=-1).max())
    design = _DESIGN_OF.get(config.scenario, "reference")
    rng = np.random.default_rng([config.base_seed, 4])
    eta = config.eta
    frames = []
    for n in config.n_values:
        start = time.perf_counter()
        data = offline.sample_offline_data(problems, int(n), rng, design)
        model = offline.fit_reward(problems, data, config.reg)
        theory = offline.theory_beta(problems.diffs(data), config.reg, theta_bound, config.delta, model.theta)
        radius = offline.diagnostics(problems, data, eta, 0.0, model=model).width  # oracle: uses θ*

        def record(method, logprobs, reference="", beta=np.nan, beta_rule="", diag=None, bound_key=None, n=int(n)):
            frames.append(_rows(problems, eta, seeds, n, method, logprobs, reference, beta, beta_rule, diag, bound_key))

        record("mle", offline.learn(problems, data, eta, "mle", reg=config.reg), beta=0.0)
        record("mle_bounded", offline.learn(problems, data, eta, "mle", reg=config.reg, bound=theta_bound), beta=0.0)
        for method in ("ensemble_min", "ensemble_mean_std"):
            extra = {"c": config.c} if method == "ensemble_mean_std" else {}
            record(method, offline.learn(problems, data, eta, method, rng=rng, n_models=config.n_models,
                                         reg=config.reg, **extra), reference="ref")
        _lcb_rows(record, problems, data, model, theory, radius, config)
        for name in extras:  # each from its own random stream: the built-ins' draws stay as they are
            own = np.random.default_rng([config.base_seed, 4, int(n), zlib.crc32(name.encode())])
            record(name, offline.learn(problems, data, eta, name, rng=own, **_default_options(name, config)))
        print(f"[offline] {config.scenario} η={eta} n={n}: {time.perf_counter() - start:.1f}s", flush=True)
    frame = pd.concat(frames, ignore_index=True)
    frame["design"] = design
    return frame


STUDY = Study(
    name="offline",
    description=("Offline RLHF with pessimism (issue 4): exact SubOpt against n for MLE, pointwise and policy-level "
                 "LCB and reward ensembles, on four coverage scenarios × η ∈ {0.1, 1} with 24 seeds (64 on the Zhu "
                 "example); a β sweep with the theory's β, the coverage coefficient and the theory's bound beside the "
                 "realised SubOpt."),
    configs=configs,
    run=run,
    report=deferred("benchmarks.offline_report:report"),
    tags=("bandit", "offline", "pessimism"),
    timing_columns=("seconds", "ratio_to_cvxpy", "ratio_to_pointwise"),  # stored apart: results stay bit-reproducible
    symbols={
        "beta_with_zero": r"$\beta$ (leftmost point: $\beta = 0$, the MLE)",
        "subopt_or_bound": r"SubOpt$(\hat\pi)$ and its bound",
        "coverage_coefficient": r"measured coverage coefficient $C^*$ (median over seeds)",
    },
)
