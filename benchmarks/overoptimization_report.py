"""Report of the ``overoptimization`` study (benchmarks/overoptimization.py): peaks and paired drops,
Gao et al.'s functional forms tested out of sample, α and β along the proxy-data and misspecification
sweeps, hacking-action draws of sampled PPO, and gold gain at matched proxy gain.

Every number a sentence quotes is read from a table of the same report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.overoptimization import (DROP_THRESHOLD, FORMS, PROXIES, drop_interval, fit_form,
                                         heldout_error, matched_gaps, predict, seed_curve)
from rlbandit.study import ReportContent, ReportFigure

#: the form Gao et al. use for each optimiser.
GAO_FORM = {"best_of_n": "BoN d(α − βd)"}
RL_FORM = "RL d(α − β log d)"
#: the curves of the scaling sweep (and of the fits figure).
SWEEP_CURVES = ("gibbs", "best_of_n", "ppo_exact (η=0.01)")


def _register_colors(curves) -> None:
    """PPO variants share PPO's hue family (sampled: PPO's colour; exact: a darker one)."""
    from rlbandit.palette import COLORS, register_color

    shades = {"ppo (η=0.01)": COLORS["ppo"], "ppo (η=0.1)": "#f0a070", "ppo_exact (η=0.01)": "#8c0800",
              "ppo_exact (η=0.1)": "#591e71"}
    for curve in curves:
        if curve not in COLORS and curve in shades:
            register_color(curve, shades[curve])


def _color(curve: str) -> str:
    from rlbandit.palette import COLORS

    return COLORS.get(curve, "#949494")


def _curve_order(curve: str):
    """Gibbs first, then best-of-N, then the PPO curves by name."""
    return (curve != "gibbs", curve != "best_of_n", curve)


def _form_of(curve: str) -> str:
    return GAO_FORM.get(curve, RL_FORM)


def _ordered(table: pd.DataFrame, curve_col: str | None = None) -> pd.DataFrame:
    """Rows by proxy (PROXIES order), then by curve (``curve_col``) or kept in place."""
    key = [table["proxy"].map(PROXIES.index).to_numpy(),
           table[curve_col].map(_curve_order).tolist() if curve_col else list(range(len(table)))]
    return table.iloc[sorted(range(len(table)), key=lambda i: (key[0][i], key[1][i]))] if len(table) else table


# ---------------------------------------------------------------------------------------------
# Fits


def _mean_curves(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return (frame.groupby(keys + ["knob"]).agg(d=("d", "mean"), gold_gain=("gold_gain", "mean"),
                                               proxy_gain=("proxy_gain", "mean")).reset_index())


def _form_table(mean: pd.DataFrame) -> pd.DataFrame:
    """Per proxy × curve: α, β of both forms on the whole seed-mean curve and their held-out RMSE."""
    rows = []
    for (proxy, curve), g in mean.groupby(["proxy", "curve"]):
        row = {"proxy": proxy, "optimizer": curve, "Gao's form": _form_of(curve)}
        for form in FORMS:
            tag = form.split()[0]
            row[f"{tag} α"], row[f"{tag} β"] = fit_form(g["d"], g["gold_gain"], form)
            row[f"{tag} held-out RMSE"] = heldout_error(g["d"].to_numpy(), g["gold_gain"].to_numpy(), form)
        errs = {form.split()[0]: row[f"{form.split()[0]} held-out RMSE"] for form in FORMS}
        row["better out of sample"] = min(errs, key=lambda k: errs[k]) if all(np.isfinite(list(errs.values()))) \
            else "—"
        rows.append(row)
    table = pd.DataFrame(rows)
    return _ordered(table, "optimizer")


def _scaling_table(frame: pd.DataFrame) -> pd.DataFrame:
    """α and β (Gao's form per optimiser, fitted per seed; mean and 95 % CI over seeds) and the
    held-out RMSE of both forms on the seed-mean curve, along the sweep: ``limited`` × comparisons n,
    ``misspecified`` × missing features."""
    from rlbandit.stats import t_interval

    rows = []
    for proxy, knob in (("limited", "n_limited"), ("misspecified", "n_missing")):
        part = frame[(frame["proxy"] == proxy) & frame["curve"].isin(SWEEP_CURVES)]
        if part.empty or knob not in part:
            continue
        for (value, curve), g in part.groupby([knob, "curve"]):
            form = _form_of(curve)
            row = {"proxy": proxy, "sweep": knob, "value": int(value), "optimizer": curve, "form": form}
            fits = np.array([fit_form(s["d"], s["gold_gain"], form) for _, s in g.groupby("seed")])
            for j, name in enumerate(("α", "β")):
                row[name], row[f"{name} CI lo"], row[f"{name} CI hi"] = t_interval(fits[:, j])
            mean = g.groupby("knob")[["d", "gold_gain"]].mean()
            for f in FORMS:
                row[f"{f.split()[0]} held-out RMSE"] = heldout_error(mean["d"].to_numpy(),
                                                                     mean["gold_gain"].to_numpy(), f)
            row["peak gold gain"] = mean["gold_gain"].max()
            rows.append(row)
    return pd.DataFrame(rows)


def _trend(scaling: pd.DataFrame, proxy: str, curve: str, column: str) -> float:
    """Spearman correlation of ``column`` with the sweep value (NaN with < 3 points)."""
    from scipy.stats import spearmanr

    g = scaling[(scaling["proxy"] == proxy) & (scaling["optimizer"] == curve)].sort_values("value")
    if len(g) < 3 or g[column].nunique() < 2:
        return np.nan
    return float(spearmanr(g["value"], g[column]).statistic)


# ---------------------------------------------------------------------------------------------
# Peaks, drops, hack draws, matched proxy gain


def _peak_table(frame: pd.DataFrame, mean: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (proxy, curve), g in mean.groupby(["proxy", "curve"]):
        runs = frame[(frame["proxy"] == proxy) & (frame["curve"] == curve)]
        # the most optimised point: the smallest η for Gibbs, the largest N or last step otherwise
        final_knob = g["knob"].min() if curve == "gibbs" else g["knob"].max()
        peak, last = g.loc[g["gold_gain"].idxmax()], g[g["knob"] == final_knob].iloc[0]
        drop, low, high = drop_interval(runs, final_knob)
        rows.append({"proxy": proxy, "optimizer": curve, "peak gold gain": peak["gold_gain"], "d at peak": peak["d"],
                     "final gold gain": last["gold_gain"], "final d": last["d"],
                     "final proxy gain": last["proxy_gain"], "paired drop": drop, "drop CI lo": low,
                     "drop CI hi": high, "over-optimised": bool(low > DROP_THRESHOLD),
                     "final hack mass": runs.loc[runs["knob"] == final_knob, "hack_mass"].mean()})
    table = pd.DataFrame(rows)
    return _ordered(table, "optimizer")


def _draws_table(frame: pd.DataFrame) -> pd.DataFrame:
    """PPO at its last checkpoint: hacking-action draws (sampled), the π_old-weighted hack share of
    its training batches (both modes; ×samples per step = effective draws), the final hack mass,
    and the final KL to the Gibbs policy of r̂ (its target: convergence)."""
    ppo = frame[frame["curve"].str.startswith("ppo") & frame["step"].notna()]
    rows = []
    for (proxy, curve), g in ppo.groupby(["proxy", "curve"]):
        last = g[g["step"] == g["step"].max()]
        steps = int(g["step"].max())
        rows.append({"proxy": proxy, "optimizer": curve, "steps": steps,
                     "hack draws (sampled)": last["hack_draws"].mean() if curve.startswith("ppo (") else np.nan,
                     "expected hack draws": last["hack_draws_expected"].mean() if curve.startswith("ppo (")
                     else np.nan,
                     "hack share of batches": last["hack_mass_cum"].mean() / steps,
                     "final hack mass": last["hack_mass"].mean(), "final KL to Gibbs(r̂)": last["kl_to_target"].mean(),
                     "final d": last["d"].mean(), "final proxy gain": last["proxy_gain"].mean(),
                     "final gold gain": last["gold_gain"].mean()})
    table = pd.DataFrame(rows)
    return _ordered(table, "optimizer")


def _matched_table(mean: pd.DataFrame, fractions=(0.25, 0.5, 0.75, 1.0)) -> pd.DataFrame:
    """Gold gain (seed-mean curves) interpolated at equal proxy gain: levels are fractions of the
    largest proxy gain every optimiser of the proxy reaches; each curve is read along its
    optimisation order up to its proxy-gain maximum."""
    rows = []
    for proxy, p in mean.groupby("proxy"):
        curves = {}
        for curve, g in p.groupby("curve"):
            curves[curve] = seed_curve(g, curve)
        common = min(c[0].max() for c in curves.values())
        for fraction in fractions:
            level = fraction * common
            row = {"proxy": proxy, "proxy gain": level}
            for curve in sorted(curves, key=_curve_order):
                row[curve] = float(np.interp(level, *curves[curve]))
            rows.append(row)
    table = pd.DataFrame(rows)
    return _ordered(table)



# ---------------------------------------------------------------------------------------------
# Figures


def _gain_figure(frame: pd.DataFrame, y: str, title: str) -> ReportFigure:
    from rlbandit import plots

    fig = plots.path_plot(frame, x="d", y=y, order="knob", hue="curve", col="proxy", title=title)
    return ReportFigure(f"{y}_vs_d", fig, f"{'Gold' if y == 'gold_gain' else 'Proxy'} reward gain over π0 against "
                        "d = √KL(π‖π0) for Gibbs (η sweep), best-of-N (N sweep) and PPO (training steps), "
                        "per proxy (mean over seeds, 95 % CI bands).")


def _fits_figure(mean: pd.DataFrame, forms: pd.DataFrame) -> ReportFigure:
    """The seed-mean gold gain with Gao et al.'s form per optimiser fitted on d ≤ median (solid) and
    extrapolated beyond (dashed), one panel per proxy."""
    from rlbandit import plots

    proxies = [p for p in PROXIES if p in set(mean["proxy"])]
    fig, axes = plots.new_figure(len(proxies), ncols=len(proxies))
    for ax, proxy in zip(axes, proxies):
        for curve in sorted(set(mean.loc[mean["proxy"] == proxy, "curve"]) & set(SWEEP_CURVES), key=_curve_order):
            g = mean[(mean["proxy"] == proxy) & (mean["curve"] == curve) & (mean["d"] > 1e-6)].sort_values("d")
            if len(g) < 6:
                continue
            form, color = _form_of(curve), _color(curve)
            ax.plot(g["d"], g["gold_gain"], "o", ms=3, color=color, label=curve)
            median = np.median(g["d"])
            alpha, beta = fit_form(g.loc[g["d"] <= median, "d"], g.loc[g["d"] <= median, "gold_gain"], form)
            inside, beyond = np.linspace(g["d"].min(), median, 50), np.linspace(median, g["d"].max(), 50)
            ax.plot(inside, predict(inside, alpha, beta, form), "-", color=color, lw=1)
            ax.plot(beyond, predict(beyond, alpha, beta, form), "--", color=color, lw=1)
        ax.set_title(f"proxy = {proxy}")
        ax.set_xlabel(plots.label("d"))
        ax.set_ylabel(plots.label("gold_gain"))
        lo, hi = mean.loc[mean["proxy"] == proxy, "gold_gain"].agg(["min", "max"])
        ax.set_ylim(lo - 0.2 * (hi - lo), hi + 0.2 * (hi - lo))
    axes[0].legend(fontsize=7)
    return ReportFigure("gold_fits", fig, "Gold gain (points, seed means) of Gibbs, best-of-N and exact-update PPO "
                        "(η = 0.01) with Gao et al.'s form per optimiser — d(α − βd) for best-of-N, d(α − β log d) "
                        "for Gibbs and PPO — fitted on d ≤ median d "
                        "(solid) and extrapolated beyond it (dashed): the held-out test of the form.")


def _scaling_figure(scaling: pd.DataFrame) -> ReportFigure:
    """α and β (mean and 95 % CI over per-seed fits) along the two sweeps."""
    from rlbandit import plots

    sweeps = [(p, k) for p, k in (("limited", "n_limited"), ("misspecified", "n_missing"))
              if (scaling["proxy"] == p).any()]
    fig, axes = plots.new_figure(2 * len(sweeps), ncols=2)
    for i, (proxy, knob) in enumerate(sweeps):
        part = scaling[scaling["proxy"] == proxy]
        for j, name in enumerate(("α", "β")):
            ax = axes[2 * i + j]
            for curve in sorted(part["optimizer"].unique(), key=_curve_order):
                g = part[part["optimizer"] == curve].sort_values("value")
                x = g["value"].to_numpy(float)
                err = np.stack([g[name] - g[f"{name} CI lo"], g[f"{name} CI hi"] - g[name]])
                ax.errorbar(x, g[name], yerr=err, color=_color(curve), marker="o", ms=3, capsize=2, label=curve)
            if knob == "n_limited":
                ax.set_xscale("log", base=2)
                ax.set_xlabel("comparisons n (limited proxy)")
            else:
                ax.set_xlabel("gold features missed (misspecified proxy)")
            ax.set_ylabel(name)
            ax.set_title(f"{name} — {proxy}")
    axes[0].legend(fontsize=7)
    return ReportFigure("alpha_beta_scaling", fig, "Gao et al.'s α and β (their form per optimiser, fitted per seed; "
                        "mean and 95 % CI over seeds) against the limited proxy's number of comparisons n and the "
                        "number of gold features the misspecified proxy misses.")


# ---------------------------------------------------------------------------------------------
# Text


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def _scaling_sentences(scaling: pd.DataFrame) -> list[str]:
    out = []
    for proxy, what in (("limited", "comparisons n"), ("misspecified", "missing features")):
        part = scaling[scaling["proxy"] == proxy]
        for curve in sorted(part["optimizer"].unique(), key=_curve_order):
            g = part[part["optimizer"] == curve].sort_values("value")
            rho_b, rho_a = _trend(scaling, proxy, curve, "β"), _trend(scaling, proxy, curve, "α")
            first, last = g.iloc[0], g.iloc[-1]
            mid = g.iloc[len(g) // 2]
            share = (first["β"] - mid["β"]) / (first["β"] - last["β"]) if first["β"] != last["β"] else np.nan
            out.append(f"`{proxy}` × {curve}: as {what} go from {first['value']} to {last['value']}, β goes "
                       f"{_fmt(first['β'])} → {_fmt(last['β'])} (Spearman ρ = {rho_b:.2f}; {share:.0%} of that "
                       f"change is done by {mid['value']}) and α {_fmt(first['α'])} → {_fmt(last['α'])} "
                       f"(ρ = {rho_a:.2f})")
    return out


def _form_counts(forms: pd.DataFrame, scaling: pd.DataFrame) -> tuple[int, int, int, int]:
    """(curves where Gao's form wins out of sample, curves compared) on the main curves, and the same
    on the sweep curves."""
    def tally(table, optimizer_col):
        ok = table.dropna(subset=["BoN held-out RMSE", "RL held-out RMSE"])
        gao = ok[optimizer_col].map(lambda c: _form_of(c).split()[0])
        better = np.where(ok["BoN held-out RMSE"] < ok["RL held-out RMSE"], "BoN", "RL")
        return int((gao.to_numpy() == better).sum()), len(ok)

    main = tally(forms, "optimizer")
    sweep = tally(scaling, "optimizer") if not scaling.empty else (0, 0)
    return (*main, *sweep)


def _range(values) -> str:
    values = pd.Series(values).dropna()
    lo, hi = values.min(), values.max()
    return _fmt(lo) if np.isclose(lo, hi) else f"{_fmt(lo)}–{_fmt(hi)}"


def _ppo_sentence(draws: pd.DataFrame, peaks: pd.DataFrame, gaps: pd.DataFrame) -> str:
    """What the data say about sampled PPO: its hack draws, its convergence and its gold at matched
    proxy gain (tables 4 and 5)."""
    sampled = draws[draws["optimizer"].str.startswith("ppo (")]
    exact = draws[draws["optimizer"].str.startswith("ppo_exact")]
    if sampled.empty or exact.empty:
        return ""
    flags = peaks.set_index(["proxy", "optimizer"])["over-optimised"]
    n_sampled = int(sum(flags.get((r.proxy, r.optimizer), False) for r in sampled.itertuples()))
    n_exact = int(sum(flags.get((r.proxy, r.optimizer), False) for r in exact.itertuples()))
    hacked = sampled[sampled["proxy"] != "ample"]
    hacked_exact = exact[exact["proxy"] != "ample"]
    ample = sampled[sampled["proxy"] == "ample"]
    text = (f"Sampled PPO is over-optimised in {n_sampled} of {len(sampled)} curves, exact-update PPO in {n_exact} "
            f"of {len(exact)}. The data show two differences, not one. *Exploration*: on the limited and "
            f"misspecified proxies sampled PPO draws a hacking action {_range(hacked['hack draws (sampled)'])} times "
            f"per run of {int(hacked['steps'].max())} steps (a share {_range(hacked['hack share of batches'])} of its "
            f"samples; the expected count from its policies, {_range(hacked['expected hack draws'])}, agrees), "
            f"while exact PPO puts {_range(hacked_exact['hack share of batches'])} of its update weight on them; "
            f"final hack mass {_range(hacked['final hack mass'])} against {_range(hacked_exact['final hack mass'])}. "
            f"*Convergence*: sampled PPO stops at a proxy gain of {_range(hacked['final proxy gain'])} (exact: "
            f"{_range(hacked_exact['final proxy gain'])}) and ends at KL {_range(hacked['final KL to Gibbs(r̂)'])} "
            f"from its target O(r̂, η, π0) (exact: {_range(hacked_exact['final KL to Gibbs(r̂)'])})")
    if not ample.empty:
        text += (f" — also on the `ample` control ({_range(ample['final KL to Gibbs(r̂)'])}), where there is no "
                 "hack to avoid, so this distance is non-convergence, not avoidance of the hack")
    text += ". "
    vs_exact = gaps[gaps["against"].str.startswith("ppo_exact") & (gaps["proxy"] != "ample")] \
        if not gaps.empty else gaps
    if vs_exact.empty:
        return text
    text += ("*At matched proxy gain* (table 5, per seed at the largest proxy gain both curves reach), sampled "
             "minus exact PPO gold gain: " + "; ".join(
                 f"`{r['proxy']}` η={r['sampled'][len('ppo (η='):-1]}: {_fmt(r['gold gap'])} "
                 f"[{_fmt(r['gap CI lo'])}, {_fmt(r['gap CI hi'])}] at proxy gain {_fmt(r['matched proxy gain'])}"
                 for _, r in vs_exact.iterrows()) + ". ")
    above = vs_exact[vs_exact["gap CI lo"] > 0]
    if len(above) == len(vs_exact):
        text += ("So at equal proxy gain sampled PPO does keep more gold — its rare hack draws keep it on a "
                 "non-hacking route, which is more than stopping early; but it never reaches the proxy gains at "
                 "which the exact optimisers collapse, so whether it would still avoid the hack run to convergence "
                 "is not measured here.")
    elif above.empty:
        text += ("At equal proxy gain sampled PPO keeps no more gold than exact PPO: its smaller drop is "
                 "non-convergence (it stops before the proxy gains at which the hack pays), not a safer route.")
    else:
        text += (f"The gap's CI lies above 0 in {len(above)} of {len(vs_exact)} comparisons: sampled PPO's rare hack "
                 "draws keep it on a non-hacking route only in part; the rest of its protection is stopping short "
                 "of the proxy gains at which the hack pays.")
    return text + "\n"


def _paper_table(forms: pd.DataFrame, scaling: pd.DataFrame, peaks: pd.DataFrame) -> pd.DataFrame:
    main_ok, main_n, sweep_ok, sweep_n = _form_counts(forms, scaling)
    rho = {(p, c): _trend(scaling, p, c, "β") for p, c in scaling[["proxy", "optimizer"]].drop_duplicates()
           .itertuples(index=False)} if not scaling.empty else {}
    rho_a = {(p, c): _trend(scaling, p, c, "α") for p, c in rho}
    limited = [f"{c} ρ_β = {v:.2f}, ρ_α = {rho_a[(p, c)]:.2f}" for (p, c), v in rho.items() if p == "limited"]
    missing = [f"{c} ρ_β = {v:.2f}, ρ_α = {rho_a[(p, c)]:.2f}" for (p, c), v in rho.items() if p == "misspecified"]
    over = peaks[peaks["over-optimised"]]
    ample = forms[(forms["proxy"] == "ample") & forms["optimizer"].isin(SWEEP_CURVES)]
    ample_beta = ", ".join(f"{r['optimizer']} {_fmt(r[_form_of(r['optimizer']).split()[0] + ' β'])}"
                           for _, r in ample.iterrows()) or "—"
    return pd.DataFrame([
        {"item": "x-axis", "Gao et al. 2022": "d = √KL(π‖π0)", "here": "d = √(E_x KL(π(·|x)‖π0(·|x)))",
         "why different": "contexts are averaged; otherwise the same"},
        {"item": "functional forms", "Gao et al. 2022": "best-of-N d(α − βd); RL d(α − β log d)",
         "here": f"their form predicts d > median better than the other in {main_ok} of {main_n} main curves and "
                 f"{sweep_ok} of {sweep_n} sweep curves (held-out RMSE)",
         "why different": "exact policies (no sampling noise); Gibbs stands in for converged RL"},
        {"item": "α, β against RM size/data", "Gao et al. 2022": "β falls and α rises smoothly (roughly linearly "
         "in log RM parameters); more RM data also helps",
         "here": "Spearman ρ against comparisons n: " + ("; ".join(limited) or "—")
                 + ". Against missing features: " + ("; ".join(missing) or "—"),
         "why different": "proxy data n, not RM parameters; β levels off once the proxy is accurate, at about the "
                          f"ample control's β ({ample_beta}, table 2): here β also measures the gold reward's own "
                          "saturation (gains are bounded), not only over-optimisation"},
        {"item": "gold reward model", "Gao et al. 2022": "a 6B RM trained on human labels (synthetic setup)",
         "here": "the true linear reward ⟨φ, θ*⟩", "why different": "the bandit knows r* exactly"},
        {"item": "over-optimisation mechanism", "Gao et al. 2022": "emerges from RM errors",
         "here": f"a planted hack; {len(over)} of {len(peaks)} curves drop significantly "
                 f"(95 % CI above {DROP_THRESHOLD:g})",
         "why different": "a linear proxy on a linear world only over-optimises through a planted route"},
    ])


def _forms_sentence(forms: pd.DataFrame) -> str:
    """Which form extrapolates better, split by optimiser kind, and the worst extrapolation."""
    ok = forms.dropna(subset=["BoN held-out RMSE", "RL held-out RMSE"])
    rl = ok[ok["optimizer"] != "best_of_n"]
    bon_wins_rl = int((rl["better out of sample"] == "BoN").sum())
    worst = ok.loc[ok[["BoN held-out RMSE", "RL held-out RMSE"]].min(axis=1).idxmax()]
    best = min(worst["BoN held-out RMSE"], worst["RL held-out RMSE"])
    peak = worst["proxy"], worst["optimizer"]
    return (f"the quadratic BoN form extrapolates better on {bon_wins_rl} of the {len(rl)} RL curves (Gibbs, PPO) "
            "too, so the d log d shape Gao et al. found for RL is not reproduced here. Neither form predicts the "
            f"collapse through the hacking actions: the largest held-out RMSE of the better form is {_fmt(best)} on "
            f"`{peak[0]}` × {peak[1]}.")


def _summary(frame, peaks, forms, scaling, draws, gaps) -> str:
    lines = []
    for _, r in peaks.sort_values("paired drop", ascending=False).iterrows():
        if r["proxy"] == "ample" and not r["over-optimised"]:
            continue
        tag = "**over-optimised**" if r["over-optimised"] else "not over-optimised"
        lines.append(f"- {tag}: `{r['proxy']}` × {r['optimizer']}: gold gain peaks at {_fmt(r['peak gold gain'])} "
                     f"(d = {r['d at peak']:.2f}) and ends at {_fmt(r['final gold gain'])} (d = {r['final d']:.2f}; "
                     f"paired drop {_fmt(r['paired drop'])}, 95 % CI [{_fmt(r['drop CI lo'])}, "
                     f"{_fmt(r['drop CI hi'])}]) while the proxy gain reaches {_fmt(r['final proxy gain'])}; final "
                     f"hack mass {r['final hack mass']:.2g}.")
    n_ample = int((peaks["proxy"] == "ample").sum())
    n_ample_over = int(peaks.loc[peaks["proxy"] == "ample", "over-optimised"].sum())
    weights = frame.groupby("proxy")["spurious_weight"].mean()
    main_ok, main_n, sweep_ok, sweep_n = _form_counts(forms, scaling)
    text = (
        "**The hack is planted, not emergent**: each context has a few *hacking* actions built into the scenario — "
        "rare under π0, bad under the gold reward, and maximal on a spurious feature s that the limited and "
        "misspecified proxies weight positively. What the study measures is how each optimiser's gold reward "
        "responds to that planted route, not whether one exists.\n\n"
        "A Bradley–Terry proxy is optimised by the exact Gibbs oracle (η sweep), best-of-N (N sweep) and PPO "
        "(training checkpoints, sampled and exact-update); gold and proxy reward gains over π0 against "
        f"d = √KL(π‖π0), {frame['seed'].nunique()} seeds. The proxy's weight on s (mean over seeds, main runs): "
        f"{', '.join(f'{k}: {v:.2f}' for k, v in weights.items())}. A drop from the peak counts only when the "
        f"paired per-seed drop's 95 % CI lies above {DROP_THRESHOLD:g} (table 1).\n\n"
        + "\n".join(lines)
        + f"\n- the `ample` control is over-optimised by {n_ample_over} of its {n_ample} optimisers.\n\n"
        + "**PPO and exploration** (tables 4–5). " + _ppo_sentence(draws, peaks, gaps) + "\n"
        + f"**Gao et al.'s forms, out of sample** (table 2; fit on d ≤ median d, predict beyond): their form "
        f"(d(α − βd) for best-of-N, d(α − β log d) for RL) has the smaller held-out RMSE in {main_ok} of {main_n} "
        f"main curves and in {sweep_ok} of {sweep_n} sweep curves; {_forms_sentence(forms)}\n\n"
        "**α and β along the sweeps** (table 3, figure alpha_beta_scaling; Spearman ρ against the sweep value):\n"
        + "\n".join(f"- {s}." for s in _scaling_sentences(scaling)) + "\n"
    )
    return text


def _notes(frame: pd.DataFrame) -> str:
    first = frame.iloc[0]
    return (
        f"- The hacking actions ({int(first['n_hack'])} of {int(first['n_actions'])} per context) are the only "
        f"route to over-optimisation in a linear world: rare under π0 (log-weight −{first['hack_rarity']:g}), bad "
        "under the gold reward, maximal on the spurious feature. The ample proxy is the control.\n"
        "- d uses the context-averaged KL, E_x KL(π(·|x)‖π0(·|x)); gains are relative to π0.\n"
        "- Fits are least squares on the seed-mean curve (points with d > 10⁻⁶), linear in (α, β); table 3 fits "
        "each seed's curve and gives the mean and 95 % t-interval over seeds. Held-out RMSE: fit on the points "
        "with d ≤ median d of the curve, RMSE of the prediction on the points beyond (PPO's checkpoints cluster "
        "at its final d, so its held-out part spans a short range of d).\n"
        "- Sweep: the limited proxy's comparisons n and the misspecified proxy's missing gold features, for Gibbs, "
        "best-of-N and exact-update PPO (η = 0.01); the other knobs as in the main runs.\n"
        "- PPO: tabular, k1 KL penalty in the reward; sampled = 32 prompts × 4 actions per step, 2 epochs × 2 "
        "minibatches, Adam lr 0.05; exact = the expected update (every action weighted by π_old), Adam lr 0.02. "
        "Hack draws are counted from the batches PPO collects (its batch collector is wrapped; sampling is "
        "unchanged); 'hack share of batches' is the mean over steps of the batch weight on hacking actions "
        "(exact mode: π_old's mass on them). 'final KL to Gibbs(r̂)' is E_x KL(π_T ‖ O(r̂, η, π0)), PPO's target.\n"
        "- Matched proxy gain: seed-mean curves read in optimisation order up to their proxy-gain maximum, gold "
        "gain linearly interpolated at fractions of the largest proxy gain every optimiser of the proxy reaches."
    )


def report(frame: pd.DataFrame) -> ReportContent:
    """Peaks and drops, functional forms out of sample, α(n) and β(n), PPO's hack draws and gold at
    matched proxy gain."""
    frame = frame.copy()
    if "sweep" not in frame:
        frame["sweep"] = False
    _register_colors(frame["curve"].unique())
    main = frame[~frame["sweep"].astype(bool)]
    mean = _mean_curves(main, ["proxy", "curve"])
    peaks = _peak_table(main, mean)
    forms = _form_table(mean)
    # the sweep pools the sweep runs with the main runs at the same proxy data
    pooled = frame[frame["curve"].isin(SWEEP_CURVES)]
    scaling = _scaling_table(pooled)
    draws = _draws_table(main)
    matched = _matched_table(mean)
    gaps = _ordered(matched_gaps(main))
    figures = [_gain_figure(main, "gold_gain", "Gold reward against d"),
               _gain_figure(main, "proxy_gain", "Proxy reward against d"), _fits_figure(mean, forms)]
    if not scaling.empty:
        figures.append(_scaling_figure(scaling))
    tables = (("1. Peak, final gold gain and paired drop per proxy × optimiser", peaks.round(4)),
              ("2. Gao et al.'s forms on the main curves: α, β (whole curve) and held-out RMSE "
               "(fit d ≤ median, predict beyond)", forms.round(4)),
              ("3. α(n), β(n): Gao's form per optimiser along the sweeps (per-seed fits, mean and 95 % CI)",
               scaling.round(4)),
              ("4. PPO at its last checkpoint: hacking-action draws, convergence", draws.round(4)),
              ("5. Sampled PPO's gold gain minus exact PPO's and Gibbs's at matched proxy gain (per seed, "
               "paired; mean and 95 % CI)", gaps.round(4)),
              ("6. Gold gain at matched proxy gain (seed-mean curves, interpolated)", matched.round(4)),
              ("7. Reproducing the paper (Gao, Schulman & Hilton 2022)", _paper_table(forms, scaling, peaks)))
    return ReportContent(summary=_summary(main, peaks, forms, scaling, draws, gaps), tables=tables,
                         figures=tuple(figures), notes=_notes(frame))
