"""Study ``offline``: when does pessimism help offline KL-regularised RLHF, when does it cost, and
how should β be chosen? (issue 4; DESIGN §2)

For every scenario × η, a batch of problems (one per seed) is drawn; for every dataset size n a
dataset is sampled per seed from the scenario's data design, and every method of
:mod:`rlbandit.offline` learns a policy from it: plain MLE, the two LCBs (Option II pointwise
``lcb``, Option I policy-level ``lcb_policy``) over a β grid and the theory's β (both references
ν = φ(x,π0) and ν = 0), and the two ensembles. Each row records the exact SubOpt, the combined
metric, KL(π̂‖π0), the coverage coefficient, the confidence width ‖θ̂ − θ*‖_Σ and the theory's
bound for that β.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rlbandit._checks import check_choice, check_positive_float
from rlbandit.study import ReportContent, ReportFigure, Study

#: Scenario → data design (rlbandit.offline.DESIGNS); the rest use π0-vs-π0 comparisons.
_DESIGN_OF = {"zhu_example": "zhu_rare_pair"}
#: What each scenario is meant to show (used in the report).
_SCENARIO_ROLE = {
    "good_coverage": "π0 near uniform: the data explores every direction",
    "partial_coverage": "data covers π*, but rarely compared trap actions lie along an unexplored direction",
    "zhu_example": "Zhu, Jordan & Jiao (2023) 4-action example: θ₁ seen O(1) times at every n",
    "coverage_shift": "π0 anti-correlated with r*: the best actions are rarely compared",
}
SCENARIOS = tuple(_SCENARIO_ROLE)
METHOD_ORDER = ("mle", "lcb", "lcb_policy", "ensemble_min", "ensemble_mean_std")


@dataclass(frozen=True)
class OfflineConfig:
    """One run: a scenario at one η, all methods × n × β over ``n_seeds`` seeded problems.

    Attributes:
        scenario: a key of rlbandit.SCENARIOS (its data design comes from ``_DESIGN_OF``).
        eta: η > 0.
        n_values: dataset sizes n (comparisons per problem).
        n_seeds: problems (and datasets) per n, vectorised.
        betas: the β grid of the sweep for ``lcb`` / ``lcb_policy`` (0 = MLE); the theory's β
            (``self_normalized`` rule with B = ‖θ*‖ bound ``theta_norm``, δ = ``delta``) is added.
        beta_default: the β of the headline method comparison (must be in ``betas``).
        n_contexts, n_actions, dim, theta_norm, shift: the scenario's sizes (rlbandit.ProblemConfig).
        n_models, c: ensemble size and the std weight of mean − c·std.
        reg: the ridge λ of the MLE and of Σ_D.
        base_seed: seeds the problems (base_seed·1000 + i) and the data generator.
        kind: ``"sweep"`` (methods × n × β) or ``"speed"`` (Option I solvers timed against each
            other on the first n of ``n_values``: exact dual vs cvxpy, as ratios).
    """

    scenario: str = "partial_coverage"
    eta: float = 0.1
    n_values: tuple = (25, 50, 100, 200, 400, 800, 1600, 3200)
    n_seeds: int = 24
    betas: tuple = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0)
    beta_default: float = 1.0
    n_contexts: int = 8
    n_actions: int = 16
    dim: int = 4
    theta_norm: float = 2.0
    shift: float = 3.0
    n_models: int = 5
    c: float = 1.0
    reg: float = 1.0
    delta: float = 0.1
    base_seed: int = 0
    kind: str = "sweep"

    def __post_init__(self):
        if self.kind not in ("sweep", "speed"):
            raise ValueError(f"kind: expected 'sweep' or 'speed', got {self.kind!r}")
        from rlbandit.problem import SCENARIOS as registry

        check_choice(self.scenario, "scenario", registry)
        check_positive_float(self.eta, "eta")
        if not self.n_values or any(int(n) != n or n < 1 for n in self.n_values):
            raise ValueError(f"n_values: need positive integers, got {self.n_values}")
        if self.n_seeds < 2:
            raise ValueError(f"n_seeds: need at least 2 seeds, got {self.n_seeds}")
        if any(b < 0 for b in self.betas) or self.beta_default not in self.betas:
            raise ValueError(f"betas: need β ≥ 0 containing beta_default={self.beta_default}, got {self.betas}")
        if self.n_models < 2:
            raise ValueError(f"n_models: ensembles need at least 2 members, got {self.n_models}")
        if not (self.reg > 0 and 0 < self.delta < 1 and self.c >= 0):
            raise ValueError("reg: must be > 0 (and delta in (0, 1), c >= 0)")


def configs(smoke: bool) -> list[OfflineConfig]:
    """Four scenarios × η ∈ {0.1, 1}; the smoke sweep is two tiny runs."""
    if smoke:
        return [OfflineConfig(scenario="partial_coverage", eta=0.1, n_values=(50, 200), n_seeds=3, betas=(0.0, 1.0),
                              n_contexts=3, n_actions=8, dim=3),
                OfflineConfig(scenario="zhu_example", eta=0.1, n_values=(50, 200), n_seeds=3, betas=(0.0, 1.0),
                              n_contexts=1, n_actions=4, dim=3)]
    sizes = {"zhu_example": dict(n_contexts=1, n_actions=4, dim=3, n_seeds=64)}
    sweep = [OfflineConfig(scenario=s, eta=eta, **sizes.get(s, {})) for s in SCENARIOS for eta in (0.1, 1.0)]
    speed = [OfflineConfig(scenario="partial_coverage", eta=eta, n_values=(400,), n_seeds=8, n_contexts=x, n_actions=k,
                           kind="speed") for eta, x, k in ((0.1, 8, 16), (1.0, 8, 16), (1.0, 32, 64))]
    return sweep + speed


def _speed(config: OfflineConfig) -> pd.DataFrame:
    """Option I solvers on the same batch: wall time (best of 3) and agreement, as ratios."""
    from rlbandit import offline
    from rlbandit.oracle import gibbs
    from rlbandit.problem import ProblemConfig, make_problems

    problems = make_problems(ProblemConfig(scenario=config.scenario, n_contexts=config.n_contexts,
                                           n_actions=config.n_actions, dim=config.dim), np.arange(config.n_seeds))
    data = offline.sample_offline_data(problems, int(config.n_values[0]), np.random.default_rng(config.base_seed))
    model = offline.fit_reward(problems, data, config.reg)
    nu = offline.reference_features(problems)
    args = (problems.features, model.theta, model.cov, nu, config.beta_default, problems.ref_logprobs, config.eta,
            problems.context_probs)
    timed = {
        "lcb_policy (dual)": lambda: offline.lcb_policy(*args, solver="dual"),
        "lcb_policy (cvxpy)": lambda: offline.lcb_policy(*args, solver="cvxpy"),
        "lcb (pointwise)": lambda: gibbs(offline.lcb_rewards(problems.features, model.theta, model.factor, nu,
                                                             config.beta_default), problems.ref_logprobs, config.eta),
    }
    seconds, values = {}, {}
    for name, call in timed.items():
        best = np.inf
        for _ in range(3):
            start = time.perf_counter()
            out = call()
            best = min(best, time.perf_counter() - start)
        seconds[name] = best
        values[name] = getattr(out, "value", None)
    gap = float(np.max(np.abs(values["lcb_policy (dual)"] - values["lcb_policy (cvxpy)"])))
    print(f"[offline] speed X={config.n_contexts} K={config.n_actions} η={config.eta}: "
          + ", ".join(f"{k} {v:.3f}s" for k, v in seconds.items()), flush=True)
    return pd.DataFrame([dict(solver=name, seconds=sec, ratio_to_cvxpy=sec / seconds["lcb_policy (cvxpy)"],
                              ratio_to_pointwise=sec / seconds["lcb (pointwise)"], value_gap=gap)
                         for name, sec in seconds.items()])


def _rows(problems, eta, seeds, n, method, logprobs, reference, beta, beta_rule, diag, bound_key) -> pd.DataFrame:
    """One row per seed: the exact metrics of a learned policy and, for the LCBs, its diagnostics."""
    row = dict(seed=seeds, n=n, method=method, reference=reference, beta=np.broadcast_to(beta, seeds.shape),
               beta_rule=beta_rule, suboptimality=problems.suboptimality(logprobs, eta),
               combined=problems.combined_metric(logprobs, eta), kl_to_ref=problems.kl_to_ref(logprobs),
               gold_reward=problems.gold_reward(logprobs))
    if diag is not None:
        row.update(width=diag.width, covered=diag.covered, coverage=diag.coverage, bound=getattr(diag, bound_key),
                   bound_mean_norm=diag.bound)
    return pd.DataFrame(row)


def run(config: OfflineConfig) -> pd.DataFrame:
    """All methods × n × β for one scenario and η, vectorised over the seeds (or the solver timing)."""
    if config.kind == "speed":
        return _speed(config)
    from rlbandit import offline
    from rlbandit.oracle import gibbs
    from rlbandit.problem import ProblemConfig, make_problems

    problem_config = ProblemConfig(scenario=config.scenario, n_contexts=config.n_contexts, n_actions=config.n_actions,
                                   dim=config.dim, theta_norm=config.theta_norm, shift=config.shift)
    seeds = config.base_seed * 1000 + np.arange(config.n_seeds)
    problems = make_problems(problem_config, seeds)
    theta_bound = float(np.linalg.norm(problems.theta, axis=-1).max())
    design = _DESIGN_OF.get(config.scenario, "reference")
    rng = np.random.default_rng([config.base_seed, 4])
    eta = config.eta
    frames = []
    for n in config.n_values:
        start = time.perf_counter()
        data = offline.sample_offline_data(problems, int(n), rng, design)
        model = offline.fit_reward(problems, data, config.reg)
        theory = offline.theory_beta(problems.diffs(data), config.reg, theta_bound, config.delta, model.theta)

        def record(method, logprobs, reference="", beta=np.nan, beta_rule="", diag=None, bound_key=None, n=int(n)):
            frames.append(_rows(problems, eta, seeds, n, method, logprobs, reference, beta, beta_rule, diag, bound_key))

        record("mle", offline.learn(problems, data, eta, "mle", reg=config.reg), beta=0.0)
        for method in ("ensemble_min", "ensemble_mean_std"):
            extra = {"c": config.c} if method == "ensemble_mean_std" else {}
            record(method, offline.learn(problems, data, eta, method, rng=rng, n_models=config.n_models,
                                         reg=config.reg, **extra), reference="ref")
        settings = [("ref", "fixed", b) for b in config.betas] + [("ref", "theory", theory),
                                                                    ("zero", "fixed", config.beta_default),
                                                                    ("zero", "theory", theory)]
        for reference, beta_rule, beta in settings:
            nu = offline.reference_features(problems, reference)
            beta = np.broadcast_to(np.asarray(beta, dtype=np.float64), seeds.shape)
            diag = offline.diagnostics(problems, data, eta, beta, reference, model=model)
            rewards = offline.lcb_rewards(problems.features, model.theta, model.factor, nu, beta)
            record("lcb", gibbs(rewards, problems.ref_logprobs, eta), reference, beta, beta_rule, diag, "bound_pointwise")
            solution = offline.lcb_policy(problems.features, model.theta, model.cov, nu, beta, problems.ref_logprobs,
                                          eta, problems.context_probs)
            record("lcb_policy", solution.logprobs, reference, beta, beta_rule, diag, "bound_policy")
        print(f"[offline] {config.scenario} η={eta} n={n}: {time.perf_counter() - start:.1f}s", flush=True)
    frame = pd.concat(frames, ignore_index=True)
    frame["design"] = design
    return frame


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def _headline(frame: pd.DataFrame, beta: float) -> pd.DataFrame:
    """The method comparison: LCBs at the fixed β with ν = φ(π0), MLE and the ensembles."""
    keep = frame["method"].isin(["mle", "ensemble_min", "ensemble_mean_std"]) | (
        frame["method"].isin(["lcb", "lcb_policy"]) & (frame["reference"] == "ref") & (frame["beta_rule"] == "fixed")
        & np.isclose(frame["beta"], beta))
    return frame[keep]


def _slope(group: pd.DataFrame) -> float:
    means = group.groupby("n")["suboptimality"].mean()
    means = means[(means.index >= 100) & (means > 0)]
    if len(means) < 3:
        return np.nan
    return float(np.polyfit(np.log(means.index.to_numpy(float)), np.log(means.to_numpy()), 1)[0])


def report(frame: pd.DataFrame) -> ReportContent:
    from rlbandit import plots

    speed = frame[frame["kind"] == "speed"] if "kind" in frame else frame.iloc[:0]
    frame = frame[frame["kind"] != "speed"] if "kind" in frame else frame
    frame = frame.assign(n=frame["n"].astype(int))

    beta0 = float(frame["beta_default"].iloc[0]) if "beta_default" in frame else 1.0
    head = _headline(frame, beta0)
    n_max, n_min = frame["n"].max(), frame["n"].min()
    scenarios = [s for s in SCENARIOS if s in set(frame["scenario"])] + sorted(set(frame["scenario"]) - set(SCENARIOS))
    n_mid = sorted(frame["n"].unique())[len(frame["n"].unique()) // 2]

    # 1. Headline table: mean SubOpt ± s.e. at the smallest, middle and largest n.
    def fmt(group):
        m, s = group.mean(), group.std(ddof=1) / np.sqrt(max(len(group), 1))
        return f"{m:.3g} ± {s:.2g}"

    table = (head[head["n"].isin([n_min, n_mid, n_max])]
             .groupby(["scenario", "eta", "method", "n"])["suboptimality"].apply(fmt).unstack("n").reset_index())
    table["method"] = pd.Categorical(table["method"], METHOD_ORDER)
    table["scenario"] = pd.Categorical(table["scenario"], scenarios)
    table = table.sort_values(["scenario", "eta", "method"]).reset_index(drop=True)
    table.columns = [f"SubOpt n={c}" if isinstance(c, (int, np.integer)) else c for c in table.columns]

    # 2. Help / cost: ratio to MLE of each method (mean over seeds and all n; and at n_max).
    means = head.groupby(["scenario", "eta", "method", "n"])["suboptimality"].mean().unstack("method")
    ratio_all = means.div(means["mle"], axis=0).groupby(["scenario", "eta"]).apply(lambda g: np.exp(np.log(g).mean()))
    ratio_all = ratio_all[[m for m in METHOD_ORDER if m in ratio_all]].round(3).reset_index()

    # 3. Best β per scenario × η (lcb_policy, ν = φ(π0)) at n_mid and n_max, and the theory β.
    sweep = frame[frame["method"].isin(["lcb", "lcb_policy"]) & (frame["reference"] == "ref")]
    fixed = sweep[sweep["beta_rule"] == "fixed"]
    best_rows = []
    for (scenario, eta, method, n), group in fixed[fixed["n"].isin([n_mid, n_max])].groupby(["scenario", "eta", "method", "n"]):
        by_beta = group.groupby("beta")["suboptimality"].mean()
        theory = sweep[(sweep["beta_rule"] == "theory") & (sweep["scenario"] == scenario) & (sweep["eta"] == eta)
                       & (sweep["method"] == method) & (sweep["n"] == n)]
        best_rows.append(dict(scenario=scenario, eta=eta, method=method, n=n, best_beta=by_beta.idxmin(),
                              subopt_best=by_beta.min(), subopt_beta0=by_beta.get(0.0, np.nan),
                              oracle_beta=group["width"].median(),
                              theory_beta=theory["beta"].median(), subopt_theory=theory["suboptimality"].mean()))
    best = pd.DataFrame(best_rows).round(4)

    # 4. Bound check (theory β): fraction of runs with SubOpt ≤ bound, and of covered runs.
    theory = frame[frame["method"].isin(["lcb", "lcb_policy"]) & (frame["beta_rule"] == "theory")]
    bound_check = (theory.assign(holds=theory["suboptimality"] <= theory["bound"] + 1e-12)
                   .groupby(["scenario", "method", "reference"] if "reference" in theory else ["scenario", "method"])
                   .agg(runs=("holds", "size"), covered=("covered", "mean"), bound_holds=("holds", "mean"),
                        mean_subopt=("suboptimality", "mean"), mean_bound=("bound", "mean")).round(4).reset_index())
    tight = fixed[np.isclose(fixed["beta"], beta0)]
    tight = tight.assign(holds=tight["suboptimality"] <= tight["bound"] + 1e-12)
    tight_check = (tight.groupby(["scenario", "method"]).apply(
        lambda g: pd.Series({"covered": g["covered"].mean(), "holds_if_covered": g.loc[g["covered"], "holds"].mean(),
                             "holds_overall": g["holds"].mean()})).round(4).reset_index())

    # 5. Rates: log–log slope of mean SubOpt against n (n ≥ 100).
    rates = (head.groupby(["scenario", "eta", "method"]).apply(_slope).rename("slope").unstack("method"))
    rates = rates[[m for m in METHOD_ORDER if m in rates]].round(2).reset_index()
    coverage = (frame[frame["method"] == "lcb_policy"].groupby(["scenario", "n"])["coverage"].median().unstack("n").round(2)
                .reset_index())

    # 6. The reference ν (zhu_example and partial coverage), lcb methods at the fixed β.
    refs = frame[frame["method"].isin(["lcb", "lcb_policy"]) & (frame["beta_rule"] == "fixed") & np.isclose(frame["beta"], beta0)]
    ref_table = (refs.groupby(["scenario", "eta", "method", "reference"])["suboptimality"].mean().unstack("reference")
                 .reset_index())
    mle_mean = frame[frame["method"] == "mle"].groupby(["scenario", "eta"])["suboptimality"].mean().rename("mle")
    ref_table = ref_table.merge(mle_mean.reset_index(), on=["scenario", "eta"]).round(4)

    # Figures: plots.line_plot on tidy frames (seed means, 95 % t-bands across seeds), scenario × η panels;
    # categorical columns keep the scenarios and methods in the tables' order.
    def ordered(part: pd.DataFrame, methods=METHOD_ORDER) -> pd.DataFrame:
        part = part.assign(scenario=pd.Categorical(part["scenario"], scenarios))
        return part.assign(method=pd.Categorical(part["method"], methods)) if "method" in part else part

    figures = []
    # Figure 1: SubOpt vs n per scenario × η.
    fig = plots.line_plot(ordered(head), x="n", y="suboptimality", hue="method", col="scenario", row="eta", logx=True, logy=True,
                          title=f"SubOpt against n (LCBs at β = {beta0:g}, ν = φ(x,π0))")
    figures.append(ReportFigure("subopt_vs_n", fig, f"Exact SubOpt against n for every method (LCBs at β={beta0:g}, "
                                                     "ν=φ(x,π0)), per scenario (columns) and η (rows); log–log; lines are "
                                                     "seed means, bands 95 % t-intervals across seeds."))

    # Figure 2: β sweep at n_mid and n_max; β = 0 (the MLE) is drawn left of the smallest positive β.
    positive = fixed.loc[fixed["beta"] > 0, "beta"]
    beta_zero_at = positive.min() / 4 if len(positive) else 1.0
    at_n = fixed[fixed["n"].isin([n_mid, n_max])]
    at_n = at_n.assign(beta_with_zero=np.where(at_n["beta"] > 0, at_n["beta"], beta_zero_at))
    fig = plots.line_plot(ordered(at_n), x="beta_with_zero", y="suboptimality", hue="n", style="method", col="scenario", row="eta",
                          logx=True, logy=True, title="β sweep of the LCBs (ν = φ(x,π0))")
    figures.append(ReportFigure("beta_sweep", fig, "Mean SubOpt against β for the pointwise (solid, circles) and "
                                                   f"policy-level (dashed, squares) LCB at n={n_mid} and n={n_max} (colour); "
                                                   f"ν=φ(x,π0); β = 0 (the MLE) is drawn at β = {beta_zero_at:g}, left of "
                                                   "the smallest positive β; bands are 95 % t-intervals across seeds."))

    # Figure 3: bound vs realised SubOpt (lcb_policy, ν = φ(π0); theory β and the fixed β), long form.
    rules = pd.concat([theory.assign(rule="theory"), tight.assign(rule=f"{beta0:g}")], ignore_index=True)
    rules = rules[(rules["method"] == "lcb_policy") & (rules["reference"] == "ref")]
    long = (rules.melt(id_vars=["scenario", "eta", "n", "seed", "rule"], value_vars=["suboptimality", "bound"],
                       var_name="quantity", value_name="subopt_or_bound")
            .rename(columns={"rule": "beta"}))
    long["quantity"] = long["quantity"].map(
        {"suboptimality": "SubOpt", "bound": r"bound $2\beta\|\mathbb{E}_x[\phi(x,\pi^*)-\nu(x)]\|_{\Sigma^{-1}}$"})
    fig = plots.line_plot(ordered(long), x="n", y="subopt_or_bound", hue="beta", style="quantity", col="scenario", row="eta",
                          logx=True, logy=True, title="Option I (lcb_policy): realised SubOpt and the theory's bound")
    figures.append(ReportFigure("bound", fig, "Option I (lcb_policy, ν=φ(x,π0)): realised SubOpt (solid) beside the "
                                              "theory's bound 2β‖E_x[φ(x,π*) − ν(x)]‖_{Σ⁻¹} (dashed), for the theory β "
                                              f"and β={beta0:g} (colour), per scenario (columns) and η (rows); bands are "
                                              "95 % t-intervals across seeds."))

    # Figure 4: the reference ν of the LCBs (fixed β), beside the MLE, per scenario × η.
    with_mle = pd.concat([refs, frame[frame["method"] == "mle"]], ignore_index=True)
    with_mle["ν"] = with_mle["reference"].map({"ref": r"$\phi(x,\pi_0)$", "zero": "$0$"}).fillna("none (MLE)")
    with_mle = ordered(with_mle, methods=("lcb", "lcb_policy", "mle"))  # the MLE last: drawn dotted
    fig = plots.line_plot(with_mle, x="n", y="suboptimality", hue="ν", style="method", col="scenario", row="eta",
                          logx=True, logy=True, title=f"Reference ν of the LCB bonus (β = {beta0:g})")
    figures.append(ReportFigure("reference", fig, f"The reference ν of the LCB bonus (β={beta0:g}): ν = φ(x,π0) vs ν = 0 "
                                                  "(colour), pointwise (solid) and policy-level (dashed), beside MLE "
                                                  "(dotted); bands are 95 % t-intervals across seeds."))

    summary = _summary(head, ratio_all, best, bound_check, tight_check, rates, ref_table, beta0, n_max)
    speed_table = None
    if len(speed):
        speed_table = (speed.groupby(["n_contexts", "n_actions", "eta", "solver"])
                       .agg(seconds=("seconds", "mean"), ratio_to_cvxpy=("ratio_to_cvxpy", "mean"),
                            ratio_to_pointwise=("ratio_to_pointwise", "mean"), value_gap=("value_gap", "max"))
                       .reset_index())
        dual = speed_table[speed_table["solver"] == "lcb_policy (dual)"]
        summary += ("\n- **Speed** (Option I on a batch of 8 problems): the exact dual solver takes "
                    + ", ".join(f"{r.ratio_to_cvxpy:.3f}× cvxpy's time (X={r.n_contexts}, K={r.n_actions}, η={r.eta:g})"
                                for r in dual.itertuples())
                    + f"; largest objective gap between the two {speed_table['value_gap'].max():.1e}.")
    notes = ("- Every SubOpt is exact (closed-form J* on the true reward), averaged over seeds; ± in the tables is one "
             "standard error, the figures' bands are 95 % t-intervals across seeds.\n"
             "- The theory β is the explicit self-normalised radius (`rlbandit.offline.theory_beta`, rule "
             "`self_normalized`, δ = 0.1, B = ‖θ*‖); its 1/κ factor (κ = σ'(2B) ≈ 1/56 for B = 2) makes it very "
             "conservative.\n"
             "- The bound is a theorem only on the event ‖θ̂ − θ*‖_Σ ≤ β (`covered`); for a fixed β the event can fail.\n"
             "- Ensembles: 5 bootstrap members, rewards centred at φ(x,π0); mean − c·std with c = 1.")
    tables = (("Mean SubOpt (± s.e.) by scenario, η and method (LCBs at the fixed β, ν = φ(x,π0))", table),
              ("Geometric-mean ratio SubOpt(method)/SubOpt(MLE) over n (< 1: pessimism helps)", ratio_all),
              ("β sweep: best fixed β, its SubOpt, the MLE (β = 0) and the theory β", best),
              ("Bound check with the theory β: fraction of runs with SubOpt ≤ bound", bound_check),
              (f"Bound check with β = {beta0:g}: only a theorem when covered", tight_check),
              ("Rate: log–log slope of mean SubOpt against n (n ≥ 100)", rates),
              ("Coverage coefficient √n‖E[φ(π*) − φ(π0)]‖_{Σ⁻¹} (median over seeds and η)", coverage),
              ("Reference ν: mean SubOpt of the LCBs with ν = φ(x,π0) vs ν = 0", ref_table))
    if speed_table is not None:
        tables = tables + (("Option I solver speed (best of 3, same batch): ratios to cvxpy and to the pointwise LCB",
                            speed_table.round(5)),)
    return ReportContent(summary=summary, tables=tables, figures=tuple(figures), notes=notes)


def _summary(head, ratio_all, best, bound_check, tight_check, rates, ref_table, beta0, n_max) -> str:
    """The findings in plain words, every number read from the tables."""
    ratio = ratio_all.set_index(["scenario", "eta"])
    means = head.groupby(["scenario", "eta", "method", "n"])["suboptimality"].mean()
    n_values = sorted(head["n"].unique())
    n_mid = n_values[len(n_values) // 2]

    def r(scenario, eta, method):
        return ratio.loc[(scenario, eta), method] if (scenario, eta) in ratio.index else np.nan

    def m(scenario, eta, method, n):
        return means.get((scenario, eta, method, n), np.nan)

    refs = ref_table.set_index(["scenario", "eta", "method"])

    def ref(scenario, eta, method, column):
        return refs.loc[(scenario, eta, method), column] if (scenario, eta, method) in refs.index else np.nan

    intro = ("Offline KL-regularised RLHF from a fixed preference dataset: plain MLE versus pointwise (Option II, "
             "`lcb`) and policy-level (Option I, `lcb_policy`) pessimism and bootstrap reward ensembles, with exact "
             f"SubOpt. Ratios are geometric means over n of SubOpt(method)/SubOpt(MLE); LCBs at β = {beta0:g}, "
             "ν = φ(x,π0) unless said otherwise.")
    lines = [intro, ""]
    lo_eta, hi_eta = min(head["eta"]), max(head["eta"])
    lines.append(
        f"- **Pessimism helps when rarely compared trap actions lie along an unexplored direction** (`partial_coverage`, "
        f"η = {lo_eta:g}): at n = {n_mid} SubOpt {m('partial_coverage', lo_eta, 'mle', n_mid):.3f} (MLE) → "
        f"{m('partial_coverage', lo_eta, 'lcb', n_mid):.3f} (lcb) / {m('partial_coverage', lo_eta, 'lcb_policy', n_mid):.3f} "
        f"(lcb_policy); ratios lcb {r('partial_coverage', lo_eta, 'lcb'):.2f}, lcb_policy "
        f"{r('partial_coverage', lo_eta, 'lcb_policy'):.2f}, ensemble_min {r('partial_coverage', lo_eta, 'ensemble_min'):.2f}, "
        f"ensemble_mean_std {r('partial_coverage', lo_eta, 'ensemble_mean_std'):.2f}. At η = {hi_eta:g} the KL anchor "
        f"already keeps mass off the traps (lcb {r('partial_coverage', hi_eta, 'lcb'):.2f}, lcb_policy "
        f"{r('partial_coverage', hi_eta, 'lcb_policy'):.2f}).")
    lines.append(
        f"- **Zhu, Jordan & Jiao's example: MLE fails at every n** — SubOpt {m('zhu_example', lo_eta, 'mle', n_values[0]):.2f} "
        f"at n = {n_values[0]} and {m('zhu_example', lo_eta, 'mle', n_max):.2f} at n = {n_max} (η = {lo_eta:g}). With "
        f"ν = φ(x,π0) every action gets the same bonus, so `lcb` equals MLE exactly (ratio {r('zhu_example', lo_eta, 'lcb'):.2f}) "
        f"and `lcb_policy` is worse ({r('zhu_example', lo_eta, 'lcb_policy'):.2f}: it mixes a1 and a4 so the unexplored "
        f"direction cancels); with ν = 0 the LCBs reach mean SubOpt {ref('zhu_example', lo_eta, 'lcb', 'zero'):.3f} / "
        f"{ref('zhu_example', lo_eta, 'lcb_policy', 'zero'):.3f} against MLE's {ref('zhu_example', lo_eta, 'lcb', 'mle'):.3f}. "
        "The reference ν is part of the method.")
    lines.append(
        f"- **Pessimism costs when π0 is anti-correlated with the reward** (`coverage_shift`, η = {lo_eta:g}): the best actions "
        f"are rarely compared, so the bonus holds the policy near π0 while MLE extrapolates correctly through the linear "
        f"model — ratios lcb {r('coverage_shift', lo_eta, 'lcb'):.2f}, lcb_policy {r('coverage_shift', lo_eta, 'lcb_policy'):.2f}, "
        f"ensemble_min {r('coverage_shift', lo_eta, 'ensemble_min'):.2f} (with ν = 0 the LCB's mean SubOpt is "
        f"{ref('coverage_shift', lo_eta, 'lcb', 'zero'):.3f} vs MLE {ref('coverage_shift', lo_eta, 'lcb', 'mle'):.3f}).")
    lines.append(
        f"- **Under good coverage pessimism is nearly free for the LCBs** (ratios {r('good_coverage', lo_eta, 'lcb'):.2f}–"
        f"{max(r('good_coverage', e, mm) for e in (lo_eta, hi_eta) for mm in ('lcb', 'lcb_policy')):.2f}) **but not for the "
        f"ensembles** (ensemble_min {r('good_coverage', lo_eta, 'ensemble_min'):.2f}, ensemble_mean_std "
        f"{r('good_coverage', lo_eta, 'ensemble_mean_std'):.2f} at η = {lo_eta:g}): the bootstrap spread is noise, not "
        "coverage.")
    at_max = best[(best["n"] == n_max) & (best["method"] == "lcb_policy")]
    if len(at_max):
        lines.append(
            f"- **Choosing β** (policy-level LCB, n = {n_max}): the best fixed β is "
            + ", ".join(f"{row.best_beta:g} ({row.scenario}, η={row.eta:g})" for row in at_max.itertuples())
            + f". The smallest β for which the theorem applies (the realised ‖θ̂ − θ*‖_Σ) has median "
              f"{at_max['oracle_beta'].min():.1f}–{at_max['oracle_beta'].max():.1f}, and the explicit theory β(δ = 0.1) is "
              f"{at_max['theory_beta'].min():.0f}–{at_max['theory_beta'].max():.0f}: it returns ≈ π0 (SubOpt "
              f"{at_max['subopt_theory'].min():.3g}–{at_max['subopt_theory'].max():.3g}). Use β of order 1 (a third to a half "
              "of the realised radius) where traps are suspected, β → 0 when the data is known to cover the directions π* "
              "needs; never the worst-case constant.")
    if len(bound_check):
        lines.append(
            f"- **The bound holds but is loose**: with the theory β, SubOpt ≤ 2β‖E_x[φ(x,π*) − ν(x)]‖_{{Σ⁻¹}} (Option I) and "
            f"≤ 2β E_x E_{{π*}}‖φ − ν‖_{{Σ⁻¹}} (Option II) in a fraction {bound_check['bound_holds'].min():.3f} of runs "
            f"(minimum over scenario × method × ν; the confidence event held in {bound_check['covered'].min():.3f}), "
            f"with mean bound / mean SubOpt between {(bound_check['mean_bound'] / bound_check['mean_subopt']).min():.0f}× "
            f"and {(bound_check['mean_bound'] / bound_check['mean_subopt']).max():.0f}×. At β = {beta0:g} the event "
            f"rarely holds (≤ {tight_check['covered'].max():.3f} of runs) yet the bound still held in "
            f"{tight_check['holds_overall'].min():.2f}–{tight_check['holds_overall'].max():.2f} of runs.")
    good = rates[rates["scenario"] == "good_coverage"] if "scenario" in rates else rates.iloc[:0]
    if len(good):
        lines.append(
            "- **Rate under good coverage**: log–log slope of SubOpt against n (n ≥ 100) "
            + "; ".join(f"η = {row['eta']:g}: MLE {row['mle']:.2f}, lcb_policy {row['lcb_policy']:.2f}" for _, row in good.iterrows())
            + " — faster than the bound's √d·C*/√n (slope −0.5): near π* the KL-regularised gap is quadratic in the "
              "reward error, so SubOpt ∝ ‖θ̂ − θ*‖² ∝ 1/n (the fast rate of KL-regularised objectives). The coverage "
              "coefficient stays bounded there and grows like √n in Zhu's design (coverage table).")
    return "\n".join(lines)


STUDY = Study(
    name="offline",
    description=("Offline RLHF with pessimism (issue 4): exact SubOpt against n for MLE, pointwise and policy-level LCB "
                 "and reward ensembles, on four coverage scenarios × η ∈ {0.1, 1} with 24 seeds (64 on the Zhu example); a β sweep with the "
                 "theory's β, the coverage coefficient and the theory's bound beside the realised SubOpt."),
    configs=configs,
    run=run,
    report=report,
    tags=("bandit", "offline", "pessimism"),
    symbols={
        "beta_with_zero": r"$\beta$ (leftmost point: $\beta = 0$, the MLE)",
        "subopt_or_bound": r"SubOpt$(\hat\pi)$ and its bound",
    },
)
