"""Preference data and Bradley–Terry sampling (DESIGN §2).

A dataset is a tidy record of comparisons (x, a¹, a², y), y = 1 when a¹ wins, batched over
leading axes (seeds): every array has shape (..., n). It remembers the behaviour policies that
produced the actions — ``behaviour[s] = (log π¹, log π²)`` for the comparisons with ``source == s``
— so that coverage can be analysed later.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit

from rlbandit._checks import real_array

__all__ = ["PreferenceData", "sample_categorical", "sample_actions", "sample_bt_labels"]


def _check_logprobs_rows(logprobs, name: str) -> np.ndarray:
    logprobs = real_array(logprobs, name, finite=False, nonempty=False)
    if logprobs.ndim < 1 or logprobs.shape[-1] == 0:
        raise ValueError(f"{name}: expected shape (..., K) with K >= 1, got {logprobs.shape}")
    if np.isnan(logprobs).any() or (logprobs == np.inf).any():
        raise ValueError(f"{name}: contains NaN or +inf")
    if logprobs.size and not np.isfinite(logprobs).any(axis=-1).all():
        raise ValueError(f"{name}: a row has no mass (every entry is -inf)")
    return logprobs


def _check_rng(rng) -> None:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")


def _cdf(logprobs: np.ndarray) -> np.ndarray:
    """Normalised cumulative sums of exp(logprobs) (any normalisation of the rows is removed)."""
    logprobs = np.asarray(logprobs, dtype=np.float64)
    cdf = np.cumsum(np.exp(logprobs - logprobs.max(axis=-1, keepdims=True)), axis=-1)
    cdf /= cdf[..., -1:]
    return cdf


def _last_positive(cdf: np.ndarray) -> np.ndarray:
    """Index of the last action with positive mass in each row of ``cdf`` (R, K)."""
    k = cdf.shape[-1]
    grows = np.diff(cdf, axis=-1, prepend=0.0) > 0.0
    return k - 1 - np.argmax(grows[:, ::-1], axis=-1)


def _inverse_cdf(cdf: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """First index k with cdf[row, k] > u for each query; ``cdf`` (R, K), ``rows`` and ``u`` (N,).

    Offsetting row r by 2r makes all rows one sorted array, so every query is one searchsorted:
    no loop over samples and no (N, K) gather. Zero-mass actions repeat the previous cdf value
    (exactly, also after the offset) and are never returned; a query that rounding pushes past
    its row's end is clamped to the row's last action with positive mass. The offset quantises
    probabilities to ulp(2R) (≈ 4e-12 for R = 10⁴ rows), far below any sampling error.
    """
    n_rows, k = cdf.shape
    keys = (cdf + 2.0 * np.arange(n_rows)[:, None]).ravel()
    pos = np.searchsorted(keys, u + 2.0 * rows, side="right")
    return np.minimum(pos - rows * k, _last_positive(cdf)[rows])


def sample_categorical(logprobs: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``size`` indices per row of ``logprobs`` (..., K) → (..., size); −inf is never drawn.

    Rows need not be normalised (they are, implicitly); each needs at least one finite entry.
    """
    logprobs = _check_logprobs_rows(logprobs, "logprobs")
    if not isinstance(size, (int, np.integer)) or size < 0:
        raise ValueError(f"size: expected an integer >= 0, got {size!r}")
    _check_rng(rng)
    cdf = _cdf(logprobs)
    flat = cdf.reshape(-1, cdf.shape[-1])
    rows = np.repeat(np.arange(flat.shape[0]), size)
    draws = _inverse_cdf(flat, rows, rng.random(rows.shape[0]))
    return draws.reshape(cdf.shape[:-1] + (size,))


def sample_actions(logprobs: np.ndarray, contexts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """a_i ~ π(·|x_i) for each context index, batched.

    Args:
        logprobs: log π, shape (..., X, K).
        contexts: x_i, shape (..., n) with the same leading axes.
    Returns:
        actions, shape (..., n).
    """
    logprobs = _check_logprobs_rows(logprobs, "logprobs")
    if logprobs.ndim < 2:
        raise ValueError(f"logprobs: expected shape (..., X, K), got {logprobs.shape}")
    _check_rng(rng)
    n_contexts, k = logprobs.shape[-2:]
    batch = logprobs.shape[:-2]
    contexts = np.asarray(contexts)
    if contexts.ndim < 1 or contexts.shape[:-1] != batch:
        raise ValueError(f"contexts: batch axes {contexts.shape[:-1]} (shape {contexts.shape}) differ from those of "
                         f"logprobs {batch} (shape {logprobs.shape}, (..., X, K))")
    if contexts.size and (not np.issubdtype(contexts.dtype, np.integer) or contexts.min() < 0
                          or contexts.max() >= n_contexts):
        raise ValueError(f"contexts: expected integer indices in [0, {n_contexts})")
    cdf = _cdf(logprobs)
    offsets = (np.arange(int(np.prod(batch, dtype=int))) * n_contexts).reshape(batch + (1,))
    rows = (contexts + offsets).ravel()
    draws = _inverse_cdf(cdf.reshape(-1, k), rows, rng.random(rows.shape[0]))
    return draws.reshape(contexts.shape)


def sample_bt_labels(reward_diff: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """y ~ Bernoulli(σ(r(x,a¹) − r(x,a²))), int8 of the shape of ``reward_diff``."""
    reward_diff = real_array(reward_diff, "reward_diff", finite=False, nonempty=False)
    if np.isnan(reward_diff).any():
        raise ValueError("reward_diff: contains NaN")
    _check_rng(rng)
    return (rng.random(np.shape(reward_diff)) < expit(reward_diff)).astype(np.int8)


@dataclass(frozen=True, eq=False)
class PreferenceData:
    """Comparisons (x, a¹, a², y); arrays of shape (..., n) with the same leading (seed) axes.

    Attributes:
        contexts, actions1, actions2: integer indices.
        labels: 1 when a¹ is preferred, 0 otherwise.
        source: integer tag per comparison (e.g. the online iteration that collected it).
        behaviour: for each tag s, the pair (log π¹, log π²) of behaviour policies, each
            (..., X, K); may be empty when unknown.
    """

    contexts: np.ndarray
    actions1: np.ndarray
    actions2: np.ndarray
    labels: np.ndarray
    source: np.ndarray = None
    behaviour: tuple = field(default=())

    def __post_init__(self):
        arrays = {}
        for name in ("contexts", "actions1", "actions2", "labels"):
            array = np.asarray(getattr(self, name))
            if array.ndim < 1:
                raise ValueError(f"{name}: expected shape (..., n), got a scalar")
            if array.size and not np.issubdtype(array.dtype, np.integer):
                if not np.all(np.equal(np.mod(array, 1), 0)):
                    raise ValueError(f"{name}: expected integer indices")
                array = array.astype(np.int64)
            arrays[name] = array
        shape = arrays["contexts"].shape
        for name, array in arrays.items():
            if array.shape != shape:
                raise ValueError(f"{name}: shape {array.shape} differs from contexts {shape}")
            if array.size and array.min() < 0:
                raise ValueError(f"{name}: indices must be >= 0")
        if arrays["labels"].size and not np.isin(arrays["labels"], (0, 1)).all():
            raise ValueError("labels: every label must be 0 or 1 (1 = first action preferred)")
        source = np.zeros(shape, dtype=np.int64) if self.source is None else np.asarray(self.source)
        if source.shape != shape:
            raise ValueError(f"source: shape {source.shape} differs from contexts {shape}")
        arrays["source"] = source
        for name, array in arrays.items():
            array = np.array(array, copy=True)
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        object.__setattr__(self, "behaviour", tuple(self.behaviour))

    @property
    def n(self) -> int:
        """Number of comparisons per batch element."""
        return self.contexts.shape[-1]

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.contexts.shape[:-1]

    def __len__(self) -> int:
        return self.n

    def diffs(self, features: np.ndarray) -> np.ndarray:
        """z_i = φ(x_i, a¹_i) − φ(x_i, a²_i), shape (..., n, d) for features (..., X, K, d)."""
        features = np.asarray(features, dtype=np.float64)
        return _gather(features, self.contexts, self.actions1) - _gather(features, self.contexts, self.actions2)

    def take(self, index) -> "PreferenceData":
        """The comparisons at ``index`` (along the last axis; same index for every batch element)."""
        index = np.asarray(index)
        pick = lambda a: np.take(a, index, axis=-1)  # noqa: E731
        return PreferenceData(pick(self.contexts), pick(self.actions1), pick(self.actions2),
                              pick(self.labels), pick(self.source), self.behaviour)

    def concat(self, other: "PreferenceData") -> "PreferenceData":
        """All comparisons of ``self`` then ``other``; ``other``'s source tags are shifted past ours."""
        if other.batch_shape != self.batch_shape:
            raise ValueError(f"other: batch shape {other.batch_shape} differs from {self.batch_shape}")
        offset = len(self.behaviour) if self.behaviour else (int(self.source.max()) + 1 if self.source.size else 0)
        join = lambda a, b: np.concatenate([a, b], axis=-1)  # noqa: E731
        return PreferenceData(join(self.contexts, other.contexts), join(self.actions1, other.actions1),
                              join(self.actions2, other.actions2), join(self.labels, other.labels),
                              join(self.source, other.source + offset), self.behaviour + other.behaviour)

    @staticmethod
    def empty(batch_shape: tuple[int, ...] = ()) -> "PreferenceData":
        """A dataset with no comparisons (the start of the online loop without offline data)."""
        z = np.zeros(tuple(batch_shape) + (0,), dtype=np.int64)
        return PreferenceData(z, z, z, z)


def _gather(features: np.ndarray, contexts: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """features[..., contexts, actions, :] with matching leading batch axes → (..., n, d)."""
    batch = contexts.shape[:-1]
    if features.ndim < 3:
        raise ValueError(f"features: expected shape (..., X, K, d), got {features.shape}")
    n_contexts, n_actions = features.shape[-3:-1]
    if contexts.size and contexts.max() >= n_contexts:
        raise ValueError(f"features: the data has context index {int(contexts.max())} but only X = {n_contexts} contexts")
    if actions.size and actions.max() >= n_actions:
        raise ValueError(f"features: the data has action index {int(actions.max())} but only K = {n_actions} actions")
    if features.ndim == 3:
        return features[contexts, actions]
    if features.shape[:-3] != batch:
        raise ValueError(f"features: batch axes {features.shape[:-3]} differ from the data's {batch}")
    flat = features.reshape((-1,) + features.shape[-3:])
    rows = np.arange(flat.shape[0])[:, None]
    out = flat[rows, contexts.reshape(flat.shape[0], -1), actions.reshape(flat.shape[0], -1)]
    return out.reshape(batch + (contexts.shape[-1], features.shape[-1]))
