"""Study ``conflict``: conflicting preferences in the exact world (issue 15; DESIGN §6b).

Three parts, each one run vectorised over ``n_seeds`` random problems (``make_problems``: features
in the unit ball, π0 = softmax of Gaussian logits, X = 8, K = 12, d = 4); the problem's own θ* is
not used. **Construction of the objectives at angle ψ**: per seed draw two Gaussian vectors in R^d,
orthonormalise them (Gram–Schmidt) to u, v, and set θ_1* = s·u, θ_2* = s·(cos ψ u + sin ψ v),
so ‖θ_i*‖ = s and ∠(θ_1*, θ_2*) = ψ exactly.

- ``front``: k = 2 objectives; the exact Pareto front (``pareto_front`` over w = (t, 1 − t), t on
  a grid) and the geometric / arithmetic soups of the per-objective Gibbs policies π_i = O(r_i, η, π0)
  at the same weights. Rows: seed × ψ × η × t × method with J_1, J_2, J_w and ``gap`` = J_w(front) − J_w(method).
- ``sharing``: two user types with one-hot gates (user 1 wants objective 1, user 2 objective 2),
  d_ν uniform; rows seed × ψ × η with each user's regret J_ν(π_ν*) − J_ν(π_shared) (``price_of_sharing``).
- ``annotators``: three annotator types θ_1* = s·u, θ_{2,3}* = s·(cos ψ u ± sin ψ v), shares
  ρ = (½, ¼, ¼); agreement on π0 × π0 pairs (``agreement_matrix``), the pooled-BT limit θ_∞
  (``pooled_bt_limit``) against the mixture average θ̄ = Σ_j ρ_j θ_j*, and each type's value gap
  J_j(π_j*) − J_j(π) for π = O(φθ_∞) (``pooled``) and π = O(φθ̄) (``average``, the ρ-average optimum).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rlbandit._checks import check_choice, check_int, check_positive_float
from rlbandit.study import ReportContent, ReportFigure, Study

__all__ = ["ConflictConfig", "configs", "run", "report", "STUDY", "PARTS", "objective_thetas"]

PARTS = ("front", "sharing", "annotators")
MIXING = (0.5, 0.25, 0.25)


@dataclass(frozen=True)
class ConflictConfig:
    """One part of the study, vectorised over seeds.

    Attributes:
        part: one of :data:`PARTS`.
        angles: ψ in degrees (each in [0, 180]).
        etas: η values (each > 0).
        n_contexts, n_actions, dim: X, K, d (d ≥ 2).
        n_seeds: problems (seeds base_seed·1000 + i).
        theta_norm: s = ‖θ_i*‖.
        n_weights: size of the weight grid t ∈ [0, 1] (``front`` only).
        base_seed: seeds the problems and the directions u, v.
    """

    part: str = "front"
    angles: tuple[float, ...] = (30.0, 60.0, 90.0, 120.0, 150.0)
    etas: tuple[float, ...] = (0.3, 1.0, 3.0)
    n_contexts: int = 8
    n_actions: int = 12
    dim: int = 4
    n_seeds: int = 8
    theta_norm: float = 2.0
    n_weights: int = 11
    base_seed: int = 0

    def __post_init__(self):
        check_choice(self.part, "part", PARTS)
        for name in ("n_contexts", "n_actions", "n_seeds", "n_weights"):
            check_int(getattr(self, name), name, minimum=2, numpy_ints=False)
        check_int(self.dim, "dim", minimum=2, numpy_ints=False)
        check_int(self.base_seed, "base_seed", minimum=0, numpy_ints=False)
        check_positive_float(self.theta_norm, "theta_norm")
        if not isinstance(self.angles, tuple) or not self.angles or not all(0 <= a <= 180 for a in self.angles):
            raise ValueError(f"angles: expected a non-empty tuple of degrees in [0, 180], got {self.angles!r}")
        if not isinstance(self.etas, tuple) or not self.etas or not all(np.isfinite(e) and e > 0 for e in self.etas):
            raise ValueError(f"etas: expected a non-empty tuple of finite η > 0, got {self.etas!r}")


def configs(smoke: bool) -> list[ConflictConfig]:
    """Full: the three parts, ψ ∈ {30°, 60°, 90°, 120°, 150°} (annotators: ψ ∈ {0°, 30°, …, 180°},
    s = 8 so that agreement spans a wide range), η ∈ {0.3, 1, 3}, 8 seeds. Smoke: 2 angles, 1–2 η, 3 seeds."""
    if smoke:
        small = dict(n_contexts=4, n_actions=5, dim=3, n_seeds=3, n_weights=5)
        return [ConflictConfig(part="front", angles=(60.0, 150.0), etas=(1.0,), **small),
                ConflictConfig(part="sharing", angles=(60.0, 150.0), etas=(0.3, 1.0), **small),
                ConflictConfig(part="annotators", angles=(0.0, 150.0), etas=(1.0,), theta_norm=4.0, **small)]
    return [ConflictConfig(part="front"), ConflictConfig(part="sharing"),
            ConflictConfig(part="annotators", angles=(0.0, 30.0, 60.0, 90.0, 120.0, 150.0, 180.0), theta_norm=8.0)]


def objective_thetas(rng: np.random.Generator, n_seeds: int, dim: int, norm: float, angles_deg) -> np.ndarray:
    """θ_i* = norm·(cos ψ_i u + sin ψ_i v) for orthonormal u, v drawn per seed: shape (S, k, d).

    ψ_i are the angles to u (in degrees, may be negative), so ∠(θ_i*, θ_j*) = |ψ_i − ψ_j| ≤ 180°."""
    g = rng.standard_normal((n_seeds, 2, dim))
    u = g[:, 0] / np.linalg.norm(g[:, 0], axis=-1, keepdims=True)
    v = g[:, 1] - (g[:, 1] * u).sum(-1, keepdims=True) * u
    v /= np.linalg.norm(v, axis=-1, keepdims=True)
    psi = np.deg2rad(np.asarray(angles_deg, dtype=float))
    return norm * (np.cos(psi)[None, :, None] * u[:, None, :] + np.sin(psi)[None, :, None] * v[:, None, :])


def _problems(config: ConflictConfig):
    from rlbandit import ProblemConfig, make_problems

    seeds = config.base_seed * 1000 + np.arange(config.n_seeds)
    problems = make_problems(ProblemConfig(n_contexts=config.n_contexts, n_actions=config.n_actions,
                                           dim=config.dim), seeds)
    rng = np.random.default_rng([config.base_seed, PARTS.index(config.part), 15])
    return seeds, problems, rng


def run(config: ConflictConfig) -> pd.DataFrame:
    """One part (see the module docstring) for every ψ × η, per seed."""
    start = time.perf_counter()
    frame = {"front": _run_front, "sharing": _run_sharing, "annotators": _run_annotators}[config.part](config)
    print(f"[conflict] {config.part}: {len(frame)} rows in {time.perf_counter() - start:.1f}s", flush=True)
    return frame


def _run_front(config: ConflictConfig) -> pd.DataFrame:
    from rlbandit import multiobjective as mo

    seeds, problems, rng = _problems(config)
    t = np.linspace(0.0, 1.0, config.n_weights)
    grid = np.stack([t, 1.0 - t], axis=1)
    ref, probs, rows = problems.ref_logprobs, problems.context_probs, []
    for psi in config.angles:
        thetas = objective_thetas(rng, config.n_seeds, config.dim, config.theta_norm, (0.0, psi))
        rewards = mo.objective_rewards(problems.features, thetas)  # (S, 2, X, K)
        for eta in config.etas:
            front = mo.pareto_front(rewards, ref, eta, grid, probs)
            per_objective = np.stack([mo.combined_policy(rewards, np.eye(2)[i], ref, eta) for i in range(2)], axis=1)
            optimum = front["J_w"].to_numpy().reshape(len(t), config.n_seeds)
            base = {"seed": np.tile(seeds, len(t)), "psi": psi, "eta": eta, "t": np.repeat(t, config.n_seeds)}
            rows.append(pd.DataFrame({**base, "method": "front", "J_1": front["J_1"], "J_2": front["J_2"],
                                      "J_w": optimum.ravel(), "gap": 0.0}))
            for name, soup in (("geometric", mo.geometric_soup), ("arithmetic", mo.arithmetic_soup)):
                policy = soup(per_objective, grid[:, None, :])  # (G, S, X, K)
                values = mo.objective_values(policy, rewards, ref, eta, probs)  # (G, S, 2)
                j_w = (grid[:, None, :] * values).sum(-1)
                rows.append(pd.DataFrame({**base, "method": name, "J_1": values[..., 0].ravel(),
                                          "J_2": values[..., 1].ravel(), "J_w": j_w.ravel(),
                                          "gap": (optimum - j_w).ravel()}))
    return pd.concat(rows, ignore_index=True)


def _run_sharing(config: ConflictConfig) -> pd.DataFrame:
    from rlbandit import multiobjective as mo

    seeds, problems, rng = _problems(config)
    gates = np.repeat(np.eye(2)[:, None, :], config.n_contexts, axis=1)  # (V=2, X, k=2), one-hot
    rows = []
    for psi in config.angles:
        thetas = objective_thetas(rng, config.n_seeds, config.dim, config.theta_norm, (0.0, psi))
        rewards = mo.objective_rewards(problems.features, thetas)
        for eta in config.etas:
            price = mo.price_of_sharing(rewards, gates, None, problems.ref_logprobs, eta, problems.context_probs)
            rows.append(pd.DataFrame({"seed": seeds, "psi": psi, "eta": eta, "regret_1": price.per_user[:, 0],
                                      "regret_2": price.per_user[:, 1], "worst": price.worst,
                                      "average": price.average}))
    return pd.concat(rows, ignore_index=True)


def _value_gaps(rewards_k, logprobs, ref, eta, probs) -> np.ndarray:
    """J_j(O(r_j)) − J_j(π) for every type j: (S, J)."""
    from rlbandit import multiobjective as mo

    k = rewards_k.shape[-3]
    best = np.stack([mo.objective_values(mo.combined_policy(rewards_k, np.eye(k)[j], ref, eta),
                                         rewards_k, ref, eta, probs)[..., j] for j in range(k)], axis=-1)
    return best - mo.objective_values(logprobs, rewards_k, ref, eta, probs)


def _run_annotators(config: ConflictConfig) -> pd.DataFrame:
    from rlbandit import gibbs
    from rlbandit import multiobjective as mo

    seeds, problems, rng = _problems(config)
    features, ref, probs = problems.features, problems.ref_logprobs, problems.context_probs
    mixing = np.array(MIXING)
    rows = []
    for psi in config.angles:
        thetas = objective_thetas(rng, config.n_seeds, config.dim, config.theta_norm, (0.0, psi, -psi))
        rewards = mo.objective_rewards(features, thetas)  # (S, 3, X, K)
        agree = mo.agreement_matrix(features, thetas, ref, ref, probs)  # (S, 3, 3)
        pooled = mo.pooled_bt_limit(features, thetas, mixing, ref, ref, probs)  # (S, d)
        average = np.einsum("j,sjd->sd", mixing, thetas)
        base = {"seed": seeds, "psi": psi, "A_12": agree[:, 0, 1], "A_13": agree[:, 0, 2], "A_23": agree[:, 1, 2],
                "A_11": agree[:, 0, 0], "A_22": agree[:, 1, 1], "A_33": agree[:, 2, 2],
                "agreement": (agree[:, 0, 1] + agree[:, 0, 2] + agree[:, 1, 2]) / 3,
                "norm_average": np.linalg.norm(average, axis=-1), "norm_pooled": np.linalg.norm(pooled, axis=-1),
                "distance": np.linalg.norm(pooled - average, axis=-1)}
        for eta in config.etas:
            for name, theta in (("pooled", pooled), ("average", average)):
                policy = gibbs(np.einsum("sxkd,sd->sxk", features, theta), ref, eta)
                gaps = _value_gaps(rewards, policy, ref, eta, probs)
                rows.append(pd.DataFrame({**base, "eta": eta, "method": name, "gap_1": gaps[:, 0],
                                          "gap_2": gaps[:, 1], "gap_3": gaps[:, 2], "gap_mean": gaps @ mixing,
                                          "gap_worst": gaps.max(-1)}))
    return pd.concat(rows, ignore_index=True)


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def _mean_ci(values) -> str:
    values = np.asarray(values, dtype=float)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return f"{values.mean():.3g} ± {half:.2g}"


def soup_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per ψ × η × soup: the shortfall J_w(front) − J_w(soup), mean and max over seeds × interior weights."""
    part = frame[(frame["part"] == "front") & (frame["method"] != "front")]
    rows = []
    for (psi, eta, method), g in part.groupby(["psi", "eta", "method"], sort=True):
        inner = g[(g["t"] > 0) & (g["t"] < 1)]
        per_seed = inner.groupby("seed")["gap"].mean()
        rows.append({"psi": psi, "eta": eta, "method": method, "mean gap (interior w)": _mean_ci(per_seed),
                     "max gap": float(g["gap"].max()), "max abs gap": float(g["gap"].abs().max()),
                     "min gap (interior w)": float(inner["gap"].min()) if len(inner) else np.nan,
                     "gap at t = ½": float(g.loc[np.isclose(g["t"], 0.5), "gap"].mean())
                     if np.isclose(g["t"], 0.5).any() else np.nan})
    return pd.DataFrame(rows)


def sharing_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per ψ × η: each user's regret under the shared policy and the worst-off user's (mean ± 95 % CI over seeds)."""
    part = frame[frame["part"] == "sharing"]
    rows = []
    for (psi, eta), g in part.groupby(["psi", "eta"], sort=True):
        rows.append({"psi": psi, "eta": eta, "regret user 1": _mean_ci(g["regret_1"]),
                     "regret user 2": _mean_ci(g["regret_2"]), "worst-off user": _mean_ci(g["worst"]),
                     "worst (mean)": float(g["worst"].mean()), "min over seeds": float(g["worst"].min())})
    return pd.DataFrame(rows)


def annotator_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per ψ × η: mean off-diagonal agreement, ‖θ_∞ − θ̄‖/‖θ̄‖, and the value gaps of O(φθ_∞) and O(φθ̄)."""
    part = frame[frame["part"] == "annotators"]
    rows = []
    for (psi, eta), g in part.groupby(["psi", "eta"], sort=True):
        pooled, average = g[g["method"] == "pooled"], g[g["method"] == "average"]
        rows.append({"psi": psi, "eta": eta, "agreement": float(pooled["agreement"].mean()),
                     "self-agreement": float(pooled[["A_11", "A_22", "A_33"]].to_numpy().mean()),
                     "‖θ̄‖": float(pooled["norm_average"].mean()), "‖θ_∞‖": float(pooled["norm_pooled"].mean()),
                     "‖θ_∞ − θ̄‖": float(pooled["distance"].mean()),
                     "cos∠(θ_∞, θ̄)": _cosine(pooled),
                     "gap type 1 (pooled)": float(pooled["gap_1"].mean()),
                     "gap types 2,3 (pooled)": float(pooled[["gap_2", "gap_3"]].to_numpy().mean()),
                     "ρ-mean gap pooled": float(pooled["gap_mean"].mean()),
                     "ρ-mean gap average": float(average["gap_mean"].mean()),
                     "worst gap pooled": float(pooled["gap_worst"].mean())})
    return pd.DataFrame(rows)


def _cosine(rows: pd.DataFrame) -> float:
    """Mean over seeds of cos∠(θ_∞, θ̄) from the two norms and the distance (NaN where θ̄ or θ_∞ ≈ 0)."""
    a, b, c = (rows[k].to_numpy(float) for k in ("norm_average", "norm_pooled", "distance"))
    ok = (a > 1e-9) & (b > 1e-9)
    return float(np.mean((a[ok] ** 2 + b[ok] ** 2 - c[ok] ** 2) / (2 * a[ok] * b[ok]))) if ok.all() else np.nan


def _minority_count(annot: pd.DataFrame) -> str:
    part = annot[(annot["psi"] > 0) & (annot["psi"] < 180)]
    more = int((part["gap types 2,3 (pooled)"] > part["gap type 1 (pooled)"]).sum())
    return f"{more} of {len(part)} ψ × η cells with 0° < ψ < 180°"


def _agreement_long(frame: pd.DataFrame, psi: float) -> pd.DataFrame:
    part = frame[(frame["part"] == "annotators") & (frame["psi"] == psi) & (frame["method"] == "pooled")]
    part = part[part["eta"] == part["eta"].min()]
    rows = []
    for j in range(1, 4):
        for m in range(1, 4):
            col = f"A_{min(j, m)}{max(j, m)}"
            rows.append(pd.DataFrame({"annotator": j, "annotator'": m, "A": part[col].to_numpy()}))
    return pd.concat(rows, ignore_index=True)


def report(frame: pd.DataFrame) -> ReportContent:
    from rlbandit import plots

    soups, sharing, annot = soup_table(frame), sharing_table(frame), annotator_table(frame)
    figures, paragraphs = [], []
    front = frame[frame["part"] == "front"]
    if not soups.empty:
        geo, ari = soups[soups["method"] == "geometric"], soups[soups["method"] == "arithmetic"]
        half = ari.groupby("psi")["gap at t = ½"].mean()
        by_eta = ari.groupby("eta")["gap at t = ½"].mean()
        positive = int((ari["min gap (interior w)"] > 0).sum())
        trend = "grows monotonically" if np.all(np.diff(half.to_numpy()) > 0) else "changes (not monotonically)"
        paragraphs.append(
            f"**Front vs soups.** Two checks of theorems (DESIGN §6b), not findings: the geometric soup of the "
            f"per-objective Gibbs policies lies on the exact front (largest |J_w(front) − J_w(soup)| over every ψ, η, "
            f"weight and seed {geo['max abs gap'].max():.1e}, float rounding), and the arithmetic soup, not the "
            f"maximiser of J_w, falls short at every interior weight 0 < t < 1 of every seed in {positive} of "
            f"{len(ari)} ψ × η cells. What is measured is how much: its shortfall at w = (½, ½), averaged over η, "
            f"{trend} with "
            f"the angle ψ, from {half.iloc[0]:.3g} at ψ = {half.index[0]:g}° to {half.iloc[-1]:.3g} at "
            f"ψ = {half.index[-1]:g}° (largest single shortfall {ari['max gap'].max():.3g}). Averaged over ψ, it "
            f"shrinks from {by_eta.iloc[0]:.3g} at η = {by_eta.index[0]:g} to {by_eta.iloc[-1]:.3g} at "
            f"η = {by_eta.index[-1]:g} (at large η both per-objective policies stay close to π0, so their mixture "
            f"and their geometric mean nearly coincide).")
        eta_mid = sorted(front["eta"].unique())[len(front["eta"].unique()) // 2]
        part = front[front["eta"] == eta_mid]
        figures.append(ReportFigure("front_and_soups", plots.path_plot(
            part, x="J_1", y="J_2", order="t", hue="method", col="psi", band=False),
            f"Exact Pareto front (J_1, J_2) and the geometric and arithmetic soups at the same weights "
            f"w = (t, 1 − t), η = {eta_mid:g}, seed means, one panel per ψ; the geometric soup is drawn last and "
            f"covers the front, with which it coincides."))
        figures.append(ReportFigure("soup_gap", plots.line_plot(
            front[(front["method"] != "front") & np.isclose(front["t"], 0.5)], x="psi", y="gap", hue="method",
            col="eta"), "Shortfall J_w(front) − J_w(soup) at w = (½, ½) against ψ (95 % CI over seeds)."))
    if not sharing.empty:
        worst = sharing.groupby("psi")["worst (mean)"].mean()
        by_eta = sharing.groupby("eta")["worst (mean)"].mean()
        trend = "rises monotonically" if np.all(np.diff(worst.to_numpy()) > 0) else "changes (not monotonically)"
        eta_trend = "falls" if np.all(np.diff(by_eta.to_numpy()) < 0) else "does not fall monotonically"
        paragraphs.append(
            f"**Price of sharing.** With one-hot gates and d_ν uniform, the shared policy O(½(r_1 + r_2)) costs "
            f"every user a positive regret — a check: it is η E_x KL(π_shared‖π_ν*) > 0 whenever the users' optima "
            f"differ (smallest worst-off regret over all seeds and cells {sharing['min over seeds'].min():.2g}). "
            f"Measured: the worst-off user's regret, averaged over η, {trend} "
            f"from {worst.iloc[0]:.3g} at ψ = {worst.index[0]:g}° to {worst.iloc[-1]:.3g} at "
            f"ψ = {worst.index[-1]:g}°, and averaged over ψ it {eta_trend} from {by_eta.iloc[0]:.3g} at "
            f"η = {by_eta.index[0]:g} to {by_eta.iloc[-1]:.3g} at η = {by_eta.index[-1]:g}. The two users pay "
            f"about the same (the construction is symmetric in distribution).")
        figures.append(ReportFigure("price_of_sharing", plots.line_plot(
            frame[frame["part"] == "sharing"], x="psi", y="worst", hue="eta", logy=True),
            "Worst-off user's regret J_ν(π_ν*) − J_ν(π_shared) against ψ, one line per η (log axis: geometric mean "
            "over seeds with a 95 % band computed in log space)."))
    if not annot.empty:
        a = annot.groupby("psi").mean(numeric_only=True)
        inner = a[(a["‖θ_∞ − θ̄‖"] > 1e-9)]
        shrink = inner["‖θ_∞‖"] / inner["‖θ̄‖"]
        excess = (annot["ρ-mean gap pooled"] - annot["ρ-mean gap average"])
        eta1 = annot[np.isclose(annot["eta"], sorted(annot["eta"].unique())[len(annot["eta"].unique()) // 2])]
        hi, lo = eta1.loc[eta1["agreement"].idxmax()], eta1.loc[eta1["agreement"].idxmin()]
        top = eta1.loc[eta1["ρ-mean gap pooled"].idxmax()]
        paragraphs.append(
            f"**Annotators.** Three types (ρ = ½, ¼, ¼) with θ_1* = s·u and θ_2,3* at ±ψ from it: the mean "
            f"off-diagonal agreement on π0 × π0 pairs spans {a['agreement'].min():.2f}–{a['agreement'].max():.2f} "
            f"(self-agreement {a['self-agreement'].min():.2f}–{a['self-agreement'].max():.2f}); it is lowest at "
            f"ψ = {a['agreement'].idxmin():g}° and rises again towards 180°, where θ_2* = θ_3* agree with each other. "
            f"The pooled-BT limit θ_∞ equals the mixture average θ̄ "
            f"only where it must (ψ = 0°: one type; ψ = 180°: θ̄ = 0 = θ_∞); at the {len(inner)} angles between it "
            f"is θ̄ shrunk (seed means): ‖θ_∞‖/‖θ̄‖ = {shrink.min():.2f}–{shrink.max():.2f}, mean cos∠(θ_∞, θ̄) ≥ "
            f"{inner['cos∠(θ_∞, θ̄)'].min():.3f}, so ‖θ_∞ − θ̄‖ reaches {a['‖θ_∞ − θ̄‖'].max():.3g} "
            f"(‖θ̄‖ = {a.loc[a['‖θ_∞ − θ̄‖'].idxmax(), '‖θ̄‖']:.3g}). At η = {hi['eta']:g} the pooled-BT Gibbs policy's "
            f"ρ-average value gap rises from {hi['ρ-mean gap pooled']:.3g} at agreement {hi['agreement']:.2f} "
            f"(ψ = {hi['psi']:g}°) to {lo['ρ-mean gap pooled']:.3g} at agreement {lo['agreement']:.2f} "
            f"(ψ = {lo['psi']:g}°; largest, {top['ρ-mean gap pooled']:.3g}, at ψ = {top['psi']:g}° with agreement "
            f"{top['agreement']:.2f}); the minority types 2, 3 pay more than the majority type 1 in "
            f"{_minority_count(annot)}. It exceeds the ρ-average gap of O(φθ̄) — the "
            f"ρ-average optimum — by {max(excess.min(), 0.0):.2g}–{excess.max():.2g} (≥ 0 up to rounding, min "
            f"{excess.min():.1e}): what fitting one BT model to pooled labels costs beyond the unavoidable "
            f"price of serving one policy.")
        angles = sorted(frame.loc[frame["part"] == "annotators", "psi"].unique())
        for psi in sorted({angles[0], angles[len(angles) // 2], angles[-1]}):
            figures.append(ReportFigure(f"agreement_psi{int(psi)}", plots.heatmap(
                _agreement_long(frame, psi), x="annotator'", y="annotator", value="A", fmt=".2f",
                title=f"ψ = {psi:g}°"), f"Agreement matrix A[j, j′] on π0 × π0 pairs at ψ = {psi:g}° (seed means)."))
        figures.append(ReportFigure("annotator_cost", plots.path_plot(
            frame[frame["part"] == "annotators"], x="agreement", y="gap_mean", order="psi", hue="method", col="eta",
            annotate=(0.0, 90.0, 180.0)), "ρ-average value gap of the pooled-BT Gibbs policy and of O(φθ̄) against "
            "mean off-diagonal agreement, traced by ψ (seed means, 95 % CIs)."))
    tables = tuple((title, t) for title, t in (
        ("Soups' shortfall J_w(front) − J_w(soup)", soups), ("Price of sharing", sharing),
        ("Annotator mixtures: agreement, pooled-BT limit and cost", annot)) if not t.empty)
    notes = ("- Gaps are computed from the exact values (no sampling); the soups' gap of the geometric soup is 0 "
             "up to rounding by DESIGN §6b.\n- The pooled-BT limit is the exact population fit on π0 × π0 pairs.")
    return ReportContent(summary="\n\n".join(paragraphs), tables=tables, figures=tuple(figures), notes=notes)


STUDY = Study(
    name="conflict",
    description=("Conflicting preferences in the exact world: the exact KL-regularised Pareto front for two "
                 "objectives at angle ψ against the geometric and arithmetic soups of the per-objective Gibbs "
                 "policies; the price one shared policy costs two user types with opposite gates; and what a "
                 "single Bradley–Terry model fitted to pooled labels of three annotator types converges to and "
                 "costs each type, against their agreement. ψ, η swept over 8 seeded problems (X = 8, K = 12, d = 4)."),
    configs=configs,
    run=run,
    report=report,
    symbols={"psi": r"angle $\psi$ (degrees)", "gap": r"$J_w(\mathrm{front}) - J_w(\pi)$",
             "worst": r"worst-off regret $\max_\nu J_\nu(\pi_\nu^*) - J_\nu(\pi_{\mathrm{shared}})$",
             "agreement": "mean off-diagonal agreement", "gap_mean": r"$\sum_j \rho_j [J_j(\pi_j^*) - J_j(\pi)]$",
             "J_1": r"$J_1$", "J_2": r"$J_2$"},
    tags=("bandit", "exact", "multiobjective"),
)
