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


_STUDY = '''
from dataclasses import dataclass

import pandas as pd

from rlbandit.study import ReportContent, Study


@dataclass(frozen=True)
class TinyConfig:
    seed: int = 0


def run(config):
    return pd.DataFrame({"x": [config.seed]})


STUDY = Study("tiny", "Tiny.", lambda smoke: [TinyConfig(0), TinyConfig(1)], run,
              lambda frame: ReportContent(summary="tiny"))
'''


def _tiny(tmp_path):
    path = tmp_path / "tiny_study.py"
    path.write_text(_STUDY)
    return str(path)


def test_run_with_an_out_that_is_a_file_is_a_one_line_error(tmp_path):
    study, target = _tiny(tmp_path), tmp_path / "file.txt"
    target.write_text("x")
    result = CliRunner().invoke(app, ["run", study, "--out", str(target), "--backend", "serial"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"error: --out: {target} is a file" in result.output


def test_report_with_an_out_that_is_a_file_is_a_one_line_error(tmp_path):
    study, target = _tiny(tmp_path), tmp_path / "file.txt"
    target.write_text("x")
    assert CliRunner().invoke(app, ["run", study, "--out", str(tmp_path / "r"), "--backend", "serial"]).exit_code == 0
    result = CliRunner().invoke(app, ["report", study, "--results", str(tmp_path / "r"), "--out", str(target)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "error: --out: cannot write the report to" in result.output and "Traceback" not in result.output


def test_run_with_an_unreachable_ray_address_fails_at_once_naming_it(tmp_path):
    result = CliRunner().invoke(app, ["run", _tiny(tmp_path), "--out", str(tmp_path / "r"), "--backend", "ray",
                                      "--address", "127.0.0.1:1"])
    assert result.exit_code == 2
    assert "error: address: no Ray cluster reachable at 127.0.0.1:1" in result.output
