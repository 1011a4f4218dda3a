"""The runner: the provenance of the study's own repository in run and sweep records, list-valued
configs through a whole sweep and ``load_results``, and the loading names it re-exports."""

from __future__ import annotations

import ast
import json
import inspect
import os
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

    # the same results as an older rlbandit stored them (no schema key, no checksum) load the same
    for parquet in (out / "runs").glob("*.parquet"):
        table = pq.read_table(parquet)
        pq.write_table(table.replace_schema_metadata({b"pandas": table.schema.metadata[b"pandas"]}), parquet)
        assert schema_version(parquet) == 1
        record_path = out / "manifest" / f"{parquet.stem}.json"
        record = json.loads(record_path.read_text())
        del record["sha256"]
        record_path.write_text(json.dumps(record))
    pd.testing.assert_frame_equal(load_results(out), frame)


# ---------------------------------------------------------------------------------------------
# Timing columns: result files are bit-reproducible, timings are stored and loaded beside them
# ---------------------------------------------------------------------------------------------

_TIMED = _STUDY.replace("def run(config):\n    return pd.DataFrame(", """import time


def run(config):
    start = time.perf_counter()
    return pd.DataFrame(""").replace(
    """[config.scale / n for n in config.n_values]})""",
    """[config.scale / n for n in config.n_values]}).assign(
        wall_s=time.perf_counter() - start + time.time() % 1)""").replace(
    "configs, run, report)", "configs, run, report, timing_columns=('wall_s',))")


def test_two_sweeps_of_one_study_store_identical_result_files_and_their_timings_apart(tmp_path):
    path = tmp_path / "timed_study.py"
    path.write_text(_TIMED)
    first, second = tmp_path / "first", tmp_path / "second"
    for out in (first, second):
        assert run_sweep(str(path), out=out, backend="serial", progress=False).ok
    runs = sorted(p.name for p in (first / "runs").glob("*.parquet"))
    assert len(runs) == 2 and runs == sorted(p.name for p in (second / "runs").glob("*.parquet"))
    for name in runs:
        one, two = pd.read_parquet(first / "runs" / name), pd.read_parquet(second / "runs" / name)
        assert "wall_s" not in one.columns
        pd.testing.assert_frame_equal(one, two)
        assert (first / "runs" / name).read_bytes() == (second / "runs" / name).read_bytes()
        assert pd.read_parquet(first / "timings" / name).columns.tolist() == ["wall_s"]
    timed = [load_results(out) for out in (first, second)]
    for frame in timed:
        assert frame["wall_s"].notna().all() and frame.groupby("run_id")["wall_s"].nunique().eq(1).all()
    assert not timed[0]["wall_s"].equals(timed[1]["wall_s"])  # the clocks differ, the results do not
    pd.testing.assert_frame_equal(timed[0].drop(columns="wall_s"), timed[1].drop(columns="wall_s"))


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


# ---------------------------------------------------------------------------------------------
# Resuming over a damaged store, workers, --out, locks, dead drivers, Ray addresses
# ---------------------------------------------------------------------------------------------

def _sizes(tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "sizes_study.py"
    path.write_text(_STUDY)
    return str(path), tmp_path / "results"


def test_a_damaged_result_file_is_re_run_saying_why(tmp_path, capsys):
    study, out = _sizes(tmp_path)
    first = run_sweep(study, out=out, backend="serial", progress=False)
    victim = first.finished[1]
    parquet = out / "runs" / f"{victim}.parquet"
    parquet.write_bytes(parquet.read_bytes()[:50])
    capsys.readouterr()
    again = run_sweep(study, out=out, backend="serial", progress=False)
    assert again.finished == [victim] and again.skipped == 1
    err = capsys.readouterr().err
    assert f"run {victim}: re-running it: result file {parquet}" in err and "not readable Parquet" in err
    assert len(load_results(out)) == 5


def test_a_truncated_manifest_record_names_its_file_is_re_run_and_reported_missing(tmp_path, capsys):
    from rlbandit.reports import write_report

    study, out = _sizes(tmp_path)
    victim = run_sweep(study, out=out, backend="serial", progress=False).finished[0]
    record = out / "manifest" / f"{victim}.json"
    record.write_text(record.read_text()[:60])
    readme = write_report(study, results=out, out=tmp_path / "report")  # lists it as not run, no crash
    assert "1 runs; 1 not run." in readme.read_text()
    assert f"run {victim}: listed as not run: manifest record {record}" in capsys.readouterr().err
    again = run_sweep(study, out=out, backend="serial", progress=False)
    assert again.finished == [victim]
    assert f"run {victim}: re-running it: manifest record {record} is unreadable" in capsys.readouterr().err
    assert json.loads(record.read_text())["status"] == "ok"


def test_workers_are_capped_at_the_runs_and_cores_saying_so(tmp_path, capsys):
    study, out = _sizes(tmp_path)
    summary = run_sweep(study, out=out, backend="serial", progress=False, workers=64)
    assert summary.ok
    cap = min(2, os.cpu_count() or 1)
    assert f"workers: capped 64 at {cap}" in capsys.readouterr().err
    assert ResultStore(out).sweeps()[0]["workers"] == cap


def test_an_out_that_is_a_file_or_read_only_is_a_one_line_error(tmp_path, monkeypatch):
    study, _ = _sizes(tmp_path)
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    with pytest.raises(ValueError, match=rf"--out: {not_a_folder} is a file"):
        run_sweep(study, out=not_a_folder, backend="serial", progress=False)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(runner.tempfile, "mkstemp", refuse)  # a read-only folder, even for root
    with pytest.raises(ValueError, match=rf"--out: cannot write results to {tmp_path / 'ro'} \(Permission denied\)"):
        run_sweep(study, out=tmp_path / "ro", backend="serial", progress=False)


def test_a_run_another_sweep_is_computing_is_skipped_saying_so(tmp_path, capsys):
    import platform

    study, out = _sizes(tmp_path)
    ids = [rid for rid, _ in runner.plan(runner.load_study(study))]
    store = ResultStore(out, "sizes")
    busy = subprocess.Popen(["sleep", "30"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        for rid, pid in zip(ids, (busy.pid, dead.pid)):
            store.lock_path(rid).write_text(json.dumps({"pid": pid, "host": platform.node(), "started": "x"}))
        summary = run_sweep(study, out=out, backend="serial", progress=False)
    finally:
        busy.kill()
        busy.wait()
    assert summary.busy == [ids[0]] and summary.finished == [ids[1]]  # the dead sweep's lock was broken
    assert f"run {ids[0]}: skipped, another sweep (pid {busy.pid}" in capsys.readouterr().err
    assert store.lock_path(ids[0]).exists() and not store.lock_path(ids[1]).exists()  # only its own is released
    store.unlock(ids[0])
    assert run_sweep(study, out=out, backend="serial", progress=False).finished == [ids[0]]
    assert not list((out / "manifest").glob("*.lock"))


_SLOW_STUDY = '''
import os, time
from dataclasses import dataclass

import pandas as pd

from rlbandit.study import ReportContent, Study


@dataclass(frozen=True)
class SlowConfig:
    seed: int = 0


def run(config):
    with open(os.path.join(os.environ["RLB_MARKERS"], f"{os.getpid()}"), "w") as handle:
        handle.write(str(config.seed))
    time.sleep(120)
    return pd.DataFrame({"x": [config.seed]})


def configs(smoke):
    return [SlowConfig(seed=s) for s in range(4)]


STUDY = Study("slow", "Slow runs.", configs, run, lambda frame: ReportContent(summary=""))
'''

_DRIVER = '''
import sys
from rlbandit.runner import run_sweep

if __name__ == "__main__":
    run_sweep(sys.argv[1], out=sys.argv[2], workers=2, backend="process", progress=False)
'''


def test_workers_exit_when_their_driver_is_killed(tmp_path):
    import signal
    import sys
    import time

    (tmp_path / "slow_study.py").write_text(_SLOW_STUDY)
    (tmp_path / "driver.py").write_text(_DRIVER)
    markers = tmp_path / "markers"
    markers.mkdir()
    env = {**os.environ, "RLB_MARKERS": str(markers), "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "slow_study.py"),
                               str(tmp_path / "out")], env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while len(list(markers.iterdir())) < 2 and time.monotonic() < deadline:  # both workers computing
            assert driver.poll() is None, "the driver ended early"
            time.sleep(0.2)
        workers = [int(p.name) for p in markers.iterdir()]
        assert len(workers) == 2
        children = _children(driver.pid)
        assert set(workers) <= set(children)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + 5
        while [pid for pid in children if _running(pid)] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in children if _running(pid)] == []
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (psutil when installed, else /proc)."""
    try:
        import psutil

        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except ImportError:
        found, frontier = [], [pid]
        while frontier:
            parent = frontier.pop()
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == parent:
                    found.append(int(stat.parent.name))
                    frontier.append(int(stat.parent.name))
        return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan that ended waits for init to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def test_an_unreachable_ray_address_fails_within_seconds_naming_it(tmp_path):
    import time

    study, out = _sizes(tmp_path)
    start = time.monotonic()
    with pytest.raises(ValueError, match=r"address: no Ray cluster reachable at 127\.0\.0\.1:1"):
        run_sweep(study, out=out, backend="ray", address="127.0.0.1:1", progress=False)
    assert time.monotonic() - start < 10
    assert not out.exists()  # refused before anything was created
