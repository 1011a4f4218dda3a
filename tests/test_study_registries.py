"""A user's algorithm joins a built-in study without copying it: the ``offline`` study's methods,
the ``online`` study's enhancers and the ``nash`` study's solvers come from config fields read
against the library's registries when a run starts; the built-ins' results do not change, and the
reports list the built-ins first, then the extra names."""

from __future__ import annotations

import dataclasses
import functools

import pandas as pd
import pytest

from rlbandit.runner import plan


def _frame(study, configs) -> pd.DataFrame:
    """Run ``configs`` and join their fields as the runner does (tuples as text)."""
    frames = []
    for i, config in enumerate(configs):
        frame = study.run(config)
        for key, value in dataclasses.asdict(config).items():
            frame[key] = str(value) if isinstance(value, tuple) else value
        frames.append(frame.assign(run_id=str(i)))
    return pd.concat(frames, ignore_index=True)


def test_offline_extra_method_joins_without_changing_the_builtins(monkeypatch):
    from benchmarks import offline as study
    from rlbandit import offline

    extended = study.METHOD_ORDER + ("aa_mle",)  # sorts before the built-ins by name, listed after them
    configs = study.configs(True, methods=extended)  # built before the name is registered: read at run time
    with pytest.raises(ValueError, match="methods"):
        study.run(configs[0])
    monkeypatch.setitem(offline.METHODS, "aa_mle", offline.METHODS["mle"])
    frame = _frame(study.STUDY, configs)
    plain = _frame(study.STUDY, study.configs(True))
    builtin = frame[frame["method"] != "aa_mle"].drop(columns="methods").reset_index(drop=True)
    pd.testing.assert_frame_equal(builtin, plain.drop(columns="methods"))
    # the extra method uses the study's λ and the same data, recorded like mle: here it is mle
    mine, mle = frame[frame["method"] == "aa_mle"], frame[frame["method"] == "mle"]
    pd.testing.assert_series_equal(mine["suboptimality"].reset_index(drop=True),
                                   mle["suboptimality"].reset_index(drop=True))
    assert (mine["reference"] == "").all()
    content = study.STUDY.render(frame)
    headline = content.tables[0][1]
    # the study's own rows (the norm-constrained MLE) sit between the built-ins and the extra methods
    shown = list(study.METHOD_ORDER + study.STUDY_ROWS + ("aa_mle",))
    assert list(dict.fromkeys(headline["method"].astype(str))) == shown
    assert list(content.tables[1][1].columns[2:]) == shown  # ratios to MLE
    with pytest.raises(ValueError, match="methods"):
        study.OfflineConfig(methods=("mle", "aa_mle"))  # the built-ins are what the report compares


def test_offline_user_study_is_a_replace_of_the_builtin(monkeypatch):
    from benchmarks import offline as study
    from rlbandit import offline

    monkeypatch.setitem(offline.METHODS, "mine", offline.METHODS["mle"])
    mine = dataclasses.replace(study.STUDY, name="offline_mine", configs=functools.partial(
        study.configs, methods=study.METHOD_ORDER + ("mine",)))
    planned = plan(mine, smoke=True)
    assert [c.methods[-1] for _, c in planned] == ["mine", "mine"]
    assert {rid for rid, _ in planned}.isdisjoint(rid for rid, _ in plan(study.STUDY, smoke=True))


def test_online_extra_enhancer_joins_and_is_listed_after_the_builtins(monkeypatch):
    from benchmarks import online as study
    from rlbandit import online

    with pytest.raises(ValueError, match="enhancers"):
        study.configs(True, enhancers=study.ENHANCER_ORDER + ("aa_self",))
    monkeypatch.setitem(online.ENHANCERS, "aa_self", online.ENHANCERS["self"])
    configs = study.configs(True, enhancers=study.ENHANCER_ORDER + ("aa_self",))
    keep = [c for c in configs if c.mode != "online" or c.enhancer in ("self", "optimistic", "aa_self")]
    frame = _frame(study.STUDY, keep)
    reference = _frame(study.STUDY, [c for c in keep if c.enhancer != "aa_self"])
    pd.testing.assert_frame_equal(
        frame[frame["method"] != "aa_self"].drop(columns=["wall_s", "run_id"]).reset_index(drop=True),
        reference.drop(columns=["wall_s", "run_id"]))
    content = study.STUDY.render(frame)
    methods = list(dict.fromkeys(content.tables[0][1]["method"].astype(str)))
    assert methods == ["optimistic", "self", "offline (π0 data)", "aa_self"]
    monkeypatch.delitem(online.ENHANCERS, "aa_self")
    with pytest.raises(ValueError, match="enhancer"):
        study.run(next(c for c in keep if c.enhancer == "aa_self"))  # checked again when the run starts


def test_nash_extra_solver_joins_and_is_listed_after_the_builtins(monkeypatch):
    from benchmarks import nash as study
    from rlbandit import nash

    config = next(c for c in study.configs(True, solvers=("extragradient", "fixed_point", "aa_extragradient"))
                  if c.experiment == "solvers")
    with pytest.raises(ValueError, match="solver"):
        study.run(config)
    monkeypatch.setitem(nash.SOLVERS, "aa_extragradient", nash.SOLVERS["extragradient"])  # removed afterwards
    nash.register("aa_extragradient", nash.SOLVERS["extragradient"])  # the public way: also sets its iteration cap
    frame = _frame(study.STUDY, [config])
    rows = frame.set_index("solver")
    assert rows.loc["aa_extragradient", "iterations"] == rows.loc["extragradient", "iterations"]
    assert rows.loc["aa_extragradient", "kl_to_reference"] < 1e-8
    table = study.STUDY.render(frame).tables[0][1]
    assert list(table["solver"]) == ["extragradient", study.SEED_LOOP, "fixed_point", "aa_extragradient"]
    with pytest.raises(ValueError, match="solvers"):
        study.NashStudyConfig(experiment="solvers", solvers=("fixed_point",))  # extragradient: the time reference
