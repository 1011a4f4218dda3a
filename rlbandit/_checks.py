"""Validation helpers shared by the public functions.

Every public function checks its inputs at the boundary and raises a ``ValueError`` that names
the argument and what is wrong with it; internal code calls the unchecked kernels directly.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

#: Tolerance on |Σ_a exp(logp(a)) − 1| for a row of log-probabilities to count as normalised.
NORMALISATION_TOL = 1e-5


def as_float_array(value, name: str, *, min_ndim: int = 0) -> np.ndarray:
    if type(value) is np.ndarray and value.dtype == np.float64:  # already one: nothing to convert
        if value.ndim < min_ndim:
            raise ValueError(f"{name}: expected at least {min_ndim} dimension(s), got shape {value.shape}")
        return value
    if np.iscomplexobj(value):  # float64 conversion would silently drop the imaginary part
        raise ValueError(f"{name}: complex values are not accepted; pass real numbers")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: could not convert to a float array ({error})") from None
    if array.ndim < min_ndim:
        raise ValueError(f"{name}: expected at least {min_ndim} dimension(s), got shape {array.shape}")
    return array


def check_finite(array: np.ndarray, name: str) -> None:
    if array.dtype.kind == "f":
        # One reduction and no n-sized temporary on the happy path: a sum is finite only if every
        # entry is (NaN and ±inf propagate); a sum of finite entries that overflows falls through.
        with np.errstate(over="ignore", invalid="ignore"):
            if math.isfinite(array.sum()):
                return
    if not np.isfinite(array).all():
        bad = "NaN" if np.isnan(array).any() else "inf"
        raise ValueError(f"{name}: contains {bad}; every entry must be finite")


def check_eta(eta) -> float:
    if isinstance(eta, (str, bytes)):  # float("0.5") would accept a string silently
        raise ValueError(f"eta: expected a positive float, got the string {eta!r}")
    try:
        eta = float(eta)
    except (TypeError, ValueError):
        raise ValueError(f"eta: expected a positive float, got {eta!r}") from None
    if not math.isfinite(eta) or eta <= 0.0:  # math: a numpy ufunc costs ~1 µs on a scalar
        raise ValueError(f"eta: the KL coefficient must be a finite number > 0, got {eta}")
    return eta


def check_logprobs(logprobs: np.ndarray, name: str, *, normalised: bool = True) -> None:
    """Log-probabilities: no NaN, no +inf, every row (last axis) sums to one in probability."""
    if logprobs.ndim < 1 or logprobs.shape[-1] == 0:
        raise ValueError(f"{name}: expected shape (..., K) with K >= 1, got {logprobs.shape}")
    if np.isnan(logprobs).any():
        raise ValueError(f"{name}: contains NaN")
    # Rounding can leave a log-probability a few ulps above 0 (a row with all its mass on one
    # action); anything above the normalisation tolerance is a real error.
    if (logprobs > NORMALISATION_TOL).any():
        raise ValueError(f"{name}: log-probabilities must be <= 0 (found a positive entry)")
    if normalised:
        # float32 exp is ~3x cheaper than float64 and ample for a 1e-6 normalisation check.
        with np.errstate(over="ignore", under="ignore"):  # −1e300 → −inf in float32: zero mass either way
            mass = np.exp(logprobs.astype(np.float32, copy=False)).sum(axis=-1, dtype=np.float64)
        bad = np.abs(mass - 1.0) > NORMALISATION_TOL
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{name}: rows must be normalised log-probabilities; row {index} has total "
                f"probability {float(mass[index]):.8g}"
            )


def check_context_probs(context_probs, n_contexts: int, name: str = "context_probs") -> np.ndarray:
    if context_probs is None:
        return np.full(n_contexts, 1.0 / n_contexts)
    probs = as_float_array(context_probs, name)
    if probs.shape[-1:] != (n_contexts,):
        raise ValueError(f"{name}: expected shape (..., {n_contexts}), got {probs.shape}")
    check_finite(probs, name)
    if (probs < 0).any():
        raise ValueError(f"{name}: probabilities must be >= 0")
    if not np.allclose(probs.sum(axis=-1), 1.0, atol=1e-8):
        raise ValueError(f"{name}: must sum to 1 over contexts, sums to {probs.sum(axis=-1)}")
    return probs


def check_broadcast(shape_a, shape_b, name_a: str, name_b: str) -> tuple[int, ...]:
    if shape_a == shape_b:  # the common case, without np.broadcast_shapes' overhead
        return tuple(shape_a)
    try:
        return np.broadcast_shapes(shape_a, shape_b)
    except ValueError:
        raise ValueError(f"{name_a} has shape {shape_a}, which does not broadcast with {name_b} "
                         f"of shape {shape_b}") from None


# --- config fields ----------------------------------------------------------------------------
# The ``__post_init__`` of the config dataclasses validate their fields with these; each raises a
# ``ValueError`` whose message starts with the field name.


def check_int(value, name: str, *, minimum: int = 1, numpy_ints: bool = True, allow_bool: bool = True):
    """An integer >= ``minimum``. ``numpy_ints``: also accept numpy integer scalars;
    ``allow_bool``: accept ``True``/``False`` (a ``bool`` is an ``int`` to Python)."""
    kinds = (int, np.integer) if numpy_ints else int
    if (not allow_bool and isinstance(value, bool)) or not isinstance(value, kinds) or value < minimum:
        wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name}: must be {wanted}, got {value!r}")
    return value


def check_positive_ints(obj, names, *, numpy_ints: bool = True, allow_bool: bool = True) -> None:
    """:func:`check_int` (>= 1) on each attribute of ``obj`` named in ``names``, in order."""
    for name in names:
        check_int(getattr(obj, name), name, numpy_ints=numpy_ints, allow_bool=allow_bool)


def check_positive_float(value, name: str, *, allow_zero: bool = False, finite: bool = True):
    """A real number > 0 (>= 0 with ``allow_zero``), finite unless ``finite=False``; NaN always fails.
    The value is returned unconverted; anything ``float()`` rejects (a string, None, a complex
    number, an array of several entries) raises a ValueError naming ``name``."""
    if isinstance(value, (str, bytes)):  # float("2") would pass a string config value silently
        raise ValueError(f"{name}: expected a real number, got the string {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a real number, got {value!r}") from None
    in_range = number >= 0 if allow_zero else number > 0
    if not (in_range and (not finite or np.isfinite(number))):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: must be {'finite and ' if finite else ''}{bound}, got {value}")
    return value


def check_instance(value, cls: type, name: str):
    """``value`` itself when it is a ``cls``; else a ValueError "name: expected a(n) Cls, got Type"."""
    if not isinstance(value, cls):
        title = cls.__name__
        initialism = title[:2].isupper() and title[0] in "FHLMNRSX"  # "an RSConfig"
        article = "an" if title[0] in "AEIOU" or initialism else "a"
        raise ValueError(f"{name}: expected {article} {title}, got {type(value).__name__}")
    return value


def check_choice(value, name: str, choices, *, kind: str | None = None):
    """``value`` is a key of ``choices`` (a registry dict or a collection of names)."""
    if value not in choices:
        raise ValueError(f"{name}: unknown {kind or name} {value!r}; choose one of {sorted(choices)}")
    return value


def same_callable(a, b) -> bool:
    """The same function, or the same module-level function defined again (a script imported
    twice — by the driver and by a worker, or by path and by module name — makes a new object)."""
    return a is b or (getattr(a, "__module__", None), getattr(a, "__qualname__", None)) == (
        getattr(b, "__module__", 1), getattr(b, "__qualname__", 1))


# --- arguments of public functions: arrays, reals and integers that refuse strings, None, bools
# and complex values, each error starting with the argument's name ---------------------------------

def real_array(value, name: str, *, ndim: int | None = None, min_ndim: int = 0, finite: bool = True,
               nonempty: bool = True) -> np.ndarray:
    """``value`` as a float64 array: not None, not a string, not complex; ``ndim`` dimensions
    exactly (or at least ``min_ndim``); no zero-length axis when ``nonempty``; finite when ``finite``."""
    if value is None or isinstance(value, (str, bytes)):
        raise ValueError(f"{name}: expected an array of real numbers, got {value!r}")
    array = as_float_array(value, name, min_ndim=min_ndim)
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimension(s), got shape {array.shape}")
    if nonempty and array.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {array.shape}")
    if finite:
        check_finite(array, name)
    return array


def logprob_array(value, name: str, *, min_ndim: int = 1, normalised: bool = True) -> np.ndarray:
    """Log-probabilities over the last axis: real, non-empty, no NaN or +inf (−inf is zero mass),
    rows normalised when ``normalised``."""
    array = real_array(value, name, min_ndim=min_ndim, finite=False)
    check_logprobs(array, name, normalised=normalised)
    return array


def real_number(value, name: str, *, minimum: float | None = None, strict: bool = False,
                maximum: float | None = None, finite: bool = True) -> float:
    """A real scalar as a float: not a string, None, bool or complex; finite when ``finite``; >=
    ``minimum`` (> with ``strict``) and <= ``maximum`` when given."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise ValueError(f"{name}: expected a real number, got {value!r}")
    number = float(value)
    if np.isnan(number) or (finite and not np.isfinite(number)):
        raise ValueError(f"{name}: must be a finite number, got {value!r}")
    if minimum is not None and (number <= minimum if strict else number < minimum):
        raise ValueError(f"{name}: must be {'>' if strict else '>='} {minimum:g}, got {value!r}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{name}: must be <= {maximum:g}, got {value!r}")
    return number


def integer(value, name: str, *, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (Python or numpy, never a bool or a float such as 2.0)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name}: must be {wanted}, got {value!r}")
    return int(value)


def tensor_argument(value, name: str):
    """A real floating-point torch tensor (a numpy array or a list is converted): not None, not a
    string, not complex."""
    import torch

    if value is None or isinstance(value, (str, bytes)):
        raise ValueError(f"{name}: expected a tensor of real numbers, got {value!r}")
    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError, RuntimeError) as error:
            raise ValueError(f"{name}: could not convert to a tensor ({error})") from None
    if value.is_complex():
        raise ValueError(f"{name}: complex values are not accepted; pass real numbers")
    if not value.is_floating_point():
        value = value.to(torch.get_default_dtype())
    return value
