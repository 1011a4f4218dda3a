"""The results store: list-valued config columns, the schema version of stored frames (and
reading stores written before it), and the git provenance of a path (:func:`git_state`)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlbandit.store import (SCHEMA_KEY, SCHEMA_VERSION, ResultStore, config_columns, config_fields, environment,
                            git_state, run_id, schema_version)


@dataclass(frozen=True)
class Inner:
    depth: int = 2
    widths: tuple[int, ...] = (8, 16)


@dataclass(frozen=True)
class ListConfig:
    scale: float = 1.0
    n_values: tuple[int, ...] = (25, 50)
    grid: tuple[tuple[float, ...], ...] = ((0.1, 0.2), (1.0,))
    inner: Inner = Inner()
    seed: int = 0


@dataclass(frozen=True)
class Layer:
    width: int


@dataclass(frozen=True)
class DictListConfig:
    layers: tuple[Layer, ...] = (Layer(4), Layer(8))


def _store_runs(store: ResultStore, configs, *, versioned: bool = True) -> list[str]:
    """Store one small run per config; ``versioned=False`` writes the Parquet as rlbandit did
    before schema versions (plain ``DataFrame.to_parquet``, no metadata key)."""
    ids = []
    for i, config in enumerate(configs):
        rid = run_id("lists", config)
        frame = pd.DataFrame({"step": [0, 1, 2], "value": [float(i), i + 0.5, i + 0.25]})
        store.write_result(rid, frame, {"config": config_fields(config)})
        if not versioned:  # as an older rlbandit stored it: no schema key, no checksum in the record
            frame.to_parquet(store.result_path(rid), index=False)
            _edit_record(store, rid, sha256=None)
        ids.append(rid)
    return ids


def _edit_record(store: ResultStore, rid: str, **changes) -> None:
    """Change fields of a stored record (None removes the field)."""
    record = json.loads(store.record_path(rid).read_text())
    record.update(changes)
    record = {k: v for k, v in record.items() if v is not None}
    store.record_path(rid).write_text(json.dumps(record))


# ---------------------------------------------------------------------------------------------
# config_columns
# ---------------------------------------------------------------------------------------------

def test_config_columns_keeps_lists_as_tuples_and_flattens_dataclasses():
    columns = config_columns(config_fields(ListConfig()))
    assert columns == {"scale": 1.0, "n_values": (25, 50), "grid": ((0.1, 0.2), (1.0,)), "inner.depth": 2,
                       "inner.widths": (8, 16), "seed": 0}
    assert all(type(columns[k]) is tuple for k in ("n_values", "grid", "inner.widths"))
    hash(tuple(columns.values()))  # every column value is hashable: groupby and drop_duplicates work


def test_config_columns_keeps_json_for_lists_of_dicts():
    """A tuple of dataclasses has no hashable plain form: it stays JSON text, which round-trips."""
    columns = config_columns(config_fields(DictListConfig()))
    assert columns == {"layers": '[{"width": 4}, {"width": 8}]'}
    assert json.loads(columns["layers"]) == config_fields(DictListConfig())["layers"]


# ---------------------------------------------------------------------------------------------
# List-valued configs in the loaded frame
# ---------------------------------------------------------------------------------------------

def test_load_joins_list_valued_config_fields_as_tuples(tmp_path):
    store = ResultStore(tmp_path, "lists")
    configs = [ListConfig(n_values=(25, 50)), ListConfig(n_values=(25, 50, 100), seed=1),
               ListConfig(n_values=(25, 50), seed=2)]
    ids = _store_runs(store, configs)
    frame = store.load()
    assert len(frame) == 9 and set(frame["run_id"]) == set(ids)
    by_run = frame.groupby("run_id")["n_values"].first()
    assert by_run[ids[0]] == (25, 50) and by_run[ids[1]] == (25, 50, 100)
    assert frame["grid"].iloc[0] == ((0.1, 0.2), (1.0,)) and frame["inner.widths"].iloc[0] == (8, 16)
    # the consumers of config columns: grouping, de-duplicating, sets and merging on them
    counts = frame.groupby("n_values")["run_id"].nunique()
    assert counts.to_dict() == {(25, 50): 2, (25, 50, 100): 1}
    assert len(frame[["n_values", "seed"]].drop_duplicates()) == 3
    assert set(frame["n_values"]) == {(25, 50), (25, 50, 100)}
    labels = pd.DataFrame({"n_values": [(25, 50), (25, 50, 100)], "label": ["short", "long"]})
    assert frame.merge(labels, on="n_values")["label"].value_counts().to_dict() == {"short": 6, "long": 3}


def test_list_columns_of_the_run_frame_load_as_tuples(tmp_path):
    """A study's own list column (Parquet list type) comes back as tuples, not numpy arrays."""
    store = ResultStore(tmp_path, "lists")
    frame = pd.DataFrame({"step": [0, 1], "path": [[1, 2], [3]], "nested": [[[1.0], [2.0, 3.0]], []]})
    store.write_result("abc", frame, {"config": config_fields(ListConfig())})
    assert pa.types.is_list(pq.read_schema(store.result_path("abc")).field("path").type)  # a real list column
    loaded = store.load()
    assert loaded["path"].tolist() == [(1, 2), (3,)]
    assert loaded["nested"].tolist() == [((1.0,), (2.0, 3.0)), ()]


# ---------------------------------------------------------------------------------------------
# Schema version
# ---------------------------------------------------------------------------------------------

def test_stored_frames_carry_the_schema_version(tmp_path):
    store = ResultStore(tmp_path, "lists")
    (rid,) = _store_runs(store, [ListConfig()])
    path = store.result_path(rid)
    assert SCHEMA_VERSION == 2
    assert pq.read_schema(path).metadata[SCHEMA_KEY.encode()] == b"2"
    assert schema_version(path) == SCHEMA_VERSION
    assert store.record(rid)[SCHEMA_KEY] == SCHEMA_VERSION
    assert "pandas" in {k.decode() for k in pq.read_schema(path).metadata}  # pandas' own metadata is kept
    frame = store.load()
    assert frame.attrs[SCHEMA_KEY] == SCHEMA_VERSION
    assert ResultStore(tmp_path / "empty").load().attrs[SCHEMA_KEY] == SCHEMA_VERSION


def test_a_store_written_before_schema_versions_loads_like_a_new_one(tmp_path):
    configs = [ListConfig(), ListConfig(n_values=(5, 10, 20), seed=1)]
    old, new = ResultStore(tmp_path / "old", "lists"), ResultStore(tmp_path / "new", "lists")
    old_ids = _store_runs(old, configs, versioned=False)
    assert _store_runs(new, configs) == old_ids
    assert all(schema_version(old.result_path(rid)) == 1 for rid in old_ids)
    old_frame, new_frame = old.load(), new.load()
    pd.testing.assert_frame_equal(old_frame, new_frame)
    assert old_frame.attrs == new_frame.attrs == {SCHEMA_KEY: SCHEMA_VERSION}
    assert sorted(old_frame.groupby("run_id")["n_values"].first()) == [(5, 10, 20), (25, 50)]


def _restamp(store: ResultStore, rid: str, value: bytes) -> None:
    """Rewrite a run's schema key as another rlbandit would have written it (its record's checksum too)."""
    path = store.result_path(rid)
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({**table.schema.metadata, SCHEMA_KEY.encode(): value}), path)
    _edit_record(store, rid, sha256=hashlib.sha256(path.read_bytes()).hexdigest())


def test_a_newer_schema_version_is_refused_naming_the_file(tmp_path):
    store = ResultStore(tmp_path, "lists")
    first, second = _store_runs(store, [ListConfig(), ListConfig(seed=1)])
    _restamp(store, second, str(SCHEMA_VERSION + 1).encode())
    assert schema_version(store.result_path(second)) == SCHEMA_VERSION + 1
    with pytest.raises(ValueError, match=rf"{second}\.parquet.*{SCHEMA_KEY} {SCHEMA_VERSION + 1}.*upgrade"):
        store.load()
    assert store.load([first])["run_id"].unique().tolist() == [first]  # the other runs still load


def test_a_malformed_schema_version_is_refused_naming_the_file(tmp_path):
    store = ResultStore(tmp_path, "lists")
    (rid,) = _store_runs(store, [ListConfig()])
    _restamp(store, rid, b"two")
    with pytest.raises(ValueError, match=rf"{rid}\.parquet has a malformed {SCHEMA_KEY}"):
        schema_version(store.result_path(rid))
    with pytest.raises(ValueError, match=rf"{rid}\.parquet"):
        store.load()


# ---------------------------------------------------------------------------------------------
# Git provenance
# ---------------------------------------------------------------------------------------------

def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=folder,
                          check=True, capture_output=True, text=True).stdout.strip()


def make_repo(folder: Path, files: dict[str, str]) -> str:
    """A git repository at ``folder`` with ``files`` committed; returns the commit."""
    folder.mkdir(parents=True, exist_ok=True)
    _git(folder, "init", "-q")
    for name, text in files.items():
        (folder / name).write_text(text)
    _git(folder, "add", *files)
    _git(folder, "commit", "-q", "-m", "first")
    return _git(folder, "rev-parse", "HEAD")


def test_git_state_of_a_file_in_a_repository(tmp_path):
    repo = tmp_path / "repo"
    commit = make_repo(repo, {"study.py": "X = 1\n"})
    study = repo / "study.py"
    assert git_state(study) == {"commit": commit, "dirty": False, "root": str(repo.resolve())}
    assert git_state(repo) == git_state(study)
    (repo / "notes.txt").write_text("an untracked file elsewhere does not make the repository dirty")
    assert git_state(study)["dirty"] is False
    study.write_text("X = 2\n")
    assert git_state(study) == {"commit": commit, "dirty": True, "root": str(repo.resolve())}
    _git(repo, "commit", "-q", "-am", "second")
    state = git_state(study)
    assert state["commit"] == _git(repo, "rev-parse", "HEAD") != commit and state["dirty"] is False
    untracked = repo / "other_study.py"
    untracked.write_text("Y = 1\n")
    assert git_state(untracked)["dirty"] is True  # no commit holds this file's code


def test_git_state_outside_a_repository_is_null(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # git must not find a repository above
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "study.py").write_text("X = 1\n")
    null = {"commit": None, "dirty": None, "root": None}
    assert git_state(outside / "study.py") == null
    assert git_state(tmp_path / "no such file.py") == null
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    _git(fresh, "init", "-q")
    assert git_state(fresh) == {"commit": None, "dirty": None, "root": str(fresh.resolve())}


def test_git_state_ignores_a_git_dir_pointing_elsewhere(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    commit = make_repo(repo, {"study.py": "X = 1\n"})
    other = tmp_path / "other"
    make_repo(other, {"a.txt": "a"})
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    assert git_state(repo / "study.py")["commit"] == commit


def test_environment_records_the_toolkits_repository():
    git = environment()["git"]
    assert set(git) == {"commit", "dirty", "root"}
    toolkit = Path(__file__).resolve().parent.parent
    if (toolkit / ".git").exists():
        assert git["root"] == str(toolkit) and len(git["commit"]) == 40


# ---------------------------------------------------------------------------------------------
# Validation on resume: result files, manifest records, run locks
# ---------------------------------------------------------------------------------------------

def test_an_ok_record_states_the_checksum_and_row_count_of_its_file(tmp_path):
    store = ResultStore(tmp_path, "lists")
    (rid,) = _store_runs(store, [ListConfig()])
    record = store.record(rid)
    assert record["rows"] == 3
    assert record["sha256"] == hashlib.sha256(store.result_path(rid).read_bytes()).hexdigest()
    assert store.check(record) is None and store.finished_ids() == {rid} and store.problems == {}


@pytest.mark.parametrize("damage", ["truncated", "empty", "foreign", "foreign_same_rows"])
def test_a_damaged_result_file_is_not_finished_and_says_why(tmp_path, damage):
    store = ResultStore(tmp_path, "lists")
    first, second = _store_runs(store, [ListConfig(), ListConfig(seed=1)])
    path = store.result_path(second)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "foreign":
        pd.DataFrame({"other": range(7)}).to_parquet(path)
    else:  # readable, same row count: only the checksum tells
        pd.DataFrame({"step": [0, 1, 2], "value": [9.0, 9.0, 9.0]}).to_parquet(path, index=False)
    fresh = ResultStore(tmp_path, "lists")
    assert fresh.finished_ids() == {first}
    assert not fresh.is_finished(second) and fresh.is_finished(first)
    reason = {"truncated": "not readable Parquet", "empty": "not readable Parquet", "foreign": "has 7 rows",
              "foreign_same_rows": "checksum"}[damage]
    assert str(path) in fresh.problems[second] and reason in fresh.problems[second]
    assert fresh.load()["run_id"].unique().tolist() == [first]  # loading skips it instead of failing


def test_a_store_without_checksums_is_validated_by_readability_and_row_count(tmp_path):
    store = ResultStore(tmp_path, "lists")
    first, second = _store_runs(store, [ListConfig(), ListConfig(seed=1)], versioned=False)
    assert "sha256" not in store.record(first)
    assert store.finished_ids() == {first, second}
    pd.DataFrame({"step": [0, 1]}).to_parquet(store.result_path(second))
    assert store.finished_ids() == {first} and "has 2 rows" in store.problems[second]


def test_a_truncated_manifest_record_counts_as_no_record_naming_its_file(tmp_path):
    store = ResultStore(tmp_path, "lists")
    first, second = _store_runs(store, [ListConfig(), ListConfig(seed=1)])
    path = store.record_path(second)
    path.write_text(path.read_text()[:40])
    fresh = ResultStore(tmp_path, "lists")
    assert [r["run_id"] for r in fresh.records()] == [first]
    assert fresh.record(second) is None and fresh.finished_ids() == {first}
    assert str(path) in fresh.problems[second] and "JSONDecodeError" in fresh.problems[second]
    assert fresh.load()["run_id"].unique().tolist() == [first]


def test_a_run_lock_is_exclusive_and_a_dead_holder_is_broken(tmp_path):
    import os
    import platform

    store, other = ResultStore(tmp_path, "lists"), ResultStore(tmp_path, "lists")
    assert store.lock("abc") is None
    assert str(os.getpid()) in other.lock("abc")  # held: says by whom
    store.unlock("abc")
    assert not store.lock_path("abc").exists() and other.lock("abc") is None
    other.unlock("abc")
    dead = subprocess.Popen(["true"])
    dead.wait()
    store.lock_path("abc").write_text(json.dumps({"pid": dead.pid, "host": platform.node(), "started": "x"}))
    assert store.lock("abc") is None  # its process is gone: broken and taken
    assert json.loads(store.lock_path("abc").read_text())["pid"] == os.getpid()


# ---------------------------------------------------------------------------------------------
# Timing columns: stored apart, so result files are bit-reproducible
# ---------------------------------------------------------------------------------------------

def _timed_frame(wall: float) -> pd.DataFrame:
    return pd.DataFrame({"step": [0, 1, 2], "value": [0.5, 0.25, 0.125], "wall_s": [wall, wall + 1, wall + 2]})


def test_timing_columns_go_to_their_own_file_and_load_joins_them_back_row_by_row(tmp_path):
    store = ResultStore(tmp_path, "lists")
    rid = run_id("lists", ListConfig())
    store.write_result(rid, _timed_frame(3.0), {"config": config_fields(ListConfig())}, ("wall_s", "absent"))
    assert pd.read_parquet(store.result_path(rid)).columns.tolist() == ["step", "value"]
    assert pd.read_parquet(store.timing_path(rid))["wall_s"].tolist() == [3.0, 4.0, 5.0]
    record = store.record(rid)
    assert record["timing_columns"] == ["wall_s"] and record["timing_rows"] == 3
    assert record["timing_sha256"] == hashlib.sha256(store.timing_path(rid).read_bytes()).hexdigest()
    loaded = store.load()
    assert loaded[["step", "value", "wall_s"]].values.tolist() == _timed_frame(3.0).values.tolist()
    assert "wall_s" not in store.load(timings=False).columns


def test_two_runs_differing_only_in_their_timings_store_byte_identical_result_files(tmp_path):
    first, second = ResultStore(tmp_path / "a", "lists"), ResultStore(tmp_path / "b", "lists")
    rid = run_id("lists", ListConfig())
    for store, wall in ((first, 1.0), (second, 7.5)):
        store.write_result(rid, _timed_frame(wall), {"config": config_fields(ListConfig())}, ("wall_s",))
    assert first.result_path(rid).read_bytes() == second.result_path(rid).read_bytes()
    assert first.timing_path(rid).read_bytes() != second.timing_path(rid).read_bytes()


@pytest.mark.parametrize("damage", ["missing", "truncated", "other_rows"])
def test_a_damaged_timing_file_makes_its_run_unfinished_naming_the_file(tmp_path, damage):
    store = ResultStore(tmp_path, "lists")
    rid = run_id("lists", ListConfig())
    store.write_result(rid, _timed_frame(1.0), {"config": config_fields(ListConfig())}, ("wall_s",))
    path = store.timing_path(rid)
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:20])
    else:
        pd.DataFrame({"wall_s": [1.0]}).to_parquet(path, index=False)
    fresh = ResultStore(tmp_path, "lists")
    assert fresh.finished_ids() == set()
    assert str(path) in fresh.problems[rid] and "timing file" in fresh.problems[rid]


def test_a_failed_run_removes_its_old_timing_file(tmp_path):
    store = ResultStore(tmp_path, "lists")
    rid = run_id("lists", ListConfig())
    store.write_result(rid, _timed_frame(1.0), {"config": config_fields(ListConfig())}, ("wall_s",))
    store.write_failure(rid, {"error": "boom"})
    assert not store.timing_path(rid).exists() and not store.result_path(rid).exists()
