"""Report of study ``conflict_llm`` (:mod:`benchmarks.conflict_llm`): tables first, every number of the
findings read from one of them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.conflict_llm import METHODS
from rlbandit.stats import t_interval
from rlbandit.study import ReportContent, ReportFigure

__all__ = ["report", "world_table", "fit_table", "regret_table", "front_table", "COLORS_BY_METHOD"]

#: one colour per method in every figure (registered with rlbandit.palette when the report renders)
COLORS_BY_METHOD = {"front": "#949494", "reference": "#ca9161", "conditioned": "#0173b2", "shared": "#de8f05",
                    "geometric soup": "#029e73", "token soup": "#56b4e9", "parameter soup": "#cc78bc",
                    "arithmetic soup": "#d55e00"}


def _ci(values) -> tuple[float, float]:
    """Mean over seeds and the half-width of its Student-t 95 % interval (``stats.t_interval``; NaN for one seed)."""
    mean, low, high = t_interval(values)
    return mean, (high - low) / 2


def _fmt(values) -> str:
    mean, half = _ci(values)
    return f"{mean:.3g} ± {half:.2g}"


def world_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per world seed: the objectives' angle and reward correlation, the brevity head against −length,
    and the π0 tie between plain and prefixed prompts (a check: 0)."""
    part = frame[frame["part"] == "world"].sort_values("seed")
    return pd.DataFrame({
        "seed": part["seed"].astype(int), "X": part["n_prompts"].astype(int), "N": part["n_responses"].astype(int),
        "∠(θ_pos, θ_brief) (°)": np.degrees(np.arccos(part["cos_theta"].to_numpy(float))),
        "corr(r_1, r_2)": part["corr_rewards"], "corr(r_2, −length)": part["corr_brevity_length"],
        "head transfer (min over held-out prompts)": part["transfer_min"],
        "max |Δ log π0| (prefix)": part["ref_tie"]}).reset_index(drop=True)


def fit_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per n × η × objective: KL(π̂_i‖π_i*) / KL(π0‖π_i*) of the per-objective DPO policy (mean ± CI over seeds)."""
    part = frame[frame["part"] == "fit"]
    rows = []
    for (n, eta, obj), g in part.groupby(["n", "eta", "objective"], sort=True):
        ratio = g["kl_to_target"] / g["kl_ref_to_target"]
        rows.append({"n": int(n), "eta": eta, "objective": "positivity" if obj == 1 else "brevity",
                     "KL(π̂_i‖π_i*)": _fmt(g["kl_to_target"]), "KL(π0‖π_i*)": _fmt(g["kl_ref_to_target"]),
                     "ratio": _fmt(ratio), "ratio (mean)": float(ratio.mean())})
    return pd.DataFrame(rows)


def _per_seed(frame: pd.DataFrame) -> pd.DataFrame:
    """users part → one row per seed × n × η × method with each user's regret and the worst-off one."""
    part = frame[frame["part"] == "users"]
    wide = part.pivot_table(index=["seed", "n", "eta", "method"], columns="user", values="regret").reset_index()
    users = [c for c in wide.columns if c not in ("seed", "n", "eta", "method")]
    wide["worst"] = wide[users].max(axis=1)
    return wide, users


def regret_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per n × η × method: each user's regret J_ν(π_ν*) − J_ν(π) and the worst-off user's (mean ± CI over seeds)."""
    wide, users = _per_seed(frame)
    rows = []
    for (n, eta, method), g in wide.groupby(["n", "eta", "method"], sort=True):
        row = {"n": int(n), "eta": eta, "method": method}
        for user in users:
            row[f"regret {user}"] = _fmt(g[user])
        row["worst-off"] = _fmt(g["worst"])
        row["worst-off (mean)"] = float(g["worst"].mean())
        rows.append(row)
    order = {m: i for i, m in enumerate(METHODS)}
    table = pd.DataFrame(rows)
    return table.sort_values(["n", "eta", "method"], key=lambda c: c.map(order) if c.name == "method" else c,
                             ignore_index=True)


def front_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per n × η × soup: the shortfall J_w(O(Σ w r)) − J_w(soup) over the interior weights 0 < t < 1."""
    part = frame[(frame["part"] == "front") & (frame["method"] != "front") & (frame["t"] > 0) & (frame["t"] < 1)]
    rows = []
    for (n, eta, method), g in part.groupby(["n", "eta", "method"], sort=True):
        per_seed = g.groupby("seed")["gap"].mean()
        rows.append({"n": int(n), "eta": eta, "method": method, "mean gap (interior w)": _fmt(per_seed),
                     "gap (mean)": float(per_seed.mean()),
                     "gap at t = ½": float(g.loc[np.isclose(g["t"], 0.5), "gap"].mean())})
    return pd.DataFrame(rows)


def _span(values, fmt: str) -> str:
    lo, hi = float(np.min(values)), float(np.max(values))
    return f"{lo:{fmt}}" if f"{lo:{fmt}}" == f"{hi:{fmt}}" else f"{lo:{fmt}}–{hi:{fmt}}"


def _matched(regret: pd.DataFrame) -> list[str]:
    """Label-matched lines: the soups at n (2n labels) against the conditioned and shared policies at 2n."""
    worst = regret.set_index(["n", "eta", "method"])["worst-off (mean)"]
    lines = []
    for (n, eta) in sorted({(n, e) for n, e, _ in worst.index}):
        if (2 * n, eta, "conditioned") in worst.index:
            lines.append(f"{2 * n} labels, η = {eta:g}: geometric soup (n = {n} per objective) "
                         f"{worst[(n, eta, 'geometric soup')]:.3g}, token soup {worst[(n, eta, 'token soup')]:.3g}, "
                         f"parameter soup {worst[(n, eta, 'parameter soup')]:.3g} against conditioned "
                         f"{worst[(2 * n, eta, 'conditioned')]:.3g} and shared {worst[(2 * n, eta, 'shared')]:.3g} "
                         f"(n = {2 * n})")
    return lines


def _paragraphs(regret: pd.DataFrame, front: pd.DataFrame, fit: pd.DataFrame, wide: pd.DataFrame,
                users: list) -> list[str]:
    out = []
    if not fit.empty:
        out.append(
            "**How well DPO fits each objective** (table *Per-objective DPO*): KL(π̂_i‖π_i*) / KL(π0‖π_i*) is "
            + ", ".join(f"{r['ratio (mean)']:.2f} ({r['objective']}, n = {r['n']})" for _, r in fit.iterrows())
            + ". Every soup and every user-aware policy below inherits this statistical and optimisation error; "
              "the regrets are exact values of the trained LMs, not estimates.")
    cells = regret.groupby(["n", "eta"], sort=True)
    lines = []
    for (n, eta), g in cells:
        g = g.set_index("method")
        cond, shared = g.loc["conditioned", "worst-off (mean)"], g.loc["shared", "worst-off (mean)"]
        seeds = wide[(wide["n"] == n) & (wide["eta"] == eta)].set_index(["seed", "method"])
        wins = {u: int((seeds.xs("conditioned", level="method")[u]
                        < seeds.xs("shared", level="method")[u]).sum()) for u in users}
        n_seeds = seeds.index.get_level_values("seed").nunique()
        ranking = g["worst-off (mean)"].drop("reference").sort_values()
        lines.append(f"n = {n}, η = {eta:g}: worst-off regret conditioned {cond:.3g} vs shared {shared:.3g} "
                     f"(conditioned below shared for " + ", ".join(f"{u} in {wins[u]}/{n_seeds}" for u in users)
                     + " seeds); all methods, ascending: " + " < ".join(f"{m} {v:.3g}" for m, v in ranking.items()))
    if lines:
        out.append("**Conditioned vs shared vs soups, per user type, at n comparisons per DPO policy** (table *Regret "
                   "per user type*; means over seeds):\n\n" + "\n".join(f"- {line}." for line in lines))
    matched = _matched(regret)
    if matched:
        out.append("**The same with the labels matched** (a soup needs two DPO policies, 2n labels; worst-off regret "
                   "read from the same table):\n\n" + "\n".join(f"- {line}." for line in matched))
    if not front.empty:
        lines = []
        for (n, eta), g in front.groupby(["n", "eta"], sort=True):
            g = g.set_index("method")["gap (mean)"].sort_values()
            lines.append(f"n = {n}, η = {eta:g}: " + " < ".join(f"{m} {v:.3g}" for m, v in g.items()))
        out.append("**Soups against the exact front** (table *Soups' shortfall*; mean J_w(O(Σ w r)) − J_w(soup) over "
                   "the interior weights, ascending):\n\n" + "\n".join(f"- {line}." for line in lines)
                   + "\n\nThe geometric soup of the *exact* per-objective optima lies on the front exactly "
                     "(DESIGN §6b, tests/test_llm_multiobjective.py) — a check; the shortfalls above are what "
                     "DPO's errors, token-level renormalisation, weight averaging or mixing add to it.")
    return out


def report(frame: pd.DataFrame) -> ReportContent:
    from rlbandit import plots
    from rlbandit.palette import register_color

    for method, color in COLORS_BY_METHOD.items():
        register_color(method, color)
    world, fit, regret, front = world_table(frame), fit_table(frame), regret_table(frame), front_table(frame)
    wide, users = _per_seed(frame)
    paragraphs = []
    if not world.empty:
        angle, corr = world["∠(θ_pos, θ_brief) (°)"], world["corr(r_1, r_2)"]
        paragraphs.append(
            f"**The two objectives** (table *World*; φ does not depend on the seed, which changes the LM, π0 and the "
            f"data): ∠(θ_pos, θ_brief) = {_span(angle, '.1f')}°, corr(r_1, r_2) over the responses = "
            f"{_span(corr, '.2f')}: nearly orthogonal, so the two user types' optima differ. The brevity head tracks "
            f"−length (corr {_span(world['corr(r_2, −length)'], '.2f')}; fitted on the other prompts, "
            f"{world['head transfer (min over held-out prompts)'].min():.2f} or more on each held-out prompt). The "
            f"prefix leaves π0 unchanged (max |Δ log π0| = {world['max |Δ log π0| (prefix)'].max():.1g}, a check).")
    paragraphs += _paragraphs(regret, front, fit, wide, users)
    figures = []
    part = frame[frame["part"] == "front"]
    if not part.empty:
        eta = sorted(part["eta"].unique())[0]
        figures.append(ReportFigure("front_and_soups", plots.path_plot(
            part[part["eta"] == eta], x="J_1", y="J_2", order="t", hue="method", col="n", band=False),
            f"Exact front (J_1, J_2) of O(t r_1 + (1 − t) r_2) and the soups of the two DPO policies at the same "
            f"weights, η = {eta:g}, seed means, one panel per n."))
    users_part = frame[(frame["part"] == "users") & (frame["method"] != "reference")]
    if not users_part.empty:
        figures.append(ReportFigure("regret_by_n", plots.line_plot(
            users_part, x="n", y="regret", hue="method", col="user", logy=True),
            "Each user type's exact regret J_ν(π_ν*) − J_ν(π) against the comparisons n per DPO policy "
            "(geometric mean over seeds, 95 % band in log space)."))
    tables = tuple((title, t) for title, t in (
        ("Regret per user type (J_ν(π_ν*) − J_ν(π), exact)", regret), ("Soups' shortfall from the exact front", front),
        ("Per-objective DPO: KL to its target", fit), ("World", world)) if not t.empty)
    notes = ("- World: the enumerable sequence-level bridge (`llm.seq_bridge`), a 1-layer Llama with hidden size 32 "
             "— not SmolLM2. Every value, KL and optimum is exact (all N responses enumerated); nothing is sampled "
             "except the comparisons and the DPO minibatches.\n"
             "- The sequence-level geometric soup normalises over all N responses: exact here, not available on a "
             "real LM, where only the token-level soup (renormalised at every step) can be decoded.\n"
             "- Budgets: every DPO policy gets n comparisons and the same steps, batch and lr; the soups combine two "
             "policies, so they use 2n labels in all against n for the conditioned and the shared policy (the "
             "label-matched lines above pair them). The steps are fixed (400 × 64 pairs): at the largest n each pair "
             "is seen about three times, so there the policies are limited by optimisation as much as by data; more "
             "steps were not measured.\n"
             "- The user prefix is a separate prompt token whose embedding starts as the plain prompt's (π0 tied "
             "exactly); on a text LM it is the string \"[user: ν] \" (`llm.multiobjective.conditioned_prompt`).")
    return ReportContent(summary="\n\n".join(paragraphs), tables=tables, figures=tuple(figures), notes=notes)
