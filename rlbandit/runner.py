"""Running a study's sweep: discovery, run ids, backends, progress, failures and resumption.

Studies are found by :func:`load_study`: a name registered in the entry-point group
``rlbandit.studies`` (this package registers its built-in studies of ``benchmarks/`` in its
``pyproject.toml``, as any package can register its own; the library never imports
``benchmarks`` itself), a ``.py`` file, or ``module[:NAME]``.

``run_sweep(study, smoke=False, out=None, workers=None, backend="process")``:

1. plans the sweep — ``study.configs(smoke)``, one run id per config (:func:`rlbandit.store.run_id`);
2. skips runs the store already has (``ok`` record + Parquet), so re-running resumes;
3. executes the rest on a backend from :data:`BACKENDS`:
   ``serial`` (in this process), ``process`` (a ``spawn`` process pool of ``workers``; the
   default) or ``ray`` (a Ray cluster at ``address``, or a local Ray with its temp folder under
   a fresh temporary directory, always shut down afterwards);
4. stores each result in the driver as it arrives (atomic Parquet + manifest record); a run that
   raises is recorded with its error and traceback and the sweep goes on; a worker that dies
   (killed, out of memory) breaks the pool: the pool is rebuilt and its unfinished runs retried
   (a run whose worker dies twice is recorded as failed);
5. shows a progress bar with ETA (tqdm, on stderr); Ctrl-C stops the sweep, cancels what has not
   started and leaves only complete results — the next ``run_sweep`` resumes.

Workers limit BLAS threads to one each (threadpoolctl) so ``workers`` processes use ``workers``
cores. Workers are *spawned*, so a script that calls :func:`run_sweep` with the process backend
needs the usual ``if __name__ == "__main__":`` guard (the CLI has it). On a Ray cluster
(``address``) every node needs ``rlbandit`` and ``benchmarks`` importable (install the repository
there, or pass a ``runtime_env`` through ``ray.init`` before calling); results come back to the
driver, which alone writes the store, so nodes need no shared file system.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from rlbandit.store import ResultStore, config_fields, environment, now, run_id
from rlbandit.study import Study

__all__ = ["load_study", "list_studies", "plan", "results_dir", "run_sweep", "SweepSummary", "BACKENDS",
           "execute"]

#: Default root folder of results (gitignored).
RESULTS_ROOT = Path("results")


# ---------------------------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------------------------

#: id(study) → the spec it was loaded from (a file path or "module:NAME"), so process workers load it the same way
_SPECS: dict[int, str] = {}
#: id(study) → the file that declares it
_SOURCES: dict[int, str] = {}


def load_study(name: str | Study) -> Study:
    """A study from any of the places one can be declared:

    - ``NAME``: a study registered in the entry-point group ``rlbandit.studies`` (the built-in
      studies of ``benchmarks/`` are registered there by this package's ``pyproject.toml``);
    - ``path/to/file.py``: the ``STUDY`` of that file (a study of your own, outside this package);
    - ``package.module``: the ``STUDY`` of an importable module; ``package.module:NAME`` its ``NAME``;
    - a :class:`Study` itself.
    """
    if isinstance(name, Study):
        return name
    if not isinstance(name, str) or not name:
        raise ValueError(f"study: expected a study name, a .py file or a module, got {name!r}")
    is_file = name.endswith(".py") or os.sep in name or "/" in name
    if is_file:
        module_spec, attr = name, "STUDY"
        study = getattr(_module_from_file(name), attr, None)
    elif ":" in name or ("." in name and not name.isidentifier()):
        module_spec, _, attr = name.partition(":")
        attr = attr or "STUDY"
        try:
            module = importlib.import_module(module_spec)
        except ModuleNotFoundError as error:
            raise ValueError(f"study: cannot import module {module_spec!r} ({error})") from None
        study = getattr(module, attr, None)
    elif name.isidentifier():
        return _builtin_study(name)
    else:
        raise ValueError(f"study: expected a study name, a .py file or a module, got {name!r}")
    if not isinstance(study, Study):
        raise ValueError(f"study: {module_spec} defines no {attr} = Study(...)")
    _SPECS[id(study)] = name
    _SOURCES[id(study)] = name if is_file else _module_file(module_spec)
    return study


def _module_from_file(path_text: str):
    """Import a study file once per process under a name derived from its absolute path."""
    import hashlib
    import importlib.util

    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise ValueError(f"study: no study file {path_text!r}")
    name = f"_rlbandit_study_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before executing: dataclasses and pickle look the module up by name
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def _builtin_study(name: str) -> Study:
    """The study registered as ``name`` in the entry-point group ``rlbandit.studies``."""
    import difflib

    registered = _registered()
    if name not in registered:
        known = sorted(registered)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise ValueError(f"study: no registered study {name!r}; {hint}known studies: {known} (a study of your own: "
                         "pass its .py file or module:NAME, or register it in the 'rlbandit.studies' entry-point "
                         "group)")
    entry = registered[name]
    study = entry.load()
    if not isinstance(study, Study):
        raise ValueError(f"study: the entry point {name} = {entry.value!r} is not a Study")
    _SOURCES[id(study)] = _module_file(entry.module)
    return study


def _module_file(module: str) -> str:
    import importlib.util

    spec = importlib.util.find_spec(module)
    return spec.origin if spec is not None and spec.origin else module


def study_spec(study: Study) -> str:
    """What to pass to ``rlbandit run`` / ``report`` to load ``study`` again: its registered name,
    or the file or module it was loaded from."""
    return _SPECS.get(id(study), study.name)


def study_source(study: Study) -> str:
    """The file that declares ``study`` (relative to the working directory when inside it)."""
    source = _SOURCES.get(id(study))
    if source is None:
        module = sys.modules.get(getattr(study.run, "__module__", ""), None)
        source = getattr(module, "__file__", None) or "?"
    try:
        return str(Path(source).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(source)


def load_results(study_or_folder: str | os.PathLike, *, smoke: bool = False,
                 root: str | os.PathLike = RESULTS_ROOT) -> pd.DataFrame:
    """The stored results of a study as one tidy frame: every finished run's rows, a ``run_id``
    column and the run's config fields joined as columns (reading ``results/STUDY/runs/*.parquet``
    directly gives the rows without their config).

    Args:
        study_or_folder: a study name (its results folder under ``root``: ``results/STUDY``, or
            ``results/smoke/STUDY`` with ``smoke``) or the path of a results folder (the ``--out`` of
            ``rlbandit run``).
        smoke: read the smoke sweep's folder (with a study name).
        root: the results root (with a study name).
    """
    path = Path(study_or_folder)
    if (path / "manifest").is_dir() or (path / "runs").is_dir():
        folder, name = path, path.name
    elif isinstance(study_or_folder, str) and study_or_folder.isidentifier():
        folder, name = results_dir(study_or_folder, smoke, root), study_or_folder
    else:
        raise ValueError(f"study_or_folder: {str(study_or_folder)!r} is neither a study name nor a results folder "
                         "(a folder holding runs/ and manifest/)")
    if not folder.is_dir():
        raise ValueError(f"study_or_folder: no results in {folder}; run `rlbandit run {name}"
                         f"{' --smoke' if smoke else ''}` first")
    return ResultStore(folder, name).load()


#: the entry-point group in which packages register studies (``NAME = "module:STUDY"``); this
#: package registers its built-in studies (``benchmarks/``) there, as any other package may.
ENTRY_POINT_GROUP = "rlbandit.studies"


def _registered() -> dict:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def list_studies() -> list[str]:
    """Names of the registered studies (entry-point group ``rlbandit.studies``), found without
    importing them."""
    return sorted(_registered())


def results_dir(study: str, smoke: bool = False, root: str | os.PathLike = RESULTS_ROOT) -> Path:
    """Default results folder: ``results/STUDY`` (full) or ``results/smoke/STUDY`` (smoke), so the
    two sweeps never mix."""
    return Path(root) / "smoke" / study if smoke else Path(root) / study


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
    record: dict[str, Any] = {"config": fields, "config_class": f"{type(config).__module__}.{type(config).__qualname__}",
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


def _worker_init(ref: Study | str | None = None) -> None:
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
    if id(study) in _SPECS:
        return _SPECS[id(study)]
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


def _ray_execute(study, rid, config):
    _limit_threads()
    return execute(study, rid, config)


#: Backend name → generator of outcomes ``(study, todo, options) -> Iterator[Outcome]``.
BACKENDS: dict[str, Callable] = {"serial": _serial, "process": _process, "ray": _ray}


# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------

@dataclass
class SweepSummary:
    """What one ``run_sweep`` did."""

    study: str
    results: Path
    planned: int
    skipped: int
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
        workers: parallel runs (default: the number of CPUs, at most the number of runs).
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
    root = Path(out) if out is not None else results_dir(study.name, smoke)
    store = ResultStore(root, study.name)
    planned = plan(study, smoke)
    done = store.finished_ids()
    todo = [(rid, config) for rid, config in planned if rid not in done]
    workers = workers or max(1, min(os.cpu_count() or 1, len(todo) or 1))
    summary = SweepSummary(study.name, root, len(planned), len(planned) - len(todo))
    start, started = time.perf_counter(), now()
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"{study.name}{' (smoke)' if smoke else ''}", unit="run",
                   file=sys.stderr, dynamic_ncols=True)
    options = BackendOptions(workers=workers, address=address)
    extra = {"backend": backend, "workers": workers, "smoke": smoke}
    try:
        for outcome in BACKENDS[backend](study, todo, options):
            record = {**outcome.record, **extra}
            if outcome.frame is not None:
                store.write_result(outcome.run_id, outcome.frame, record)
                summary.finished.append(outcome.run_id)
            else:
                store.write_failure(outcome.run_id, record)
                summary.failed.append(outcome.run_id)
                message = f"run {outcome.run_id} failed: {record.get('error')}"
                (bar.write(message, file=sys.stderr) if bar is not None else print(message, file=sys.stderr))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(failed=len(summary.failed), refresh=False)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
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
