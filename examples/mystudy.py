"""A study of your own, outside ``benchmarks/``: how the ridge λ of the BT MLE changes the plug-in
policy's suboptimality. Run and report it through the command line like a built-in study:

    rlbandit run examples/mystudy.py [--smoke] [--workers N]     # → results/ridge/
    rlbandit report examples/mystudy.py [--smoke]                # → reports/ridge/ (smoke: results/smoke/ridge/report)

The config is a frozen dataclass, ``run`` a module-level function returning a tidy frame, ``report``
returns tables and figures; the runner stores each run once and resumes an interrupted sweep.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

import rlbandit as rb
from rlbandit import plots
from rlbandit.study import ReportContent, ReportFigure, Study


@dataclass(frozen=True)
class RidgeConfig:
    reg: float = 1.0
    eta: float = 0.5
    n_seeds: int = 8
    seed: int = 0


def run(config: RidgeConfig) -> pd.DataFrame:
    problems = rb.make_problems(rb.ProblemConfig(scenario="random", n_contexts=8, n_actions=12, dim=4),
                                range(config.seed, config.seed + config.n_seeds))
    data = problems.sample_preferences(problems.ref_logprobs, problems.ref_logprobs, 1000,
                                       np.random.default_rng(config.seed))
    frames = []
    for n in (50, 200, 1000):
        theta = rb.fit_bt(problems.diffs(data)[:, :n], data.labels[:, :n], config.reg)
        policy = rb.gibbs(np.einsum("sxkd,sd->sxk", problems.features, theta), problems.ref_logprobs, config.eta)
        frames.append(pd.DataFrame({"problem": np.arange(config.n_seeds), "n": n,
                                    "subopt": problems.suboptimality(policy, config.eta)}))
    return pd.concat(frames, ignore_index=True)


def configs(smoke: bool) -> list[RidgeConfig]:
    return [RidgeConfig(reg=reg, n_seeds=2 if smoke else 8) for reg in ((0.1, 10.0) if smoke else (0.01, 0.1, 1, 10))]


def report(frame: pd.DataFrame) -> ReportContent:
    table = frame.groupby(["reg", "n"])["subopt"].median().unstack("n").reset_index()
    figure = plots.line_plot(frame, "n", "subopt", hue="reg", logx=True, logy=True, band="pi")
    best = table.set_index("reg").idxmin()
    return ReportContent(summary=f"Smallest median SubOpt per n at λ = {dict(best)}.",
                         tables=(("Median SubOpt by ridge λ and n", table),),
                         figures=(ReportFigure("subopt_vs_n", figure, "Median SubOpt against n per λ."),))


STUDY = Study(name="ridge", description="How the ridge λ of the BT MLE changes SubOpt of Gibbs(φθ̂).",
              configs=configs, run=run, report=report, symbols={"reg": "ridge λ"})
