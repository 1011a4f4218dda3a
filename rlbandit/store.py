"""The results store of a study: one Parquet file per run and a manifest, all written atomically.

Layout of a results folder (default ``results/STUDY/``, smoke sweeps ``results/smoke/STUDY/``)::

    runs/<run_id>.parquet      the run's tidy frame (only runs that finished)
    manifest/<run_id>.json     the run's record: status (ok | failed), resolved config, seeds,
                               wall time, error + traceback when it failed, package versions,
                               git commit, machine, timestamps
    sweeps/<stamp>.json        one record per sweep invocation (backend, workers, wall time)

Every file is written to a temporary file in the same folder and moved into place with
``os.replace`` (atomic on POSIX), so a sweep that is interrupted (Ctrl-C, a killed worker, a
killed driver) never leaves a half-written result: a run either has its final Parquet *and* an
``ok`` manifest record, or it is not finished and the next sweep runs it again. Leftover
temporary files (``.*.tmp``) are removed when a store is opened.

A run id is a stable hash of the study name and the config's fields (:func:`run_id`), so the same
config always maps to the same files and re-running a sweep skips what is done.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

__all__ = ["run_id", "config_fields", "config_columns", "ResultStore", "environment", "atomic_write_bytes",
           "atomic_write_text", "PACKAGES"]

#: Distributions whose versions each manifest record carries.
PACKAGES = ("rlbandit", "numpy", "scipy", "pandas", "pyarrow", "torch", "cvxpy", "matplotlib", "seaborn",
            "ray", "transformers", "trl")


# ---------------------------------------------------------------------------------------------
# Config → fields → run id
# ---------------------------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    """A JSON-able, canonical form of a config value (nested dataclasses become dicts)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", None) == 0:
        return _plain(value.item())  # numpy scalar
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return repr(value)
        return value
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    raise ValueError(f"config: field value {value!r} of type {type(value).__name__} cannot be stored; "
                     "use numbers, strings, tuples or nested dataclasses")


def config_fields(config: Any) -> dict[str, Any]:
    """The resolved fields of a config dataclass as a JSON-able dict (nested dataclasses nested)."""
    if not (dataclasses.is_dataclass(config) and not isinstance(config, type)):
        raise ValueError(f"config: expected a dataclass instance, got {type(config).__name__}")
    return _plain(config)


def run_id(study: str, config: Any) -> str:
    """Stable id of one run: the first 16 hex digits of SHA-256 over the study name, the config's
    class name and its fields in canonical JSON. Equal configs → equal ids across processes,
    machines and sessions; any field change → a new id."""
    if not isinstance(study, str) or not study:
        raise ValueError(f"study: expected a non-empty study name, got {study!r}")
    payload = json.dumps({"study": study, "config": type(config).__name__, "fields": config_fields(config)},
                         sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def config_columns(fields: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten config fields into scalar columns: nested dataclasses as ``outer.inner``; lists and
    tuples as their JSON text (so they stay hashable for grouping)."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(config_columns(value, prefix=f"{name}."))
        elif isinstance(value, list):
            out[name] = json.dumps(value)
        else:
            out[name] = value
    return out


# ---------------------------------------------------------------------------------------------
# Atomic files
# ---------------------------------------------------------------------------------------------

def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder + fsync + os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _atomic_parquet(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _git_commit() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": dirty if commit else None}


@lru_cache(maxsize=1)
def _versions() -> dict[str, str | None]:
    from importlib import metadata

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _machine() -> dict[str, Any]:
    try:
        load = os.getloadavg()[0]  # 1-minute load average: how busy the (possibly shared) machine was
    except (OSError, AttributeError):
        load = None
    return {"host": platform.node(), "platform": platform.platform(), "processor": platform.processor() or
            platform.machine(), "cpu_count": os.cpu_count(), "load_avg_1m": load}


def environment() -> dict[str, Any]:
    """Provenance of the current process: package versions, git commit (+ dirty flag), machine."""
    return {"versions": dict(_versions()), "git": dict(_git_commit()), "machine": _machine()}


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------------

class ResultStore:
    """The results folder of one study (see the module docstring for the layout)."""

    def __init__(self, root: str | os.PathLike, study: str | None = None):
        self.root = Path(root)
        self.study = study
        self.runs_dir = self.root / "runs"
        self.manifest_dir = self.root / "manifest"
        self.sweeps_dir = self.root / "sweeps"
        for folder in (self.runs_dir, self.manifest_dir, self.sweeps_dir):
            folder.mkdir(parents=True, exist_ok=True)
            for stale in folder.glob(".*.tmp"):  # left by an interrupted write
                stale.unlink(missing_ok=True)

    # -- paths ------------------------------------------------------------------------------
    def result_path(self, rid: str) -> Path:
        return self.runs_dir / f"{rid}.parquet"

    def record_path(self, rid: str) -> Path:
        return self.manifest_dir / f"{rid}.json"

    # -- queries ----------------------------------------------------------------------------
    def record(self, rid: str) -> dict[str, Any] | None:
        path = self.record_path(rid)
        if not path.exists():
            return None
        return json.loads(path.read_text())

    def records(self) -> list[dict[str, Any]]:
        """Every manifest record (finished and failed runs), sorted by run id."""
        return [json.loads(p.read_text()) for p in sorted(self.manifest_dir.glob("*.json"))]

    def is_finished(self, rid: str) -> bool:
        """A run is finished when its Parquet exists and its manifest says ``ok``."""
        record = self.record(rid)
        return record is not None and record.get("status") == "ok" and self.result_path(rid).exists()

    def finished_ids(self) -> set[str]:
        return {r["run_id"] for r in self.records() if r.get("status") == "ok" and self.result_path(r["run_id"]).exists()}

    # -- writes -----------------------------------------------------------------------------
    def write_result(self, rid: str, frame: pd.DataFrame, record: dict[str, Any]) -> None:
        """Store a finished run: the Parquet first, then its ``ok`` record (each atomic), so a
        crash in between leaves the run unfinished, never half-written."""
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(f"frame: a run must return a pandas DataFrame, got {type(frame).__name__}")
        _atomic_parquet(self.result_path(rid), frame.reset_index(drop=True))
        self._write_record(rid, {**record, "status": "ok", "rows": int(len(frame)),
                                 "columns": [str(c) for c in frame.columns]})

    def write_failure(self, rid: str, record: dict[str, Any]) -> None:
        """Record a run that raised (its error and traceback); any older result is removed."""
        self.result_path(rid).unlink(missing_ok=True)
        self._write_record(rid, {**record, "status": "failed"})

    def _write_record(self, rid: str, record: dict[str, Any]) -> None:
        record = {"run_id": rid, "study": self.study, **record}
        atomic_write_text(self.record_path(rid), json.dumps(record, indent=1, sort_keys=True, default=str))

    def write_sweep(self, record: dict[str, Any]) -> Path:
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.sweeps_dir / f"{stamp}.json"
        atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True, default=str))
        return path

    def sweeps(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted(self.sweeps_dir.glob("*.json"))]

    # -- loading ----------------------------------------------------------------------------
    def load(self, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """All finished runs (or those in ``run_ids``) as one frame: each run's rows, a ``run_id``
        column, and its config's fields joined as columns by run id (a field the run's own frame
        already has as a column is not overwritten). Empty frame when nothing is finished."""
        finished = self.finished_ids()
        wanted = sorted(finished if run_ids is None else set(run_ids) & finished)
        frames, configs = [], []
        for rid in wanted:
            frame = pd.read_parquet(self.result_path(rid))
            frame.insert(0, "run_id", rid)
            frames.append(frame)
            configs.append({"run_id": rid, **config_columns(self.record(rid).get("config", {}))})
        if not frames:
            return pd.DataFrame({"run_id": pd.Series(dtype=str)})
        rows = pd.concat(frames, ignore_index=True)
        table = pd.DataFrame(configs)
        table = table[["run_id"] + [c for c in table.columns if c != "run_id" and c not in rows.columns]]
        return rows.merge(table, on="run_id", how="left", validate="many_to_one")
