"""Tables and figures of the ``offline`` report answering the referee (issue 13): the rate of the bound
against the rate of SubOpt (theory β and the oracle β = ‖θ̂ − θ*‖_Σ, Options I and II, bootstrap CIs),
β tuned on one half of the seeds and scored on the other, the coverage-coefficient and dimension
sweeps, and the table of the papers' claims beside the results here. Used by
:mod:`benchmarks.offline_report`; every number a sentence quotes is read from these tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rlbandit.stats import bootstrap_ci, geometric_mean, loglog_slope
from rlbandit.study import ReportFigure

LCBS = ("lcb", "lcb_policy")
BOUND_OF = {"lcb": "Option II (pointwise)", "lcb_policy": "Option I (policy)"}
RULE_LABEL = {"theory": "theory β", "oracle": "oracle β = ‖θ̂−θ*‖_Σ"}
N_RATE = 100  # slopes are fitted over n ≥ N_RATE (the burn-in before is not the asymptotic rate)


def _slope_ci(pivot: pd.DataFrame, rng: np.random.Generator) -> tuple[float, float, float]:
    """Slope of the seed-mean curve (columns n) and its 95 % percentile-bootstrap interval over seeds."""
    n = pivot.columns.to_numpy(float)
    values = pivot.to_numpy(float)
    means = values.mean(0)
    if len(n) < 3 or not (means > 0).all():
        return np.nan, np.nan, np.nan

    def slope(m):
        with np.errstate(divide="ignore", invalid="ignore"):
            return loglog_slope(n, np.where(m > 0, m, np.nan))

    low, high = bootstrap_ci(values, rng, statistic=slope, n_boot=1000)
    return float(loglog_slope(n, means)), low, high


def bound_rate_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per scenario × η × LCB × β rule (theory, oracle): log–log slopes (n ≥ N_RATE) of mean SubOpt and of
    the mean bound with bootstrap CIs over seeds, and bound / SubOpt at the largest n."""
    rng = np.random.default_rng(13)  # the bootstrap's only randomness
    rows = []
    part = frame[frame["method"].isin(LCBS) & (frame["reference"] == "ref")
                 & frame["beta_rule"].isin(tuple(RULE_LABEL)) & (frame["n"] >= N_RATE)]
    for (scenario, eta, method, rule), group in part.groupby(["scenario", "eta", "method", "beta_rule"],
                                                             observed=True, sort=False):
        sub = group.pivot_table(index="seed", columns="n", values="suboptimality")
        bnd = group.pivot_table(index="seed", columns="n", values="bound")
        s, s_lo, s_hi = _slope_ci(sub, rng)
        b, b_lo, b_hi = _slope_ci(bnd, rng)
        last = sub.columns.max()
        beta_last = group.loc[group["n"] == last, "beta"].median()
        rows.append(dict(scenario=scenario, eta=eta, method=method, bound=BOUND_OF[method], beta=RULE_LABEL[rule],
                         subopt_slope=s, subopt_ci=f"[{s_lo:.2f}, {s_hi:.2f}]", bound_slope=b,
                         bound_ci=f"[{b_lo:.2f}, {b_hi:.2f}]",
                         bound_over_subopt_nmax=bnd[last].mean() / sub[last].mean(), beta_nmax=beta_last,
                         covered=group["covered"].mean()))
    table = pd.DataFrame(rows)
    return table.round(dict(subopt_slope=2, bound_slope=2, bound_over_subopt_nmax=1, beta_nmax=2, covered=3))


def vacuous_table(frame: pd.DataFrame) -> pd.DataFrame:
    """With the theory β: the bound against SubOpt(π0) (the policies the theory β returns stay near π0) and
    against the reward span E_x[max_a r* − min_a r*] (SubOpt(π) ≤ span + η KL(π‖π0) for every π), per
    scenario × η × LCB at the smallest and largest n."""
    theory = frame[frame["method"].isin(LCBS) & (frame["reference"] == "ref") & (frame["beta_rule"] == "theory")]
    sizes = sorted(theory["n"].unique())
    theory = theory[theory["n"].isin([sizes[0], sizes[-1]])]
    table = (theory.groupby(["scenario", "eta", "method", "n"], observed=True)
             .agg(mean_bound=("bound", "mean"), mean_subopt=("suboptimality", "mean"),
                  subopt_ref=("subopt_ref", "mean"), reward_span=("reward_span", "mean"),
                  kl_to_ref=("kl_to_ref", "mean")).reset_index())
    table["bound_over_subopt_ref"] = table["mean_bound"] / table["subopt_ref"]
    table["bound_over_span"] = table["mean_bound"] / table["reward_span"]
    return table.round(4)


def heldout_beta_table(frame: pd.DataFrame) -> pd.DataFrame:
    """β tuned on the first half of the seeds (the one β of the grid with the smallest geometric mean over n
    of the mean SubOpt), scored on the other half against MLE and the theory β, per scenario × η × LCB.
    Held-out SubOpts are geometric means over n of the seed-mean SubOpt."""
    rows = []
    for (scenario, eta), cell in frame.groupby(["scenario", "eta"], observed=True, sort=False):
        seeds = np.sort(cell["seed"].unique())  # the halves are split within each cell's own seeds
        cell = cell.assign(half=np.where(cell["seed"].isin(seeds[: len(seeds) // 2]), "tune", "held"))
        for method in LCBS:
            rows.append(_heldout_row(cell, scenario, eta, method))
    return pd.DataFrame(rows).round(4)


def _heldout_score(rows: pd.DataFrame, part: str) -> float:
    """Geometric mean over n of the seed-mean SubOpt on one half ("tune" or "held")."""
    return geometric_mean(rows[rows["half"] == part].groupby("n")["suboptimality"].mean().to_numpy())


def _heldout_row(cell: pd.DataFrame, scenario, eta, method) -> dict:
    group = cell[(cell["method"] == method) & (cell["reference"] == "ref")]
    fixed = group[group["beta_rule"] == "fixed"]
    by_beta = {b: fixed[np.isclose(fixed["beta"], b)] for b in sorted(fixed["beta"].unique())}
    tuned = min(by_beta, key=lambda b: _heldout_score(by_beta[b], "tune"))
    held = _heldout_score(by_beta[tuned], "held")
    mle = _heldout_score(cell[cell["method"] == "mle"], "held")
    theory = _heldout_score(group[group["beta_rule"] == "theory"], "held")
    return dict(scenario=scenario, eta=eta, method=method, tuned_beta=tuned, heldout_subopt=held,
                best_on_heldout=min(_heldout_score(rows, "held") for rows in by_beta.values()), mle_subopt=mle,
                theory_subopt=theory, ratio_to_mle=held / mle, ratio_to_theory=held / theory)


def coverage_sweep_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The ``coverage`` runs: per η × shift, the median measured coverage coefficient and the mean SubOpt of
    MLE and of the LCBs at the fixed β (ν = φ(x,π0))."""
    if not len(frame):
        return pd.DataFrame()
    beta0 = float(frame["beta_default"].iloc[0])
    keep = (frame["method"] == "mle") | (frame["method"].isin(LCBS) & (frame["reference"] == "ref")
                                         & (frame["beta_rule"] == "fixed") & np.isclose(frame["beta"], beta0))
    part = frame[keep]
    coverage = (frame[frame["method"] == "lcb_policy"].groupby(["eta", "shift"])["coverage"].median()
                .rename("coverage"))
    means = part.groupby(["eta", "shift", "method"])["suboptimality"].mean().unstack("method")
    table = pd.concat([coverage, means[[m for m in ("mle", *LCBS) if m in means]]], axis=1).reset_index()
    table.insert(2, "n", int(frame["n"].max()))
    table["lcb_over_mle"] = table["lcb"] / table["mle"]
    table["lcb_policy_over_mle"] = table["lcb_policy"] / table["mle"]
    return table.round(4)


def dim_sweep_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The ``dim`` runs (plus the main sweep's cell of the same scenario and n): mean SubOpt by d × η of
    MLE and the LCBs at the fixed β, and the ratios to MLE."""
    if not len(frame):
        return pd.DataFrame()
    beta0 = float(frame["beta_default"].iloc[0])
    keep = (frame["method"] == "mle") | (frame["method"].isin(LCBS) & (frame["reference"] == "ref")
                                         & (frame["beta_rule"] == "fixed") & np.isclose(frame["beta"], beta0))
    means = frame[keep].groupby(["eta", "dim", "method"])["suboptimality"].mean().unstack("method")
    means = means[[m for m in ("mle", *LCBS) if m in means]].reset_index()
    means.insert(2, "n", int(frame["n"].max()))
    for m in LCBS:
        means[f"{m}_over_mle"] = means[m] / means["mle"]
    return means.round(4)


def bound_rate_figures(frame: pd.DataFrame) -> tuple[ReportFigure, ...]:
    """Per η: SubOpt and the bound against n, one log–log panel per β rule (rows) × scenario (columns), with
    slope guides −½ and −1. The first η's figure is ``bound_rate``, the others ``bound_rate_eta{η}``."""
    from rlbandit import plots

    part = frame[frame["method"].isin(LCBS) & (frame["reference"] == "ref")
                 & frame["beta_rule"].isin(tuple(RULE_LABEL))]
    long = part.melt(id_vars=["scenario", "eta", "n", "seed", "method", "beta_rule"],
                     value_vars=["suboptimality", "bound"], var_name="quantity", value_name="subopt_or_bound")
    long["quantity"] = long["quantity"].map({"suboptimality": "SubOpt", "bound": "bound (I: lcb_policy, II: lcb)"})
    long["β"] = long["beta_rule"]
    figures = []
    for i, (eta, sub) in enumerate(long.groupby("eta")):
        fig = plots.line_plot(sub, x="n", y="subopt_or_bound", hue="method", style="quantity", col="scenario",
                              row="β", logx=True, logy=True, reference_slopes=(-0.5, -1.0),
                              title=f"SubOpt and the theory's bound against n, η = {eta:g}")
        figures.append(ReportFigure(
            "bound_rate" if i == 0 else f"bound_rate_eta{eta:g}", fig,
            f"η = {eta:g}: SubOpt (solid) and the theory's bound (dashed) of Option I (lcb_policy: "
            "2β‖E_x[φ(x,π*)−ν(x)]‖_{Σ⁻¹}) and Option II (lcb: 2β E_x E_{π*}‖φ−ν‖_{Σ⁻¹}), ν = φ(x,π0), against n "
            "on log–log axes; columns: scenarios; rows: the theory's β, or the oracle β = the realised ‖θ̂−θ*‖_Σ "
            "(it uses θ*); grey guides have slopes −½ and −1; bands are 95 % intervals across seeds (computed in "
            "log space)."))
    return tuple(figures)


def coverage_figure(frame: pd.DataFrame, table: pd.DataFrame) -> ReportFigure:
    """SubOpt of MLE and the LCBs against the measured coverage coefficient (the ``coverage`` runs)."""
    from rlbandit import plots

    beta0 = float(frame["beta_default"].iloc[0])
    keep = (frame["method"] == "mle") | (frame["method"].isin(LCBS) & (frame["reference"] == "ref")
                                         & (frame["beta_rule"] == "fixed") & np.isclose(frame["beta"], beta0))
    coverage = table.set_index(["eta", "shift"])["coverage"]
    part = frame[keep].copy()
    part["coverage_coefficient"] = [coverage[(e, s)] for e, s in zip(part["eta"], part["shift"])]
    n, shifts = int(frame["n"].max()), ", ".join(f"{v:g}" for v in sorted(table["shift"].unique()))
    fig = plots.line_plot(part, x="coverage_coefficient", y="suboptimality", hue="method", col="eta", logy=True,
                          title=f"SubOpt against the coverage coefficient C* (coverage_shift, n = {n})")
    return ReportFigure("coverage_sweep", fig, f"Mean SubOpt of MLE and the LCBs (β = {beta0:g}, ν = φ(x,π0)) "
                                               "against the median measured coverage coefficient "
                                               "√n‖E[φ(π*) − φ(π0)]‖_{Σ⁻¹}, moved by the shift of π0 away from π* in "
                                               f"`coverage_shift` (shift {shifts}); one panel per η; bands are 95 % "
                                               "intervals across seeds.")


def paper_table(rates: pd.DataFrame, vacuous: pd.DataFrame, heldout: pd.DataFrame, zhu: dict,
                coverage: pd.DataFrame, bound_min: float) -> pd.DataFrame:
    """The papers' claims, the corresponding result here (numbers read from the other tables), and why they differ."""
    oracle = rates[(rates["beta"] == RULE_LABEL["oracle"]) & (rates["scenario"] != "zhu_example")]
    theory = rates[rates["beta"] == RULE_LABEL["theory"]]
    ratio = (theory.set_index(["scenario", "eta", "method"])["beta_nmax"]
             / rates[rates["beta"] == RULE_LABEL["oracle"]].set_index(["scenario", "eta", "method"])["beta_nmax"])
    o1, o2 = oracle[oracle["method"] == "lcb_policy"], oracle[oracle["method"] == "lcb"]
    rows = [
        ("Xiong et al. 2024, offline pessimism theorem, Option I (policy-level LCB)",
         "SubOpt ≤ 2β‖E_x[φ(x,π*) − ν(x)]‖_{Σ⁻¹} on the event ‖θ̂−θ*‖_Σ ≤ β; with β ∝ √d this is ≲ √d·C*/√n",
         f"holds in a fraction {bound_min:.3f} of runs with the theory β, but the bound is "
         f"{_range(vacuous['bound_over_subopt_ref'], '.1f')}× SubOpt(π0); with the oracle β (scenarios but Zhu's) "
         f"the bound's slope is {_range(o1['bound_slope'])} and SubOpt's {_range(o1['subopt_slope'])}",
         "the theorem bounds a gap linear in ‖θ̂−θ*‖_Σ (slope −½); the KL-regularised gap is quadratic near π*, "
         "so SubOpt falls like ‖θ̂−θ*‖² ∝ 1/n; the theory β adds a 1/κ factor on top"),
        ("Xiong et al. 2024, Option II (pointwise LCB)",
         "SubOpt ≤ 2β E_x E_{π*}‖φ − ν‖_{Σ⁻¹}",
         f"oracle β (scenarios but Zhu's): bound slope {_range(o2['bound_slope'])}, SubOpt slope "
         f"{_range(o2['subopt_slope'])}",
         "same rate gap as Option I; with the same β the pointwise bound is never below Option I's (E‖·‖ ≥ ‖E·‖)"),
        ("Xiong et al. 2024 / Zhu et al. 2023: β = the confidence radius",
         "β = the high-probability confidence radius (δ = 0.1 here)",
         f"the theory β is {_range(ratio, '.0f')}× the realised radius at the largest n; β tuned on half the seeds "
         f"and scored on the other half: {_range(heldout['ratio_to_theory'], '.3f')}× the theory β's SubOpt and "
         f"{_range(heldout['ratio_to_mle'])}× MLE's",
         "the theory β is a worst-case radius; with it Option I returns π0 (see the vacuous-bound table)"),
        ("Zhu, Jordan & Jiao 2023, Theorem 3.2 and the MLE failure example",
         "the greedy MLE policy keeps a constant SubOpt when the identifying pair is rarely compared; the "
         "pessimistic MLE does not",
         f"MLE SubOpt {zhu['mle_first']:.2f} → {zhu['mle_last']:.2f} from n = {zhu['n_first']} to {zhu['n_last']} "
         f"(η = {zhu['eta']:g}); mean LCB SubOpt with ν = 0: {zhu['lcb_zero']:.3f}, with ν = φ(x,π0): "
         f"{zhu['lcb_ref']:.3f} (MLE {zhu['mle']:.3f})",
         "their pessimism is relative to a fixed reference vector (ν = 0 here); with ν = φ(x,π0) every action of "
         "the example gets the same bonus and the LCB is the MLE"),
        ("Zhu, Jordan & Jiao 2023: constrained MLE ‖θ‖ ≤ B",
         "the MLE over the ball ‖θ‖ ≤ B is the estimator of their guarantee",
         f"mle_bounded / mle (geometric mean over n): {_range(zhu['bounded_ratio'], '.3f')} over the cells",
         "here the ridge (λ = 1) already regularises; the constraint changes SubOpt by the amount shown"),
    ]
    if len(coverage):
        low = coverage[coverage["eta"] == coverage["eta"].min()].sort_values("coverage")
        rows.append(("Both: the bound scales with the coverage coefficient C*",
                     "SubOpt ≲ √d·C*/√n: the less the data covers π* relative to π0, the larger SubOpt",
                     f"coverage_shift, η = {low['eta'].iloc[0]:g}, n = {int(low['n'].iloc[0])}: C* "
                     f"{low['coverage'].iloc[0]:.1f} → {low['coverage'].iloc[-1]:.1f}, MLE SubOpt "
                     f"{low['mle'].iloc[0]:.3f} → {low['mle'].iloc[-1]:.3f}, lcb / MLE "
                     f"{low['lcb_over_mle'].iloc[0]:.2f} → {low['lcb_over_mle'].iloc[-1]:.2f}",
                     "SubOpt does grow with C*, but pessimism anchored at π0 does not help when π0 is anti-correlated "
                     "with r*: the bonus holds the policy near π0 while the linear model lets MLE extrapolate"))
    return pd.DataFrame(rows, columns=["paper and claim", "their statement", "here", "where / why it differs"])


def _range(values, fmt=".2f") -> str:
    values = pd.Series(values).dropna()
    if not len(values):
        return "—"
    low, high = values.min() + 0.0, values.max() + 0.0
    low, high = (0.0 if f"{v:{fmt}}".lstrip("-").strip("0.") == "" else v for v in (low, high))
    return f"{low:{fmt}}" if f"{low:{fmt}}" == f"{high:{fmt}}" else f"{low:{fmt}} to {high:{fmt}}"


def findings(vacuous: pd.DataFrame, bound_check: pd.DataFrame, rates: pd.DataFrame, heldout: pd.DataFrame,
             coverage: pd.DataFrame, dims: pd.DataFrame, ratio: pd.DataFrame) -> list[str]:
    """The sentences on the bound, its rate, the held-out β, the sweeps and the constrained MLE, each number
    read from the table named beside it."""
    lines = []
    if len(vacuous) and len(bound_check):
        last = vacuous[vacuous["n"] == vacuous["n"].max()]
        policy, pointwise = vacuous[vacuous["method"] == "lcb_policy"], vacuous[vacuous["method"] == "lcb"]
        worse = pointwise[pointwise["mean_subopt"] > pointwise["subopt_ref"]]
        lines.append(
            f"- **With the theory β the bound holds but is vacuous** (table *the theory β's bound is vacuous*): "
            f"SubOpt ≤ bound in a fraction {bound_check['bound_holds'].min():.3f} of runs (minimum over scenario × "
            f"LCB × ν), but the mean bound is {_range(vacuous['bound_over_subopt_ref'], '.1f')}× SubOpt(π0) in every "
            "cell, so the trivial policy π0 satisfies it too: it certifies nothing the learner did. It also exceeds "
            "the reward span E_x[max r* − min r*] (SubOpt(π) ≤ span + η KL(π‖π0)) in "
            f"{int((vacuous['bound_over_span'] > 1).sum())} of {len(vacuous)} cells "
            f"({_range(last['bound_over_span'], '.1f')}× at n = {int(last['n'].iloc[0])}). "
            f"Option I with the theory β returns π0 itself (largest mean KL(π̂‖π0) {policy['kl_to_ref'].max():.2g}); "
            f"Option II's policy is worse than π0 in {len(worse)} of {len(pointwise)} cells (its per-action bonus "
            "of size β distorts the policy rather than holding it at π0).")
    for rule in RULE_LABEL.values():
        part = rates[rates["beta"] == rule]
        if not len(part):
            continue
        good = part[part["scenario"] != "zhu_example"]
        lines.append(
            f"- **Rates with the {rule}** (table *rate of SubOpt against rate of the bound*, n ≥ {N_RATE}, "
            "scenarios other than Zhu's): the bound's log–log slope is "
            + "; ".join(f"{b} {_range(good[good['bound'] == b]['bound_slope'])}" for b in BOUND_OF.values())
            + ", SubOpt's " + "; ".join(f"{m} {_range(good[good['method'] == m]['subopt_slope'])}" for m in LCBS)
            + f"; bound / SubOpt at the largest n is {_range(good['bound_over_subopt_nmax'], '.0f')}×"
            + (" (lcb_policy's slope of 0: with this β it returns π0 at every n)."
               if rule == RULE_LABEL["theory"] else "."))
    oracle = rates[(rates["beta"] == RULE_LABEL["oracle"]) & (rates["scenario"] != "zhu_example")]
    if len(oracle):
        def bounds(ci):
            return ci.str.strip("[]").str.split(",", expand=True).astype(float)

        def contains(ci, value):
            low_high = bounds(ci)
            return (low_high[0] <= value) & (value <= low_high[1])

        separated = bounds(oracle["subopt_ci"])[1] < bounds(oracle["bound_ci"])[0]
        lines.append(
            f"  With the oracle β the bound falls at median slope {oracle['bound_slope'].median():.2f} and SubOpt at "
            f"{oracle['subopt_slope'].median():.2f}, so bound / SubOpt grows like n^"
            f"{(oracle['bound_slope'] - oracle['subopt_slope']).median():.2f} (median over cells): the looseness is "
            "in the rate, not a constant — the bound is linear in ‖θ̂ − θ*‖_Σ while the KL-regularised gap near π* "
            "is quadratic in it. "
            f"SubOpt's 95 % CI lies entirely below the bound's in {int(separated.sum())} of {len(oracle)} cells "
            f"(SubOpt's slope CI contains −1 in {int(contains(oracle['subopt_ci'], -1.0).sum())}, the bound's "
            f"contains −½ in {int(contains(oracle['bound_ci'], -0.5).sum())}). "
            f"The oracle β's event ‖θ̂ − θ*‖_Σ ≤ β holds by construction ({oracle['covered'].min():.3f}).")
    if len(heldout):
        better = heldout[heldout["ratio_to_mle"] < 0.995]
        lines.append(
            f"- **β tuned on held-out seeds** (table *β tuned on the first half*; {len(heldout)} cells: scenario × η "
            f"× LCB): the tuned β ranges over {', '.join(f'{b:g}' for b in sorted(heldout['tuned_beta'].unique()))}. "
            f"On the other half it beats MLE in {len(better)} of {len(heldout)} cells ("
            + ", ".join(f"{r.scenario} η={r.eta:g} {r.method}: β = {r.tuned_beta:g}, {r.ratio_to_mle:.2f}× MLE"
                        for r in better.itertuples())
            + f") and ties it elsewhere (ratio {_range(heldout.drop(better.index)['ratio_to_mle'], '.3f')}, mostly "
            f"with β = 0); against the theory β it is {_range(heldout['ratio_to_theory'], '.3f')}×. The held-out "
            f"SubOpt is {_range(heldout['heldout_subopt'] / heldout['best_on_heldout'], '.3f')}× that of the best β "
            "picked on the scoring half itself, so the choice transfers to fresh problems; β > 0 gains more than "
            f"5 % only in {', '.join(sorted(set(heldout.loc[heldout['ratio_to_mle'] < 0.95, 'scenario'])))} "
            f"(rarely compared traps), and the theory's constant never beats the tuned β (tuned / theory ≤ "
            f"{heldout['ratio_to_theory'].max():.3f} in every cell).")
    if len(coverage):
        parts = []
        for eta, part in coverage.groupby("eta"):
            lo, hi = part.loc[part["coverage"].idxmin()], part.loc[part["coverage"].idxmax()]
            parts.append(f"η = {eta:g}: C* {lo['coverage']:.2f} (shift {lo['shift']:g}) → {hi['coverage']:.2f} (shift "
                         f"{hi['shift']:g}), MLE SubOpt {lo['mle']:.3f} → {hi['mle']:.3f}, lcb / MLE "
                         f"{lo['lcb_over_mle']:.2f} → {hi['lcb_over_mle']:.2f}, lcb_policy / MLE "
                         f"{lo['lcb_policy_over_mle']:.2f} → {hi['lcb_policy_over_mle']:.2f}")
        lines.append("- **Coverage sweep** (table *coverage sweep*, `coverage_shift` with the shift of π0 away from π* "
                     "swept; figure `coverage_sweep`): " + "; ".join(parts) + ". At η = 1 the KL anchor keeps π* "
                     "near a peaked π0, so a larger shift can lower the measured C*; the coefficient, not the shift, "
                     "is the x-axis of the figure.")
    if len(dims):
        lines.append(
            f"- **Dimension sweep** (table *dimension sweep*, `partial_coverage`, n = {int(dims['n'].iloc[0])}): "
            + "; ".join(f"η = {eta:g}: d = {int(p['dim'].iloc[0])} → {int(p['dim'].iloc[-1])}, MLE SubOpt "
                        f"{p['mle'].iloc[0]:.3f} → {p['mle'].iloc[-1]:.3f}, lcb / MLE "
                        f"{p['lcb_over_mle'].iloc[0]:.2f} → {p['lcb_over_mle'].iloc[-1]:.2f}, lcb_policy / MLE "
                        f"{p['lcb_policy_over_mle'].iloc[0]:.2f} → {p['lcb_policy_over_mle'].iloc[-1]:.2f}"
                        for eta, p in dims.sort_values("dim").groupby("eta"))
            + ".")
    if "mle_bounded" in ratio:
        lines.append(
            f"- **Norm-constrained MLE** ‖θ‖ ≤ B = max ‖θ*‖ (Zhu et al.; row `mle_bounded`, ratio table): "
            f"SubOpt {_range(ratio['mle_bounded'], '.3f')}× the ridge MLE's (geometric mean over n, per cell).")
    return lines
