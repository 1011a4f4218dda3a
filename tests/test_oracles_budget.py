"""The ``oracles`` study's budget bookkeeping (benchmarks.oracles_budget) and fit clock (benchmarks.oracles)."""

import numpy as np
import pandas as pd
import pytest

from benchmarks import oracles_budget as ob


def test_log_interp_measured_interpolated_and_outside():
    b, v = np.array([512.0, 2048.0]), np.array([0.1, 0.025])
    assert ob._log_interp(b, v, 512.0) == (0.1, "measured")
    value, how = ob._log_interp(b, v, 1024.0)
    assert how.startswith("interpolated") and value == pytest.approx(0.05)  # log–log: the geometric mean
    assert np.isnan(ob._log_interp(b, v, 4096.0)[0])  # never extrapolated


def _frame():
    rows = []
    for scenario in ("random", "few_good"):
        for budget in (512, 1024, 2048, 4096):
            for seed in range(2):
                rows.append({"scenario": scenario, "eta": 1.0, "seed": seed, "method": "ppo", "variant": "ppo",
                             "budget_unit": "reward queries", "budget_scope": "training total", "budget": budget,
                             "samples": budget, "step": budget / 64, "kl_to_target": 1.0 / budget,
                             "fit_wall_s": budget * 1e-3, "oracle_wall_s": 1e-4})
                rows.append({**rows[-1], "method": "dpo_offline", "variant": "DPO", "budget_unit": "comparisons",
                             "kl_to_target": 2.0 / budget, "budget": budget * 2, "samples": budget * 2})
    return pd.DataFrame(rows)


def test_matched_table_keeps_units_apart_and_reads_cost_per_budget():
    table = ob.matched_table(_frame())
    ppo = table[(table["method"] == "ppo") & (table["budget"] == 1024)].iloc[0]
    assert ppo["budget unit"] == "reward queries" and ppo["read"] == "measured"
    assert ppo["KL to Gibbs (η = 1)"] == pytest.approx(1 / 1024)
    assert ppo["fit / exact Gibbs call"] == pytest.approx(1024 * 1e-3 / 1e-4)
    dpo = table[(table["method"] == "dpo_offline") & (table["budget"] == 1024)].iloc[0]
    assert dpo["budget unit"] == "comparisons" and dpo["KL to Gibbs (η = 1)"] == pytest.approx(4 / 1024)
    cost = ob.cost_table(_frame())
    assert cost.set_index("method").loc["ppo", "× Gibbs at 4096"] == pytest.approx(4096 * 1e-3 / 1e-4)


def test_the_library_clocks_training_without_its_evaluations():
    """train_policy_gradient and online_dpo record fit_seconds per logged budget: non-decreasing, and
    excluding the evaluations (so it grows by less than the whole run's wall time)."""
    import time

    import rlbandit as rb
    from rlbandit.dpo import DPOConfig, OnlineDPOConfig, online_dpo
    from rlbandit.policy_gradient import PGConfig, train_policy_gradient

    problems = rb.make_problems(rb.ProblemConfig(n_contexts=3, n_actions=5, dim=3), range(2))
    start = time.perf_counter()
    pg = train_policy_gradient(problems, PGConfig(algorithm="rloo", steps=20, log_every=5)).history
    total = time.perf_counter() - start
    per_step = pg.groupby("step")["fit_seconds"].first()
    assert (np.diff(per_step.to_numpy()) >= 0).all() and 0 <= per_step.iloc[-1] < total
    dpo = online_dpo(problems, OnlineDPOConfig(dpo=DPOConfig(policy="log_linear", beta=1.0), iterations=3,
                                               pairs_per_iteration=8)).history
    assert (np.diff(dpo.groupby("iteration")["fit_seconds"].first().to_numpy()) >= 0).all()
