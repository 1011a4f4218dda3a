"""The scripts of examples/ run as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from rlbandit.cli import app

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_experiment_script_prints_its_table_and_writes_its_figure(tmp_path):
    figure = tmp_path / "experiment.png"
    done = subprocess.run([sys.executable, str(EXAMPLES / "experiment.py"), str(figure)], capture_output=True,
                          text=True, timeout=300, env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "log–log slope of SubOpt against n" in done.stdout
    assert figure.stat().st_size > 1000


def test_a_study_of_your_own_through_the_cli(tmp_path):
    results, report = tmp_path / "results", tmp_path / "report"
    study = str(EXAMPLES / "mystudy.py")
    ran = CliRunner().invoke(app, ["run", study, "--smoke", "--out", str(results), "--backend", "serial"])
    assert ran.exit_code == 0, ran.output
    assert "2 finished, 0 failed" in ran.output
    reported = CliRunner().invoke(app, ["report", study, "--smoke", "--results", str(results), "--out", str(report)])
    assert reported.exit_code == 0, reported.output
    text = (report / "README.md").read_text()
    assert "Median SubOpt by ridge λ and n" in text and (report / "subopt_vs_n.png").stat().st_size > 1000


def test_a_custom_method_joins_the_offline_study(tmp_path):
    results, report = tmp_path / "results", tmp_path / "report"
    study = str(EXAMPLES / "custom_method.py")
    ran = CliRunner().invoke(app, ["run", study, "--smoke", "--out", str(results), "--workers", "2"])
    assert ran.exit_code == 0, ran.output
    assert "0 failed" in ran.output
    import rlbandit as rb

    frame = rb.load_results(results)
    assert "shrunk_mle" in set(frame["method"])
    reported = CliRunner().invoke(app, ["report", study, "--smoke", "--results", str(results), "--out", str(report)])
    assert reported.exit_code == 0, reported.output
    assert "shrunk_mle" in (report / "README.md").read_text()
