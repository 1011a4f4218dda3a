"""Study ``nash``: general (intransitive) preferences — the KL-regularised Nash equilibrium against
BT-RLHF, online Nash learning, and the exact solvers (issue 6; DESIGN §4).

Four experiments (the ``experiment`` field of a config):

- ``offline``: per scenario (transitive BT, linear general model with cycles, a mixture of BT
  annotators, K-cycles) a batch of problems; at growing n comparisons from π0 × π0 the learned
  policies are (i) the Nash equilibrium of the MLE linear general model (``nash_learned``),
  (ii) BT-RLHF, Gibbs of the BT MLE reward (``bt_rlhf``); beside them the exact references: the
  true equilibrium (``nash_true``), BT-RLHF with infinite data (``bt_infinite``, the BT MLE under
  the population distribution of π0 × π0 pairs) and π0. Metrics are exact under the true P:
  exploitability, win rates against π0, BT-RLHF, the true equilibrium and the (unregularised)
  best response.
- ``intransitivity``: ``offline`` at one n on ``linear_general``, swept over η × ``strength`` = ‖A‖_F (the
  size of the intransitive part; 0 is BT): where does BT-RLHF lose, by neutral metrics?
- ``online``: the online iterative Nash loop (rlbandit.nash.run_online_nash) per enhancer.
- ``solvers``: iterations and wall time of every solver to a fixed-point residual ≤ 1e-10, as a
  ratio to extragradient in the same run, and the agreement between solvers; the final residual
  and ``converged`` (residual ≤ 1e-10; False when the solver stopped at its iteration cap).
- ``nash_md``: KL(π* ‖ π_T) of Nash-MD's iterates against Munos et al.'s Theorem 1 bounds:
  8/(τ²(T+1)) for the schedule η_t = 2/(τ(t+2)) (``md_step`` = 0), and (1 − sτ)^T KL_0 + 2s/τ for
  a constant step s = ``md_step``/τ; with ``md_samples`` = m > 0, stochastic Nash-MD
  (rlbandit.nash_dynamics: the opponent's expectation replaced by m samples per step), against the
  same bound in expectation.

The solvers timed are a config field, ``solvers`` (default :data:`SOLVER_ORDER`, the built-ins),
checked against :data:`rlbandit.nash.SOLVERS` when a run starts; a registered solver the study
does not know is timed like the built-ins (same tolerance, its registered iteration cap). A user's
solver joins the study without copying it::

    import dataclasses, functools
    from benchmarks import nash
    from rlbandit import nash as library

    library.register("mine", my_solver)  # (pref, ref, eta, *, tol, max_iter, init) -> (log π, iterations)
    STUDY = dataclasses.replace(nash.STUDY, name="nash_mine", configs=functools.partial(
        nash.configs, solvers=nash.SOLVER_ORDER + ("mine",)))
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rlbandit._checks import check_choice, check_positive_float
from rlbandit.study import Study, deferred

EXPERIMENTS = ("offline", "intransitivity", "online", "solvers", "nash_md")
#: The built-in solvers of rlbandit.nash.SOLVERS, in the order they are timed.
SOLVER_ORDER = ("fixed_point", "nash_md", "extragradient", "cvxpy")
#: The row of the ``solvers`` experiment that times extragradient one seed at a time.
SEED_LOOP = "extragradient_seed_loop"
#: The fixed-point residual every solver is asked to reach.
SOLVER_TOL = 1e-10
POLICY_ORDER = ("nash_true", "nash_learned", "bt_rlhf", "bt_infinite", "reference")
#: What each scenario is (used in the report).
SCENARIO_ROLE = {
    "bt": "Bradley–Terry on φθ (transitive; A = 0)",
    "linear_general": "linear general model, ‖A‖_F = strength (cycles)",
    "annotators": "uniform mixture of 3 BT annotators (Condorcet cycles in some contexts)",
    "rps": "K-cycles (generalised rock–paper–scissors) with one-hot features",
    "random_antisymmetric": "½ + ½·tanh(M − Mᵀ) (misspecified for the linear model)",
}


@dataclass(frozen=True)
class NashStudyConfig:
    """One run of the ``nash`` study.

    Attributes:
        experiment: ``offline``, ``online``, ``solvers`` or ``nash_md``.
        scenario: a key of rlbandit.general_preferences.PREFERENCE_SCENARIOS.
        eta: η > 0.
        n_seeds: problems per run (vectorised over a leading axis).
        n_contexts, n_actions, dim, theta_norm, strength, ref_scale: the scenario's sizes.
        n_values: dataset sizes of ``offline`` (nested prefixes of one dataset per seed).
        enhancer, n_iterations, batch_size, beta: the ``online`` loop.
        horizon: the largest T of ``nash_md``.
        md_step: ``nash_md``'s step: 0 for Theorem 1's schedule η_t = 2/(τ(t+2)); in (0, 1] a constant
            step md_step/τ.
        md_samples: ``nash_md``'s opponent samples per step (0: exact payoffs).
        reg: ridge λ of both MLEs (and of Σ in the online loop).
        base_seed: seeds the problems (base_seed·1000 + i) and the data.
        solvers: keys of rlbandit.nash.SOLVERS timed by ``solvers`` (with ``extragradient``, the
            reference of the time ratios).
    """

    experiment: str = "offline"
    scenario: str = "linear_general"
    eta: float = 0.1
    n_seeds: int = 16
    n_contexts: int = 8
    n_actions: int = 8
    dim: int = 4
    theta_norm: float = 1.0
    strength: float = 4.0
    ref_scale: float = 0.5
    n_values: tuple = (100, 300, 1000, 3000, 10000)
    enhancer: str = "ucb"
    n_iterations: int = 12
    batch_size: int = 100
    beta: float = 1.0
    horizon: int = 1024
    md_step: float = 0.0
    md_samples: int = 0
    reg: float = 1.0
    base_seed: int = 0
    solvers: tuple = SOLVER_ORDER

    def __post_init__(self):
        from rlbandit.general_preferences import PREFERENCE_SCENARIOS
        from rlbandit.nash import ENHANCERS

        if self.experiment not in EXPERIMENTS:
            raise ValueError(f"experiment: unknown experiment {self.experiment!r}; choose one of {EXPERIMENTS}")
        check_choice(self.scenario, "scenario", PREFERENCE_SCENARIOS)
        check_choice(self.enhancer, "enhancer", ENHANCERS)
        check_positive_float(self.eta, "eta")
        if self.n_seeds < 1:
            raise ValueError(f"n_seeds: must be >= 1, got {self.n_seeds}")
        if not self.n_values or any(int(n) != n or n < 1 for n in self.n_values):
            raise ValueError(f"n_values: need positive integers, got {self.n_values}")
        if list(self.n_values) != sorted(self.n_values):
            raise ValueError(f"n_values: must be increasing, got {self.n_values}")
        if not 0.0 <= self.md_step <= 1.0:
            raise ValueError(f"md_step: must lie in [0, 1] (0: the decreasing schedule), got {self.md_step}")
        if int(self.md_samples) != self.md_samples or self.md_samples < 0:
            raise ValueError(f"md_samples: must be a non-negative integer, got {self.md_samples}")
        if self.horizon < 1:
            raise ValueError(f"horizon: must be >= 1, got {self.horizon}")
        if (not isinstance(self.solvers, tuple) or "extragradient" not in self.solvers
                or len(set(self.solvers)) != len(self.solvers) or not all(isinstance(m, str) for m in self.solvers)):
            raise ValueError(f"solvers: expected a tuple of distinct solver names including 'extragradient' (the "
                             f"reference of the time ratios), got {self.solvers!r}")
        self.preference_config(0)  # validates the scenario's sizes

    def preference_config(self, seed: int):
        from rlbandit.general_preferences import PreferenceConfig

        return PreferenceConfig(self.scenario, self.n_contexts, self.n_actions, self.dim, self.theta_norm,
                                self.strength, 3, self.ref_scale, seed)

    def problems(self):
        from rlbandit.general_preferences import make_preference_problems

        seeds = [self.base_seed * 1000 + i for i in range(self.n_seeds)]
        return make_preference_problems(self.preference_config(seeds[0]), seeds)


#: The η × strength grid of the ``intransitivity`` experiment.
INTRANSITIVITY_ETAS = (0.01, 0.03, 0.1, 0.3)
INTRANSITIVITY_STRENGTHS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
#: Constant Nash-MD steps (× 1/τ) of the ``nash_md`` experiment.
MD_STEPS = (0.3, 0.03)
#: Opponent samples per step of stochastic Nash-MD.
MD_SAMPLES = (1, 16)

#: Scenario → overrides that make it what SCENARIO_ROLE says.
_SCENARIO_SIZES = {
    "bt": dict(theta_norm=3.0),
    "linear_general": dict(theta_norm=1.0, strength=4.0),
    "annotators": dict(theta_norm=4.0),
    "rps": dict(strength=0.8, dim=8),
    "random_antisymmetric": dict(strength=1.0),
}


def configs(smoke: bool, solvers: tuple[str, ...] = SOLVER_ORDER) -> list[NashStudyConfig]:
    """Offline, online, solvers and Nash-MD runs (full: 16 seeds; smoke: tiny). ``solvers``: the
    solvers the ``solvers`` experiment times (its config field of that name)."""
    size = dict(n_seeds=2, n_contexts=3, n_actions=4, n_values=(50, 200), n_iterations=2, batch_size=30,
                horizon=32) if smoke else {}
    out = []
    offline_scenarios = ("bt", "linear_general") if smoke else ("bt", "linear_general", "annotators", "rps",
                                                                  "random_antisymmetric")
    etas = (0.1,) if smoke else (0.01, 0.1)
    for scenario in offline_scenarios:
        for eta in etas:
            sizes = dict(_SCENARIO_SIZES[scenario], **size)
            if smoke and scenario == "rps":
                sizes["dim"] = 4
            out.append(NashStudyConfig("offline", scenario, eta, **sizes))
    # η × ‖A‖_F on linear_general at the largest n (strength 0 is BT with the same features).
    for eta in ((0.1,) if smoke else INTRANSITIVITY_ETAS):
        for strength in ((0.0, 4.0) if smoke else INTRANSITIVITY_STRENGTHS):
            sizes = dict(_SCENARIO_SIZES["linear_general"], **size)
            sizes.update(strength=strength, n_values=sizes.get("n_values", (10000,))[-1:])
            out.append(NashStudyConfig("intransitivity", "linear_general", eta, **sizes))
    # (scenario, η, overrides): the third setting has a peaked π0 (ref_scale 3) and a small η, so the
    # equilibrium lies where π0 rarely samples and exploration matters.
    online_settings = [("linear_general", 0.1, {})] if smoke else [
        ("linear_general", 0.1, {}), ("annotators", 0.1, {}),
        ("linear_general", 0.02, dict(ref_scale=3.0, n_actions=12))]
    enhancers = ("ucb", "reference") if smoke else ("ucb", "uncertainty", "reference", "self")
    for scenario, eta, extra in online_settings:
        for enhancer in enhancers:
            sizes = dict(_SCENARIO_SIZES[scenario], **extra)
            sizes.update(size)
            out.append(NashStudyConfig("online", scenario, eta, enhancer=enhancer, **sizes))
    for scenario in (("linear_general",) if smoke else ("linear_general", "random_antisymmetric", "bt")):
        for eta in ((0.1,) if smoke else (0.02, 0.1, 0.5)):
            out.append(NashStudyConfig("solvers", scenario, eta, solvers=solvers,
                                       **dict(_SCENARIO_SIZES[scenario], **size)))
    for scenario in (("linear_general",) if smoke else ("linear_general", "random_antisymmetric", "rps")):
        for eta in ((0.5,) if smoke else (0.1, 0.5, 2.0)):
            out.append(NashStudyConfig("nash_md", scenario, eta, **dict(_SCENARIO_SIZES[scenario], **size)))
    for eta in ((0.5,) if smoke else (0.5, 2.0)):  # stochastic Nash-MD, Theorem 1's schedule
        for samples in ((1,) if smoke else MD_SAMPLES):
            out.append(NashStudyConfig("nash_md", "linear_general", eta, md_samples=samples,
                                       **dict(_SCENARIO_SIZES["linear_general"], **size)))
    for eta in ((0.5,) if smoke else (0.1, 0.5, 2.0)):  # Theorem 1's constant-step form
        for md_step in ((0.1,) if smoke else MD_STEPS):
            out.append(NashStudyConfig("nash_md", "linear_general", eta, md_step=md_step,
                                       **dict(_SCENARIO_SIZES["linear_general"], **size)))
    return out


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------

def _bt_population_policy(problems, eta, reg=1e-4):
    """BT-RLHF with infinite π0 × π0 data: the BT MLE under the population distribution of pairs.

    Every (x, a, b) enters twice — label 1 with weight d0(x)π0(a)π0(b)P[x,a,b] and label 0 with
    weight d0(x)π0(a)π0(b)(1 − P[x,a,b]) — so ``fit_bt`` minimises the exact expected loss.
    """
    from rlbandit import fit_bt, kernels

    features, ref, pref = problems.features, problems.ref_logprobs, problems.pref
    batch = problems.batch_shape
    n_contexts, n_actions, dim = features.shape[-3:]
    diffs = features[..., :, :, None, :] - features[..., :, None, :, :]  # (..., X, K, K, d)
    p0 = np.exp(ref)
    mass = np.broadcast_to(problems.context_probs[..., :, None, None], pref.shape) * p0[..., :, None] * p0[..., None, :]
    flat = lambda a, tail=(): a.reshape(batch + (n_contexts * n_actions * n_actions,) + tail)  # noqa: E731
    z = flat(diffs, (dim,))
    w1, w0 = flat(mass * pref), flat(mass * (1.0 - pref))
    scale = 1e4  # an effective sample size: with reg = 1e-4 the ridge is 1e-8 per unit of probability mass
    theta = fit_bt(np.concatenate([z, z], axis=-2),
                   np.concatenate([np.ones(w1.shape, np.int8), np.zeros(w0.shape, np.int8)], axis=-1),
                   reg, weights=scale * np.concatenate([w1, w0], axis=-1))
    rewards = (features * theta[..., None, None, :]).sum(axis=-1)
    return kernels.gibbs(rewards, ref, eta)


def _policy_rows(problems, eta, policies, nash, bt, **columns):
    from rlbandit.nash import policy_metrics

    frames = []
    for name, logprobs in policies.items():
        metrics = policy_metrics(problems, logprobs, eta, nash=nash, bt=bt)
        frame = pd.DataFrame({k: np.ravel(v) for k, v in metrics.items()})
        frame.insert(0, "policy", name)
        frame.insert(0, "seed", np.arange(len(frame)))
        for key, value in columns.items():
            frame.insert(1, key, value)
        frames.append(frame)
    return frames


def _run_offline(config: NashStudyConfig) -> pd.DataFrame:
    from rlbandit.nash import bt_rlhf_policy, general_nash_policy, solve

    problems = config.problems()
    rng = np.random.default_rng(config.base_seed)
    eta = config.eta
    ref = problems.ref_logprobs
    nash_true = solve(problems.pref, ref, eta)
    bt_inf = _bt_population_policy(problems, eta)
    data = problems.sample_comparisons(ref, ref, int(max(config.n_values)), rng)
    frames = []
    for n in config.n_values:
        subset = data.take(np.arange(int(n)))
        learned, _, _ = general_nash_policy(problems.features, subset, ref, eta, config.reg)
        bt = bt_rlhf_policy(problems.features, subset, ref, eta, config.reg)
        policies = {"nash_true": nash_true, "nash_learned": learned, "bt_rlhf": bt, "bt_infinite": bt_inf,
                    "reference": np.array(ref)}
        frames += _policy_rows(problems, eta, policies, nash_true, bt, n=int(n))
        print(f"[nash offline] {config.scenario} η={eta} n={n}", flush=True)
    return pd.concat(frames, ignore_index=True)


def _run_online(config: NashStudyConfig) -> pd.DataFrame:
    from rlbandit.nash import OnlineNashConfig, run_online_nash

    loop = OnlineNashConfig(eta=config.eta, n_iterations=config.n_iterations, batch_size=config.batch_size,
                            enhancer=config.enhancer, beta=config.beta, reg=config.reg, seed=config.base_seed)
    return run_online_nash(config.problems(), loop, progress=True)


def _timed(function, repeats=3, budget=1.0):
    """Best of up to ``repeats`` timings (fewer once ``budget`` seconds are spent)."""
    best, out, spent = np.inf, None, 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        out = function()
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
        if spent > budget:
            break
    return out, best


def _run_solvers(config: NashStudyConfig) -> pd.DataFrame:
    from rlbandit import kl
    from rlbandit.nash import SOLVERS, NotConvergedWarning, exploitability, fixed_point_residual, solve

    for name in config.solvers:  # the registry as it is now, in this process
        check_choice(name, "solvers", SOLVERS, kind="solver")
    problems = config.problems()
    pref, ref, eta = problems.pref, problems.ref_logprobs, config.eta
    reference = solve(pref, ref, eta, tol=1e-13)
    rows, times = [], {}
    for method in config.solvers:
        with warnings.catch_warnings():  # a capped solve is recorded below (residual, converged), not warned
            warnings.simplefilter("ignore", NotConvergedWarning)
            (logprobs, iterations), seconds = _timed(lambda: solve(pref, ref, eta, method=method, tol=SOLVER_TOL,
                                                                   return_iterations=True),
                                                     repeats=3)
        times[method] = seconds
        residual = float(fixed_point_residual(logprobs, pref, ref, eta).max())
        rows.append({"solver": method, "iterations": iterations, "seconds": seconds, "residual": residual,
                     "converged": bool(residual <= SOLVER_TOL),
                     "kl_to_reference": float(kl(reference, logprobs).max()),
                     "exploitability": float(exploitability(logprobs, pref, ref, eta).max())})
        print(f"[nash solvers] {config.scenario} η={eta} {method}: {iterations} it, {seconds:.3g}s", flush=True)
    # Vectorisation across seeds: the same extragradient solve, one seed at a time.
    _, seconds = _timed(lambda: [solve(pref[s], ref[s], eta, tol=1e-10) for s in range(pref.shape[0])])
    rows.append({"solver": SEED_LOOP, "iterations": np.nan, "seconds": seconds, "residual": np.nan,
                 "converged": True, "kl_to_reference": 0.0, "exploitability": np.nan})
    frame = pd.DataFrame(rows)
    frame["time_ratio_vs_extragradient"] = frame.seconds / times["extragradient"]
    return frame


def _run_nash_md(config: NashStudyConfig) -> pd.DataFrame:
    from rlbandit import kl
    from rlbandit.nash import nash_md_bound, nash_md_constant_step_bound, nash_md_iterates, solve
    from rlbandit.nash_dynamics import stochastic_nash_md_iterates

    problems = config.problems()
    pref, ref, eta = problems.pref, problems.ref_logprobs, config.eta
    star = solve(pref, ref, eta, tol=1e-13)
    constant = config.md_step > 0
    step = config.md_step / eta if constant else None
    if config.md_samples:
        iterates = stochastic_nash_md_iterates(pref, ref, eta, config.horizon, int(config.md_samples),
                                               np.random.default_rng(config.base_seed), step=step)
    else:
        iterates = nash_md_iterates(pref, ref, eta, config.horizon, step=step)
    steps = np.unique(np.round(np.logspace(0, np.log10(config.horizon), 24)).astype(int))
    full = kl(star[None], iterates)  # (T+1, S, X)
    # The one-step inequality behind Theorem 1: KL_{t+1} ≤ (1 − η_tτ) KL_t + c η_t² with c = 2 in the
    # paper; the smallest c that the observed iterates need, per step (max over seeds and contexts).
    lr = np.full(config.horizon, step) if constant else 2.0 / (eta * (np.arange(config.horizon) + 2.0))
    needed = (full[1:] - (1.0 - lr * eta)[:, None, None] * full[:-1]) / lr[:, None, None] ** 2
    divergence = full[steps]
    # The bound per (seed, context): the constant-step form depends on KL(π* ‖ π_0).
    bounds = (nash_md_constant_step_bound(eta, step, steps[:, None, None], full[0][None]) if constant
              else np.broadcast_to(nash_md_bound(eta, steps)[:, None, None], divergence.shape))
    frames = []
    for i, t in enumerate(steps):
        frames.append(pd.DataFrame({
            "seed": np.arange(divergence.shape[1]), "T": int(t),
            "schedule": f"constant {config.md_step:g}/τ" if constant else "2/(τ(t+2))",
            "samples": int(config.md_samples),
            "kl_star_to_iterate": divergence[i].mean(axis=-1),
            "kl_max_over_contexts": divergence[i].max(axis=-1),
            "bound": bounds[i].max(axis=-1),
            "ratio_to_bound": (divergence[i] / bounds[i]).max(axis=-1),
            "one_step_constant": needed[:t].max(axis=(0, 2)),  # max over steps ≤ T and contexts
        }))
    return pd.concat(frames, ignore_index=True)


_RUNS = {"offline": _run_offline, "intransitivity": _run_offline, "online": _run_online, "solvers": _run_solvers,
         "nash_md": _run_nash_md}


def run(config: NashStudyConfig) -> pd.DataFrame:
    if not isinstance(config, NashStudyConfig):
        raise ValueError(f"config: expected a NashStudyConfig, got {type(config).__name__}")
    return _RUNS[config.experiment](config)


STUDY = Study(
    name="nash",
    description=("Intransitive preferences: does the KL-regularised Nash equilibrium of a learned general "
                 "preference model beat BT-RLHF, how fast does online Nash learning converge per enhancer, "
                 "and how do the exact solvers compare? Sweeps scenario × η × n (offline), scenario × enhancer "
                 "(online), η × strength of intransitivity (neutral win rates), scenario × η (solvers, Nash-MD "
                 "bounds)."),
    configs=configs,
    run=run,
    report=deferred("benchmarks.nash_report:report"),
    timing_columns=("seconds", "time_ratio_vs_extragradient"),  # stored apart: results stay bit-reproducible
    symbols={
        "win_rate_vs_bt": r"$P(\pi \succ \pi_{\mathrm{BT}})$",
        "win_rate_vs_ref": r"$P(\pi \succ \pi_0)$",
        "payoff_vs_bt": r"$f(\pi, \pi_{\mathrm{BT}})$",
        "kl_max_over_contexts": r"$\max_x \mathrm{KL}(\pi^*\|\pi_T)$",
        "T": r"Nash-MD iteration $T$",
        "worst_case_win_rate_diff": "worst-case win rate: Nash − BT-RLHF",
        "head_to_head": r"$P(\pi_{\mathrm{Nash}} \succ \pi_{\mathrm{BT}})$",
        "strength": r"intransitivity $\|A\|_F$",
        "m": "opponent samples m (0 = exact)",
        "kl_star_to_iterate": r"$\mathrm{E}\,\mathrm{KL}(\pi^*\|\pi_T)$",
    },
    tags=("nash", "general-preferences"),
)
