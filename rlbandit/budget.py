"""Memory budgets for work that would otherwise allocate in proportion to its input.

A computation over ``n_items`` independent items (contexts, candidates, …) whose temporaries
cost ``bytes_per_item`` each runs in chunks of

    chunk = ⌊(budget − fixed_bytes) / bytes_per_item⌋   items   (at most n_items),

so its peak working memory stays near ``fixed_bytes + chunk · bytes_per_item ≤ budget`` whatever
``n_items`` is. The budget is, in order of precedence: an explicit argument, the environment
variable ``RLBANDIT_MEMORY_BUDGET``, or :data:`DEFAULT_BUDGET` (1 GiB). Both accept bytes as an
integer or a string with a binary suffix (``"512M"``, ``"1.5GiB"``, ``"2g"``). Nothing over a
budget allocates silently: work that cannot fit even one item per chunk raises a ``ValueError``
naming the sizes and the budget, and ``on_exceed="raise"`` refuses to chunk at all.
"""

from __future__ import annotations

import os
import re

import numpy as np

__all__ = ["DEFAULT_BUDGET", "ENV_VAR", "ON_EXCEED", "chunk_size", "chunks", "format_bytes", "memory_budget",
           "parse_bytes"]

#: The default working-memory budget in bytes (1 GiB).
DEFAULT_BUDGET = 1 << 30
#: Environment variable that overrides the default budget (bytes, or a string like ``"512M"``).
ENV_VAR = "RLBANDIT_MEMORY_BUDGET"
#: What to do when the whole work exceeds the budget: run it in chunks, or raise at once.
ON_EXCEED = ("chunk", "raise")

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
          "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def parse_bytes(value, name: str = "memory_budget") -> int:
    """A positive byte count from an int (or integral float) or a string with an optional binary
    suffix: ``"1073741824"``, ``"512M"``, ``"1.5GiB"`` (K/M/G/T = 2^10/2^20/2^30/2^40, case-insensitive).

    ValueError naming ``name`` for anything else, and for a count below one byte.
    """
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: expected a byte count, got the boolean {value!r}")
    if isinstance(value, (str, bytes)):
        text = value.decode() if isinstance(value, bytes) else value
        match = _PATTERN.match(text)
        if match is None or match.group(2).lower() not in _UNITS:
            raise ValueError(f"{name}: expected bytes as a number with an optional suffix K, M, G or T "
                             f"(e.g. '512M', '1.5GiB'), got {value!r}")
        number = float(match.group(1)) * _UNITS[match.group(2).lower()]
    elif isinstance(value, (int, np.integer, float, np.floating)):
        number = float(value)
        if not np.isfinite(number) or number != np.floor(number):
            raise ValueError(f"{name}: expected a whole number of bytes, got {value!r}")
    else:
        raise ValueError(f"{name}: expected a byte count (int or string like '512M'), got {type(value).__name__}")
    if not np.isfinite(number) or number < 1:
        raise ValueError(f"{name}: must be at least 1 byte, got {value!r}")
    return int(number)


def memory_budget(budget=None) -> int:
    """The budget in bytes: ``budget`` if given, else ``$RLBANDIT_MEMORY_BUDGET``, else 1 GiB."""
    if budget is not None:
        return parse_bytes(budget, "memory_budget")
    env = os.environ.get(ENV_VAR)
    if env is not None and env.strip():
        return parse_bytes(env, ENV_VAR)
    return DEFAULT_BUDGET


def format_bytes(n: float) -> str:
    """``n`` bytes in the largest binary unit that keeps it ≥ 1 (``1.5 GiB``)."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


def chunk_size(bytes_per_item, n_items, budget=None, *, fixed_bytes=0, on_exceed: str = "chunk",
               what: str = "work") -> int:
    """How many of ``n_items`` items to process at once so that the work fits in the budget.

    Args:
        bytes_per_item: working memory one item needs (> 0).
        n_items: number of items (≥ 0).
        budget: bytes or a string like ``"512M"``; None = :func:`memory_budget`'s default.
        fixed_bytes: memory the work needs whatever the chunk size (≥ 0), counted against the budget.
        on_exceed: ``"chunk"`` — split into chunks when all items do not fit; ``"raise"`` — raise
            instead (so an over-budget input fails at once rather than running slowly).
        what: a description of the work and its sizes, used in error messages.

    Returns:
        The chunk size, in [1, n_items] (1 when n_items = 0).

    Raises:
        ValueError: naming the sizes and the budget, when not even one item fits, or when all of
        them do not fit and ``on_exceed="raise"``; and for invalid arguments.
    """
    if on_exceed not in ON_EXCEED:
        raise ValueError(f"on_exceed: must be one of {ON_EXCEED}, got {on_exceed!r}")
    for name, value, low in (("bytes_per_item", bytes_per_item, 1), ("n_items", n_items, 0),
                             ("fixed_bytes", fixed_bytes, 0)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating)) \
                or not np.isfinite(value) or value < low:
            raise ValueError(f"{name}: expected a finite number >= {low}, got {value!r}")
    if n_items != int(n_items):
        raise ValueError(f"n_items: expected a whole number, got {n_items!r}")
    limit = memory_budget(budget)
    n_items = int(n_items)
    room = limit - float(fixed_bytes)
    if room < bytes_per_item:
        raise ValueError(f"{what}: one item needs {format_bytes(bytes_per_item)} on top of "
                         f"{format_bytes(fixed_bytes)} fixed, over the memory budget of {format_bytes(limit)} "
                         f"(raise it with memory_budget= or ${ENV_VAR})")
    total = float(fixed_bytes) + float(bytes_per_item) * n_items
    if on_exceed == "raise" and total > limit:
        raise ValueError(f"{what}: needs {format_bytes(total)} ({n_items} items × {format_bytes(bytes_per_item)}"
                         f" + {format_bytes(fixed_bytes)} fixed), over the memory budget of {format_bytes(limit)} "
                         f"(on_exceed='raise'; pass on_exceed='chunk' to run in chunks)")
    return max(1, min(n_items, int(room // bytes_per_item)))


def chunks(n_items: int, size: int):
    """Consecutive slices of ``range(n_items)`` of length ``size`` (the last may be shorter)."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size: expected a positive integer, got {size!r}")
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 0:
        raise ValueError(f"n_items: expected an integer >= 0, got {n_items!r}")
    return [slice(start, min(start + size, n_items)) for start in range(0, int(n_items), int(size))]
