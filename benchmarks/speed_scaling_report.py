"""Report of study ``scaling`` (see ``benchmarks/speed_scaling.py``): time and peak memory of every
algorithm family against each axis, the fitted growth exponents, and the largest size that runs in
a minute — every number computed from the results frame.

Pure pieces, used by the report and tested on synthetic timings (``tests/test_speed_scaling.py``):

- :func:`growth_exponent`: the log–log slope of a cost against the size over the upper half of the
  measured sizes (those ≥ the middle one, where fixed per-call overheads matter least), with its
  standard error;
- :func:`largest_within`: the largest size whose cost stays within a limit — read off the measured
  sizes when one of them exceeds the limit, otherwise extrapolated from the last measured size with
  the fitted exponent (and never beyond a size that failed or was skipped for memory).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.speed_scaling import AXES, FAMILIES
from rlbandit.stats import loglog_slope
from rlbandit.study import ReportContent, ReportFigure

__all__ = ["report", "growth_exponent", "largest_within", "medians", "exponent_table", "minute_table",
           "family_table", "stopped_table", "MINUTE_S", "MEMORY_GIB"]

#: The time limit of the headline table (seconds) and the memory a size may use there (GiB).
MINUTE_S = 60.0
MEMORY_GIB = 4.0
#: Exponents below this count as flat: no extrapolation from them.
FLAT = 0.05
#: The minute table extrapolates at most this factor beyond the largest measured size.
MAX_FACTOR = 100.0
_KEYS = ["family", "method", "axis"]
_GIB = 2.0 ** 30


def growth_exponent(sizes, values) -> tuple[float, float, int]:
    """Growth exponent p of ``values ∝ sizes^p``: the least-squares slope of log(values) on
    log(sizes) over the sizes ≥ the middle measured one (the upper half; index ⌊(m−1)/2⌋ onward of
    the m sizes sorted), and its standard error sqrt(Σ residual² / (k − 2) / Σ (log s − mean)²).

    Args:
        sizes: shape (m,), > 0, distinct.
        values: shape (m,), > 0 (e.g. median seconds per size); NaN entries are dropped first.

    Returns:
        ``(p, se, k)``: k the number of points fitted; p NaN when fewer than 2 sizes remain, se NaN
        when fewer than 3.
    """
    sizes, values = np.asarray(sizes, dtype=float), np.asarray(values, dtype=float)
    if sizes.ndim != 1 or sizes.shape != values.shape:
        raise ValueError(f"sizes, values: expected two 1-d arrays of one length, got {sizes.shape} and {values.shape}")
    keep = ~np.isnan(values)
    sizes, values = sizes[keep], values[keep]
    if (sizes <= 0).any() or (values <= 0).any() or not np.isfinite(values).all():
        raise ValueError("sizes, values: a log–log fit needs finite sizes and values > 0")
    if np.unique(sizes).size != sizes.size:
        raise ValueError(f"sizes: must be distinct, got {sizes.tolist()}")
    order = np.argsort(sizes)
    sizes, values = sizes[order], values[order]
    start = (sizes.size - 1) // 2
    x, y = sizes[start:], values[start:]
    k = x.size
    if k < 2:
        return float("nan"), float("nan"), k
    slope = float(loglog_slope(x, y))
    if k < 3:
        return slope, float("nan"), k
    lx, ly = np.log(x), np.log(y)
    residual = ly - ly.mean() - slope * (lx - lx.mean())
    se = float(np.sqrt((residual ** 2).sum() / (k - 2) / ((lx - lx.mean()) ** 2).sum()))
    return slope, se, k


def largest_within(sizes, values, limit: float, exponent: float, ceiling: float | None = None,
                   max_factor: float = np.inf) -> tuple[float, str]:
    """The largest size whose cost stays ≤ ``limit``.

    Args:
        sizes, values: the measured sizes and costs, shape (m,), m ≥ 1 (NaN costs dropped).
        limit: the cost limit (> 0).
        exponent: the fitted growth exponent of the cost (NaN or ≤ :data:`FLAT`: flat).
        ceiling: a size known not to run (it failed, or was skipped for memory), or None.
        max_factor: extrapolate at most this factor beyond the largest measured size.

    Returns:
        ``(size, how)`` with ``how``:
        ``"measured"`` — the largest measured size within the limit, a larger measured one over it;
        ``"extrapolated"`` — s_L (limit / c_L)^{1/p} from the last measured size s_L and cost c_L;
        ``"ceiling"`` — the extrapolation reached ``ceiling``, which is returned: an upper bound
        (something other than time stops the growth there);
        ``"beyond"`` — the extrapolation passed ``max_factor`` · s_L, which is returned;
        ``"lower bound"`` — no growth to extrapolate (a flat or unknown exponent): the largest
        measured size;
        ``"none"`` — even the smallest measured size costs more than the limit (size NaN).
    """
    sizes, values = np.asarray(sizes, dtype=float), np.asarray(values, dtype=float)
    if sizes.ndim != 1 or sizes.shape != values.shape:
        raise ValueError(f"sizes, values: expected two 1-d arrays of one length, got {sizes.shape} and {values.shape}")
    if not limit > 0:
        raise ValueError(f"limit: must be > 0, got {limit}")
    keep = ~np.isnan(values)
    sizes, values = sizes[keep], values[keep]
    if sizes.size == 0:
        raise ValueError("sizes: need at least one measured size")
    order = np.argsort(sizes)
    sizes, values = sizes[order], values[order]
    within = values <= limit
    if not within.any():
        return float("nan"), "none"
    if not within.all():
        return float(sizes[within].max()), "measured"
    last, cost = sizes[-1], values[-1]
    if ceiling is not None and ceiling <= last:
        raise ValueError(f"ceiling: {ceiling} must exceed the largest measured size {last}")
    if not np.isfinite(exponent) or exponent <= FLAT:
        return float(last), "lower bound"
    size = float(last * (limit / cost) ** (1.0 / exponent))
    if ceiling is not None and size >= ceiling and ceiling <= max_factor * last:
        return float(ceiling), "ceiling"
    if size > max_factor * last:
        return float(max_factor * last), "beyond"
    return size, "extrapolated"


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

def medians(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per family × method × axis × size: the median time of the repeats (``time_s``), its
    range, the median reference time, the peak memory, the status and message."""
    grouped = frame.groupby(_KEYS + ["size"], sort=False)
    out = grouped.agg(time_s=("time_s", "median"), time_min=("time_s", "min"), time_max=("time_s", "max"),
                      repeats=("time_s", "count"), ref_s=("ref_s", "median"), peak_bytes=("peak_bytes", "first"),
                      status=("status", "first"), message=("message", "first"), cap_s=("cap_s", "first"),
                      mem_cap_gib=("mem_cap_gib", "first")).reset_index()
    return out.sort_values(_KEYS + ["size"], kind="stable").reset_index(drop=True)


def _stop(part: pd.DataFrame):
    """The first size of a series that is not ``ok`` (its row), or None."""
    bad = part[part["status"] != "ok"]
    return None if bad.empty else bad.iloc[0]


def exponent_table(med: pd.DataFrame) -> pd.DataFrame:
    """Per family × method × axis: the measured sizes, the time and memory growth exponents
    (:func:`growth_exponent`, "p ± se (k points)"), time and peak at the largest measured size, where
    the axis stopped and the largest size in :data:`MINUTE_S` seconds (:func:`largest_within`)."""
    rows = []
    for (family, method, axis), part in med.groupby(_KEYS, sort=False):
        ok = part[(part["status"] == "ok") & part["time_s"].notna()]
        stop = _stop(part)
        row = {"family": family, "method": method, "axis": axis,
               "sizes measured": f"{_size(ok['size'].min())}–{_size(ok['size'].max())}" if len(ok) else "none"}
        p, se, k = growth_exponent(ok["size"], ok["time_s"]) if len(ok) else (np.nan, np.nan, 0)
        mem = ok[ok["peak_bytes"] > 0]
        pm, sem, km = growth_exponent(mem["size"], mem["peak_bytes"]) if len(mem) else (np.nan, np.nan, 0)
        row.update({"time exponent": p, "± se": se, "points": k, "memory exponent": pm, "± se (memory)": sem,
                    "time at largest (s)": ok["time_s"].iloc[-1] if len(ok) else np.nan,
                    "peak at largest (MiB)": ok["peak_bytes"].iloc[-1] / 2 ** 20 if len(ok) else np.nan,
                    "stopped": "" if stop is None else f"{stop['status']} at {axis} = {_size(stop['size'])}"})
        ceiling = None
        if stop is not None and (stop["status"] == "failed" or "memory" in str(stop["message"])):
            ceiling = float(stop["size"])
        row.update(_minute(ok, mem, p if k >= 3 else np.nan, pm if km >= 3 else np.nan, ceiling))
        rows.append(row)
    return pd.DataFrame(rows)


def _minute(ok: pd.DataFrame, mem: pd.DataFrame, p: float, pm: float, ceiling: float | None) -> dict:
    """The largest size in :data:`MINUTE_S` s that also stays within :data:`MEMORY_GIB` of traced
    memory: the smaller of the two :func:`largest_within` answers (exponents from ≥ 3 sizes only)."""
    if ok.empty:
        return {"largest in a minute": np.nan, "how": "not measured", "bound by": "time"}
    size, how = largest_within(ok["size"], ok["time_s"], MINUTE_S, p, ceiling, MAX_FACTOR)
    out = {"largest in a minute": size, "how": how, "bound by": "time"}
    if how == "none" or mem.empty:  # time alone rules it out, or no peak was measured
        return out
    m_size, m_how = largest_within(mem["size"], mem["peak_bytes"], MEMORY_GIB * _GIB, pm, ceiling, MAX_FACTOR)
    if m_how in ("measured", "extrapolated", "none") and not m_size >= size:
        out.update({"largest in a minute": m_size, "how": m_how, "bound by": f"memory ({MEMORY_GIB:g} GiB)"})
    return out


_MARK = {"measured": "", "extrapolated": "~", "ceiling": "<", "lower bound": "≥", "beyond": "≳"}


def minute_table(exponents: pd.DataFrame) -> pd.DataFrame:
    """The headline: per family × method, the largest size of each axis that runs in
    :data:`MINUTE_S` s within :data:`MEMORY_GIB` GiB (the other axes at base size). ``~``
    extrapolated from the growth exponent, ``<`` below a size that failed or ran out of the memory
    budget, ``≥`` no measurable growth (the largest size measured), ``≳`` the extrapolation passes
    :data:`MAX_FACTOR` × the largest measured size (shown there); unmarked: measured; ``(mem)``:
    memory, not time, sets the limit."""
    rows = []
    for (family, method), part in exponents.groupby(["family", "method"], sort=False):
        row = {"family": family, "method": method}
        for axis in AXES:
            hit = part[part["axis"] == axis]
            if hit.empty:
                row[axis] = ""
                continue
            r = hit.iloc[0]
            text = r["how"] if r["how"] not in _MARK else _MARK[r["how"]] + _size(r["largest in a minute"])
            row[axis] = text + (" (mem)" if r["bound by"] != "time" else "")
        rows.append(row)
    return pd.DataFrame(rows)


def family_table(med: pd.DataFrame, family: str) -> pd.DataFrame:
    """Rows axis × size, one column per method of ``family``: "time · peak" or the status."""
    part = med[med["family"] == family]
    cells = part.assign(cell=[_cell(r) for _, r in part.iterrows()])
    table = cells.pivot_table(index=["axis", "size"], columns="method", values="cell", aggfunc="first", sort=False)
    order = [m for m in FAMILIES[family].methods() if m in table.columns] if family in FAMILIES else list(table.columns)
    table = table[order + [c for c in table.columns if c not in order]].fillna("")
    table = table.reset_index()
    table["axis"] = pd.Categorical(table["axis"], [a for a in AXES if a in set(table["axis"])], ordered=True)
    table = table.sort_values(["axis", "size"]).reset_index(drop=True)
    table["axis"] = table["axis"].astype(str)
    table.columns.name = None
    return table


def stopped_table(med: pd.DataFrame) -> pd.DataFrame:
    """Every series whose axis stopped before its grid's end: the first capped / failed / skipped
    size, its message, and how many larger sizes were skipped after it."""
    rows = []
    for (family, method, axis), part in med.groupby(_KEYS, sort=False):
        stop = _stop(part)
        if stop is None:
            continue
        rows.append({"family": family, "method": method, "axis": axis, "size": int(stop["size"]),
                     "status": stop["status"], "message": stop["message"],
                     "larger sizes skipped": int((part["size"] > stop["size"]).sum())})
    return pd.DataFrame(rows, columns=["family", "method", "axis", "size", "status", "message", "larger sizes skipped"])


def _size(value) -> str:
    value = float(value)
    if not np.isfinite(value):
        return "—"
    if value < 1e5:
        return f"{int(value):,}" if value == int(value) else f"{value:,.0f}"
    return f"{value:.2g}".replace("e+0", "e").replace("e+", "e")


def _cell(row) -> str:
    if row["status"] == "ok":
        peak = row["peak_bytes"] / 2 ** 20
        return f"{row['time_s']:.3g} s · {peak:.3g} MiB" if np.isfinite(peak) else f"{row['time_s']:.3g} s"
    if row["status"] == "capped":
        return f"capped (> {row['cap_s']:g} s)"
    if row["status"] == "failed":
        return f"failed ({str(row['message']).split(':')[0]})"
    return "skipped"


# ---------------------------------------------------------------------------------------------
# Figures, summary, report
# ---------------------------------------------------------------------------------------------

def _figure(med: pd.DataFrame, y: str, ylabel: str, name: str, caption: str) -> ReportFigure:
    from rlbandit import plots

    ok = med[(med["status"] == "ok") & med[y].notna() & (med[y] > 0)].copy()
    ok["axis"] = pd.Categorical(ok["axis"], [a for a in AXES if a in set(ok["axis"])], ordered=True)
    fig = plots.line_plot(ok, x="size", y=y, hue="method", style="family", col="axis", logx=True, logy=True,
                          band=None, ncols=3, xlabel="size of the grown axis", ylabel=ylabel)
    return ReportFigure(name, fig, caption)


def _summary(exps: pd.DataFrame, stopped: pd.DataFrame, med: pd.DataFrame) -> str:
    lines, flat_capped = [], []
    fits = exps[exps["points"] >= 3].dropna(subset=["time exponent"])
    for axis in AXES:
        part = fits[fits["axis"] == axis]
        if part.empty:
            continue
        top = part.loc[part["time exponent"].idxmax()]
        low = part.loc[part["time exponent"].idxmin()]
        lines.append(f"- Against {axis}: the steepest time growth is `{top['family']}/{top['method']}` "
                     f"(exponent {top['time exponent']:.2f} ± {top['± se']:.2f}, {axis} = {top['sizes measured']}), "
                     f"the flattest `{low['family']}/{low['method']}` ({low['time exponent']:.2f} ± "
                     f"{low['± se']:.2f}, {axis} = {low['sizes measured']}); "
                     f"{len(part)} series fitted (growth-exponent table).")
        if low["stopped"]:
            flat_capped.append(f"`{low['method']}` in {axis} ({low['stopped']}, "
                               f"{low['time at largest (s)']:.2g} s at the largest measured size)")
    if flat_capped:
        lines.append("- A flattest series that stopped before the end of its grid was fitted below the cap only, "
                     "where per-call overhead can still dominate (Notes): " + "; ".join(flat_capped) + ".")
    pair = exps[(exps["family"] == "online") & exps["method"].isin(["optimistic", "ucb"])]
    if set(pair["method"]) == {"optimistic", "ucb"}:
        reach = pair.pivot(index="axis", columns="method", values="sizes measured")
        pairs = "; ".join(f"{axis}: {reach.loc[axis, 'optimistic']} against {reach.loc[axis, 'ucb']}"
                          for axis in AXES if axis in reach.index)
        lines.append(f"- Sizes measured within the cap, `optimistic` against `ucb` (growth-exponent table): {pairs}.")
    steep = fits[fits["time exponent"] > 1.5]
    if len(steep):
        lines.append("- Super-linear in time (exponent > 1.5): " + ", ".join(
            f"`{r['method']}` in {r['axis']} ({r['time exponent']:.2f})" for _, r in steep.iterrows()) + ".")
    if len(stopped):
        counts = stopped["status"].value_counts()
        lines.append(f"- {len(stopped)} series stopped before the end of their grid: "
                     + ", ".join(f"{int(v)} {k}" for k, v in counts.items())
                     + " (first stopped size and message in the stopped-series table).")
        for _, r in stopped[stopped["status"] == "failed"].iterrows():
            lines.append(f"  - `{r['family']}/{r['method']}` failed at {r['axis']} = {r['size']:,}: {r['message']}")
    ref = med["ref_s"].dropna()
    if len(ref):
        lines.append(f"- Machine speed during the sweep: the reference call (one `np.exp` over 2¹⁸ floats, "
                     f"interleaved with the repeats) took {1e3 * ref.min():.3g}–{1e3 * ref.max():.3g} ms "
                     f"(median {1e3 * ref.median():.3g} ms); a max/min of {ref.max() / ref.min():.2g}× "
                     "is the load noise every time in this report carries (reference table).")
    return "\n".join(lines)


def _reference_table(med: pd.DataFrame) -> pd.DataFrame:
    part = med.dropna(subset=["ref_s"])
    table = part.groupby("family", sort=False)["ref_s"].agg(["min", "median", "max", "count"]) * [1e3, 1e3, 1e3, 1]
    table.columns = ["min (ms)", "median (ms)", "max (ms)", "sizes"]
    return table.reset_index()


def _notes(frame: pd.DataFrame) -> str:
    first = frame.iloc[0]
    caps = ", ".join(f"{c:g} s" for c in sorted(frame["cap_s"].unique()))
    return "\n".join([
        "- Time: each run first primes its method with one unmeasured call at the smallest size (imports, "
        "caches); then per size, after a full garbage collection, one warm-up call (not counted; it also probes "
        f"the cap), one call under `tracemalloc`, then up to {int(frame['repeats'].max())} timed calls within "
        f"{frame['budget_s'].max():g} s, with automatic garbage collection off during each call (as `timeit` "
        "does); the tables show the median. Inputs are built before the timed region. Runs share the runner's "
        "worker processes (a fresh process per run would add seconds of imports to each); each worker runs one "
        "BLAS thread, and the sweep runs as many calls at once as the runner has workers, so the machine's other "
        "load shows in the times (the reference table tracks it).",
        "- Memory: the peak of `tracemalloc`'s traced allocations during one call, above what was allocated "
        "before it. NumPy registers its array buffers with tracemalloc, so this counts every array and Python "
        "object the call holds at once; it does not count BLAS/LAPACK workspaces, cvxpy's C solvers or memory "
        "freed by other allocators. Tracing slows Python-heavy calls several-fold, which is why time and memory "
        "come from different calls.",
        f"- Caps: a call running past the cap ({caps}) is stopped by a timer signal and its size marked capped; "
        "a call that raises MemoryError or ValueError (every call runs under an address-space limit of "
        f"{first['guard_gib']:g} GiB above the process' own) is marked failed with its message; the axis then "
        f"stops growing, as it does when the peak memory extrapolated from the two previous sizes exceeds "
        f"{first['mem_cap_gib']:g} GiB. Later sizes are marked skipped.",
        "- Growth exponents: the log–log least-squares slope over the sizes ≥ the middle measured size (small "
        "sizes measure fixed per-call overhead), ± its standard error (none with two points). The "
        f"largest size in a minute extrapolates t(s_L)·(s/s_L)^p = {MINUTE_S:g} s from the largest measured size "
        "s_L with that exponent, far beyond the measured range when the cap is much below a minute: read it as an "
        f"order of magnitude. It is capped where the peak traced memory, extrapolated alike from the memory "
        f"exponent, reaches {MEMORY_GIB:g} GiB (marked (mem)), and never extrapolated past {MAX_FACTOR:g}× the "
        "largest measured size (marked ≳); extrapolation needs an exponent fitted on ≥ 3 sizes. Near the cap a "
        "call often still carries fixed overhead, so a fitted exponent below the algorithm's asymptotic one makes "
        "the extrapolation optimistic; raising `cap_s` (a config field) measures further at more cost.",
        f"- Base sizes: X = {first['X']}, K = {first['K']}, d = {first['d']}, n = {first['n']}, seeds = "
        f"{first['seeds']} (nash: its own base, see 'What was run'); online: T = {first['online_T']} rounds of "
        f"n / T comparisons; best-of-N: N = {first['bon_n']}; η = {first['eta']:g}, λ = {first['reg']:g}.",
    ])


def report(frame: pd.DataFrame) -> ReportContent:
    med = medians(frame)
    exps = exponent_table(med)
    stopped = stopped_table(med)
    headline = minute_table(exps)
    tables = [(f"Largest size that runs in {MINUTE_S:g} s within {MEMORY_GIB:g} GiB of traced memory, per axis (others "
               "at base size; ~ extrapolated from the growth exponent, < bounded by a size that failed or exceeded "
               "the memory budget, ≥ no measurable growth or too few sizes (the largest measured), ≳ extrapolated "
               f"past {MAX_FACTOR:g}× the largest measured size (shown there); unmarked: measured; (mem): memory, "
               "not time, sets the limit)", headline),
              ("Growth exponents of time and peak memory (log–log slope over the upper half of the measured sizes)",
               exps)]
    for family in [f for f in FAMILIES if f in set(med["family"])]:
        tables.append((f"{family}: median time · peak traced memory per call, against each axis",
                       family_table(med, family)))
    tables.append(("Stopped series: the first capped, failed or skipped size", stopped))
    tables.append(("Reference call (np.exp over 2¹⁸ floats) during each family's runs: machine speed",
                   _reference_table(med)))
    figures = (
        _figure(med, "time_s", "median time per call (s)", "time",
                "Median time per call against the size of each axis (log–log; one panel per axis, the other axes "
                "at base size; colour = method, line style = family; medians, no bands). Only measured sizes are "
                "drawn: a line ends where the next size was capped (a call past the per-call cap), failed or "
                "skipped for memory (stopped-series table)."),
        _figure(med.assign(peak_mib=med["peak_bytes"] / 2 ** 20), "peak_mib", "peak traced memory (MiB)", "memory",
                "Peak traced memory per call (tracemalloc) against the size of each axis (log–log, as above)."),
    )
    return ReportContent(summary=_summary(exps, stopped, med), tables=tuple(tables), figures=figures,
                         notes=_notes(frame))
