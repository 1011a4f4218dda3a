"""The ``llm`` study's report (:mod:`benchmarks.llm`): its tables, figures, findings and notes, each
read from the stored rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.llm_sweep import METHODS, PG_EPOCHS, PG_RECIPES, RS_ROUNDS, rs_sft_steps
from rlbandit.study import ReportContent, ReportFigure

#: one colour per method in every figure (colour-blind palette order).
COLORS = {"reference": "#000000", "dpo": "#0173b2", "ppo": "#de8f05", "rloo": "#029e73", "grpo": "#d55e00",
          "dr_grpo": "#cc78bc", "best_of_n": "#ca9161", "rs_ft": "#56b4e9", "gibbs_gold": "#555555",
          "gibbs_rm": "#949494"}
#: a bridge run counts as converged when KL(π̂ ‖ its fixed point) is within this share of KL(π0 ‖ π*)
#: and below BRIDGE_CONVERGED_NATS.
BRIDGE_CONVERGED = 0.05
BRIDGE_CONVERGED_NATS = 0.2
_POLICY_METHODS = ("dpo", *PG_RECIPES, "rs_ft")


def _se(values) -> float:
    values = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


def _final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The last held-out checkpoint of every LM policy run (DPO, PG, RS-FT) and π0's row."""
    lm = frame[(frame["world"] == "lm") & frame["method"].isin(("reference",) + _POLICY_METHODS)]
    last = lm.groupby("run_id")["step"].transform("max")
    return lm[lm["step"] == last]


def final_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Held-out results per method × η at the last checkpoint, averaged over the seeds run.

    Gains are paired: each run minus π0 of its own seed (same world, same held-out prompts), so
    ``gold_gain`` compares every cell with the π0 it started from. ``*_se``: standard error across
    seeds (NaN with one seed); ``*_sample_se``: the held-out estimate's own sampling standard error
    (for a gain, policy and π0 combined), averaged over seeds.
    """
    final = _with_gains(frame, _final_rows(frame))
    ref = final[final["method"] == "reference"].set_index("seed")
    rows = []
    for (method, eta), g in final.groupby(["method", "eta"], sort=False):
        gold_gain = g["gold_gain"].to_numpy()
        base_var = 0.0 if method == "reference" else ref.reindex(g["seed"])["gold_reward_se"].to_numpy() ** 2
        gain_sample_se = np.sqrt(g["gold_reward_se"].to_numpy() ** 2 + base_var)
        rows.append({"method": method, "eta": eta, "seeds": g["seed"].nunique(),
                     "gold_reward": g["gold_reward"].mean(), "gold_sample_se": g["gold_reward_se"].mean(),
                     "gold_gain": float(np.mean(gold_gain)), "gold_gain_se": _se(gold_gain),
                     "gold_gain_sample_se": float(np.mean(gain_sample_se)),
                     "proxy_reward": g["proxy_reward"].mean(), "proxy_gain": g["proxy_gain"].mean(),
                     "kl_to_ref": g["kl_to_ref"].mean(), "kl_se": _se(g["kl_to_ref"]),
                     "kl_sample_se": g["kl_to_ref_se"].mean(), "win_rate": g["win_rate"].mean(),
                     "length": g["length"].mean(), "finished": g["finished"].mean()})
    table = pd.DataFrame(rows)
    order = {m: i for i, m in enumerate(METHODS)}
    return table.sort_values(["method", "eta"], key=lambda c: c.map(order) if c.name == "method" else c) \
        .reset_index(drop=True)


def budget_table(frame: pd.DataFrame) -> pd.DataFrame:
    """What each method consumed per run, in stated units: BT comparisons (the shared data), reward-
    model queries, policy samples drawn while training, optimiser steps, trainable weights, wall time."""
    rows = []
    for method, g in frame[frame["world"] == "lm"].groupby("method", sort=False):
        c = g.iloc[0]
        n = int(c["n_comparisons"])
        if method == "reference":
            continue
        if method == "dpo":
            spent = dict(rm_queries=0, train_samples=0, optimiser_steps=int(c["dpo_steps"]))
        elif method in PG_RECIPES:
            q = int(c["pg_steps"] * c["prompts_per_step"] * c["samples_per_prompt"])
            epochs = 1 if PG_RECIPES[method]["algorithm"] == "rloo" else PG_EPOCHS
            spent = dict(rm_queries=q, train_samples=q, optimiser_steps=int(c["pg_steps"]) * epochs)
        elif method == "rs_ft":
            q = int(g["rm_queries"].max())
            spent = dict(rm_queries=q, train_samples=q, optimiser_steps=RS_ROUNDS * rs_sft_steps(int(c["dpo_steps"])))
        elif method == "best_of_n":
            spent = dict(rm_queries=f"N × {int(c['eval_prompts'] * c['eval_samples'])} (at inference)",
                         train_samples=0, optimiser_steps=0)
        elif method == "reward_model":
            spent = dict(rm_queries=0, train_samples=0, optimiser_steps=int(c["dpo_steps"]))
        else:
            continue
        trainable = g["trainable_parameters"].dropna()
        rows.append({"method": method, "comparisons": n,
                     "comparisons_used_via": "directly" if method in ("dpo", "reward_model") else "reward model",
                     **spent, "trainable_parameters": int(trainable.iloc[0]) if len(trainable) else np.nan,
                     "run_seconds": g.groupby("run_id")["run_seconds"].first().mean()})
    return pd.DataFrame(rows)


def _means(*columns) -> dict:
    """Named aggregations: the mean of each column, under its own name."""
    return {c: (c, "mean") for c in columns}


def _per_group(rows: pd.DataFrame, by, *, sort: bool = True, **columns) -> pd.DataFrame:
    """One row per group of ``by``: the named aggregations ``columns`` and the number of seeds run
    (an empty frame without rows)."""
    if rows.empty:
        return pd.DataFrame()
    return rows.groupby(by, sort=sort).agg(**columns, seeds=("seed", "nunique")).reset_index()


def reward_model_table(frame: pd.DataFrame) -> pd.DataFrame:
    return _per_group(frame[frame["method"] == "reward_model"], "reward_model", sort=False,
                      **_means("heldout_accuracy"), heldout_se=("heldout_accuracy", _se),
                      **_means("train_label_accuracy"), heldout_pairs=("heldout_pairs", "first"),
                      comparisons=("comparisons", "first"))


def _with_gains(frame: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with gold_gain / proxy_gain: minus π0's held-out gold / proxy of the same seed (each seed
    has its own comparisons, so its own reward model: proxies are comparable only within a seed)."""
    ref = frame[(frame["world"] == "lm") & (frame["method"] == "reference")].groupby("seed")[
        ["gold_reward", "proxy_reward"]].mean()
    base = ref.reindex(rows["seed"])
    return rows.assign(gold_gain=rows["gold_reward"].to_numpy() - base["gold_reward"].to_numpy(),
                       proxy_gain=rows["proxy_reward"].to_numpy() - base["proxy_reward"].to_numpy())


def best_of_n_table(frame: pd.DataFrame) -> pd.DataFrame:
    bon = frame[frame["method"] == "best_of_n"]
    return _per_group(bon if bon.empty else _with_gains(frame, bon), "n", **_means("gold_reward"),
                      gold_se=("gold_reward", _se), **_means("gold_gain", "proxy_gain", "proxy_reward"),
                      kl_bound=("kl_to_ref", "first"), **_means("win_rate", "length", "finished"))


def bandit_table(frame: pd.DataFrame) -> pd.DataFrame:
    return _per_group(frame[frame["world"] == "bandit"], ["policy", "eta"], **_means("gold_reward"),
                      gold_se=("gold_reward", _se), **_means("proxy_reward", "kl_to_ref"),
                      pool_size=("pool_size", "first"))


def bridge_table(frame: pd.DataFrame) -> pd.DataFrame:
    b = frame[frame["world"] == "seq_bridge"]
    cols = [c for c in ("kl_ref_to_optimal", "kl_to_optimal", "kl_ratio", "target", "kl_to_target",
                        "kl_target_to_optimal", "kl_to_ref", "sampled_kl_k1", "sampled_kl_k1_se", "steps", "seconds")
            if c in b]
    numeric = [c for c in cols if pd.api.types.is_numeric_dtype(b[c])]
    table = _per_group(b, ["bridge_method", "eta"], sort=False, **_means(*numeric),
                       **{c: (c, "first") for c in cols if c not in numeric})
    if {"kl_to_target", "kl_ref_to_optimal"} <= set(table):
        done = (table["kl_to_target"] <= BRIDGE_CONVERGED * table["kl_ref_to_optimal"]) \
            & (table["kl_to_target"] <= BRIDGE_CONVERGED_NATS)
        table["converged"] = np.where(done, "yes", "no (step cap)")
    return table


def _pareto_points(ax, sub: pd.DataFrame, method: str) -> None:
    """One method's final cells at (√KL, gold gain), annotated with η. Error bars: the SE across seeds
    where there are several (filled markers), else the run's own sampling SE (hollow); SE of √KL by
    the delta method, se(KL) / (2 √KL)."""
    x = np.sqrt(sub["kl_to_ref"].clip(lower=0)).to_numpy()
    several = (sub["seeds"] > 1).to_numpy()
    gold_se = np.where(several, sub["gold_gain_se"], sub["gold_sample_se"])
    kl_se = np.where(several, sub["kl_se"], sub["kl_sample_se"])
    xerr = np.nan_to_num(kl_se / (2 * np.maximum(x, 1e-9)))
    gold = sub["gold_gain"].to_numpy()
    for mask, face in ((several, COLORS[method]), (~several, "white")):
        if mask.any():
            ax.errorbar(x[mask], gold[mask], xerr=xerr[mask], yerr=np.nan_to_num(gold_se[mask]), fmt="o",
                        color=COLORS[method], mfc=face, capsize=3, ms=5,
                        label=method if (face != "white" or not several.any()) else None)
    for _, r in sub.iterrows():
        ax.annotate(f"η={r['eta']:g}", (np.sqrt(max(r["kl_to_ref"], 0)), r["gold_gain"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points", color=COLORS[method])


def _pareto_figure(frame: pd.DataFrame, final: pd.DataFrame):
    from rlbandit import plots

    fig, axes = plots.new_figure(1, panel_size=(6.0, 4.3))
    ax = axes[0]
    for method in _POLICY_METHODS + ("reference",):
        sub = final[final["method"] == method]
        if sub.empty:
            continue
        if method == "reference":  # the origin: π0 itself
            ax.plot([0.0], [0.0], "o", color=COLORS[method], label="π0 (reference)", ms=5)
        else:
            _pareto_points(ax, sub, method)
    bon = best_of_n_table(frame)
    if not bon.empty:
        ax.plot(np.sqrt(bon["kl_bound"]), bon["gold_gain"], ls="--", marker="s", ms=4, color=COLORS["best_of_n"],
                label="best_of_n (x: √ of the KL bound)")
    ax.set_xlabel(r"$\sqrt{\mathrm{KL}(\pi\|\pi_0)}$ (sequence level, held-out samples)")
    ax.axhline(0.0, color="0.6", lw=0.8, zorder=0)
    ax.set_ylabel("held-out gold gain over π0 (same seed)")
    ax.set_title("Reward–KL frontier on held-out prompts")
    ax.legend(fontsize=7, loc="best")
    return fig


def _overopt_figure(frame: pd.DataFrame):
    """Gold and proxy gains over π0 (same seed) along training, against √KL, per method; η by line style."""
    from rlbandit import plots

    runs = frame[(frame["world"] == "lm") & frame["method"].isin(tuple(PG_RECIPES) + ("dpo",))]
    runs = _with_gains(frame, runs)
    fig, axes = plots.new_figure(2, ncols=2, panel_size=(4.6, 3.6))
    styles = dict(zip(sorted(runs["eta"].unique()), ("-", "--", ":", "-.")))
    for ax, column, name in zip(axes, ("gold_gain", "proxy_gain"), ("gold", "proxy (learned reward model)")):
        for (method, eta), g in runs.groupby(["method", "eta"], sort=False):
            means = g.groupby("step")[["kl_to_ref", column]].mean().sort_index()
            path = pd.concat([pd.DataFrame({"kl_to_ref": [0.0], column: [0.0]}), means], ignore_index=True)
            ax.plot(np.sqrt(path["kl_to_ref"].clip(lower=0)), path[column], marker="o", ms=3,
                    color=COLORS[method], ls=styles[eta], label=f"{method} η={eta:g}")
        ax.axhline(0.0, color="0.6", lw=0.8, zorder=0)
        ax.set_xlabel(r"$\sqrt{\mathrm{KL}(\pi\|\pi_0)}$")
        ax.set_ylabel(f"held-out {name} gain over π0")
    axes[0].set_title("Gold reward along training")
    axes[1].set_title("Proxy reward along training")
    axes[1].legend(fontsize=6, loc="best", ncol=2)
    return fig


def _figures(frame: pd.DataFrame, final: pd.DataFrame) -> tuple:
    """The reward–KL frontier and the over-optimisation curves (none without LM policy runs)."""
    if final.empty:
        return ()
    per_eta = frame[frame["eta"] > 0].groupby("eta")["seed"].nunique()
    seeds_text = ", ".join(f"{n} at η = {e:g}" for e, n in per_eta.items())
    return (ReportFigure("pareto", _pareto_figure(frame, final),
                         "Held-out gold gain over π0 of the same seed against √KL(π‖π0) at the last checkpoint, per "
                         "method and KL coefficient. Filled markers: means over seeds, error bars ± one standard error "
                         "across seeds (of the gain over π0); hollow markers: one seed, error bars ± the run's own "
                         "sampling standard error. Best-of-N's x is the square root of its analytic KL bound, not an "
                         "estimate. Every trained run is budget-capped, not converged (notes)."),
            ReportFigure("overoptimization", _overopt_figure(frame),
                         "Gold (left) and proxy (right) reward gains over π0 of the same seed on held-out prompts "
                         "along training, against √KL(π‖π0), from π0 (0, 0) through each checkpoint; means over the "
                         f"seeds run ({seeds_text}), line style = η. Each seed has its own reward model, so proxies "
                         "compare only within a seed."))


def report(frame: pd.DataFrame) -> ReportContent:
    frame = frame.copy()
    final = final_table(frame)
    rms, bon, bandit, bridge = (reward_model_table(frame), best_of_n_table(frame), bandit_table(frame),
                                bridge_table(frame))
    tables = [
        ("Held-out results at the last checkpoint (means over the seeds run; gains paired with π0 of the same seed; "
         "*_se across seeds, blank with one seed; *_sample_se the held-out estimate's own sampling SE)",
         final.round(3)),
        ("Budgets per run, in stated units (every method sees the same BT comparisons)", budget_table(frame)),
        ("Reward models from the same comparisons: held-out pairwise accuracy against the gold preference (π0's two "
         "responses to each evaluation prompt)", rms.round(3)),
        ("Best-of-N by the learned reward model on held-out prompts (KL: the analytic bound log N − (N−1)/N, not an "
         "estimate)", bon.round(3)),
        ("The exact bandit on the comparison pool (π0 uniform over each training prompt's responses): the optimum "
         "O(r*, η, π0) and the plug-in O(φθ̂, η, π0)", bandit.round(4)),
        ("Sequence-level bridge: distance of each LM trainer's policy to the exact sequence-level Gibbs policy π* "
         "(and to its own fixed point where that differs)", bridge),
    ]
    return ReportContent(summary=_summary(frame, final, rms, bon, bandit, bridge),
                         tables=tuple((caption, table) for caption, table in tables if not table.empty),
                         figures=_figures(frame, final), notes=_notes(frame))


def _summary(frame, final, rms, bon, bandit, bridge) -> str:
    """Findings in plain words, each number read from a table of this report."""
    if final.empty:
        return "No LM runs stored."
    lines = [_setup_line(frame), *_policy_lines(final)]
    if not rms.empty:
        lines.append(_reward_model_line(rms))
    if not bon.empty:
        lines.append(_best_of_n_line(bon, final))
    lines += _bandit_lines(bandit) + _bridge_lines(bridge)
    return "\n".join(lines)


def _setup_line(frame: pd.DataFrame) -> str:
    """The model, what trains, the prompts, comparisons and seeds."""
    c = frame.iloc[0]
    training = {"top": "its top two decoder layers trained", "lora": "LoRA adapters (r = 16) trained",
                "full": "every weight trained"}[c["adaptation"]]
    seeds = frame.groupby("eta")["seed"].nunique()
    return (f"Model: **{c['model']}** ({training}), {int(c['train_prompts'])} training prompts, "
            f"{int(c['eval_prompts'])} held-out prompts of unseen topics × {int(c['eval_samples'])} responses, "
            f"{int(c['n_comparisons'])} BT comparisons per seed for every method, responses of at most "
            f"{int(c['max_new_tokens'])} tokens; seeds per η: "
            + ", ".join(f"{e:g}: {n}" for e, n in seeds.items() if e > 0)
            + f" (methods without η: {int(seeds.get(0.0, 0))}).")


def _cell_name(r) -> str:
    return r["method"] + (f" (η={r['eta']:g})" if r["eta"] > 0 else "")


def _policy_lines(final: pd.DataFrame) -> list[str]:
    """π0, the best gold gain, the gains and losses beyond noise, length and stopping, over-optimisation."""
    lines = []
    ref = final[final["method"] == "reference"]
    if len(ref):
        r = ref.iloc[0]
        lines.append(f"- π0's held-out gold reward is {r['gold_reward']:.3f} (sampling SE {r['gold_sample_se']:.3f}, "
                     f"mean over {int(r['seeds'])} seeds); its responses average {r['length']:.1f} tokens and "
                     f"{r['finished']:.0%} end with EOS.")
    trained = final[final["method"] != "reference"]
    if not len(trained):
        return lines
    best = trained.loc[trained["gold_gain"].idxmax()]
    spread = f", SE across seeds {best['gold_gain_se']:.3f}" if best["seeds"] > 1 else ", one seed"
    lines.append(f"- Largest mean held-out gold gain over π0 of the same seed: {_cell_name(best)}, "
                 f"{best['gold_gain']:+.3f} (sampling SE {best['gold_gain_sample_se']:.3f}{spread}) at KL "
                 f"{best['kl_to_ref']:.2f} nats, win rate against π0 {best['win_rate']:.2f}. Held-out proxy gains "
                 f"range from {trained['proxy_gain'].min():+.3f} to {trained['proxy_gain'].max():+.3f}.")
    # a gain counts when it exceeds twice the larger of its two standard errors
    noise = 2 * np.fmax(trained["gold_gain_se"].fillna(0).to_numpy(), trained["gold_gain_sample_se"].to_numpy())
    cells = list(zip(trained.iterrows(), trained["gold_gain"].to_numpy(), noise))
    above = [f"{_cell_name(r)} {r['gold_gain']:+.2f}" for (_, r), g, n in cells if g > n]
    below = [f"{_cell_name(r)} {r['gold_gain']:+.2f}" for (_, r), g, n in cells if g < -n]
    lines.append(f"- Gold gains beyond two standard errors (the larger of the across-seed and the sampling SE): "
                 f"{', '.join(above) if above else 'none'}; losses beyond two: "
                 f"{', '.join(below) if below else 'none'}; the other {len(trained) - len(above) - len(below)} of "
                 f"{len(trained)} method × η cells are within noise of π0 at this budget.")
    lines.append(f"- Length and stopping: mean response length {trained['length'].min():.1f}–"
                 f"{trained['length'].max():.1f} tokens across cells (π0: "
                 f"{float(ref['length'].iloc[0]) if len(ref) else float('nan'):.1f}); EOS share "
                 f"{trained['finished'].min():.0%}–{trained['finished'].max():.0%} (π0: "
                 f"{float(ref['finished'].iloc[0]) if len(ref) else float('nan'):.0%}).")
    pg = trained[trained["method"].isin(tuple(PG_RECIPES))]
    if len(pg):
        lines.append(f"- Over-optimisation at this budget: the policy-gradient cells moved the held-out proxy by "
                     f"{pg['proxy_gain'].mean():+.3f} on average (in its own units) and the gold by "
                     f"{pg['gold_gain'].mean():+.3f}: with the proxy barely optimised there is little to "
                     "over-optimise; the figure follows both along training.")
    return lines


def _reward_model_line(rms: pd.DataFrame) -> str:
    parts = [f"{r['reward_model']} {r['heldout_accuracy']:.2f}" for _, r in rms.iterrows()]
    return (f"- Reward models from the same {int(rms['comparisons'].iloc[0])} comparisons, held-out pairwise "
            f"accuracy against the gold preference: {', '.join(parts)} "
            f"({int(rms['heldout_pairs'].iloc[0])} held-out pairs per seed). The φ-head's lead is built "
            "into the scenario — the gold reward is linear in φ, so that model is well specified — and is "
            "a check, not a finding about reward models.")


def _best_of_n_line(bon: pd.DataFrame, final: pd.DataFrame) -> str:
    top = bon.iloc[-1]
    trained = final[final["method"] != "reference"]
    beats = trained[trained["gold_reward"] >= top["gold_reward"]]
    return (f"- Best-of-{int(top['n'])} by the learned reward: held-out gold {top['gold_reward']:.3f} "
            f"(best-of-1 {bon['gold_reward'].iloc[0]:.3f}; proxy {bon['proxy_reward'].iloc[0]:.3f} → "
            f"{top['proxy_reward']:.3f}) within the KL bound {top['kl_bound']:.2f}; "
            + ("no trained policy reaches it at this budget." if beats.empty else
               f"trained policies at or above it: {', '.join(beats['method'])}."))


def _bandit_lines(bandit: pd.DataFrame) -> list[str]:
    if bandit.empty:
        return []
    lines = []
    for eta, g in bandit.groupby("eta"):
        opt = g[g["policy"] == "gibbs_gold"].iloc[0]
        plug = g[g["policy"] == "gibbs_rm"].iloc[0]
        lines.append(f"- Exact bandit on the pool (η = {eta:g}): the optimum reaches gold {opt['gold_reward']:.3f} "
                     f"at KL {opt['kl_to_ref']:.3f}; the plug-in policy of the learned reward "
                     f"{plug['gold_reward']:.3f} at KL {plug['kl_to_ref']:.3f}.")
    return lines


def _bridge_lines(bridge: pd.DataFrame) -> list[str]:
    if bridge.empty or "kl_to_optimal" not in bridge:
        return []
    lines = []
    for eta, g in bridge.groupby("eta"):
        parts = [f"{r['bridge_method']} {r['kl_to_optimal']:.1e}"
                 + ("" if r["target"] == "gibbs" else f" (to its own fixed point, {r['target']}: "
                                                     f"{r['kl_to_target']:.1e})")
                 + ("" if r.get("converged", "yes") == "yes" else " [not converged]") for _, r in g.iterrows()]
        lines.append(f"- Sequence-level bridge at η = {eta:g}, KL(π̂‖π*) at the end (from KL(π0‖π*) = "
                     f"{g['kl_ref_to_optimal'].iloc[0]:.2f}): {'; '.join(parts)}.")
    return lines


def _notes(frame: pd.DataFrame) -> str:
    devices = sorted(set(frame["device"].dropna())) if "device" in frame else []
    if any(d != "cpu" for d in devices):
        gpu_line = f"- Ran on: {', '.join(devices)} (bf16 on the GPU)."
    else:
        gpu_line = ("- Ran on the CPU only. The GPU scale (`bash benchmarks/llm_gpu.sh`: the `llm_gpu` study, full "
                    "fine-tuning, 512 comparisons, 3 seeds, reports in `reports/llm_gpu/`) has not yet run on a GPU.")
    c = frame.iloc[0]
    capped = (f"- **Every LM run is budget-capped, not converged**: {int(c['pg_steps'])} policy-gradient rollouts of "
              f"{int(c['prompts_per_step'] * c['samples_per_prompt'])} responses, {int(c['dpo_steps'])} DPO steps of "
              f"{int(c['batch_size'])} pairs, two RS rounds. The tables compare methods at this budget, not their "
              "fixed points; the sequence-level bridge measures where each trainer converges.")
    return "\n".join([
        capped,
        "- Every LM number is estimated on held-out prompts whose topics no method trained on "
        "(`llm.prompts.split_prompts`, split by topic); the bandit and bridge worlds are exact.",
        "- The gold reward is linear in the MiniLM embedding of instruction + response, so the linear "
        "theory's reward model (BT head on φ) is well specified; the LM-head reward model is not linear in φ.",
        "- PPO here is trl's PPOTrainer recipe (zero-initialised value head on the policy trunk, per-token "
        "k1 KL in the reward, GAE, whitened advantages, clipped value loss); RLOO uses the leave-one-out "
        "baseline over the prompt's samples; GRPO / Dr. GRPO use trl's GRPOTrainer advantages and k3 in the "
        "loss (token mean per response for GRPO, a constant normaliser for Dr. GRPO). With k3 in the loss and "
        "std-normalised advantages GRPO's fixed point is not the Gibbs policy (see the bridge table).",
        "- Every method optimises the same learned reward as it is: no penalty for responses cut at the length "
        "cap (trl's `missing_eos_penalty` is off), so length and EOS share are outcomes, reported beside gold.",
        "- Best-of-N's KL is the analytic bound log N − (N−1)/N (Beirami et al. 2024); the others' KL is the "
        "sequence-level k1 estimate from the policy's own samples, with its standard error.",
        "- The exact bandit restricts each training prompt to the responses of its comparisons, so its "
        "numbers are not on the LM's KL scale; they show what the plug-in reward model is worth when the "
        "oracle is exact.",
        gpu_line,
        "- Speed against trl and Hugging Face generate: see [speed.md](speed.md) "
        "(`python -m benchmarks.speed_llm --out reports/llm/speed.md`).",
    ])
