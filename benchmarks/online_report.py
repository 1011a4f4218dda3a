"""The report of the ``online`` study (:mod:`benchmarks.online`): one function per table, figure and
summary paragraph, composed by :func:`report`.

Methods are ordered as the study declares them (the built-in enhancers, then the offline curve),
followed by any other registered enhancer a sweep ran, in alphabetical order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from benchmarks.online import (
    ENHANCER_ORDER,
    EXPLORERS,
    HYBRID_ENHANCERS,
    OFFLINE_LABEL,
    SCENARIOS,
)
from rlbandit.stats import format_mean_se, geometric_mean
from rlbandit.study import ReportContent, ReportFigure

#: The table cells: mean ± one standard error over seeds.
_mean_se = partial(format_mean_se, mean_format=".3g", se_format=".1g")


@dataclass(frozen=True)
class _View:
    """The slices of the results frame the tables and figures share."""

    frame: pd.DataFrame  # every row, with ``beta_scale`` filled in
    scenarios: list
    methods: list  # built-ins first (ENHANCER_ORDER, then the offline curve), then other enhancers
    main: pd.DataFrame  # β × 1, online and offline, on the online budgets
    online: pd.DataFrame  # β × 1, pure online
    offline_all: pd.DataFrame  # β × 1, the offline curve at every budget
    final_n: int
    T: int


def _view(frame: pd.DataFrame) -> _View:
    frame = frame.copy()
    if "beta_scale" not in frame:
        frame["beta_scale"] = 1.0
    present = set(frame["scenario"])
    scenarios = [s for s in SCENARIOS if s in present] + sorted(present - set(SCENARIOS))
    builtin = ENHANCER_ORDER + (OFFLINE_LABEL,)
    methods = [m for m in builtin if m in set(frame["method"])] + sorted(set(frame["method"]) - set(builtin))
    main = frame[(frame["beta_scale"] == 1.0) & frame["mode"].isin(["online", "offline"])]
    online = main[main["mode"] == "online"]
    final_n = int(online["n_comparisons"].max())
    return _View(frame, scenarios, methods, main[main["n_comparisons"] <= final_n], online,
                 main[main["mode"] == "offline"], final_n, int(online["iteration"].max()))


def _paired(a: pd.Series, b: pd.Series):
    """Mean ratio mean(a)/mean(b) and the paired t statistic of a − b over shared seeds."""
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1).dropna()
    diff = joined["a"] - joined["b"]
    t = diff.mean() / (diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 and diff.std(ddof=1) > 0 else np.nan
    return joined["a"].mean() / joined["b"].mean(), t


def _at_budget(frame: pd.DataFrame, column: str = "suboptimality") -> pd.DataFrame:
    """Per scenario × η × method: the seed-indexed value at the pure-online final budget
    (online: the last iteration; offline: the same number of comparisons)."""
    online = frame[(frame["mode"] == "online") & (frame["beta_scale"] == 1.0)]
    final_n = online.groupby(["scenario", "eta"])["n_comparisons"].max().rename("final_n")
    part = frame[frame["mode"].isin(["online", "offline"]) & (frame["beta_scale"] == 1.0)].join(
        final_n, on=["scenario", "eta"])
    part = part[part["n_comparisons"] == part["final_n"]]
    return part.set_index(["scenario", "eta", "method", "seed"])[column].sort_index()


def _seed_values(group: pd.Series, method: str):
    """The seed-indexed values of ``method`` in a scenario × η group (None when it did not run)."""
    if method not in group.index.get_level_values("method"):
        return None
    return group.xs(method, level="method").reset_index(level=["scenario", "eta"], drop=True)


def _ratio_text(a: pd.Series, b: pd.Series) -> str:
    ratio, t = _paired(a, b)
    return f"{ratio:.2f} ({t:+.1f})"


def _headline_table(view: _View, last: pd.Series, best: pd.Series) -> pd.DataFrame:
    """Final SubOpt (last and best iterate) per scenario × η × method, with paired ratios to
    ``self`` and to the offline curve."""
    rows = []
    for (scenario, eta), group in last.groupby(level=["scenario", "eta"]):
        off, selfs = _seed_values(group, OFFLINE_LABEL), _seed_values(group, "self")
        for method in view.methods:
            values = _seed_values(group, method)
            if values is None:
                continue
            row = {"scenario": scenario, "eta": eta, "method": method, "SubOpt (last iterate)": _mean_se(values)}
            if method != OFFLINE_LABEL:
                row["SubOpt (best iterate)"] = _mean_se(best.loc[(scenario, eta, method)])
            if selfs is not None and method != "self":
                row["self ÷ this (paired t)"] = _ratio_text(selfs, values)
            if off is not None and method != OFFLINE_LABEL:
                row["offline ÷ this (paired t)"] = _ratio_text(off, values)
            rows.append(row)
    headline = pd.DataFrame(rows)
    headline["method"] = pd.Categorical(headline["method"], view.methods)
    headline["scenario"] = pd.Categorical(headline["scenario"], view.scenarios)
    return headline.sort_values(["scenario", "eta", "method"]).reset_index(drop=True)


def _verdict(ratio_self, t_self, beats_offline) -> str:
    beats_self = ratio_self > 1.25 and t_self > 2
    if beats_self and beats_offline:
        return "pays"
    if beats_self:
        return "pays against `self`, not against offline π0 data"
    if ratio_self < 0.8 and t_self < -2:
        return "hurts"
    return "does not matter"


def _exploration_verdicts(last: pd.Series, final_n: int) -> tuple[pd.DataFrame, list[str]]:
    """Per scenario × η: does the best explorer beat ``self`` and offline π0 data? (table, sentences)"""
    statements, pays = [], []
    for (scenario, eta), group in last.groupby(level=["scenario", "eta"]):
        present = set(group.index.get_level_values("method"))
        explorers = [e for e in EXPLORERS if e in present]
        if "self" not in present or not explorers:
            continue
        g = group.reset_index(level=["scenario", "eta"], drop=True)
        means = {e: g.xs(e, level="method").mean() for e in explorers}
        top = min(means, key=means.get)
        ratio_self, t_self = _paired(g.xs("self", level="method"), g.xs(top, level="method"))
        off_ratio, t_off = (_paired(g.xs(OFFLINE_LABEL, level="method"), g.xs(top, level="method"))
                            if OFFLINE_LABEL in present else (np.nan, np.nan))
        beats_offline = not (off_ratio <= 1.25 or t_off <= 2)  # NaN (no offline run) counts as beaten
        verdict = _verdict(ratio_self, t_self, beats_offline)
        pays.append(dict(scenario=scenario, eta=eta, best_explorer=top, verdict=verdict, ratio_self=ratio_self,
                         t_self=t_self, ratio_offline=off_ratio, t_offline=t_off,
                         pays=ratio_self > 1.25 and t_self > 2 and beats_offline))
        statements.append(f"- `{scenario}`, η = {eta:g}: exploration **{verdict}** — the best explorer (`{top}`) "
                          f"ends at SubOpt {means[top]:.3g}, {ratio_self:.2f}× lower than `self` (paired t = "
                          f"{t_self:+.1f}) and {off_ratio:.2f}× lower than offline π0 data of the same size ({final_n} "
                          f"comparisons; paired t = {t_off:+.1f}).")
    return pd.DataFrame(pays), statements


def _final_suboptimality(part: pd.DataFrame, T: int) -> pd.Series:
    return part[part["iteration"] == T].set_index(["scenario", "eta", "method", "seed"])["suboptimality"].sort_index()


def _hybrid_table(view: _View, hyb: pd.DataFrame) -> pd.DataFrame:
    """Hybrid against pure online at the same number of *online* comparisons, beside offline data
    of the same total size."""
    n_off, T = int(hyb["n_comparisons"].min()), view.T
    on_final, hy_final = _final_suboptimality(view.online, T), _final_suboptimality(hyb, T)
    off_rows = view.offline_all
    rows = []
    for (scenario, eta, method), values in hy_final.groupby(level=["scenario", "eta", "method"]):
        key = (scenario, eta, method)
        pure = on_final.loc[key] if key in on_final.index.droplevel("seed") else None
        values = values.reset_index(level=["scenario", "eta", "method"], drop=True)
        same_total = off_rows[(off_rows["scenario"] == scenario) & (off_rows["eta"] == eta)
                              & (off_rows["n_comparisons"] == n_off + (T - 1) * int(hyb["m"].iloc[0]))]
        row = {"scenario": scenario, "eta": eta, "enhancer": method,
               f"hybrid (D_off = {n_off}) SubOpt": _mean_se(values),
               "pure online SubOpt": _mean_se(pure) if pure is not None else "—",
               "offline, same total": _mean_se(same_total["suboptimality"])}
        if pure is not None:
            row["online ÷ hybrid (paired t)"] = _ratio_text(pure, values)
        rows.append(row)
    hybrid = pd.DataFrame(rows)
    if not hybrid.empty:
        hybrid["scenario"] = pd.Categorical(hybrid["scenario"], view.scenarios)
        hybrid = hybrid.sort_values(["scenario", "eta", "enhancer"]).reset_index(drop=True)
    return hybrid


def _beta_sweep(view: _View) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The β sweep's final iterates (``optimistic``, ``ucb`` on the swept scenarios) and its table
    of final SubOpt against the β scale; both empty without a sweep."""
    frame = view.frame
    sweep = frame[(frame["mode"] == "online") & frame["method"].isin(["optimistic", "ucb"])]
    sweep = sweep[sweep["scenario"].isin(sweep.loc[sweep["beta_scale"] != 1.0, "scenario"].unique())]
    if sweep["beta_scale"].nunique() <= 1:
        return sweep.iloc[:0], pd.DataFrame()
    fin = sweep[sweep["iteration"] == view.T]
    table = (fin.groupby(["scenario", "eta", "method", "beta_scale"])["suboptimality"].apply(_mean_se)
             .unstack("beta_scale").reset_index())
    table.columns = [f"β × {c:g}" if isinstance(c, float) else c for c in table.columns]
    return fin, table


def _timing_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Wall time per run (mean over the runs of a mode × method), and as a multiple of online ``self``."""
    timing = (frame.groupby(["run_id"] if "run_id" in frame else ["scenario", "eta", "mode", "method", "beta_scale"])
              .agg(method=("method", "first"), mode=("mode", "first"), wall_s=("wall_s", "first"),
                   seeds=("seed", "nunique")))
    timing = timing.groupby(["mode", "method"]).agg(runs=("wall_s", "size"), mean_wall_s=("wall_s", "mean"),
                                                    seeds=("seeds", "max")).reset_index()
    reference_time = timing.loc[(timing["mode"] == "online") & (timing["method"] == "self"), "mean_wall_s"]
    if not reference_time.empty:
        timing["× online self"] = timing["mean_wall_s"] / float(reference_time.iloc[0])
    return timing.round(2)


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------

def _subopt_figure(view: _View) -> ReportFigure:
    from rlbandit import plots

    fig = plots.line_plot(view.main, x="n_comparisons", y="suboptimality", hue="method", col="scenario", row="eta",
                          logy=True, title="Pure online (each enhancer) vs offline π0 data, same budget")
    return ReportFigure("subopt_vs_comparisons", fig,
                        "SubOpt of the main agent π¹_t against the number of comparisons it was fitted on, per "
                        "enhancer, beside offline learning from π0-only data of the same size (mean over seeds, "
                        "95 % CI).")


def _best_iterate_figure(view: _View) -> ReportFigure:
    from rlbandit import plots

    fig = plots.line_plot(view.online, x="n_comparisons", y="best_suboptimality", hue="method", col="scenario",
                          row="eta", logy=True, title="Theory's output rule: best iterate so far")
    return ReportFigure("best_iterate", fig, "SubOpt of the best iterate min_{s≤t} SubOpt(π¹_s) (the theory's "
                        "output rule) against comparisons.")


def _hybrid_figure(view: _View, n_off: int) -> ReportFigure:
    from rlbandit import plots

    frame = view.frame
    both = frame[(frame["beta_scale"] == 1.0) & frame["mode"].isin(["online", "hybrid"])
                 & frame["method"].isin(HYBRID_ENHANCERS)]
    fig = plots.line_plot(both, x="n_online", y="suboptimality", hue="method", style="mode", col="scenario", row="eta",
                          logy=True, title=f"Hybrid (D_off = {n_off} π0 comparisons) vs pure online")
    return ReportFigure("hybrid_vs_online", fig, "SubOpt against the number of *online* comparisons, hybrid (offline "
                        "π0 data first) against pure online; line style = mode (legend).")


def _positive_or_zero(online: pd.DataFrame, column: str) -> pd.DataFrame:
    """Round-off (≈1e-30, e.g. where π²_1 = π¹_1) counts as 0, which the log axis leaves out."""
    return online.assign(**{column: online[column].where(online[column] > 1e-12, 0.0)})


def _enhancer_kl_figure(view: _View) -> ReportFigure:
    from rlbandit import plots

    fig = plots.line_plot(_positive_or_zero(view.online, "kl_enhancer_main"), x="iteration", y="kl_enhancer_main",
                          hue="method", col="scenario", row="eta", logy=True,
                          title="How far the enhancer moves from the main agent")
    return ReportFigure("enhancer_kl", fig, "KL(π²_t‖π¹_t) per iteration: the size of the exploration step (zeros — "
                        "self, and reference/rejection at t = 1 — are not drawn on the log axis).")


def _uncertainty_figure(view: _View) -> ReportFigure:
    from rlbandit import plots

    fig = plots.line_plot(_positive_or_zero(view.online, "uncertainty"), x="iteration", y="uncertainty", hue="method",
                          col="scenario", row="eta", logy=True, title="Uncertainty of the collected pairs")
    return ReportFigure("uncertainty", fig, "E_x‖φ(x,π_a¹) − φ(x,π_a²)‖ in the Σ_t⁻¹ norm per iteration (Option I's "
                        "objective; zeros are not drawn).")


def _beta_sweep_figure(fin: pd.DataFrame) -> ReportFigure:
    from rlbandit import plots

    fig = plots.line_plot(fin, x="beta_scale", y="suboptimality", hue="method", col="eta", logx=True, logy=True,
                          xlabel=r"$\beta$ / theory $\beta$", title="β sweep (coverage_shift), final iterate")
    return ReportFigure("beta_sweep", fig, "Final SubOpt against β as a multiple of the theory's β.")


# ---------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------

def _across_paragraph(pays: pd.DataFrame) -> str:
    """The median gains of the best explorer per η, and the three largest against offline data."""
    by_eta = pays.groupby("eta")[["ratio_self", "ratio_offline"]].median()
    top = pays.nlargest(3, "ratio_offline")
    return ("Across scenarios (median over cells), the best explorer's final SubOpt is " + "; ".join(
        f"{r.ratio_self:.1f}× below `self` and {r.ratio_offline:.1f}× below offline π0 data at η = {eta:g}"
        for eta, r in by_eta.iterrows()) + ". The largest gains over offline π0 data are in " + ", ".join(
        f"`{r.scenario}` at η = {r.eta:g} ({r.ratio_offline:.1f}×)" for r in top.itertuples())
        + " — small η, where π* moves far from π0, and scenarios where π0 rarely plays the actions π* needs, so "
        "π0-only data stalls; the gains shrink at η = 1, where π* stays close to π0 and π0's own samples already "
        "cover it.")


def _hybrid_paragraphs(hybrid: pd.DataFrame, n_off: int) -> list[str]:
    """The geometric-mean gain of starting from offline data, per enhancer that also ran pure online."""
    ratios = {}
    for _, r in hybrid.iterrows():
        text = r.get("online ÷ hybrid (paired t)")
        if isinstance(text, str):
            ratios.setdefault(r["enhancer"], []).append(float(text.split()[0]))
    gains = sorted(((geometric_mean(v), k) for k, v in ratios.items()), reverse=True)
    if not gains:
        return []
    return [f"Hybrid: at the same number of online comparisons, starting from D_off = {n_off} π0 comparisons "
            "divides the final SubOpt by (pure online ÷ hybrid, geometric mean over cells) "
            + ", ".join(f"{g:.2f} for `{k}`" for g, k in gains)
            + f": the offline data helps `{gains[0][1]}` most and `{gains[-1][1]}` least, i.e. it substitutes "
            "for exploration more than it adds to it."]


def _beta_paragraph(fin: pd.DataFrame) -> str:
    means = fin.groupby(["eta", "method", "beta_scale"])["suboptimality"].mean()
    best_scale = means.groupby(["eta", "method"]).idxmin()
    return ("β sweep (`coverage_shift`): the lowest final SubOpt is at β × " + ", ".join(
        f"{idx[2]:g} for `{idx[1]}` (η = {idx[0]:g})" for idx in best_scale) + " of the theory's β.")


def _summary(view: _View, pays: pd.DataFrame, statements: list[str], paragraphs: list[str]) -> str:
    pays_text = "\n".join(statements) + "\n\n" + "\n\n".join(paragraphs)
    n_pays = int(pays["pays"].sum()) if not pays.empty else 0
    frame = view.frame
    return (
        f"Online iterative RLHF (Xiong et al. 2024) on {len(view.scenarios)} scenarios × η ∈ "
        f"{{{', '.join(f'{e:g}' for e in sorted(frame['eta'].unique()))}}}, {frame['seed'].nunique()} seeds, "
        f"T = {view.T} iterations of m = {int(frame['m'].iloc[0])} comparisons ({view.final_n} comparisons for the "
        "final main agent). Exploration pays (the best of optimistic / ucb / uniform ends at least 1.25× below both "
        "`self` and offline π0 data of the same size, paired t > 2 for each) in "
        f"{n_pays} of {len(pays)} scenario × η cells:\n\n{pays_text}\n"
    )


_NOTES = (
    "- β is the theory's β = sqrt((d + log(T/δ))/(κ² m) + λB²), κ = σ′(2B) = 1/(2 + e^{2B} + e^{−2B}) (σ′ on the "
    "reward differences ⟨z, θ⟩ ∈ [−2B, 2B]; `rlbandit.radii.xiong2024_radius`), B = ‖θ*‖, δ = 0.1 "
    "(Xiong et al. 2024; constant set to 1), unless the β-sweep table says otherwise. Results before 2026-11-29 "
    "used σ′(B), a smaller β.\n"
    "- `rejection` draws n = 8 actions from π¹_t and compares the best with the worst under r̂_t; its KL column is "
    "KL(worst-of-n ‖ π¹_t).\n"
    "- Each main agent is fitted on the data of iterations 1..t−1; the last batch is collected but not fitted, so "
    "the final main agent uses (T−1)·m comparisons and the offline baseline is compared at that size.\n"
    "- The same seeded problems are used by every method of a scenario, so ratios are paired over seeds."
)


def report(frame: pd.DataFrame) -> ReportContent:
    """The ``online`` study's report: headline table, verdicts, hybrid, β sweep, timing and figures."""
    view = _view(frame)
    last = _at_budget(view.frame)
    filled = view.frame.assign(best_suboptimality=view.frame["best_suboptimality"].fillna(view.frame["suboptimality"]))
    headline = _headline_table(view, last, _at_budget(filled, "best_suboptimality"))
    pays, statements = _exploration_verdicts(last, view.final_n)
    hyb = view.frame[view.frame["mode"] == "hybrid"]
    n_off = int(hyb["n_comparisons"].min()) if not hyb.empty else 0
    hybrid = _hybrid_table(view, hyb) if not hyb.empty else pd.DataFrame()
    fin, beta_table = _beta_sweep(view)

    figures = [_subopt_figure(view), _best_iterate_figure(view)]
    figures += [_hybrid_figure(view, n_off)] if not hyb.empty else []
    figures += [_enhancer_kl_figure(view), _uncertainty_figure(view)]
    figures += [_beta_sweep_figure(fin)] if not beta_table.empty else []

    paragraphs = [_across_paragraph(pays)] if not pays.empty else []
    paragraphs += _hybrid_paragraphs(hybrid, n_off) if not hybrid.empty else []
    paragraphs += [_beta_paragraph(fin)] if not beta_table.empty else []

    tables = [("Final SubOpt (mean ± s.e. over seeds) at the final online budget; ratios paired over seeds", headline)]
    if not pays.empty:
        tables.append(("When exploration pays (best explorer against self and offline)", pays.round(3)))
    if not hybrid.empty:
        tables.append((f"Hybrid (offline π0 data + online) against pure online after {view.T} iterations", hybrid))
    tables += [("β sweep on coverage_shift: final SubOpt", beta_table)] if not beta_table.empty else []
    tables.append(("Wall time per run", _timing_table(view.frame)))
    return ReportContent(summary=_summary(view, pays, statements, paragraphs), tables=tuple(tables),
                         figures=tuple(figures), notes=_NOTES)
