"""Statistics of the ``online`` report (:mod:`benchmarks.online_report`): multiple-comparison
corrected exploration tests, log–log slopes, the long-budget and m × T tables, the few_good
diagnostic and the "Reproducing the paper" table. Pure functions of the results frame.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
from scipy import stats as sps

from benchmarks.online import EXPLORERS, OFFLINE_LABEL
from rlbandit.stats import format_mean_se, loglog_slope

_mean_se = partial(format_mean_se, mean_format=".3g", se_format=".1g")
#: Family-wise error level of the Holm–Bonferroni correction.
ALPHA = 0.05
#: The smallest mean ratio (baseline ÷ explorer) counted as a practical gain.
MIN_RATIO = 1.25


def holm(pvalues) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (step-down; monotone; capped at 1), NaN kept as NaN.

    Rejecting every hypothesis whose adjusted p-value is ≤ α controls the family-wise error rate
    at α over the whole family given (here: explorers × cells × baselines)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = (ok.size - np.arange(ok.size)) * p[order]
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out


def paired_test(baseline: pd.Series, explorer: pd.Series) -> tuple[float, float, float]:
    """(mean(baseline)/mean(explorer), paired t, two-sided p of scipy.stats.ttest_rel) over shared seeds."""
    joined = pd.concat([baseline.rename("a"), explorer.rename("b")], axis=1).dropna()
    if len(joined) < 2 or (joined["a"] - joined["b"]).std(ddof=1) == 0:
        return joined["a"].mean() / joined["b"].mean(), np.nan, np.nan
    test = sps.ttest_rel(joined["a"], joined["b"])
    return joined["a"].mean() / joined["b"].mean(), float(test.statistic), float(test.pvalue)


def exploration_tests(last: pd.Series) -> pd.DataFrame:
    """Every explorer of :data:`EXPLORERS` against ``self`` and against offline π0 data, per
    scenario × η, on the final main agent; Holm over the whole family (explorers × cells × the two
    baselines). An explorer *pays* in a cell when both of its ratios are ≥ :data:`MIN_RATIO` and both
    Holm-adjusted p ≤ :data:`ALPHA`."""
    rows = []
    for (scenario, eta), group in last.groupby(level=["scenario", "eta"]):
        g = group.reset_index(level=["scenario", "eta"], drop=True)
        present = set(g.index.get_level_values("method"))
        if "self" not in present:
            continue
        for explorer in [e for e in EXPLORERS if e in present]:
            values = g.xs(explorer, level="method")
            row = dict(scenario=scenario, eta=eta, explorer=explorer, subopt=values.mean())
            for name, base in (("self", "self"), ("offline", OFFLINE_LABEL)):
                ratio, t, p = (paired_test(g.xs(base, level="method"), values) if base in present
                               else (np.nan, np.nan, np.nan))
                row.update({f"ratio_{name}": ratio, f"t_{name}": t, f"p_{name}": p})
            rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    adjusted = holm(np.concatenate([table["p_self"], table["p_offline"]]))
    table["p_self_holm"], table["p_offline_holm"] = adjusted[:len(table)], adjusted[len(table):]
    wins = {name: (table[f"ratio_{name}"] >= MIN_RATIO) & (table[f"t_{name}"] > 0)
            & (table[f"p_{name}_holm"] <= ALPHA) for name in ("self", "offline")}
    table["beats_self"] = wins["self"]
    table["beats_offline"] = wins["offline"] | table["p_offline"].isna()
    table["pays"] = table["beats_self"] & table["beats_offline"]
    return table


def cell_verdicts(tests: pd.DataFrame) -> pd.DataFrame:
    """Per scenario × η: the explorers that pay (corrected), or the verdict against ``self`` alone."""
    rows = []
    for (scenario, eta), g in tests.groupby(["scenario", "eta"], sort=False):
        paying = list(g.loc[g["pays"], "explorer"])
        only_self = list(g.loc[g["beats_self"] & ~g["pays"], "explorer"])
        verdict = ("pays" if paying else "pays against `self`, not against offline π0 data" if only_self
                   else "not shown")
        rows.append(dict(scenario=scenario, eta=eta, verdict=verdict, explorers=", ".join(paying or only_self) or "—",
                         min_p_self_holm=g["p_self_holm"].min(), min_p_offline_holm=g["p_offline_holm"].min()))
    return pd.DataFrame(rows)


def in_order(table: pd.DataFrame, scenarios, methods) -> pd.DataFrame:
    """Rows sorted by scenario, η and method in the given orders (others after them)."""
    if table.empty:
        return table
    key = {c: {v: i for i, v in enumerate(o)} for c, o in (("scenario", scenarios), ("method", methods))}
    return table.sort_values(["scenario", "eta", "method"], key=lambda s: s.map(key[s.name]).fillna(len(key[s.name]))
                             if s.name in key else s).reset_index(drop=True)


def slopes(part: pd.DataFrame, n_min: int, columns=("suboptimality", "theta_error")) -> pd.DataFrame:
    """Per scenario × η × method: the log–log slope of each column against n_comparisons over
    n ≥ ``n_min`` (rlbandit.stats.loglog_slope per seed; mean ± s.e. over seeds)."""
    part = part[part["n_comparisons"] >= n_min]
    rows = []
    for (scenario, eta, method), g in part.groupby(["scenario", "eta", "method"], observed=True, sort=False):
        wide = {c: g.pivot_table(index="seed", columns="n_comparisons", values=c) for c in columns}
        n = wide[columns[0]].columns.to_numpy(dtype=float)
        if n.size < 3:
            continue
        row = dict(scenario=scenario, eta=eta, method=method, n_range=f"{int(n.min())}–{int(n.max())}")
        for c in columns:
            values = wide[c].to_numpy(dtype=float)
            keep = np.all(values > 0, axis=1)
            per_seed = loglog_slope(n, values[keep])
            row[f"slope {c}"] = float(np.mean(per_seed))
            row[f"slope {c} (s.e.)"] = float(np.std(per_seed, ddof=1) / np.sqrt(per_seed.size))
        rows.append(row)
    return pd.DataFrame(rows)


def format_slopes(table: pd.DataFrame, columns=("suboptimality", "theta_error")) -> pd.DataFrame:
    out = table[["scenario", "eta", "method", "n_range"]].copy()
    for c in columns:
        out[f"slope of {c}"] = [f"{m:+.2f} ± {s:.2f}" for m, s in zip(table[f"slope {c}"], table[f"slope {c} (s.e.)"])]
    return out


def final_rows(part: pd.DataFrame) -> pd.DataFrame:
    """The final main agent of each run (online: the last iteration; offline: the same n)."""
    online = part[part["mode"] == "online"]
    last = online.groupby(["scenario", "eta", "T", "m"])["n_comparisons"].max().rename("final_n")
    part = part.join(last, on=["scenario", "eta", "T", "m"])
    return part[part["n_comparisons"] == part["final_n"]]


def mxt_table(part: pd.DataFrame) -> pd.DataFrame:
    """m × T at a fixed fitted budget: final SubOpt (mean ± s.e.) per scenario × method, one column per (T, m)."""
    fin = final_rows(part)
    fin = fin.assign(design=[f"T={t}, m={m}" for t, m in zip(fin["T"], fin["m"])])
    order = [f"T={t}, m={m}" for t, m in sorted(set(zip(fin["T"], fin["m"])))]
    table = fin.groupby(["scenario", "eta", "method", "design"], sort=False)["suboptimality"].apply(_mean_se)
    table = table.unstack("design").reindex(columns=order).reset_index()
    return table


def mxt_best(part: pd.DataFrame) -> pd.DataFrame:
    """Per scenario × online method: the (T, m) with the lowest mean final SubOpt, and the worst ÷ best ratio."""
    fin = final_rows(part)
    fin = fin[fin["mode"] == "online"]
    means = fin.groupby(["scenario", "method", "T", "m"], sort=False)["suboptimality"].mean()
    rows = []
    for (scenario, method), g in means.groupby(level=["scenario", "method"], sort=False):
        best, worst = g.idxmin(), g.idxmax()
        rows.append(dict(scenario=scenario, method=method, best_T=best[2], best_m=best[3],
                         worst_T=worst[2], worst_m=worst[3], worst_over_best=g.max() / g.min()))
    return pd.DataFrame(rows)


def offline_spread(part: pd.DataFrame) -> float:
    """The largest worst ÷ best ratio of the offline curve over the m × T designs: its designs differ only in the
    random π0 data, so this is the spread that noise alone produces."""
    fin = final_rows(part)
    off = fin[fin["mode"] == "offline"].groupby(["scenario", "T", "m"])["suboptimality"].mean()
    if off.empty:
        return np.nan
    return float((off.groupby(level="scenario").max() / off.groupby(level="scenario").min()).max())


def plateau_diagnostic(main: pd.DataFrame, scenario: str, eta: float, n_min: int) -> pd.DataFrame:
    """Where SubOpt stops falling: per method, SubOpt and ‖θ̂ − θ*‖ at n_min and at the final n,
    their log–log slopes in between, and KL(π¹‖π0) against KL(π*‖π0) at the final n."""
    cell = main[(main["scenario"] == scenario) & (main["eta"] == eta)]
    if cell.empty:
        return pd.DataFrame()
    final_n = int(cell.loc[cell["mode"] == "online", "n_comparisons"].max())
    cell = cell[cell["n_comparisons"] <= final_n]
    slope = slopes(cell, n_min).set_index("method")
    rows = []
    for method, g in cell.groupby("method", sort=False, observed=True):
        if method not in slope.index:
            continue
        at = g.groupby("n_comparisons")[["suboptimality", "best_suboptimality", "theta_error", "kl_main_ref"]].mean()
        lo = at.index[at.index >= n_min].min()
        row = {"method": method, f"SubOpt at n={lo}": at.loc[lo, "suboptimality"],
               f"SubOpt at n={final_n}": at.loc[final_n, "suboptimality"],
               "slope SubOpt": slope.loc[method, "slope suboptimality"],
               f"‖θ̂−θ*‖ at n={lo}": at.loc[lo, "theta_error"],
               f"‖θ̂−θ*‖ at n={final_n}": at.loc[final_n, "theta_error"],
               "slope ‖θ̂−θ*‖": slope.loc[method, "slope theta_error"],
               f"KL(π¹‖π0) at n={final_n}": at.loc[final_n, "kl_main_ref"],
               f"ORACLE best-iterate SubOpt at n={final_n}": at.loc[final_n, "best_suboptimality"]}
        if "kl_optimal_ref" in g:
            row["KL(π*‖π0)"] = g["kl_optimal_ref"].mean()
        rows.append(row)
    return pd.DataFrame(rows)
