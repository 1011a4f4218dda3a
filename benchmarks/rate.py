"""Study ``rate``: how fast does the plug-in policy Gibbs(MLE) converge? (issue 3; DESIGN §2)

Data: n Bradley–Terry comparisons x ∼ d0, a¹, a² ∼ π0 (good coverage). θ̂ = ridge BT MLE
(λ = ``reg``), π̂ = O(φθ̂, η, π0). The exact SubOpt(π̂) = J*(π*) − J*(π̂) is measured on
``n_seeds`` seeded problems at log-spaced n (nested data: the first n comparisons of one stream,
so each seed's curve is a path, as in practice).

Two shapes compete. The pessimism/MLE bound is SubOpt ≲ √d·C*/√n (slope −½ on log–log axes);
KL-regularised objectives are strongly concave in π, and Fact 2 of DESIGN gives
SubOpt(π̂) = η KL(π̂‖π*) ≈ (1/2η) E_x Var_π*(φθ̂ − φθ*) ≈ d/(ηn) once the reward error is below η —
a 1/n "fast" rate (Zhao et al. 2024) whose constant blows up as η → 0, where the problem becomes
an unregularised bandit. The two shapes meet at n ≈ d/η².

Each run is one scenario × d, vectorised over seeds, and evaluates every η on the same θ̂
(the MLE does not depend on η). Rows: seed × n × η with SubOpt, the combined metric
J*(π*) − J*(π̂) + η KL(π*‖π̂), KL(π̂‖π*), KL(π̂‖π0) and ‖θ̂ − θ*‖.
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
from rlbandit.stats import (
    bootstrap_means,
    geometric_mean,
    loglog_slope,
    percentile_interval,
)
from rlbandit.study import ReportContent, ReportFigure, Study

__all__ = ["RateConfig", "configs", "run", "report", "STUDY", "loglog_slope", "bootstrap_slopes", "slope_table"]


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
            }))
    frame = pd.concat(frames, ignore_index=True)
    print(f"[rate] {config.scenario} d={config.dim}: {len(sizes)} sizes × {len(config.etas)} η × "
          f"{config.n_seeds} seeds in {time.perf_counter() - start:.1f}s", flush=True)
    return frame


# ---------------------------------------------------------------------------------------------
# Slopes (``loglog_slope`` is rlbandit.stats.loglog_slope, re-exported here)
# ---------------------------------------------------------------------------------------------

def bootstrap_slopes(subopt: np.ndarray, n: np.ndarray, *, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Slopes of the seed-mean curve under a bootstrap over seeds.

    subopt: (S, N) per-seed SubOpt at sizes n (N,). Each replicate resamples S seeds with
    replacement, averages their curves and fits the log–log slope. Returns (n_boot,)."""
    return loglog_slope(n, bootstrap_means(subopt, np.random.default_rng(seed), n_boot))


def _curves(group: pd.DataFrame, y: str) -> tuple[np.ndarray, np.ndarray]:
    wide = group.pivot(index="seed", columns="n", values=y).sort_index(axis=1)
    return wide.columns.to_numpy(dtype=float), wide.to_numpy(dtype=float)


def _window_slopes(n, curves, window: int):
    """Local slopes of the seed-mean curve over ``window`` consecutive sizes (centre n, slope)."""
    means = curves.mean(0)
    centres, slopes = [], []
    for i in range(len(n) - window + 1):
        centres.append(geometric_mean(n[i:i + window]))
        slopes.append(float(loglog_slope(n[i:i + window], means[i:i + window])))
    return np.array(centres), np.array(slopes)


def _interval_text(boot) -> str:
    """The 95 % percentile interval of bootstrap draws as ``[lo, hi]``."""
    low, high = percentile_interval(boot)
    return f"[{low:.2f}, {high:.2f}]"


def slope_table(frame: pd.DataFrame, *, y: str = "subopt", window: int = 5, n_boot: int = 1000) -> pd.DataFrame:
    """Per scenario × d × η: the log–log slope of the seed-mean ``y`` over the first and the last
    ``window`` sizes (95 % bootstrap intervals over seeds), the slope's verdict, and the crossover
    n* where the local slope first falls below −¾ (between the √ and the 1/n shapes), beside the
    theory's d/η²."""
    rows = []
    for (scenario, dim, eta), group in frame.groupby(["scenario", "dim", "eta"], sort=True):
        n, curves = _curves(group, y)
        w = min(window, len(n))
        small = bootstrap_slopes(curves[:, :w], n[:w], n_boot=n_boot)
        large = bootstrap_slopes(curves[:, -w:], n[-w:], n_boot=n_boot)
        centres, local = _window_slopes(n, curves, min(3, len(n)))
        below = np.flatnonzero(local <= -0.75)
        crossover = float(centres[below[0]]) if below.size else np.nan
        rows.append({
            "scenario": scenario, "d": int(dim), "eta": float(eta),
            "slope small n": float(loglog_slope(n[:w], curves[:, :w].mean(0))),
            "CI small n": _interval_text(small),
            "slope large n": float(loglog_slope(n[-w:], curves[:, -w:].mean(0))),
            "CI large n": _interval_text(large),
            "large-n rate": _verdict(percentile_interval(large)),
            "n* (slope ≤ −¾)": crossover if below.size == 0 or below[0] > 0 else float(n[0]),
            "d/η²": dim / eta ** 2,
            "SubOpt·ηn/d at n_max": float(curves[:, -1].mean() * eta * n[-1] / dim),
        })
    return pd.DataFrame(rows)


def _verdict(interval) -> str:
    lo, hi = float(interval[0]), float(interval[1])
    if lo <= -1.0 and -0.5 <= hi:
        return "undetermined (CI covers both)"
    if lo <= -1.0 <= hi or (hi < -0.75):
        return "1/n (fast)"
    if lo <= -0.5 <= hi or (lo > -0.75 and hi > -0.75):
        return "1/√n (slow)"
    return "between"


def local_slopes(frame: pd.DataFrame, *, y: str = "subopt", window: int = 3, n_boot: int = 200) -> pd.DataFrame:
    """Local log–log slopes over ``window`` consecutive sizes, per scenario × d × η, for each of
    ``n_boot`` bootstrap resamples of the seeds (column ``boot``), as a tidy frame for plotting
    with a percentile band."""
    rows = []
    rng = np.random.default_rng(1)
    for (scenario, dim, eta), group in frame.groupby(["scenario", "dim", "eta"], sort=True):
        n, curves = _curves(group, y)
        means = bootstrap_means(curves, rng, n_boot)
        for i in range(len(n) - window + 1):
            slopes = loglog_slope(n[i:i + window], means[:, i:i + window])
            centre = geometric_mean(n[i:i + window])
            rows.append(pd.DataFrame({"scenario": scenario, "dim": dim, "eta": eta, "n": centre,
                                      "boot": np.arange(n_boot), "local_slope": slopes}))
    return pd.concat(rows, ignore_index=True)


def d_exponent(frame: pd.DataFrame, *, n_boot: int = 1000) -> pd.DataFrame:
    """Per scenario × η at the largest n: slope of log SubOpt against log d (1: the fast rate's
    d/n; ½: the bound's √d), with a 95 % bootstrap interval over seeds."""
    rows = []
    rng = np.random.default_rng(2)
    for (scenario, eta), group in frame.groupby(["scenario", "eta"], sort=True):
        last = group[group["n"] == group["n"].max()]
        wide = last.pivot(index="seed", columns="dim", values="subopt").sort_index(axis=1)
        dims, values = wide.columns.to_numpy(float), wide.to_numpy(float)
        if len(dims) < 2:
            continue
        boot = loglog_slope(dims, bootstrap_means(values, rng, n_boot))
        rows.append({"scenario": scenario, "eta": float(eta), "n": int(last["n"].iloc[0]),
                     "d-exponent": float(loglog_slope(dims, values.mean(0))), "95% CI": _interval_text(boot)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Report: one function per figure, table and paragraph
# ---------------------------------------------------------------------------------------------

def _subopt_figure(frame: pd.DataFrame, scenario: str) -> ReportFigure:
    from rlbandit import plots

    part = frame[frame["scenario"] == scenario]
    fig = plots.line_plot(part, x="n", y="subopt", hue="eta", col="dim", logx=True, logy=True,
                          reference_slopes=(-0.5, -1.0),
                          slope_labels=(r"$\propto\sqrt{d}/\sqrt{n}$ (bound's shape)", r"$\propto 1/n$ (fast rate)"),
                          ncols=min(4, part["dim"].nunique()), title=f"SubOpt of Gibbs(MLE), data from π0 — {scenario}")
    return ReportFigure(f"subopt_vs_n_{scenario}", fig,
                        f"`{scenario}`: exact SubOpt of the plug-in policy O(φθ̂, η, π0) against n (mean over seeds, "
                        "95 % CI band) per d and η, with guides of slope −½ (the √d/√n bound's shape) and −1 (the "
                        "fast rate) through the first point.")


def _local_slope_figure(frame: pd.DataFrame, multi: bool) -> ReportFigure:
    from rlbandit import plots

    fig = plots.line_plot(local_slopes(frame), x="n", y="local_slope", hue="eta", col="dim",
                          row="scenario" if multi else None, logx=True, band="pi", markers=False,
                          ncols=frame["dim"].nunique())
    for ax in fig.axes:
        if ax.get_visible() and ax.get_label() != "<colorbar>":
            ax.axhline(-0.5, color="0.5", linestyle="--", linewidth=1)
            ax.axhline(-1.0, color="0.5", linestyle=":", linewidth=1)
    return ReportFigure("local_slope", fig,
                        "Local log–log slope of the seed-mean SubOpt over three consecutive sizes (band: 95 % "
                        "bootstrap over seeds): −½ is the bound's shape, −1 the fast rate; each η moves from the "
                        "first to the second as n grows past ≈ d/η².")


def _scaled_figure(frame: pd.DataFrame, multi: bool) -> ReportFigure:
    from rlbandit import plots

    fig = plots.line_plot(frame, x="n", y="scaled_subopt", hue="dim", col="eta", row="scenario" if multi else None,
                          logx=True, logy=True, ncols=frame["eta"].nunique())
    return ReportFigure("scaled_subopt", fig,
                        "SubOpt × ηn/d against n: the fast rate d/(ηn) predicts a flat line at the same height for "
                        "every d and η; curves rise where the rate is slower than 1/n (small n, small η) and collapse "
                        "once it is 1/n.")


def _theta_error_figure(frame: pd.DataFrame) -> ReportFigure:
    from rlbandit import plots

    fig = plots.line_plot(frame[frame["eta"] == frame["eta"].min()], x="n", y="theta_error", hue="dim",
                          col="scenario", logx=True, logy=True, reference_slopes=(-0.5,))
    return ReportFigure("theta_error", fig,
                        "Parameter error ‖θ̂ − θ*‖ of the BT MLE against n per d (independent of η): the 1/√n "
                        "statistical rate that both SubOpt shapes start from.")


_NOTES = "\n".join([
    "- Slopes are fitted to the seed-mean SubOpt over the first / last five sizes of the grid; intervals are "
    "95 % percentile intervals of 1000 bootstrap resamples of the seeds. *n\\** is the geometric centre of the "
    "first three-size window whose slope is ≤ −¾ (— when it never is; the first size when it is already).",
    "- The heuristic crossover d/η² (where √(d/n) = d/(ηn)) assumes the fast-rate constant d/η; at small η "
    "the realised constant is far smaller (π* is nearly greedy and the reward gaps are large against η), so "
    "the measured n* is compared with it, not fitted to it.",
    "- A verdict of 1/n means the large-n interval contains −1 (and not −½) or lies below −¾; 1/√n that it "
    "contains −½ (and not −1) or lies above −¾; an interval containing both is undetermined.",
    "- Data are nested (the first n comparisons of one stream per seed) and come from π0 only, with the ridge "
    "MLE (λ = 1); at n below ≈ d the ridge keeps θ̂ near 0 (π̂ ≈ π0), which flattens the small-n curves.",
    "- Reference: Zhao, Ye, Gu & Zhang (2024), *Sharp analysis for KL-regularized contextual bandits and "
    "RLHF* — O(1/ε) sample complexity for KL-regularised objectives, against O(1/ε²) without regularisation.",
])


def report(frame: pd.DataFrame) -> ReportContent:
    frame = frame.assign(scaled_subopt=frame["subopt"] * frame["eta"] * frame["n"] / frame["dim"])
    slopes, dexp = slope_table(frame), d_exponent(frame)
    scenarios = sorted(frame["scenario"].unique())
    multi = len(scenarios) > 1
    figures = [_subopt_figure(frame, scenario) for scenario in scenarios]
    figures += [_local_slope_figure(frame, multi), _scaled_figure(frame, multi), _theta_error_figure(frame)]
    headline = slopes.rename(columns={"eta": "η"})
    tables = (("Log–log slope of SubOpt against n (95 % bootstrap CI over seeds)", headline),)
    if len(dexp):
        tables += (("Dependence on d at the largest n", dexp),)
    return ReportContent(summary=_summary(frame, slopes, dexp), tables=tables, figures=tuple(figures), notes=_NOTES)


def _rate_paragraph(slopes: pd.DataFrame, sizes: np.ndarray, w: int) -> str:
    """Which rate the large-n slopes follow."""
    fast = slopes["large-n rate"] == "1/n (fast)"
    slow = slopes["large-n rate"] == "1/√n (slow)"
    verdict = ("the **1/n fast rate**" if fast.mean() >= 0.75 else
               "the **√d/√n shape of the bound**" if slow.mean() >= 0.75 else "**neither shape uniformly**")
    large = slopes["slope large n"]
    return (f"**Which rate?** At large n (the last {w} sizes, n ∈ [{sizes[-w]}, {sizes[-1]}]) the data follow "
            f"{verdict}: the log–log slope of SubOpt is {large.min():.2f} … {large.max():.2f} (median "
            f"{large.median():.2f}) and {int(fast.sum())} of {len(slopes)} scenario × d × η cells are consistent with "
            f"−1 only, {int(slow.sum())} with −½ only, the rest undetermined. SubOpt(π̂) = η KL(π̂‖π*) is second order "
            "in the reward error once π̂ is close to π*, hence 1/n rather than the first-order √d/√n of the bound.")


def _change_paragraph(slopes: pd.DataFrame, sizes: np.ndarray, w: int) -> str:
    """Where the slope changes: the small-n slopes and the crossover n* by d and by η."""
    by_d = slopes.groupby("d")["n* (slope ≤ −¾)"].median()
    by_eta = slopes.groupby("eta")["n* (slope ≤ −¾)"].median()
    spread_eta = float(by_eta.max() / by_eta.min()) if by_eta.min() > 0 else float("nan")
    rho = by_d.reset_index().corr(method="spearman").iloc[0, 1] if len(by_d) > 1 else float("nan")
    trend = ("n* grows with d." if rho > 0.5 else "n* does not grow with d." if np.isfinite(rho) else "")
    dims = sorted(slopes["d"].unique())
    return (f"**Where it changes.** At small n (n ∈ [{sizes[0]}, {sizes[w - 1]}]) the curves are flatter: slope "
            + ", ".join(f"{slopes.loc[slopes['d'] == d, 'slope small n'].mean():.2f} (d = {d})" for d in dims)
            + " on average over η and scenarios — a burn-in where the ridge MLE with n ≲ d comparisons barely moves π̂ "
            "from π0; the steeper large-d flattening shows it is the dimension that sets its length. The local slope "
            "first reaches −¾ at n* (median over η and scenarios) "
            + ", ".join(f"{slopes.loc[slopes['d'] == d, 'n* (slope ≤ −¾)'].median():.0f} (d = {d})" for d in dims)
            + "; by η: " + ", ".join(f"{slopes.loc[slopes['eta'] == e, 'n* (slope ≤ −¾)'].median():.0f} (η = {e:g})"
                                     for e in sorted(slopes["eta"].unique()))
            + f". {trend} The heuristic d/η² (where √(d/n) = d/(ηn)) would spread n* by a factor "
            f"{(slopes['eta'].max() / slopes['eta'].min()) ** 2:.0g} across these η; the measured median n* spreads by "
            f"{spread_eta:.2g} across η.")


def _d_paragraph(frame: pd.DataFrame, dexp: pd.DataFrame) -> str:
    """The exponent of d at the largest n."""
    return (f"**Dependence on d** at n = {int(frame['n'].max())} (slope of log SubOpt against log d; 1 for the "
            "fast rate's d/n, ½ for the bound's √d): " + "; ".join(
                f"`{r['scenario']}` η = {r['eta']:g}: {r['d-exponent']:.2f} {r['95% CI']}" for _, r in dexp.iterrows())
            + f". Median exponent {dexp.loc[dexp['eta'] >= 1, 'd-exponent'].median():.2f} for η ≥ 1 and "
            f"{dexp.loc[dexp['eta'] < 1, 'd-exponent'].median():.2f} for η < 1: where it exceeds 1, π* is nearly "
            "greedy and what matters is how often the estimated order of the top actions is wrong, not the "
            "variance d/(ηn) of the local expansion.")


def _constant_paragraph(slopes: pd.DataFrame) -> str:
    """The scaled SubOpt ηn/d at the largest n, by η."""
    return ("SubOpt · ηn/d at the largest n (1 would be the local expansion's constant ½·E Var_π* with unit "
            "variance per dimension): " + ", ".join(
                f"{v:.2g} (η = {e:g})" for e, v in slopes.groupby("eta")["SubOpt·ηn/d at n_max"].median().items())
            + " (by η): a constant that changes with η shows the d/(ηn) expansion sets the rate but not the "
            "constant.")


def _summary(frame: pd.DataFrame, slopes: pd.DataFrame, dexp: pd.DataFrame) -> str:
    """The findings in words, every number computed from the frame."""
    sizes = np.sort(frame["n"].unique())
    w = min(5, len(sizes))
    lines = [_rate_paragraph(slopes, sizes, w), "", _change_paragraph(slopes, sizes, w)]
    if len(dexp):
        lines += ["", _d_paragraph(frame, dexp)]
    lines += ["", _constant_paragraph(slopes)]
    return "\n".join(lines)


STUDY = Study(
    name="rate",
    description=("How fast does the plug-in policy Gibbs(φθ̂_MLE) approach π* as the number n of π0 comparisons "
                 "grows — the √d/√n shape of the bound or the 1/n fast rate of KL-regularised objectives — and "
                 "where does it change? Sweeps scenario × d × η × n (log-spaced) over 24 seeds."),
    configs=configs,
    run=run,
    report=report,
    symbols={
        "local_slope": r"local slope $d\log\mathrm{SubOpt}/d\log n$",
        "scaled_subopt": r"$\mathrm{SubOpt}\cdot\eta n/d$",
    },
    tags=("bandit", "offline", "rates"),
)
