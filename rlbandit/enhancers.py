"""Enhancers of online iterative RLHF: one contract for the Gibbs (BT-RLHF) and the Nash world
(DESIGN §3; Xiong et al., ICML 2024, Algorithm 2; Ye, Xiong et al. 2024 for general preferences).

At round t the *main agent* π¹_t exploits the data (BT: O(r̂_t, η, π0); Nash: the Nash policy of
P̂_t) and an *enhancer* chooses how the second action of each comparison is drawn, to explore
where the model is uncertain without straying too far from π¹_t. Every enhancer sees the same
:class:`EnhancerInput` — actions scored against the main agent, their uncertainty and the
optimistic score — and returns an :class:`Enhancement`: the marginals of the two actions, and for
joint rules a sampler. The world (which reward model, which labels) is the loop's business
(:mod:`rlbandit.iterative`), not the enhancer's, so one registry serves both worlds.

    ucb          π² = O(ŝ⁺, η, π0)              the optimistic best response to π¹
    uncertainty  π² = O(β u, η, π0)              pure uncertainty seeking
    optimistic   Option I: max E_x‖φ(x,π′) − φ(x,π¹)‖_{Σ⁻¹} s.t. β E_x‖·‖ ≥ η E_x KL(π′‖π¹)
                 (:func:`rlbandit.optimistic.optimistic_search`; needs per-action features)
    rejection    both actions from n draws of π¹: best and worst under ŝ (exact marginals)
    reference    π² = π0 (Option II, the hybrid algorithm with offline data)
    uniform      π² uniform on π0's support
    self         π² = π¹ (no exploration)

:func:`register` adds an enhancer; the online studies read :data:`ENHANCERS` when they run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from rlbandit import budget, kernels
from rlbandit._checks import check_choice, check_int, same_callable
from rlbandit.optimistic import CONSTRAINTS, optimistic_search
from rlbandit.preferences import sample_actions
from rlbandit.sampling_oracles import best_of_n

__all__ = ["ENHANCERS", "Enhancement", "EnhancerInput", "EnhancerOptions", "register"]


@dataclass(frozen=True)
class EnhancerOptions:
    """Options of the enhancers that have any.

    Attributes:
        n_draws: n of ``rejection`` (draws of π¹ per context), ≥ 2.
        n_random_directions: random tilt directions of the ``optimistic`` search.
        n_tilts: tilt sizes per direction of the ``optimistic`` search.
        n_refine: fixed-point refinement rounds of the ``optimistic`` search (v ← Σ⁻¹ g(π′)).
        constraint: ``"expected"`` — β E_x‖g_x‖ ≥ η E_x KL_x, as in Xiong et al. — or
            ``"per_context"`` — β‖g_x‖ ≥ η KL_x for every context (stricter).
        memory_budget: bytes the ``optimistic`` search may hold at once (None: the default of
            :mod:`rlbandit.budget`, 1 GiB or ``$RLBANDIT_MEMORY_BUDGET``; "512M" etc. accepted).
        on_exceed: ``"chunk"`` — contexts searched in chunks that fit the budget — or ``"raise"``
            — a ValueError naming the sizes and the budget when the whole search does not fit.
    """

    n_draws: int = 8
    n_random_directions: int = 8
    n_tilts: int = 24
    n_refine: int = 2
    constraint: str = "expected"
    memory_budget: int | float | str | None = None
    on_exceed: str = "chunk"

    def __post_init__(self):
        for name, low in (("n_draws", 2), ("n_random_directions", 0), ("n_tilts", 1), ("n_refine", 0)):
            check_int(getattr(self, name), name, minimum=low)
        if self.constraint not in CONSTRAINTS:
            raise ValueError(f"constraint: must be one of {CONSTRAINTS}, got {self.constraint!r}")
        if self.memory_budget is not None:
            budget.parse_bytes(self.memory_budget, "memory_budget")
        check_choice(self.on_exceed, "on_exceed", budget.ON_EXCEED)


@dataclass(frozen=True, eq=False)
class EnhancerInput:
    """What an enhancer sees at round t, batched over S seeds (X contexts, K actions).

    Attributes:
        main_logprobs: log π¹_t, shape (S, X, K).
        scores: ŝ_t(x,a), the estimated payoff of a against the main agent, (S, X, K):
            BT r̂_t(x,a) = ⟨φ(x,a), θ̂_t⟩; Nash P̂_t(a ≻ π¹_t | x).
        uncertainty: u_t(x,a), (S, X, K): BT ‖φ(x,a) − φ(x,π¹_t)‖_{Σ_t⁻¹};
            Nash E_{b∼π¹_t} ‖ψ(x,a,b)‖_{Σ_t⁻¹}.
        upper_scores: ŝ⁺_t(x,a), the optimistic payoff, (S, X, K): BT r̂_t + β u_t;
            Nash E_{b∼π¹_t} min(P̂_t(a ≻ b) + β‖ψ(x,a,b)‖_{Σ_t⁻¹}, 1).
        ref_logprobs: log π0, broadcastable to (S, X, K).
        context_probs: d0, (X,) or (S, X).
        eta: η.
        beta: β, shape (S,).
        features: φ, (S, X, K, d), or None where actions have no feature vector of their own
            (the Nash world's ψ is a pair feature): ``optimistic`` then raises.
        factor: lower Cholesky factor of Σ_t for ``features``, (S, d, d), or None.
    """

    main_logprobs: np.ndarray
    scores: np.ndarray
    uncertainty: np.ndarray
    upper_scores: np.ndarray
    ref_logprobs: np.ndarray
    context_probs: np.ndarray
    eta: float
    beta: np.ndarray
    features: np.ndarray | None = None
    factor: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class Enhancement:
    """An enhancer's output: the marginal distributions of the two actions of a comparison.

    Attributes:
        logprobs1: marginal of a¹ (π¹_t for every built-in enhancer but ``rejection``), (S, X, K).
        logprobs2: marginal of a² (the enhancer policy π²_t), (S, X, K).
        sampler: for a joint rule: ``(contexts (S, m), rng) -> (actions1, actions2)``, each (S, m);
            None = a¹ ∼ logprobs1 and a² ∼ logprobs2 independently.
    """

    logprobs1: np.ndarray
    logprobs2: np.ndarray
    sampler: Callable | None = None


Enhancer = Callable[[EnhancerInput, EnhancerOptions, np.random.Generator], Enhancement]


def _broadcast_ref(state: EnhancerInput) -> np.ndarray:
    return np.broadcast_to(state.ref_logprobs, state.main_logprobs.shape)


def _self(state: EnhancerInput, options: EnhancerOptions, rng) -> Enhancement:
    """π²_t = π¹_t: no exploration (the baseline the theory warns about)."""
    return Enhancement(state.main_logprobs, state.main_logprobs)


def _reference(state: EnhancerInput, options: EnhancerOptions, rng) -> Enhancement:
    """π²_t = π0 (Option II; with offline data this is the hybrid algorithm)."""
    return Enhancement(state.main_logprobs, _broadcast_ref(state))


def _uniform(state: EnhancerInput, options: EnhancerOptions, rng) -> Enhancement:
    """π²_t uniform over π0's support (support kept so KL(π²‖π¹_t) stays finite)."""
    support = np.isfinite(_broadcast_ref(state))
    return Enhancement(state.main_logprobs, kernels.normalize_logits(np.where(support, 0.0, -np.inf)))


def _ucb(state: EnhancerInput, options: EnhancerOptions, rng) -> Enhancement:
    """π²_t = O(ŝ⁺_t, η, π0): the optimistic best response to π¹_t (β = 0 gives O(ŝ_t, η, π0))."""
    return Enhancement(state.main_logprobs, kernels.gibbs(state.upper_scores, state.ref_logprobs, state.eta))


def _uncertainty(state: EnhancerInput, options: EnhancerOptions, rng) -> Enhancement:
    """π²_t = O(β u_t, η, π0): explores where the payoff against π¹_t is least known."""
    bonus = state.beta[:, None, None] * state.uncertainty
    return Enhancement(state.main_logprobs, kernels.gibbs(bonus, state.ref_logprobs, state.eta))


def _optimistic(state: EnhancerInput, options: EnhancerOptions, rng) -> Enhancement:
    """Option I: π²_t = argmax E_x‖φ(x,π′) − φ(x,π¹_t)‖_{Σ_t⁻¹} over the confidence set."""
    if state.features is None or state.factor is None:
        raise ValueError("enhancer: 'optimistic' (Option I) needs per-action features and Σ_t's factor; "
                         "this world has none (use 'ucb' or 'uncertainty')")
    result = optimistic_search(state.features, state.main_logprobs, state.factor, state.beta, state.eta,
                               state.context_probs, rng, n_random_directions=options.n_random_directions,
                               n_tilts=options.n_tilts, n_refine=options.n_refine, constraint=options.constraint,
                               memory_budget=options.memory_budget, on_exceed=options.on_exceed)
    return Enhancement(state.main_logprobs, result)


def _rejection(state: EnhancerInput, options: EnhancerOptions, rng) -> Enhancement:
    """The practical recipe: draw n actions from π¹_t, compare the best with the worst under ŝ_t.

    Best = the first maximal draw, worst = the *last* minimal draw, so that when all n scores tie
    (e.g. θ̂ = 0) the pair is two independent draws rather than one draw twice; either tie rule
    gives a tie group mass ∝ π¹, so the marginals are exactly best-of-n and worst-of-n of π¹_t
    under ŝ_t (:func:`rlbandit.sampling_oracles.best_of_n`), and the sampler draws them jointly.
    """
    n, scores, main = options.n_draws, state.scores, state.main_logprobs

    def sampler(contexts: np.ndarray, rng: np.random.Generator):
        draws = sample_actions(main, np.repeat(contexts, n, axis=-1), rng).reshape(contexts.shape + (n,))
        flat_scores = scores.reshape(scores.shape[0], -1)
        index = contexts[..., None] * scores.shape[-1] + draws
        drawn = np.take_along_axis(flat_scores, index.reshape(scores.shape[0], -1), axis=-1).reshape(draws.shape)
        actions1 = np.take_along_axis(draws, drawn.argmax(axis=-1)[..., None], axis=-1)[..., 0]
        last_min = n - 1 - np.flip(drawn, axis=-1).argmin(axis=-1)
        actions2 = np.take_along_axis(draws, last_min[..., None], axis=-1)[..., 0]
        return actions1, actions2

    return Enhancement(best_of_n(scores, main, n), best_of_n(-scores, main, n), sampler)


#: Enhancer name → ``(state: EnhancerInput, options: EnhancerOptions, rng) -> Enhancement``.
ENHANCERS: dict[str, Enhancer] = {
    "optimistic": _optimistic,
    "ucb": _ucb,
    "uncertainty": _uncertainty,
    "reference": _reference,
    "rejection": _rejection,
    "self": _self,
    "uniform": _uniform,
}


def register(name: str, enhancer: Enhancer, *, replace: bool = False) -> Enhancer:
    """Add an enhancer to :data:`ENHANCERS` (and so to ``online.iterate``, ``nash.run_online_nash``
    and the ``online``/``nash`` studies, which read the registry when they run).

    Args:
        name: the key, a Python identifier.
        enhancer: ``(state: EnhancerInput, options: EnhancerOptions, rng) -> Enhancement``; a
            module-level function, so process workers can import it.
        replace: allow replacing an existing entry (False: a taken name raises ValueError).

    Returns:
        ``enhancer``, so ``register`` also works as a decorator factory's body.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name: expected a Python identifier, got {name!r}")
    if not callable(enhancer):
        raise ValueError(f"enhancer: expected a callable (state, options, rng) -> Enhancement, got {enhancer!r}")
    if name in ENHANCERS and not replace and not same_callable(ENHANCERS[name], enhancer):
        raise ValueError(f"name: enhancer {name!r} is already registered (pass replace=True to override)")
    ENHANCERS[name] = enhancer
    return enhancer
