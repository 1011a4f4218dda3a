"""End-to-end smoke tests of the studies: ``rlbandit run STUDY --smoke`` then ``rlbandit report
STUDY --smoke`` in a temporary folder, through the command line.

``rate`` and ``frontier`` always run. Every other ``benchmarks/*.py`` that defines ``STUDY`` has a
parametrised case (its id is the study name, so a failure names the study); those run when
``RLBANDIT_ALL_STUDIES=1`` (their owners' test files already smoke-test them, and together they do
not fit this file's CI budget).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
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
    again = CliRunner().invoke(app, ["run", "rate", "--smoke", "--out", str(tmp_path / "results"),
                                     "--backend", "serial"])
    assert again.exit_code == 0 and "2 already done, 0 finished" in again.output


def test_rate_report_survives_subopt_at_round_off(tmp_path):
    """At η = 0.001 the plug-in policy often equals π* to round-off and SubOpt is 0 or −4e-16: curves
    without a logarithm get no slope (NaN, "—", resamples dropped and counted) instead of crashing
    the report (as `rlbandit report rate` on the full sweep did)."""
    from benchmarks import rate_report

    frame, _ = _run_and_report("rate", tmp_path)
    low = frame["eta"] == frame["eta"].min()
    largest = frame["n"] == frame["n"].max()
    frame.loc[low & largest & (frame["seed"] % 2 == 0), "subopt"] = 0.0
    frame.loc[low & largest & (frame["seed"] % 2 == 1), "subopt"] = -4.4e-16
    content = rate_report.report(frame)
    assert content.summary
    slopes = rate_report.slope_table(frame, n_boot=50)
    row = slopes[slopes["eta"] == frame["eta"].min()].iloc[0]
    assert np.isnan(row["slope large n"]) and row["CI large n"] == "—"
    assert row["large-n rate"] == "undetermined (SubOpt at round-off)"
    curves = np.array([[1.0, 0.5, 0.25], [1.0, 0.0, 0.25], [1.0, -1e-16, 0.25]])
    np.testing.assert_allclose(rate_report._slopes(np.array([1.0, 2.0, 4.0]), curves), [-1.0, np.nan, np.nan])
    assert rate_report._interval_text((-1.1, -0.9, 3, 50)) == "[-1.10, -0.90] (3 of 50 dropped)"


@pytest.mark.slow
def test_readme_main_job_runs_and_reports_the_full_rate_study(tmp_path):
    """The README's first command past setup, `rlbandit run rate && rlbandit report rate`, on the full
    (not smoke) sweep: CI runs only the tests, and this job once landed broken (a report crash
    at η = 0.001 that the smoke sweep does not reach). About 40 s."""
    results, report = tmp_path / "results", tmp_path / "report"
    runner = CliRunner()
    ran = runner.invoke(app, ["run", "rate", "--out", str(results), "--backend", "serial"])
    assert ran.exit_code == 0, ran.output
    reported = runner.invoke(app, ["report", "rate", "--results", str(results), "--out", str(report)])
    assert reported.exit_code == 0, reported.output
    text = (report / "README.md").read_text()
    assert "## Findings" in text and "## Missing runs" not in text  # every declared run finished


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


def test_a_report_with_a_run_missing_lists_it_instead_of_crashing(tmp_path):
    """Issue 16: a store with one run deleted (result, timing file and manifest record) still
    reports; the report names the missing run. The victim is the online study's β × 1 UCB run of
    the β sweep, whose absence once crashed the report (a KeyError in its β paragraph)."""
    results, report = tmp_path / "results", tmp_path / "report"
    runner = CliRunner()
    ran = runner.invoke(app, ["run", "online", "--smoke", "--out", str(results), "--backend", "serial"])
    assert ran.exit_code == 0, ran.output
    planned = plan(load_study("online"), smoke=True)
    swept = {c.scenario for _, c in planned if c.beta_scale != 1.0}
    (victim,) = [rid for rid, c in planned if c.scenario in swept and c.mode == "online" and c.enhancer == "ucb"
                 and c.beta_scale == 1.0]
    store = ResultStore(results, "online")
    for path in (store.result_path(victim), store.timing_path(victim), store.record_path(victim)):
        path.unlink()
    reported = runner.invoke(app, ["report", "online", "--smoke", "--results", str(results), "--out", str(report)])
    assert reported.exit_code == 0, reported.output
    text = (report / "README.md").read_text()
    assert f"{len(planned) - 1} runs (smoke sweep); 1 not run." in text
    missing = text.split("## Missing runs", 1)[1].split("\n## ", 1)[0]
    assert f"`{victim}`" in missing and '"enhancer": "ucb"' in missing and "not run yet" in missing
    assert "β × 1 has no stored run" in text


def test_a_report_that_fails_on_an_incomplete_sweep_names_the_missing_runs(tmp_path):
    from rlbandit.reports import write_report
    from rlbandit.runner import run_sweep

    study = load_study("rate")
    results = tmp_path / "results"
    assert run_sweep(study, smoke=True, out=results, backend="serial", progress=False).ok
    store = ResultStore(results, "rate")
    victim = plan(study, smoke=True)[0][0]
    store.record_path(victim).unlink()

    def fragile(frame):
        raise KeyError("a cell of the missing run")

    fragile_study = dataclasses.replace(study, report=fragile)
    with pytest.raises(ValueError, match=f"1 of 2 runs missing \\({victim}\\); run `rlbandit run rate --smoke`"):
        write_report(fragile_study, results=results, out=tmp_path / "report", smoke=True)


def test_two_smoke_sweeps_of_the_online_study_store_identical_result_files(tmp_path):
    """Issue 16: wall-clock columns (``wall_s``) live in the timing files, so the result files of two
    sweeps of the same configs are byte-identical; the timings load back beside the results."""
    runner = CliRunner()
    outs = [tmp_path / "first", tmp_path / "second"]
    for out in outs:
        ran = runner.invoke(app, ["run", "online", "--smoke", "--out", str(out), "--backend", "serial"])
        assert ran.exit_code == 0, ran.output
    names = sorted(path.name for path in (outs[0] / "runs").glob("*.parquet"))
    assert names and names == sorted(path.name for path in (outs[1] / "runs").glob("*.parquet"))
    for name in names:
        first, second = (pd.read_parquet(out / "runs" / name) for out in outs)
        assert "wall_s" not in first.columns
        pd.testing.assert_frame_equal(first, second)
        assert (outs[0] / "runs" / name).read_bytes() == (outs[1] / "runs" / name).read_bytes()
        assert pd.read_parquet(outs[0] / "timings" / name).columns.tolist() == ["wall_s"]
    loaded = ResultStore(outs[0], "online").load()
    assert loaded["wall_s"].notna().all() and loaded["wall_s"].gt(0).all()
