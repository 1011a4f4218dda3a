"""Online iterative RLHF with enhancers (DESIGN §3; Xiong et al., ICML 2024, Algorithm 2).

Start from D = D_off (possibly empty). For t = 1..T:

1. θ̂_t = MLE(D) (ridge λ), main agent π¹_t = O(φθ̂_t, η, π0);
2. Σ_t = λI + (1/m) Σ_{(x,a¹,a²) ∈ D} z zᵀ with z = φ(x,a¹) − φ(x,a²) (the batch form);
3. an enhancer from :data:`rlbandit.enhancers.ENHANCERS` gives the pair-sampling distributions
   (π¹_t, π²_t) — or, for ``rejection``, a joint rule for both actions;
4. m tuples x ∼ d0, a¹, a², y ∼ Bradley–Terry on the true reward are added to D.

The loop itself is :func:`rlbandit.iterative.run_rounds`; this module supplies the Gibbs main
agent and the Bradley–Terry world (:class:`GibbsWorld`). Everything is batched over the leading
seed axis of a :class:`~rlbandit.problem.LinearBandit` (from :func:`~rlbandit.problem.make_problems`).
The uncertainty computations live in :mod:`rlbandit.geometry` (``gap_norms``, ``policy_gap_norms``,
``ucb_bonus``, re-exported here): pure functions of arbitrary feature arrays, so the language-model
world calls them with embedding features.

Public entry: :func:`iterate` → a tidy frame, one row per seed × iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rlbandit import geometry, kernels, radii
from rlbandit._checks import (
    check_instance,
    as_float_array,
    check_broadcast,
    check_choice,
    check_eta,
    check_int,
    check_positive_float,
    logprob_array,
    real_array,
    real_number,
)
from rlbandit.enhancers import ENHANCERS, Enhancement, EnhancerInput, EnhancerOptions
from rlbandit.geometry import cholesky, covariance, gap_norms, policy_gap_norms, ucb_bonus
from rlbandit.iterative import run_rounds
from rlbandit.optimistic import optimistic_search
from rlbandit.preferences import PreferenceData, sample_bt_labels
from rlbandit.problem import LinearBandit, gather_rewards, stack_problems
from rlbandit.reward import bt_loss, fit_bt
from rlbandit.sampling_oracles import best_of_n

__all__ = [
    "ENHANCERS",
    "Enhancement",
    "EnhancerInput",
    "GibbsWorld",
    "OnlineOptions",
    "gap_norms",
    "policy_gap_norms",
    "ucb_bonus",
    "theory_beta",
    "optimistic_search",
    "best_of_n_logprobs",
    "iterate",
    "offline_baseline",
    "heldout_loglik",
    "select_by_heldout",
]


def theory_beta(dim: int, T: int, m: int, reg: float, reward_bound: float, delta: float = 0.1) -> float:
    """β of the confidence set of Xiong et al. (ICML 2024, Algorithm 2, batch form):
    :func:`rlbandit.radii.xiong2024_radius` with B = ``reward_bound`` ≥ ‖θ*‖.

        β = sqrt( (d + log(T/δ)) / (κ_B² m) + λ B² ),   κ_B = σ′(2B)

    (their O(·) with the constant set to 1): κ_B lower-bounds σ′ on the reward differences
    ⟨z, θ⟩ ∈ [−2B, 2B] (‖φ‖ ≤ 1); the 1/m matches Σ_t = λI + (1/m)Σ zzᵀ; the union bound over T
    iterations gives log(T/δ); λB² is the ridge bias of the MLE.
    """
    reward_bound = real_number(reward_bound, "reward_bound", minimum=0.0, strict=True)
    return radii.xiong2024_radius(dim, T, m, reg, reward_bound, delta)


@dataclass(frozen=True)
class OnlineOptions(EnhancerOptions):
    """Options of :func:`iterate`: the enhancers' (:class:`~rlbandit.enhancers.EnhancerOptions`:
    ``n_draws``, ``n_random_directions``, ``n_tilts``, ``n_refine``, ``constraint``, ``memory_budget``,
    ``on_exceed``) plus

    Attributes:
        reg: λ > 0 — the MLE's ridge and Σ_t = λI + (1/m)Σ zzᵀ.
        delta: δ of the default β (:func:`theory_beta`).
        reward_bound: B of the default β; None = ‖θ*‖ (the bound the theory assumes known).
        progress: show a progress bar over iterations.
    """

    reg: float = 1.0
    delta: float = 0.1
    reward_bound: float | None = None
    progress: bool = False

    def __post_init__(self):
        super().__post_init__()
        check_positive_float(self.reg, "reg")
        check_positive_float(self.delta, "delta")
        if not self.delta < 1:
            raise ValueError(f"delta: must lie in (0, 1), got {self.delta}")
        if self.reward_bound is not None:
            check_positive_float(self.reward_bound, "reward_bound")


def best_of_n_logprobs(logprobs, scores, n: int) -> np.ndarray:
    """Best-of-n of π under ``scores``: :func:`rlbandit.sampling_oracles.best_of_n` (its one home)
    with this module's argument order, kept for scripts that call it. Worst-of-n: pass −scores."""
    scores, logprobs = real_array(scores, "scores", min_ndim=1), logprob_array(logprobs, "logprobs")
    check_broadcast(scores.shape, logprobs.shape, "scores", "logprobs")
    return best_of_n(scores, logprobs, n)


def heldout_loglik(theta_hat, diffs, labels) -> np.ndarray:
    """Mean Bradley–Terry log-likelihood (1/n) Σ_i [y_i z_iθ̂ − log(1 + e^{z_iθ̂})] of θ̂ on held-out
    comparisons: ``theta_hat`` (..., d), ``diffs`` z (..., n, d), ``labels`` y ∈ {0, 1} (..., n; 1 = first
    action preferred) → shape (...)."""
    diffs = real_array(diffs, "diffs", min_ndim=2, nonempty=False)
    theta_hat = real_array(theta_hat, "theta_hat", min_ndim=1)
    if theta_hat.shape[-1] != diffs.shape[-1]:
        raise ValueError(f"theta_hat: expected shape (..., {diffs.shape[-1]}) to match diffs, got {theta_hat.shape}")
    if diffs.shape[-2] == 0:
        raise ValueError("diffs: need at least one held-out comparison")
    return -bt_loss(theta_hat, diffs, labels, 0.0) / diffs.shape[-2]


def select_by_heldout(loglik, values) -> np.ndarray:
    """A practical output rule: at each t, ``values`` (e.g. SubOpt) of the iterate s ≤ t whose θ̂_s has the
    highest held-out log-likelihood (:func:`heldout_loglik`; ties go to the later iterate). Unlike the
    theory's best iterate min_{s≤t} SubOpt(π¹_s), it needs no θ*, only the held-out comparisons.

    Args:
        loglik, values: shape (..., T), iterations along the last axis.
    Returns:
        shape (..., T): entry t is values[..., s_t] with s_t = argmax_{s ≤ t} loglik[..., s] (latest on ties).
    """
    loglik = real_array(loglik, "loglik", finite=False)
    values = real_array(values, "values", finite=False)
    if (loglik == np.inf).any():
        raise ValueError("loglik: a log-likelihood is <= 0, got +inf")
    if np.isnan(values).any():
        raise ValueError("values: contains NaN")
    if loglik.shape != values.shape or loglik.ndim == 0:
        raise ValueError(f"loglik, values: need the same non-scalar shape, got {loglik.shape} and {values.shape}")
    if np.isnan(loglik).any():
        raise ValueError("loglik: contains NaN")
    T = loglik.shape[-1]
    steps = np.arange(T)
    # best[..., t] = argmax over s ≤ t, the later one on ties: compare running maxima.
    running = np.maximum.accumulate(loglik, axis=-1)
    hit = np.where(loglik == running, steps, -1)
    chosen = np.maximum.accumulate(hit, axis=-1)
    return np.take_along_axis(values, chosen, axis=-1)


# ---------------------------------------------------------------------------------------------
# The Bradley–Terry world with the Gibbs main agent
# ---------------------------------------------------------------------------------------------

def _as_batch(problem: LinearBandit) -> LinearBandit:
    check_instance(problem, LinearBandit, "problem")
    if len(problem.batch_shape) == 0:
        return stack_problems([problem])
    if len(problem.batch_shape) != 1:
        raise ValueError(f"problem: expected at most one batch (seed) axis, got batch shape {problem.batch_shape}")
    return problem


def _check_data(data, problem: LinearBandit, name: str) -> PreferenceData:
    """D for the (batched) problem; unbatched D for a problem given unbatched gets the seed axis too."""
    if not isinstance(data, PreferenceData):
        raise ValueError(f"{name}: expected PreferenceData, got {type(data).__name__}")
    if data.batch_shape == () and problem.batch_shape == (1,):
        data = PreferenceData(data.contexts[None], data.actions1[None], data.actions2[None], data.labels[None],
                              data.source[None], tuple((a[None], b[None]) for a, b in data.behaviour))
    if data.batch_shape != problem.batch_shape:
        raise ValueError(f"{name}: batch shape {data.batch_shape} differs from the problem's {problem.batch_shape}")
    if data.n and (data.contexts.max() >= problem.n_contexts
                   or max(data.actions1.max(), data.actions2.max()) >= problem.n_actions):
        raise ValueError(f"{name}: context or action index out of range for this problem")
    return data


def _fit(diffs: np.ndarray, labels: np.ndarray, reg: float, shape) -> np.ndarray:
    if diffs.shape[-2] == 0:
        return np.zeros(shape)
    return fit_bt(diffs, labels, reg)


@dataclass(frozen=True, eq=False)
class GibbsWorld:
    """Bradley–Terry data on a batched LinearBandit, main agent π¹_t = O(φθ̂_t, η, π0)
    (a :class:`rlbandit.iterative.World`).

    Attributes:
        problem: batched over S seeds; eta: η; beta: β per seed (S,); reg: λ;
        m: comparisons per round (Σ_t's 1/m); n_offline: |D_off| (for ``n_online``);
        heldout: (z, y) of held-out comparisons or None — then each round records ``heldout_loglik``.
    """

    problem: LinearBandit
    eta: float
    beta: np.ndarray
    reg: float
    m: int
    n_offline: int = 0
    heldout: tuple | None = None

    def __post_init__(self):
        object.__setattr__(self, "optimal", self.problem.optimal_policy(self.eta))

    def observe(self, data: PreferenceData):
        problem = self.problem
        diffs = problem.diffs(data)
        theta_hat = _fit(diffs, data.labels, self.reg, (problem.batch_shape[0], problem.dim))
        scores = np.einsum("sxkd,sd->sxk", problem.features, theta_hat)
        main = kernels.gibbs(scores, problem.ref_logprobs, self.eta)
        factor = cholesky(covariance(diffs, self.reg, 1.0 / self.m))
        anchor = geometry.policy_features(main, problem.features)
        uncertainty = geometry.inverse_norm(problem.features - anchor[..., None, :], factor)
        upper = scores + self.beta[:, None, None] * uncertainty
        state = EnhancerInput(main, scores, uncertainty, upper, problem.ref_logprobs, problem.context_probs,
                              self.eta, self.beta, problem.features, factor)
        return state, theta_hat

    def draw_contexts(self, m: int, rng: np.random.Generator) -> np.ndarray:
        return self.problem.sample_contexts(m, rng)

    def label(self, contexts, actions1, actions2, rng) -> np.ndarray:
        rewards = self.problem.rewards
        return sample_bt_labels(gather_rewards(rewards, contexts, actions1) - gather_rewards(rewards, contexts, actions2),
                                rng)

    def record(self, t, data, state, theta_hat, out: Enhancement) -> dict[str, np.ndarray]:
        problem, eta, main, probs = self.problem, self.eta, state.main_logprobs, self.problem.context_probs
        subopt = problem.suboptimality(main, eta)
        extra = {} if self.heldout is None else {"heldout_loglik": heldout_loglik(theta_hat, *self.heldout)}
        gap = geometry.policy_features(out.logprobs1, problem.features) - geometry.policy_features(out.logprobs2,
                                                                                                   problem.features)
        return {
            "n_comparisons": data.n,
            "n_online": data.n - self.n_offline,
            "suboptimality": subopt,
            "combined_metric": subopt + eta * kernels.weigh_contexts(kernels.kl(self.optimal, main), probs),
            "kl_main_ref": problem.kl_to_ref(main),
            "kl_enhancer_main": kernels.weigh_contexts(np.maximum(kernels.kl(out.logprobs2, main), 0.0), probs),
            "kl_first_main": kernels.weigh_contexts(np.maximum(kernels.kl(out.logprobs1, main), 0.0), probs),
            "uncertainty": kernels.weigh_contexts(geometry.inverse_norm(gap, state.factor), probs),
            "theta_error": np.linalg.norm(theta_hat - problem.theta, axis=-1),
            "beta": self.beta,
            **extra,
        }


def iterate(problem: LinearBandit, eta, enhancer: str, T: int, m: int, rng: np.random.Generator,
            beta=None, offline_data: PreferenceData | None = None, *, reg: float = 1.0, delta: float = 0.1,
            reward_bound: float | None = None, n_draws: int = 8, n_random_directions: int = 8, n_tilts: int = 24,
            n_refine: int = 2, constraint: str = "expected", memory_budget=None, on_exceed: str = "chunk",
            progress: bool = False, heldout_data: PreferenceData | None = None) -> pd.DataFrame:
    """Online iterative RLHF (Xiong et al. 2024, Algorithm 2) with an enhancer, batched over seeds.

    Args:
        problem: a LinearBandit, unbatched or with one seed axis S (from ``make_problems``).
        eta: η > 0.
        enhancer: a key of :data:`rlbandit.enhancers.ENHANCERS`.
        T: iterations ≥ 1; m: comparisons collected per iteration ≥ 1.
        rng: the only source of randomness (comparisons, random search directions).
        beta: β ≥ 0 of the confidence set (``optimistic``, ``ucb``, ``uncertainty``); None =
            :func:`theory_beta` with d, T, m, λ = ``reg``, B = ``reward_bound`` (default ‖θ*‖), δ = ``delta``.
        offline_data: D_off (PreferenceData with the problem's batch shape) or None (pure online).
        reg, delta, reward_bound, n_draws, n_random_directions, n_tilts, n_refine, constraint,
        memory_budget, on_exceed, progress: see :class:`OnlineOptions` (validated there).
        heldout_data: comparisons kept out of D (PreferenceData with the problem's batch shape), or None.
            When given, the frame gains ``heldout_loglik`` (of θ̂_t, :func:`heldout_loglik`) and
            ``heldout_suboptimality`` (the practical output rule :func:`select_by_heldout`).

    Returns:
        A tidy frame, one row per seed × iteration t = 1..T: ``seed`` (batch position),
        ``iteration``, ``n_comparisons`` (|D| that θ̂_t was fitted on, offline included),
        ``n_online`` (the online part), ``suboptimality`` (of π¹_t: the last iterate at t),
        ``best_suboptimality`` (min over π¹_1..π¹_t: the theory's output rule), ``combined_metric``,
        ``kl_main_ref`` = KL(π¹_t‖π0), ``kl_enhancer_main`` = KL(π²_t‖π¹_t) (π²_t = the second
        action's marginal), ``kl_first_main`` (KL of the first action's marginal to π¹_t; 0 except
        for ``rejection``), ``uncertainty`` = E_x‖φ(x,π_a¹) − φ(x,π_a²)‖_{Σ_t⁻¹} (the pair's
        marginals; for Option I its objective), ``theta_error`` = ‖θ̂_t − θ*‖, ``beta``.
    """
    problem = _as_batch(problem)
    eta = check_eta(eta)
    check_choice(enhancer, "enhancer", ENHANCERS)
    for name, value in (("T", T), ("m", m)):
        check_int(value, name)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    opts = OnlineOptions(n_draws=n_draws, n_random_directions=n_random_directions, n_tilts=n_tilts,
                         n_refine=n_refine, constraint=constraint, memory_budget=memory_budget, on_exceed=on_exceed,
                         reg=reg, delta=delta, reward_bound=reward_bound, progress=progress)
    S, d = problem.batch_shape[0], problem.dim
    if beta is None:
        bound = opts.reward_bound if opts.reward_bound is not None else float(np.linalg.norm(problem.theta, axis=-1).max())
        beta = theory_beta(d, int(T), int(m), opts.reg, bound, opts.delta)
    beta_arr = as_float_array(beta, "beta")
    if beta_arr.shape not in ((), (1,), (S,)):
        raise ValueError(f"beta: expected a scalar or one β per seed, shape ({S},), got shape {beta_arr.shape}")
    beta_arr = np.broadcast_to(beta_arr, (S,)).astype(np.float64)
    if not np.all(np.isfinite(beta_arr)) or (beta_arr < 0).any():
        raise ValueError(f"beta: must be finite and >= 0, got {beta}")
    data = PreferenceData.empty((S,)) if offline_data is None else _check_data(offline_data, problem, "offline_data")
    heldout = None
    if heldout_data is not None:
        heldout_data = _check_data(heldout_data, problem, "heldout_data")
        if heldout_data.n == 0:
            raise ValueError("heldout_data: need at least one comparison")
        heldout = (problem.diffs(heldout_data), heldout_data.labels)
    world = GibbsWorld(problem, eta, beta_arr, opts.reg, int(m), data.n, heldout)
    frame = run_rounds(world, enhancer, opts, range(1, int(T) + 1), int(m), rng, data, progress=opts.progress)
    frame.insert(frame.columns.get_loc("suboptimality") + 1, "best_suboptimality",
                 frame.groupby("seed")["suboptimality"].cummin())
    if heldout is not None:
        wide = frame.pivot(index="seed", columns="iteration", values=["heldout_loglik", "suboptimality"])
        chosen = select_by_heldout(wide["heldout_loglik"].to_numpy(), wide["suboptimality"].to_numpy())
        chosen = pd.DataFrame(chosen, index=wide.index, columns=wide["suboptimality"].columns).stack()
        frame.insert(frame.columns.get_loc("best_suboptimality") + 1, "heldout_suboptimality",
                     chosen.reindex(pd.MultiIndex.from_frame(frame[["seed", "iteration"]])).to_numpy())
    return frame


def offline_baseline(problem: LinearBandit, eta, sizes, rng: np.random.Generator, reg: float = 1.0,
                     data: PreferenceData | None = None) -> pd.DataFrame:
    """Offline learning with the same budget: θ̂ = MLE of the first n comparisons of π0-vs-π0 data
    (or of ``data``), policy O(φθ̂, η, π0), for each n in ``sizes``.

    Returns a tidy frame: ``seed``, ``n_comparisons``, ``suboptimality``, ``kl_main_ref``,
    ``theta_error`` (n = 0 gives π0 itself).
    """
    problem = _as_batch(problem)
    eta = check_eta(eta)
    sizes = np.asarray(sizes)
    if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer) or (sizes < 0).any():
        raise ValueError(f"sizes: expected a 1-d array of non-negative integers, got {sizes!r}")
    check_positive_float(reg, "reg")
    n_max = int(sizes.max())
    if data is None:
        data = problem.sample_preferences(problem.ref_logprobs, problem.ref_logprobs, max(n_max, 1), rng)
    data = _check_data(data, problem, "data")
    if data.n < n_max:
        raise ValueError(f"data: has {data.n} comparisons, fewer than max(sizes) = {n_max}")
    S, d = problem.batch_shape[0], problem.dim
    diffs = problem.diffs(data)
    rows = []
    for n in sizes:
        theta_hat = _fit(diffs[:, :n], data.labels[:, :n], reg, (S, d))
        policy = kernels.gibbs(np.einsum("sxkd,sd->sxk", problem.features, theta_hat), problem.ref_logprobs, eta)
        rows.append(pd.DataFrame({
            "seed": np.arange(S), "n_comparisons": int(n),
            "suboptimality": problem.suboptimality(policy, eta), "kl_main_ref": problem.kl_to_ref(policy),
            "theta_error": np.linalg.norm(theta_hat - problem.theta, axis=-1),
        }))
    return pd.concat(rows, ignore_index=True)
