"""Plots for study reports: tidy frames in, matplotlib figures out (nothing here writes files).

One consistent look for every report. Typical use inside a study's ``report(frame)``::

    from rlbandit import plots

    plots.apply_style()
    fig = plots.line_plot(frame, x="n", y="subopt", hue="eta", col="dim",
                          logx=True, logy=True, reference_slopes=(-0.5, -1.0))
    ReportFigure("subopt_vs_n", fig, "SubOpt of Gibbs(MLE) against n, ...")

Conventions:

- Frames are tidy: one row per seed × setting (× iteration). Rows that share every plotted key
  (``x``, ``hue``, ``style``, ``col``, ``row``) are *replicates* (usually seeds); the line is
  their mean and the band a 95 % confidence interval of that mean across them
  (:func:`summarize`, Student t on the standard error; ``band="sd"`` / ``"pi"`` / ``None``
  for ± one standard deviation, the 2.5–97.5 % percentile interval, or no band). On a log y
  axis both are computed in log space: the line is the geometric mean and the band is symmetric
  in log10 y, so it never plunges toward zero.
- One method, one colour: hue levels named in :data:`COLORS` keep their colour in every figure
  of every report (:func:`register_color` adds one).
- Axis labels come from :data:`SYMBOLS` (DESIGN's symbols: n, d, η, SubOpt, KL(π‖π0), …) via
  :func:`label`; a column not listed is labelled by its own name. Studies may add entries with
  :func:`register_symbol`.
- Log axes are log base 10; on a log y axis non-positive values are dropped from the plot.
- :func:`add_slope_guide` draws the *shape* of a rate ∝ x^slope (e.g. −½ for √d/√n, −1 for
  the fast 1/n rate) anchored on a data point, so a reader compares slopes, not constants.

Helpers: :func:`apply_style`, :func:`label`, :func:`register_symbol`, :func:`summarize`,
:func:`line_plot` (lines + bands, facets by ``col``/``row``, optional log axes and slope guides),
:func:`path_plot` (a curve traced in the order of a third column, e.g. the reward–KL frontier
traced by η), :func:`bar_plot` (means with CI error bars), :func:`heatmap` (mean of a value over
two keys), :func:`add_slope_guide`, :func:`new_figure`.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from rlbandit.palette import COLORS, PALETTE, register_color

__all__ = [
    "SYMBOLS", "PALETTE", "COLORS", "register_color", "apply_style", "label", "register_symbol", "summarize", "new_figure",
    "line_plot", "path_plot", "bar_plot", "heatmap", "add_slope_guide", "format_value",
]

#: Column name → axis label with DESIGN's symbols (mathtext).
SYMBOLS: dict[str, str] = {
    "n": r"comparisons $n$",
    "n_comparisons": r"comparisons $n$",
    "m": r"batch size $m$",
    "t": r"iteration $t$",
    "iteration": r"iteration $t$",
    "d": r"dimension $d$",
    "dim": r"dimension $d$",
    "X": r"contexts $X$",
    "n_contexts": r"contexts $X$",
    "K": r"actions $K$",
    "n_actions": r"actions $K$",
    "eta": r"KL coefficient $\eta$",
    "beta": r"$\beta$",
    "reg": r"ridge $\lambda$",
    "N": r"best-of-$N$",
    "subopt": r"SubOpt$(\hat\pi) = J^*(\pi^*) - J^*(\hat\pi)$",
    "suboptimality": r"SubOpt$(\hat\pi) = J^*(\pi^*) - J^*(\hat\pi)$",
    "combined": r"$J^*(\pi^*) - J^*(\hat\pi) + \eta\,\mathrm{KL}(\pi^*\|\hat\pi)$",
    "combined_metric": r"$J^*(\pi^*) - J^*(\hat\pi) + \eta\,\mathrm{KL}(\pi^*\|\hat\pi)$",
    "value": r"$J^*(\pi)$",
    "optimal_value": r"$J^*(\pi^*)$",
    "gold_reward": r"gold reward $\mathbb{E}_{x,a\sim\pi}\,r^*(x,a)$",
    "reward": r"reward $\mathbb{E}_{x,a\sim\pi}\,r^*(x,a)$",
    "kl": r"$\mathrm{KL}(\pi\|\pi_0)$",
    "kl_to_ref": r"$\mathrm{KL}(\pi\|\pi_0)$",
    "sqrt_kl": r"$\sqrt{\mathrm{KL}(\pi\|\pi_0)}$",
    "kl_to_opt": r"$\mathrm{KL}(\hat\pi\|\pi^*)$",
    "theta_error": r"$\|\hat\theta - \theta^*\|$",
    "exploitability": "exploitability (duality gap)",
    "win_rate": r"$P(\hat\pi \succ \pi')$",
    "wall_s": "wall time (s)",
    "seconds": "wall time (s)",
    "speedup": "speed ratio",
}

_STYLE_APPLIED = False


def apply_style(*, force: bool = False) -> None:
    """Set the one seaborn/matplotlib style of all reports (idempotent; cheap to call in every
    ``report``): white grid, colour-blind palette, readable fonts, 150 dpi PNGs, tight bbox."""
    global _STYLE_APPLIED
    if _STYLE_APPLIED and not force:
        return
    import matplotlib
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE, font_scale=0.9)
    matplotlib.rcParams.update({
        "figure.dpi": 100,
        "savefig.dpi": 150,
        "savefig.bbox": "tight",
        "axes.titlesize": "medium",
        "axes.titleweight": "bold",
        "legend.frameon": False,
        "legend.fontsize": "small",
        "lines.linewidth": 1.8,
        "lines.markersize": 4.5,
        "grid.linewidth": 0.6,
        "axes.grid.which": "major",
        "mathtext.fontset": "dejavusans",
    })
    _STYLE_APPLIED = True


def register_symbol(column: str, text: str) -> None:
    """Add (or override) the axis label used for ``column``."""
    if not isinstance(column, str) or not column:
        raise ValueError(f"column: expected a non-empty string, got {column!r}")
    SYMBOLS[column] = str(text)


def label(column: str | None) -> str:
    """The axis/legend label of a column: its DESIGN symbol, else the column name."""
    if column is None:
        return ""
    return SYMBOLS.get(column, column.replace("_", " "))


def format_value(value: Any) -> str:
    """Compact legend/title text for a key value (floats in 3 significant digits)."""
    if isinstance(value, (float, np.floating)):
        if value == 0 or 1e-3 <= abs(value) < 1e4:
            return f"{value:.3g}"
        return f"{value:.2e}"
    return str(value)


# ---------------------------------------------------------------------------------------------
# Aggregation across seeds
# ---------------------------------------------------------------------------------------------

_BANDS = ("ci", "sd", "pi", None)


def summarize(frame: pd.DataFrame, y: str, by: Sequence[str], *, band: str | None = "ci",
              level: float = 0.95, log: bool = False) -> pd.DataFrame:
    """Mean of ``y`` over the replicate rows of each ``by`` group, with a band.

    Returns a frame with the ``by`` columns and ``mean``, ``lo``, ``hi``, ``count``:
    ``band="ci"``: mean ± t_{(1+level)/2, k−1} · sd/√k over the k replicates;
    ``"sd"``: mean ± sd; ``"pi"``: the ((1−level)/2, (1+level)/2) quantiles; ``None``: lo = hi = mean.
    NaN values of ``y`` are ignored (a run that produced none has count 0 and NaN mean).

    ``log=True`` (what a log axis needs): the same computed on log10 y and mapped back — the
    geometric mean with a band that is symmetric in log space and never crosses zero; values
    ≤ 0 are dropped (not counted).
    """
    _check_frame(frame, [y, *by], "frame")
    if band not in _BANDS:
        raise ValueError(f"band: expected one of {_BANDS}, got {band!r}")
    if not 0 < level < 1:
        raise ValueError(f"level: must be in (0, 1), got {level}")
    by = list(by)
    values = pd.to_numeric(frame[y], errors="coerce")
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.log10(values.where(values > 0))
    data = frame[by].assign(_y=values)
    if by:
        grouped = data.groupby(by, sort=True, dropna=False, observed=True)["_y"]
    else:
        grouped = data.assign(_all=0).groupby("_all")["_y"]
    out = grouped.agg(mean="mean", sd="std", count="count")
    if band == "ci":
        from scipy import stats

        k = out["count"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(k > 1, stats.t.ppf((1 + level) / 2, np.maximum(k - 1, 1)), np.nan)
            half = t * out["sd"].to_numpy() / np.sqrt(k)
        half = np.where(k > 1, half, 0.0)
        out["lo"], out["hi"] = out["mean"] - half, out["mean"] + half
    elif band == "sd":
        sd = out["sd"].fillna(0.0)
        out["lo"], out["hi"] = out["mean"] - sd, out["mean"] + sd
    elif band == "pi":
        q = ((1 - level) / 2, (1 + level) / 2)
        out["lo"] = grouped.quantile(q[0])
        out["hi"] = grouped.quantile(q[1])
    else:
        out["lo"] = out["hi"] = out["mean"]
    out = out.drop(columns="sd").reset_index()
    if not by:
        out = out.drop(columns="_all")
    if log:
        out[["mean", "lo", "hi"]] = 10.0 ** out[["mean", "lo", "hi"]]
    return out


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------

def new_figure(n_panels: int = 1, *, ncols: int | None = None, panel_size: tuple[float, float] = (4.2, 3.3),
               sharex: bool = False, sharey: bool = False):
    """A matplotlib Figure (not registered with pyplot, so nothing leaks) with ``n_panels`` axes
    in a grid. Returns ``(figure, axes)`` with ``axes`` a flat list of the used panels."""
    from matplotlib.figure import Figure

    apply_style()
    if n_panels < 1:
        raise ValueError(f"n_panels: must be >= 1, got {n_panels}")
    ncols = ncols or min(n_panels, 3)
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows), layout="constrained")
    grid = fig.subplots(nrows, ncols, squeeze=False, sharex=sharex, sharey=sharey)
    axes = list(grid.ravel())
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _check_frame(frame: pd.DataFrame, columns: Iterable[str | None], name: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{name}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c is not None and c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {missing}; has {list(frame.columns)}")


def _levels(frame: pd.DataFrame, column: str | None) -> list:
    """The levels of a hue/style/panel column in plotting order: a categorical column's own
    category order (the present ones), otherwise numbers ascending, then strings."""
    if column is None:
        return [None]
    values = frame[column]
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna().unique().tolist())
        return [c for c in values.cat.categories.tolist() if c in present]
    return sorted(values.dropna().unique().tolist(), key=_sort_key)


def _sort_key(value):
    return (0, value, "") if isinstance(value, (int, float, np.integer, np.floating)) else (1, 0, str(value))


#: Facet columns whose values are themselves column names (a melted frame): the title is the value's label.
_MELTED = ("quantity", "variable", "metric")


def _panel_title(col: str | None, cv, row: str | None, rv) -> str:
    """'η = 0.1,  d = 4'; a melted frame's panel is titled by its quantity's label, never a raw column name."""
    parts = []
    for key, value in ((row, rv), (col, cv)):
        if key is None:
            continue
        if isinstance(value, str) and value in SYMBOLS:
            parts.append(SYMBOLS[value] if key in _MELTED else f"{_short(key)} = {SYMBOLS[value]}")
        else:
            parts.append(f"{_short(key)} = {format_value(value)}")
    return ",  ".join(parts)


_SHORT = {"eta": r"$\eta$", "dim": r"$d$", "d": r"$d$", "n": r"$n$", "m": r"$m$", "N": r"$N$",
          "n_contexts": r"$X$", "n_actions": r"$K$", "reg": r"$\lambda$", "beta": r"$\beta$"}


def _short(column: str) -> str:
    """A short symbol for legends and panel titles (η rather than 'KL coefficient η')."""
    return _SHORT.get(column, column.replace("_", " "))


def _panels(frame, col, row):
    cols, rows = _levels(frame, col), _levels(frame, row)
    return [(rv, cv) for rv in rows for cv in cols], len(cols)


def _subset(frame, **keys):
    mask = np.ones(len(frame), dtype=bool)
    for column, value in keys.items():
        if column is not None and value is not None:
            mask &= (frame[column] == value).to_numpy()
    return frame[mask]


def _colors(levels: list) -> dict:
    """Colours of a figure's hue levels: a level named in :data:`COLORS` keeps its colour in every
    figure of every report; the other levels take palette colours no registered level of this
    figure uses (numeric levels — η, d, n — stay in palette order)."""
    import seaborn as sns

    if levels == [None]:
        return {None: sns.color_palette(PALETTE)[0]}
    fixed = {lv: COLORS[str(lv)] for lv in levels if isinstance(lv, str) and str(lv) in COLORS}
    rest = [lv for lv in levels if lv not in fixed]
    if len(rest) > 10:
        return {**fixed, **dict(zip(rest, sns.color_palette("viridis", len(rest))))}
    taken = {tuple(np.round(np.asarray(sns.utils.to_rgb(c)), 4)) for c in fixed.values()}
    free = [c for c in sns.color_palette(PALETTE, 10) if tuple(np.round(np.asarray(c), 4)) not in taken]
    free += sns.color_palette("dark", 10)
    return {**fixed, **dict(zip(rest, free))}


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_DASHES = ("-", "--", ":", "-.")


def line_plot(frame: pd.DataFrame, x: str, y: str, *, hue: str | None = None, style: str | None = None,
              col: str | None = None, row: str | None = None, logx: bool = False, logy: bool = False,
              band: str | None = "ci", level: float = 0.95, markers: bool = True,
              reference_slopes: Sequence[float] = (), slope_labels: Sequence[str] | None = None,
              sharey: bool = False, title: str | None = None, xlabel: str | None = None,
              ylabel: str | None = None, ncols: int | None = None, legend: bool = True):
    """Mean of ``y`` against ``x`` with a confidence band across replicate rows (seeds).

    One line per ``hue`` level (colour) × ``style`` level (dash/marker); one panel per
    ``col`` × ``row`` level. ``reference_slopes`` adds, in every panel, grey guide lines of the
    given log–log slopes anchored at the first point of the first line (see
    :func:`add_slope_guide`; labelled by ``slope_labels`` or "∝ x^slope"). Returns the Figure.
    """
    _check_frame(frame, [x, y, hue, style, col, row], "frame")
    if frame.empty:
        raise ValueError("frame: nothing to plot (empty frame)")
    if reference_slopes and not (logx and logy):
        raise ValueError("reference_slopes: slope guides need logx=True and logy=True")
    keys = [k for k in (row, col, hue, style) if k is not None]
    stats = summarize(frame, y, keys + [x], band=band, level=level, log=logy)
    panels, n_cols = _panels(frame, col, row)
    fig, axes = new_figure(len(panels), ncols=ncols or n_cols if row is not None else ncols, sharey=sharey)
    hues, styles = _levels(frame, hue), _levels(frame, style)
    colors = _colors(hues)
    for ax, (rv, cv) in zip(axes, panels):
        panel = _subset(stats, **{row or "_": rv, col or "_": cv}) if (row or col) else stats
        first = None
        for hv in hues:
            for si, sv in enumerate(styles):
                part = _subset(panel, **{hue or "_": hv, style or "_": sv}).sort_values(x)
                part = part[np.isfinite(part["mean"].to_numpy(dtype=float))]
                if logy:
                    part = part[part["mean"] > 0]
                if logx:
                    part = part[part[x] > 0]
                if part.empty:
                    continue
                xs = part[x].to_numpy(dtype=float)
                mean, lo, hi = (part[c].to_numpy(dtype=float) for c in ("mean", "lo", "hi"))
                if logy:
                    floor = np.nanmin(mean) * 1e-3
                    lo = np.maximum(lo, floor)
                name = _legend_name(hue, hv, style, sv)
                ax.plot(xs, mean, color=colors[hv], linestyle=_DASHES[si % len(_DASHES)],
                        marker=_MARKERS[si % len(_MARKERS)] if markers else None, label=name)
                if band is not None:
                    ax.fill_between(xs, lo, hi, color=colors[hv], alpha=0.2, linewidth=0)
                if first is None:
                    first = (xs[0], mean[0])
        if logx:
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        if first is not None:
            labels = slope_labels or [None] * len(reference_slopes)
            for i, (slope, text) in enumerate(zip(reference_slopes, labels)):
                add_slope_guide(ax, slope, first, label=text, linestyle=_DASHES[(i + 1) % len(_DASHES)])
        ax.set_xlabel(xlabel if xlabel is not None else label(x))
        ax.set_ylabel(ylabel if ylabel is not None else label(y))
        ax.set_title(_panel_title(col, cv, row, rv))
    _finish(fig, axes, title, legend and (hue is not None or style is not None or bool(reference_slopes)))
    return fig


def _legend_name(hue, hv, style, sv) -> str | None:
    parts = []
    if hue is not None:
        parts.append(f"{_short(hue)} = {format_value(hv)}")
    if style is not None:
        parts.append(f"{_short(style)} = {format_value(sv)}")
    return ", ".join(parts) or None


def _finish(fig, axes, title, legend: bool) -> None:
    if title:
        fig.suptitle(title)
    if not legend:
        return
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, text in zip(*ax.get_legend_handles_labels()):
            if text and not text.startswith("_"):
                seen.setdefault(text, handle)
    if seen:
        fig.legend(list(seen.values()), list(seen.keys()), loc="outside right center")


def add_slope_guide(ax, slope: float, anchor: tuple[float, float], *, label: str | None = None,
                    color: str = "0.45", linestyle: str = "--") -> None:
    """A guide line y = y0 (x/x0)^slope through ``anchor`` = (x0, y0) across the axis' x range
    (on log–log axes it is a straight line of the given slope). Shows the *shape* of a rate."""
    if not np.isfinite(slope):
        raise ValueError(f"slope: must be finite, got {slope}")
    x0, y0 = (float(v) for v in anchor)
    if x0 <= 0 or y0 <= 0:
        raise ValueError(f"anchor: needs positive coordinates on log axes, got {anchor}")
    lo, hi = ax.get_xlim()
    lo = max(lo, x0 / 1e6)
    xs = np.geomspace(lo, hi, 50)
    text = label if label is not None else _slope_text(slope)
    ax.plot(xs, y0 * (xs / x0) ** slope, color=color, linestyle=linestyle, linewidth=1.1, label=text, zorder=1)
    ax.set_xlim(lo, hi)


def _slope_text(slope: float) -> str:
    named = {-0.5: r"$\propto 1/\sqrt{n}$", -1.0: r"$\propto 1/n$", -2.0: r"$\propto 1/n^2$", 0.5: r"$\propto\sqrt{x}$"}
    return named.get(float(slope), rf"$\propto x^{{{slope:g}}}$")


def path_plot(frame: pd.DataFrame, x: str, y: str, *, order: str, hue: str | None = None,
              col: str | None = None, logx: bool = False, logy: bool = False, band: bool = True,
              annotate: Sequence[Any] = (), title: str | None = None, xlabel: str | None = None,
              ylabel: str | None = None, ncols: int | None = None):
    """A curve traced in the order of ``order`` (e.g. gold reward against √KL traced by η).

    Replicate rows sharing (``col``, ``hue``, ``order``) are averaged; with ``band`` the 95 % CI
    of ``y`` is drawn as a band (and of ``x`` as horizontal error bars). ``annotate`` lists values
    of ``order`` to label on the curve (e.g. a few η). Returns the Figure.
    """
    _check_frame(frame, [x, y, order, hue, col], "frame")
    if frame.empty:
        raise ValueError("frame: nothing to plot (empty frame)")
    keys = [k for k in (col, hue) if k is not None] + [order]
    sy = summarize(frame, y, keys, band="ci" if band else None)
    sx = summarize(frame, x, keys, band="ci" if band else None)
    stats = sy.merge(sx, on=keys, suffixes=("", "_x"))
    panels, n_cols = _panels(frame, col, None)
    fig, axes = new_figure(len(panels), ncols=ncols)
    hues = _levels(frame, hue)
    colors = _colors(hues)
    for ax, (_, cv) in zip(axes, panels):
        panel = _subset(stats, **{col or "_": cv}) if col else stats
        for hv in hues:
            part = _subset(panel, **{hue or "_": hv}).sort_values(order)
            if part.empty:
                continue
            xs, ys = part["mean_x"].to_numpy(float), part["mean"].to_numpy(float)
            ax.plot(xs, ys, color=colors[hv], marker="o", label=_legend_name(hue, hv, None, None))
            if band:
                ax.fill_between(xs, part["lo"].to_numpy(float), part["hi"].to_numpy(float),
                                color=colors[hv], alpha=0.2, linewidth=0)
            for value in annotate:
                hit = part[np.isclose(part[order].to_numpy(float), float(value))]
                if not hit.empty:
                    ax.annotate(f"{_short(order)}={format_value(value)}", (hit["mean_x"].iloc[0], hit["mean"].iloc[0]),
                                textcoords="offset points", xytext=(4, -10), fontsize="x-small", color="0.3")
        if logx:
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel if xlabel is not None else label(x))
        ax.set_ylabel(ylabel if ylabel is not None else label(y))
        ax.set_title(_panel_title(col, cv, None, None))
    _finish(fig, axes, title, hue is not None)
    return fig


def bar_plot(frame: pd.DataFrame, x: str, y: str, *, hue: str | None = None, logy: bool = False,
             title: str | None = None, xlabel: str | None = None, ylabel: str | None = None):
    """Mean of ``y`` per ``x`` category (grouped by ``hue``) with 95 % CI error bars across
    replicate rows. Returns the Figure."""
    _check_frame(frame, [x, y, hue], "frame")
    if frame.empty:
        raise ValueError("frame: nothing to plot (empty frame)")
    keys = [x] + ([hue] if hue else [])
    stats = summarize(frame, y, keys, log=logy)
    xs, hues = _levels(frame, x), _levels(frame, hue)
    colors = _colors(hues)
    fig, (ax,) = new_figure(1, panel_size=(max(4.2, 0.6 * len(xs) * len(hues)), 3.3))
    width = 0.8 / len(hues)
    for i, hv in enumerate(hues):
        part = _subset(stats, **{hue or "_": hv}).set_index(x).reindex(xs)
        pos = np.arange(len(xs)) - 0.4 + width * (i + 0.5)
        mean = part["mean"].to_numpy(float)
        err = np.vstack([mean - part["lo"].to_numpy(float), part["hi"].to_numpy(float) - mean])
        ax.bar(pos, mean, width=width, color=colors[hv], yerr=err, capsize=2,
               label=_legend_name(hue, hv, None, None))
    ax.set_xticks(np.arange(len(xs)), [format_value(v) for v in xs], rotation=30 if len(xs) > 4 else 0)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel if xlabel is not None else label(x))
    ax.set_ylabel(ylabel if ylabel is not None else label(y))
    _finish(fig, [ax], title, hue is not None)
    return fig


def heatmap(frame: pd.DataFrame, x: str, y: str, value: str, *, log: bool = False, fmt: str = ".2g",
            cmap: str = "viridis", title: str | None = None):
    """Mean of ``value`` over replicates on the (``y`` rows × ``x`` columns) grid, annotated.
    With ``log`` the colour scale is log10 of the (positive) means. Returns the Figure."""
    import seaborn as sns
    from matplotlib.colors import LogNorm

    _check_frame(frame, [x, y, value], "frame")
    if frame.empty:
        raise ValueError("frame: nothing to plot (empty frame)")
    stats = summarize(frame, value, [y, x], band=None)
    grid = stats.pivot(index=y, columns=x, values="mean")
    fig, (ax,) = new_figure(1, panel_size=(max(4.2, 0.7 * grid.shape[1] + 1.5), max(3.0, 0.45 * grid.shape[0] + 1)))
    norm = LogNorm() if log and (grid.to_numpy() > 0).all() else None
    sns.heatmap(grid, ax=ax, annot=True, fmt=fmt, cmap=cmap, norm=norm, cbar_kws={"label": label(value)})
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(y))
    ax.set_xticklabels([format_value(v) for v in grid.columns])
    ax.set_yticklabels([format_value(v) for v in grid.index], rotation=0)
    if title:
        fig.suptitle(title)
    return fig
