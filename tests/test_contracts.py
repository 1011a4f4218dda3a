"""The contract suite (issue 16): every public function of the core modules, every bad input.

Like scikit-learn's estimator checks: :data:`rlbandit.contract_cases.CASES` holds one valid call
per public function (the registry must be complete, so a new function cannot skip the suite), and
:mod:`rlbandit.contracts` derives the bad inputs from it — NaN, ±inf, complex, wrong rank, empty,
a string, None in arrays; NaN, ±inf, a string, None, zero or negative where a positive number is
required in scalars; … Each one must raise a ValueError/TypeError naming the argument, or — where
the case lists the value as legitimate (−inf log-probabilities are zero mass) — return a result
without NaN. Never a silent NaN, never a bare numpy/BLAS error.

The only exemption is declared in the registry: a case marked ``unchecked`` (a kernel for arrays
validated at its callers' boundary) runs its valid call but not the bad inputs, and its docstring
must say "unchecked".
"""

from __future__ import annotations

import numpy as np
import pytest

from rlbandit.contracts import (CASES, CONTRACT_MODULES, GOOD_OUTCOMES, KINDS, allowed, bad_inputs, probe,
                                probe_one, probe_plan, public_functions, summary)


def _params():
    for function, argument, kind in probe_plan():
        yield pytest.param(function, argument, kind, id=f"{function.removeprefix('rlbandit.')}-{argument}-{kind}")


def test_every_public_function_of_the_core_modules_has_a_contract_case():
    functions = public_functions()
    missing = sorted(set(functions) - set(CASES))
    stale = sorted(set(CASES) - set(functions))
    assert not missing, f"public functions without a case in rlbandit/contract_cases.py: {missing}"
    assert not stale, f"cases of functions that are no longer public: {stale}"
    assert len(CONTRACT_MODULES) >= 10 and len(functions) >= 60


def test_unchecked_kernels_say_so():
    """A function exempt from the bad inputs is a kernel whose docstring tells its users it does not validate."""
    functions = public_functions()
    unchecked = [name for name, case in CASES.items() if case.unchecked]
    assert unchecked, "the exemption is used (else drop it)"
    for name in unchecked:
        doc = (functions[name].__doc__ or "").lower()
        assert "unchecked" in doc, f"{name}: exempt but its docstring does not say so"


@pytest.mark.parametrize("function", sorted(CASES), ids=lambda f: f.removeprefix("rlbandit."))
def test_the_valid_call_works(function):
    outcome, detail = probe_one(function)
    assert outcome == "valid", detail
    case = CASES[function]
    arguments = case.kwargs()
    assert set(case.positive) | set(case.nonnegative) | set(case.nan_result) <= set(arguments), \
        "a case names an argument its call does not pass"
    assert any(bad_inputs(case, name, value) for name, value in arguments.items()), "nothing to probe"


@pytest.mark.parametrize("function, argument, kind", list(_params()))
def test_a_bad_input_is_named_or_legitimately_handled(function, argument, kind):
    outcome, detail = probe_one(function, argument, kind)
    assert outcome in GOOD_OUTCOMES, f"{function}({argument}={kind}): {outcome}: {detail}"


# ---------------------------------------------------------------------------------------------
# The probe machinery itself: each outcome is reachable, so a test of it can fail
# ---------------------------------------------------------------------------------------------

def test_the_probe_classifies_each_outcome():
    from rlbandit import contract_cases, contracts

    def quiet(values):
        return np.asarray(values, dtype=float).sum()  # accepts anything numeric, returns NaN for NaN

    def shouting(values):
        raise ValueError("something went wrong")  # names no argument

    def named(values):
        raise ValueError(f"values: bad {values!r}")

    for fn in (quiet, shouting, named):
        fn.__module__ = __name__
        globals()[fn.__name__] = fn
    saved = dict(contract_cases.CASES)
    try:
        for fn in (quiet, shouting, named):
            CASES[f"{__name__}.{fn.__name__}"] = contract_cases.Case(lambda: {"values": np.array([1.0, 2.0])},
                                                                     allowed={"values": ("rank",)})
        assert contracts.probe_one(f"{__name__}.quiet", "values", "nan") == ("silent", "returned NaN")
        assert contracts.probe_one(f"{__name__}.quiet", "values", "+inf")[0] == "silent"
        assert contracts.probe_one(f"{__name__}.quiet", "values", "rank")[0] == "allowed"
        assert contracts.probe_one(f"{__name__}.shouting", "values", "nan")[0] == "unnamed error"
        assert contracts.probe_one(f"{__name__}.named", "values", "nan")[0] == "named error"
        assert contracts.probe_one(f"{__name__}.quiet")[0] == "valid"
        assert contracts.probe_one(f"{__name__}.named")[0] == "broken"
    finally:
        CASES.clear()
        CASES.update(saved)


def test_bad_inputs_follow_the_kind_of_the_valid_value():
    case = CASES["rlbandit.oracle.gibbs"]
    assert bad_inputs(case, "rewards", np.zeros((2, 3))) == list(KINDS["array"])
    assert bad_inputs(case, "eta", 0.5) == list(KINDS["float"]) + ["zero", "negative"]
    assert bad_inputs(CASES["rlbandit.reward.fit_bt"], "reg", 0.1) == list(KINDS["float"]) + ["negative"]
    assert "none" in allowed("rlbandit.oracle.value", "context_probs")  # its default is None
    assert "none" not in allowed("rlbandit.oracle.gibbs", "ref_logprobs")


def test_the_summary_counts_the_probe_rows():
    frame = probe(["rlbandit.oracle.kl", "rlbandit.oracle.expected_reward"])
    table = summary(frame).iloc[0]
    assert table["functions probed"] == 2 and table["cases tried"] == len(frame)
    assert table["handled well"] + table["silent NaN/garbage"] + table["unnamed errors"] == len(frame)


def test_the_probe_script_tables(capsys):
    from benchmarks import probe_contracts

    import pandas as pd

    rows = [("m.f", "x", "nan", "named error", "x: NaN"), ("m.f", "x", "+inf", "silent", "returned NaN"),
            ("m.f", "x", "-inf", "silent", "returned NaN"), ("m.g", "y", "none", "unnamed error", "TypeError: ?"),
            ("n.h", "z", "rank", "allowed", "returned without NaN")]
    frame = pd.DataFrame(rows, columns=["function", "argument", "bad_input", "outcome", "detail"])
    frame = frame.assign(handled=frame["outcome"].isin(GOOD_OUTCOMES))
    modules = probe_contracts.per_module(frame).set_index("module")
    assert modules.loc["m", ["functions", "tried", "handled", "silent", "unnamed"]].tolist() == [2, 4, 1, 2, 1]
    assert modules.loc["n", ["tried", "handled"]].tolist() == [1, 1]
    failing = probe_contracts.failures(frame)
    assert failing[["function", "bad_input"]].values.tolist() == [["m.f", "+inf, -inf"], ["m.g", "none"]]
