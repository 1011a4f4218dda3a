"""Statistics for study reports: pure functions on arrays (or pandas Series) of replicates.

The replicates are usually seeds. Every function drops NaN first (a missing replicate is not a
zero) and returns plain floats or arrays; nothing here draws a random number without an explicit
:class:`numpy.random.Generator`.

- :func:`mean_se`, :func:`format_mean_se`: the mean and its standard error s/√n (s with
  ddof = 1), and the ``"mean ± se"`` text of the report tables.
- :func:`geometric_mean`, :func:`log_mean_band`: the geometric mean and a Student-t band
  computed in log space, so it stays positive (for ratios and rates that live on a log axis).
- :func:`loglog_slope`: the least-squares slope of log(values) against log(x) (a rate).
- :func:`bootstrap_means`, :func:`bootstrap_ci`, :func:`percentile_interval`: the percentile
  bootstrap over replicates (resampled with replacement) of any statistic of their mean.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from rlbandit._checks import real_array, real_number

__all__ = ["mean_se", "t_interval", "format_mean_se", "geometric_mean", "log_mean_band", "loglog_slope",
           "bootstrap_means", "bootstrap_ci", "percentile_interval"]


def _finite_or_nan(values) -> np.ndarray:
    """``values`` as a 1-d float array with NaN removed (±inf kept: they are data, not gaps)."""
    array = real_array(values, "values", finite=False, nonempty=False).ravel()
    return array[~np.isnan(array)]


def _check_level(level: float) -> float:
    level = real_number(level, "level")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: the coverage of an interval must lie in (0, 1), got {level}")
    return level


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error of the mean, s/√n with the sample standard deviation (ddof = 1).

    Args:
        values: replicates, any array-like or pandas Series; NaN entries are dropped.

    Returns:
        ``(mean, se)``: both NaN when no value is left, se NaN when only one is (a single
        replicate says nothing about the spread).
    """
    array = _finite_or_nan(values)
    if array.size == 0:
        return float("nan"), float("nan")
    if array.size == 1:
        return float(array[0]), float("nan")
    return float(array.mean()), float(array.std(ddof=1) / np.sqrt(array.size))


def format_mean_se(values, mean_format: str = ".3g", se_format: str = ".2g", empty: str = "—") -> str:
    """The ``"mean ± se"`` text of a report table cell (see :func:`mean_se`).

    Args:
        values: replicates (NaN dropped).
        mean_format, se_format: format specs of the two numbers (e.g. ``".3g"``, ``".3f"``).
        empty: the text when no value is left.
    """
    array = _finite_or_nan(values)
    if array.size == 0:
        return empty
    mean, se = mean_se(array)
    return f"{mean:{mean_format}} ± {se:{se_format}}"


def geometric_mean(values) -> float:
    """exp(mean(log values)) over the non-NaN values (NaN when none is left).

    A zero gives 0 and a negative value NaN, as the logarithm does; use :func:`log_mean_band`
    where the values must be positive."""
    array = _finite_or_nan(values)
    if array.size == 0:
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.exp(np.log(array).mean()))


def t_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean with its Student-t confidence interval: mean ± t_{(1+level)/2, n−1} · s/√n.

    Args:
        values: replicates (NaN dropped).
        level: the interval's coverage in (0, 1).

    Returns:
        ``(mean, low, high)``; low and high are NaN with a single value, all three NaN with none.
    """
    from scipy.stats import t as student_t

    level = _check_level(level)
    mean, se = mean_se(values)
    n = _finite_or_nan(values).size
    if n < 2:
        return mean, float("nan"), float("nan")
    half = float(student_t.ppf(0.5 + level / 2, n - 1)) * se
    return mean, mean - half, mean + half


def log_mean_band(values, level: float = 0.95) -> tuple[float, float, float]:
    """Geometric mean with a confidence band computed in log space.

    The band is the Student-t interval of the mean of log(values) (n − 1 degrees of freedom),
    mapped back by exp: centre · exp(∓ t · se_log). It is never non-positive and is symmetric
    on a log axis, which suits ratios and errors that span decades.

    Args:
        values: positive replicates (NaN dropped).
        level: the band's coverage in (0, 1).

    Returns:
        ``(centre, low, high)``; low and high are NaN with a single value, all three NaN with none.

    Raises:
        ValueError: a value is ≤ 0 or infinite (its logarithm is not a number), or ``level``
            is outside (0, 1).
    """
    level = _check_level(level)
    array = _finite_or_nan(values)
    if not np.isfinite(array).all() or (array <= 0).any():
        raise ValueError("values: a log-space band needs finite values > 0 (got "
                         f"{array[~np.isfinite(array) | (array <= 0)][:3].tolist()} …)")
    if array.size == 0:
        return float("nan"), float("nan"), float("nan")
    centre, low, high = t_interval(np.log(array), level)
    return float(np.exp(centre)), float(np.exp(low)), float(np.exp(high))


def loglog_slope(x, values) -> np.ndarray:
    """Least-squares slope of log(values) against log(x) along the last axis (batched).

    Args:
        x: shape (N,), > 0 (e.g. the sample sizes n).
        values: shape (..., N), > 0.

    Returns:
        The slopes, shape (...) (a 0-d array for 1-d ``values``): −½ for a 1/√n rate, −1 for 1/n.
    """
    x, values = real_array(x, "x", ndim=1), real_array(values, "values", min_ndim=1)
    if values.shape[-1] != x.shape[0]:
        raise ValueError(f"values: expected shape (..., {x.shape[0]}) to match x, got {values.shape}")
    for name, array in (("x", x), ("values", values)):
        if (array <= 0).any():
            raise ValueError(f"{name}: a log-log slope needs values > 0")
    logx, logy = np.log(x), np.log(values)
    centred = logx - logx.mean()
    return ((logy - logy.mean(-1, keepdims=True)) * centred).sum(-1) / (centred ** 2).sum()


def bootstrap_means(values, rng: np.random.Generator, n_boot: int = 1000) -> np.ndarray:
    """Means of ``n_boot`` bootstrap resamples of the replicates (rows of ``values``).

    Each resample draws the S rows with replacement (as multinomial counts, one draw of
    ``rng.multinomial`` for all resamples) and averages them.

    Args:
        values: shape (S, ...) — S replicates, e.g. seeds × sizes. Not NaN-filtered: a row with
            NaN makes every resample that draws it NaN.
        rng: the generator (the only randomness).
        n_boot: resamples ≥ 1.

    Returns:
        shape (n_boot, ...).
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot: expected an integer >= 1, got {n_boot!r}")
    values = real_array(values, "values", finite=False, nonempty=False)
    if values.ndim == 0 or values.shape[0] == 0:
        raise ValueError(f"values: need at least one replicate along the first axis, got shape {values.shape}")
    n = values.shape[0]
    counts = rng.multinomial(n, np.full(n, 1 / n), size=n_boot)
    return (counts @ values.reshape(n, -1)).reshape((n_boot,) + values.shape[1:]) / n


def percentile_interval(samples, level: float = 0.95, axis: int = 0) -> tuple:
    """The central ``level`` interval of ``samples`` (linear-interpolated percentiles along ``axis``),
    e.g. the 2.5 % and 97.5 % points for level = 0.95. Returns ``(low, high)`` (floats, or arrays
    for multi-dimensional samples)."""
    level = _check_level(level)
    low_q = round((1 - level) / 2, 12)  # 0.025 exactly for level 0.95, not 0.025000000000000022
    samples = real_array(samples, "samples", min_ndim=1, finite=False)
    if np.isnan(samples).any():
        raise ValueError("samples: contains NaN (drop failed resamples first)")
    low, high = np.quantile(samples, [low_q, 1 - low_q], axis=axis)
    return (float(low), float(high)) if np.ndim(low) == 0 else (low, high)


def bootstrap_ci(values, rng: np.random.Generator, *, statistic: Callable | None = None, n_boot: int = 1000,
                 level: float = 0.95) -> tuple:
    """Percentile-bootstrap confidence interval of a statistic of the replicates' mean.

    Args:
        values: shape (S,) or (S, ...) — S replicates (rows), resampled with replacement; finite.
        rng: the generator (the only randomness).
        statistic: maps a batch of resampled means, shape (n_boot, ...), to the statistic per
            resample, shape (n_boot,) — e.g. ``lambda m: loglog_slope(n, m)`` for the slope of the
            mean curve. None: the mean itself (values must then be one-dimensional).
        n_boot: resamples.
        level: the interval's coverage in (0, 1).

    Returns:
        ``(low, high)``: the (1 − level)/2 and (1 + level)/2 percentiles of the bootstrap
        distribution.
    """
    if statistic is not None and not callable(statistic):
        raise ValueError(f"statistic: expected a callable or None, got {statistic!r}")
    level = _check_level(level)
    values = real_array(values, "values", min_ndim=1)  # finite: one NaN or inf would spoil every interval
    boot = bootstrap_means(values, rng, n_boot)
    if statistic is not None:
        boot = np.asarray(statistic(boot), dtype=float)
    if boot.shape != (n_boot,):
        raise ValueError(f"statistic: expected one value per resample, shape ({n_boot},), got {boot.shape} "
                         f"from values of shape {values.shape}")
    return percentile_interval(boot, level)
