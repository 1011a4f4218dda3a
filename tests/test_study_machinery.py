"""The study machinery: run ids, the atomic results store, the runner's backends, failure
recording, resumption after an interruption or a killed worker, the report writer and plots."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlbandit import plots
from rlbandit.reports import markdown_table, write_report
from rlbandit.runner import list_studies, load_study, plan, run_sweep
from rlbandit.store import ResultStore, config_columns, config_fields, run_id
from rlbandit.study import ReportContent, ReportFigure, Study


# ---------------------------------------------------------------------------------------------
# A toy study (module level, so spawned workers can import it by reference)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ToyConfig:
    scale: float = 1.0
    seed: int = 0
    fail: bool = False
    sizes: tuple[int, ...] = (1, 2, 4)


#: Files whose existence makes a toy run misbehave once (set by the tests through env vars, so
#: spawned workers see them too).
_KILL_ENV = "RLBANDIT_TEST_KILL_MARKER"
_INTERRUPT_ENV = "RLBANDIT_TEST_INTERRUPT_MARKER"


def toy_run(config: ToyConfig) -> pd.DataFrame:
    if config.fail:
        raise RuntimeError(f"toy failure at scale {config.scale}")
    for env, action in ((_KILL_ENV, "kill"), (_INTERRUPT_ENV, "interrupt")):
        marker = os.environ.get(env)
        if marker and config.seed == 2 and Path(marker).exists():
            Path(marker).unlink()
            if action == "kill":
                os._exit(17)  # a worker dying mid-run
            raise KeyboardInterrupt
    rng = np.random.default_rng(config.seed)
    n = np.array(config.sizes)
    seeds = np.arange(3)
    values = config.scale / n[None, :] * np.exp(rng.normal(0, 0.1, (3, len(n))))
    return pd.DataFrame({"seed": np.repeat(seeds, len(n)), "n": np.tile(n, 3), "value": values.ravel()})


def toy_report(frame: pd.DataFrame) -> ReportContent:
    fig = plots.line_plot(frame, x="n", y="value", hue="scale", logx=True, logy=True, reference_slopes=(-1.0,))
    table = frame.groupby("scale", as_index=False)["value"].mean()
    return ReportContent(summary=f"{frame['run_id'].nunique()} runs.", tables=(("mean value", table),),
                         figures=(ReportFigure("value_vs_n", fig, "Value against n."),), notes="toy")


def toy_configs(smoke: bool):
    return [ToyConfig(scale=s, seed=i) for i, s in enumerate((1.0, 2.0, 3.0, 4.0))]


TOY = Study("toy", "A toy study.", toy_configs, toy_run, toy_report)


def failing_configs(smoke: bool):
    return [ToyConfig(scale=1.0), ToyConfig(scale=2.0, fail=True), ToyConfig(scale=3.0, seed=1)]


FAILING = Study("toy_failing", "A toy study with one failing run.", failing_configs, toy_run, toy_report)


def _tmp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


# ---------------------------------------------------------------------------------------------
# Run ids and config fields
# ---------------------------------------------------------------------------------------------

def test_run_id_is_stable_across_sessions():
    # a fixed value: the id must not depend on the process (hash seeds, dict order)
    assert run_id("toy", ToyConfig()) == run_id("toy", ToyConfig(scale=1.0, seed=0, fail=False, sizes=(1, 2, 4)))
    import hashlib

    payload = ('{"config":"ToyConfig","fields":{"fail":false,"scale":1.0,"seed":0,"sizes":[1,2,4]},'
               '"study":"toy"}')
    assert run_id("toy", ToyConfig()) == hashlib.sha256(payload.encode()).hexdigest()[:16] == "c7bdb809a9e8b94e"


@settings(max_examples=60, deadline=None)
@given(a=st.floats(-1e6, 1e6, allow_nan=False), b=st.floats(-1e6, 1e6, allow_nan=False),
       seed=st.integers(0, 10**6))
def test_property_run_id_injective_on_fields(a, b, seed):
    """Equal configs ↔ equal run ids (distinct fields never collide, different studies differ)."""
    ca, cb = ToyConfig(scale=a, seed=seed), ToyConfig(scale=b, seed=seed)
    assert (run_id("toy", ca) == run_id("toy", cb)) == (ca == cb)
    assert run_id("toy", ca) != run_id("other", ca)


def test_config_columns_flatten_nested_and_tuples():
    @dataclass(frozen=True)
    class Outer:
        inner: ToyConfig
        eta: float = 0.5

    fields = config_fields(Outer(ToyConfig(sizes=(3, 5))))
    columns = config_columns(fields)
    assert columns["inner.sizes"] == (3, 5) and columns["eta"] == 0.5 and columns["inner.seed"] == 0
    with pytest.raises(ValueError, match="config"):
        config_fields({"not": "a dataclass"})


# ---------------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(values=st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=20))
def test_property_store_round_trip(tmp_path_factory, values):
    """A stored run loads back bit-identically, with its config fields joined as columns."""
    store = ResultStore(tmp_path_factory.mktemp("store"), "toy")
    frame = pd.DataFrame({"seed": np.arange(len(values)), "value": values})
    config = ToyConfig(scale=2.5)
    rid = run_id("toy", config)
    store.write_result(rid, frame, {"config": config_fields(config)})
    loaded = store.load()
    assert loaded["value"].tolist() == values
    assert (loaded["run_id"] == rid).all() and (loaded["scale"] == 2.5).all()
    assert loaded["sizes"].iloc[0] == (1, 2, 4)


def test_store_write_is_atomic(tmp_path, monkeypatch):
    store = ResultStore(tmp_path, "toy")
    rid = run_id("toy", ToyConfig())

    def broken_replace(src, dst):
        raise OSError("disk died during the rename")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        store.write_result(rid, toy_run(ToyConfig()), {"config": config_fields(ToyConfig())})
    monkeypatch.undo()
    assert not store.result_path(rid).exists() and store.record(rid) is None
    assert _tmp_files(tmp_path) == []  # the temporary file was removed
    # stale temporaries of a killed process are cleaned when the store is opened
    (tmp_path / "runs" / ".x.parquet.123.tmp").write_bytes(b"half")
    ResultStore(tmp_path, "toy")
    assert _tmp_files(tmp_path) == []


def test_run_frame_column_wins_over_config_field(tmp_path):
    store = ResultStore(tmp_path, "toy")
    config = ToyConfig(scale=9.0)
    store.write_result("abc", pd.DataFrame({"scale": [1.0, 2.0]}), {"config": config_fields(config)})
    assert store.load()["scale"].tolist() == [1.0, 2.0]


# ---------------------------------------------------------------------------------------------
# The runner
# ---------------------------------------------------------------------------------------------

def test_sweep_skips_finished_runs(tmp_path):
    first = run_sweep(TOY, out=tmp_path, backend="serial", progress=False)
    assert len(first.finished) == 4 and first.skipped == 0 and first.ok
    again = run_sweep(TOY, out=tmp_path, backend="serial", progress=False)
    assert again.skipped == 4 and again.finished == []
    frame = ResultStore(tmp_path).load()
    assert frame["run_id"].nunique() == 4 and set(frame["scale"]) == {1.0, 2.0, 3.0, 4.0}
    records = ResultStore(tmp_path).records()
    record = records[0]
    assert record["status"] == "ok" and record["versions"]["numpy"] == np.__version__
    assert {"git", "machine", "wall_s", "config", "seeds"} <= set(record)
    assert record["seeds"] == {"seed": record["config"]["seed"]}


def test_failing_run_is_recorded_and_sweep_goes_on(tmp_path):
    summary = run_sweep(FAILING, out=tmp_path, backend="serial", progress=False)
    assert len(summary.finished) == 2 and len(summary.failed) == 1 and not summary.ok
    store = ResultStore(tmp_path)
    failed = store.record(summary.failed[0])
    assert failed["status"] == "failed" and "toy failure at scale 2.0" in failed["error"]
    assert "RuntimeError" in failed["traceback"] and "toy_run" in failed["traceback"]
    assert not store.result_path(summary.failed[0]).exists()
    assert store.load()["run_id"].nunique() == 2
    # a re-run retries only the failed run
    again = run_sweep(FAILING, out=tmp_path, backend="serial", progress=False)
    assert again.skipped == 2 and again.failed == summary.failed
    # the report lists the failure and still shows the rest
    readme = write_report(FAILING, results=tmp_path, out=tmp_path / "report", smoke=False)
    text = readme.read_text()
    assert "## Failed runs" in text and "toy failure at scale 2.0" in text and "2 runs" in text


def test_resume_after_interrupt_gives_identical_results(tmp_path, monkeypatch):
    reference = tmp_path / "reference"
    run_sweep(TOY, out=reference, backend="serial", progress=False)
    marker = tmp_path / "interrupt"
    marker.touch()
    monkeypatch.setenv(_INTERRUPT_ENV, str(marker))
    resumed = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C during the third run
        run_sweep(TOY, out=resumed, backend="serial", progress=False)
    store = ResultStore(resumed)
    assert len(store.finished_ids()) == 2 and _tmp_files(resumed) == []
    assert json.loads(next((resumed / "sweeps").glob("*.json")).read_text())["interrupted"] is True
    summary = run_sweep(TOY, out=resumed, backend="serial", progress=False)
    assert summary.skipped == 2 and len(summary.finished) == 2
    pd.testing.assert_frame_equal(ResultStore(reference).load(), ResultStore(resumed).load())


def test_killed_worker_is_retried_and_results_identical(tmp_path, monkeypatch):
    """A worker process that dies (os._exit) breaks the pool; the pool is rebuilt, the run retried,
    and the stored results equal those of an undisturbed sweep."""
    marker = tmp_path / "kill"
    marker.touch()
    monkeypatch.setenv(_KILL_ENV, str(marker))
    out = tmp_path / "killed"
    summary = run_sweep(TOY, out=out, backend="process", workers=1, progress=False)
    assert not marker.exists(), "the run that kills its worker never ran"
    assert summary.ok and len(summary.finished) == 4 and _tmp_files(out) == []
    reference = tmp_path / "reference"
    run_sweep(TOY, out=reference, backend="serial", progress=False)
    pd.testing.assert_frame_equal(ResultStore(reference).load(), ResultStore(out).load())


def test_runner_validates_arguments(tmp_path):
    with pytest.raises(ValueError, match="backend"):
        run_sweep(TOY, out=tmp_path, backend="spark")
    with pytest.raises(ValueError, match="workers"):
        run_sweep(TOY, out=tmp_path, workers=0)
    with pytest.raises(ValueError, match="address"):
        run_sweep(TOY, out=tmp_path, backend="process", address="ray://x:1")
    with pytest.raises(ValueError, match="no registered study"):
        load_study("no_such_study")
    duplicated = Study("dup", "", lambda smoke: [ToyConfig(), ToyConfig()], toy_run, toy_report)
    with pytest.raises(ValueError, match="same config twice"):
        plan(duplicated)
    assert {"rate", "frontier"} <= set(list_studies())


def test_ray_backend_matches_process_backend(tmp_path):
    pytest.importorskip("ray")
    import ray

    study = load_study("frontier")
    process = run_sweep(study, smoke=True, out=tmp_path / "process", backend="process", workers=1, progress=False)
    on_ray = run_sweep(study, smoke=True, out=tmp_path / "ray", backend="ray", workers=1, progress=False)
    assert process.ok and on_ray.ok and not ray.is_initialized()  # the local Ray was shut down
    pd.testing.assert_frame_equal(ResultStore(tmp_path / "process").load(), ResultStore(tmp_path / "ray").load())
    assert {r["backend"] for r in ResultStore(tmp_path / "ray").records()} == {"ray"}


# ---------------------------------------------------------------------------------------------
# Reports and plots
# ---------------------------------------------------------------------------------------------

def test_report_writes_markdown_and_figures(tmp_path):
    run_sweep(TOY, out=tmp_path / "results", backend="serial", progress=False)
    out = tmp_path / "report"
    out.mkdir()
    (out / "old_figure.png").write_bytes(b"stale")
    readme = write_report(TOY, results=tmp_path / "results", out=out)
    text = readme.read_text()
    for section in ("## What was run", "## Findings", "### mean value", "## Figures", "## How to regenerate",
                    "## Run time and machine", "rlbandit run toy", "![value_vs_n](value_vs_n.png)"):
        assert section in text, section
    assert "`scale` ∈ {1, 2, 3, 4}" in text
    assert (out / "value_vs_n.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "old_figure.png").exists()
    with pytest.raises(ValueError, match="no results folder"):
        write_report(TOY, results=tmp_path / "missing", out=out)


def test_render_applies_the_study_symbols(monkeypatch):
    monkeypatch.setattr(plots, "SYMBOLS", dict(plots.SYMBOLS))  # keep the label out of other tests
    study = Study("labelled", "", toy_configs, toy_run, toy_report, symbols={"value": r"$V(n)$"})
    frame = toy_run(ToyConfig()).assign(run_id="r", scale=1.0)
    content = study.render(frame)
    axis = content.figures[0].figure.axes[0]
    assert axis.get_ylabel() == r"$V(n)$" and plots.label("value") == r"$V(n)$"
    with pytest.raises(ValueError, match="symbols"):
        Study("bad", "", toy_configs, toy_run, toy_report, symbols={"value": 3})
    not_content = Study("bad_report", "", toy_configs, toy_run, lambda frame: "text")
    with pytest.raises(ValueError, match="report"):
        not_content.render(frame)


def test_markdown_table_formats_numbers():
    table = markdown_table(pd.DataFrame({"a": [1, 2], "b": [0.000012345, 123.456], "c": ["x|y", None]}))
    lines = table.splitlines()
    assert lines[0] == "| a | b | c |" and lines[1] == "|---:|---:|---|"
    assert lines[2] == "| 1 | 1.234e-05 | x\\|y |" and lines[3] == "| 2 | 123.5 |  |"


@settings(max_examples=25, deadline=None)
@given(values=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=30))
def test_property_summarize_matches_t_interval(values):
    """The plotted band is the Student-t 95 % interval of the mean across replicates."""
    from scipy import stats

    frame = pd.DataFrame({"x": 1, "y": values})
    row = plots.summarize(frame, "y", ["x"]).iloc[0]
    mean, sem = np.mean(values), stats.sem(values)
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=sem) if sem > 0 else (mean, mean)
    assert row["count"] == len(values)
    np.testing.assert_allclose([row["mean"], row["lo"], row["hi"]], [mean, lo, hi], rtol=1e-9, atol=1e-9)


def test_line_plot_panels_and_validation():
    frame = pd.DataFrame({"n": np.tile([10, 100, 1000], 8), "seed": np.repeat(np.arange(4), 6),
                          "eta": np.tile(np.repeat([0.1, 1.0], 3), 4), "dim": 2, "subopt": 0.5})
    fig = plots.line_plot(frame, x="n", y="subopt", hue="eta", col="dim", logx=True, logy=True,
                          reference_slopes=(-0.5, -1.0))
    (ax,) = [a for a in fig.axes if a.get_visible()]
    assert ax.get_xscale() == "log" and ax.get_ylabel() == plots.label("subopt")
    assert len(ax.get_lines()) == 2 + 2  # two η lines and two slope guides
    with pytest.raises(ValueError, match="missing column"):
        plots.line_plot(frame, x="n", y="nope")
    with pytest.raises(ValueError, match="reference_slopes"):
        plots.line_plot(frame, x="n", y="subopt", reference_slopes=(-1.0,))


def test_line_plot_keeps_categorical_order():
    frame = pd.DataFrame({"n": np.tile([10, 100], 6), "seed": np.repeat(np.arange(2), 6),
                          "method": np.tile(np.repeat(["mle", "lcb", "ensemble"], 2), 2), "subopt": 0.5})
    order = ["mle", "lcb", "ensemble"]
    fig = plots.line_plot(frame.assign(method=pd.Categorical(frame["method"], order + ["unused"])),
                          x="n", y="subopt", hue="method", band=None)
    (ax,) = [a for a in fig.axes if a.get_visible()]
    assert [line.get_label() for line in ax.get_lines()] == [f"method = {m}" for m in order]
    fig = plots.line_plot(frame, x="n", y="subopt", hue="method", band=None)  # plain strings: sorted
    (ax,) = [a for a in fig.axes if a.get_visible()]
    assert [line.get_label() for line in ax.get_lines()] == [f"method = {m}" for m in sorted(order)]


def test_load_results_joins_the_config_by_folder_or_by_name(tmp_path):
    """rlbandit.load_results: the rows with their config fields, from a results folder or a study name."""
    import rlbandit
    from rlbandit.runner import load_results, results_dir

    assert rlbandit.load_results is load_results
    folder = results_dir("toy", smoke=True, root=tmp_path)
    run_sweep(TOY, out=folder, backend="serial", progress=False)
    by_folder = load_results(folder)
    by_name = load_results("toy", smoke=True, root=tmp_path)
    pd.testing.assert_frame_equal(by_folder, by_name)
    assert {"run_id", "seed", "n", "value", "scale", "fail", "sizes"} <= set(by_folder.columns)
    assert len(by_folder) == 4 * 3 * 3 and set(by_folder["scale"]) == {1.0, 2.0, 3.0, 4.0}
    with pytest.raises(ValueError, match="rlbandit run toy --smoke"):
        load_results("toy", smoke=True, root=tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="neither a study name nor a results folder"):
        load_results(str(tmp_path / "no such folder"))


def test_unpicklable_study_fails_at_once_with_the_fix(tmp_path):
    """A study built from local functions cannot reach spawned workers: one clear ValueError, nothing stored."""
    local = Study("toy_local", "A study with a lambda run.", toy_configs, lambda config: toy_run(config), toy_report)
    with pytest.raises(ValueError, match=r"cannot be sent to process workers.*--backend serial"):
        run_sweep(local, out=tmp_path, backend="process", workers=1, progress=False)
    assert ResultStore(tmp_path).finished_ids() == set()
    assert run_sweep(local, out=tmp_path, backend="serial", progress=False).ok  # the fix the message names


_USER_STUDY = '''
from dataclasses import dataclass

import pandas as pd

from rlbandit.study import ReportContent, Study


@dataclass(frozen=True)
class MyConfig:
    scale: float = 1.0
    seed: int = 0


def run(config):
    return pd.DataFrame({"n": [1, 2, 4], "value": [config.scale / n for n in (1, 2, 4)]})


def report(frame):
    return ReportContent(summary=f"{frame['run_id'].nunique()} runs of my study.")


def configs(smoke):
    return [MyConfig(scale=s, seed=i) for i, s in enumerate((1.0, 2.0))]


STUDY = Study("mystudy", "A study declared outside benchmarks/.", configs, run, report)
OTHER = Study("myother", "A second study in the same file.", configs, run, report)
'''


@pytest.mark.parametrize("backend", ["process", "serial"])
def test_a_study_of_your_own_runs_from_its_file_through_the_cli(tmp_path, backend):
    """`rlbandit run path/to/mystudy.py` and `rlbandit report` the same, with spawned workers too."""
    from typer.testing import CliRunner

    from rlbandit.cli import app

    path = tmp_path / "mystudy.py"
    path.write_text(_USER_STUDY)
    out = tmp_path / "results"
    ran = CliRunner().invoke(app, ["run", str(path), "--out", str(out), "--backend", backend, "--workers", "1"])
    assert ran.exit_code == 0, ran.output
    assert "2 finished, 0 failed" in ran.output
    frame = ResultStore(out).load()
    assert set(frame["scale"]) == {1.0, 2.0} and len(frame) == 6
    reported = CliRunner().invoke(app, ["report", str(path), "--results", str(out), "--out", str(tmp_path / "rep")])
    assert reported.exit_code == 0, reported.output
    text = (tmp_path / "rep" / "README.md").read_text()
    assert "2 runs of my study." in text
    # the report names the command that really regenerates it and the file that declares the study
    assert f"rlbandit run {path}" in text and f"declared in `{path}`" in text


def test_load_study_from_a_module_and_attribute(tmp_path, monkeypatch):
    from rlbandit.runner import load_study

    (tmp_path / "mypackage").mkdir()
    (tmp_path / "mypackage" / "__init__.py").write_text("")
    (tmp_path / "mypackage" / "studies.py").write_text(_USER_STUDY)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_study("mypackage.studies").name == "mystudy"
    assert load_study("mypackage.studies:OTHER").name == "myother"
    with pytest.raises(ValueError, match="defines no MISSING"):
        load_study("mypackage.studies:MISSING")
    with pytest.raises(ValueError, match="cannot import module"):
        load_study("nopackage.nomodule")
    with pytest.raises(ValueError, match="no study file"):
        load_study(str(tmp_path / "absent.py"))


def test_built_in_studies_are_registered_entry_points():
    """The runner finds studies through the entry-point group, as it finds a third party's."""
    from importlib.metadata import entry_points

    from rlbandit.runner import ENTRY_POINT_GROUP, study_source

    registered = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert {"rate", "frontier", "offline", "online", "nash", "oracles", "overoptimization", "llm", "llm_gpu"} \
        <= set(registered)
    assert list_studies() == sorted(registered)
    assert registered["rate"] == "benchmarks.rate:STUDY"
    assert study_source(load_study("llm_gpu")).endswith("benchmarks/llm_gpu.py")  # not the llm.py its run lives in


def test_log_axis_bands_are_computed_in_log_space():
    """On a log axis the line is the geometric mean and the band is a t interval of log10 y: it
    stays positive however wide the spread (a symmetric band of y would plunge below zero)."""
    from scipy import stats

    from rlbandit import plots

    rng = np.random.default_rng(0)
    values = 10.0 ** rng.normal(-3, 1.5, 24)
    frame = pd.DataFrame({"n": 10, "y": values})
    out = plots.summarize(frame, "y", ["n"], log=True).iloc[0]
    assert out["mean"] == pytest.approx(stats.gmean(values), rel=1e-12)
    logs = np.log10(values)
    half = stats.t.ppf(0.975, 23) * logs.std(ddof=1) / np.sqrt(24)
    assert out["lo"] == pytest.approx(10 ** (logs.mean() - half), rel=1e-12) and out["lo"] > 0
    assert out["hi"] == pytest.approx(10 ** (logs.mean() + half), rel=1e-12)
    linear = plots.summarize(frame, "y", ["n"]).iloc[0]
    assert linear["lo"] < 0 < out["lo"]  # the arithmetic band would cross zero


def test_one_method_one_colour_in_every_figure():
    from rlbandit import plots

    a = pd.DataFrame({"x": [1, 2] * 3, "y": 1.0, "method": ["mle"] * 2 + ["lcb"] * 2 + ["mine"] * 2})
    b = pd.DataFrame({"x": [1, 2] * 2, "y": 1.0, "method": ["zzz"] * 2 + ["mle"] * 2})
    colour = {}
    for frame in (a, b):
        fig = plots.line_plot(frame, "x", "y", hue="method")
        for line in fig.axes[0].get_lines():
            name = line.get_label().split("= ")[-1]
            colour.setdefault(name, set()).add(line.get_color())
    assert len(colour["mle"]) == 1 and colour["mle"] == {plots.COLORS["mle"]}
    used_in_a = {next(iter(colour[n])) for n in ("mle", "lcb", "mine")}
    assert len(used_in_a) == 3  # an unregistered level never takes a registered level's colour
    with pytest.raises(ValueError, match="color"):
        plots.register_color("mine", "not-a-colour")


@pytest.mark.parametrize("timing", ["wall_s", ("wall_s", "wall_s"), ("wall_s", ""), (1,)])
def test_study_timing_columns_are_validated(timing):
    with pytest.raises(ValueError, match="timing_columns"):
        Study("timed", "d", lambda smoke: [], lambda c: pd.DataFrame(), lambda f: None, timing_columns=timing)


def test_study_timing_columns_become_a_tuple():
    study = Study("timed", "d", lambda smoke: [], lambda c: pd.DataFrame(), lambda f: None,
                  timing_columns=["wall_s", "fit_s"])
    assert study.timing_columns == ("wall_s", "fit_s")
