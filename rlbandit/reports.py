"""Report writer: a study's results → ``reports/STUDY/README.md`` + one PNG per figure.

This is the only code that writes report files. ``write_report(study, results, out)`` loads the
finished runs of the study's declared sweep from its results store, calls ``study.report(frame)``
(which returns tables and figures, see :mod:`rlbandit.study`) and writes a markdown page with:
what was run (the sweep's varying fields and the seeds), the findings, the headline table and the
other tables, each figure with its caption, notes, failed runs and missing runs (each named, with
its config and why it has no result), how to regenerate it,
and the run time and machine (from the manifest). ``write_index`` keeps ``reports/README.md`` —
the list of every report — up to date.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from rlbandit.runner import load_study, plan, results_dir, study_source, study_spec
from rlbandit.store import (ResultStore, atomic_write_bytes, atomic_write_text, config_columns, config_fields,
                            now)
from rlbandit.study import ReportContent, Study

__all__ = ["write_report", "write_index", "markdown_table", "REPORTS_ROOT"]

REPORTS_ROOT = Path("reports")


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if value == 0:
            return "0"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        if 1e-3 <= abs(value) < 1e5:
            return f"{value:.4g}"
        return f"{value:.3e}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame, max_rows: int = 200) -> str:
    """A GitHub-markdown table of ``frame`` (index dropped unless named; floats in 4 significant
    digits; at most ``max_rows`` rows, with a note when cut)."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame: expected a DataFrame, got {type(frame).__name__}")
    if any(name is not None for name in frame.index.names) and not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()
    header = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(frame[c]) else "---" for c in frame.columns) + "|"]
    for row in frame.head(max_rows).itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    if len(frame) > max_rows:
        lines.append(f"\n*({len(frame) - max_rows} more rows not shown)*")
    return "\n".join(lines)


def _sweep_table(records: list[dict[str, Any]]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The config fields that vary across runs (one row per run) and those that are constant."""
    rows = [{"run_id": r["run_id"], **config_columns(r.get("config", {}))} for r in records]
    table = pd.DataFrame(rows)
    if table.empty:
        return table, {}
    varying = [c for c in table.columns if c != "run_id" and table[c].astype(str).nunique() > 1]
    constant = {c: table[c].iloc[0] for c in table.columns if c != "run_id" and c not in varying}
    return table[varying].drop_duplicates(), constant


def _describe_values(values: Sequence[Any]) -> str:
    values = sorted(set(values), key=lambda v: (isinstance(v, str), v))
    return ", ".join(_cell(v) if v != "" else '""' for v in values)


def _duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "n/a"
    if seconds < 90:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def write_report(study: Study | str, *, results: str | os.PathLike | None = None,
                 out: str | os.PathLike | None = None, smoke: bool = False,
                 frame: pd.DataFrame | None = None) -> Path:
    """Write the report of a study; returns the README path.

    Args:
        study: a study name or :class:`Study`.
        results: its results folder (default ``results/STUDY`` or ``results/smoke/STUDY``).
        out: the report folder (default ``reports/STUDY``; for smoke sweeps ``RESULTS/report`` so
            a smoke report never overwrites the committed full one).
        smoke: report the smoke sweep's runs.
        frame: use this frame instead of loading the store (tests).
    """
    study = load_study(study)
    results = Path(results) if results is not None else results_dir(study.name, smoke)
    if not results.exists():
        raise ValueError(f"results: no results folder {results}; run `rlbandit run {study.name}"
                         f"{' --smoke' if smoke else ''}` first")
    out = Path(out) if out is not None else (results / "report" if smoke else REPORTS_ROOT / study.name)
    store = ResultStore(results, study.name)
    planned = plan(study, smoke)
    planned_ids = [rid for rid, _ in planned]
    by_id = {r["run_id"]: r for r in store.records()}
    ok = [rid for rid in planned_ids if rid in by_id and by_id[rid].get("status") == "ok" and store.is_finished(rid)]
    failed = [by_id[rid] for rid in planned_ids if rid in by_id and by_id[rid].get("status") == "failed"]
    missing = [rid for rid in planned_ids if rid not in ok and rid not in {f["run_id"] for f in failed}]
    for rid in missing:  # a broken record or result file counts as not run, saying why
        if rid in store.problems:
            print(f"run {rid}: listed as not run: {store.problems[rid]}", file=sys.stderr)
    if frame is None:
        frame = store.load(ok)
    if frame.empty or not ok:
        raise ValueError(f"results: no finished runs of {study.name!r} in {results} "
                         f"({len(failed)} failed, {len(missing)} not run)")
    import matplotlib

    matplotlib.use("Agg")  # the report writer renders to files, never to a screen
    try:
        content = study.render(frame)
    except Exception as error:
        if not missing:
            raise
        # a report written for the whole sweep may not cope with a part of it: say what is missing
        raise ValueError(f"results: the report of {study.name!r} failed with {len(missing)} of {len(planned_ids)} "
                         f"runs missing ({', '.join(missing[:5])}{', …' if len(missing) > 5 else ''}); run `rlbandit "
                         f"run {study_spec(study)}{' --smoke' if smoke else ''}` to complete the sweep "
                         f"({type(error).__name__}: {error})") from error

    out.mkdir(parents=True, exist_ok=True)
    written = set()
    for fig in content.figures:
        if not fig.name.replace("-", "_").isidentifier():
            raise ValueError(f"figures: figure name {fig.name!r} must be a plain file stem")
        import io

        buffer = io.BytesIO()
        fig.figure.savefig(buffer, format="png")
        atomic_write_bytes(out / f"{fig.name}.png", buffer.getvalue())
        written.add(f"{fig.name}.png")
        try:
            import matplotlib.pyplot as plt

            plt.close(fig.figure)
        except Exception:  # figures built without pyplot need no closing
            pass
    for stale in out.glob("*.png"):  # figures a previous version of the report had
        if stale.name not in written:
            stale.unlink()

    records = [by_id[rid] for rid in ok]
    configs = dict(planned)
    missing = [(rid, configs[rid], store.problems.get(rid)) for rid in missing]
    text = _markdown(study, content, records, failed, missing, store, results, out, smoke)
    readme = out / "README.md"
    atomic_write_text(readme, text)
    if out.parent.resolve() == REPORTS_ROOT.resolve() and not smoke:
        write_index(out.parent)
    return readme


def _markdown(study: Study, content: ReportContent, records, failed, missing, store: ResultStore,
              results: Path, out: Path, smoke: bool) -> str:
    lines = [f"# {study.name}{' (smoke sweep)' if smoke else ''}", "",
             "*Generated by `rlbandit report " + study_spec(study) + (" --smoke`" if smoke else "`") +
             f" on {now()}; do not edit by hand.*", "", study.description.strip(), ""]

    # what was run
    varying, constant = _sweep_table(records)
    lines += ["## What was run", ""]
    lines.append(f"{len(records)} runs{' (smoke sweep)' if smoke else ''}"
                 + (f"; {len(failed)} failed" if failed else "")
                 + (f"; {len(missing)} not run" if missing else "") + ".")
    if not varying.empty:
        lines.append("")
        for column in varying.columns:
            lines.append(f"- `{column}` ∈ {{{_describe_values(varying[column].tolist())}}}")
    if constant:
        lines += ["", "Fixed: " + ", ".join(f"`{k}` = {_cell(v)}" for k, v in constant.items()) + "."]
    lines.append("")

    # findings
    lines += ["## Findings", "", content.summary.strip(), ""]
    for i, (title, table) in enumerate(content.tables):
        lines += [f"### {title}", "", markdown_table(table), ""]
    if content.figures:
        lines += ["## Figures", ""]
        for fig in content.figures:
            lines += [f"![{fig.name}]({fig.name}.png)", "", f"*{fig.caption.strip()}*", ""]
    if content.notes.strip():
        lines += ["## Notes", "", content.notes.strip(), ""]
    if failed:
        lines += ["## Failed runs", ""]
        for record in failed:
            lines.append(f"- `{record['run_id']}` ({json.dumps(record.get('config', {}), sort_keys=True)}): "
                         f"{record.get('error', '?')}")
        lines.append("")
    if missing:
        lines += ["## Missing runs", "", f"{len(missing)} run(s) of the declared sweep have no usable result, so the "
                  "findings above leave them out; `rlbandit run` computes them:", ""]
        for rid, config, why in missing:
            lines.append(f"- `{rid}` ({json.dumps(config_fields(config), sort_keys=True)})"
                         + (f": {why}" if why else ": not run yet"))
        lines.append("")

    # how to regenerate, time, machine
    flag = " --smoke" if smoke else ""
    spec = study_spec(study)
    lines += ["## How to regenerate", "", "```bash",
              f"rlbandit run {spec}{flag}      # resumable: finished runs are skipped",
              f"rlbandit report {spec}{flag}", "```", "",
              f"Results are stored per run in `{_rel(results)}/runs/` (Parquet) with their manifest in "
              f"`{_rel(results)}/manifest/`; the sweep is declared in `{study_source(study)}`.", ""]
    walls = np.array([r.get("wall_s", float("nan")) for r in records], dtype=float)
    sweeps = [s for s in store.sweeps() if s.get("smoke", False) == smoke]
    last = sweeps[-1] if sweeps else records[-1]
    machine = last.get("machine", {})
    versions = last.get("versions", {})
    git = last.get("git", {})
    lines += ["## Run time and machine", ""]
    lines.append(f"- Sum of run wall times: {_duration(np.nansum(walls))} over {len(records)} runs "
                 f"(longest run {_duration(np.nanmax(walls))}).")
    if sweeps:
        total = sum(s.get("wall_s", 0.0) for s in sweeps)
        lines.append(f"- Sweep wall time: {_duration(total)} in {len(sweeps)} invocation(s), last with "
                     f"backend `{last.get('backend')}` and {last.get('workers')} worker(s).")
    load = machine.get("load_avg_1m")
    lines.append(f"- Machine: {machine.get('platform', '?')}, {machine.get('cpu_count', '?')} CPUs "
                 f"({machine.get('processor', '?')})"
                 + (f"; 1-minute load average {load:.1f} when the last sweep ended (the machine was shared: "
                    "times scale with it)." if load is not None and load > 1.5 * (machine.get("cpu_count") or 1)
                    else f"; 1-minute load average {load:.1f}." if load is not None else "."))
    if versions:
        lines.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v) + ".")
    if git.get("commit"):
        dirty = " (with uncommitted changes)" if git.get("dirty") else ""
        lines.append(f"- Git commit: `{git['commit'][:12]}`{dirty}.")
    lines.append("")
    return "\n".join(lines)


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def write_index(root: str | os.PathLike = REPORTS_ROOT) -> Path:
    """Write ``ROOT/README.md``: one line per report folder (its study, the first sentence of the
    study's description and a link)."""
    root = Path(root)
    entries = []
    for readme in sorted(root.glob("*/README.md")):
        name = readme.parent.name
        text = readme.read_text().splitlines()
        body = [line for line in text[1:] if line.strip() and not line.startswith("*Generated")]
        first = body[0].strip() if body else ""
        if len(first) > 220:
            first = first[:217].rsplit(" ", 1)[0] + " …"
        figures = len(list(readme.parent.glob("*.png")))
        entries.append(f"| [{name}]({name}/README.md) | {first} | {figures} |")
    lines = ["# Reports", "",
             "Generated by `rlbandit report STUDY` from the results of `rlbandit run STUDY` "
             "(each study is declared in `benchmarks/STUDY.py`). Regenerate one with "
             "`rlbandit run STUDY && rlbandit report STUDY`; this index is rewritten each time.", "",
             "| study | question | figures |", "|---|---|---:|", *entries, ""]
    path = root / "README.md"
    atomic_write_text(path, "\n".join(lines))
    return path
