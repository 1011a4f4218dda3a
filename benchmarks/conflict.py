"""Study ``conflict``: conflicting preferences in the exact world (issue 15; DESIGN §6b).

Six parts, each one run vectorised over ``n_seeds`` random problems (``make_problems``: features
in the unit ball, π0 = softmax of Gaussian logits, X = 8, K = 12, d = 4); the problem's own θ* is
not used. **Construction of the objectives at angle ψ**: per seed draw two Gaussian vectors in R^d,
orthonormalise them (Gram–Schmidt) to u, v, and set θ_1* = s·u, θ_2* = s·(cos ψ u + sin ψ v),
so ‖θ_i*‖ = s and ∠(θ_1*, θ_2*) = ψ exactly.

- ``front``: k = 2 objectives; the exact Pareto front (``pareto_front`` over w = (t, 1 − t), t on
  a grid) and the geometric / arithmetic soups of the per-objective Gibbs policies π_i = O(r_i, η, π0)
  at the same weights. Rows: seed × ψ × η × t × method with J_1, J_2, J_w and ``gap`` = J_w(front) − J_w(method).
- ``sharing``: two user types with one-hot gates (user 1 wants objective 1, user 2 objective 2),
  d_ν uniform; rows seed × ψ × η with each user's regret J_ν(π_ν*) − J_ν(π_shared) (``price_of_sharing``).
- ``annotators``: three annotator types θ_1* = s·u, θ_{2,3}* = s·(cos ψ u ± sin ψ v), shares
  ρ = (½, ¼, ¼); agreement on π0 × π0 pairs (``agreement_matrix``), the pooled-BT limit θ_∞
  (``pooled_bt_limit``) against the mixture average θ̄ = Σ_j ρ_j θ_j*, and each type's value gap
  J_j(π_j*) − J_j(π) for π = O(φθ_∞) (``pooled``) and π = O(φθ̄) (``average``, the ρ-average optimum).
- ``gate``, ``nash``, ``pessimism``: learning the heads and the gate, multi-head vs pooled BT vs Nash,
  per-head pessimism — in :mod:`benchmarks.conflict_learning` (its docstring says what each runs).

The report lives in :mod:`benchmarks.conflict_report` (``deferred``); the learning parts' runners
are named in :data:`RUNNERS` and imported when a run needs them, so no module imports in a cycle.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rlbandit._checks import check_choice, check_int, check_positive_float
from rlbandit.study import Study, deferred

__all__ = ["ConflictConfig", "configs", "run", "STUDY", "PARTS", "RUNNERS", "MIXING", "objective_thetas",
           "part_problems", "value_gaps"]

PARTS = ("front", "sharing", "annotators", "gate", "nash", "pessimism")
MIXING = (0.5, 0.25, 0.25)
#: Part → "module:function" of its runner (imported when the part runs).
RUNNERS = {"front": "benchmarks.conflict:run_front", "sharing": "benchmarks.conflict:run_sharing",
           "annotators": "benchmarks.conflict:run_annotators", "gate": "benchmarks.conflict_learning:run_gate",
           "nash": "benchmarks.conflict_learning:run_nash", "pessimism": "benchmarks.conflict_learning:run_pessimism"}


@dataclass(frozen=True)
class ConflictConfig:
    """One part of the study, vectorised over seeds.

    Attributes:
        part: one of :data:`PARTS`.
        angles: ψ in degrees (each in [0, 180]).
        etas: η values (each > 0).
        n_contexts, n_actions, dim: X, K, d (d ≥ 2).
        n_seeds: problems (seeds base_seed·1000 + i).
        theta_norm: s = ‖θ_i*‖.
        n_weights: size of the weight grid t ∈ [0, 1] (``front`` only).
        base_seed: seeds the problems and the directions u, v.
        sizes: comparisons per user (``gate``), in all (``nash``) or per attribute (``pessimism``).
        n_head: comparisons per attribute of the fixed-size learned heads (``gate``).
        gate_weight: t of the users' gates (t, 1 − t) and (1 − t, t) (``gate``, ``pessimism``).
        betas: the per-head LCB widths β (``pessimism``; 0 = the gated MLE policy).
        reg: λ of every BT fit.
    """

    part: str = "front"
    angles: tuple[float, ...] = (30.0, 60.0, 90.0, 120.0, 150.0)
    etas: tuple[float, ...] = (0.3, 1.0, 3.0)
    n_contexts: int = 8
    n_actions: int = 12
    dim: int = 4
    n_seeds: int = 8
    theta_norm: float = 2.0
    n_weights: int = 11
    base_seed: int = 0
    sizes: tuple[int, ...] = (10, 30, 100, 300, 1000, 3000, 10000)
    n_head: int = 1000
    gate_weight: float = 0.75
    betas: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)
    reg: float = 0.1

    def __post_init__(self):
        check_choice(self.part, "part", PARTS)
        for name in ("n_contexts", "n_actions", "n_seeds", "n_weights"):
            check_int(getattr(self, name), name, minimum=2, numpy_ints=False)
        check_int(self.dim, "dim", minimum=2, numpy_ints=False)
        check_int(self.base_seed, "base_seed", minimum=0, numpy_ints=False)
        check_positive_float(self.theta_norm, "theta_norm")
        if not isinstance(self.angles, tuple) or not self.angles or not all(0 <= a <= 180 for a in self.angles):
            raise ValueError(f"angles: expected a non-empty tuple of degrees in [0, 180], got {self.angles!r}")
        if not isinstance(self.etas, tuple) or not self.etas or not all(np.isfinite(e) and e > 0 for e in self.etas):
            raise ValueError(f"etas: expected a non-empty tuple of finite η > 0, got {self.etas!r}")
        if not isinstance(self.sizes, tuple) or not self.sizes or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in self.sizes):
            raise ValueError(f"sizes: expected a non-empty tuple of integers >= 1, got {self.sizes!r}")
        check_int(self.n_head, "n_head", minimum=1, numpy_ints=False)
        if not (isinstance(self.gate_weight, float) and 0.0 <= self.gate_weight <= 1.0):
            raise ValueError(f"gate_weight: expected a float in [0, 1], got {self.gate_weight!r}")
        if not isinstance(self.betas, tuple) or not self.betas or not all(
                np.isfinite(b) and b >= 0 for b in self.betas):
            raise ValueError(f"betas: expected a non-empty tuple of finite β >= 0, got {self.betas!r}")
        check_positive_float(self.reg, "reg")


def configs(smoke: bool) -> list[ConflictConfig]:
    """Full: the three exact parts, ψ ∈ {30°, 60°, 90°, 120°, 150°} (annotators and nash: ψ ∈ {0°, 30°, …,
    180°}, s = 8 so that agreement spans a wide range), η ∈ {0.3, 1, 3}, 8 seeds; the learning parts at
    η = 1: gate (ψ ∈ {60°, 120°}, n = 10 … 10⁴ per user, n_head = 1000, 32 seeds), nash (n = 300, 3000 in
    all, 8 seeds); pessimism at η ∈ {0.1, 0.3, 1} (ψ = 90°, n = 10 … 300 per attribute, β ∈ {0, ¼, ½, 1, 2},
    32 seeds) in d = 4 and d = 12. Smoke: 1–2 angles, 1–2 η, 3 seeds."""
    if smoke:
        small = dict(n_contexts=4, n_actions=5, dim=3, n_seeds=3, n_weights=5)
        return [ConflictConfig(part="front", angles=(60.0, 150.0), etas=(1.0,), **small),
                ConflictConfig(part="sharing", angles=(60.0, 150.0), etas=(0.3, 1.0), **small),
                ConflictConfig(part="annotators", angles=(0.0, 150.0), etas=(1.0,), theta_norm=4.0, **small),
                ConflictConfig(part="gate", angles=(120.0,), etas=(1.0,), sizes=(10, 100, 1000), n_head=200,
                               **small),
                ConflictConfig(part="nash", angles=(0.0, 120.0), etas=(1.0,), theta_norm=4.0, sizes=(300,), **small),
                ConflictConfig(part="pessimism", angles=(90.0,), etas=(1.0,), sizes=(10, 100), betas=(0.0, 1.0),
                               **small)]
    all_angles = (0.0, 30.0, 60.0, 90.0, 120.0, 150.0, 180.0)
    return [ConflictConfig(part="front"), ConflictConfig(part="sharing"),
            ConflictConfig(part="annotators", angles=all_angles, theta_norm=8.0),
            ConflictConfig(part="gate", angles=(60.0, 120.0), etas=(1.0,), n_seeds=32),
            ConflictConfig(part="nash", angles=all_angles, etas=(1.0,), theta_norm=8.0, sizes=(300, 3000)),
            *(ConflictConfig(part="pessimism", angles=(90.0,), etas=(0.1, 0.3, 1.0), sizes=(10, 30, 100, 300),
                             betas=(0.0, 0.25, 0.5, 1.0, 2.0), n_seeds=32, dim=dim) for dim in (4, 12))]


def objective_thetas(rng: np.random.Generator, n_seeds: int, dim: int, norm: float, angles_deg) -> np.ndarray:
    """θ_i* = norm·(cos ψ_i u + sin ψ_i v) for orthonormal u, v drawn per seed: shape (S, k, d).

    ψ_i are the angles to u (in degrees, may be negative), so ∠(θ_i*, θ_j*) = |ψ_i − ψ_j| ≤ 180°."""
    g = rng.standard_normal((n_seeds, 2, dim))
    u = g[:, 0] / np.linalg.norm(g[:, 0], axis=-1, keepdims=True)
    v = g[:, 1] - (g[:, 1] * u).sum(-1, keepdims=True) * u
    v /= np.linalg.norm(v, axis=-1, keepdims=True)
    psi = np.deg2rad(np.asarray(angles_deg, dtype=float))
    return norm * (np.cos(psi)[None, :, None] * u[:, None, :] + np.sin(psi)[None, :, None] * v[:, None, :])


def part_problems(config: ConflictConfig):
    """(seeds, the seeded LinearBandit batch, the part's generator) of one config."""
    from rlbandit import ProblemConfig, make_problems

    seeds = config.base_seed * 1000 + np.arange(config.n_seeds)
    problems = make_problems(ProblemConfig(n_contexts=config.n_contexts, n_actions=config.n_actions,
                                           dim=config.dim), seeds)
    rng = np.random.default_rng([config.base_seed, PARTS.index(config.part), 15])
    return seeds, problems, rng


def run(config: ConflictConfig) -> pd.DataFrame:
    """One part (see the module docstring) for every ψ × η, per seed."""
    start = time.perf_counter()
    module, _, name = RUNNERS[config.part].partition(":")
    frame = getattr(importlib.import_module(module), name)(config)
    print(f"[conflict] {config.part}: {len(frame)} rows in {time.perf_counter() - start:.1f}s", flush=True)
    return frame


def run_front(config: ConflictConfig) -> pd.DataFrame:
    from rlbandit import multiobjective as mo

    seeds, problems, rng = part_problems(config)
    t = np.linspace(0.0, 1.0, config.n_weights)
    grid = np.stack([t, 1.0 - t], axis=1)
    ref, probs, rows = problems.ref_logprobs, problems.context_probs, []
    for psi in config.angles:
        thetas = objective_thetas(rng, config.n_seeds, config.dim, config.theta_norm, (0.0, psi))
        rewards = mo.objective_rewards(problems.features, thetas)  # (S, 2, X, K)
        for eta in config.etas:
            front = mo.pareto_front(rewards, ref, eta, grid, probs)
            per_objective = np.stack([mo.combined_policy(rewards, np.eye(2)[i], ref, eta) for i in range(2)], axis=1)
            optimum = front["J_w"].to_numpy().reshape(len(t), config.n_seeds)
            base = {"seed": np.tile(seeds, len(t)), "psi": psi, "eta": eta, "t": np.repeat(t, config.n_seeds)}
            rows.append(pd.DataFrame({**base, "method": "front", "J_1": front["J_1"], "J_2": front["J_2"],
                                      "J_w": optimum.ravel(), "gap": 0.0}))
            for name, soup in (("geometric", mo.geometric_soup), ("arithmetic", mo.arithmetic_soup)):
                policy = soup(per_objective, grid[:, None, :])  # (G, S, X, K)
                values = mo.objective_values(policy, rewards, ref, eta, probs)  # (G, S, 2)
                j_w = (grid[:, None, :] * values).sum(-1)
                rows.append(pd.DataFrame({**base, "method": name, "J_1": values[..., 0].ravel(),
                                          "J_2": values[..., 1].ravel(), "J_w": j_w.ravel(),
                                          "gap": (optimum - j_w).ravel()}))
    return pd.concat(rows, ignore_index=True)


def run_sharing(config: ConflictConfig) -> pd.DataFrame:
    from rlbandit import multiobjective as mo

    seeds, problems, rng = part_problems(config)
    gates = np.repeat(np.eye(2)[:, None, :], config.n_contexts, axis=1)  # (V=2, X, k=2), one-hot
    rows = []
    for psi in config.angles:
        thetas = objective_thetas(rng, config.n_seeds, config.dim, config.theta_norm, (0.0, psi))
        rewards = mo.objective_rewards(problems.features, thetas)
        for eta in config.etas:
            price = mo.price_of_sharing(rewards, gates, None, problems.ref_logprobs, eta, problems.context_probs)
            rows.append(pd.DataFrame({"seed": seeds, "psi": psi, "eta": eta, "regret_1": price.per_user[:, 0],
                                      "regret_2": price.per_user[:, 1], "worst": price.worst,
                                      "average": price.average}))
    return pd.concat(rows, ignore_index=True)


def value_gaps(rewards_k, logprobs, ref, eta, probs) -> np.ndarray:
    """J_j(O(r_j)) − J_j(π) for every type j: (S, J)."""
    from rlbandit import multiobjective as mo

    k = rewards_k.shape[-3]
    best = np.stack([mo.objective_values(mo.combined_policy(rewards_k, np.eye(k)[j], ref, eta),
                                         rewards_k, ref, eta, probs)[..., j] for j in range(k)], axis=-1)
    return best - mo.objective_values(logprobs, rewards_k, ref, eta, probs)


def run_annotators(config: ConflictConfig) -> pd.DataFrame:
    from rlbandit import gibbs
    from rlbandit import multiobjective as mo

    seeds, problems, rng = part_problems(config)
    features, ref, probs = problems.features, problems.ref_logprobs, problems.context_probs
    mixing = np.array(MIXING)
    rows = []
    for psi in config.angles:
        thetas = objective_thetas(rng, config.n_seeds, config.dim, config.theta_norm, (0.0, psi, -psi))
        rewards = mo.objective_rewards(features, thetas)  # (S, 3, X, K)
        agree = mo.agreement_matrix(features, thetas, ref, ref, probs)  # (S, 3, 3)
        pooled = mo.pooled_bt_limit(features, thetas, mixing, ref, ref, probs)  # (S, d)
        average = np.einsum("j,sjd->sd", mixing, thetas)
        base = {"seed": seeds, "psi": psi, "A_12": agree[:, 0, 1], "A_13": agree[:, 0, 2], "A_23": agree[:, 1, 2],
                "A_11": agree[:, 0, 0], "A_22": agree[:, 1, 1], "A_33": agree[:, 2, 2],
                "agreement": (agree[:, 0, 1] + agree[:, 0, 2] + agree[:, 1, 2]) / 3,
                "norm_average": np.linalg.norm(average, axis=-1), "norm_pooled": np.linalg.norm(pooled, axis=-1),
                "distance": np.linalg.norm(pooled - average, axis=-1)}
        for eta in config.etas:
            for name, theta in (("pooled", pooled), ("average", average)):
                policy = gibbs(np.einsum("sxkd,sd->sxk", features, theta), ref, eta)
                gaps = value_gaps(rewards, policy, ref, eta, probs)
                rows.append(pd.DataFrame({**base, "eta": eta, "method": name, "gap_1": gaps[:, 0],
                                          "gap_2": gaps[:, 1], "gap_3": gaps[:, 2], "gap_mean": gaps @ mixing,
                                          "gap_worst": gaps.max(-1)}))
    return pd.concat(rows, ignore_index=True)


STUDY = Study(
    name="conflict",
    description=("Conflicting preferences in the exact world: the exact KL-regularised Pareto front for two "
                 "objectives at angle ψ against the geometric and arithmetic soups of the per-objective Gibbs "
                 "policies; the price one shared policy costs two user types with opposite gates; what a "
                 "single Bradley–Terry model fitted to pooled labels of three annotator types converges to and "
                 "costs each type, against their agreement; how many labelled comparisons learning a user's gate over "
                 "multi-head BT rewards takes; multi-head vs pooled BT vs the Nash solution of the annotator "
                 "mixture; per-head pessimism. ψ, η swept over seeded problems (X = 8, K = 12, d = 4)."),
    configs=configs,
    run=run,
    report=deferred("benchmarks.conflict_report:report"),
    symbols={"psi": r"angle $\psi$ (degrees)", "gap": r"$J_w(\mathrm{front}) - J_w(\pi)$",
             "worst": r"worst-off regret $\max_\nu J_\nu(\pi_\nu^*) - J_\nu(\pi_{\mathrm{shared}})$",
             "agreement": "mean off-diagonal agreement", "gap_mean": r"$\sum_j \rho_j [J_j(\pi_j^*) - J_j(\pi)]$",
             "J_1": r"$J_1$", "J_2": r"$J_2$", "n": "comparisons n",
             "regret": r"regret $J_\nu(\pi_\nu^*) - J_\nu(\hat\pi_\nu)$",
             "gate_error": r"gate error $\|\hat g(\nu) - g(\nu)\|_2$",
             "gap_worst": r"worst-off type's gap $\max_j J_j(\pi_j^*) - J_j(\pi)$"},
    tags=("bandit", "exact", "multiobjective"),
)
