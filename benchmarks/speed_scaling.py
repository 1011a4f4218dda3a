"""Study ``scaling``: time and peak memory of every algorithm family against X, K, d, n and the
number of seeds, with the fitted growth exponent of each (issue 17).

One run = one algorithm (a family × method of :data:`FAMILIES`) × one axis grown over a grid of
sizes, the other axes at their base size. Families and what is timed (the public entry point, its
inputs prepared outside the timed region):

- ``gibbs``: ``rlbandit.oracle.gibbs`` on rewards (S, X, K);
- ``best_of_n``: ``rlbandit.sampling_oracles.best_of_n`` (exact distribution, N = ``bon_n``);
- ``fit_bt``: ``rlbandit.reward.fit_bt`` on n comparisons in R^d;
- ``covariance``: ``geometry.covariance`` (Σ_D from n differences) and ``inverse_norm``
  (``geometry.cholesky`` + ``geometry.inverse_norm``: ‖φ(x,a)‖_{Σ⁻¹} for every (x, a));
- ``offline``: ``rlbandit.offline.learn`` for each method of ``offline.METHODS`` (n comparisons of π0);
- ``online``: ``rlbandit.online.iterate`` for each enhancer of ``enhancers.ENHANCERS``
  (T = ``online_T`` rounds of m = n / T comparisons: n is the total);
- ``nash``: ``rlbandit.nash.solve`` for each solver of ``nash.SOLVERS`` on a linear general
  preference model P (S, X, K, K);

A run first primes its method with one unmeasured call at the smallest size (imports, caches).
Each size is then measured (:func:`measure`): one warm-up call (it also probes the cap), one call
under ``tracemalloc`` (the peak of the traced allocations during the call — numpy registers its
array buffers with tracemalloc, so this is the peak of Python objects and numpy arrays the call
holds, not BLAS/LAPACK workspaces or C solvers' memory), then up to ``repeats`` timed calls, each
beside a reference call (one ``np.exp`` over 2¹⁸ floats, interleaved) whose median tracks the
machine's speed during the run. A call that runs past ``cap_s`` is stopped (a timer signal) and the
size is marked ``capped``; an over-budget call that raises ``MemoryError`` or ``ValueError`` (a
memory-budget refusal) is marked ``failed`` with its message — every call also runs under an
address-space limit of ``guard_gib`` so that no size can exhaust the machine; the axis then stops
growing (later sizes: ``skipped``), as it does when the peak memory extrapolated from the two
previous sizes exceeds ``mem_cap_gib``.

Rows: one per size × repeat (the same rows whatever happens, so result files are reproducible);
the wall-clock columns ``time_s``, ``ref_s``, ``peak_bytes``, ``status``, ``message`` are the
study's ``timing_columns`` (stored apart from the results by the runner).
"""

from __future__ import annotations

import gc
import importlib
import signal
import threading
import time
import tracemalloc
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from rlbandit._checks import check_choice, check_int, check_positive_float
from rlbandit.study import Study, deferred

__all__ = ["ScalingConfig", "Family", "FAMILIES", "AXES", "AXIS_COLUMNS", "STATUSES", "TIMING_COLUMNS",
           "configs", "run", "measure", "prepare", "method_axes", "STUDY", "BASE", "full_grid"]

#: The axes grown, and the row column holding each one's actual size.
AXES = ("X", "K", "d", "n", "seeds")
AXIS_COLUMNS = {"X": "n_contexts", "K": "n_actions", "d": "dim", "n": "n_comparisons", "seeds": "n_seeds"}
#: Per-size outcome: measured, stopped at the time cap, raised (memory), not run (an earlier size stopped the axis).
STATUSES = ("ok", "capped", "failed", "skipped")
TIMING_COLUMNS = ("time_s", "ref_s", "peak_bytes", "status", "message")
#: Base sizes: the axes not grown.
BASE = {"X": 32, "K": 32, "d": 8, "n": 2048, "seeds": 1}

_REF = np.linspace(-1.0, 1.0, 2 ** 18)
#: The traced (memory) call may run this many times the cap (tracemalloc's overhead on Python-heavy calls).
TRACED_CAP_FACTOR = 2
#: The unmeasured priming call of a run (imports, caches) may run this many times the cap.
PRIME_CAP_FACTOR = 10


# ---------------------------------------------------------------------------------------------
# The config
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScalingConfig:
    """One run: ``family``/``method`` timed at each size of ``sizes`` on ``axis``, the other axes at
    the base sizes ``X``, ``K``, ``d``, ``n``, ``seeds``.

    Attributes:
        family, method: a key of :data:`FAMILIES` and one of its methods.
        axis: the axis grown (one of the family's axes), ``sizes`` its values, increasing.
        X, K, d, n, seeds: base sizes (contexts, actions, dimension, comparisons, seeds).
        repeats: timed calls per size at most (fewer when a call is slow: ``budget_s``).
        budget_s: seconds of timed repeats per size (at least one repeat is always run).
        cap_s: a call running longer is stopped and its size marked capped; the axis stops there.
        mem_cap_gib: the axis stops when the next size's peak memory, extrapolated from the two
            previous sizes, would exceed it.
        guard_gib: address-space limit of each call beyond the process' own (MemoryError beyond it).
        eta: η of every oracle; reg: ridge λ; online_T: rounds of ``online``; bon_n: N of best-of-N;
        max_iter: iteration cap passed to ``nash.solve`` (None: the solver's default).
        seed: seeds the problems, the data and every generator.
    """

    family: str
    method: str
    axis: str
    sizes: tuple[int, ...]
    X: int = BASE["X"]
    K: int = BASE["K"]
    d: int = BASE["d"]
    n: int = BASE["n"]
    seeds: int = BASE["seeds"]
    repeats: int = 5
    budget_s: float = 1.0
    cap_s: float = 1.0
    mem_cap_gib: float = 2.0
    guard_gib: float = 4.0
    eta: float = 1.0
    reg: float = 1.0
    online_T: int = 4
    bon_n: int = 16
    max_iter: int | None = None
    seed: int = 0

    def __post_init__(self):
        check_choice(self.family, "family", FAMILIES)
        check_choice(self.method, "method", FAMILIES[self.family].methods())
        axes = method_axes(self.family, self.method)
        if self.axis not in axes:
            raise ValueError(f"axis: {self.family}/{self.method} grows along {axes}, got {self.axis!r}")
        if not (isinstance(self.sizes, tuple) and self.sizes and all(isinstance(s, int) and s >= 1 for s in self.sizes)
                and all(a < b for a, b in zip(self.sizes, self.sizes[1:]))):
            raise ValueError(f"sizes: expected an increasing tuple of integers >= 1, got {self.sizes!r}")
        for name in ("X", "K", "d", "n", "seeds", "repeats", "online_T", "bon_n"):
            check_int(getattr(self, name), name, numpy_ints=False)
        if self.max_iter is not None:
            check_int(self.max_iter, "max_iter", numpy_ints=False)
        for name in ("budget_s", "cap_s", "mem_cap_gib", "guard_gib", "eta", "reg"):
            check_positive_float(getattr(self, name), name)
        if self.guard_gib < self.mem_cap_gib:
            raise ValueError(f"guard_gib: the address-space guard ({self.guard_gib}) must be >= mem_cap_gib "
                             f"({self.mem_cap_gib})")
        for size in self.sizes:
            self.at(size)  # the family's own constraints (K >= 2, n a multiple of T, ...)

    def at(self, size: int) -> dict[str, int]:
        """The sizes of the call at ``size`` on this run's axis: {"X", "K", "d", "n", "seeds"}."""
        sizes = {"X": self.X, "K": self.K, "d": self.d, "n": self.n, "seeds": self.seeds, self.axis: int(size)}
        if self.family in ("offline", "online", "nash") and sizes["K"] < 2:
            raise ValueError(f"sizes: family {self.family!r} needs K >= 2 actions, got K = {sizes['K']}")
        if self.family == "online" and sizes["n"] % self.online_T:
            raise ValueError(f"sizes: n = {sizes['n']} comparisons must be a multiple of online_T = {self.online_T}")
        if self.family == "nash" and sizes["d"] < 2:
            raise ValueError(f"sizes: the linear general preference model needs d >= 2, got d = {sizes['d']}")
        return sizes


# ---------------------------------------------------------------------------------------------
# The families: inputs prepared outside the timed region, a zero-argument call timed
# ---------------------------------------------------------------------------------------------

def _arrays(s: dict, seed: int):
    """Rewards (S, X, K) ~ N(0, 1) and log π0 (S, X, K) = normalise(N(0, 1))."""
    from scipy.special import logsumexp

    rng = np.random.default_rng([seed, 1])
    shape = (s["seeds"], s["X"], s["K"])
    ref = rng.standard_normal(shape)
    return rng.standard_normal(shape), ref - logsumexp(ref, axis=-1, keepdims=True)


def _comparisons(s: dict, seed: int):
    """Differences z (S, n, d) with ‖z‖ ≲ 1 and BT labels from a θ* of norm 2."""
    from scipy.special import expit

    rng = np.random.default_rng([seed, 2])
    S, n, d = s["seeds"], s["n"], s["d"]
    diffs = rng.uniform(-1.0, 1.0, (S, n, d)) * np.sqrt(3.0 / d) * 0.7
    theta = rng.standard_normal((S, d))
    theta *= 2.0 / np.linalg.norm(theta, axis=-1, keepdims=True)
    labels = (rng.random((S, n)) < expit(np.einsum("snd,sd->sn", diffs, theta))).astype(np.int64)
    return diffs, labels


def _bandit(s: dict, seed: int):
    from rlbandit.problem import ProblemConfig, make_problems

    return make_problems(ProblemConfig(n_contexts=s["X"], n_actions=s["K"], dim=s["d"]),
                         range(seed, seed + s["seeds"]))


def _prepare_oracle(method, s, config):
    from rlbandit.oracle import gibbs
    from rlbandit.sampling_oracles import best_of_n

    rewards, ref = _arrays(s, config.seed)
    if method == "gibbs":
        return lambda: gibbs(rewards, ref, config.eta)
    return lambda: best_of_n(rewards, ref, config.bon_n)


def _prepare_fit_bt(method, s, config):
    from rlbandit.reward import fit_bt

    diffs, labels = _comparisons(s, config.seed)
    return lambda: fit_bt(diffs, labels, config.reg)


def _prepare_covariance(method, s, config):
    from rlbandit import geometry

    diffs, _ = _comparisons(s, config.seed)
    if method == "covariance":
        return lambda: geometry.covariance(diffs, config.reg)
    features = np.random.default_rng([config.seed, 3]).uniform(-1.0, 1.0, (s["seeds"], s["X"], s["K"], s["d"]))
    features *= np.sqrt(3.0 / s["d"]) / 2
    cov = geometry.covariance(diffs, config.reg)
    return lambda: geometry.inverse_norm(features, geometry.cholesky(cov))


def _prepare_offline(method, s, config):
    from rlbandit import offline

    problem = _bandit(s, config.seed)
    data = problem.sample_preferences(problem.ref_logprobs, problem.ref_logprobs, s["n"],
                                      np.random.default_rng([config.seed, 4]))
    return lambda: offline.learn(problem, data, config.eta, method, rng=np.random.default_rng([config.seed, 5]),
                                 reg=config.reg)


def _prepare_online(method, s, config):
    from rlbandit import online

    problem = _bandit(s, config.seed)
    m = s["n"] // config.online_T
    return lambda: online.iterate(problem, config.eta, method, config.online_T, m,
                                  np.random.default_rng([config.seed, 6]), reg=config.reg)


def _prepare_nash(method, s, config):
    from rlbandit import nash
    from rlbandit.general_preferences import PreferenceConfig, make_preference_problems

    game = make_preference_problems(PreferenceConfig(n_contexts=s["X"], n_actions=s["K"], dim=s["d"]),
                                    range(config.seed, config.seed + s["seeds"]))

    def call():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", nash.NotConvergedWarning)  # nash_md stops at max_iter: its cost
            return nash.solve(game.pref, game.ref_logprobs, config.eta, method, max_iter=config.max_iter)
    return call


def _registry(module: str, name: str):
    """The keys of a library registry, read when asked (a method registered later is included)."""
    return lambda: tuple(getattr(importlib.import_module(module), name))


@dataclass(frozen=True)
class Family:
    """An algorithm family: the axes its cost depends on, its methods (read from the library's
    registry when asked, so a registered method is benchmarked too), a ``prepare(method, sizes,
    config)`` returning the zero-argument call to time."""

    axes: tuple[str, ...]
    methods: Callable[[], tuple[str, ...]]
    prepare: Callable


#: Family name → :class:`Family`.
FAMILIES: dict[str, Family] = {
    "gibbs": Family(("X", "K", "seeds"), lambda: ("gibbs",), _prepare_oracle),
    "best_of_n": Family(("X", "K", "seeds"), lambda: ("best_of_n",), _prepare_oracle),
    "fit_bt": Family(("n", "d", "seeds"), lambda: ("fit_bt",), _prepare_fit_bt),
    "covariance": Family(("X", "K", "d", "n", "seeds"), lambda: ("covariance", "inverse_norm"), _prepare_covariance),
    "offline": Family(AXES, _registry("rlbandit.offline", "METHODS"), _prepare_offline),
    "online": Family(AXES, _registry("rlbandit.enhancers", "ENHANCERS"), _prepare_online),
    "nash": Family(("X", "K", "seeds"), _registry("rlbandit.nash", "SOLVERS"), _prepare_nash),
}
#: covariance (Σ_D) does not depend on X, K; inverse_norm (all X·K features) does not depend on n.
_COVARIANCE_AXES = {"covariance": ("d", "n", "seeds"), "inverse_norm": ("X", "K", "d", "seeds")}


def method_axes(family: str, method: str) -> tuple[str, ...]:
    """The axes ``method`` of ``family`` is grown along."""
    return _COVARIANCE_AXES.get(method, FAMILIES[family].axes) if family == "covariance" else FAMILIES[family].axes


def prepare(config: ScalingConfig, size: int) -> Callable[[], object]:
    """The call to time at ``size`` (its inputs built here, outside the timed region)."""
    return FAMILIES[config.family].prepare(config.method, config.at(size), config)


# ---------------------------------------------------------------------------------------------
# Measuring one call
# ---------------------------------------------------------------------------------------------

class _OverCap(BaseException):
    """A call ran past its cap (a BaseException, so a library's ``except Exception`` cannot swallow it)."""


def _interrupt(signum, frame):
    raise _OverCap


def _stopped_by_cap(error: BaseException) -> bool:
    """Whether ``error`` wraps an _OverCap: the timer's exception, raised while compiled code had
    called back into Python (numba boxing a result), comes back as a SystemError caused by it."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, _OverCap):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


@contextmanager
def _limits(cap_s: float | None, guard_bytes: int):
    """Stop the call after ``cap_s`` seconds (SIGALRM; only in the main thread, where the runner's
    workers run; None: no time limit) and refuse allocations beyond ``guard_bytes`` more address
    space (RLIMIT_AS, Linux): MemoryError instead of exhausting the machine."""
    import resource

    main = cap_s is not None and threading.current_thread() is threading.main_thread()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        with open("/proc/self/statm") as f:
            current = int(f.read().split()[0]) * resource.getpagesize()
        limit = current + guard_bytes
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        guarded = True
    except (OSError, ValueError):  # not Linux: no guard
        guarded = False
    previous = signal.signal(signal.SIGALRM, _interrupt) if main else None
    if main:
        signal.setitimer(signal.ITIMER_REAL, cap_s)
    try:
        yield
    finally:
        if main:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        if guarded:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _timed(call, cap_s: float, guard_bytes: int, traced: bool = False) -> tuple[float, float]:
    """(seconds, traced peak bytes or NaN) of one call; _OverCap past ``cap_s``."""
    if traced:
        tracemalloc.start()
    collecting = gc.isenabled()
    gc.disable()  # as timeit does: no collection pause lands inside one call and not another
    try:
        with _limits(cap_s, guard_bytes):
            start = time.perf_counter()
            try:
                result = call()
            except Exception as error:
                if _stopped_by_cap(error):
                    raise _OverCap from error
                raise
            seconds = time.perf_counter() - start
        peak = float(tracemalloc.get_traced_memory()[1]) if traced else float("nan")
    finally:
        if collecting:
            gc.enable()
        if traced:
            tracemalloc.stop()
    del result
    if seconds > cap_s:  # a worker thread without the timer signal
        raise _OverCap
    return seconds, peak


def _reference() -> float:
    start = time.perf_counter()
    np.exp(_REF)
    return time.perf_counter() - start


def measure(call: Callable[[], object], *, repeats: int, budget_s: float, cap_s: float,
            guard_bytes: int) -> dict:
    """Time and peak memory of one call (module docstring): ``{"status", "message", "times",
    "refs", "peak_bytes"}`` with ``times``/``refs`` the timed repeats and their interleaved
    reference calls (seconds). Status ``capped`` when a call ran past ``cap_s`` (stopped),
    ``failed`` when it raised MemoryError / ValueError (the message says which); ``ok`` otherwise."""
    out = {"status": "ok", "message": "", "times": [], "refs": [], "peak_bytes": float("nan")}
    notes = []
    gc.collect()  # once per size: a full collection costs milliseconds with large libraries loaded
    try:
        warm, _ = _timed(call, cap_s, guard_bytes)
        try:  # tracing slows Python-heavy calls several-fold: a longer cap, and no peak when it is hit
            _, out["peak_bytes"] = _timed(call, TRACED_CAP_FACTOR * cap_s, guard_bytes, traced=True)
        except _OverCap:
            notes.append(f"peak not measured: the traced call ran past {TRACED_CAP_FACTOR * cap_s:g} s")
        for _ in range(min(repeats, max(1, int(budget_s / max(warm, 1e-9))))):
            out["refs"].append(_reference())
            out["times"].append(_timed(call, cap_s, guard_bytes)[0])
    except _OverCap:
        out.update(status="capped", message=f"a call ran past the cap of {cap_s:g} s and was stopped", times=[],
                   refs=[])
    except (MemoryError, ValueError) as error:
        text = str(error) or "(no message)"
        out.update(status="failed", message=f"{type(error).__name__}: {text[:300]}")
    if out["status"] == "ok" and len(out["times"]) < repeats:
        notes.append(f"{len(out['times'])} of {repeats} repeats (a call takes {warm:.3g} s; budget {budget_s:g} s)")
    if out["status"] == "ok":
        out["message"] = "; ".join(notes)
    return out


def _predicted_peak(done: list[tuple[int, float]], size: int) -> float:
    """Peak bytes at ``size`` extrapolated log–log from the last two measured sizes (slope in [0, 3];
    linear from a single size)."""
    (s1, p1), (s2, p2) = ([(1, 0.0)] + done)[-2:] if len(done) == 1 else done[-2:]
    slope = 1.0 if len(done) == 1 or p1 <= 0 or p2 <= 0 else float(np.clip(np.log(p2 / p1) / np.log(s2 / s1), 0, 3))
    return p2 * (size / s2) ** slope


def _prime(config: ScalingConfig, guard_bytes: int) -> None:
    """One unmeasured call at the smallest size: imports and caches a method loads on first use
    (cvxpy, compiled kernels) are not charged to the first size. Whatever goes wrong here, the first
    size's own measurement records."""
    try:
        with _limits(PRIME_CAP_FACTOR * config.cap_s, guard_bytes):
            prepare(config, config.sizes[0])()
    except (_OverCap, MemoryError, ValueError):
        pass


def run(config: ScalingConfig) -> pd.DataFrame:
    """Every size of the config's axis, smallest first, each row one size × repeat (module docstring)."""
    rows, stopped, done = [], "", []
    gib = 2.0 ** 30
    _prime(config, int(config.guard_gib * gib))
    for size in config.sizes:
        sizes = config.at(size)
        result = {"status": "skipped", "message": stopped, "times": [], "refs": [], "peak_bytes": float("nan")}
        if not stopped and done and _predicted_peak(done, size) > config.mem_cap_gib * gib:
            stopped = (f"skipped: peak memory extrapolated to {_predicted_peak(done, size) / gib:.3g} GiB at "
                       f"{config.axis} = {size} > budget {config.mem_cap_gib:g} GiB")
            result["message"] = stopped
        if not stopped:
            try:
                with _limits(None, int(config.guard_gib * gib)):
                    call = prepare(config, size)
            except MemoryError as error:
                result.update(status="failed", message=f"MemoryError while building the inputs: {error}")
            else:
                result = measure(call, repeats=config.repeats, budget_s=config.budget_s, cap_s=config.cap_s,
                                 guard_bytes=int(config.guard_gib * gib))
                del call
            if result["status"] == "ok" and np.isfinite(result["peak_bytes"]):
                done.append((size, max(result["peak_bytes"], 1.0)))
            elif result["status"] != "ok":
                stopped = f"skipped: {config.axis} = {size} was {result['status']}"
        times = result["times"]
        for repeat in range(config.repeats):
            rows.append({"size": size, **{AXIS_COLUMNS[a]: sizes[a] for a in AXES}, "repeat": repeat,
                         "time_s": times[repeat] if repeat < len(times) else np.nan,
                         "ref_s": result["refs"][repeat] if repeat < len(result["refs"]) else np.nan,
                         "peak_bytes": result["peak_bytes"], "status": result["status"],
                         "message": result["message"]})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------

def full_grid(axis: str) -> tuple[int, ...]:
    """The full sweep's sizes on ``axis`` (×2 steps)."""
    return {"X": tuple(2 ** k for k in range(3, 17)), "K": tuple(2 ** k for k in range(3, 17)),
            "d": tuple(2 ** k for k in range(1, 11)), "n": tuple(2 ** k for k in range(7, 22)),
            "seeds": tuple(2 ** k for k in range(0, 10))}[axis]


_SMOKE = {"X": (2, 4), "K": (3, 6), "d": (2, 4), "n": (16, 32), "seeds": (1, 2)}
#: smoke: the tiny base every run starts from (one axis per method, chosen round-robin)
_SMOKE_BASE = {"X": 2, "K": 3, "d": 2, "n": 16, "seeds": 1}


def configs(smoke: bool) -> list[ScalingConfig]:
    """Full: every method × each of its axes over :func:`full_grid` from :data:`BASE` (``nash``
    from X = 8, K = 16, with ``nash_md`` at 200 steps), cap 1 s per call, up to 5 repeats within
    1 s per size. Smoke: every method on one of its axes (round-robin), two tiny sizes, one repeat, and
    ``optimistic`` on K with a 1 ms cap so the capped path runs."""
    out = []
    for family, spec in FAMILIES.items():
        for i, method in enumerate(spec.methods()):
            axes = method_axes(family, method)
            extra = {"max_iter": 200} if method == "nash_md" else {}
            if smoke:
                axis = axes[(i + len(out)) % len(axes)]
                cap = {"cap_s": 1e-3} if method == "optimistic" else {}
                axis = "K" if method == "optimistic" else axis
                out.append(ScalingConfig(family, method, axis, _SMOKE[axis], **_SMOKE_BASE, repeats=1,
                                         budget_s=0.5, **cap, **extra))
                continue
            base = {"X": 8, "K": 16} if family == "nash" else {}
            out += [ScalingConfig(family, method, axis, full_grid(axis), **base, **extra) for axis in axes]
    return out


STUDY = Study(
    name="scaling",
    description=("How does the cost of every algorithm family grow with the problem? Time (median of repeats, "
                 "after a warm-up) and peak traced memory of gibbs, best-of-N, the BT MLE, Σ_D and its inverse "
                 "norms, each offline method, each online enhancer and each Nash solver, each grown alone along "
                 "X, K, d, n and the number of seeds (×2 steps) from a base problem, with the fitted log–log "
                 "growth exponent and the largest size that runs in a minute."),
    configs=configs,
    run=run,
    report=deferred("benchmarks.speed_scaling_report:report"),
    symbols={"time_s": "time per call (s)", "peak_bytes": "peak traced memory (bytes)", "size": "size of the axis"},
    timing_columns=TIMING_COLUMNS,  # wall-clock and load-dependent: stored apart, results stay reproducible
    tags=("speed",),
)
