"""Finding studies and their stored results: :func:`load_study`, :func:`list_studies`,
:func:`load_results`, and where a study came from (:func:`study_spec`, :func:`study_source`).

Studies are found by :func:`load_study`: a name registered in the entry-point group
``rlbandit.studies`` (this package registers its built-in studies of ``benchmarks/`` in its
``pyproject.toml``, as any package can register its own; the library never imports
``benchmarks`` itself), a ``.py`` file, or ``module[:NAME]``. Running them is
:mod:`rlbandit.runner`'s job, which re-exports every public name of this module.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pandas as pd

from rlbandit.store import ResultStore
from rlbandit.study import Study

__all__ = ["load_study", "list_studies", "load_results", "results_dir", "study_spec", "study_source", "loaded_from",
           "ENTRY_POINT_GROUP", "RESULTS_ROOT"]

#: Default root folder of results (gitignored).
RESULTS_ROOT = Path("results")

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


def loaded_from(study: Study) -> str | None:
    """The ``.py`` file or ``module[:NAME]`` that :func:`load_study` loaded ``study`` from, or None
    (a registered study, or one built in this process): process workers load it the same way."""
    return _SPECS.get(id(study))


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
    column, the study's timing columns (stored apart in ``timings/``) beside them and the run's
    config fields joined as columns (reading ``results/STUDY/runs/*.parquet`` directly gives the
    rows without their timings or config). A list- or tuple-valued field is a tuple per
    row (``n_values == (25, 50)``), also for results stored before schema version 2, which joined
    it as JSON text; see :meth:`rlbandit.store.ResultStore.load`.

    Args:
        study_or_folder: a study name (its results folder under ``root``: ``results/STUDY``, or
            ``results/smoke/STUDY`` with ``smoke``) or the path of a results folder (the ``--out`` of
            ``rlbandit run``).
        smoke: read the smoke sweep's folder (with a study name).
        root: the results root (with a study name).

    Raises:
        ValueError: no such study or folder, or a run stored by a newer rlbandit (names its file).
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
