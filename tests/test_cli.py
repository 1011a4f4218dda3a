"""Smoke test of the command line (typer's CliRunner, small sizes)."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from rlbandit.cli import app, loglog_slope


def test_example_runs_and_prints_the_table_and_slope():
    result = CliRunner().invoke(app, ["example", "--n-contexts", "4", "--n-actions", "5", "--dim", "2",
                                      "--seeds", "3", "--eta", "0.5"])
    assert result.exit_code == 0, result.output
    assert "SubOpt" in result.output
    match = re.search(r"slope of SubOpt against n: (-?\d+\.\d+)", result.output)
    assert match, result.output
    assert float(match.group(1)) < 0  # more data, smaller suboptimality


def test_example_rejects_unknown_scenario_in_one_line():
    result = CliRunner().invoke(app, ["example", "--scenario", "nope", "--seeds", "2"])
    assert result.exit_code == 2 and result.exception is None or isinstance(result.exception, SystemExit)
    assert "error: scenario" in result.output and "Traceback" not in result.output


def test_version():
    from rlbandit import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"rlbandit {__version__}"


def test_unknown_study_suggests_the_nearest_names():
    result = CliRunner().invoke(app, ["run", "ofline", "--smoke"])
    assert result.exit_code == 2
    assert "did you mean offline" in result.output


def test_loglog_slope_exact_power_law():
    assert abs(loglog_slope([10, 100, 1000], [1.0, 0.1, 0.01]) + 1.0) < 1e-12


def test_help_texts_keep_their_defaults():
    result = CliRunner().invoke(app, ["run", "--help"])
    assert result.exit_code == 0
    assert "[default: CPU count]" in result.output and "[default: results/STUDY" in result.output
