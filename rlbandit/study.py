"""The shape of a study: what every module in ``benchmarks/`` declares.

A study module (``benchmarks/NAME.py``) defines ``STUDY = Study(...)``:

- ``configs(smoke)`` → the sweep as a sequence of frozen config dataclasses (plain Python data;
  ``smoke=True`` gives a sweep small enough for CI). Each config is one run; its fields are joined
  to the run's rows as columns by the runner, keyed by a run id derived from the config.
- ``run(config)`` → a tidy ``pandas.DataFrame`` (one row per seed × setting × iteration) of what
  the run measured. It is pure: all randomness comes from seeds in the config.
- ``report(frame)`` → :class:`ReportContent`: the headline tables and figures of the report,
  computed from the concatenated frame of all runs (config columns included). It returns
  figures and never writes files; only the report writer does.
- ``timing_columns`` → the columns of ``run``'s frame that hold wall-clock measurements (they
  differ between two runs of one config). The store keeps them in a timing file beside the result
  file, which is then bit-reproducible, and joins them back when loading, so ``report`` sees them.
- ``symbols`` → axis labels (DESIGN's notation) for the study's own columns, added to
  :data:`rlbandit.plots.SYMBOLS`; :meth:`Study.render` applies them and the one report style
  before calling ``report``, so a study's ``report`` only computes.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

__all__ = ["Study", "ReportContent", "ReportFigure", "deferred"]


@dataclass(frozen=True)
class _Deferred:
    target: str

    def __call__(self, frame: pd.DataFrame) -> "ReportContent":
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)(frame)


def deferred(target: str) -> Callable[[pd.DataFrame], "ReportContent"]:
    """A study's ``report`` that lives in another module (``"package.module:function"``), imported
    when the report is rendered: a report module may then import the study module's constants
    without an import cycle. Picklable, like the module-level function it names."""
    module, sep, attr = target.partition(":")
    if not (sep and all(part.isidentifier() for part in module.split(".")) and attr.isidentifier()):
        raise ValueError(f"target: expected 'package.module:function', got {target!r}")
    return _Deferred(target)


@dataclass(frozen=True)
class ReportFigure:
    """One figure of a report: ``name`` is the PNG's file stem; ``caption`` says in one sentence
    what it shows."""

    name: str
    figure: Any  # matplotlib.figure.Figure (kept untyped so matplotlib loads lazily)
    caption: str


@dataclass(frozen=True)
class ReportContent:
    """What a study's report says, computed from its results frame."""

    summary: str  # markdown: the findings in plain words, with numbers
    tables: tuple[tuple[str, pd.DataFrame], ...] = ()  # (title, table) — the headline table first
    figures: tuple[ReportFigure, ...] = ()
    notes: str = ""  # markdown appended after the figures (caveats, what was left alone)


@dataclass(frozen=True)
class Study:
    """A benchmark study (see the module docstring)."""

    name: str
    description: str  # markdown: the question the study answers and what is swept
    configs: Callable[[bool], Sequence[Any]]
    run: Callable[[Any], pd.DataFrame]
    report: Callable[[pd.DataFrame], ReportContent]
    tags: tuple[str, ...] = field(default=())
    symbols: Mapping[str, str] = field(default_factory=dict)  # column → axis label
    timing_columns: tuple[str, ...] = ()  # wall-clock columns of run's frame, stored apart from the results

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"name: a study name must be a Python identifier, got {self.name!r}")
        bad = [k for k, v in dict(self.symbols).items() if not (isinstance(k, str) and k and isinstance(v, str))]
        if bad:
            raise ValueError(f"symbols: expected column-name → label strings, got bad entries for {bad!r}")
        object.__setattr__(self, "symbols", dict(self.symbols))  # a copy (a mappingproxy would not pickle)
        timing = self.timing_columns
        if (isinstance(timing, str) or not isinstance(timing, (tuple, list))
                or not all(isinstance(c, str) and c for c in timing) or len(set(timing)) != len(timing)):
            raise ValueError(f"timing_columns: expected a tuple of distinct column names, got {timing!r}")
        object.__setattr__(self, "timing_columns", tuple(timing))

    def render(self, frame: pd.DataFrame) -> ReportContent:
        """``report(frame)`` with the report style and this study's axis labels in place."""
        from rlbandit import plots

        plots.apply_style()
        for column, text in self.symbols.items():
            plots.register_symbol(column, text)
        content = self.report(frame)
        if not isinstance(content, ReportContent):
            raise ValueError(f"report: study {self.name!r} returned {type(content).__name__}, expected ReportContent")
        return content
