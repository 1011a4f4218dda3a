"""Running a study's sweep: run ids, backends, progress, failures and resumption.

Studies are found by :func:`load_study` and stored results read by :func:`load_results`, both
defined in :mod:`rlbandit.loading` and importable from here as well.

``run_sweep(study, smoke=False, out=None, workers=None, backend="process")``:

1. plans the sweep — ``study.configs(smoke)``, one run id per config (:func:`rlbandit.store.run_id`);
2. skips runs the store already has (``ok`` record + a Parquet that passes
   :meth:`rlbandit.store.ResultStore.check`), so re-running resumes; a run whose record or file is
   broken is re-run, saying why; a run another sweep on the same folder is computing (its lock
   file) is skipped, saying so;
3. executes the rest on a backend from :data:`BACKENDS`:
   ``serial`` (in this process), ``process`` (a ``spawn`` process pool of ``workers``, at most
   the runs and the cores; the default; each worker exits when its driver dies) or ``ray`` (a
   Ray cluster at ``address``, refused at once when it does not answer, or a local Ray with its
   temp folder under a fresh temporary directory, always shut down afterwards);
4. stores each result in the driver as it arrives (atomic Parquet + manifest record; the study's
   ``timing_columns`` in a timing Parquet of their own, so result files are bit-reproducible); a run that
   raises is recorded with its error and traceback and the sweep goes on; a worker that dies
   (killed, out of memory) breaks the pool: the pool is rebuilt and its unfinished runs retried
   (a run whose worker dies twice is recorded as failed);
5. shows a progress bar with ETA (tqdm, on stderr); Ctrl-C stops the sweep, cancels what has not
   started and leaves only complete results — the next ``run_sweep`` resumes.

Every run record and the sweep record carry the provenance of two repositories: ``git`` (the
toolkit's, from :func:`rlbandit.store.environment`) and ``study_git`` (the one holding the file
that declares the study, :func:`study_source`; null commit outside any repository), each
``{commit, dirty, root}`` (:func:`rlbandit.store.git_state`), next to ``study_source`` itself.

Workers limit BLAS threads to one each (threadpoolctl) so ``workers`` processes use ``workers``
cores. Workers are *spawned*, so a script that calls :func:`run_sweep` with the process backend
needs the usual ``if __name__ == "__main__":`` guard (the CLI has it). On a Ray cluster
(``address``) every node needs ``rlbandit`` and ``benchmarks`` importable (install the repository
there, or pass a ``runtime_env`` through ``ray.init`` before calling); results come back to the
driver, which alone writes the store, so nodes need no shared file system.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

# the loading names are re-exported: rlbandit.runner.load_study & co. stay importable from here
from rlbandit.loading import (ENTRY_POINT_GROUP, RESULTS_ROOT, list_studies, load_results, load_study, loaded_from,
                              results_dir, study_source, study_spec)
from rlbandit.store import ResultStore, config_fields, environment, git_state, now, run_id
from rlbandit.study import Study

__all__ = ["load_study", "list_studies", "plan", "results_dir", "run_sweep", "SweepSummary", "BACKENDS",
           "execute", "load_results", "study_spec", "study_source", "study_provenance", "ENTRY_POINT_GROUP",
           "RESULTS_ROOT"]


# ---------------------------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------------------------

def plan(study: Study, smoke: bool = False) -> list[tuple[str, Any]]:
    """The sweep as ``[(run_id, config), ...]`` in declaration order; duplicates are an error."""
    configs = list(study.configs(smoke))
    if not configs:
        raise ValueError(f"configs: study {study.name!r} declares no runs (smoke={smoke})")
    planned, seen = [], {}
    for config in configs:
        rid = run_id(study.name, config)
        if rid in seen:
            raise ValueError(f"configs: study {study.name!r} declares the same config twice: {config!r}")
        seen[rid] = config
        planned.append((rid, config))
    return planned


# ---------------------------------------------------------------------------------------------
# One run (executed in a worker)
# ---------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What a worker sends back: the frame (None when the run raised) and the record."""

    run_id: str
    frame: pd.DataFrame | None
    record: dict[str, Any]


def _limit_threads() -> None:
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except Exception:  # pragma: no cover - threadpoolctl missing
        pass
    try:
        import torch

        torch.set_num_threads(1)
    except Exception:  # pragma: no cover
        pass


def _seeds(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if "seed" in k.lower()}


def execute(study: Study | str, rid: str, config: Any) -> Outcome:
    """Run one config and return its outcome (never raises for an error of the study's code)."""
    started, start = now(), time.perf_counter()
    fields = config_fields(config)
    record: dict[str, Any] = {"config": fields,
                              "config_class": f"{type(config).__module__}.{type(config).__qualname__}",
                              "seeds": _seeds(fields), "started": started, "pid": os.getpid()}
    try:
        study = load_study(study)
        frame = study.run(config)
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"run: study {study.name!r} returned {type(frame).__name__}, expected a DataFrame")
    except Exception as error:  # a failing run is recorded, the sweep goes on
        record.update(error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc(),
                      wall_s=time.perf_counter() - start, finished=now(), **environment())
        return Outcome(rid, None, record)
    record.update(wall_s=time.perf_counter() - start, finished=now(), **environment())
    return Outcome(rid, frame, record)


def _exit_with_parent(parent: int, interval: float = 0.5) -> None:
    """Poll the parent pid; when the driver is gone (killed), end this worker at once."""
    while True:
        time.sleep(interval)
        if os.getppid() != parent:
            os._exit(1)


def _worker_init(ref: Study | str | None = None) -> None:
    import threading

    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True, name="parent-watch").start()
    _limit_threads()
    if isinstance(ref, str):
        load_study(ref)  # a study file's module must exist before its configs are unpickled here


# ---------------------------------------------------------------------------------------------
# Backends: each yields outcomes as they finish
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BackendOptions:
    workers: int
    address: str | None = None
    max_worker_deaths: int = 2


def _serial(study: Study, todo: Sequence[tuple[str, Any]], options: BackendOptions):
    for rid, config in todo:
        yield execute(study, rid, config)


def _study_ref(study: Study) -> Study | str:
    """Send a study by the spec it was loaded from or by name (workers load it) and others by value."""
    spec = loaded_from(study)
    if spec is not None:
        return spec
    try:
        if load_study(study.name) is study:
            return study.name
    except Exception:
        pass
    return study


def _check_picklable(ref: Study | str, todo: Sequence[tuple[str, Any]]) -> None:
    """Process workers receive the study (unless they import it by name) and each config by pickle:
    fail at once, saying how to fix it, instead of with a PicklingError from inside the pool."""
    import pickle

    for what, obj in (("study", ref), ("config", todo[0][1] if todo else None)):
        try:
            pickle.dumps(obj)
        except Exception as error:  # noqa: BLE001 - pickle raises several types
            name = ref if isinstance(ref, str) else ref.name
            raise ValueError(f"{what}: study {name!r} cannot be sent to process workers ({type(error).__name__}: "
                             f"{error}); define its run, configs and report functions at module level of an "
                             "importable module, or run it with backend='serial' (--backend serial)") from None


def _process(study: Study, todo: Sequence[tuple[str, Any]], options: BackendOptions):
    import multiprocessing as mp
    from concurrent.futures.process import BrokenProcessPool

    ref = _study_ref(study)
    _check_picklable(ref, todo)
    pending = list(todo)
    deaths: dict[str, int] = {}
    while pending:
        pool = cf.ProcessPoolExecutor(max_workers=min(options.workers, len(pending)),
                                      mp_context=mp.get_context("spawn"), initializer=_worker_init,
                                      initargs=(ref,))
        futures = {pool.submit(execute, ref, rid, config): (rid, config) for rid, config in pending}
        broken = []
        try:
            for future in cf.as_completed(futures):
                rid, config = futures[future]
                try:
                    yield future.result()
                except BrokenProcessPool:
                    broken.append((rid, config))
        except BaseException:  # Ctrl-C or the consumer stopped: end the workers now
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        else:
            pool.shutdown(wait=True)
        pending = []
        for rid, config in broken:
            deaths[rid] = deaths.get(rid, 0) + 1
            if deaths[rid] >= options.max_worker_deaths:
                fields = config_fields(config)
                yield Outcome(rid, None, {"config": fields, "seeds": _seeds(fields), "finished": now(),
                                          "error": f"worker process died {deaths[rid]} times while running it",
                                          "traceback": "", "wall_s": float("nan"), **environment()})
            else:
                pending.append((rid, config))
        if pending:
            print(f"a worker process died; restarting the pool for {len(pending)} unfinished run(s)", file=sys.stderr)


def _ray(study: Study, todo: Sequence[tuple[str, Any]], options: BackendOptions):
    import ray

    temp_dir = None
    started_here = not ray.is_initialized()
    if started_here:
        if options.address:
            _check_address(options.address)
            ray.init(address=options.address, log_to_driver=False)
        else:
            temp_dir = tempfile.mkdtemp(prefix="rlbray-")
            ray.init(num_cpus=options.workers, include_dashboard=False, log_to_driver=False,
                     _temp_dir=temp_dir, configure_logging=False)
    waiting: list = []
    try:
        remote = ray.remote(num_cpus=1, max_retries=options.max_worker_deaths - 1)(_ray_execute)
        ref = _study_ref(study)
        refs = {remote.remote(ref, rid, config): (rid, config) for rid, config in todo}
        waiting = list(refs)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            for obj in done:
                rid, config = refs[obj]
                try:
                    yield ray.get(obj)
                except Exception as error:  # the worker died (a study error is caught inside)
                    fields = config_fields(config)
                    yield Outcome(rid, None, {"config": fields, "seeds": _seeds(fields), "finished": now(),
                                              "error": f"ray task failed: {type(error).__name__}: {error}",
                                              "traceback": traceback.format_exc(), "wall_s": float("nan"),
                                              **environment()})
    finally:
        for obj in waiting:  # interrupted: stop what is still running
            ray.cancel(obj, force=True)
        if started_here:
            ray.shutdown()
        if temp_dir is not None:
            import shutil

            shutil.rmtree(temp_dir, ignore_errors=True)


def _check_address(address: str, timeout: float = 3.0) -> None:
    """Fail at once when a Ray ``host:port`` address does not accept connections (``ray.init``
    would retry for minutes); ``auto`` and addresses without a port are left to Ray."""
    import socket

    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        raise ValueError(f"address: no Ray cluster reachable at {address} ({error}); start one with "
                         "`ray start --head` or drop --address to start a local Ray") from None


def _ray_execute(study, rid, config):
    _limit_threads()
    return execute(study, rid, config)


#: Backend name → generator of outcomes ``(study, todo, options) -> Iterator[Outcome]``.
BACKENDS: dict[str, Callable] = {"serial": _serial, "process": _process, "ray": _ray}


# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------

def _open_store(root: Path, name: str) -> ResultStore:
    """The store at ``root``, or a one-line error naming --out when it is a file or not writable."""
    if root.exists() and not root.is_dir():
        raise ValueError(f"--out: {root} is a file, not a results folder")
    try:
        store = ResultStore(root, name)
        fd, probe = tempfile.mkstemp(prefix=".probe.", suffix=".tmp", dir=store.manifest_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise ValueError(f"--out: cannot write results to {root} ({error.strerror or error})") from None
    return store


def study_provenance(study: Study) -> dict[str, Any]:
    """Where the study's code comes from: ``study_source`` (:func:`study_source`) and ``study_git``
    (:func:`rlbandit.store.git_state` of that file: the commit and dirty flag of the repository
    holding it, all None outside a repository). Read afresh on each call: unlike the toolkit's
    commit it is not cached, since a study file is often edited between sweeps of one session."""
    source = study_source(study)
    return {"study_source": source, "study_git": git_state(source)}


@dataclass
class SweepSummary:
    """What one ``run_sweep`` did."""

    study: str
    results: Path
    planned: int
    skipped: int
    busy: list[str] = field(default_factory=list)  # being computed by another sweep (locked)
    finished: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    interrupted: bool = False
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted


def run_sweep(study: Study | str, *, smoke: bool = False, out: str | os.PathLike | None = None,
              workers: int | None = None, backend: str = "process", address: str | None = None,
              progress: bool = True, raise_interrupt: bool = True) -> SweepSummary:
    """Run every unfinished run of the study's sweep and store the results (module docstring).

    Args:
        study: a study name (``benchmarks/NAME.py``) or a :class:`Study`.
        smoke: the small CI sweep (stored apart from the full one).
        out: results folder; default :func:`results_dir`.
        workers: parallel runs (default and at most: the number of CPUs and of runs to do; a
            larger value is capped, saying so).
        backend: a key of :data:`BACKENDS`.
        address: Ray cluster address (``backend="ray"`` only); None starts a local Ray.
        progress: show a tqdm bar with ETA on stderr.
        raise_interrupt: re-raise KeyboardInterrupt after recording the partial sweep.
    """
    study = load_study(study)
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {sorted(BACKENDS)}, got {backend!r}")
    if address is not None and backend != "ray":
        raise ValueError("address: only meaningful with backend='ray'")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers: must be a positive integer, got {workers!r}")
    if address is not None:
        _check_address(address)
    root = Path(out) if out is not None else results_dir(study.name, smoke)
    store = _open_store(root, study.name)
    planned = plan(study, smoke)
    done = store.finished_ids()
    todo = [(rid, config) for rid, config in planned if rid not in done]
    for rid, _ in todo:
        if rid in store.problems:
            print(f"run {rid}: re-running it: {store.problems[rid]}", file=sys.stderr)
    summary = SweepSummary(study.name, root, len(planned), len(planned) - len(todo))
    locked = set()
    for rid, _ in todo:
        holder = store.lock(rid)
        if holder is None and store.is_finished(rid):  # another sweep finished it since we looked
            store.unlock(rid)
            summary.skipped += 1
        elif holder is None:
            locked.add(rid)
        else:
            summary.busy.append(rid)
            print(f"run {rid}: skipped, another sweep ({holder}) is computing it", file=sys.stderr)
    todo = [(rid, config) for rid, config in todo if rid in locked]
    cap = max(1, min(os.cpu_count() or 1, len(todo) or 1))
    if workers is not None and workers > cap:
        print(f"workers: capped {workers} at {cap} ({len(todo)} runs to do, {os.cpu_count()} cores)", file=sys.stderr)
    workers = min(workers or cap, cap)
    start, started = time.perf_counter(), now()
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"{study.name}{' (smoke)' if smoke else ''}", unit="run",
                   file=sys.stderr, dynamic_ncols=True)
    options = BackendOptions(workers=workers, address=address)
    # read in the driver, once per sweep: it knows the study's file, and a remote worker may not
    extra = {"backend": backend, "workers": workers, "smoke": smoke, **study_provenance(study)}
    try:
        for outcome in BACKENDS[backend](study, todo, options):
            record = {**outcome.record, **extra}
            if outcome.frame is not None:
                store.write_result(outcome.run_id, outcome.frame, record, study.timing_columns)
                summary.finished.append(outcome.run_id)
            else:
                store.write_failure(outcome.run_id, record)
                summary.failed.append(outcome.run_id)
                message = f"run {outcome.run_id} failed: {record.get('error')}"
                (bar.write(message, file=sys.stderr) if bar is not None else print(message, file=sys.stderr))
            if outcome.run_id in locked:  # released once its record is written
                store.unlock(outcome.run_id)
                locked.discard(outcome.run_id)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(failed=len(summary.failed), refresh=False)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        for rid in locked:  # interrupted or failed: not computed here after all
            store.unlock(rid)
        if bar is not None:
            bar.close()
        summary.wall_s = time.perf_counter() - start
        if todo:
            store.write_sweep({"study": study.name, "started": started, "finished": now(), "wall_s": summary.wall_s,
                               "planned": summary.planned, "skipped": summary.skipped,
                               "finished_runs": len(summary.finished), "failed_runs": len(summary.failed),
                               "interrupted": summary.interrupted, **extra, "address": address,
                               **environment()})
    if summary.interrupted:
        print(f"interrupted: {summary.skipped + len(summary.finished)} of {summary.planned} runs stored in {root}; "
              "run the same command again to resume", file=sys.stderr)
        if raise_interrupt:
            raise KeyboardInterrupt
    return summary
