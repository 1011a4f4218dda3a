"""End-to-end smoke tests of the studies: ``rlbandit run STUDY --smoke`` then ``rlbandit report
STUDY --smoke`` in a temporary folder, through the command line.

``rate`` and ``frontier`` always run. Every other ``benchmarks/*.py`` that defines ``STUDY`` has a
parametrised case (its id is the study name, so a failure names the study); those run when
``RLBANDIT_ALL_STUDIES=1`` (their owners' test files already smoke-test them, and together they do
not fit this file's CI budget).
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from rlbandit.cli import app
from rlbandit.runner import list_studies, load_study, plan
from rlbandit.store import ResultStore

CORE = ("rate", "frontier")
#: `llm` (and `llm_gpu`, the same study at GPU scale) has its own smoke test in tests/test_llm_study.py;
#: every other study runs here.
OTHERS = [name for name in list_studies() if name not in CORE + ("llm", "llm_gpu")]


def _run_and_report(name, tmp_path):
    results, report = tmp_path / "results", tmp_path / "report"
    runner = CliRunner()
    ran = runner.invoke(app, ["run", name, "--smoke", "--out", str(results), "--backend", "serial"])
    assert ran.exit_code == 0, ran.output
    store = ResultStore(results, name)
    ids = [rid for rid, _ in plan(load_study(name), smoke=True)]
    assert store.finished_ids() == set(ids), f"{name}: unfinished runs"
    reported = runner.invoke(app, ["report", name, "--smoke", "--results", str(results), "--out", str(report)])
    assert reported.exit_code == 0, reported.output
    text = (report / "README.md").read_text()
    for figure in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text):
        assert (report / figure).stat().st_size > 1000, f"{name}: empty figure {figure}"
    assert "## Findings" in text and "## How to regenerate" in text
    return store.load(ids), text


def test_rate_smoke_end_to_end(tmp_path):
    frame, text = _run_and_report("rate", tmp_path)
    assert {"scenario", "dim", "eta", "n", "seed", "subopt", "combined", "kl_to_opt"} <= set(frame.columns)
    assert (frame["subopt"] >= -1e-12).all()
    # Fact 2 of DESIGN: SubOpt(π̂) = η E_x KL(π̂‖π*) for the plug-in Gibbs policy
    pd.testing.assert_series_equal(frame["subopt"], frame["eta"] * frame["kl_to_opt"], check_names=False,
                                   rtol=1e-6, atol=1e-10)
    assert (frame["combined"] >= frame["subopt"] - 1e-12).all()
    assert "Log–log slope of SubOpt against n" in text and "subopt_vs_n_random.png" in text
    # re-running resumes: nothing left to do
    again = CliRunner().invoke(app, ["run", "rate", "--smoke", "--out", str(tmp_path / "results"), "--backend", "serial"])
    assert again.exit_code == 0 and "2 already done, 0 finished" in again.output


def test_frontier_smoke_end_to_end(tmp_path):
    frame, text = _run_and_report("frontier", tmp_path)
    gibbs = frame[frame["kind"] == "gibbs"]
    bon = frame[frame["kind"] == "best_of_n"]
    # the Gibbs policy's J equals η log Z (its optimal value) and best-of-N never beats the frontier
    pd.testing.assert_series_equal(gibbs["value"], gibbs["optimal_value"], check_names=False, rtol=1e-9, atol=1e-12)
    assert (bon["frontier_reward"] - bon["reward"] >= -1e-6).all()
    # every approximate method's point sits on or below the frontier at its own KL
    assert {"ppo", "rloo", "grpo", "dpo", "ipo", "rejection_sampling"} <= set(frame["kind"])
    assert (frame["shortfall"] >= -1e-6).all() and frame["budget_unit"].notna().all()
    assert "100.0%" in text  # every secant slope lies in its η bracket (envelope theorem)
    assert "Reproducing the paper" in text and "pareto.png" in text


def test_cli_list_and_errors(tmp_path):
    runner = CliRunner()
    listed = runner.invoke(app, ["list"])
    assert listed.exit_code == 0 and "rate" in listed.output and "frontier" in listed.output
    missing = runner.invoke(app, ["run", "no_such_study", "--out", str(tmp_path)])
    assert missing.exit_code == 2 and "no registered study" in missing.output
    no_results = runner.invoke(app, ["report", "rate", "--results", str(tmp_path / "nothing")])
    assert no_results.exit_code == 2 and "no results folder" in no_results.output


@pytest.mark.slow
@pytest.mark.parametrize("name", OTHERS, ids=OTHERS)
def test_every_study_smoke(name, tmp_path):
    frame, _ = _run_and_report(name, tmp_path)
    assert len(frame) > 0
