"""The results store of a study: one Parquet file per run and a manifest, all written atomically.

Layout of a results folder (default ``results/STUDY/``, smoke sweeps ``results/smoke/STUDY/``)::

    runs/<run_id>.parquet      the run's tidy frame (only runs that finished), its schema version
                               in the Parquet metadata key ``rlbandit_schema``; bit-reproducible:
                               the same config gives the same file
    timings/<run_id>.parquet   the run's timing columns (the study's ``timing_columns``: wall-clock
                               measurements, which differ between two runs of one config), row for
                               row beside the result file; only runs that have such columns
    manifest/<run_id>.json     the run's record: status (ok | failed), resolved config, seeds,
                               wall time, error + traceback when it failed, package versions,
                               git commits (``git``: the toolkit's; ``study_git``: the study's
                               repository), machine, timestamps
    sweeps/<stamp>.json        one record per sweep invocation (backend, workers, wall time)

Every file is written to a temporary file in the same folder and moved into place with
``os.replace`` (atomic on POSIX), so a sweep that is interrupted (Ctrl-C, a killed worker, a
killed driver) never leaves a half-written result: a run either has its final Parquet *and* an
``ok`` manifest record, or it is not finished and the next sweep runs it again. Leftover
temporary files (``.*.tmp``) are removed when a store is opened. An ``ok`` record states its
Parquet's row count and SHA-256 (``sha256``; stores written before it have none) — and its timing
file's (``timing_rows``, ``timing_sha256``, ``timing_columns``) — and a run counts as finished only
when its files are readable Parquet with those row counts and checksums (:meth:`ResultStore.check`);
a manifest record that is not valid JSON counts as no record. Why a run is not finished is kept
in :attr:`ResultStore.problems` (run id → reason naming the file).
While a sweep computes a run, ``manifest/<run_id>.lock`` (created with ``O_CREAT|O_EXCL``, holding
the pid and host) keeps another sweep on the same folder from computing it too
(:meth:`ResultStore.lock`); the lock of a dead process on this host is broken.

A run id is a stable hash of the study name and the config's fields (:func:`run_id`), so the same
config always maps to the same files and re-running a sweep skips what is done.

Schema versions of the stored frame (:data:`SCHEMA_VERSION`; a Parquet file without the key is
version 1). A run's Parquet holds the run's own rows only; :meth:`ResultStore.load` joins the
config from the manifest and the timing columns back (row by row), so a version describes the
frame ``load`` returns:

1. list- and tuple-valued config fields joined as their JSON text (``'[25, 50]'``);
2. they are joined as tuples (``(25, 50)``), and list columns of the run's own frame load as
   tuples too (Parquet list type; pyarrow would give numpy arrays). Tuples, not lists, because
   they are hashable: ``groupby``, ``drop_duplicates`` and ``set`` keep working on the column.
   A version-1 store loads exactly like a version-2 one (its manifest holds the config as JSON
   lists, converted the same way).

``load`` refuses a file of a newer version than this code knows, naming the file.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import tempfile
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from rlbandit.provenance import PACKAGES, environment, git_state, now

__all__ = ["run_id", "config_fields", "config_columns", "ResultStore", "environment", "atomic_write_bytes",
           "atomic_write_text", "PACKAGES", "SCHEMA_VERSION", "SCHEMA_KEY", "schema_version", "git_state"]

#: Version of the stored run frame this code writes and the newest it reads (module docstring).
SCHEMA_VERSION = 2
#: The Parquet metadata key (and manifest field) that holds a run's schema version.
SCHEMA_KEY = "rlbandit_schema"


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
    """Flatten config fields (as :func:`config_fields` gives them) into one value per column:
    nested dataclasses as ``outer.inner`` columns; a list or tuple of scalars (or of such lists)
    as a tuple, e.g. ``n_values = (25, 50)`` — a tuple, not a list, so the column stays hashable
    for ``groupby`` and ``drop_duplicates``; a list holding a dict (a tuple of dataclasses) as its
    JSON text, the one value that has no hashable Python form a reader would expect."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(config_columns(value, prefix=f"{name}."))
        elif isinstance(value, list):
            out[name] = json.dumps(value, sort_keys=True) if _holds_dict(value) else _as_tuple(value)
        else:
            out[name] = value
    return out


def _holds_dict(value: Any) -> bool:
    if isinstance(value, dict):
        return True
    return isinstance(value, (list, tuple)) and any(_holds_dict(v) for v in value)


def _as_tuple(value: Any) -> Any:
    """Lists, tuples and 1-d arrays (what pyarrow gives for a Parquet list) → tuples, recursively."""
    if isinstance(value, (list, tuple)) or (hasattr(value, "tolist") and getattr(value, "ndim", 0) >= 1):
        return tuple(_as_tuple(v) for v in (value.tolist() if hasattr(value, "tolist") else value))
    return value


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_parquet(path: Path, frame: pd.DataFrame) -> str:
    """Write ``frame`` (without its index) with the schema version in the Parquet metadata; returns
    the file's SHA-256."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        # pyarrow directly (what DataFrame.to_parquet calls) because pandas cannot add a metadata key
        table = pa.Table.from_pandas(frame, preserve_index=False)
        metadata = {**(table.schema.metadata or {}), SCHEMA_KEY.encode(): str(SCHEMA_VERSION).encode()}
        pq.write_table(table.replace_schema_metadata(metadata), tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        checksum = _sha256(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return checksum


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
        self.timings_dir = self.root / "timings"
        #: run id → why its stored run is not finished (a bad manifest record or result file)
        self.problems: dict[str, str] = {}
        for folder in (self.runs_dir, self.manifest_dir, self.sweeps_dir, self.timings_dir):
            if folder is self.timings_dir and not folder.is_dir():
                continue  # made by the first run that has timings (stores without any stay as they were)
            folder.mkdir(parents=True, exist_ok=True)
            for stale in folder.glob(".*.tmp"):  # left by an interrupted write
                stale.unlink(missing_ok=True)

    # -- paths ------------------------------------------------------------------------------
    def result_path(self, rid: str) -> Path:
        return self.runs_dir / f"{rid}.parquet"

    def record_path(self, rid: str) -> Path:
        return self.manifest_dir / f"{rid}.json"

    def timing_path(self, rid: str) -> Path:
        return self.timings_dir / f"{rid}.parquet"

    # -- queries ----------------------------------------------------------------------------
    def _read_json(self, path: Path) -> dict[str, Any] | None:
        """A record file, or None when it is missing or not a JSON object (noted in :attr:`problems`)."""
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (ValueError, OSError) as error:  # truncated or garbled: the run is not done
            self.problems[path.stem] = f"manifest record {path} is unreadable ({type(error).__name__}: {error})"
            return None
        if not isinstance(record, dict):
            self.problems[path.stem] = f"manifest record {path} is not a JSON object"
            return None
        return record

    def record(self, rid: str) -> dict[str, Any] | None:
        return self._read_json(self.record_path(rid))

    def records(self) -> list[dict[str, Any]]:
        """Every readable manifest record (finished and failed runs), sorted by run id; an unreadable
        one is skipped and noted in :attr:`problems`."""
        records = (self._read_json(p) for p in sorted(self.manifest_dir.glob("*.json")))
        return [r for r in records if r is not None and "run_id" in r]

    def check(self, record: dict[str, Any]) -> str | None:
        """Why the result of an ``ok`` record is not usable (None when it is): its Parquet (or its
        timing Parquet, when the record states one) is missing, unreadable, or has another row count
        or SHA-256 than the record states."""
        rid = record["run_id"]
        reason = _check_file(self.result_path(rid), "result", record.get("rows"), record.get("sha256"))
        if reason is None and record.get("timing_sha256"):
            reason = _check_file(self.timing_path(rid), "timing", record.get("timing_rows"), record["timing_sha256"])
        return reason

    def is_finished(self, rid: str) -> bool:
        """A run is finished when its manifest says ``ok`` and its Parquet passes :meth:`check`."""
        record = self.record(rid)
        return record is not None and record.get("status") == "ok" and self._valid(record)

    def _valid(self, record: dict[str, Any]) -> bool:
        reason = self.check(record)
        if reason is not None:
            self.problems[record["run_id"]] = reason
        return reason is None

    def finished_ids(self) -> set[str]:
        return {r["run_id"] for r in self.records() if r.get("status") == "ok" and self._valid(r)}

    # -- locks ------------------------------------------------------------------------------
    def lock_path(self, rid: str) -> Path:
        return self.manifest_dir / f"{rid}.lock"

    def lock(self, rid: str) -> str | None:
        """Take the run's lock; None when taken, else who holds it. A lock held by a dead process
        of this host is broken (its sweep was killed)."""
        path = self.lock_path(rid)
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    holder = json.loads(path.read_text())
                except (OSError, ValueError):  # being written this instant, or garbled
                    holder = {}
                pid, host = holder.get("pid"), holder.get("host")
                if isinstance(pid, int) and host == platform.node() and not _alive(pid):
                    path.unlink(missing_ok=True)  # stale: its process is gone
                    continue
                return f"pid {pid} on {host}" if pid else f"lock file {path}"
            with os.fdopen(fd, "w") as handle:
                json.dump({"pid": os.getpid(), "host": platform.node(), "started": now()}, handle)
            return None
        return f"lock file {path}"

    def unlock(self, rid: str) -> None:
        self.lock_path(rid).unlink(missing_ok=True)

    # -- writes -----------------------------------------------------------------------------
    def write_result(self, rid: str, frame: pd.DataFrame, record: dict[str, Any],
                     timing_columns: Iterable[str] = ()) -> None:
        """Store a finished run: its Parquet files first, then its ``ok`` record (each atomic), so a
        crash in between leaves the run unfinished, never half-written. The columns of
        ``timing_columns`` the frame has go to the run's timing file, the rest to its result file
        (which is then the same bytes whenever the run's config is the same)."""
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(f"frame: a run must return a pandas DataFrame, got {type(frame).__name__}")
        frame = frame.reset_index(drop=True)
        timed = [c for c in frame.columns if c in set(timing_columns)]
        extra: dict[str, Any] = {}
        if timed:
            extra = {"timing_columns": [str(c) for c in timed], "timing_rows": int(len(frame)),
                     "timing_sha256": _atomic_parquet(self.timing_path(rid), frame[timed])}
            frame = frame.drop(columns=timed)
        else:
            self.timing_path(rid).unlink(missing_ok=True)
        checksum = _atomic_parquet(self.result_path(rid), frame)
        self._write_record(rid, {**record, "status": "ok", "rows": int(len(frame)), "sha256": checksum,
                                 "columns": [str(c) for c in frame.columns], **extra, SCHEMA_KEY: SCHEMA_VERSION})

    def write_failure(self, rid: str, record: dict[str, Any]) -> None:
        """Record a run that raised (its error and traceback); any older result is removed."""
        self.result_path(rid).unlink(missing_ok=True)
        self.timing_path(rid).unlink(missing_ok=True)
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
        return [r for r in (self._read_json(p) for p in sorted(self.sweeps_dir.glob("*.json"))) if r is not None]

    # -- loading ----------------------------------------------------------------------------
    def load(self, run_ids: Iterable[str] | None = None, timings: bool = True) -> pd.DataFrame:
        """All finished runs (or those in ``run_ids``) as one frame: each run's rows, a ``run_id``
        column, its timing columns beside them row by row (unless ``timings`` is False; NaN for a
        run without a column another run has), and its config's fields joined as columns by run id
        (a field the run's own frame already has as a column is not overwritten; list-valued fields
        as tuples, see
        :func:`config_columns`). Stores of every schema version up to :data:`SCHEMA_VERSION` load
        the same; ``frame.attrs["rlbandit_schema"]`` is the version of the returned frame. Empty
        frame when nothing is finished.

        Raises:
            ValueError: a run's Parquet was written by a newer rlbandit (names the file).
        """
        finished = self.finished_ids()
        wanted = sorted(finished if run_ids is None else set(run_ids) & finished)
        frames, configs = [], []
        for rid in wanted:
            frame, record = _read_run(self.result_path(rid)), self.record(rid)
            if timings and record.get("timing_sha256"):
                timing = _read_run(self.timing_path(rid))
                frame = pd.concat([frame, timing.drop(columns=[c for c in timing.columns if c in frame.columns])],
                                  axis=1)
            frame.insert(0, "run_id", rid)
            frames.append(frame)
            configs.append({"run_id": rid, **config_columns(record.get("config", {}))})
        if not frames:
            empty = pd.DataFrame({"run_id": pd.Series(dtype=str)})
            empty.attrs[SCHEMA_KEY] = SCHEMA_VERSION
            return empty
        rows = pd.concat(frames, ignore_index=True)
        table = pd.DataFrame(configs)
        table = table[["run_id"] + [c for c in table.columns if c != "run_id" and c not in rows.columns]]
        loaded = rows.merge(table, on="run_id", how="left", validate="many_to_one")
        loaded.attrs = {SCHEMA_KEY: SCHEMA_VERSION}  # every version is converted to this one on reading
        return loaded


def _check_file(path: Path, kind: str, rows: int | None, checksum: str | None) -> str | None:
    """Why a stored Parquet file is not the one its record describes (None when it is)."""
    if not path.exists():
        return f"{kind} file {path} is missing"
    try:
        import pyarrow.parquet as pq

        found = pq.read_metadata(path).num_rows
    except Exception as error:  # noqa: BLE001 - empty, truncated or not Parquet
        return f"{kind} file {path} is not readable Parquet ({type(error).__name__}: {error})"
    if rows is not None and found != rows:
        return f"{kind} file {path} has {found} rows, its record states {rows}"
    if checksum and _sha256(path) != checksum:
        return f"{kind} file {path} does not match the checksum in its record"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def schema_version(path: str | os.PathLike) -> int:
    """The schema version of a stored run's Parquet file (1 when it has none: written before versions).

    Raises:
        ValueError: the file's version is not a positive integer (names the file).
    """
    import pyarrow.parquet as pq

    return _version_of(pq.read_schema(path), path)


def _version_of(schema: Any, path: str | os.PathLike) -> int:
    raw = (schema.metadata or {}).get(SCHEMA_KEY.encode())
    if raw is None:
        return 1
    try:
        version = int(raw.decode())
    except (UnicodeDecodeError, ValueError):
        version = 0
    if version < 1:
        raise ValueError(f"path: {path} has a malformed {SCHEMA_KEY} {raw!r} in its Parquet metadata")
    return version


def _read_run(path: Path) -> pd.DataFrame:
    """One run's frame in the current schema, from a file of any version this code knows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    version = _version_of(schema, path)
    if version > SCHEMA_VERSION:
        raise ValueError(f"path: {path} was stored with {SCHEMA_KEY} {version}, newer than the {SCHEMA_VERSION} "
                         "this rlbandit reads; upgrade rlbandit to load it")
    frame = pd.read_parquet(path)
    for column in schema:
        kind = column.type
        is_list = pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
        if is_list and column.name in frame.columns:
            frame[column.name] = pd.Series([_as_tuple(v) for v in frame[column.name]], index=frame.index,
                                           dtype=object)
    return frame
