"""The report of the ``nash`` study (:mod:`benchmarks.nash`): one section per experiment, each built
from one function per table, figure and summary paragraph, composed by :func:`report`.

Solvers are ordered as today's built-ins (alphabetically, with the seed-loop timing), followed by
any other registered solver a sweep ran (its ``solvers`` field), in alphabetical order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from benchmarks import nash_report_neutral as neutral
from benchmarks.nash import POLICY_ORDER, SCENARIO_ROLE, SEED_LOOP, SOLVER_ORDER, SOLVER_TOL
from rlbandit.stats import format_mean_se, loglog_slope
from rlbandit.study import ReportContent, ReportFigure

#: The table cells: mean ± one standard error over seeds.
_mean_se = partial(format_mean_se, mean_format=".3f", se_format=".3f")


@dataclass
class _Section:
    """What one experiment adds to the report."""

    tables: list = field(default_factory=list)
    figures: list = field(default_factory=list)
    summary: list = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Offline: the learned equilibrium against BT-RLHF
# ---------------------------------------------------------------------------------------------

def _offline_table(offline: pd.DataFrame) -> pd.DataFrame:
    last = offline[offline.n == offline.n.max()]
    rows = []
    for (scenario, eta, policy), group in last.groupby(["scenario", "eta", "policy"], sort=False):
        rows.append({"scenario": scenario, "η": eta, "policy": policy,
                     "exploitability": _mean_se(group.exploitability),
                     "P(π ≻ BT-RLHF)": _mean_se(group.win_rate_vs_bt),
                     "f(π, BT-RLHF)": _mean_se(group.payoff_vs_bt),
                     "P(π ≻ π0)": _mean_se(group.win_rate_vs_ref),
                     "P(π ≻ π_η)": _mean_se(group.win_rate_vs_nash),
                     "worst-case win rate": _mean_se(group.worst_case_win_rate),
                     "KL(π‖π0)": _mean_se(group.kl_to_ref)})
    table = pd.DataFrame(rows)
    order = {p: i for i, p in enumerate(POLICY_ORDER)}
    return table.sort_values(["scenario", "η", "policy"], key=lambda c: c.map(order) if c.name == "policy" else c,
                             ignore_index=True)


def _offline_summary(offline: pd.DataFrame) -> str:
    learned = offline[(offline.policy.isin(["nash_learned", "bt_rlhf"])) & (offline.n == offline.n.max())]
    lines, ratios = [], {}
    for (scenario, eta), group in learned.groupby(["scenario", "eta"]):
        nl = group[group.policy == "nash_learned"]
        bt = group[group.policy == "bt_rlhf"]
        ratios[(scenario, eta)] = bt.exploitability.mean() / nl.exploitability.mean()
        lines.append(f"- **{scenario}**, η = {eta}: exploitability {nl.exploitability.mean():.4f} (learned Nash) vs "
                     f"{bt.exploitability.mean():.4f} (BT-RLHF); game payoff f(Nash, BT-RLHF) = "
                     f"{nl.payoff_vs_bt.mean():.3f}.")
    return (
        f"**By the game's own objective** (exploitability, the duality gap of the KL-regularised game — what the "
        f"Nash policy minimises and BT-RLHF does not, so this comparison favours Nash by construction), n = "
        f"{int(offline.n.max())}:\n"
        + "\n".join(lines)
        + "\n\nExploitability ratio BT-RLHF / learned Nash: "
        + ", ".join(f"{s} η={e:g}: {r:.3g}×" for (s, e), r in ratios.items())
        + ". Under BT preferences the two policies coincide only as η → 0: the RLHF objective "
        "max_π E[r] − η KL and the preference game have different solutions at finite η. In raw "
        "head-to-head win rate BT-RLHF can beat the *regularised* equilibrium, as the theorem allows — "
        "P(π_η ≻ π′) ≥ ½ + η(KL(π_η‖π0) − KL(π′‖π0)) and BT-RLHF spends more KL — but the true "
        "equilibrium's game payoff f(π_η, BT-RLHF) is ≥ ½ in every run (min f − ½ = "
        f"{offline[offline.policy == 'nash_true'].payoff_vs_bt.min() - 0.5:.2g} over all seeds, n and η).")


def _offline_figures(offline: pd.DataFrame) -> list[ReportFigure]:
    from rlbandit import plots

    shown = offline[offline.policy.isin(["nash_true", "nash_learned", "bt_rlhf", "bt_infinite"])]
    exploitability = plots.line_plot(shown, x="n", y="exploitability", hue="policy", style="eta", col="scenario",
                                     logx=True, logy=False)
    payoff = plots.line_plot(offline[offline.policy.isin(["nash_true", "nash_learned", "reference"])], x="n",
                             y="payoff_vs_bt", hue="policy", style="eta", col="scenario", logx=True)
    for ax in payoff.axes:
        if ax.get_title():
            ax.axhline(0.5, color="grey", lw=1, ls=":")
    win_rate = plots.line_plot(offline[offline.policy.isin(["nash_true", "nash_learned", "bt_infinite"])], x="n",
                               y="win_rate_vs_bt", hue="policy", style="eta", col="scenario", logx=True)
    return [ReportFigure("offline_exploitability", exploitability,
                         "Exploitability under the true P of the learned Nash policy, BT-RLHF and BT-RLHF with "
                         "infinite data, against the number of π0 × π0 comparisons (true equilibrium: 0)."),
            ReportFigure("offline_payoff_vs_bt", payoff,
                         "Game payoff f(π, π_BT) = P(π ≻ π_BT) − η KL(π‖π0) + η KL(π_BT‖π0) against BT-RLHF "
                         "fitted on the same data; the equilibrium's is ≥ ½ (dotted) by the theorem."),
            ReportFigure("offline_win_rate_vs_bt", win_rate,
                         "Win rate against the BT-RLHF policy fitted on the same data; above ½ means BT-RLHF loses "
                         "head to head.")]


def _offline_section(offline: pd.DataFrame) -> _Section:
    n = int(offline.n.max())
    headline = neutral.neutral_table(offline, ["scenario", "eta"])
    rates = neutral.rate_table(offline)
    tables = [(f"Headline: learned Nash vs BT-RLHF by neutral win rates, n = {n} (mean ± s.e. over seeds; Nash − BT "
               f"paired per seed; verdict: tie when |Δ| ≤ max({neutral.TIE}, 2 s.e.))", headline),
              (f"Offline, n = {n} comparisons from π0 × π0, all metrics (mean ± s.e. over seeds; exact under the "
               "true P)", _offline_table(offline)),
              ("Rate in n: log–log slope of the mean exploitability of the learned Nash policy (and BT-RLHF)", rates)]
    return _Section(tables, _offline_figures(offline),
                    [neutral.neutral_summary(offline, headline), neutral.rate_summary(rates),
                     _offline_summary(offline)])


def _intransitivity_section(frame: pd.DataFrame) -> _Section:
    table = neutral.neutral_table(frame, ["eta", "strength"])
    title = (f"Map over η × ‖A‖_F (linear_general, n = {int(frame.n.max())}): neutral win rates of learned Nash "
             "and BT-RLHF (mean ± s.e. over seeds)")
    return _Section([(title, table)], neutral.intransitivity_figures(frame),
                    [neutral.intransitivity_summary(frame, table)])


# ---------------------------------------------------------------------------------------------
# Online Nash learning
# ---------------------------------------------------------------------------------------------

def _online_table(online: pd.DataFrame) -> pd.DataFrame:
    last = online[online.iteration == online.iteration.max()]
    first = online[online.iteration == 0]
    rows = []
    for (scenario, enhancer), group in last.groupby(["scenario", "enhancer"]):
        start = first[(first.scenario == scenario) & (first.enhancer == enhancer)]
        rows.append({"scenario": scenario, "enhancer": enhancer, "n": int(group.n_comparisons.max()),
                     "exploitability (t = 0)": _mean_se(start.exploitability),
                     "exploitability (final)": _mean_se(group.exploitability),
                     "BT-RLHF exploitability (same data)": _mean_se(group.bt_exploitability),
                     "P(π¹ ≻ BT-RLHF)": _mean_se(group.win_rate_vs_bt),
                     "KL(π*‖π¹)": _mean_se(group.kl_nash_to_policy)})
    return pd.DataFrame(rows)


def _online_summary(online: pd.DataFrame) -> str:
    last = online[online.iteration == online.iteration.max()]
    best = last.groupby(["scenario", "enhancer"]).exploitability.mean()
    scenarios = [s for s in best.index.levels[0] if s in best.index.get_level_values(0)]
    text = ("**Online Nash learning** (final exploitability of the main agent, per scenario): " + "; ".join(
        f"{s}: " + ", ".join(f"{e} {v:.4f}" for e, v in best[s].sort_values().items()) for s in scenarios) + ".")
    ratios = {s: best[s]["self"] / best[s]["ucb"] for s in scenarios if {"self", "ucb"} <= set(best[s].index)}
    if ratios:
        pays = [s for s, r in ratios.items() if r > 1.2]
        text += (" Final exploitability of `self` (no exploration) / `ucb` (the optimistic best response; > 1: "
                 "exploration helps): " + ", ".join(f"{s}: {r:.2g}×" for s, r in ratios.items())
                 + ". Exploration pays (> 1.2×) in: " + (", ".join(pays) or "none") + "; in the other settings "
                 "the main agent's own samples already cover the features.")
    return text


def _online_figures(online: pd.DataFrame) -> list[ReportFigure]:
    from rlbandit import plots

    return [ReportFigure("online_exploitability", plots.line_plot(
                online, x="n_comparisons", y="exploitability", hue="enhancer", col="scenario", logy=True),
                "Online Nash learning curves: exploitability of the main agent (Nash of the learned model) under the "
                "true P against the number of comparisons, per enhancer."),
            ReportFigure("online_win_rate_vs_bt", plots.line_plot(
                online[online.iteration > 0], x="n_comparisons", y="win_rate_vs_bt", hue="enhancer", col="scenario"),
                "Online: win rate of the main agent against BT-RLHF fitted on the same comparisons.")]


def _online_settings(online: pd.DataFrame) -> list[str]:
    return [f"{s}, η={e:g}" + (", peaked π0" if r >= 2 else "")
            for s, e, r in zip(online.scenario, online.eta, online.ref_scale)]


def _online_section(online: pd.DataFrame) -> _Section:
    online = online.assign(scenario=_online_settings(online))
    title = "Online iterative Nash learning, final iteration (mean ± s.e. over seeds)"
    return _Section([(title, _online_table(online))], _online_figures(online), [_online_summary(online)])


# ---------------------------------------------------------------------------------------------
# Solvers
# ---------------------------------------------------------------------------------------------

def _is_extra(solvers: pd.Series) -> pd.Series:
    """True for a solver that is not one of today's built-ins (nor the seed-loop timing)."""
    return ~solvers.isin(SOLVER_ORDER + (SEED_LOOP,))


def _solver_table(solvers: pd.DataFrame) -> pd.DataFrame:
    table = (solvers.groupby(["scenario", "eta", "solver"])
             .agg(iterations=("iterations", "median"), seconds=("seconds", "median"),
                  time_ratio=("time_ratio_vs_extragradient", "median"),
                  max_kl_to_reference=("kl_to_reference", "max"), exploitability=("exploitability", "max"),
                  final_residual=("residual", "max"), converged=("converged", "all"))
             .reset_index())
    extra = _is_extra(table["solver"].astype(str)).rename("extra")
    return table.assign(extra=extra).sort_values(["scenario", "eta", "extra"], kind="stable").drop(
        columns="extra").reset_index(drop=True)


#: Solvers that make one solve (no iterations to cap): not converged means "less accurate than the tolerance".
_ONE_SHOT = ("cvxpy",)


def _capped_text(solvers: pd.DataFrame) -> str:
    runs = solvers[solvers.solver != SEED_LOOP]
    bad = runs[~runs.converged.astype(bool)]
    if bad.empty:
        return f"Every solver run reached residual ≤ {SOLVER_TOL:g}."
    parts = []
    for m, g in bad.groupby("solver"):
        total = int((runs.solver == m).sum())
        if m in _ONE_SHOT:
            parts.append(f"{m}'s single solve ends above it in {len(g)} of {total} cells (residual "
                         f"{g.residual.min():.1e}–{g.residual.max():.1e}, the max |log π − log O(Pπ)|, large where "
                         "some actions have tiny probability; yet KL to the reference ≤ "
                         f"{g.kl_to_reference.max():.1e})")
        else:
            cells = ", ".join(f"{s} η={e:g}" for s, e in zip(g.scenario, g.eta)) if len(g) < total else "every cell"
            parts.append(f"{m} stopped at its cap of {int(g.iterations.max())} iterations in {len(g)} of {total} "
                         f"cells ({cells}; final residual {g.residual.min():.1e}–{g.residual.max():.1e})")
    return (f"**{len(bad)} of {len(runs)} solver runs did not reach residual ≤ {SOLVER_TOL:g}** (hatched in the "
            f"figure, `converged` = False in the table): " + "; ".join(parts)
            + ". For the capped runs the iteration counts and times are lower bounds, not convergence times.")


def _solver_summary(solvers: pd.DataFrame) -> str:
    ratio = solvers.groupby("solver").time_ratio_vs_extragradient.median()
    ratio = ratio.loc[sorted(ratio.index, key=lambda name: (name not in SOLVER_ORDER + (SEED_LOOP,), name))]
    loop = ratio.get(SEED_LOOP, np.nan)
    exact = solvers[solvers.solver != SEED_LOOP]
    return ("**Solvers** agree to KL ≤ " + f"{exact.kl_to_reference.max():.1e}"
            + "; median wall-time ratio to extragradient (same run): "
            + ", ".join(f"{k} {v:.2g}×" for k, v in ratio.items() if k != SEED_LOOP)
            + f". Solving the seeds one at a time instead of batched costs {loop:.2g}× the batched time. "
            "Plain damped mirror descent (fixed_point) is fastest on near-transitive games but needs "
            "O(L²/η²) steps on cyclic ones at small η, where extragradient needs O(L/η). " + _capped_text(solvers))


def _solver_figure(solvers: pd.DataFrame) -> ReportFigure:
    from rlbandit import plots

    shown = solvers[solvers.solver != SEED_LOOP]
    shown = shown.assign(game=[f"{s} η={e:g}" for s, e in zip(shown.scenario, shown.eta)])
    fig = plots.bar_plot(shown, x="game", y="iterations", hue="solver", logy=True)
    # Hatch the capped runs: bar_plot draws one container per solver (labelled "solver = name"), one bar per
    # game in the order of the x tick labels.
    done = shown.groupby(["solver", "game"]).converged.all()
    ax = fig.axes[0]
    games = [t.get_text() for t in ax.get_xticklabels()]
    for container in (c for c in ax.containers if hasattr(c, "patches")):
        solver = str(container.get_label()).split(" = ", 1)[-1]
        for game, patch in zip(games, container.patches):
            if not done.get((solver, game), True):
                patch.set_hatch("xx")
                patch.set_edgecolor("black")
    return ReportFigure("solver_iterations", fig,
                        f"Iterations each solver needs to reach a fixed-point residual of {SOLVER_TOL:g} (cvxpy: one "
                        "interior-point solve). Hatched bars did not get there (nash_md stops at its 20 000-step "
                        "cap, fixed_point at 100 000; cvxpy's accuracy): their height is the cap, not a "
                        "convergence time — see `converged` and `final_residual` in the table.")


def _solver_section(solvers: pd.DataFrame) -> _Section:
    title = ("Solvers to residual ≤ 1e-10 (caps: nash_md 20 000 steps, fixed_point and extragradient 100 000; "
             "`converged` = final residual ≤ 1e-10 for every problem; time ratio vs extragradient in the same run)")
    table = _solver_table(solvers)
    solvers = solvers.assign(solver=solvers.solver.astype(str))
    return _Section([(title, table)], [_solver_figure(solvers)], [_solver_summary(solvers)])


# ---------------------------------------------------------------------------------------------
# Nash-MD against its bound
# ---------------------------------------------------------------------------------------------

_DECREASING = "2/(τ(t+2))"


def _constant(md: pd.DataFrame) -> pd.Series:
    return md.schedule.astype(str).str.startswith("constant")


def _nash_md_summary(md: pd.DataFrame) -> str:
    dec = md[~_constant(md)]
    worst = dec.ratio_to_bound.max()
    tail = dec[dec["T"] >= max(1, dec["T"].max() / 32)]
    slopes = {eta: float(loglog_slope(g["T"], g.kl_max_over_contexts)) for eta, g in tail.groupby("eta")}
    text = (f"**Nash-MD** (Munos et al. 2023, Theorem 1, η_t = 2/(τ(t+2))): max over problems, contexts and T of "
            f"KL(π*‖π_T) / (8/(τ²(T+1))) = {worst:.2g} — "
            + ("the bound holds" + (" with room to spare" if worst < 0.1 else "") if worst <= 1 else "the bound FAILS")
            + ". The one-step "
            f"inequality KL_(t+1) ≤ (1 − η_tτ) KL_t + c·η_t² behind it (c = 2 in the paper; 8 = 4c follows by "
            f"induction) needs c = {dec.one_step_constant.max():.2g} on these iterates. With exact "
            f"payoffs the observed rate is "
            + ("faster than" if max(slopes.values()) < -1 else "not faster than everywhere")
            + " the bound's 1/T (log–log slope for T ≥ "
            f"{int(max(1, dec['T'].max() / 32))}: "
            + ", ".join(f"η={eta:g}: {s:.2f}" for eta, s in slopes.items()) + ").")
    const = md[_constant(md)]
    if len(const):
        table = _nash_md_table(md)
        c = table[table.schedule != _DECREASING]
        steps = ", ".join(sorted(str(x).split()[1] for x in set(const.schedule)))
        text += (f" **Constant step** s ∈ {{{steps}}} (Theorem 1's constant-step form "
                 f"(1 − sτ)^T KL(π*‖π_0) + 2s/τ): max ratio to that bound {const.ratio_to_bound.max():.2g}; at "
                 f"T = {int(const['T'].max())} the KL is {c['KL at T max'].min():.2g}–{c['KL at T max'].max():.2g}, "
                 f"{c['KL / floor 2s/τ'].min():.2g}–{c['KL / floor 2s/τ'].max():.2g} × the floor 2s/τ.")
        quarter = const[const["T"] <= const["T"].max() / 2]["T"].max()
        late = const.groupby(["schedule", "eta", "T"]).kl_max_over_contexts.mean().unstack("T")
        change = (late[const["T"].max()] / late[quarter])
        text += (f" Between T = {int(quarter)} and T = {int(const['T'].max())} the KL changes by a factor "
                 f"{change.min():.3g}–{change.max():.3g}"
                 + (": a constant step stops at a biased plateau instead of reaching π* (the "
                    "decreasing schedule keeps falling)" if change.min() > 0.5 else "") + ".")
    return text


def _nash_md_table(md: pd.DataFrame) -> pd.DataFrame:
    last = md[md["T"] == md["T"].max()]
    rows = []
    for (scenario, schedule, eta), g in last.groupby(["scenario", "schedule", "eta"]):
        runs = md[(md.scenario == scenario) & (md.schedule == schedule) & (md.eta == eta)]
        row = {"scenario": scenario, "schedule": schedule, "η = τ": eta, "T max": int(md["T"].max()),
               "KL at T max": g.kl_max_over_contexts.mean(), "bound at T max": g.bound.mean(),
               "max KL/bound (all T)": runs.ratio_to_bound.max(), "c needed (paper: 2)": runs.one_step_constant.max()}
        if str(schedule).startswith("constant"):
            step = float(str(schedule).split()[1].split("/")[0]) / eta
            row["KL / floor 2s/τ"] = g.kl_max_over_contexts.max() / (2 * step / eta)
        rows.append(row)
    return pd.DataFrame(rows)


def _bound_lines(fig, md: pd.DataFrame, col: str) -> None:
    """Each η's bound, dotted, in the colour of that η's line, labelled in the panel."""
    from rlbandit.plots import format_value

    for ax, level in zip(fig.axes, sorted(md[col].unique())):
        colors = {line.get_label().split(" = ")[-1]: line.get_color() for line in ax.get_lines()}
        handles = []
        for eta, group in md[md[col] == level].groupby("eta"):
            bound = group.groupby("T").bound.mean()
            handles += ax.plot(bound.index, bound.values, ls=":", lw=1.2,
                               color=colors.get(format_value(eta), "grey"), label=f"bound, η = {eta:g}")
        ax.legend(handles=handles, fontsize="x-small", loc="lower left")


def _nash_md_figures(md: pd.DataFrame) -> list[ReportFigure]:
    from rlbandit import plots

    dec = md[~_constant(md)]
    fig = plots.line_plot(dec, x="T", y="kl_max_over_contexts", hue="eta", col="scenario", logx=True, logy=True,
                          reference_slopes=(-1.0,), slope_labels=(r"$\propto 1/T$",))
    _bound_lines(fig, dec, "scenario")
    out = [ReportFigure("nash_md_bound", fig, "Nash-MD (η_t = 2/(τ(t+2))): max over contexts of KL(π*‖π_T) against "
                        "the iteration count T (solid, mean over seeds) and the bound 8/(τ²(T+1)) of Munos et al. "
                        "Theorem 1 (dotted, same colour as its η, labelled in each panel); grey dashed: a 1/T guide.")]
    if _constant(md).any():
        lg = md[md.scenario == "linear_general"]
        fig = plots.line_plot(lg, x="T", y="kl_max_over_contexts", hue="eta", col="schedule", logx=True, logy=True)
        _bound_lines(fig, lg, "schedule")
        out.append(ReportFigure("nash_md_constant_step", fig,
                                "Nash-MD on linear_general per step schedule (panels): KL(π*‖π_T) (solid) and Theorem "
                                "1's bound for that schedule (dotted, colour of its η; constant step s: (1 − sτ)^T "
                                "KL(π*‖π_0) + 2s/τ, max over contexts, mean over seeds)."))
    return out


def _stochastic(md: pd.DataFrame) -> _Section:
    """Stochastic Nash-MD (m opponent samples per step) against exact Nash-MD and the bound in expectation."""
    from rlbandit import plots

    lg = md[(md.scenario == "linear_general") & ~_constant(md) & md.eta.isin(md[md.samples > 0].eta.unique())]
    rows = []
    for (eta, m), g in lg.groupby(["eta", "samples"]):
        mean = g.groupby("T")[["kl_star_to_iterate", "bound"]].mean()
        tail = mean[mean.index >= max(1, mean.index.max() / 32)]
        rows.append({"η = τ": eta, "opponent samples m": "exact" if m == 0 else int(m),
                     "E KL(π*‖π_T) at T max": mean.kl_star_to_iterate.iloc[-1],
                     "bound at T max": mean.bound.iloc[-1],
                     "max over T of E KL / bound": (mean.kl_star_to_iterate / mean.bound).max(),
                     "log–log slope (T ≥ T max/32)": float(loglog_slope(tail.index, tail.kl_star_to_iterate))})
    table = pd.DataFrame(rows)
    fig = plots.line_plot(lg.assign(m=lg.samples), x="T", y="kl_star_to_iterate", hue="m", col="eta", logx=True,
                          logy=True)
    for ax, eta in zip(fig.axes, sorted(lg.eta.unique())):
        bound = lg[lg.eta == eta].groupby("T").bound.mean()
        ax.legend(handles=ax.plot(bound.index, bound.values, ls=":", color="grey", lw=1.2,
                                  label=f"bound 8/(τ²(T+1)), η = {eta:g}"), fontsize="x-small", loc="lower left")
    sto, exact = table[table["opponent samples m"] != "exact"], table[table["opponent samples m"] == "exact"]
    text = (f"**Stochastic Nash-MD** (linear_general; the opponent's expectation replaced by m ∈ "
            f"{{{', '.join(str(v) for v in sto['opponent samples m'].unique())}}} samples per step, explicit "
            f"Generator): max over T of E KL(π*‖π_T) / (8/(τ²(T+1))) = {sto['max over T of E KL / bound'].max():.2g} "
            f"(mean over seeds and contexts; the bound holds in expectation"
            + ("" if sto["max over T of E KL / bound"].max() <= 1 else " — VIOLATED") + "); at T max E KL is "
            f"{sto['E KL(π*‖π_T) at T max'].min():.2g}–{sto['E KL(π*‖π_T) at T max'].max():.2g} against "
            f"{exact['E KL(π*‖π_T) at T max'].min():.2g}–{exact['E KL(π*‖π_T) at T max'].max():.2g} with exact "
            f"payoffs; log–log slopes {sto['log–log slope (T ≥ T max/32)'].min():.2f} to "
            f"{sto['log–log slope (T ≥ T max/32)'].max():.2f} (exact: "
            f"{exact['log–log slope (T ≥ T max/32)'].min():.2f} to {exact['log–log slope (T ≥ T max/32)'].max():.2f}).")
    caption = ("Stochastic Nash-MD on linear_general: E KL(π*‖π_T) (mean over seeds and contexts) per number of "
               "opponent samples m (0 = exact payoffs), per η (panels); dotted: Theorem 1's bound 8/(τ²(T+1)).")
    return _Section([("Stochastic Nash-MD (m opponent samples per step) against exact Nash-MD and Theorem 1's bound",
                      table)], [ReportFigure("nash_md_stochastic", fig, caption)], [text])


def _nash_md_section(md: pd.DataFrame) -> _Section:
    md = md.assign(schedule=md.schedule.astype(str), samples=md["samples"] if "samples" in md else 0)
    exact = md[md.samples == 0]
    title = "Nash-MD against Theorem 1's bounds (means over seeds of the max over contexts; ratio: max over all)"
    section = _Section([(title, _nash_md_table(exact))], _nash_md_figures(exact), [_nash_md_summary(exact)])
    if (md.samples > 0).any():
        extra = _stochastic(md)
        section.tables += extra.tables
        section.figures += extra.figures
        section.summary += extra.summary
    return section


_NOTES = ("Exploitability is the duality gap η E_x[KL(π‖O(Pπ)) + KL(π‖O(−Pᵀπ))] of the KL-regularised game "
          "under the true P; it is 0 only at the equilibrium π_η; BT-RLHF does not minimise it. The neutral metrics, "
          "which neither method optimises: the worst-case win rate E_x min_b P(π ≻ b | x) (against the "
          "unregularised best response, ≤ ½), the win rate against the min-player's KL-regularised best response "
          "O(−Pᵀπ), and the head-to-head P(π_Nash ≻ π_BT) of the two policies fitted on the same data. "
          "BT-RLHF with infinite data is the BT MLE under the "
          "population distribution of π0 × π0 pairs (fit_bt with exact weights).\n\n"
          "Scenarios: " + "; ".join(f"`{k}`: {v}" for k, v in SCENARIO_ROLE.items()) + ".")

_SECTIONS = (("offline", _offline_section), ("intransitivity", _intransitivity_section),
             ("online", _online_section), ("solvers", _solver_section),
             ("nash_md", _nash_md_section))


def report(frame: pd.DataFrame) -> ReportContent:
    """The ``nash`` study's report: one section per experiment that ran."""
    tables, figures, summary, parts = [], [], [], {}
    for experiment, build in _SECTIONS:
        part = frame[frame.experiment == experiment].dropna(axis=1, how="all")
        if part.empty:
            continue
        parts[experiment] = part
        section = build(part)
        tables += section.tables
        figures += section.figures
        summary += section.summary
    if "online" in parts:
        online = parts["online"]
        parts["online"] = online.assign(setting=_online_settings(online))
    if "nash_md" in parts:
        md = parts["nash_md"]
        md = md[md["samples"] == 0] if "samples" in md else md
        parts["nash_md"] = md.assign(schedule=md.schedule.astype(str))
    reproduction = neutral.reproduction_table(frame, parts)
    if len(reproduction):
        tables.append(("Reproducing the paper", reproduction))
        summary.append("**Reproducing the paper**: " + "; ".join(
            f"{r['claim']} — {r['agree?']}" for _, r in reproduction.iterrows()) + " (table *Reproducing the paper*).")
    return ReportContent(summary="\n\n".join(summary), tables=tuple(tables), figures=tuple(figures), notes=_NOTES)
