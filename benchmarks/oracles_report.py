"""The report of the ``oracles`` study (:mod:`benchmarks.oracles`): one function per table, figure and
summary line, composed by :func:`report`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.oracles import PG_METHODS, SCENARIOS
from rlbandit.study import ReportContent, ReportFigure

#: The sampling oracles, not monotone in their budget (N sets the KL): reported at their best N.
SAMPLING = (("best_of_n", "best-of-N, best N"), ("rejection_sampling", "RS fine-tuning, best N"))


def _first_reaching(group: pd.DataFrame, column: str, tol: float) -> float:
    """Smallest value of ``column`` (a budget) at which the seed-mean KL to Gibbs is ≤ ``tol`` (NaN if never)."""
    means = group.groupby(column)["kl_to_target"].mean().sort_index()
    hit = means[means <= tol]
    return float(hit.index[0]) if len(hit) else np.nan


def _sampled(frame: pd.DataFrame) -> pd.DataFrame:
    """Every method measured against a budget of samples or comparisons (all but ``kl_options``)."""
    return frame[frame["method"] != "kl_options"]


def _at_largest_budget(sampled: pd.DataFrame) -> pd.DataFrame:
    """Each variant's rows at its largest budget (and its last step there)."""
    last_budget = sampled.groupby(["scenario", "eta", "variant"])["samples"].transform("max")
    at_max = sampled[sampled["samples"] == last_budget]
    if "step" in at_max:
        last_step = at_max.groupby(["scenario", "eta", "variant"])["step"].transform("max")
        at_max = at_max[(at_max["step"] == last_step) | at_max["step"].isna()]
    return at_max


def _best_budget_rows(frame: pd.DataFrame, method: str, name: str) -> pd.DataFrame:
    """A sampling oracle at the budget (N) closest to Gibbs, per η."""
    part = frame[frame["method"] == method]
    per_n = part.groupby(["eta", "samples"])[["kl_to_target", "subopt", "kl_to_ref"]].mean().reset_index()
    best = per_n.loc[per_n.groupby("eta")["kl_to_target"].idxmin()]
    return pd.DataFrame({"family": "sampling", "variant": name, "eta": best["eta"].to_numpy(),
                         "samples": best["samples"].to_numpy(), "kl_to_gibbs": best["kl_to_target"].to_numpy(),
                         "subopt": best["subopt"].to_numpy(), "kl_to_ref": best["kl_to_ref"].to_numpy()})


def _headline_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Final KL to Gibbs and SubOpt per variant at its largest budget (sampling oracles: their best N)."""
    at_max = _at_largest_budget(_sampled(frame))
    headline = (at_max[~at_max["method"].isin([m for m, _ in SAMPLING])]
                .groupby(["family", "variant", "eta"])
                .agg(samples=("samples", "max"), kl_to_gibbs=("kl_to_target", "mean"), subopt=("subopt", "mean"),
                     kl_to_ref=("kl_to_ref", "mean"))
                .reset_index())
    for method, name in SAMPLING:
        if (frame["method"] == method).any():
            headline = pd.concat([headline, _best_budget_rows(frame, method, name)], ignore_index=True)
    return headline.sort_values(["eta", "kl_to_gibbs"]).reset_index(drop=True)


def _reach_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Samples (or comparisons) until the seed-mean KL to Gibbs falls below a tolerance, per variant."""
    rows = []
    for (eta, variant), group in _sampled(frame).groupby(["eta", "variant"]):
        tol = 0.05 if eta >= 1 else 0.2
        per_scenario = [_first_reaching(g[g["samples"] > 0], "samples", tol) for _, g in group.groupby("scenario")]
        reached = [v for v in per_scenario if np.isfinite(v)]
        rows.append({"eta": eta, "variant": variant, "KL tolerance": tol,
                     "samples to reach (mean over scenarios reaching)": np.mean(reached) if reached else np.nan,
                     "scenarios reaching": f"{len(reached)}/{len(per_scenario)}"})
    return pd.DataFrame(rows).sort_values(["eta", "samples to reach (mean over scenarios reaching)"])


def _cost_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Wall time per run and its ratio to the exact oracle, per method (one run fits all its variants)."""
    runs = frame.drop_duplicates("run_id" if "run_id" in frame else ["scenario", "eta", "method"])
    return (runs.assign(ratio=runs["wall_s"] / runs["oracle_wall_s"])
            .groupby("method").agg(runs=("wall_s", "size"), wall_s_per_run=("wall_s", "mean"),
                                   exact_oracle_us=("oracle_wall_s", lambda v: 1e6 * v.mean()),
                                   wall_over_exact_oracle=("ratio", "median"))
            .sort_values("wall_over_exact_oracle").reset_index())


def _fixed_point_table(options: pd.DataFrame) -> pd.DataFrame:
    """KL estimator × placement at the final step: distance to Gibbs and to the documented fixed point."""
    final = options[options["step"] == options.groupby(["scenario", "eta", "variant"])["step"].transform("max")]
    return (final.groupby(["variant", "eta"])
            .agg(kl_to_gibbs=("kl_to_target", "mean"), kl_fixed_point_to_policy=("kl_fixed_point_to_policy", "mean"),
                 kl_to_ref=("kl_to_ref", "mean"))
            .reset_index())


def _own_target_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Offline direct alignment at the largest budget: KL to Gibbs and to each loss's own population
    optimum (DPO: Gibbs; IPO: the Gibbs policy of the win rate against π0; cDPO: none in closed form)."""
    at_max = _at_largest_budget(frame[frame["method"] == "dpo_offline"])
    if at_max.empty or "kl_fixed_point_to_policy" not in at_max:
        return pd.DataFrame()
    return (at_max.groupby(["variant", "eta"])
            .agg(samples=("samples", "max"), kl_to_gibbs=("kl_to_target", "mean"),
                 kl_own_target_to_policy=("kl_fixed_point_to_policy", "mean"))
            .reset_index())


def _bon_once(best_bon: pd.DataFrame) -> pd.DataFrame:
    """Best-of-N's rows at one η: the best-of-N policy, its KL, gold reward and the Gibbs frontier at
    the same KL do not depend on η (only its distance to π* = O(r, η, π0) does)."""
    return best_bon[best_bon["eta"] == best_bon["eta"].min()]


def _bon_table(best_bon: pd.DataFrame) -> pd.DataFrame:
    """Best-of-N per N: KL, gold reward, the Gibbs frontier's gold reward at the same KL (η-free), and
    its KL to the Gibbs policy of each η."""
    once = _bon_once(best_bon)
    table = (once.groupby("samples")
             .agg(kl_to_ref=("kl_to_ref", "mean"), gold=("gold_reward", "mean"),
                  gibbs_gold_same_kl=("gibbs_gold_at_same_kl", "mean"))
             .reset_index().rename(columns={"samples": "N"}))
    per_eta = best_bon.pivot_table(index="samples", columns="eta", values="kl_to_target", aggfunc="mean")
    for eta in per_eta.columns:
        table[f"kl_to_gibbs (η = {eta:g})"] = per_eta[eta].reindex(table["N"]).to_numpy()
    table["kl_bound log N − (N−1)/N"] = np.log(table["N"]) - (table["N"] - 1) / table["N"]
    return table[table["N"].isin([1, 2, 4, 16, 64, 256, 1024, 4096])]


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------

def _pg_figure(pg: pd.DataFrame) -> ReportFigure:
    from rlbandit import plots

    fig = plots.line_plot(pg, x="samples", y="kl_to_target", hue="variant", col="scenario", row="eta",
                          logx=True, logy=True, title="Policy gradient (sampled): distance to the Gibbs policy")
    return ReportFigure("pg_kl_vs_samples", fig, "E_x KL(π̂‖π*) against sampled actions for REINFORCE, "
                        "RLOO, PPO, GRPO and Dr. GRPO (tabular softmax; mean over seeds, 95 % CI).")


def _kl_options_figure(options: pd.DataFrame) -> ReportFigure:
    from rlbandit import plots

    fig = plots.line_plot(options[options["step"] > 0], x="step", y="kl_to_target", hue="variant", col="scenario",
                          row="eta", logy=True, title="KL estimator × placement, exact gradients")
    return ReportFigure("kl_options", fig, "Exact-gradient RLOO with each KL estimator and placement: "
                        "k1-in-reward and k2-in-loss converge to Gibbs; k3-in-loss to the forward-KL "
                        "policy; k1-in-loss to the unregularised greedy policy; and the GRPO ablation's four "
                        "cells (std-normalised or mean-centred group advantages × k3 in the loss or k1 in the "
                        "reward) — the std with k3 in the loss reaches the forward-KL policy at temperature ησ_π, "
                        "the std with k1 in the reward keeps Gibbs (geometric mean over seeds, 95 % band in log "
                        "space).")


def _preference_figure(pref: pd.DataFrame) -> ReportFigure:
    from rlbandit import plots

    fig = plots.line_plot(pref, x="samples", y="kl_to_target", hue="variant", col="scenario", row="eta",
                          logx=True, logy=True, reference_slopes=(-1.0,), slope_labels=("∝ 1/n",),
                          title="Direct alignment: distance to Gibbs against comparisons")
    return ReportFigure("dpo_kl_vs_comparisons", fig, "E_x KL(π̂‖π*) against the number of comparisons: "
                        "offline DPO (log-linear = Gibbs of the BT MLE; tabular), IPO, cDPO, online "
                        "DPO and XPO.")


def _sampling_figure(sampling: pd.DataFrame) -> ReportFigure:
    from rlbandit import plots

    fig = plots.line_plot(sampling, x="samples", y="kl_to_target", hue="variant", col="scenario", row="eta",
                          logx=True, logy=True, title="Sampling oracles: distance to Gibbs")
    return ReportFigure("sampling_kl_vs_samples", fig, "Best-of-N (exact, samples = N per prompt) and "
                        "rejection-sampling fine-tuning (samples = N × prompts): KL to the Gibbs policy "
                        "is U-shaped in N — best-of-N matches Gibbs's KL budget only at one N.")


def _bon_gap_figure(best_bon: pd.DataFrame) -> ReportFigure:
    from rlbandit import plots

    fr = best_bon.assign(gain_gap=best_bon["gibbs_gold_at_same_kl"] - best_bon["gold_reward"])
    fig = plots.line_plot(fr, x="samples", y="gain_gap", col="scenario", hue="eta", logx=True,
                          ylabel="Gibbs − best-of-N gold reward at equal KL", xlabel="N",
                          title="Best-of-N never beats the Gibbs frontier")
    return ReportFigure("bon_frontier_gap", fig, "Gold reward of the Gibbs policy with the same "
                        "KL(·‖π0) minus best-of-N's (≥ 0 everywhere).")


def _figures(frame: pd.DataFrame) -> list[ReportFigure]:
    """One figure per family that ran (and best-of-N against the frontier)."""
    figures = []
    pg = frame[frame["method"].isin(PG_METHODS) & (frame["samples"] > 0)]
    options = frame[frame["method"] == "kl_options"]
    pref = frame[frame["method"].isin(["dpo_offline", "dpo_online", "xpo"])]
    sampling = frame[frame["method"].isin(["best_of_n", "rejection_sampling"])]
    best_bon = frame[frame["method"] == "best_of_n"]
    figures += [_pg_figure(pg)] if not pg.empty else []
    figures += [_kl_options_figure(options)] if not options.empty else []
    figures += [_preference_figure(pref)] if not pref.empty else []
    figures += [_sampling_figure(sampling)] if not sampling.empty else []
    figures += [_bon_gap_figure(best_bon)] if not sampling.empty and not best_bon.empty else []
    return figures


# ---------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------

def _closest_lines(headline: pd.DataFrame, etas) -> list[str]:
    lines = []
    for eta in etas:
        h = headline[headline["eta"] == eta]
        if h.empty:
            continue
        best, worst = h.iloc[0], h.iloc[-1]
        lines.append(f"- η = {eta:g}: closest to the exact oracle is **{best['variant']}** (E_x KL(π̂‖π*) = "
                     f"{best['kl_to_gibbs']:.3g} with {int(best['samples'])} samples/comparisons); farthest is "
                     f"{worst['variant']} ({worst['kl_to_gibbs']:.3g}).")
    return lines


def _fixed_point_lines(fixed_table: pd.DataFrame) -> list[str]:
    return [f"- KL option **{row['variant']}** (η = {row['eta']:g}, exact gradients): E_x KL(π̂‖π*) = "
            f"{row['kl_to_gibbs']:.3g}; KL(documented fixed point ‖ π̂) = {row['kl_fixed_point_to_policy']:.3g}."
            for _, row in fixed_table.iterrows()]


def _bon_line(best_bon: pd.DataFrame) -> str:
    once = _bon_once(best_bon)
    gap = once["gibbs_gold_at_same_kl"] - once["gold_reward"]
    return (f"- Best-of-N never beats Gibbs at equal KL: the gold-reward gap is ≥ {gap.min():.2g} over "
            f"{len(gap)} (scenario × seed × N) cells, each counted once (best-of-N does not depend on η; max "
            f"{gap.max():.3g}).")


def _cost_line(cost: pd.DataFrame, n_problems: int) -> str:
    fastest, slowest = cost.iloc[0], cost.iloc[-1]
    return (f"- Cost against the exact oracle (one closed-form Gibbs call, timed in the same run; median "
            f"over runs): from {fastest['wall_over_exact_oracle']:.3g}× ({fastest['method']}) to "
            f"{slowest['wall_over_exact_oracle']:.3g}× ({slowest['method']}) — the exact oracle takes "
            f"{cost['exact_oracle_us'].median():.3g} µs for {n_problems} problems.")


def _own_target_lines(own: pd.DataFrame) -> list[str]:
    """IPO against Gibbs and against its own optimum (a check of the target, not a finding about IPO)."""
    ipo = own[own["variant"].str.startswith("IPO")] if not own.empty else own
    return [f"- {row['variant']} (η = {row['eta']:g}) is {row['kl_to_gibbs']:.3g} nats from Gibbs but "
            f"{row['kl_own_target_to_policy']:.3g} from its own optimum, the Gibbs policy of the win rate against "
            f"π0: its distance to Gibbs is the loss's target, as expected, not an optimisation failure."
            for _, row in ipo.iterrows()]


def _summary(frame: pd.DataFrame, headline, fixed_table, cost) -> str:
    scenarios = [s for s in SCENARIOS if s in set(frame["scenario"])]
    etas = sorted(frame["eta"].unique())
    best_bon = frame[frame["method"] == "best_of_n"]
    lines = _closest_lines(headline, etas)
    lines += _fixed_point_lines(fixed_table) if not fixed_table.empty else []
    lines += [_bon_line(best_bon)] if not best_bon.empty else []
    lines += _own_target_lines(_own_target_table(frame))
    lines += [_cost_line(cost, frame["seed"].nunique())] if not cost.empty else []
    return (f"Every approximate oracle against the exact Gibbs policy on {len(scenarios)} scenarios × η ∈ "
            f"{{{', '.join(f'{e:g}' for e in etas)}}}, {frame['seed'].nunique()} seeds. Since "
            f"J(π*) − J(π̂) = η E_x KL(π̂‖π*), SubOpt is η × the KL column for every method trained on the true "
            f"reward or preferences from it.\n\n" + "\n".join(lines) + "\n")


_NOTES = ("- Policy gradient: tabular softmax from π0, Adam (lr 0.1, lr_t = lr/(1 + 0.02 t)), 16 prompts × 4 actions "
          "per step, PPO/GRPO: 2 epochs × 2 minibatches, clip 0.2, PPO with a tabular value baseline; KL as k1 "
          "in the reward, except GRPO (k3 in the loss, its paper's choice). With std-normalised advantages the "
          "KL term acts at temperature ησ_π(x), so GRPO's fixed point is the forward-KL policy at ησ_π "
          "(`rlbandit.policy_gradient.grpo_fixed_point(kl_estimator=\"k3\")`), neither Gibbs nor the forward-KL "
          "policy at η (Dr. GRPO's, without the std); its KL to Gibbs plateaus. The exact-gradient 2 × 2 ablation "
          "(std division × KL placement) scores each cell against its own fixed point.\n"
          "- DPO variants are fitted to convergence (L-BFGS) with ridge λ = 1 on the implicit-reward parameter; "
          "the log-linear DPO policy is exactly O(φθ̂, η, π0) with θ̂ the ridge BT MLE (tests/test_dpo.py).\n"
          "- Online DPO / XPO: m = max(8, budget/32) pairs per round, warm-started refits; XPO α = 0.01.\n"
          "- Best-of-N is the exact distribution (no sampling error); its 'samples' are the N draws per prompt.\n"
          "- Rejection sampling fine-tuning: 16 prompts per context, top-per-prompt selection, tabular MLE with one "
          "pseudo-count of π0 per context.\n"
          "- Speed ratios divide a run's wall time by one exact Gibbs call timed in the same process; the machine "
          "is shared, so only ratios are meaningful.")


def report(frame: pd.DataFrame) -> ReportContent:
    """The ``oracles`` study's report: distance to Gibbs per variant, KL options, best-of-N, budgets
    to a tolerance and cost."""
    headline, reach, cost = _headline_table(frame), _reach_table(frame), _cost_table(frame)
    options, best_bon = frame[frame["method"] == "kl_options"], frame[frame["method"] == "best_of_n"]
    fixed_table = _fixed_point_table(options) if not options.empty else pd.DataFrame()
    bon_table = _bon_table(best_bon) if not best_bon.empty else pd.DataFrame()
    tables = [("Distance to Gibbs at the largest budget (sampling oracles: at their best N); mean over scenarios "
               "and seeds", headline.round(5))]
    if not fixed_table.empty:
        tables.append(("KL estimator × placement (exact gradients, final step)", fixed_table))
    own_table = _own_target_table(frame)
    if not own_table.empty:
        tables.append(("Offline direct alignment: distance to Gibbs and to each loss's own optimum (IPO's is the "
                       "Gibbs policy of the win rate against π0; cDPO has none in closed form)", own_table.round(5)))
    if not bon_table.empty:
        tables.append(("Best-of-N: KL, gold reward and the Gibbs frontier at the same KL", bon_table.round(4)))
    tables.append(("Samples (or comparisons) until the seed-mean KL to Gibbs falls below a tolerance", reach.round(4)))
    tables.append(("Cost per run and speed ratio to the exact oracle (median over runs)", cost.round(3)))
    return ReportContent(summary=_summary(frame, headline, fixed_table, cost), tables=tuple(tables),
                         figures=tuple(_figures(frame)), notes=_NOTES)
