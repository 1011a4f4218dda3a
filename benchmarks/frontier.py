"""Study ``frontier``: the exact reward–KL frontier of the Gibbs oracle, per scenario (issue 3; DESIGN §1, §5).

For η on a log grid, π_η = O(r*, η, π0) maximises E r* − η KL(π‖π0), so the points
(KL(π_η‖π0), E_{π_η} r*) trace the *frontier*: the most gold reward any policy can reach at a given
KL budget (Lagrangian duality). Facts checked on the data:

- the frontier is increasing and concave in KL, and its slope is exactly η:
  dE_{π_η}r*/dKL(π_η‖π0) = η (envelope theorem; both derivatives are Var-terms of r*/η under π_η);
- its ends: KL → 0 and reward → E_{π0} r* as η → ∞; reward → E_x max_{a∈supp π0} r* and
  KL → E_x log 1/π0(argmax) as η → 0;
- best-of-N under π0 (exact distribution) lies on or below it at the same KL.

Each run is one scenario, vectorised over seeds; rows: seed × (η for ``gibbs`` | N for
``best_of_n``) with gold reward, KL(π‖π0), the fraction of the achievable reward gain, and for the
Gibbs rows J*(π_η) and the exact slope E_η-derivative ratio.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rlbandit._checks import check_choice, check_int
from rlbandit.stats import geometric_mean
from rlbandit.study import ReportContent, ReportFigure, Study

__all__ = ["FrontierConfig", "configs", "run", "report", "STUDY"]

SCENARIOS = ("random", "coverage_shift", "few_good")


@dataclass(frozen=True)
class FrontierConfig:
    """One run: a scenario, every η of the grid and every N, vectorised over ``n_seeds`` problems.

    Attributes:
        scenario: a key of rlbandit.SCENARIOS.
        n_contexts, n_actions, dim: X, K, d.
        n_seeds: problems (seeds base_seed·1000 + i).
        eta_min, eta_max, n_etas: the log-spaced η grid.
        bon_ns: the N of best-of-N.
        base_seed: seeds the problems.
    """

    scenario: str = "random"
    n_contexts: int = 20
    n_actions: int = 50
    dim: int = 8
    n_seeds: int = 24
    eta_min: float = 1e-3
    eta_max: float = 1e3
    n_etas: int = 61
    bon_ns: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
    base_seed: int = 0

    def __post_init__(self):
        from rlbandit import SCENARIOS as REGISTRY

        check_choice(self.scenario, "scenario", REGISTRY)
        for name in ("n_contexts", "n_actions", "dim", "n_seeds", "n_etas"):
            minimum = 2 if name in ("n_seeds", "n_etas") else 1
            check_int(getattr(self, name), name, minimum=minimum, numpy_ints=False)
        if not (0 < self.eta_min < self.eta_max < np.inf):
            raise ValueError(f"eta_min, eta_max: need 0 < eta_min < eta_max < inf, got {self.eta_min}, {self.eta_max}")
        if not isinstance(self.bon_ns, tuple) or not all(isinstance(n, int) and n >= 1 for n in self.bon_ns):
            raise ValueError(f"bon_ns: must be a tuple of integers >= 1, got {self.bon_ns!r}")

    @property
    def etas(self) -> np.ndarray:
        return np.geomspace(self.eta_min, self.eta_max, self.n_etas)


def configs(smoke: bool) -> list[FrontierConfig]:
    """Full: three scenarios, X = 20, K = 50, d = 8, 24 seeds, 61 η ∈ [10⁻³, 10³], N ∈ {1, …, 1024}.
    Smoke: tiny problems, 7 η, N ≤ 8."""
    if smoke:
        return [FrontierConfig(scenario=s, n_contexts=3, n_actions=6, dim=3, n_seeds=3, eta_min=0.01, eta_max=100.0,
                               n_etas=7, bon_ns=(1, 2, 8)) for s in SCENARIOS]
    return [FrontierConfig(scenario=s) for s in SCENARIOS]


def _weigh(values: np.ndarray, probs: np.ndarray) -> np.ndarray:
    return (values * probs).sum(-1)


def run(config: FrontierConfig) -> pd.DataFrame:
    """The Gibbs frontier and the best-of-N points of one scenario, per seed."""
    from rlbandit import ProblemConfig, gibbs, make_problems
    from rlbandit.sampling_oracles import best_of_n, gibbs_at_average_kl

    start = time.perf_counter()
    seeds = config.base_seed * 1000 + np.arange(config.n_seeds)
    problems = make_problems(ProblemConfig(scenario=config.scenario, n_contexts=config.n_contexts,
                                           n_actions=config.n_actions, dim=config.dim), seeds)
    rewards, ref = problems.rewards, problems.ref_logprobs
    probs = np.broadcast_to(problems.context_probs, problems.batch_shape + (problems.n_contexts,))
    base = problems.gold_reward(ref)
    best = _weigh(np.where(np.isfinite(ref), rewards, -np.inf).max(-1), probs)
    gain = np.maximum(best - base, 1e-300)
    rows = []
    for eta in config.etas:
        policy = gibbs(rewards, ref, eta)
        p = np.exp(policy)
        reward = problems.gold_reward(policy)
        # exact slope of the frontier: dE r/dη = −Var_π(r)/η², dKL/dη = −Var_π(r)/η³ ⇒ dE r/dKL = η
        var = _weigh((p * (rewards - (p * rewards).sum(-1, keepdims=True)) ** 2).sum(-1), probs)
        rows.append(pd.DataFrame({
            "seed": seeds, "kind": "gibbs", "eta": float(eta), "N": np.nan,
            "reward": reward, "kl_to_ref": problems.kl_to_ref(policy), "value": problems.value(policy, eta),
            "optimal_value": problems.optimal_value(eta), "gain_fraction": (reward - base) / gain,
            "reward_var": var}))
    for n in config.bon_ns:
        policy = best_of_n(rewards, ref, n)
        reward = problems.gold_reward(policy)
        kl_bon = problems.kl_to_ref(policy)
        # "Gibbs at the same KL": one η per problem matching the context-averaged KL
        frontier, frontier_eta = gibbs_at_average_kl(rewards, ref, kl_bon, problems.context_probs)
        frontier_reward = problems.gold_reward(frontier)
        rows.append(pd.DataFrame({
            "seed": seeds, "kind": "best_of_n", "eta": np.nan, "N": float(n), "reward": reward,
            "kl_to_ref": kl_bon, "value": np.nan, "optimal_value": np.nan,
            "gain_fraction": (reward - base) / gain, "reward_var": np.nan,
            "frontier_eta": frontier_eta, "frontier_reward": frontier_reward}))
    frame = pd.concat(rows, ignore_index=True)
    frame["ref_reward"] = np.tile(base, len(config.etas) + len(config.bon_ns))
    frame["max_reward"] = np.tile(best, len(config.etas) + len(config.bon_ns))
    print(f"[frontier] {config.scenario}: {config.n_etas} η + {len(config.bon_ns)} N × {config.n_seeds} seeds "
          f"in {time.perf_counter() - start:.2f}s", flush=True)
    return frame


# ---------------------------------------------------------------------------------------------
# Analysis
# ---------------------------------------------------------------------------------------------

def envelope_check(frame: pd.DataFrame) -> pd.DataFrame:
    """Per scenario: the frontier's slope is η (envelope theorem), so by the mean-value theorem the
    secant slope ΔE r / ΔKL between neighbouring grid values η_{i+1} < η_i lies in [η_{i+1}, η_i].
    Reports the fraction of secants inside their bracket, the median secant slope over the
    geometric-mean η, and monotonicity / concavity of every seed's frontier."""
    rows = []
    g = frame[frame["kind"] == "gibbs"]
    for scenario, part in g.groupby("scenario"):
        inside, ratios, increasing, concave = [], [], True, True
        for _, seed in part.groupby("seed"):
            seed = seed.sort_values("eta", ascending=False)  # KL increasing
            kl, r, eta = (seed[c].to_numpy() for c in ("kl_to_ref", "reward", "eta"))
            dk, dr = np.diff(kl), np.diff(r)
            ok = dk > 1e-10 * max(1.0, kl.max())  # secants above round-off
            slope = dr[ok] / dk[ok]
            hi, lo = eta[:-1][ok], eta[1:][ok]
            inside.append((slope >= lo * (1 - 1e-6)) & (slope <= hi * (1 + 1e-6)))
            ratios.append(slope / np.sqrt(hi * lo))
            increasing &= bool((dr >= -1e-12).all() and (dk >= -1e-12).all())
            concave &= bool((np.diff(slope) <= 1e-6 * np.abs(slope).max()).all()) if slope.size > 1 else True
        inside, ratios = np.concatenate(inside), np.concatenate(ratios)
        rows.append({"scenario": scenario, "secants": int(inside.size),
                     "slope in [η_{i+1}, η_i]": f"{inside.mean():.1%}",
                     "median slope/η": float(np.median(ratios)),
                     "reward, KL increasing as η falls": increasing, "concave in KL": concave})
    return pd.DataFrame(rows)


def budget_table(frame: pd.DataFrame, fractions=(0.5, 0.9, 0.99)) -> pd.DataFrame:
    """Per scenario: the KL budget (mean over seeds) at which the Gibbs frontier reaches each
    fraction of the achievable reward gain E max r − E_{π0} r, the η that does it, and best-of-N's
    gain fraction and gap to the frontier at its largest N."""
    rows = []
    for scenario, part in frame.groupby("scenario"):
        g = part[part["kind"] == "gibbs"]
        b = part[part["kind"] == "best_of_n"]
        row = {"scenario": scenario, "E_π0 r*": g["ref_reward"].mean(), "E max r*": g["max_reward"].mean()}
        for f in fractions:
            kls, etas = [], []
            for _, seed in g.groupby("seed"):
                seed = seed.sort_values("eta", ascending=False)
                kls.append(np.interp(f, seed["gain_fraction"].to_numpy(), seed["kl_to_ref"].to_numpy()))
                etas.append(np.exp(np.interp(f, seed["gain_fraction"].to_numpy(), np.log(seed["eta"].to_numpy()))))
            row[f"KL for {f:.0%} of gain"] = float(np.mean(kls))
            row[f"η for {f:.0%}"] = geometric_mean(etas)
        if not b.empty:
            top = b[b["N"] == b["N"].max()]
            row[f"BoN N={int(b['N'].max())}: KL"] = float(top["kl_to_ref"].mean())
            row[f"BoN N={int(b['N'].max())}: gain fraction"] = float(top["gain_fraction"].mean())
            row["frontier − BoN reward at that KL"] = float((top["frontier_reward"] - top["reward"]).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def bon_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    """Best-of-N rows with ``gap`` = frontier reward at best-of-N's KL (exact, shared-η bisection)
    minus best-of-N's reward; ≥ 0 because Gibbs maximises reward at a given average KL."""
    b = frame[frame["kind"] == "best_of_n"]
    return b.assign(gap=b["frontier_reward"] - b["reward"])[["scenario", "seed", "N", "kl_to_ref", "gap"]]


def _frontier_figure(frame: pd.DataFrame) -> ReportFigure:
    from rlbandit import plots

    fig = plots.path_plot(frame.assign(sqrt_kl=np.sqrt(frame["kl_to_ref"].clip(lower=0))), x="sqrt_kl",
                          y="gain_fraction", order="step", hue="method", col="scenario", ncols=3)
    return ReportFigure("frontier", fig,
                        "Fraction of the achievable reward gain against √KL(π‖π0), mean over seeds with 95 % CI: the "
                        "Gibbs frontier traced by η (from 10³ to 10⁻³) and the exact best-of-N points (N = 1 … 1024), "
                        "which lie on or below it. The frontier is concave in KL (the envelope table); on this √KL "
                        "axis it need not look concave.")


def _transition_decades(gibbs: pd.DataFrame) -> float:
    """Decades of η over which the seed-mean KL(π_η‖π0) moves from 10 % to 90 % of its range, the
    median over scenarios (read from the data, for the caption)."""
    spans = []
    for _, part in gibbs.groupby("scenario"):
        kl = part.groupby("eta")["kl_to_ref"].mean().sort_index()
        frac = (kl - kl.min()) / max(kl.max() - kl.min(), 1e-300)
        inside = frac[(frac >= 0.1) & (frac <= 0.9)].index
        if len(inside) >= 2:
            spans.append(np.log10(inside.max() / inside.min()))
    return float(np.median(spans)) if spans else float("nan")


def _reward_kl_figure(gibbs: pd.DataFrame) -> ReportFigure:
    from rlbandit import plots

    long = gibbs.melt(id_vars=["scenario", "seed", "eta"], value_vars=["reward", "kl_to_ref"], var_name="quantity",
                      value_name="amount")
    fig = plots.line_plot(long, x="eta", y="amount", hue="scenario", col="quantity", logx=True, ncols=2, markers=False,
                          ylabel="left: KL(π_η‖π0) · right: gold reward")
    return ReportFigure("reward_kl_vs_eta", fig,
                        "KL(π_η‖π0) (left) and gold reward E_{π_η} r* (right) of the Gibbs policy against η: both move "
                        "between π0 (η → ∞) and π0 restricted to argmax r* (η → 0); the KL covers 10–90 % of its "
                        f"range within {_transition_decades(gibbs):.1f} decades of η (median over scenarios).")


def _bon_gap_figure(gaps: pd.DataFrame) -> ReportFigure:
    from rlbandit import plots

    return ReportFigure("bon_gap", plots.line_plot(gaps, x="N", y="gap", hue="scenario", logx=True),
                        "Gold reward the Gibbs frontier reaches at best-of-N's KL minus best-of-N's own reward, "
                        "against N (mean over seeds, 95 % CI): the price of best-of-N's fixed shape at the same KL "
                        "budget.")


def _budget_line(row: pd.Series, gaps: pd.DataFrame, n_top) -> str:
    """One scenario's budget sentence: the KL for 50 / 90 / 99 % of the gain and best-of-N's shortfall."""
    kl_key, frac_key = f"BoN N={n_top}: KL", f"BoN N={n_top}: gain fraction"
    text = (f"- `{row['scenario']}`: 50 / 90 / 99 % of the achievable gain "
            f"(E_π0 r* = {row['E_π0 r*']:.3f} → E max r* = {row['E max r*']:.3f}) costs KL "
            f"{row['KL for 50% of gain']:.3g} / {row['KL for 90% of gain']:.3g} / {row['KL for 99% of gain']:.3g} "
            f"nats (η ≈ {row['η for 50%']:.3g} / {row['η for 90%']:.3g} / {row['η for 99%']:.3g}).")
    if kl_key in row:
        text += (f" Best-of-{n_top} reaches {row[frac_key]:.0%} of the gain at KL {row[kl_key]:.3g}, "
                 f"{row['frontier − BoN reward at that KL']:.3g} below the frontier there.")
    mine = gaps[gaps["scenario"] == row["scenario"]].groupby("N")["gap"].mean()
    if len(mine):
        text += (f" Its largest shortfall is {mine.max():.3g} reward units "
                 f"({mine.max() / (row['E max r*'] - row['E_π0 r*']):.1%} of the achievable gain) at "
                 f"N = {int(mine.idxmax())}.")
    return text


def _summary(frame: pd.DataFrame, envelope: pd.DataFrame, budgets: pd.DataFrame, gaps: pd.DataFrame) -> str:
    """The envelope check, one budget sentence per scenario and best-of-N's worst gap."""
    n_top = int(frame["N"].max()) if frame["N"].notna().any() else None
    lines = [_budget_line(row, gaps, n_top) for _, row in budgets.iterrows()]
    worst = gaps["gap"].min() if not gaps.empty else np.nan
    shape_ok = envelope["concave in KL"].all() and envelope["reward, KL increasing as η falls"].all()
    return "\n".join([
        ("The frontier is increasing and concave in KL for every scenario and seed" if shape_ok
         else "The frontier is NOT increasing and concave for some scenario/seed (see the envelope table)")
        + ", and its slope is η as the envelope theorem says: the secant slope between neighbouring grid values "
        "lies in [η_{i+1}, η_i] for "
        + ", ".join(f"{r['scenario']}: {r['slope in [η_{i+1}, η_i]']}" for _, r in envelope.iterrows())
        + " of the secants.",
        "",
        *lines,
        "",
        f"Best-of-N never beats the frontier (smallest frontier − best-of-N gap over all seeds and N: {worst:.2e}, "
        "≥ 0 up to the bisection's tolerance: Gibbs maximises reward at a given average KL)." if not gaps.empty else "",
    ])


_NOTES = ("- Exact quantities throughout (no sampling): π_η in log space, best-of-N from its closed-form "
          "distribution with ties.\n- The frontier point at best-of-N's KL is the Gibbs policy with one η shared "
          "by all contexts, found by bisection on log η so that E_x KL(π_η‖π0) equals best-of-N's (80 steps).\n"
          "- Secants whose KL step is below round-off (η far beyond the reward spread or below the smallest gap) "
          "are left out of the envelope check.")


def report(frame: pd.DataFrame) -> ReportContent:
    frame = frame.assign(method=frame["kind"].map({"gibbs": "Gibbs O(r*, η, π0)", "best_of_n": "best-of-N"}),
                         step=np.where(frame["kind"] == "gibbs", -np.log(frame["eta"]), np.log(frame["N"].fillna(1.0))))
    envelope, budgets = envelope_check(frame), budget_table(frame)
    gaps = bon_gaps(frame)
    gaps = gaps[gaps["N"] > 1]  # N = 1 is π0 itself (KL 0, gap 0)
    figures = [_frontier_figure(frame), _reward_kl_figure(frame[frame["kind"] == "gibbs"])]
    if not gaps.empty:
        figures.append(_bon_gap_figure(gaps))
    tables = (("KL budget for a fraction of the achievable reward gain (mean over seeds)", budgets),
              ("Envelope theorem check: slope of the frontier against η", envelope))
    return ReportContent(summary=_summary(frame, envelope, budgets, gaps), tables=tables, figures=tuple(figures),
                         notes=_NOTES)


STUDY = Study(
    name="frontier",
    description=("The exact reward–KL frontier of the Gibbs oracle: how much gold reward can a policy gain per nat "
                 "of KL from π0, per scenario, and how far below it does best-of-N sit? Sweeps η over six decades "
                 "and N = 1 … 1024 on three scenarios × 24 seeds."),
    configs=configs,
    run=run,
    report=report,
    symbols={
        "gain_fraction": (r"reward gain $\frac{\mathbb{E}_\pi r^* - \mathbb{E}_{\pi_0} r^*}"
                          r"{\mathbb{E}\max r^* - \mathbb{E}_{\pi_0} r^*}$"),
        "gap": r"frontier $-$ best-of-$N$ reward at equal KL",
    },
    tags=("bandit", "oracle"),
)
