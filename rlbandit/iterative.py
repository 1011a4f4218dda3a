"""The online iterative loop, once, for every main agent (DESIGN §3).

    for t in rounds:
        fit the preference model on D          ┐ world.observe(D) → EnhancerInput
        main agent π¹_t, uncertainty Σ_t       ┘ (Gibbs: O(r̂_t, η, π0); Nash: π_η of P̂_t)
        enhancer → (π¹_t, π²_t) or a joint rule  :data:`rlbandit.enhancers.ENHANCERS`
        record the round                         world.record(...)
        collect m comparisons into D             world.draw_contexts / world.label (not after the last round)

A *world* supplies the four model-specific steps (:class:`World`); :func:`run_rounds` is the
rest. ``rlbandit.online.iterate`` (Bradley–Terry, Gibbs main agent) and
``rlbandit.nash.run_online_nash`` (general preferences, Nash main agent) are thin wrappers.
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol

import numpy as np
import pandas as pd

from rlbandit.enhancers import ENHANCERS, Enhancement, EnhancerInput, EnhancerOptions
from rlbandit.preferences import PreferenceData, sample_actions

__all__ = ["World", "collect", "run_rounds"]


class World(Protocol):
    """The model-specific steps of the loop (all arrays batched over S seeds)."""

    def observe(self, data: PreferenceData) -> tuple[EnhancerInput, Any]:
        """Fit on D, form the main agent and its uncertainty: the enhancer's input, plus anything
        :meth:`record` needs (e.g. θ̂_t)."""

    def draw_contexts(self, m: int, rng: np.random.Generator) -> np.ndarray:
        """m contexts x ∼ d0 per seed, shape (S, m)."""

    def label(self, contexts: np.ndarray, actions1: np.ndarray, actions2: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
        """Preference labels y (1 = a¹ preferred) from the true model, shape (S, m)."""

    def record(self, t: int, data: PreferenceData, state: EnhancerInput, info: Any,
               out: Enhancement) -> dict[str, np.ndarray]:
        """The round's metrics: name → array of shape (S,) (or a scalar)."""


def collect(world: World, out: Enhancement, m: int, rng: np.random.Generator, source: int) -> PreferenceData:
    """m comparisons per seed: x ∼ d0, (a¹, a²) from the enhancement, y from the world's model.

    Draw order (contexts, a¹, a², labels) is that of ``LinearBandit.sample_preferences`` and
    ``general_preferences.sample_comparisons``, so the loop reproduces their streams.
    """
    contexts = world.draw_contexts(m, rng)
    if out.sampler is None:
        actions1 = sample_actions(out.logprobs1, contexts, rng)
        actions2 = sample_actions(out.logprobs2, contexts, rng)
    else:
        actions1, actions2 = out.sampler(contexts, rng)
    labels = world.label(contexts, actions1, actions2, rng)
    return PreferenceData(contexts, actions1, actions2, labels, np.full(contexts.shape, source, dtype=np.int64),
                          ((out.logprobs1, out.logprobs2),))


def run_rounds(world: World, enhancer: str, options: EnhancerOptions, rounds: Iterable[int], m: int,
               rng: np.random.Generator, data: PreferenceData, *, progress: bool = False,
               desc: str = "online") -> pd.DataFrame:
    """Run the loop over ``rounds`` (e.g. ``range(1, T + 1)``) starting from data D.

    Returns:
        a tidy frame, one row per seed × round: ``seed``, ``iteration`` and the world's metrics.
    """
    enhance = ENHANCERS[enhancer]
    rounds = list(rounds)
    steps = rounds
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(rounds, desc=f"{desc}[{enhancer}]")
    frames = []
    for t in steps:
        state, info = world.observe(data)
        out = enhance(state, options, rng)
        metrics = world.record(t, data, state, info, out)
        n_seeds = state.main_logprobs.shape[0]
        frame = {"seed": np.arange(n_seeds), "iteration": t}
        frame.update({name: np.broadcast_to(value, (n_seeds,)) for name, value in metrics.items()})
        frames.append(pd.DataFrame(frame))
        if t != rounds[-1]:
            data = data.concat(collect(world, out, m, rng, t))
    return pd.concat(frames, ignore_index=True)
