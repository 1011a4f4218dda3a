"""Study ``conflict_llm``: conflicting preferences on a real (tiny) LM — soups against a conditioned
policy for DPO-trained policies (issue 15, the ``llm/`` part; DESIGN §6b).

**World** (:func:`llm.multiobjective.make_conflict_world`): the sequence-level bridge of
:mod:`llm.seq_bridge` — a tiny Llama whose responses are 1–3 words from V = 5 (N = 155 per prompt),
all enumerable, so every value, KL and optimum below is exact (no sampling). X = 4 prompts.
φ(x, y) = all-MiniLM-L6-v2 embedding of the prompt text + the response's words. Two gold objectives
linear in φ: r_1 = positivity (the sentiment direction of :func:`llm.features.sentiment_direction`),
r_2 = brevity (a ridge head on φ fitted to −number of words; −length itself is not linear in φ, the
head's leave-one-prompt-out correlation with it is reported), each scaled to spread 1 per prompt.
Two user types with gates g_positive = (1 − λ, λ), g_brief = (λ, 1 − λ): user ν's reward is
r_ν = g_ν · (r_1, r_2), its value J_ν(π) = E_x [E_π r_ν − η KL(π‖π0)] and its optimum
π_ν* = O(r_ν, η, π0). The user prefix "[user: ν] x" is its own prompt token, its embedding a copy
of x's, so π0 is identical for all users (checked: max |Δ log π0| = 0).

**Data and DPO** (matched budgets): n comparisons (x, a, b), x uniform, a, b ∼ π0(·|x), drawn once
per (seed, n). Four DPO policies, each on n comparisons with the same steps, batch and lr
(``llm.trainers.dpo``, β = η): π_1 and π_2 on BT labels of r_1 resp. r_2; ``conditioned`` on labels of
users of both types (ν uniform, BT on r_ν) with the user prefix in the prompt; ``shared`` on the very
same labelled pairs without the prefix. The soups combine π_1 and π_2 (2n labels in all) at w = g_ν:
``geometric soup`` (sequence level, exact here), ``token soup`` (token-level geometric mixing, what
a real LM decodes), ``parameter soup`` (weight average) and ``arithmetic soup`` (mixture of the two).

Rows (``part``): ``users`` — seed × n × η × user × method: J_1, J_2, J_user, J_star, regret =
J_ν(π_ν*) − J_ν(π) (= η E_x KL(π‖π_ν*)), kl_ref; ``front`` — seed × n × η × t × method at
w = (t, 1 − t): J_1, J_2, J_w and gap = J_w(O(Σ w r)) − J_w(method); ``fit`` — seed × n × η × objective:
KL(π̂_i‖O(r_i)) against KL(π0‖O(r_i)); ``world`` — one row per seed: the objectives' angle and
correlation, the brevity head's transfer, the π0 tie.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rlbandit._checks import check_int, check_positive_float
from rlbandit.study import Study, deferred

__all__ = ["ConflictLLMConfig", "configs", "run", "STUDY", "SOUPS", "METHODS"]

#: the soups of π_1, π_2 (and the exact front they are compared with)
SOUPS = ("geometric soup", "token soup", "parameter soup", "arithmetic soup")
#: every method of the ``users`` part
METHODS = ("reference", "conditioned", "shared", *SOUPS)


@dataclass(frozen=True)
class ConflictLLMConfig:
    """One world seed; every (n, η) on it.

    Attributes:
        seed: seeds the world (LM, π0), the comparisons and the DPO minibatches.
        etas: η values (β of DPO).
        n_comparisons: budgets n (comparisons per DPO policy).
        steps, batch_size, lr: DPO, the same for every policy.
        mix: λ of the user gates (1 − λ, λ) and (λ, 1 − λ), in [0, ½).
        n_weights: size of the grid t ∈ [0, 1] of the front.
        n_prompts, n_words: the first X prompts and V words of ``ConflictWorldConfig``'s defaults.
        ref_fit_steps: steps fitting π0 (see ``llm.seq_world``).
    """

    seed: int = 0
    etas: tuple[float, ...] = (0.5,)
    n_comparisons: tuple[int, ...] = (1000, 2000, 4000, 8000)
    steps: int = 400
    batch_size: int = 64
    lr: float = 3e-3
    mix: float = 0.2
    n_weights: int = 5
    n_prompts: int = 4
    n_words: int = 5
    ref_fit_steps: int = 100

    def __post_init__(self):
        check_int(self.seed, "seed", minimum=0, numpy_ints=False)
        for name in ("steps", "batch_size", "n_prompts"):
            check_int(getattr(self, name), name, numpy_ints=False)
        check_int(self.n_weights, "n_weights", minimum=2, numpy_ints=False)
        check_int(self.n_words, "n_words", minimum=2, numpy_ints=False)
        check_int(self.ref_fit_steps, "ref_fit_steps", minimum=0, numpy_ints=False)
        check_positive_float(self.lr, "lr")
        if not 0 <= self.mix < 0.5:
            raise ValueError(f"mix: the gate weight λ must be in [0, 0.5), got {self.mix}")
        if not isinstance(self.etas, tuple) or not self.etas or not all(np.isfinite(e) and e > 0 for e in self.etas):
            raise ValueError(f"etas: expected a non-empty tuple of finite η > 0, got {self.etas!r}")
        n = self.n_comparisons
        if not isinstance(n, tuple) or not n or not all(isinstance(v, int) and v >= 2 for v in n):
            raise ValueError(f"n_comparisons: expected a non-empty tuple of ints >= 2, got {n!r}")

    @property
    def gates(self) -> np.ndarray:
        """(U = 2, k = 2): user ν's weights on (positivity, brevity)."""
        return np.array([[1 - self.mix, self.mix], [self.mix, 1 - self.mix]])


def configs(smoke: bool) -> list[ConflictLLMConfig]:
    """Full: 3 world seeds × n ∈ {1000, 2000, 4000, 8000} × η = 0.5, 400 DPO steps of 64 pairs (n doubles, so
    soups at n — 2n labels — meet the conditioned and shared policies at 2n in the table; lr 3e-3: at
    n = 2000 lr 1e-2 left KL(π̂_1‖π_1*) at 86 % of KL(π0‖π_1*), 3e-3 at 51 %). Smoke: one
    small world (2 prompts, 3 words: N = 39), n = 200, 30 steps, one η."""
    if smoke:
        return [ConflictLLMConfig(seed=0, etas=(1.0,), n_comparisons=(200,), steps=30, batch_size=32,
                                  n_weights=3, n_prompts=2, n_words=3, ref_fit_steps=20)]
    return [ConflictLLMConfig(seed=s) for s in range(3)]


def _world(config: ConflictLLMConfig):
    from llm.multiobjective import ConflictWorldConfig, make_conflict_world

    base = ConflictWorldConfig()
    return make_conflict_world(ConflictWorldConfig(prompts=base.prompts[:config.n_prompts],
                                                   words=base.words[:config.n_words],
                                                   ref_fit_steps=config.ref_fit_steps, seed=config.seed))


def _datasets(cw, config: ConflictLLMConfig, n: int) -> dict:
    """name → (contexts, chosen, rejected) of the four DPO policies, from one draw of n pairs."""
    from llm.features import bt_labels
    from llm.multiobjective import sample_reference_pairs

    rng = np.random.default_rng([config.seed, n, 15])
    x, a, b = sample_reference_pairs(cw.ref_logprobs, n, rng)
    rewards = cw.rewards_k  # (2, X, N)
    users = rng.integers(len(config.gates), size=n)
    user_r = np.einsum("ni,inm->nm", config.gates[users], rewards[:, x, :])  # (n, N): r_ν(x, ·)
    labels = {"objective 1": bt_labels(rewards[0, x, a], rewards[0, x, b], rng),
              "objective 2": bt_labels(rewards[1, x, a], rewards[1, x, b], rng),
              "users": bt_labels(user_r[np.arange(n), a], user_r[np.arange(n), b], rng)}
    conditioned = np.array([cw.contexts(int(u))[0] for u in range(len(config.gates))])[users] + x

    def pairs(contexts, y):
        return contexts, np.where(y == 1, a, b), np.where(y == 1, b, a)

    return {"objective 1": pairs(x, labels["objective 1"]), "objective 2": pairs(x, labels["objective 2"]),
            "conditioned": pairs(conditioned, labels["users"]), "shared": pairs(x, labels["users"])}


def _train(cw, data, eta: float, config: ConflictLLMConfig):
    from llm.trainers import DPOConfig, dpo, prepare_dpo_data

    world = cw.world
    contexts, chosen, rejected = data
    prepared = prepare_dpo_data(world.ref, cw.prompts_for(contexts), [list(world.responses[i]) for i in chosen],
                                [list(world.responses[i]) for i in rejected], responses_are_ids=True)
    lm = world.policy.copy()
    lm.model.requires_grad_(True)
    dpo(lm, prepared, DPOConfig(beta=eta, steps=config.steps, batch_size=config.batch_size, lr=config.lr,
                                seed=config.seed), progress=False)
    lm.model.requires_grad_(False)
    return lm


def _soups(cw, lms, logps, weights) -> dict:
    """method → log-probs (X, N) of the four soups of π_1, π_2 at ``weights``."""
    from llm import multiobjective as lmo
    from rlbandit import multiobjective as mo

    stacked = np.stack(logps)
    return {"geometric soup": lmo.sequence_soup(stacked, weights),
            "token soup": cw.policy_logprobs(lmo.token_soup_model(lms, weights)),
            "parameter soup": cw.policy_logprobs(lmo.parameter_soup(lms, weights)),
            "arithmetic soup": mo.arithmetic_soup(stacked, weights)}


def _evaluate(cw, lms: dict, eta: float, config: ConflictLLMConfig) -> list[pd.DataFrame]:
    from rlbandit import kl
    from rlbandit import multiobjective as mo

    ref, rewards = cw.ref_logprobs, cw.rewards_k
    per_obj = [cw.policy_logprobs(lms["objective 1"]), cw.policy_logprobs(lms["objective 2"])]
    pair = [lms["objective 1"], lms["objective 2"]]

    def values(logp):
        return mo.objective_values(logp, rewards, ref, eta)  # (2,)

    def kl_mean(p, q):
        return float(np.mean(kl(p, q)))

    user_rows, front_rows, fit_rows = [], [], []
    for i, logp in enumerate(per_obj):
        target = mo.combined_policy(rewards, np.eye(2)[i], ref, eta)
        fit_rows.append({"objective": i + 1, "kl_to_target": kl_mean(logp, target),
                         "kl_ref_to_target": kl_mean(ref, target), "kl_ref": kl_mean(logp, ref)})
    shared = cw.policy_logprobs(lms["shared"])
    for u, (name, gate) in enumerate(zip(cw.config.users, config.gates)):
        star = mo.combined_policy(rewards, gate, ref, eta)
        j_star = float(gate @ values(star))
        methods = {"reference": ref, "conditioned": cw.policy_logprobs(lms["conditioned"], u), "shared": shared,
                   **_soups(cw, pair, per_obj, gate)}
        for method, logp in methods.items():
            j = values(logp)
            user_rows.append({"user": name, "method": method, "J_1": j[0], "J_2": j[1], "J_user": float(gate @ j),
                              "J_star": j_star, "regret": j_star - float(gate @ j), "kl_ref": kl_mean(logp, ref),
                              "kl_opt": kl_mean(logp, star)})
    for t in np.linspace(0.0, 1.0, config.n_weights):
        w = np.array([t, 1.0 - t])
        best = values(mo.combined_policy(rewards, w, ref, eta))
        for method, logp in {"front": None, **_soups(cw, pair, per_obj, w)}.items():
            j = best if logp is None else values(logp)
            front_rows.append({"t": t, "method": method, "J_1": j[0], "J_2": j[1], "J_w": float(w @ j),
                               "gap": float(w @ best - w @ j)})
    return [pd.DataFrame(rows).assign(part=part) for part, rows in
            (("users", user_rows), ("front", front_rows), ("fit", fit_rows))]


def _world_row(cw) -> pd.DataFrame:
    ref_all = cw.world.problem.ref_logprobs
    tie = max(float(np.abs(ref_all[cw.contexts(u)] - ref_all[cw.contexts()]).max())
              for u in range(len(cw.config.users)))
    r = cw.rewards_k - cw.rewards_k.mean(axis=2, keepdims=True)  # centred per prompt
    t1, t2 = cw.thetas
    return pd.DataFrame([{
        "part": "world", "n_prompts": cw.n_prompts, "n_responses": cw.rewards_k.shape[-1],
        "cos_theta": float(t1 @ t2 / np.linalg.norm(t1) / np.linalg.norm(t2)),
        "corr_rewards": float(np.corrcoef(r[0].ravel(), r[1].ravel())[0, 1]),
        "corr_brevity_length": float(np.corrcoef(r[1].ravel(), -np.tile(cw.n_words, cw.n_prompts))[0, 1]),
        "transfer_min": float(cw.transfer.min()), "transfer_mean": float(cw.transfer.mean()),
        "ref_tie": tie}])


def run(config: ConflictLLMConfig) -> pd.DataFrame:
    """Build the world, then for each n and η train the four DPO policies and measure every method exactly."""
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    cw = _world(config)
    frames = [_world_row(cw)]
    for n in config.n_comparisons:
        datasets = _datasets(cw, config, n)
        for eta in config.etas:
            lms = {name: _train(cw, data, eta, config) for name, data in datasets.items()}
            for frame in _evaluate(cw, lms, eta, config):
                frames.append(frame.assign(n=n, eta=eta))
        print(f"[conflict_llm] seed {config.seed}: n = {n} done at {time.perf_counter() - start:.0f}s", flush=True)
    return pd.concat(frames, ignore_index=True).assign(seed=config.seed)


STUDY = Study(
    name="conflict_llm",
    description=(
        "Conflicting preferences on a real (tiny) LM with MiniLM features: two gold objectives (positivity, "
        "brevity) linear in φ = all-MiniLM-L6-v2(prompt + response), on the enumerable sequence-level world of "
        "`llm.seq_bridge` (responses of 1–3 words, exact values and optima). Per-objective DPO policies and their "
        "soups (sequence-level geometric — exact here —, token-level geometric, parameter average, mixture) "
        "against one DPO policy conditioned on the user type by a prompt prefix and one shared DPO policy trained "
        "on the same labels without it; matched budgets (n comparisons, the same steps, per DPO policy); "
        "each user type's exact regret J_ν(π_ν*) − J_ν(π), over 3 world seeds (LM and π0; the objectives are the "
        "same), n ∈ {1000, 2000, 4000, 8000}, η = 0.5."),
    configs=configs,
    run=run,
    report=deferred("benchmarks.conflict_llm_report:report"),
    symbols={"regret": r"regret $J_\nu(\pi_\nu^*) - J_\nu(\pi)$", "J_1": r"$J_1$ (positivity)",
             "J_2": r"$J_2$ (brevity)", "gap": r"$J_w(O(\sum_i w_i r_i)) - J_w(\pi)$", "n": "comparisons n"},
    tags=("llm", "exact", "multiobjective"),
)
