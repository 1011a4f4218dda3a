"""Study ``conflict``, the learning parts (issue 15): how many labelled comparisons the gate takes,
multi-head vs pooled BT vs the Nash solution of the annotator mixture, and per-head pessimism.

Every part runs vectorised over ``n_seeds`` problems of :func:`benchmarks.conflict.part_problems`;
comparisons are (x, a, b) with x ∼ d0 and a, b ∼ π0 independently (π0 × π0 pairs).

- ``gate``: k = 2 heads at angle ψ (:func:`~benchmarks.conflict.objective_thetas`), two user types
  with gates g(1) = (t, 1 − t), g(2) = (1 − t, t) (t = ``gate_weight``), d_ν uniform. Per size n in
  ``sizes``: n comparisons per user labelled y ∼ BT(Σ_i g(ν)_i r_i); ĝ(ν) by MLE on the simplex
  (:func:`rlbandit.multiobjective_learning.fit_user_gates`) over three sets of heads — the true
  θ_i*, heads learned from ``n_head`` attribute-labelled comparisons per attribute, and heads learned
  from n per attribute — and the user's regret J_ν(π_ν*) − J_ν(O(Σ_i ĝ_i r̂_i)) = η E_x KL(π̂‖π_ν*)
  beside the exact price of sharing of the same users (DESIGN §6b).
- ``nash``: the three annotator types of part ``annotators`` (ρ = ½, ¼, ¼); per type j the value gap
  J_j(π_j*) − J_j(π) of the pooled-BT policy, the ρ-average optimum O(φθ̄), the Nash equilibrium of
  P(a ≻ b|x) = Σ_j ρ_j σ(r_j(x,a) − r_j(x,b)) (``rlbandit.nash.solve``) and the conditioned policy
  O(φθ_j) (multi-head, the gate one-hot on the labeller's type): exactly (n = ∞: θ_∞, θ_j*) and from
  n comparisons per size (same data for every method: fit_bt pooled; fit_heads per type; Nash of the
  plug-in mixture of learned heads with the empirical shares).
- ``pessimism``: heads and users as in ``gate``, the true gates, n attribute-labelled comparisons per
  attribute; per user the regret of O(Σ_i g_i LCB_i) with β_i = β for β in ``betas`` (β = 0 is the
  gated MLE policy) (:func:`rlbandit.multiobjective_learning.pessimistic_user_policies`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.conflict import MIXING, ConflictConfig, objective_thetas, part_problems, value_gaps

__all__ = ["run_gate", "run_nash", "run_pessimism", "user_gates", "HEADS"]

#: The head sets of part ``gate`` (the fixed-size one is labelled with ``n_head``).
HEADS = ("true heads", "learned heads (n_head fixed)", "learned heads (n_head = n)")


def user_gates(config: ConflictConfig) -> np.ndarray:
    """g(ν) per user type: ((t, 1 − t), (1 − t, t)), shape (V = 2, k = 2)."""
    t = config.gate_weight
    return np.array([[t, 1.0 - t], [1.0 - t, t]])


def _pairs(problems, n: int, rng: np.random.Generator):
    """n pairs per seed from d0 × π0 × π0: contexts, a¹, a² (S, n) and z = φ(x,a¹) − φ(x,a²) (S, n, d)."""
    from rlbandit.preferences import sample_actions, sample_categorical

    with np.errstate(divide="ignore"):
        log_d0 = np.log(np.broadcast_to(problems.context_probs, problems.batch_shape + (problems.n_contexts,)))
    contexts = sample_categorical(log_d0, n, rng)
    first = sample_actions(problems.ref_logprobs, contexts, rng)
    second = sample_actions(problems.ref_logprobs, contexts, rng)
    seeds = np.arange(contexts.shape[0])[:, None]
    diffs = problems.features[seeds, contexts, first] - problems.features[seeds, contexts, second]
    return contexts, first, second, diffs


def _attribute_data(problems, thetas, n_per_head: int, rng):
    """n comparisons per attribute, each labelled by its own head: (diffs, labels, attributes)."""
    from rlbandit.preferences import sample_bt_labels

    k = thetas.shape[-2]
    _, _, _, diffs = _pairs(problems, k * n_per_head, rng)
    attributes = np.broadcast_to(np.repeat(np.arange(k), n_per_head), diffs.shape[:-1])
    margins = np.einsum("snd,snd->sn", diffs, thetas[np.arange(diffs.shape[0])[:, None], attributes])
    return diffs, sample_bt_labels(margins, rng), attributes


def _regret(policy, best, eta, probs) -> np.ndarray:
    """J_ν(π_ν*) − J_ν(π̂) = η Σ_x d0(x) KL(π̂(·|x) ‖ π_ν*(·|x)) (Gibbs fact 2): (S, V, X, K) → (S, V)."""
    from rlbandit.oracle import kl

    probs = np.broadcast_to(probs, best.shape[:1] + best.shape[-2:-1])
    return eta * np.einsum("sx,svx->sv", probs, kl(policy, best))


def _user_rows(seeds, values: dict) -> pd.DataFrame:
    """Tidy rows seed × user from (S, V) arrays."""
    n_seeds, n_users = next(iter(values.values())).shape
    frame = {"seed": np.repeat(seeds, n_users), "user": np.tile(np.arange(1, n_users + 1), n_seeds)}
    return pd.DataFrame({**frame, **{k: np.asarray(v).ravel() for k, v in values.items()}})


def run_gate(config: ConflictConfig) -> pd.DataFrame:
    from rlbandit import multiobjective as mo
    from rlbandit import multiobjective_learning as ml
    from rlbandit.preferences import sample_bt_labels

    seeds, problems, rng = part_problems(config)
    features, ref, probs, n_contexts = problems.features, problems.ref_logprobs, problems.context_probs, \
        problems.n_contexts
    gates = user_gates(config)
    n_users = gates.shape[0]
    gates_x = np.repeat(gates[:, None, :], n_contexts, axis=1)  # (V, X, k)
    rows = []
    for psi in config.angles:
        thetas = objective_thetas(rng, config.n_seeds, config.dim, config.theta_norm, (0.0, psi))
        rewards = mo.objective_rewards(features, thetas)
        head_data = _attribute_data(problems, thetas, config.n_head, rng)
        fixed = ml.fit_heads(*head_data, 2, config.reg)
        for n in config.sizes:
            _, _, _, diffs = _pairs(problems, n_users * n, rng)
            users = np.broadcast_to(np.repeat(np.arange(n_users), n), diffs.shape[:-1])
            labels = sample_bt_labels(np.einsum("snk,snk->sn", ml.head_margins(diffs, thetas), gates[users]), rng)
            matched = ml.fit_heads(*_attribute_data(problems, thetas, n, rng), 2, config.reg)
            for name, heads in zip(HEADS, (thetas, fixed, matched)):
                fitted = ml.fit_user_gates(ml.head_margins(diffs, heads), labels, users, n_users,
                                           n_contexts=n_contexts)  # (S, V, X, k)
                estimated = mo.objective_rewards(features, heads)
                error = np.linalg.norm(fitted[:, :, 0, :] - gates, axis=-1)
                for eta in config.etas:
                    best = mo.user_policies(rewards, gates_x, ref, eta)
                    price = mo.price_of_sharing(rewards, gates_x, None, ref, eta, probs).per_user
                    regret = _regret(mo.user_policies(estimated, fitted, ref, eta), best, eta, probs)
                    part = _user_rows(seeds, {"gate_error": error, "regret": regret, "price": price,
                                              "gate_1": fitted[:, :, 0, 0]})
                    rows.append(part.assign(psi=psi, eta=eta, n=n, heads=name))
    return pd.concat(rows, ignore_index=True)


def _nash_rows(seeds, rewards, policies: dict, ref, eta, probs, mixing) -> list[pd.DataFrame]:
    """One row per seed × method: gap_j = J_j(π_j*) − J_j(π) for a shared π (S, X, K), or for the
    conditioned policies (S, J, X, K) type j's gap under its own policy; ``kl_ref`` = E_x KL(π‖π0)
    (ρ-averaged over the conditioned policies)."""
    from rlbandit.oracle import kl

    out = []
    for name, policy in policies.items():
        if policy.ndim == 4:
            gaps = np.stack([value_gaps(rewards, policy[:, j], ref, eta, probs)[:, j]
                             for j in range(policy.shape[1])], axis=-1)
            divergence = np.einsum("sjx,sx,j->s", kl(policy, ref[:, None]), np.broadcast_to(probs, ref.shape[:-1]),
                                   mixing)
        else:
            gaps = value_gaps(rewards, policy, ref, eta, probs)
            divergence = np.einsum("sx,sx->s", kl(policy, ref), np.broadcast_to(probs, ref.shape[:-1]))
        out.append(pd.DataFrame({"seed": seeds, "method": name, "gap_1": gaps[:, 0], "gap_2": gaps[:, 1],
                                 "gap_3": gaps[:, 2], "gap_mean": gaps @ mixing, "gap_worst": gaps.max(-1),
                                 "kl_ref": divergence}))
    return out


def run_nash(config: ConflictConfig) -> pd.DataFrame:
    from rlbandit import gibbs, nash
    from rlbandit import multiobjective as mo
    from rlbandit import multiobjective_learning as ml
    from rlbandit.preference_models import annotator_mixture
    from rlbandit.reward import fit_bt

    seeds, problems, rng = part_problems(config)
    features, ref, probs = problems.features, problems.ref_logprobs, problems.context_probs
    mixing = np.array(MIXING)
    rows = []

    def policy_of(theta, eta):
        return gibbs(np.einsum("sxkd,s...d->s...xk", features, theta), ref[:, None] if theta.ndim == 3 else ref, eta)

    for psi in config.angles:
        thetas = objective_thetas(rng, config.n_seeds, config.dim, config.theta_norm, (0.0, psi, -psi))
        rewards = mo.objective_rewards(features, thetas)
        agree = mo.agreement_matrix(features, thetas, ref, ref, probs)
        agreement = (agree[:, 0, 1] + agree[:, 0, 2] + agree[:, 1, 2]) / 3
        pooled = mo.pooled_bt_limit(features, thetas, mixing, ref, ref, probs)
        average = np.einsum("j,sjd->sd", mixing, thetas)
        pref = annotator_mixture(features, thetas, mixing)
        data = []
        for n in config.sizes:
            contexts, first, second, diffs = _pairs(problems, n, rng)
            labels, types = mo.annotator_labels(features, thetas, mixing, contexts, first, second, rng)
            shares = (types[..., None] == np.arange(3)).mean(axis=-2)
            data.append((n, fit_bt(diffs, labels, config.reg), ml.fit_heads(diffs, labels, types, 3, config.reg),
                         shares))
        for eta in config.etas:
            exact = {"pooled": policy_of(pooled, eta), "average": policy_of(average, eta),
                     "nash": nash.solve(pref, ref, eta), "conditioned": policy_of(thetas, eta)}
            cell = [part.assign(n=np.inf) for part in _nash_rows(seeds, rewards, exact, ref, eta, probs, mixing)]
            for n, theta_pooled, heads, shares in data:
                learned = {"pooled": policy_of(theta_pooled, eta),
                           "nash": nash.solve(annotator_mixture(features, heads, shares), ref, eta),
                           "conditioned": policy_of(heads, eta)}
                cell += [part.assign(n=float(n)) for part in _nash_rows(seeds, rewards, learned, ref, eta, probs,
                                                                          mixing)]
            rows += [part.assign(psi=psi, eta=eta, agreement=agreement) for part in cell]
    return pd.concat(rows, ignore_index=True)


def run_pessimism(config: ConflictConfig) -> pd.DataFrame:
    from rlbandit import multiobjective as mo
    from rlbandit import multiobjective_learning as ml

    seeds, problems, rng = part_problems(config)
    features, ref, probs, n_contexts = problems.features, problems.ref_logprobs, problems.context_probs, \
        problems.n_contexts
    gates = user_gates(config)
    gates_x = np.repeat(gates[:, None, :], n_contexts, axis=1)
    rows = []
    for psi in config.angles:
        thetas = objective_thetas(rng, config.n_seeds, config.dim, config.theta_norm, (0.0, psi))
        rewards = mo.objective_rewards(features, thetas)
        for n in config.sizes:
            diffs, labels, attributes = _attribute_data(problems, thetas, n, rng)
            heads = ml.fit_heads(diffs, labels, attributes, 2, config.reg)
            covs = ml.head_covariances(diffs, attributes, 2, config.reg)
            for eta in config.etas:
                best = mo.user_policies(rewards, gates_x, ref, eta)
                for beta in config.betas:
                    policy = ml.pessimistic_user_policies(features, heads, covs, np.full(2, beta), gates_x, ref, eta)
                    part = _user_rows(seeds, {"regret": _regret(policy, best, eta, probs)})
                    rows.append(part.assign(psi=psi, eta=eta, n=n, beta=beta, method="lcb" if beta > 0 else "mle"))
    return pd.concat(rows, ignore_index=True)
