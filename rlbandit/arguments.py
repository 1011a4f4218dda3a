"""Boundary checks of public-function arguments that :mod:`rlbandit._checks` leaves to the caller:
arrays that must be non-empty, of a given rank and finite; real and integer scalars that reject
strings, None, booleans where numbers are meant, complex values, NaN and infinities. Each raises a
``ValueError`` whose message starts with the argument's name (the contract suite,
:mod:`rlbandit.contracts`, checks every public function for it).
"""

from __future__ import annotations

import numbers

import numpy as np

from rlbandit._checks import as_float_array, check_finite, check_logprobs

__all__ = ["real_array", "logprob_array", "real_number", "integer", "tensor_argument"]


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
