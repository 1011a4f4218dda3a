"""Softmax policies in torch for the approximate oracles (DESIGN §5), batched over seeds.

Both classes are log-linear families around π0 and both start at π0:

- :class:`TabularPolicy`: one free logit per (x, a),  log π_u(a|x) = log π0(a|x) + u(x,a) − log Z_u(x).
  It can represent every policy with π0's support, so its optimum over J is the Gibbs policy itself.
- :class:`LogLinearPolicy`: π_w(a|x) ∝ π0(a|x) exp(⟨φ(x,a), w⟩ / η). It contains the Gibbs policy of
  every linear reward φθ (at w = θ), so O(r*, η, π0) = π_{θ*} and O(φθ̂, η, π0) = π_{θ̂}.

Parameters are float64 and carry a leading seed axis S (``problem.batch_shape``); ``logprobs()``
returns log π of shape (S, X, K) (or (X, K) for an unbatched problem) with −inf exactly where π0
has no mass. ``make_policy(kind, problem, eta)`` builds one from the registry ``POLICIES``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from rlbandit._checks import real_array, real_number

__all__ = ["TabularPolicy", "LogLinearPolicy", "POLICIES", "make_policy", "as_tensor"]


def as_tensor(array) -> torch.Tensor:
    """float64 torch tensor (no copy for float64 numpy input that is writeable)."""
    array = real_array(array, "array", finite=False, nonempty=False)
    if np.isnan(array).any() or (array == np.inf).any():
        raise ValueError("array: contains NaN or +inf")
    return torch.from_numpy(np.array(array, copy=True))


class TabularPolicy(torch.nn.Module):
    """log π_u = log_softmax(log π0 + u) over actions; u (..., X, K) starts at 0 (π = π0).

    Args:
        ref_logprobs: log π0, shape (..., X, K).
        init: optional initial u (same shape).
    """

    def __init__(self, ref_logprobs, init=None):
        super().__init__()
        ref = as_tensor(ref_logprobs)
        if ref.ndim < 2:
            raise ValueError(f"ref_logprobs: expected shape (..., X, K), got {tuple(ref.shape)}")
        self.register_buffer("ref_logprobs", ref)
        u = torch.zeros_like(ref) if init is None else as_tensor(init).expand_as(ref).clone()
        self.logits = torch.nn.Parameter(u)

    def logprobs(self) -> torch.Tensor:
        """log π (..., X, K); −inf where π0 is 0."""
        support = torch.isfinite(self.ref_logprobs)
        z = torch.where(support, self.ref_logprobs + self.logits, torch.full_like(self.logits, -torch.inf))
        return torch.log_softmax(z, dim=-1)

    def implicit_reward(self, eta: float) -> torch.Tensor:
        """η (log π − log π0) = η u − η log Z_u(x): the reward whose Gibbs policy is π (up to c(x))."""
        lp = self.logprobs()
        return eta * torch.where(torch.isfinite(self.ref_logprobs), lp - self.ref_logprobs, torch.zeros_like(lp))


class LogLinearPolicy(torch.nn.Module):
    """log π_w = log_softmax(log π0 + φ w / η); w (..., d) starts at 0 (π = π0).

    Args:
        features: φ, shape (..., X, K, d).
        ref_logprobs: log π0, shape (..., X, K).
        eta: η > 0 (the temperature: w is in reward units, π_w = O(φw, η, π0)).
        init: optional initial w (..., d).
    """

    def __init__(self, features, ref_logprobs, eta: float, init=None):
        super().__init__()
        eta = float(eta)
        if not np.isfinite(eta) or eta <= 0:
            raise ValueError(f"eta: must be a finite number > 0, got {eta}")
        feats = as_tensor(features)
        ref = as_tensor(ref_logprobs)
        if feats.ndim < 3 or feats.shape[:-1] != ref.shape:
            raise ValueError(f"features: expected shape {tuple(ref.shape)} + (d,), got {tuple(feats.shape)}")
        self.register_buffer("features", feats)
        self.register_buffer("ref_logprobs", ref)
        self.eta = eta
        shape = feats.shape[:-3] + feats.shape[-1:]
        w = torch.zeros(shape, dtype=torch.float64) if init is None else as_tensor(init).expand(shape).clone()
        self.w = torch.nn.Parameter(w)

    def rewards(self) -> torch.Tensor:
        """φ w, shape (..., X, K)."""
        return torch.einsum("...xkd,...d->...xk", self.features, self.w)

    def logprobs(self) -> torch.Tensor:
        support = torch.isfinite(self.ref_logprobs)
        z = torch.where(support, self.ref_logprobs + self.rewards() / self.eta,
                        torch.full_like(self.ref_logprobs, -torch.inf))
        return torch.log_softmax(z, dim=-1)

    def implicit_reward(self, eta: float) -> torch.Tensor:
        lp = self.logprobs()
        return eta * torch.where(torch.isfinite(self.ref_logprobs), lp - self.ref_logprobs, torch.zeros_like(lp))


def _tabular(problem, eta: float) -> TabularPolicy:
    return TabularPolicy(problem.ref_logprobs)


def _log_linear(problem, eta: float) -> LogLinearPolicy:
    return LogLinearPolicy(problem.features, problem.ref_logprobs, eta)


#: policy class name → builder (problem, eta) → torch module with ``logprobs()``.
POLICIES: dict[str, Callable] = {"tabular": _tabular, "log_linear": _log_linear}


def make_policy(kind: str, problem, eta: float):
    """A fresh policy of class ``kind`` (a key of :data:`POLICIES`) at π0 for ``problem``."""
    if kind not in POLICIES:
        raise ValueError(f"kind: unknown policy class {kind!r}; expected one of {sorted(POLICIES)}")
    if not all(hasattr(problem, name) for name in ("features", "ref_logprobs")):
        raise ValueError(f"problem: expected a LinearBandit, got {type(problem).__name__}")
    return POLICIES[kind](problem, real_number(eta, "eta", minimum=0.0, strict=True))
