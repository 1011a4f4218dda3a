"""An experiment in a few lines: SubOpt of the plug-in policy Gibbs(φθ̂_MLE) against the number of
comparisons n, at two KL coefficients, over 16 seeded problems at once, as a tidy frame and a plot.

    python examples/experiment.py [figure.png]
"""

import sys

import numpy as np
import pandas as pd
import seaborn as sns

import rlbandit as rb

problems = rb.make_problems(rb.ProblemConfig(scenario="random", n_contexts=10, n_actions=20, dim=4), range(16))
rng = np.random.default_rng(0)
data = problems.sample_preferences(problems.ref_logprobs, problems.ref_logprobs, 3000, rng)  # π0 vs π0, BT labels
diffs = problems.diffs(data)  # z = φ(x, a¹) − φ(x, a²), shape (seeds, n, d)

rows = []
for n in (30, 100, 300, 1000, 3000):
    theta_hat = rb.fit_bt(diffs[:, :n], data.labels[:, :n], reg=1.0)  # one exact MLE per seed
    rewards = np.einsum("sxkd,sd->sxk", problems.features, theta_hat)
    for eta in (0.1, 1.0):
        policy = rb.gibbs(rewards, problems.ref_logprobs, eta)  # log O(φθ̂, η, π0)
        subopt = problems.suboptimality(policy, eta)  # J*(π*) − J*(π̂), exact, one per seed
        rows += [{"seed": s, "n": n, "eta": eta, "subopt": v} for s, v in enumerate(subopt)]
frame = pd.DataFrame(rows)  # tidy: one row per seed × n × η

print(frame.groupby(["eta", "n"])["subopt"].median().unstack("n").to_string(float_format="%.2e"))
slopes = {eta: np.polyfit(np.log(g["n"]), np.log(g["subopt"]), 1)[0] for eta, g in frame.groupby("eta")}
print("log–log slope of SubOpt against n:", {float(eta): round(float(s), 2) for eta, s in slopes.items()})

grid = sns.relplot(frame, x="n", y="subopt", hue="eta", kind="line", errorbar=("pi", 50), estimator="median",
                   palette="colorblind", height=3.2, aspect=1.3)
grid.set(xscale="log", yscale="log", xlabel="comparisons n", ylabel="SubOpt(Gibbs(φθ̂))")
grid.savefig(sys.argv[1] if len(sys.argv) > 1 else "experiment.png", dpi=120)
