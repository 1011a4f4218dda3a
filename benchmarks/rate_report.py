"""Report of study ``rate`` (benchmarks/rate.py): slopes, the measured/predicted constant, the d-exponent
(mean and median), the paper comparison, figures and findings — every number computed from the frame."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rlbandit.stats import (
    bootstrap_ci,
    bootstrap_means,
    geometric_mean,
    loglog_slope,
    percentile_interval,
)
from rlbandit.study import ReportContent, ReportFigure

__all__ = ["report", "slope_table", "constant_table", "d_exponent", "local_slopes", "ratio_curves", "paper_table"]

WINDOW = 5  # sizes in the small-n and large-n slope fits


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

def _curves(group: pd.DataFrame, y: str) -> tuple[np.ndarray, np.ndarray]:
    wide = group.pivot(index="seed", columns="n", values=y).sort_index(axis=1)
    return wide.columns.to_numpy(dtype=float), wide.to_numpy(dtype=float)


def _per_seed(group: pd.DataFrame, column: str) -> np.ndarray:
    return group.groupby("seed")[column].first().sort_index().to_numpy(dtype=float)


def _interval_text(interval) -> str:
    """"[low, high]", with "(k of n_boot dropped)" for a slope interval whose resamples had curves
    without a slope, and "—" when fewer than two resamples had one."""
    low, high = interval[:2]
    if not (np.isfinite(low) and np.isfinite(high)):
        return "—"
    text = f"[{low:.2f}, {high:.2f}]"
    if len(interval) > 2 and interval[2]:
        text += f" ({interval[2]} of {interval[3]} dropped)"
    return text


def _slopes(x, values) -> np.ndarray:
    """``loglog_slope`` per curve (last axis), NaN for a curve with a value ≤ 0: at tiny η the plug-in
    policy often equals π* to round-off, and SubOpt is then 0 or −4e-16, which has no logarithm."""
    values = np.asarray(values, dtype=float)
    positive = (values > 0).all(axis=-1)
    return np.where(positive, loglog_slope(x, np.where(positive[..., None], values, 1.0)), np.nan)


def _slope_interval(slopes: np.ndarray) -> tuple:
    """(low, high, dropped, n_boot): the 95 % percentile interval of the bootstrap slopes that
    exist (resamples with a curve at or below 0 somewhere have none, and are counted)."""
    finite = slopes[np.isfinite(slopes)]
    low, high = percentile_interval(finite) if finite.size >= 2 else (float("nan"), float("nan"))
    return low, high, slopes.size - finite.size, slopes.size


def _slope_ci(n, curves, rng, n_boot):
    return _slope_interval(_slopes(n, bootstrap_means(curves, rng, n_boot)))


def _median_slope(n, curves) -> float:
    return float(_slopes(n, np.median(curves, axis=0)))


def _verdict(interval) -> str:
    lo, hi = float(interval[0]), float(interval[1])
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "undetermined (SubOpt at round-off)"
    if lo <= -1.0 and -0.5 <= hi:
        return "undetermined (CI covers both)"
    if lo <= -1.0 <= hi or (hi < -0.75):
        return "1/n (fast)"
    if lo <= -0.5 <= hi or (lo > -0.75 and hi > -0.75):
        return "1/√n (slow)"
    return "between"


def _window_slopes(n, curves, window: int):
    means = curves.mean(0)
    centres = [geometric_mean(n[i:i + window]) for i in range(len(n) - window + 1)]
    slopes = [float(_slopes(n[i:i + window], means[i:i + window])) for i in range(len(n) - window + 1)]
    return np.array(centres), np.array(slopes)


def slope_table(frame: pd.DataFrame, *, n_boot: int = 1000) -> pd.DataFrame:
    """Per scenario × d × η: log–log slopes of the seed-mean SubOpt over the first and last ``WINDOW``
    sizes (95 % bootstrap CI over seeds), the slope of the seed-median curve at large n, the verdict,
    the crossover n* (first three-size local slope ≤ −¾) and the median over seeds of n_loc."""
    rows, rng = [], np.random.default_rng(0)
    for (scenario, dim, eta), group in frame.groupby(["scenario", "dim", "eta"], sort=True):
        n, curves = _curves(group, "subopt")
        w = min(WINDOW, len(n))
        large = _slope_ci(n[-w:], curves[:, -w:], rng, n_boot)
        centres, local = _window_slopes(n, curves, min(3, len(n)))
        below = np.flatnonzero(local <= -0.75)
        rows.append({
            "scenario": scenario, "d": int(dim), "eta": float(eta),
            "slope small n": float(_slopes(n[:w], curves[:, :w].mean(0))),
            "CI small n": _interval_text(_slope_ci(n[:w], curves[:, :w], rng, n_boot)),
            "slope large n": float(_slopes(n[-w:], curves[:, -w:].mean(0))),
            "CI large n": _interval_text(large),
            "median-curve slope large n": _median_slope(n[-w:], curves[:, -w:]),
            "large-n rate": _verdict(large),
            "n* (slope ≤ −¾)": float(centres[below[0]]) if below.size and below[0] > 0 else
            (float(n[0]) if below.size else np.nan),
            "n_loc (median)": float(np.median(_per_seed(group, "n_loc"))),
        })
    return pd.DataFrame(rows)


def constant_table(frame: pd.DataFrame, *, n_boot: int = 1000) -> pd.DataFrame:
    """Per scenario × d × η at the largest n: measured mean n·SubOpt against the predicted
    tr(C_η I⁻¹)/(2η) (both averaged over seeds; their ratio with a 95 % paired bootstrap CI),
    the medians, n_max/n_loc and the two factors of the constant."""
    rows, rng = [], np.random.default_rng(3)
    n_max = int(frame["n"].max())
    last = frame[frame["n"] == n_max]
    for (scenario, dim, eta), group in last.groupby(["scenario", "dim", "eta"], sort=True):
        group = group.sort_values("seed")
        measured, predicted = n_max * group["subopt"].to_numpy(float), group["predicted"].to_numpy(float)
        pair = np.stack([measured, predicted], axis=1)
        rows.append({
            "scenario": scenario, "d": int(dim), "eta": float(eta),
            "n_max/n_loc": n_max / float(np.median(group["n_loc"])),
            "tr Cov_π*(φ)": float(group["cov_star"].mean()),
            "tr(C_η I⁻¹)": float((2 * eta * predicted).mean()),
            "predicted": float(predicted.mean()),
            "measured n·SubOpt": float(measured.mean()),
            "measured/predicted": float(measured.mean() / predicted.mean()),
            "95% CI": _interval_text(bootstrap_ci(pair, rng, statistic=lambda m: m[:, 0] / m[:, 1], n_boot=n_boot)),
            "median measured": float(np.median(measured)),
            "median predicted": float(np.median(predicted)),
        })
    return pd.DataFrame(rows)


def _median_ci(values: np.ndarray, dims: np.ndarray, rng, n_boot: int) -> str:
    """Percentile bootstrap (seeds resampled) of the slope of the seed-median against d. Resamples
    whose median is ≤ 0 at some d (SubOpt below float resolution) have no slope and are dropped; the
    text then says how many."""
    index = rng.integers(0, values.shape[0], size=(n_boot, values.shape[0]))
    return _interval_text(_slope_interval(_slopes(dims, np.median(values[index], axis=1))))


def d_exponent(frame: pd.DataFrame, *, n_boot: int = 1000) -> pd.DataFrame:
    """Per scenario × η at the largest n: slope of log SubOpt against log d for the seed mean and the
    seed median (95 % bootstrap CIs over seeds), beside the slope of the mean prediction."""
    rows, rng = [], np.random.default_rng(2)
    for (scenario, eta), group in frame.groupby(["scenario", "eta"], sort=True):
        last = group[group["n"] == group["n"].max()]
        wide = last.pivot(index="seed", columns="dim", values="subopt").sort_index(axis=1)
        dims, values = wide.columns.to_numpy(float), wide.to_numpy(float)
        if len(dims) < 2:
            continue
        predicted = last.groupby("dim")["predicted"].mean().sort_index().to_numpy(float)
        rows.append({"scenario": scenario, "eta": float(eta), "n": int(last["n"].iloc[0]),
                     "mean exponent": float(_slopes(dims, values.mean(0))),
                     "CI mean": _interval_text(_slope_ci(dims, values, rng, n_boot)),
                     "median exponent": float(_slopes(dims, np.median(values, 0))),
                     "CI median": _median_ci(values, dims, rng, n_boot),
                     "predicted exponent": float(loglog_slope(dims, predicted)),
                     "mean/median SubOpt (max over d)": float(np.max(values.mean(0) / np.median(values, 0)))})
    return pd.DataFrame(rows)


def local_slopes(frame: pd.DataFrame, *, window: int = 3, n_boot: int = 200) -> pd.DataFrame:
    """Local log–log slopes of the seed-mean SubOpt over ``window`` consecutive sizes, per bootstrap
    resample of the seeds (column ``boot``), tidy for a percentile band; a resample whose mean is at
    or below 0 there (SubOpt at round-off) has no slope and no row."""
    rows, rng = [], np.random.default_rng(1)
    for (scenario, dim, eta), group in frame.groupby(["scenario", "dim", "eta"], sort=True):
        n, curves = _curves(group, "subopt")
        means = bootstrap_means(curves, rng, n_boot)
        for i in range(len(n) - window + 1):
            rows.append(pd.DataFrame({"scenario": scenario, "dim": dim, "eta": eta,
                                      "n": geometric_mean(n[i:i + window]), "boot": np.arange(n_boot),
                                      "local_slope": _slopes(n[i:i + window], means[:, i:i + window])}))
    return pd.concat(rows, ignore_index=True).dropna(subset=["local_slope"]).reset_index(drop=True)


def ratio_curves(frame: pd.DataFrame, *, n_boot: int = 200) -> pd.DataFrame:
    """(mean n·SubOpt)/(mean prediction) at every n, per bootstrap resample of the seeds (paired)."""
    rows, rng = [], np.random.default_rng(4)
    for (scenario, dim, eta), group in frame.groupby(["scenario", "dim", "eta"], sort=True):
        n, curves = _curves(group, "subopt")
        pair = np.concatenate([curves * n, _per_seed(group, "predicted")[:, None]], axis=1)
        means = bootstrap_means(pair, rng, n_boot)
        ratio = means[:, :-1] / means[:, -1:]
        rows.append(pd.DataFrame({"scenario": scenario, "dim": dim, "eta": eta, "n": np.tile(n, n_boot),
                                  "boot": np.repeat(np.arange(n_boot), len(n)), "ratio": ratio.ravel()}))
    return pd.concat(rows, ignore_index=True)


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------

def _range(values, fmt: str = ".2g") -> str:
    values = np.asarray(values, dtype=float)
    if not np.isfinite(values).any():
        return "—"
    return f"{np.nanmin(values):{fmt}} … {np.nanmax(values):{fmt}}"


def _subopt_figure(frame: pd.DataFrame, scenario: str, slopes: pd.DataFrame) -> ReportFigure:
    from rlbandit import plots

    part = frame[frame["scenario"] == scenario]
    fig = plots.line_plot(part, x="n", y="subopt", hue="eta", col="dim", logx=True, logy=True,
                          reference_slopes=(-0.5, -1.0),
                          slope_labels=(r"$\propto 1/\sqrt{n}$ (bounds' shape)", r"$\propto 1/n$ (fast rate)"),
                          ncols=min(4, part["dim"].nunique()), title=f"SubOpt of Gibbs(MLE), data from π0 — {scenario}")
    geo = pd.Series({key: float(_slopes(*_tail(g, "subopt"))) for key, g in part.groupby(["dim", "eta"])})
    steep_d, steep_eta = geo.idxmin()
    mine = slopes[slopes["scenario"] == scenario]
    return ReportFigure(f"subopt_vs_n_{scenario}", fig,
                        f"`{scenario}`: exact SubOpt of the plug-in policy O(φθ̂, η, π0) against n per d and η "
                        "(geometric mean over seeds, 95 % band in log space), with guides of slope −½ and −1 through "
                        f"the first point. Over the last {WINDOW} sizes the plotted geometric-mean curves have slopes "
                        f"{_range(geo)} (steepest: d = {steep_d}, η = {steep_eta:g}, where the typical seed has its "
                        "top action right and its SubOpt falls faster than any power); "
                        f"the seed-mean curves of the slope table {_range(mine['slope large n'])}.")


def _local_slope_figure(frame: pd.DataFrame, slopes: pd.DataFrame, multi: bool) -> ReportFigure:
    from rlbandit import plots

    fig = plots.line_plot(local_slopes(frame), x="n", y="local_slope", hue="eta", col="dim",
                          row="scenario" if multi else None, logx=True, band="pi", markers=False,
                          ncols=frame["dim"].nunique())
    for ax in fig.axes:
        if ax.get_visible() and ax.get_label() != "<colorbar>":
            ax.axhline(-0.5, color="0.5", linestyle="--", linewidth=1)
            ax.axhline(-1.0, color="0.5", linestyle=":", linewidth=1)
    by_eta = slopes.groupby("eta")["n* (slope ≤ −¾)"].median()
    by_d = slopes.groupby("d")["n* (slope ≤ −¾)"].median()
    sizes = np.sort(frame["n"].unique())
    start = sizes[-min(WINDOW, len(sizes))]
    late, first = {}, []
    for (eta, _, _), g in frame.groupby(["eta", "scenario", "dim"])[["n", "seed", "subopt"]]:
        centres, local = _window_slopes(*_curves(g, "subopt"), 3)
        late.setdefault(eta >= 0.1, []).extend(local[centres >= start])
        first.append(local[0])
    late_text = "; ".join(f"{'η ≥ 0.1' if key else 'η < 0.1'}: {_range(values)} (median {np.median(values):.2f})"
                          for key, values in sorted(late.items(), reverse=True) if values)
    return ReportFigure("local_slope", fig,
                        "Local log–log slope of the seed-mean SubOpt over three consecutive sizes (band: 95 % "
                        "percentile interval of 200 bootstrap resamples of the seeds; dashed −½, dotted −1). The "
                        f"first local slope is {_range(first)} (ridge burn-in, flattest at large d); it then falls "
                        f"to about −1 (for n ≥ {start} the local slopes of the "
                        f"seed-mean curves are {late_text}); the n* where it first reaches −¾ (slope table) has "
                        f"medians {_range(by_d.to_numpy(), '.0f')} across d (growing with d) but "
                        f"only {_range(by_eta.to_numpy(), '.0f')} across η — it does not move with 1/η².")


def _ratio_figure(frame: pd.DataFrame, constants: pd.DataFrame, multi: bool) -> ReportFigure:
    from rlbandit import plots

    fig = plots.line_plot(ratio_curves(frame), x="n", y="ratio", hue="eta", col="dim",
                          row="scenario" if multi else None, logx=True, logy=True, band="pi", markers=False,
                          ncols=frame["dim"].nunique())
    for ax in fig.axes:
        if ax.get_visible() and ax.get_label() != "<colorbar>":
            ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1)
    local, far = constants[constants["n_max/n_loc"] >= 10], constants[constants["n_max/n_loc"] < 1]
    text = (f"at n = {int(frame['n'].max())} it is {_range(local['measured/predicted'])} in the "
            f"{len(local)} cells with n_max ≥ 10·n_loc" if len(local) else "no cell reaches n_max ≥ 10·n_loc")
    if len(far):
        text += (f", and {_range(far['measured/predicted'])} in the {len(far)} cells with n_max < n_loc "
                 f"(η ≤ {far['eta'].max():g}), where the expansion fails seed by seed but the seed means still "
                 "roughly agree, by the near-tie effect of the Findings")
    return ReportFigure("ratio_to_prediction", fig,
                        "Measured mean n·SubOpt divided by the predicted limit tr(E_x Cov_π*(φ) I(θ*)⁻¹)/(2η) "
                        "(both averaged over seeds) against n, per d, η and scenario (line: geometric mean of 200 "
                        "paired bootstrap resamples of the seeds, band: their 95 % percentile interval, in log "
                        f"space; dashed: 1). The expansion predicts → 1; {text} (constant table).")


def _theta_error_figure(frame: pd.DataFrame) -> ReportFigure:
    from rlbandit import plots

    part = frame[frame["eta"] == frame["eta"].min()]
    fig = plots.line_plot(part, x="n", y="theta_error", hue="dim", col="scenario", logx=True, logy=True,
                          reference_slopes=(-0.5,))
    slopes = [float(loglog_slope(*_tail(g, "theta_error"))) for _, g in part.groupby(["scenario", "dim"])]
    return ReportFigure("theta_error", fig,
                        "Parameter error ‖θ̂ − θ*‖ of the BT MLE against n per d (independent of η; geometric mean "
                        "over seeds, 95 % band in log space; guide: slope −½). Over the last five sizes the slope of "
                        f"its geometric mean is {_range(slopes)}: the 1/√n statistical rate that SubOpt squares.")


def _tail(group: pd.DataFrame, y: str):
    """The last WINDOW sizes and the geometric mean over seeds there (what a log-y line plot draws;
    values ≤ 0 are dropped, as it drops them; NaN at a size where every seed is ≤ 0)."""
    n, curves = _curves(group, y)
    tail = curves[:, -WINDOW:]
    positive = tail > 0
    logs = np.log(np.where(positive, tail, 1.0)) * positive
    with np.errstate(invalid="ignore"):  # 0 / 0 = NaN where no seed is positive
        return n[-WINDOW:], np.exp(logs.sum(axis=0) / positive.sum(axis=0))


# ---------------------------------------------------------------------------------------------
# Findings and the paper comparison
# ---------------------------------------------------------------------------------------------

def _fmt_by(series: pd.Series, name: str, fmt: str) -> str:
    return ", ".join(f"{v:{fmt}} ({name} = {k:g})" for k, v in series.items())


def _rate_paragraph(slopes: pd.DataFrame, sizes: np.ndarray, w: int) -> str:
    fast = slopes["large-n rate"] == "1/n (fast)"
    slow = slopes["large-n rate"] == "1/√n (slow)"
    large, median = slopes["slope large n"], slopes["median-curve slope large n"]
    steep = slopes.loc[median.idxmin()]
    return (f"**Which rate?** At large n (the last {w} sizes, n ∈ [{sizes[-w]}, {sizes[-1]}]) the log–log slope of "
            f"the seed-mean SubOpt is {large.min():.2f} … {large.max():.2f} (median {large.median():.2f}); "
            f"{int(fast.sum())} of {len(slopes)} scenario × d × η cells get the 1/n verdict (95 % CI containing −1 "
            f"and not −½, or below −¾), {int(slow.sum())} the 1/√n verdict, the rest are undetermined (slope table). "
            "SubOpt(π̂) = η KL(π̂‖π*) is second order in the reward error, hence 1/n. The seed-median curves have "
            f"slopes {median.min():.2f} … {median.max():.2f} (median {median.median():.2f}); the steepest "
            f"({steep['median-curve slope large n']:.2f}, `{steep['scenario']}` d = {steep['d']} η = {steep['eta']:g}) "
            "follows the median seed at tiny η, whose top action is already identified, so its SubOpt decays "
            "faster than any power of n; the mean is carried by the seeds with near-tied top actions.")


def _contains_one(interval_text: str) -> bool:
    low, high = (float(v) for v in interval_text.strip("[]").split(","))
    return low <= 1.0 <= high


def _constant_paragraph(constants: pd.DataFrame) -> str:
    local = constants[constants["n_max/n_loc"] >= 10]
    mid = constants[(constants["n_max/n_loc"] >= 1) & (constants["n_max/n_loc"] < 10)]
    far = constants[constants["n_max/n_loc"] < 1]
    covers = local["95% CI"].map(_contains_one)
    by_eta = constants.groupby("eta")
    text = ("**The constant.** The local expansion predicts lim n·E SubOpt = tr(C_η I(θ*)⁻¹)/(2η) with "
            "C_η = E_x Cov_π*(φ) and I the BT Fisher information of one π0 × π0 comparison "
            "(`rlbandit.asymptotics.subopt_constant`). At the largest n, measured/predicted (ratio of seed means) is ")
    if len(local):
        text += (f"{_range(local['measured/predicted'], '.3f')} in the {len(local)} cells with n_max ≥ 10·n_loc "
                 f"(η ≥ {local['eta'].min():g}), its 95 % CI containing 1 in {int(covers.sum())} of them")
    if len(mid):
        text += f"; {_range(mid['measured/predicted'])} in the {len(mid)} cells with n_loc ≤ n_max < 10·n_loc"
    if len(far):
        far_covers = far["95% CI"].map(_contains_one)
        per_seed = far["median measured"] / far["median predicted"]
        text += (f"; and {_range(far['measured/predicted'])} in the {len(far)} cells with n_max < n_loc "
                 f"(η ≤ {far['eta'].max():g}; CI containing 1 in {int(far_covers.sum())}, and wide). There the "
                 "reward error is larger than η and the expansion fails seed by seed — median measured / median "
                 f"predicted is {_range(per_seed)} — yet the means still roughly agree: to leading order, a seed whose "
                 "two top actions differ by a gap g loses ≈ g when the error δ in that gap exceeds g, and averaging "
                 "over a gap density ρ that is positive at 0 gives ρ(0)·E δ²/2, the same as averaging the expansion's "
                 "σ′(g/η)δ²/(2η) over g. This near-tie (margin) effect is what keeps the mean at 1/n at small η")
    cov, tr, pred = (by_eta[c].median() for c in ("tr Cov_π*(φ)", "tr(C_η I⁻¹)", "predicted"))
    etas = sorted(cov.index)
    text += (" (constant table). **Why the constant changes with η:** it is tr(C_η I⁻¹)/(2η), and C_η = "
             "E_x Cov_π*(φ) shrinks as π* sharpens. Median over scenarios × d, tr Cov_π*(φ) is "
             + _fmt_by(cov, "η", ".2g") + ", tr(C_η I⁻¹) is " + _fmt_by(tr, "η", ".2g")
             + " and the predicted constant " + _fmt_by(pred, "η", ".2g") + ".")
    if len(etas) >= 3:
        text += (f" From η = {etas[-2]:g} to {etas[-1]:g} π* stays near π0 (tr Cov changes "
                 f"×{cov[etas[-1]] / cov[etas[-2]]:.2g}) and the constant falls like 1/η "
                 f"(×{pred[etas[-1]] / pred[etas[-2]]:.2g}); from η = {etas[0]:g} to {etas[2]:g} tr Cov grows "
                 f"×{cov[etas[2]] / cov[etas[0]]:.2g} while 1/η falls ×{etas[2] / etas[0]:.0f}, so the constant "
                 f"only changes ×{pred[etas[2]] / pred[etas[0]]:.2g}.")
    return text


def _change_paragraph(slopes: pd.DataFrame, sizes: np.ndarray, w: int) -> str:
    dims = sorted(slopes["d"].unique())
    by_eta = slopes.groupby("eta")["n* (slope ≤ −¾)"].median()
    nloc = slopes.groupby("eta")["n_loc (median)"].median()
    return (f"**Where it changes.** At small n (n ∈ [{sizes[0]}, {sizes[w - 1]}]) the mean slope is "
            + ", ".join(f"{slopes.loc[slopes['d'] == d, 'slope small n'].mean():.2f} (d = {d})" for d in dims)
            + " over η and scenarios: a burn-in where the ridge MLE with n ≲ d comparisons barely moves π̂ from "
            "π0. The local slope first reaches −¾ at n* (median over η and scenarios) "
            + ", ".join(f"{slopes.loc[slopes['d'] == d, 'n* (slope ≤ −¾)'].median():.0f} (d = {d})" for d in dims)
            + "; by η: " + _fmt_by(by_eta, "η", ".0f")
            + f" — a spread of {by_eta.max() / by_eta.min():.2g}× across η, while n_loc (median) is "
            + _fmt_by(nloc, "η", ".2g")
            + ": at small η the slope is already −1 long before the local regime, from a different mechanism "
            "(the near-tie effect of the previous paragraph).")


def _slow_paragraph(slopes: pd.DataFrame) -> str:
    slow = int((slopes["large-n rate"] == "1/√n (slow)").sum())
    return (f"**The −½ regime does not appear in these instances** ({slow} of {len(slopes)} cells have a large-n "
            "slope consistent with −½ only). The √d/√n shape is that of upper bounds proved for the unregularised "
            "objective or uniformly over η; with η > 0 fixed, SubOpt is quadratic in the reward error and gives "
            "1/n. A −½ slope would need η → 0 with n, or reward gaps that shrink like 1/√n; this sweep has fixed "
            "η and random θ*, so it contains neither (at the smallest η the near-tie effect above keeps the mean "
            "at 1/n). The flatter small-n slopes are the ridge burn-in, not a −½ regime.")


def _d_paragraph(dexp: pd.DataFrame, constants: pd.DataFrame, slopes: pd.DataFrame, n_max: int) -> str:
    nloc = slopes.groupby(["scenario", "eta"])[["d", "n_loc (median)"]]
    nloc_exp = float(np.median([loglog_slope(g["d"], g["n_loc (median)"]) for _, g in nloc]))
    cov_eta = float(sorted(constants.loc[constants["eta"] < 1, "eta"].unique())[-1])
    cov_d = _fmt_by(constants[constants["eta"] == cov_eta].groupby("d")["tr Cov_π*(φ)"].median(), "d", ".2g")
    small = dexp[dexp["eta"] < 1]
    big = dexp[dexp["eta"] >= 1]
    return (f"**Dependence on d** at n = {n_max} (slope of log SubOpt against log d; d-exponent table): the "
            f"seed-mean exponent is {big['mean exponent'].median():.2f} (median over scenarios, η ≥ 1) and "
            f"{small['mean exponent'].median():.2f} (η < 1); the seed-median exponent is "
            f"{big['median exponent'].median():.2f} and {small['median exponent'].median():.2f}; the predicted "
            f"constant's exponent is {big['predicted exponent'].median():.2f} and "
            f"{small['predicted exponent'].median():.2f}. At η = {dexp['eta'].min():g} the mean is up to "
            f"{_range(dexp.loc[dexp['eta'] == dexp['eta'].min(), 'mean/median SubOpt (max over d)'], '.2g')}× the "
            "median (the largest ratio over d, per scenario): a few near-tie seeds carry the mean there. The "
            "exponent above 1 at η < 1 is not an artefact of those seeds — the median's is larger still, and the "
            f"predicted constant's matches the mean's — but C_η growing with d on top of the d^{nloc_exp:.2f} of "
            "η²·n_loc = tr(E_x Cov_π0(φ) I⁻¹) (slope table, median over scenarios × η): with "
            "‖φ‖, ‖θ*‖ ≤ 1 the reward gaps shrink as d grows, so π* "
            f"is less greedy (tr Cov_π*(φ) at η = {cov_eta:g}, median over scenarios: {cov_d}). The headline uses "
            "the mean, because the theory (the bounds and the prediction alike) is about E SubOpt; the median "
            "columns show the typical seed.")


def paper_table(slopes: pd.DataFrame, constants: pd.DataFrame) -> pd.DataFrame:
    """The papers' results beside the corresponding numbers of this report."""
    large = slopes["slope large n"]
    local = constants[constants["n_max/n_loc"] >= 10]
    ratio = _range(local["measured/predicted"], ".3f") if len(local) else "—"
    pred = constants.groupby("eta")["predicted"].median()
    etas = sorted(pred.index)
    low, mid = etas[0], etas[min(2, len(etas) - 1)]
    growth = pred[low] / pred[mid]
    return pd.DataFrame([
        {"paper": "Zhu, Jordan & Jiao (2023), Principled RLHF",
         "their result": "(pessimistic) MLE: SubOpt ≲ √(d/n) up to coverage, unregularised objective (η = 0)",
         "here": f"plug-in MLE, η > 0: large-n slope {_range(large)} (median {large.median():.2f})",
         "agree?": "consistent (an upper bound), not tight: for η > 0 the rate is 1/n, not 1/√n"},
        {"paper": "Xiong et al. (2024), Iterative preference learning (offline setting)",
         "their result": "KL-regularised objective: SubOpt ≲ β·‖E φ(π*) − ν‖_{Σ⁻¹} ≈ √(d/n), first order in the error",
         "here": f"median large-n slope {large.median():.2f}; no cell consistent with −½ only",
         "agree?": "consistent but loose by √n at fixed η (a first-order bound of a second-order quantity)"},
        {"paper": "Zhao, Ye, Gu & Zhang (2024), Sharp analysis for KL-regularised bandits",
         "their result": "O(1/ε) sample complexity, i.e. SubOpt ∝ 1/n with a constant ∝ 1/η (coverage-dependent)",
         "here": f"slope ≈ −1; measured/predicted {ratio} with the exact constant tr(C_η I⁻¹)/(2η)",
         "agree?": f"agree on the rate, and on 1/η for η ≥ 1; for η ≤ 0.1 the exact constant changes only "
                   f"×{growth:.2g} from η = {mid:g} to {low:g} (1/η: ×{mid / low:.0f}) as C_η shrinks"},
        {"paper": "Classical MLE asymptotics (√n(θ̂ − θ*) → N(0, I⁻¹)), delta method",
         "their result": "n·E SubOpt → tr(C_η I⁻¹)/(2η) (derived in rlbandit.asymptotics)",
         "here": f"measured/predicted {ratio} where n_max ≥ 10·n_loc",
         "agree?": "agree where n ≫ n_loc; below n_loc the limit is not yet reached"},
    ])


_NOTES = "\n".join([
    "- Slopes are fitted to the seed-mean SubOpt (and, in the median column, to the seed-median curve) over the "
    "first / last five sizes; intervals are 95 % percentile intervals of 1000 bootstrap resamples of the seeds. "
    "*n\\** is the geometric centre of the first three-size window whose slope is ≤ −¾ (blank when it never is; "
    "the first size when it is already).",
    "- A verdict of 1/n means the large-n interval contains −1 (and not −½) or lies below −¾; 1/√n that it "
    "contains −½ (and not −1) or lies above −¾; an interval containing both is undetermined.",
    "- The prediction tr(C_η I⁻¹)/(2η) is exact in the limit (a finite sum over x, a, a′, no sampling) and "
    "independent of the ridge λ; it is validated in `tests/test_asymptotics.py` against a brute-force Fisher "
    "sum, a finite-difference Hessian, a second-order perturbation of the exact SubOpt and Monte Carlo. "
    "n_loc = tr(E_x Cov_π0(φ) I⁻¹)/η² is where the reward error's typical size reaches η.",
    "- Data are nested (the first n comparisons of one stream per seed) and come from π0 only, with the ridge "
    "MLE (λ = 1); at n below ≈ d the ridge keeps θ̂ near 0 (π̂ ≈ π0), which flattens the small-n curves.",
])


def report(frame: pd.DataFrame) -> ReportContent:
    slopes, constants, dexp = slope_table(frame), constant_table(frame), d_exponent(frame)
    scenarios = sorted(frame["scenario"].unique())
    multi = len(scenarios) > 1
    figures = [_subopt_figure(frame, scenario, slopes) for scenario in scenarios]
    figures += [_ratio_figure(frame, constants, multi), _local_slope_figure(frame, slopes, multi),
                _theta_error_figure(frame)]
    sizes = np.sort(frame["n"].unique())
    w = min(WINDOW, len(sizes))
    paragraphs = [_rate_paragraph(slopes, sizes, w), _constant_paragraph(constants),
                  _change_paragraph(slopes, sizes, w), _slow_paragraph(slopes)]
    if len(dexp):
        paragraphs.append(_d_paragraph(dexp, constants, slopes, int(sizes[-1])))
    paragraphs.append("**Reproducing the papers**: see the table *Reproducing the paper* below.")
    tables = (("Log–log slope of SubOpt against n (95 % bootstrap CI over seeds)", slopes.rename(columns={"eta": "η"})),
              ("Measured against predicted n·SubOpt at the largest n (constant table)",
               constants.rename(columns={"eta": "η"})))
    if len(dexp):
        tables += (("Dependence on d at the largest n (d-exponent table)", dexp.rename(columns={"eta": "η"})),)
    tables += (("Reproducing the paper", paper_table(slopes, constants)),)
    zero = frame[frame["subopt"] <= 0]
    notes = _NOTES
    if len(zero):
        etas = ", ".join(f"{e:g}" for e in sorted(zero["eta"].unique()))
        notes += (f"\n- {len(zero)} of {len(frame)} rows (η ∈ {{{etas}}}) have SubOpt = 0 in float64 (below the "
                  "resolution of J*); they count as 0 in means and medians and are left out of the geometric "
                  "means of the figures.")
    return ReportContent(summary="\n\n".join(paragraphs), tables=tables, figures=tuple(figures), notes=notes)
