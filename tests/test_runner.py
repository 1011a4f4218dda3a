"""The runner: the provenance of the study's own repository in run and sweep records, list-valued
configs through a whole sweep and ``load_results``, and the loading names it re-exports."""

from __future__ import annotations

import ast
import inspect
import subprocess
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import rlbandit
from rlbandit import loading, runner
from rlbandit.runner import load_results, run_sweep
from rlbandit.store import SCHEMA_KEY, ResultStore, schema_version

_STUDY = '''
from dataclasses import dataclass

import pandas as pd

from rlbandit.study import ReportContent, Study


@dataclass(frozen=True)
class SizesConfig:
    scale: float = 1.0
    n_values: tuple[int, ...] = (25, 50)
    seed: int = 0


def run(config):
    return pd.DataFrame({"n": list(config.n_values), "value": [config.scale / n for n in config.n_values]})


def report(frame):
    return ReportContent(summary=f"{frame['run_id'].nunique()} runs.")


def configs(smoke):
    return [SizesConfig(scale=1.0, n_values=(25, 50)), SizesConfig(scale=2.0, n_values=(25, 50, 100), seed=1)]


STUDY = Study("sizes", "A study with a tuple-valued config field.", configs, run, report)
'''


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=folder,
                          check=True, capture_output=True, text=True).stdout.strip()


def _study_repo(folder: Path) -> tuple[Path, str]:
    """The study file committed in a fresh git repository; returns the file and the commit."""
    folder.mkdir(parents=True)
    _git(folder, "init", "-q")
    path = folder / "sizes_study.py"
    path.write_text(_STUDY)
    _git(folder, "add", path.name)
    _git(folder, "commit", "-q", "-m", "the study")
    return path, _git(folder, "rev-parse", "HEAD")


def _records(out: Path) -> tuple[list[dict], list[dict]]:
    store = ResultStore(out)
    return store.records(), store.sweeps()


# ---------------------------------------------------------------------------------------------
# Provenance of the study's repository
# ---------------------------------------------------------------------------------------------

def test_sweep_records_the_commit_of_the_studys_own_repository(tmp_path):
    path, commit = _study_repo(tmp_path / "my_research")
    root = str((tmp_path / "my_research").resolve())
    toolkit = rlbandit.store.environment()["git"]

    clean = run_sweep(str(path), out=tmp_path / "clean", backend="serial", progress=False)
    assert clean.ok and len(clean.finished) == 2
    records, sweeps = _records(tmp_path / "clean")
    assert len(records) == 2 and len(sweeps) == 1
    for record in records + sweeps:
        assert record["study_git"] == {"commit": commit, "dirty": False, "root": root}
        assert Path(record["study_source"]).resolve() == path.resolve()
        assert record["git"] == toolkit  # the toolkit's own commit, under its own key
    assert toolkit["root"] != root

    path.write_text(_STUDY + "\n# an uncommitted edit\n")
    run_sweep(str(path), out=tmp_path / "dirty", backend="serial", progress=False)
    records, sweeps = _records(tmp_path / "dirty")
    assert [r["study_git"] for r in records + sweeps] == [{"commit": commit, "dirty": True, "root": root}] * 3


def test_a_study_outside_any_repository_records_a_null_commit(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # git must not find a repository above
    folder = tmp_path / "loose"
    folder.mkdir()
    path = folder / "loose_study.py"
    path.write_text(_STUDY)
    assert run_sweep(str(path), out=tmp_path / "out", backend="serial", progress=False).ok
    records, sweeps = _records(tmp_path / "out")
    assert [r["study_git"] for r in records + sweeps] == [{"commit": None, "dirty": None, "root": None}] * 3
    assert all(r["git"]["root"] == records[0]["git"]["root"] for r in records + sweeps)


def test_study_provenance_is_read_afresh(tmp_path):
    path, commit = _study_repo(tmp_path / "repo")
    study = runner.load_study(str(path))
    assert runner.study_provenance(study)["study_git"]["dirty"] is False
    path.write_text(_STUDY + "\n# edited\n")
    assert runner.study_provenance(study)["study_git"] == {"commit": commit, "dirty": True,
                                                           "root": str((tmp_path / "repo").resolve())}


# ---------------------------------------------------------------------------------------------
# List-valued configs through a sweep
# ---------------------------------------------------------------------------------------------

def test_load_results_gives_list_valued_configs_as_tuples_for_old_and_new_stores(tmp_path):
    path = tmp_path / "sizes_study.py"
    path.write_text(_STUDY)
    out = tmp_path / "results"
    assert run_sweep(str(path), out=out, backend="serial", progress=False).ok
    frame = load_results(out)
    assert frame.attrs[SCHEMA_KEY] == 2 and len(frame) == 5
    by_scale = frame.groupby("scale")["n_values"].first().to_dict()
    assert by_scale == {1.0: (25, 50), 2.0: (25, 50, 100)}
    assert frame.groupby("n_values")["n"].apply(list).to_dict() == {(25, 50): [25, 50], (25, 50, 100): [25, 50, 100]}

    # the same results as an older rlbandit stored them (no schema key) load the same
    for parquet in (out / "runs").glob("*.parquet"):
        table = pq.read_table(parquet)
        pq.write_table(table.replace_schema_metadata({b"pandas": table.schema.metadata[b"pandas"]}), parquet)
        assert schema_version(parquet) == 1
    pd.testing.assert_frame_equal(load_results(out), frame)


# ---------------------------------------------------------------------------------------------
# The split: loading names stay importable from rlbandit.runner
# ---------------------------------------------------------------------------------------------

def test_runner_re_exports_the_loading_names():
    for name in loading.__all__:
        assert getattr(runner, name) is getattr(loading, name), name
    assert set(loading.__all__) - {"loaded_from"} <= set(runner.__all__)
    assert rlbandit.load_results is loading.load_results


@pytest.mark.parametrize("module", [runner, loading, rlbandit.store])
def test_no_private_name_is_imported_across_modules(module):
    """House rule: a helper another module needs is public."""
    tree = ast.parse(inspect.getsource(module))
    private = [f"{node.module}.{alias.name}" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               and (node.module or "").startswith("rlbandit") for alias in node.names if alias.name.startswith("_")]
    assert private == []
