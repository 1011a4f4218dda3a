"""Matched budgets and per-budget cost for the ``oracles`` report (:mod:`benchmarks.oracles_report`).

Every row of the study carries ``budget`` in ``budget_unit`` ∈ {"reward queries", "comparisons"} (and
``budget_scope``: a training total, or per prompt at inference for best-of-N) and ``fit_wall_s``, the
wall time of producing that budget point's policy. Here each method is read at common budget values
of its own unit — a comparison is one unit of "comparisons", never converted to reward queries —
interpolating log KL linearly in log budget between the two nearest measured budgets where the method
was not measured exactly there (never extrapolating), and the cost is the fit time over one exact
Gibbs call on the same problems.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: budget unit → the common budget values every method of that unit is compared at.
MATCHED = {"reward queries": (1024, 4096), "comparisons": (1024, 4096)}


def sig(value, digits: int = 3):
    """``value`` to ``digits`` significant figures (what both the tables and the sentences show)."""
    return float(f"{value:.{digits}g}") if np.isfinite(value) else np.nan


def sig_frame(frame: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if not pd.api.types.is_float_dtype(out[column]):
            continue
        finite = out[column][np.isfinite(out[column])]
        if len(finite) and column != "eta" and (finite == finite.round()).all() and finite.abs().max() >= 10:
            out[column] = out[column].round().astype("Int64")  # budgets, N: exact integers, not 4.1e+03
        else:
            out[column] = out[column].map(lambda v: sig(v, digits))
    return out


def budget_curves(frame: pd.DataFrame) -> pd.DataFrame:
    """Seed-mean KL to Gibbs and median fit/oracle time ratio per scenario × η × variant × budget > 0 (the
    methods measured against a budget; ``kl_options``, exact gradients, has none)."""
    part = frame[(frame["method"] != "kl_options") & (frame["budget"] > 0)]
    part = part.assign(ratio=part["fit_wall_s"] / part["oracle_wall_s"])
    keys = ["scenario", "eta", "method", "variant", "budget_unit", "budget_scope", "budget"]
    return (part.groupby(keys).agg(kl=("kl_to_target", "mean"), fit_wall_s=("fit_wall_s", "median"),
                                   ratio=("ratio", "median"))
            .reset_index())


def _log_interp(budgets: np.ndarray, values: np.ndarray, at: float) -> tuple[float, str]:
    """``values`` at budget ``at``: exact if measured; else log-log linear between the neighbours."""
    order = np.argsort(budgets)
    budgets, values = budgets[order], values[order]
    hit = np.flatnonzero(budgets == at)
    if hit.size:
        return float(values[hit[0]]), "measured"
    if at < budgets[0] or at > budgets[-1] or not np.all(values > 0):
        return np.nan, "outside measured range"
    return float(np.exp(np.interp(np.log(at), np.log(budgets), np.log(values)))), "interpolated (log–log)"


def matched_table(frame: pd.DataFrame) -> pd.DataFrame:
    """KL to Gibbs (mean over scenarios of the seed mean) per variant at each common budget of its unit,
    per η, and the fit time over one exact Gibbs call (median over scenarios × η)."""
    curves = budget_curves(frame)
    rows = []
    for (unit, method, variant, scope), part in curves.groupby(["budget_unit", "method", "variant", "budget_scope"]):
        for budget in MATCHED.get(unit, ()):
            row = {"budget unit": unit, "budget": budget, "method": method, "variant": variant,
                   "budget scope": scope}
            how, ratios, walls = set(), [], []
            for eta, by_eta in part.groupby("eta"):
                kls = []
                for _, g in by_eta.groupby("scenario"):
                    b = g["budget"].to_numpy(float)
                    kl, how_kl = _log_interp(b, g["kl"].to_numpy(float), budget)
                    ratio, _ = _log_interp(b, g["ratio"].to_numpy(float), budget)
                    wall, _ = _log_interp(b, g["fit_wall_s"].to_numpy(float), budget)
                    kls.append(kl)
                    ratios.append(ratio)
                    walls.append(wall)
                    how.add(how_kl)
                row[f"KL to Gibbs (η = {eta:g})"] = float(np.mean(kls))
            row["fit wall s (median)"] = float(np.nanmedian(walls)) if np.isfinite(walls).any() else np.nan
            row["fit / exact Gibbs call"] = float(np.nanmedian(ratios)) if np.isfinite(ratios).any() else np.nan
            row["read"] = " / ".join(sorted(how))
            rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    return table.sort_values(["budget unit", "budget", table.columns[5]]).reset_index(drop=True)


def cost_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per variant: fit time over one exact Gibbs call at 1024 and 4096 budget units and at the variant's
    largest budget (exact-gradient ``kl_options``: at its last step), median over scenarios × η."""
    part = frame.reset_index(drop=True)
    part = part.assign(ratio=part["fit_wall_s"] / part["oracle_wall_s"],
                       last=part.groupby(["scenario", "eta", "variant"])["budget"].transform("max"))
    rows = []
    for (method, variant, unit), g in part.groupby(["method", "variant", "budget_unit"]):
        per_budget = g.groupby("budget").agg(ratio=("ratio", "median"), wall=("fit_wall_s", "median"))
        at_max = g[g["budget"] == g["last"]]
        if method == "kl_options":
            at_max = at_max[at_max["step"] == at_max["step"].max()]
        row = {"method": method, "variant": variant, "budget unit": unit,
               "exact Gibbs call µs (median)": 1e6 * float(g["oracle_wall_s"].median())}
        for b in (1024, 4096):
            has = method != "kl_options" and b in per_budget.index
            row[f"× Gibbs at {b}"] = float(per_budget.loc[b, "ratio"]) if has else np.nan
        row["largest budget"] = float(at_max["budget"].max())
        row["fit wall s at largest"] = float(at_max["fit_wall_s"].median())
        row["× Gibbs at largest"] = float(at_max["ratio"].median())
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["budget unit", "× Gibbs at largest"]).reset_index(drop=True)


def matched_lines(matched: pd.DataFrame) -> list[str]:
    """Per unit × common budget × η: the closest and the farthest variant (read from the matched table)."""
    lines = []
    if matched.empty:
        return lines
    kl_columns = [c for c in matched.columns if c.startswith("KL to Gibbs")]
    for (unit, budget), g in matched.groupby(["budget unit", "budget"]):
        for column in kl_columns:
            h = g[np.isfinite(g[column])].sort_values(column)
            if len(h) < 2:
                continue
            best, worst = h.iloc[0], h.iloc[-1]
            eta = column.split("(")[1].rstrip(")")
            note = {i: " (per prompt, at inference)" if r["method"] == "best_of_n" else "" for i, r in h.iterrows()}
            lines.append(f"- At {budget} {unit}, {eta}: closest to Gibbs is **{best['variant']}**{note[best.name]} "
                         f"(KL {sig(best[column]):.3g}, fit {sig(best['fit / exact Gibbs call']):.3g}× one exact "
                         f"Gibbs call); farthest {worst['variant']}{note[worst.name]} (KL {sig(worst[column]):.3g}).")
    return lines


def cost_line(cost: pd.DataFrame) -> str:
    """The cheapest and the dearest variant at 4096 reward queries / comparisons (read from the cost table)."""
    column = "× Gibbs at 4096"
    h = cost[np.isfinite(cost[column])].sort_values(column)
    if h.empty:
        return ""
    lo, hi = h.iloc[0], h.iloc[-1]
    return (f"- Cost at 4096 units of its own budget (fit wall time / one exact Gibbs call on the same problems, "
            f"median over scenarios × η): from {sig(lo[column]):.3g}× ({lo['variant']}) to {sig(hi[column]):.3g}× "
            f"({hi['variant']}); one exact Gibbs call takes {sig(cost['exact Gibbs call µs (median)'].median()):.3g} "
            f"µs.")
