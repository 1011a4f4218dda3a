"""Exact fixed points of token-level policy gradient in the sequence-level bridge (:mod:`llm.seq_bridge`).

Responses of up to L tokens form a prefix tree (a node per content prefix, a child per next token,
EOS included); a tabular policy over it is a policy over whole responses through equation (1) of
:mod:`llm.seq_world`, log π(y|x) = Σ_t log π(y_t | x, y_<t). :func:`token_level_fixed_point` solves
where a policy-gradient trainer converges with its KL estimator in the reward or in the loss, by
backward induction over the tree; :func:`method_target` maps a ``PGConfig`` to that fixed point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rlbandit._checks import check_eta

if TYPE_CHECKING:
    from llm.seq_world import SequenceWorld

__all__ = ["method_target", "token_level_fixed_point"]


def _nodes(world: SequenceWorld):
    """The prefix tree: for depth t, node index of each response's token t and its child slot.

    Returns (node (N, L), child (N, L), mask (N, L), widths [V, V+1, …]): node = index of the prefix
    y_<t among the V^t content prefixes of length t, child = y_t (EOS in slot V).
    """
    v, length, eos = world.config.n_tokens, world.config.max_length, world.vocab.eos
    n = world.n_responses
    node, child, mask = (np.zeros((n, length), dtype=np.int64) for _ in range(3))
    for i, resp in enumerate(world.responses):
        for t, tok in enumerate(resp):
            node[i, t] = int(np.ravel_multi_index(resp[:t], (v,) * t)) if t else 0
            child[i, t] = v if tok == eos else tok
            mask[i, t] = 1
    widths = [v] + [v + 1] * (length - 1)
    return node, child, mask.astype(bool), widths


def _node_tables(world: SequenceWorld, token_logprobs: np.ndarray):
    """Conditional log-probs at every node, list over depth t of (X, V^t, width_t), from the per-token
    log-probs (X, N, L) of the enumerated responses (every edge lies on some response)."""
    node, child, mask, widths = _nodes(world)
    x_count, v = world.config.n_contexts, world.config.n_tokens
    tables = [np.full((x_count, v ** t, w), -np.inf) for t, w in enumerate(widths)]
    for t, table in enumerate(tables):
        rows = np.flatnonzero(mask[:, t])
        table[:, node[rows, t], child[rows, t]] = token_logprobs[:, rows, t]
    return tables


def _compose(world: SequenceWorld, tables) -> np.ndarray:
    """log π(y|x) = Σ_t log π(y_t | node_t), shape (X, N), from node tables (equation (1))."""
    node, child, mask, _ = _nodes(world)
    out = np.zeros((world.config.n_contexts, world.n_responses))
    for t, table in enumerate(tables):
        rows = np.flatnonzero(mask[:, t])
        out[:, rows] += table[:, node[rows, t], child[rows, t]]
    return out


def token_level_fixed_point(world: SequenceWorld, rewards, eta, kl_kind: str = "k1", kl_mode: str = "reward",
                            temperature_scale=None) -> np.ndarray:
    """The exact fixed point (tabular policy per prefix, exact expected gradients) of token-level
    policy gradient on sequence rewards r(x, y) (X, N) with the per-token KL estimator ``kl_kind``:

    - ``kl_mode="reward"`` (R = r − η Σ_t k1_t, any unbiased baseline): ∇ of E r − η KL(π‖π0) of
      whole responses, so the sequence Gibbs policy O(r, η, π0) (``rlbandit.gibbs``).
    - ``kl_mode="loss"``: the loss adds η Σ_t k(log π(y_t|s_t), log π0(y_t|s_t)) with the states s_t
      sampled from π and not differentiated. At each prefix s the stationarity condition is that of a
      bandit over the next token with reward Q(s, a) = E_π[r | s, a] — the expected *reward* to go,
      with no future KL — and the KL option of ``rlbandit.policy_gradient.fixed_point``:
      k3 → the forward-KL policy π(a|s) = η π0(a|s)/(λ − Q(s,a)) (``forward_kl_policy``); k2 →
      Gibbs over the next token, O(Q(s,·), η, π0(·|s)) — which is *not* the sequence Gibbs policy,
      since Q misses the future KL; k1 → greedy (E_π ∇ log π = 0: no regularisation). Solved by
      backward induction from the last token, Q(s, a) = r(x, s·a) at a response's end and
      Σ_b π(b|s·a) Q(s·a, b) otherwise.

    ``temperature_scale`` (X,) multiplies η per context (advantages divided by a per-prompt σ_x
    act as η σ_x, since each rule is invariant to (r, η) → (r/c, η/c)).
    Returns log-probs over the responses, shape (X, N).
    """
    from rlbandit import gibbs
    from rlbandit.pg_fixed_points import fixed_point

    eta = check_eta(eta)
    rewards = np.asarray(rewards, dtype=np.float64)
    x_count, v = world.config.n_contexts, world.config.n_tokens
    if rewards.shape != (x_count, world.n_responses):
        raise ValueError(f"rewards: expected shape {(x_count, world.n_responses)}, got {rewards.shape}")
    scale = np.ones(x_count) if temperature_scale is None else np.asarray(temperature_scale, dtype=np.float64)
    if scale.shape != (x_count,) or not np.all(np.isfinite(scale)) or (scale <= 0).any():
        raise ValueError(f"temperature_scale: expected {x_count} finite numbers > 0, got {temperature_scale!r}")
    if kl_mode == "reward":
        if kl_kind != "k1":
            raise ValueError(f"kl_kind: the trainers put the sequence k1 in the reward; no fixed point for "
                             f"{kl_kind!r} in the reward")
        return gibbs(rewards / scale[:, None], world.problem.ref_logprobs, eta)
    if kl_mode != "loss":
        raise ValueError(f"kl_mode: expected 'reward' or 'loss', got {kl_mode!r}")
    # per-context temperature η·c_x ≡ rewards r/c_x at η (every rule is invariant to that rescaling)
    scaled = rewards / scale[:, None]
    ref_tables = _node_tables(world, world.token_logprobs(world.ref))
    node, child, mask, widths = _nodes(world)
    length = world.config.max_length
    tables = [None] * length
    q_next = None  # expected reward to go at the nodes of depth t + 1, (X, V^(t+1))
    for t in reversed(range(length)):
        q = np.full((x_count, v ** t, widths[t]), np.nan)
        ends = np.flatnonzero(mask[:, t] & ((t + 1 == length) | ~mask[:, min(t + 1, length - 1)]))
        q[:, node[ends, t], child[ends, t]] = scaled[:, ends]
        if t + 1 < length:
            q[:, :, :v] = q_next.reshape(x_count, v ** t, v)  # a content token leads to node s·a
        ref = ref_tables[t]
        flat_q, flat_ref = q.reshape(-1, widths[t]), ref.reshape(-1, widths[t])
        flat_q = np.where(np.isfinite(flat_ref), flat_q, 0.0)
        logp = fixed_point(flat_q, flat_ref, eta, kl_kind, "loss").reshape(ref.shape)
        tables[t] = logp
        q_next = (np.exp(logp) * np.where(np.isfinite(ref), q, 0.0)).sum(-1)
    return _compose(world, tables)


def _std_under(logprobs, rewards) -> np.ndarray:
    p = np.exp(logprobs)
    mean = (p * rewards).sum(-1, keepdims=True)
    return np.sqrt(np.maximum((p * (rewards - mean) ** 2).sum(-1), 0.0))


def method_target(world: SequenceWorld, config) -> tuple[str, np.ndarray | None]:
    """(name, log-probs (X, N)) of the exact fixed point a PG config converges to, or (name, None)
    where there is no closed form here. Exact-moment approximation of group statistics (as
    ``rlbandit.policy_gradient``):

    - the reward the trainer sees is r* − missing_eos_penalty on unfinished responses;
    - KL in the reward: Gibbs for every advantage (LOO, GAE, group mean, std-normalised: a
      per-prompt positive rescaling of the exact gradient keeps its zeros);
    - KL in the loss: :func:`token_level_fixed_point` with η scaled per prompt by the advantage's
      scale relative to the exact R − E_π R: G/(G−1) for a group mean that includes the sample
      itself (E[(R_i − R̄)∇log π_i] = (G−1)/G E[(R_i − μ)∇log π_i]), times σ_x(π) for GRPO's std
      division, solved self-consistently (σ ← std of r under the fixed point at η σ, from σ_{π0});
      with ``bias_correction_kl`` (the KL term weighted by ρ = π/π_old, trl's GRPO default) k1 and k3
      act as k2 (next-token Gibbs, "token_gibbs");
    - no closed form: loss_type "grpo" (a 1/|y| weight per response), GAE with the KL in the loss
      (its whitening divides by a batch std of advantages) and the adaptive KL controller.
    """
    rewards = world.problem.rewards - config.missing_eos_penalty * (~world.finished)[None, :]
    if config.target_kl is not None:
        return "adaptive_eta", None
    if config.loss_type == "grpo":
        return "length_weighted", None
    if config.kl_mode == "reward":
        return "gibbs", token_level_fixed_point(world, rewards, config.eta, "k1", "reward")
    if config.advantage == "gae":
        return "whitened", None  # the batch std of GAE advantages rescales η, and it has no closed form
    kind = config.kl_kind
    if getattr(config, "bias_correction_kl", False):
        # E_{a∼π}[∇(ρ k(a))] at ρ = 1 is ∇ Σ_a π(a) k(a): = ∇ KL(π(·|s)‖π0(·|s)) for k1 and k3 — the
        # k2-in-the-loss rule (next-token Gibbs) — and no KL at all for k2
        if kind == "k2":
            return "ratio_weighted_k2", None
        kind = "k2"
    name = {"k1": "greedy", "k2": "token_gibbs", "k3": "token_forward_kl"}[kind]
    group = config.samples_per_prompt
    scale = np.ones(world.config.n_contexts)
    if config.advantage in ("grpo", "dr_grpo") and group > 1:
        scale = scale * group / (group - 1)
    if config.advantage != "grpo":
        return name, token_level_fixed_point(world, rewards, config.eta, kind, "loss", scale)
    sigma = _std_under(world.problem.ref_logprobs, rewards)
    for _ in range(2000):
        logp = token_level_fixed_point(world, rewards, config.eta, kind, "loss", scale * np.maximum(sigma, 1e-12))
        new = _std_under(logp, rewards)
        if np.max(np.abs(new - sigma)) < 1e-12:
            break
        sigma = new
    return f"{name}_std_normalised", logp
