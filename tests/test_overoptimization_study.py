"""Tests of the ``overoptimization`` study (benchmarks/overoptimization.py and its report module)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from benchmarks import overoptimization as study
from benchmarks import overoptimization_report as rep
from rlbandit.cli import app
from rlbandit.runner import load_study, plan
from rlbandit.store import ResultStore


@pytest.mark.parametrize("form", list(rep.FORMS))
def test_fit_form_recovers_alpha_beta_and_extrapolates(form):
    d = np.linspace(0.05, 3.0, 40)
    gain = rep.predict(d, 1.3, 0.4, form)
    alpha, beta = rep.fit_form(d, gain, form)
    assert alpha == pytest.approx(1.3) and beta == pytest.approx(0.4)
    assert rep.heldout_error(d, gain, form) < 1e-10
    other = next(f for f in rep.FORMS if f != form)
    assert rep.heldout_error(d, gain, other) > 1e-3


def test_hack_draws_are_counted_through_the_public_on_batch_hook():
    config = study.OveroptConfig(proxy="misspecified", optimizer="ppo", n_seeds=2, n_contexts=3, n_actions=6,
                                 dim=3, n_missing=1, n_ample=128, ppo_steps=20, ppo_eta=0.1, hack_rarity=0.0)
    frame = study.run(config)
    for _, g in frame.groupby("seed"):
        g = g.sort_values("step")
        draws = g["hack_draws"].to_numpy()
        assert draws[0] == 0 and (np.diff(draws) >= 0).all() and np.allclose(draws, np.round(draws))
        assert draws[-1] > 0  # hacking actions not made rare: PPO draws them
        # the expected count tracks the realised one (same policies, 20 steps × 128 samples)
        assert g["hack_draws_expected"].iloc[-1] == pytest.approx(draws[-1], rel=0.5)


def test_smoke_run_and_report(tmp_path):
    results, report = tmp_path / "results", tmp_path / "report"
    runner = CliRunner()
    ran = runner.invoke(app, ["run", "overoptimization", "--smoke", "--out", str(results), "--backend", "serial"])
    assert ran.exit_code == 0, ran.output
    ids = [rid for rid, _ in plan(load_study("overoptimization"), smoke=True)]
    frame = ResultStore(results, "overoptimization").load(ids)
    assert frame["sweep"].any() and {"hack_draws", "kl_to_target"} <= set(frame.columns)
    reported = runner.invoke(app, ["report", "overoptimization", "--smoke", "--results", str(results),
                                   "--out", str(report)])
    assert reported.exit_code == 0, reported.output
    text = (report / "README.md").read_text()
    assert "Reproducing the paper" in text and "held-out RMSE" in text and "alpha_beta_scaling.png" in text
    assert "PPO and exploration" in text
