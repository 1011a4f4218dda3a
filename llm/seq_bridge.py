"""The sequence-level bridge: a world where every response an LM can sample is enumerable.

Responses are 1 … L tokens from a vocabulary of V words (EOS after the first, none at the cap:
N = Σ_{l=1}^{L} V^l per prompt), and the LM's probability of a response is the product of its
next-token probabilities, EOS included (equation (1) of :mod:`llm.seq_world`), so π over the N
responses is a bandit policy of shape (X, N) and the sequence-level Gibbs policy
π*(y|x) ∝ π0(y|x) exp(r(x,y)/η) and KL(π̂‖π*) are exact (DESIGN §6, "Sequence-level bridge").
Unlike the single-token bridge (:mod:`llm.bridge`) this checks what only sequences have: credit
assignment across tokens, the per-token KL summed over a response (E_π Σ_t k1_t = KL(π‖π0)) and
EOS handling (an unfinished response is scored without EOS; a finished one with it).

This module runs the LM trainers in that world and measures them exactly (:func:`run_method`): DPO
on the exact preference population, the policy-gradient trainers, the sampled sequence KL. The
world (:mod:`llm.seq_world`: the masked Llama, the enumeration, :func:`make_sequence_world`) and the
trainers' exact fixed points (:mod:`llm.seq_fixed_point`) are re-exported here.
"""

from __future__ import annotations

import time

import numpy as np

from llm import seq_world
from llm.bridge import bt_pair_population, train_full_batch
from llm.seq_fixed_point import method_target, token_level_fixed_point
from llm.seq_world import MAX_RESPONSES, SequenceBridgeConfig, SequenceWorld, context_mean, make_sequence_world
from rlbandit._checks import check_eta, check_int

__all__ = [
    "MAX_RESPONSES",
    "SEQUENCE_METHODS",
    "SequenceBridgeConfig",
    "SequenceWorld",
    "dpo_exact_sequences",
    "exact_sequence_preference_pairs",
    "make_sequence_world",
    "method_target",
    "run_method",
    "sampled_sequence_kl",
    "token_level_fixed_point",
]


def __getattr__(name: str):
    """The masked Llama classes under their old path (built on first use; :mod:`llm.seq_world`)."""
    if name in seq_world.MODEL_CLASSES:
        return getattr(seq_world, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------------------------------
# Exact preferences and DPO


def exact_sequence_preference_pairs(world: SequenceWorld):
    """Every ordered pair (x, y, y′), y ≠ y′, weighted by d0(x) π0(y|x) π0(y′|x) σ(r*(x,y) − r*(x,y′)).

    The population of BT preferences on pairs drawn from π0: both orders of a pair carry
    d0 π0(y)π0(y′) in total. Returns index arrays (x, chosen, rejected) and weights, each (P,).
    """
    return bt_pair_population(world.problem, ref_weighted=True)


def dpo_exact_sequences(world: SequenceWorld, beta: float, *, policy=None, steps: int = 600, lr: float = 5e-3,
                        loss_type: str = "sigmoid") -> list[float]:
    """Full-batch DPO on the exact preference population of :func:`exact_sequence_preference_pairs`.

    The loss Σ_p w_p ℓ(β(ρ_chosen − ρ_rejected)) / Σ_p w_p (ρ = log π/π0,
    ``rlbandit.losses.preference_loss``, as :func:`llm.trainers.dpo_loss`) needs log π only for the
    X·N enumerated responses: one forward pass per step, then gathered into all P = X·N(N−1) pairs.
    Its minimiser over a class that can represent every π(·|x) is O(r*, β, π0). Trains ``policy``
    (default ``world.policy``) in place; returns the loss per step.
    """
    import torch

    from rlbandit.losses import preference_loss

    lm = world.policy if policy is None else policy
    check_eta(beta)
    x, a, b, weights = exact_sequence_preference_pairs(world)
    ref = torch.from_numpy(np.array(world.problem.ref_logprobs))
    w = torch.as_tensor(weights / weights.sum())
    xt, at, bt = (torch.as_tensor(i) for i in (x, a, b))
    lengths = torch.as_tensor(world.lengths, dtype=torch.float64)
    model = lm.model

    def loss():
        logp = world.torch_logprobs(model).double().cpu()
        per = preference_loss(logp[xt, at], logp[xt, bt], ref[xt, at], ref[xt, bt], beta, loss_type,
                              chosen_lengths=lengths[at], rejected_lengths=lengths[bt])
        return (w * per).sum()

    return train_full_batch(model, loss, steps=steps, lr=lr)


# ----------------------------------------------------------------------------------------------
# Sampled KL and the method runner


def sampled_sequence_kl(world: SequenceWorld, lm=None, *, samples_per_prompt: int = 1000, seed: int = 0) -> dict:
    """Σ_t per-token k1 over responses y ∼ π (prompts uniform, as d0), against the exact KL(π‖π0).

    E_π Σ_t [log π(y_t|s_t) − log π0(y_t|s_t)] = KL(π‖π0) over whole responses, so the sample mean
    is unbiased. Also the per-token k3 summed (E_π Σ_t k3_t = Σ_t E KL(π(·|s_t)‖π0(·|s_t)), the
    chain rule: unbiased too). Keys: k1, k1_se, k3, k3_se, exact, n.
    """
    import torch

    from llm.generation import SamplingConfig, generate, sequence_logprobs
    from rlbandit import kl
    from rlbandit.losses import kl_estimate

    lm = world.policy if lm is None else lm
    check_int(samples_per_prompt, "samples_per_prompt", minimum=2)
    prompts = [p for p in world.prompts for _ in range(samples_per_prompt)]
    samples = generate(lm, prompts, SamplingConfig(max_new_tokens=world.config.max_length),
                       torch.Generator().manual_seed(int(seed)))
    with torch.no_grad():
        _, tok = sequence_logprobs(lm.model, samples.batch, per_token=True)
        _, ref_tok = sequence_logprobs(world.ref.model, samples.batch, per_token=True)
    mask = samples.batch.response_mask.bool()
    out = {"n": len(prompts)}
    for kind in ("k1", "k3"):
        per = torch.where(mask, kl_estimate(tok.double(), ref_tok.double(), kind), 0.0).sum(-1).cpu().numpy()
        out[kind], out[f"{kind}_se"] = float(per.mean()), float(per.std(ddof=1) / np.sqrt(per.size))
    d0 = np.full(world.config.n_contexts, 1.0 / world.config.n_contexts)  # the prompts above are uniform
    out["exact"] = context_mean(d0, kl(world.sequence_logprobs(lm), world.problem.ref_logprobs))
    return out


#: method → defaults of :func:`run_method` (PG methods: PGConfig fields; dpo_exact: steps, lr).
SEQUENCE_METHODS: dict[str, dict] = {
    "dpo_exact": {"steps": 600, "lr": 5e-3},
    "ppo": {"algorithm": "ppo", "advantage": "loo", "kl_mode": "reward"},
    "ppo_gae": {"algorithm": "ppo", "advantage": "gae", "kl_mode": "reward"},
    "rloo": {"algorithm": "rloo", "advantage": "loo", "kl_mode": "reward"},
    # trl's GRPO (std-normalised group advantages, k3 per token in the loss), the loss summed over tokens
    "grpo": {"algorithm": "ppo", "advantage": "grpo", "kl_mode": "loss", "kl_kind": "k3"},
    "dr_grpo": {"algorithm": "ppo", "advantage": "dr_grpo", "kl_mode": "loss", "kl_kind": "k3"},
}

#: PG defaults of run_method, tuned on the default world at η = 0.5: PPO reaches KL(π̂‖π*) ≈ 0.6–1.8 % of
#: KL(π0‖π*) over 3 worlds × 3 seeds; lr 1e-2 is noisier (≈ 16 %), 3e-3 × 150 steps ≈ 2–3 %.
_PG_DEFAULTS = {"steps": 300, "prompts_per_step": 16, "samples_per_prompt": 8, "epochs": 2, "lr": 3e-3,
                "max_grad_norm": 0.0, "missing_eos_penalty": 0.0}


def run_method(world: SequenceWorld, method: str, eta: float, *, policy=None, seed: int = 0,
               kl_samples_per_prompt: int = 1000, **overrides) -> dict:
    """Train a fresh copy of π0 (or ``policy``, in place) with ``method`` at KL coefficient η and
    measure it exactly against π* = O(r*, η, π0) and against the method's own fixed point.

    Args:
        method: a key of :data:`SEQUENCE_METHODS` ("grpo"/"dr_grpo" need those keys in
            ``llm.trainers.ADVANTAGES``).
        overrides: ``steps``/``lr``/``loss_type`` for dpo_exact (full batch, deterministic: ``seed``
            only seeds the KL samples); any ``PGConfig`` field for the PG methods (defaults
            :data:`_PG_DEFAULTS`; ``sampling`` is always max_new_tokens = L).

    Returns a flat dict: method, eta, seed, steps, seconds (training wall time), kl_ref_to_optimal
    (KL(π0‖π*)), kl_to_optimal (KL(π̂‖π*)), kl_ratio (their ratio), target (the method's fixed
    point: "gibbs", "token_forward_kl", …, or one with no closed form), kl_to_target (KL(π̂‖target),
    NaN without one), kl_target_to_optimal (KL(target‖π*)), kl_to_ref (exact KL(π̂‖π0)),
    sampled_kl_k1 / sampled_kl_k1_se (Σ_t per-token k1 over samples of π̂, mean ± SE) and
    sampled_kl_k3 / _se, suboptimality (J*(π*) − J*(π̂)), gold_reward (E r* under π̂).
    """
    from rlbandit import kl

    if method not in SEQUENCE_METHODS:
        raise ValueError(f"method: expected one of {sorted(SEQUENCE_METHODS)}, got {method!r}")
    eta = check_eta(eta)
    lm = world.policy.copy() if policy is None else policy
    lm.model.requires_grad_(True)
    problem = world.problem
    star = problem.optimal_policy(eta)
    start = time.perf_counter()
    if method == "dpo_exact":
        settings = {**SEQUENCE_METHODS[method], **overrides}
        dpo_exact_sequences(world, eta, policy=lm, **settings)
        steps = settings["steps"]
        # the BT-logistic loss is BT maximum likelihood, whose minimiser is Gibbs; IPO & co. have other ones
        loss_type = settings.get("loss_type", "sigmoid")
        target, target_logp = ("gibbs", star) if loss_type == "sigmoid" else (f"dpo_{loss_type}", None)
    else:
        from llm.generation import SamplingConfig
        from llm.trainers import ADVANTAGES, PGConfig, policy_gradient

        spec = dict(SEQUENCE_METHODS[method])
        if spec["advantage"] not in ADVANTAGES:
            raise ValueError(f"method: {method!r} needs the {spec['advantage']!r} advantage, which this "
                             f"llm.trainers does not offer (has {sorted(ADVANTAGES)})")
        fields = {**_PG_DEFAULTS, **spec, **overrides, "eta": eta, "seed": seed,
                  "sampling": SamplingConfig(max_new_tokens=world.config.max_length)}
        config = PGConfig(**fields)
        policy_gradient(lm, world.ref, world.prompts, world.reward_fn, config, progress=False)
        target, target_logp = method_target(world, config)
        steps = config.steps
    seconds = time.perf_counter() - start
    logp = world.sequence_logprobs(lm)
    d0 = problem.context_probs
    ref_to_star = context_mean(d0, kl(problem.ref_logprobs, star))
    to_star = context_mean(d0, kl(logp, star))
    sampled = sampled_sequence_kl(world, lm, samples_per_prompt=kl_samples_per_prompt, seed=seed + 1)
    return {
        "method": method, "eta": eta, "seed": seed, "steps": steps, "seconds": seconds,
        "kl_ref_to_optimal": ref_to_star, "kl_to_optimal": to_star, "kl_ratio": to_star / ref_to_star,
        "target": target,
        "kl_to_target": float("nan") if target_logp is None else context_mean(d0, kl(logp, target_logp)),
        "kl_target_to_optimal": float("nan") if target_logp is None else context_mean(d0, kl(target_logp, star)),
        "kl_to_ref": float(problem.kl_to_ref(logp)),
        "sampled_kl_k1": sampled["k1"], "sampled_kl_k1_se": sampled["k1_se"],
        "sampled_kl_k3": sampled["k3"], "sampled_kl_k3_se": sampled["k3_se"],
        "suboptimality": float(problem.suboptimality(logp, eta)), "gold_reward": float(problem.gold_reward(logp)),
    }
