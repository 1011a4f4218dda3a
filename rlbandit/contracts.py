"""Input contracts of the public functions, checked the way scikit-learn checks every estimator.

For each public function of the core modules :data:`rlbandit.contract_cases.CASES` holds one valid
call; :func:`bad_inputs` derives bad inputs from it, argument by argument, by the kind of the
valid value (:data:`KINDS`), and :func:`probe_one` classifies what the function does with one:

- ``named error``: a ``ValueError`` or ``TypeError`` whose message names the argument (good);
- ``allowed``: a result without NaN, for a value the case lists as legitimate (−inf in
  log-probabilities is zero mass) (good);
- ``silent``: a result for a value that is not legitimate, or a NaN in the result (bad);
- ``unnamed error``: any other exception, or one that does not name the argument (bad).

:func:`probe` runs every case and returns one row per (function, argument, bad input);
``benchmarks/probe_contracts.py`` prints its summary table and ``tests/test_contracts.py`` turns
every row into a test.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import warnings
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from rlbandit.contract_cases import CASES, CONTRACT_MODULES, Case

__all__ = ["KINDS", "GOOD_OUTCOMES", "public_functions", "bad_inputs", "allowed", "probe_one", "probe_plan", "probe",
           "summary", "CASES",
           "CONTRACT_MODULES", "Case"]

#: Kind of a valid argument value → the bad inputs derived from it (zero and negative values of
#: scalars are added for the case's ``positive`` / ``nonnegative`` arguments).
KINDS: dict[str, tuple[str, ...]] = {
    "array": ("nan", "+inf", "-inf", "complex", "rank", "empty", "string", "none"),
    "int array": ("nan", "+inf", "-inf", "fractional", "complex", "rank", "empty", "string", "none"),
    "float": ("nan", "+inf", "-inf", "complex", "string", "none"),
    "int": ("fractional", "nan", "+inf", "string", "none"),
    "str": ("unknown", "number", "none"),
    "generator": ("string", "fractional"),
    "sequence": ("empty", "string", "none"),
    "callable": ("string", "none"),
    "object": ("string", "none"),
}

#: Outcomes that count as handled well.
GOOD_OUTCOMES = ("named error", "allowed")


def public_functions(modules: Iterable[str] = CONTRACT_MODULES) -> dict[str, Callable]:
    """``module.name`` → function for every function in ``__all__`` of ``modules`` (a function
    exported by several modules is listed once, under the first)."""
    seen: dict[int, str] = {}
    out: dict[str, Callable] = {}
    for module_name in modules:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.isfunction(obj) and id(obj) not in seen:
                seen[id(obj)] = f"{module_name}.{name}"
                out[f"{module_name}.{name}"] = obj
    return out


def _function(qualname: str) -> Callable:
    module, _, name = qualname.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _kind(value: Any) -> str | None:
    if isinstance(value, (bool, np.bool_)):
        return None  # a flag: nothing between True and False to probe
    if _is_tensor(value) or isinstance(value, np.ndarray):
        array = _numpy(value)
        return "int array" if np.issubdtype(array.dtype, np.integer) else "array"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, np.random.Generator):
        return "generator"
    if isinstance(value, (list, tuple)):
        return "sequence"
    if callable(value) and not dataclasses.is_dataclass(value):
        return "callable"
    return "object"


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if _is_tensor(value) else np.asarray(value)


def bad_inputs(case: Case, argument: str, value: Any) -> list[str]:
    """The bad-input kinds probed for ``argument`` of ``case``, whose valid value is ``value``."""
    kind = _kind(value)
    kinds = list(KINDS.get(kind, ())) if kind else []
    if kind in ("float", "int"):
        if argument in case.positive:
            kinds += ["zero", "negative"]
        elif argument in case.nonnegative:
            kinds += ["negative"]
    if kind in ("array", "int array") and np.ndim(_numpy(value)) == 0:
        kinds = [k for k in kinds if k not in ("empty",)]
    return kinds


def _log_normalised(array: np.ndarray) -> bool:
    if array.ndim < 1 or array.shape[-1] < 2 or not np.isfinite(array).all() or (array > 0).any():
        return False
    return bool(np.allclose(np.exp(array).sum(-1), 1.0))


def _bad_array(value: Any, kind: str) -> Any:
    if kind == "string":
        return "abc"
    if kind == "none":
        return None
    array = _numpy(value)
    if kind == "rank":
        bad = np.stack([array, array], axis=-1)
    elif kind == "empty":
        bad = array[..., :0]
    elif kind == "complex":
        bad = array + 1j
    else:
        bad = np.array(array, dtype=np.float64)
        if kind == "fractional":
            bad = bad + 0.5
        else:
            normalised = kind == "-inf" and _log_normalised(bad)
            bad.flat[0] = {"nan": np.nan, "+inf": np.inf, "-inf": -np.inf}[kind]
            if normalised:  # −inf as zero mass: the rest of its row renormalised, a legitimate log-policy
                row = bad.reshape(-1, bad.shape[-1])[0]
                finite = np.isfinite(row)
                row[finite] -= np.log(np.exp(row[finite]).sum())
    if _is_tensor(value):
        import torch

        return torch.as_tensor(bad)
    return bad


def _bad_value(value: Any, kind: str) -> Any:
    """``value`` (a valid argument) turned into the bad input ``kind``."""
    if isinstance(value, np.ndarray) or _is_tensor(value):
        return _bad_array(value, kind)
    scalar = {"nan": float("nan"), "+inf": float("inf"), "-inf": float("-inf"), "complex": complex(1.0, 1.0),
              "none": None, "unknown": "no_such_choice", "number": 1, "empty": []}
    if kind in scalar:
        return scalar[kind]
    if kind == "string":
        return str(value) if isinstance(value, (int, float, np.number)) else "abc"
    if kind == "fractional":
        return (float(value) + 0.5) if isinstance(value, (int, np.integer)) else 1.5
    if kind == "zero":
        return type(value)(0)
    if kind == "negative":
        return -abs(value) if value else type(value)(-1)
    raise ValueError(f"kind: unknown bad-input kind {kind!r}")


def _has_nan(result: Any) -> bool:
    if result is None or isinstance(result, (str, bytes, bool)):
        return False
    if isinstance(result, (list, tuple)):
        return any(_has_nan(r) for r in result)
    if isinstance(result, dict):
        return any(_has_nan(r) for r in result.values())
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return any(_has_nan(getattr(result, f.name)) for f in dataclasses.fields(result))
    if _is_tensor(result) or isinstance(result, (np.ndarray, float, np.floating, complex)):
        array = _numpy(result)
        return np.issubdtype(array.dtype, np.inexact) and bool(np.isnan(array).any())
    return False


def _call(case: Case, kwargs: dict[str, Any], function: Callable) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return function(**kwargs)
    finally:
        if case.cleanup is not None:
            case.cleanup()


def probe_one(qualname: str, argument: str | None = None, kind: str | None = None) -> tuple[str, str]:
    """``(outcome, detail)`` of one call of the function ``qualname`` (a key of :data:`CASES`):
    its valid call when ``argument`` is None (outcome ``valid`` or ``broken``), else the valid
    call with ``argument`` replaced by the bad input ``kind`` (outcomes in the module docstring)."""
    if qualname not in CASES:
        raise ValueError(f"qualname: no contract case for {qualname!r}")
    case, function = CASES[qualname], _function(qualname)
    kwargs = case.kwargs()
    if argument is not None:
        if argument not in kwargs:
            raise ValueError(f"argument: {qualname} has no argument {argument!r} in its case")
        kwargs[argument] = _bad_value(kwargs[argument], kind)
    try:
        result = _call(case, kwargs, function)
    except Exception as error:  # noqa: BLE001 - classifying every error is the point
        detail = f"{type(error).__name__}: {str(error)[:240]}"
        if argument is None:
            return "broken", detail
        named = isinstance(error, (ValueError, TypeError)) and argument in str(error)
        return ("named error" if named else "unnamed error"), detail
    nan = _has_nan(result)
    if argument is None:
        return ("broken", "returned NaN") if nan else ("valid", "returned")
    if nan:
        documented = kind in CASES[qualname].nan_result.get(argument, ())
        return ("allowed", "returned NaN (documented)") if documented else ("silent", "returned NaN")
    return ("allowed" if kind in allowed(qualname, argument) else "silent"), "returned without NaN"


def allowed(qualname: str, argument: str) -> tuple[str, ...]:
    """The bad-input kinds ``argument`` of ``qualname`` legitimately accepts: its case's
    :attr:`~rlbandit.contract_cases.Case.allowed`, and ``none`` where the argument's default is None."""
    case = CASES[qualname]
    kinds = tuple(case.allowed.get(argument, ())) + tuple(case.nan_result.get(argument, ()))
    parameter = inspect.signature(_function(qualname)).parameters.get(argument)
    if parameter is not None and parameter.default is None:
        kinds += ("none",)
    return kinds


def probe_plan(cases: Iterable[str] | None = None) -> list[tuple[str, str, str]]:
    """Every ``(function, argument, bad input)`` that :func:`probe` tries, in registry order."""
    plan = []
    for qualname in (CASES if cases is None else cases):
        case = CASES[qualname]
        if case.unchecked:
            continue
        for argument, value in case.kwargs().items():
            plan += [(qualname, argument, kind) for kind in bad_inputs(case, argument, value)]
    return plan


def probe(cases: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per (function, argument, bad input) of ``cases`` (default: all): columns
    ``function, argument, bad_input, outcome, detail, handled`` (``handled``: outcome in
    :data:`GOOD_OUTCOMES`)."""
    rows = [dict(function=q, argument=a, bad_input=k, **dict(zip(("outcome", "detail"), probe_one(q, a, k))))
            for q, a, k in probe_plan(cases)]
    frame = pd.DataFrame(rows, columns=["function", "argument", "bad_input", "outcome", "detail"])
    return frame.assign(handled=frame["outcome"].isin(GOOD_OUTCOMES))


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """The probe table of issue 16 from :func:`probe`'s frame: functions probed, cases tried,
    handled well, silent NaN or garbage, unnamed errors."""
    return pd.DataFrame([{"functions probed": frame["function"].nunique(), "cases tried": len(frame),
                          "handled well": int(frame["handled"].sum()),
                          "silent NaN/garbage": int((frame["outcome"] == "silent").sum()),
                          "unnamed errors": int((frame["outcome"] == "unnamed error").sum())}])
