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

from benchmarks import online_analysis as analysis
from benchmarks import online_paper
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

    frame: pd.DataFrame  # every row of the ``main`` part, with ``beta_scale`` filled in
    parts: pd.DataFrame  # every row of every part (``long``, ``mxT`` included)
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
    if "part" not in frame:
        frame["part"] = "main"
    parts, frame = frame, frame[frame["part"] == "main"]
    present = set(frame["scenario"])
    scenarios = [s for s in SCENARIOS if s in present] + sorted(present - set(SCENARIOS))
    builtin = ENHANCER_ORDER + (OFFLINE_LABEL,)
    methods = [m for m in builtin if m in set(frame["method"])] + sorted(set(frame["method"]) - set(builtin))
    main = frame[(frame["beta_scale"] == 1.0) & frame["mode"].isin(["online", "offline"])]
    online = main[main["mode"] == "online"]
    final_n = int(online["n_comparisons"].max())
    return _View(frame, parts, scenarios, methods, main[main["n_comparisons"] <= final_n], online,
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


#: The practical output rule (computable) and the theory's rule (an oracle: it reads the true SubOpt).
LAST_COLUMN = "SubOpt, last iterate π¹_T (practical rule)"
HELDOUT_COLUMN = "SubOpt, held-out selection (practical rule)"
ORACLE_COLUMN = "SubOpt, ORACLE best iterate min_t SubOpt(π¹_t)"


def _headline_table(view: _View, last: pd.Series, best: pd.Series, heldout: pd.Series | None) -> pd.DataFrame:
    """Final SubOpt (last and best iterate) per scenario × η × method, with paired ratios to
    ``self`` and to the offline curve."""
    rows = []
    for (scenario, eta), group in last.groupby(level=["scenario", "eta"]):
        off, selfs = _seed_values(group, OFFLINE_LABEL), _seed_values(group, "self")
        for method in view.methods:
            values = _seed_values(group, method)
            if values is None:
                continue
            row = {"scenario": scenario, "eta": eta, "method": method, LAST_COLUMN: _mean_se(values)}
            if method != OFFLINE_LABEL and heldout is not None and (scenario, eta, method) in heldout.index:
                row[HELDOUT_COLUMN] = _mean_se(heldout.loc[(scenario, eta, method)])
            if method != OFFLINE_LABEL:
                row[ORACLE_COLUMN] = _mean_se(best.loc[(scenario, eta, method)])
            if selfs is not None and method != "self":
                row["self ÷ this (paired t)"] = _ratio_text(selfs, values)
            if off is not None and method != OFFLINE_LABEL:
                row["offline ÷ this (paired t)"] = _ratio_text(off, values)
            rows.append(row)
    headline = pd.DataFrame(rows)
    headline["method"] = pd.Categorical(headline["method"], view.methods)
    headline["scenario"] = pd.Categorical(headline["scenario"], view.scenarios)
    return headline.sort_values(["scenario", "eta", "method"]).reset_index(drop=True)


def _exploration(last: pd.Series, final_n: int) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Every explorer against ``self`` and offline π0 data, Holm-corrected over explorers × cells ×
    baselines (:func:`benchmarks.online_analysis.exploration_tests`): (tests, cell verdicts, sentences)."""
    tests = analysis.exploration_tests(last)
    if tests.empty:
        return tests, pd.DataFrame(), []
    verdicts = analysis.cell_verdicts(tests)
    statements = []
    for v in verdicts.itertuples():
        g = tests[(tests["scenario"] == v.scenario) & (tests["eta"] == v.eta)]
        top = g.loc[g["subopt"].idxmin()]
        statements.append(
            f"- `{v.scenario}`, η = {v.eta:g}: exploration **{v.verdict}** (explorers significant for this verdict: "
            f"{v.explorers}) — the lowest explorer (`{top.explorer}`) ends at SubOpt {top.subopt:.3g}, "
            f"{top.ratio_self:.2f}× lower than "
            f"`self` (Holm p = {top.p_self_holm:.2g}) and {top.ratio_offline:.2f}× lower than offline π0 data of "
            f"the same size ({final_n} comparisons; Holm p = {top.p_offline_holm:.2g}).")
    return tests, verdicts, statements


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

    fig = plots.line_plot(view.main[view.main["n_comparisons"] > 0], x="n_comparisons", y="suboptimality", hue="method",
                          style="mode", col="scenario", row="eta", logx=True, logy=True, reference_slopes=(-0.5,),
                          title="Pure online (each enhancer) vs offline π0 data, same budget (log–log)")
    return ReportFigure("subopt_vs_comparisons", fig,
                        "SubOpt of the last iterate π¹_t against the number of comparisons it was fitted on (n > 0), "
                        "per enhancer, beside offline learning from π0-only data of the same size; geometric mean "
                        "over seeds with a 95 % band computed in log space; grey guide: slope −½. Fitted slopes: "
                        "the slope table. Line style = mode (the palette gives `reference` and the offline curve "
                        "one colour).")


def _best_iterate_figure(view: _View) -> ReportFigure:
    from rlbandit import plots

    fig = plots.line_plot(view.online, x="n_comparisons", y="best_suboptimality", hue="method", col="scenario",
                          row="eta", logy=True, title="ORACLE output rule (reads the true SubOpt): best iterate so far")
    return ReportFigure("best_iterate", fig, "ORACLE: SubOpt of the best iterate min_{s≤t} SubOpt(π¹_s) — the "
                        "theory's output rule, which picks the iterate by its true SubOpt and so cannot be run "
                        "without θ*; the practical rule (last iterate) is the first figure.")


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

def _across_paragraph(tests: pd.DataFrame, verdicts: pd.DataFrame) -> str:
    """Per explorer (no selection after the fact): the median ratios over cells and the cells where it pays."""
    by = tests.groupby(["explorer", "eta"], sort=False)[["ratio_self", "ratio_offline"]].median()
    paying = tests[tests["pays"]]
    count = {e: int((paying["explorer"] == e).sum()) for e in tests["explorer"].unique()}
    per_cell = len(verdicts) // max(tests["eta"].nunique(), 1)
    return ("Per explorer (median over scenarios; each explorer on its own, so no selection after the fact): "
            + "; ".join(
        f"`{e}` at η = {eta:g} is {r.ratio_self:.1f}× below `self` and {r.ratio_offline:.1f}× below offline π0 data"
        for (e, eta), r in by.iterrows()) + ". Cells where each explorer pays after the Holm correction: "
        + ", ".join(f"`{e}` {n} of {len(verdicts)}" for e, n in count.items())
        + f" ({per_cell} scenarios per η). The corrected p-values are in the exploration table.")


def _output_rule_paragraph(headline: pd.DataFrame) -> str:
    """The practical output rules against the ORACLE best iterate, read from the headline table."""
    if HELDOUT_COLUMN not in headline:
        return ""
    rows = headline.dropna(subset=[HELDOUT_COLUMN, ORACLE_COLUMN])
    mean = {c: rows[c].map(lambda text: float(text.split()[0])) for c in (LAST_COLUMN, HELDOUT_COLUMN, ORACLE_COLUMN)}
    last, held = mean[LAST_COLUMN] / mean[ORACLE_COLUMN], mean[HELDOUT_COLUMN] / mean[ORACLE_COLUMN]
    better = int((mean[HELDOUT_COLUMN] < mean[LAST_COLUMN]).sum())
    return (f"Output rules (headline table, {len(rows)} method × cell rows): the last iterate's mean SubOpt is "
            f"{geometric_mean(last):.2f}× the ORACLE best iterate's (geometric mean; range {last.min():.2f}–"
            f"{last.max():.2f}×), held-out selection's {geometric_mean(held):.2f}× (range {held.min():.2f}–"
            f"{held.max():.2f}×); held-out selection is lower than the last iterate in {better} of {len(rows)} rows, "
            + ("so here the last iterate is the better practical rule: the θ̂ that fits π0's comparisons best need "
               "not give the best Gibbs policy (π0 data weigh the actions π0 plays, not those π* needs)."
               if geometric_mean(held) > geometric_mean(last) else
               "so here held-out selection is the better practical rule."))


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
    """Per η × method: the best β scale, and β × 1 against it (ratio of means, paired t over seeds)."""
    parts, ts = [], []
    for (eta, method), g in fin.groupby(["eta", "method"]):
        per = g.pivot_table(index="seed", columns="beta_scale", values="suboptimality")
        means = per.mean()
        best = float(means.idxmin())
        if 1.0 not in per.columns:  # the β × 1 run is missing from the store (the report lists it)
            parts.append(f"`{method}` at η = {eta:g}: lowest at β × {best:g} (SubOpt {means[best]:.3g}); β × 1 "
                         "has no stored run")
            continue
        diff = per[1.0] - per[best]
        t = diff.mean() / (diff.std(ddof=1) / np.sqrt(len(diff))) if best != 1.0 else 0.0
        ts.append(t)
        against = ("" if best == 1.0 else
                   f"; β × 1 is {means[1.0] / means[best]:.2f}× that (paired t = {t:+.1f})")
        parts.append(f"`{method}` at η = {eta:g}: lowest at β × {best:g} (SubOpt {means[best]:.3g}){against}; worst ÷ "
                     f"best scale {means.max() / means.min():.2f}×")
    scales = sorted(fin["beta_scale"].unique())
    near = sum(abs(t) < 2 for t in ts)
    lowest = sum(t == 0.0 for t in ts)
    verdict = (f"β × 1 is the lowest in {lowest} of them, and the sweep does not single out a scale beyond the noise"
               if near == len(ts) else f"β × 1 is significantly worse than the best scale in {len(ts) - near} case(s)")
    return (f"β sweep (`coverage_shift`, final iterate, β × {scales[0]:g} to {scales[-1]:g}; read from the β-sweep "
            "table): " + "; ".join(parts) + f". In {near} of {len(ts)} cases β × 1 is within two paired standard "
            f"errors of the best scale, {verdict}.")


def _summary(view: _View, verdicts: pd.DataFrame, statements: list[str], paragraphs: list[str]) -> str:
    pays_text = "\n".join(statements) + "\n\n" + "\n\n".join(paragraphs)
    n_pays = int((verdicts["verdict"] == "pays").sum()) if not verdicts.empty else 0
    frame = view.frame
    return (
        f"Online iterative RLHF (Xiong et al. 2024) on {len(view.scenarios)} scenarios × η ∈ "
        f"{{{', '.join(f'{e:g}' for e in sorted(frame['eta'].unique()))}}}, {frame['seed'].nunique()} seeds, "
        f"T = {view.T} iterations of m = {int(frame['m'].iloc[0])} comparisons ({view.final_n} comparisons for the "
        "final main agent). SubOpt is that of the last iterate π¹_T (a practical output rule) unless a column says "
        "otherwise; the held-out rule (the iterate whose θ̂_t fits fresh held-out π0 comparisons best) is the other "
        "practical rule; the theory's rule, the best iterate by true SubOpt, is an ORACLE and appears only in its "
        "labelled column and figure. "
        f"Exploration pays — some explorer of {', '.join(f'`{e}`' for e in EXPLORERS)} ends ≥ "
        f"{analysis.MIN_RATIO}× below both `self` and offline π0 data of the same size, with paired t-tests "
        f"(scipy.stats.ttest_rel, two-sided) significant at {analysis.ALPHA} after a Holm–Bonferroni correction "
        "over all explorers × cells × the two baselines — in "
        f"{n_pays} of {len(verdicts)} scenario × η cells:\n\n{pays_text}\n"
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
    "- The same seeded problems are used by every method of a scenario, so ratios are paired over seeds.\n"
    "- Output rules: two *practical* rules — the last iterate π¹_T (`suboptimality`; needs neither θ* nor "
    "extra data) and held-out selection (`heldout_suboptimality`, `rlbandit.online.select_by_heldout`): "
    "`n_heldout` fresh π0-vs-π0 comparisons per seed (see *What was run*; the same for every method of a "
    "scenario, not counted in the budget, never fitted); at round t it outputs the iterate s ≤ t whose θ̂_s "
    "has the highest mean BT log-likelihood on them (the later one on ties). The *oracle* rule "
    "min_t SubOpt(π¹_t) is the theory's (its guarantee is for some iterate t ≤ T) and reads the true SubOpt; "
    "it is a lower bound on what any selection rule can reach, not a method."
)


def report(frame: pd.DataFrame) -> ReportContent:
    """The ``online`` study's report: headline table, corrected exploration tests, slopes, hybrid,
    β sweep, long budgets, m × T, the few_good diagnostic, the paper table, timing and figures."""
    view = _view(frame)
    last = _at_budget(view.frame)
    filled = view.frame.assign(best_suboptimality=view.frame["best_suboptimality"].fillna(view.frame["suboptimality"]))
    held = (_at_budget(view.frame[view.frame["mode"] == "online"].dropna(subset=["heldout_suboptimality"]),
                       "heldout_suboptimality") if "heldout_suboptimality" in view.frame else None)
    headline = _headline_table(view, last, _at_budget(filled, "best_suboptimality"), held)
    tests, verdicts, statements = _exploration(last, view.final_n)
    hyb = view.frame[view.frame["mode"] == "hybrid"]
    n_off = int(hyb["n_comparisons"].min()) if not hyb.empty else 0
    hybrid = _hybrid_table(view, hyb) if not hyb.empty else pd.DataFrame()
    fin, beta_table = _beta_sweep(view)
    m = int(view.online["m"].iloc[0])
    slope_table = analysis.in_order(analysis.slopes(view.main[view.main["n_comparisons"] > 0], m), view.scenarios,
                                    view.methods)
    extra = online_paper.extra_parts(view.parts)

    figures = [_subopt_figure(view), _best_iterate_figure(view)]
    figures += [_hybrid_figure(view, n_off)] if not hyb.empty else []
    figures += [_enhancer_kl_figure(view), _uncertainty_figure(view)]
    figures += [_beta_sweep_figure(fin)] if not beta_table.empty else []
    figures += extra.figures

    paragraphs = [_across_paragraph(tests, verdicts)] if not tests.empty else []
    paragraphs += [p for p in [_output_rule_paragraph(headline)] if p]
    paragraphs += [online_paper.slope_paragraph(slope_table)] if not slope_table.empty else []
    paragraphs += _hybrid_paragraphs(hybrid, n_off) if not hybrid.empty else []
    paragraphs += [_beta_paragraph(fin)] if not beta_table.empty else []
    plateau = analysis.plateau_diagnostic(view.main, "few_good", 0.1, 3 * m)
    paragraphs += [online_paper.plateau_paragraph(plateau)] if not plateau.empty else []
    paragraphs += extra.paragraphs
    paragraphs += [online_paper.paper_section(tests, verdicts, slope_table, headline, hybrid, fin, extra)]

    tables = [("Final SubOpt (mean ± s.e. over seeds) at the final online budget: the practical rules (last iterate, "
               "held-out selection) and the ORACLE best iterate; ratios (of the last iterate) paired over seeds",
               headline)]
    if not tests.empty:
        shown = tests.drop(columns=["beats_offline"]).round(4)
        tables.append(("Exploration tests: each explorer against self and offline π0 data; paired t-tests, "
                       "p-values Holm-corrected over all explorers × cells × baselines", shown))
        tables.append(("Exploration verdict per cell (Holm-corrected)", verdicts.round(4)))
    if not slope_table.empty:
        tables.append((f"Log–log slopes against comparisons, n = {m}–{view.final_n} (per seed, mean ± s.e.)",
                       analysis.format_slopes(slope_table)))
    if not hybrid.empty:
        tables.append((f"Hybrid (offline π0 data + online) against pure online after {view.T} iterations", hybrid))
    tables += [("β sweep on coverage_shift: final SubOpt", beta_table)] if not beta_table.empty else []
    if not plateau.empty:
        tables.append(("few_good, η = 0.1: where SubOpt stops falling (means over seeds)", plateau.round(4)))
    tables += extra.tables
    tables.append(("Wall time per run", _timing_table(view.parts)))
    return ReportContent(summary=_summary(view, verdicts, statements, paragraphs), tables=tuple(tables),
                         figures=tuple(figures), notes=_NOTES)
