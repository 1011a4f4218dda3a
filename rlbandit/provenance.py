"""Provenance of a run or sweep: package versions, git state of a repository, the machine, a UTC
timestamp. The results store (:mod:`rlbandit.store`) writes these into every manifest record and
re-exports them."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["PACKAGES", "git_state", "environment", "now"]

#: Distributions whose versions each manifest record carries.
PACKAGES = ("rlbandit", "numpy", "scipy", "pandas", "pyarrow", "torch", "cvxpy", "matplotlib", "seaborn",
            "ray", "transformers", "trl")


# ---------------------------------------------------------------------------------------------

#: Variables that would point git at another repository than the one holding the path asked about.
_GIT_LOCATION_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY")


def git_state(path: str | os.PathLike) -> dict[str, Any]:
    """The git repository that contains ``path`` (a file or a folder): ``{"commit", "dirty", "root"}``.

    ``commit`` is HEAD's hash; ``dirty`` is True when tracked files differ from it or when ``path``
    is a file that is not tracked (the results then come from code no commit holds); ``root`` is
    the repository's top folder. All three are None outside a repository (or without git), and
    ``commit`` and ``dirty`` are None in a repository without commits."""
    unknown: dict[str, Any] = {"commit": None, "dirty": None, "root": None}
    try:
        target = Path(path).expanduser().resolve()
    except (OSError, RuntimeError, TypeError):
        return unknown
    if not target.exists():
        return unknown
    folder = target if target.is_dir() else target.parent
    env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARIABLES}

    def git(*args: str) -> subprocess.CompletedProcess:
        # --no-optional-locks: reading the state must not take the index lock of a repository others use
        return subprocess.run(["git", "--no-optional-locks", *args], cwd=folder, env=env, capture_output=True,
                              text=True, timeout=10)

    try:
        top = git("rev-parse", "--show-toplevel")
        if top.returncode != 0:
            return unknown
        root = top.stdout.strip() or None
        head = git("rev-parse", "--verify", "--quiet", "HEAD")
        commit = head.stdout.strip() if head.returncode == 0 else ""
        if not commit:
            return {"commit": None, "dirty": None, "root": root}
        status = git("status", "--porcelain", "--untracked-files=no")
        dirty = status.stdout.strip() != "" if status.returncode == 0 else None
        if dirty is False and target.is_file():
            dirty = git("ls-files", "--error-unmatch", "--", str(target)).returncode != 0
    except (OSError, subprocess.SubprocessError):
        return unknown
    return {"commit": commit, "dirty": dirty, "root": root}


@lru_cache(maxsize=1)
def _toolkit_git() -> dict[str, Any]:
    # once per process: the toolkit's own code does not change under a running sweep
    return git_state(Path(__file__).resolve().parent)


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
    """Provenance of the current process: package versions, the toolkit's git state (``git``:
    :func:`git_state` of this package's folder) and the machine. The study's own repository is
    recorded by the runner (``study_git``), which knows the study's file."""
    return {"versions": dict(_versions()), "git": dict(_toolkit_git()), "machine": _machine()}


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
