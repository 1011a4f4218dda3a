"""Study ``scaling`` (benchmarks/speed_scaling.py, issue 17): the smoke sweep runs and reports through
the runner and the command line; the growth-exponent fit and the minute extrapolation recover known
answers from synthetic timings; capped, failed and skipped sizes are measured as such and marked in
the report; the result rows are the same whatever the timings (so result files are reproducible)."""

from __future__ import annotations

import re
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats
from typer.testing import CliRunner

from benchmarks import speed_scaling as ss
from benchmarks.speed_scaling_report import growth_exponent, largest_within, report
from rlbandit.cli import app
from rlbandit.runner import load_study, plan
from rlbandit.store import ResultStore, config_columns, config_fields

SPEC = "benchmarks/speed_scaling.py"


def _frame(config: ss.ScalingConfig, frame: pd.DataFrame) -> pd.DataFrame:
    """A run's rows with its config joined as columns, as the store loads them."""
    frame = frame.copy()
    for key, value in config_columns(config_fields(config)).items():
        if key not in frame.columns:
            frame[key] = [value] * len(frame)
    return frame


# ---------------------------------------------------------------------------------------------
# The smoke sweep, end to end
# ---------------------------------------------------------------------------------------------

def test_smoke_study_runs_and_reports(tmp_path):
    results, out = tmp_path / "results", tmp_path / "report"
    runner = CliRunner()
    ran = runner.invoke(app, ["run", SPEC, "--smoke", "--out", str(results), "--backend", "serial"])
    assert ran.exit_code == 0, ran.output
    study = load_study(SPEC)
    ids = [rid for rid, _ in plan(study, smoke=True)]
    store = ResultStore(results, "scaling")
    assert store.finished_ids() == set(ids)
    frame = store.load(ids)
    # every family and every method of the library's registries is timed
    from rlbandit.enhancers import ENHANCERS
    from rlbandit.nash import SOLVERS
    from rlbandit.offline import METHODS

    assert set(frame["family"]) == set(ss.FAMILIES)
    assert set(METHODS) | set(ENHANCERS) | set(SOLVERS) <= set(frame["method"])
    assert set(frame["status"]) <= set(ss.STATUSES)
    ok = frame[frame["status"] == "ok"]
    assert (ok["time_s"] > 0).all()
    # a peak is measured, or the message says why not (the traced call ran past twice the cap on a busy machine)
    assert ((ok["peak_bytes"] > 0) | ok["message"].str.contains("peak not measured")).all()
    # the timing columns live apart from the result file, which holds none of them
    result_columns = set(pd.read_parquet(store.result_path(ids[0])).columns)
    assert not result_columns & set(ss.TIMING_COLUMNS)
    assert store.timing_path(ids[0]).exists()
    reported = runner.invoke(app, ["report", SPEC, "--smoke", "--results", str(results), "--out", str(out)])
    assert reported.exit_code == 0, reported.output
    text = (out / "README.md").read_text()
    for figure in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text):
        assert (out / figure).stat().st_size > 1000
    assert {"time.png", "memory.png"} <= {p.name for p in out.glob("*.png")}
    assert "Largest size that runs in 60 s" in text and "Growth exponents" in text
    # the smoke sweep caps `optimistic` on purpose (1 ms): the report says so
    capped = frame[(frame["method"] == "optimistic")]
    assert capped["status"].iloc[0] == "capped" and (capped["status"].iloc[1:] == "skipped").all()
    assert "capped (> 0.001 s)" in text and "capped at K = 3" in text


# ---------------------------------------------------------------------------------------------
# The growth exponent and the minute extrapolation (synthetic timings)
# ---------------------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(p=st.floats(-1.0, 3.0), scale=st.floats(1e-6, 10.0), m=st.integers(3, 12), ratio=st.sampled_from([2.0, 4.0]),
       noise=st.floats(0.0, 0.3), seed=st.integers(0, 2 ** 31))
def test_growth_exponent_matches_linregress_on_the_upper_half(p, scale, m, ratio, noise, seed):
    """Slope and standard error equal scipy's linregress on the sizes ≥ the middle one."""
    sizes = 8 * ratio ** np.arange(m)
    values = scale * sizes ** p * np.exp(noise * np.random.default_rng(seed).standard_normal(m))
    slope, se, k = growth_exponent(sizes, values)
    tail = slice((m - 1) // 2, None)
    fit = scipy_stats.linregress(np.log(sizes[tail]), np.log(values[tail]))
    assert k == m - (m - 1) // 2
    assert slope == pytest.approx(fit.slope, abs=1e-9)
    if k >= 3:  # scipy's stderr goes through r (√(1 − r²): ~1e-8 off a perfect fit, NaN for a constant y)
        assert se == pytest.approx(0.0 if np.isnan(fit.stderr) else fit.stderr, rel=1e-6, abs=1e-7)
    else:
        assert np.isnan(se)


@settings(max_examples=60, deadline=None)
@given(p=st.floats(0.0, 3.0), overhead=st.floats(0.0, 1e-3), scale=st.floats(1e-6, 1e-3))
def test_growth_exponent_recovers_a_known_exponent(p, overhead, scale):
    """t = overhead + c·s^p over 2¹⁰…2²⁰: the upper-half fit recovers p (the overhead is negligible there
    by construction: c·2^{15p} ≥ 1000·overhead), exactly when there is no overhead."""
    sizes = 2.0 ** np.arange(10, 21)
    scale = max(scale, 1000 * overhead / 2.0 ** (15 * p)) if p > 0 else scale
    values = (overhead if p > 0 else 0.0) + scale * sizes ** p
    slope, se, k = growth_exponent(sizes, values)
    assert k == 6
    assert slope == pytest.approx(p, abs=2e-3 if p > 0 and overhead > 0 else 1e-9)
    # the permutation of the input does not matter; NaN entries are dropped
    order = np.random.default_rng(0).permutation(sizes.size)
    assert growth_exponent(sizes[order], values[order])[0] == pytest.approx(slope, abs=1e-12)
    with_nan = np.append(values, np.nan)
    assert growth_exponent(np.append(sizes, 2.0 ** 22), with_nan)[0] == pytest.approx(slope, abs=1e-12)


def test_growth_exponent_refuses_bad_input():
    with pytest.raises(ValueError, match="values"):
        growth_exponent([1, 2, 4], [1.0, 0.0, 2.0])
    with pytest.raises(ValueError, match="sizes"):
        growth_exponent([1, 2, 2], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="sizes, values"):
        growth_exponent([1, 2], [1.0, 2.0, 3.0])
    assert np.isnan(growth_exponent([4], [1.0])[0])


@settings(max_examples=60, deadline=None)
@given(p=st.floats(0.2, 3.0), scale=st.floats(1e-7, 1e-2))
def test_largest_within_extrapolates_the_power_law(p, scale):
    """With t = c·s^p measured below the limit, the answer s* solves c·s*^p = limit."""
    sizes = 2.0 ** np.arange(3, 9)
    values = scale * sizes ** p
    limit = 10 * values[-1]
    size, how = largest_within(sizes, values, limit, p)
    assert how == "extrapolated"
    assert scale * size ** p == pytest.approx(limit, rel=1e-9)
    # bounded by a size that failed: that size, an upper bound, marked as such
    assert largest_within(sizes, values, limit, p, ceiling=sizes[-1] * 1.5) == (sizes[-1] * 1.5, "ceiling")
    assert largest_within(sizes, values, limit, p, ceiling=size * 2) == (size, "extrapolated")
    # never extrapolated past max_factor × the largest measured size: shown there, marked as such
    factor = size / sizes[-1]
    capped, how = largest_within(sizes, values, limit, p, max_factor=factor / 2)
    assert how == "beyond" and capped == pytest.approx(sizes[-1] * factor / 2, rel=1e-12)
    assert largest_within(sizes, values, limit, p, max_factor=factor * 2) == (size, "extrapolated")


def test_largest_within_reads_measured_sizes_and_flat_growth():
    sizes, values = np.array([1.0, 2.0, 4.0, 8.0]), np.array([1.0, 2.0, 4.0, 8.0])
    assert largest_within(sizes, values, 5.0, 1.0) == (4.0, "measured")  # 8 is over the limit
    assert largest_within(sizes, values, 0.5, 1.0)[1] == "none"
    assert largest_within(sizes, np.ones(4), 5.0, 0.0) == (8.0, "lower bound")  # no growth to extrapolate
    assert largest_within(sizes, values, 100.0, np.nan) == (8.0, "lower bound")
    with pytest.raises(ValueError, match="ceiling"):
        largest_within(sizes, values, 100.0, 1.0, ceiling=8.0)
    with pytest.raises(ValueError, match="limit"):
        largest_within(sizes, values, 0.0, 1.0)
    with pytest.raises(ValueError, match="sizes, values"):
        largest_within(sizes, values[:2], 5.0, 1.0)
    with pytest.raises(ValueError, match="sizes"):
        largest_within(sizes, np.full(4, np.nan), 5.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Measuring: capped, failed, skipped
# ---------------------------------------------------------------------------------------------

def test_measure_marks_capped_and_failed_calls():
    capped = ss.measure(lambda: time.sleep(1.0), repeats=2, budget_s=1.0, cap_s=0.05, guard_bytes=2 ** 30)
    assert capped["status"] == "capped" and "0.05 s" in capped["message"] and capped["times"] == []

    def refuse():
        raise ValueError("work of 80 GiB exceeds the memory budget of 2 GiB")

    failed = ss.measure(refuse, repeats=2, budget_s=1.0, cap_s=1.0, guard_bytes=2 ** 30)
    assert failed["status"] == "failed" and "80 GiB" in failed["message"] and failed["message"].startswith("ValueError")
    # the address-space guard turns an allocation far over it into a MemoryError, not a dead machine
    huge = ss.measure(lambda: np.ones(2 ** 33), repeats=1, budget_s=1.0, cap_s=5.0, guard_bytes=2 ** 28)
    assert huge["status"] == "failed" and huge["message"].startswith("MemoryError")
    ok = ss.measure(lambda: np.ones(1000).sum(), repeats=3, budget_s=1.0, cap_s=1.0, guard_bytes=2 ** 28)
    assert ok["status"] == "ok" and len(ok["times"]) == 3 == len(ok["refs"]) and ok["peak_bytes"] >= 8000


def test_a_cap_that_lands_inside_compiled_code_is_capped_not_failed():
    """The timer's exception raised while numba code calls back into Python (boxing its result)
    comes back wrapped in a SystemError; it is still the cap."""
    def wrapped():
        try:
            time.sleep(1.0)
        except BaseException as error:
            raise SystemError("CPUDispatcher(...) returned a result with an exception set") from error

    capped = ss.measure(wrapped, repeats=2, budget_s=1.0, cap_s=0.05, guard_bytes=2 ** 30)
    assert capped["status"] == "capped" and capped["times"] == []
    with pytest.raises(SystemError):  # a SystemError of its own is not the cap
        ss.measure(lambda: (_ for _ in ()).throw(SystemError("boom")), repeats=1, budget_s=1.0, cap_s=1.0,
                   guard_bytes=2 ** 30)


def _explode_above(limit):
    """A family whose call raises MemoryError above ``limit`` contexts (like the optimistic search did)."""
    def prepare(method, sizes, config):
        def call():
            if sizes["X"] > limit:
                raise MemoryError(f"Unable to allocate an array for X = {sizes['X']}")
            return np.zeros((sizes["X"], 8))
        return call
    return ss.Family(("X", "K", "seeds"), lambda: ("gibbs",), prepare)


def test_failed_and_skipped_sizes_are_rows_and_are_marked_in_the_report(monkeypatch):
    monkeypatch.setitem(ss.FAMILIES, "gibbs", _explode_above(8))
    config = ss.ScalingConfig("gibbs", "gibbs", "X", (2, 4, 8, 16, 32), repeats=2, budget_s=0.2)
    frame = ss.run(config)
    assert len(frame) == 5 * 2  # every size × repeat, whatever happened
    status = frame.groupby("size")["status"].first()
    assert status.tolist() == ["ok", "ok", "ok", "failed", "skipped"]
    assert frame.loc[frame["size"] == 32, "message"].iloc[0] == "skipped: X = 16 was failed"
    assert frame.loc[frame["status"] != "ok", "time_s"].isna().all()
    content = report(_frame(config, frame))
    tables = dict(content.tables)
    stopped = tables["Stopped series: the first capped, failed or skipped size"]
    assert stopped[["size", "status", "larger sizes skipped"]].values.tolist() == [[16, "failed", 1]]
    family = next(t for title, t in content.tables if title.startswith("gibbs:"))
    assert family["gibbs"].tolist()[3:] == ["failed (MemoryError)", "skipped"]
    assert "failed at X = 16: MemoryError" in content.summary


def test_memory_extrapolation_stops_the_axis():
    config = ss.ScalingConfig("gibbs", "gibbs", "X", (2, 4, 8), repeats=1, budget_s=0.1, mem_cap_gib=1e-9)
    frame = ss.run(config)
    status = frame.groupby("size")["status"].first().tolist()
    assert status == ["ok", "skipped", "skipped"]
    assert "peak memory extrapolated" in frame["message"].iloc[1] and "budget" in frame["message"].iloc[1]


def test_result_rows_do_not_depend_on_timings():
    """The non-timing columns are identical across two runs (the result file is reproducible)."""
    config = ss.ScalingConfig("covariance", "covariance", "n", (16, 64), repeats=2, budget_s=0.1)
    first, second = ss.run(config), ss.run(config)
    rest = [c for c in first.columns if c not in ss.TIMING_COLUMNS]
    pd.testing.assert_frame_equal(first[rest], second[rest])
    assert set(ss.TIMING_COLUMNS) <= set(first.columns)
    assert first[["n_comparisons", "dim"]].values.tolist() == [[16, 8], [16, 8], [64, 8], [64, 8]]


def test_config_validation_names_the_argument():
    with pytest.raises(ValueError, match="^axis"):
        ss.ScalingConfig("gibbs", "gibbs", "d", (2, 4))
    with pytest.raises(ValueError, match="^sizes"):
        ss.ScalingConfig("gibbs", "gibbs", "X", (4, 2))
    with pytest.raises(ValueError, match="^method"):
        ss.ScalingConfig("offline", "no_such_method", "X", (2, 4))
    with pytest.raises(ValueError, match="^sizes"):
        ss.ScalingConfig("online", "ucb", "n", (6, 8))  # n must be a multiple of online_T = 4
    with pytest.raises(ValueError, match="^guard_gib"):
        ss.ScalingConfig("gibbs", "gibbs", "X", (2, 4), mem_cap_gib=8.0, guard_gib=4.0)
    with pytest.raises(ValueError, match="^cap_s"):
        ss.ScalingConfig("gibbs", "gibbs", "X", (2, 4), cap_s=0.0)


def test_sweeps_cover_every_method_on_each_of_its_axes():
    full, smoke = ss.configs(False), ss.configs(True)
    pairs = {(c.family, c.method, c.axis) for c in full}
    expected = {(f, m, a) for f, spec in ss.FAMILIES.items() for m in spec.methods() for a in ss.method_axes(f, m)}
    assert pairs == expected and len(pairs) == len(full)
    assert {(c.family, c.method) for c in smoke} == {(f, m) for f, m, _ in expected}
