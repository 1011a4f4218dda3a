"""Online iterative DPO on a language model with the bandit world's enhancers (DESIGN §3 on text).

For t = 1..T (Xiong et al., ICML 2024, Algorithm 2, with DPO as the oracle):

1. the main agent π¹_t is the current policy (DPO on all of D so far, warm-started);
   θ̂_t = BT MLE on φ of D (``rlbandit.reward.fit_bt``) and Σ_t = λI + (1/m)Σ zzᵀ;
2. per prompt, ``n_candidates`` responses are drawn from π¹_t and the enhancer picks the pair:

   - ``rejection``: best vs worst of the candidates under r̂_t = ⟨φ, θ̂_t⟩;
   - ``ucb``: a¹ = a π¹ sample, a² = argmax over the other candidates of
     r̂_t + β‖φ − φ̄(x, π¹_t)‖_{Σ_t⁻¹} (``rlbandit.geometry.ucb_bonus``; φ̄ = the candidates' mean,
     the sample estimate of φ(x, π¹_t));
   - ``optimistic``: a¹ = a π¹ sample, a² = argmax of the uncertainty ‖φ − φ̄‖_{Σ_t⁻¹} alone
     (Option I restricted to π¹'s samples, which keeps KL(π²‖π¹) ≤ log n);
   - ``reference``: a² ∼ π0 (Option II, hybrid);  ``self``: a² another π¹ sample;

3. BT labels from the gold reward (optional annotator noise) are added to D, and DPO runs on D.

The DPO reference is π0 by default — the theory's objective is J(π) = E r − η KL(π‖π0), and the
Gibbs oracle the loop approximates is O(r̂, η, π0). ``reference="previous"`` (as some public
iterative-DPO pipelines do) makes each round regularise toward the last iterate instead, so after
T rounds the effective regulariser is much weaker than η·KL(π‖π0) and the policy drifts further
from π0 (more reward, more KL, more over-optimisation risk).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from llm.generation import SamplingConfig, generate, sequence_logprobs
from llm.trainers import DPOConfig, dpo, prepare_dpo_data, torch_generator
from rlbandit._checks import check_positive_ints
from rlbandit.enhancers import Enhancement, EnhancerInput, EnhancerOptions

__all__ = ["ENHANCERS", "REFERENCES", "OnlineDPOConfig", "evaluate_policy", "online_dpo"]

REFERENCES = ("initial", "previous")


def _candidate_state(r_hat: np.ndarray, uncertainty: np.ndarray, beta: float) -> EnhancerInput:
    """The enhancer's view of one round: X = the m prompts, K = the n candidates of π¹_t plus a
    last slot for a draw of π0 (one seed). π¹_t is uniform over its own samples; π0 puts its mass
    on its draw, so ``reference`` reads as a² ∼ π0 in the shared contract."""
    m, n = r_hat.shape
    main = np.full((1, m, n + 1), -np.log(n))
    main[..., n] = -np.inf
    ref = np.full((1, m, n + 1), -np.inf)
    ref[..., n] = 0.0
    pad = lambda a: np.concatenate([a, np.zeros((m, 1))], axis=1)[None]  # noqa: E731
    scores, u = pad(r_hat), pad(uncertainty)
    return EnhancerInput(main, scores, u, scores + beta * u, ref, np.full(m, 1.0 / m), 1.0, np.array([beta]))


def _pick(first: np.ndarray, second: np.ndarray, k: int) -> Enhancement:
    """A deterministic pair per prompt as an Enhancement: one-hot marginals and a sampler that
    returns the chosen candidate indices for the prompts it is given."""
    def one_hot(index):
        out = np.full((1, index.size, k), -np.inf)
        out[0, np.arange(index.size), index] = 0.0
        return out

    def sampler(contexts: np.ndarray, rng):
        return first[contexts], second[contexts]

    return Enhancement(one_hot(first), one_hot(second), sampler)


def _candidates(state: EnhancerInput) -> tuple[int, int]:
    return state.main_logprobs.shape[1], state.main_logprobs.shape[2] - 1  # m prompts, n candidates


def _pair_rejection(state: EnhancerInput, options: EnhancerOptions, rng) -> Enhancement:
    """Best vs worst of the candidates under r̂_t (the worst among the others: never the same one)."""
    m, n = _candidates(state)
    scores = state.scores[0, :, :n]
    best = scores.argmax(-1)
    rest = scores.copy()
    rest[np.arange(m), best] = np.inf
    return _pick(best, rest.argmin(-1), n + 1)


def _argmax_others(values: np.ndarray) -> np.ndarray:
    values = values.copy()
    values[:, 0] = -np.inf  # candidate 0 is a¹
    return values.argmax(-1)


def _pair_ucb(state: EnhancerInput, options: EnhancerOptions, rng) -> Enhancement:
    """a¹ = a π¹ sample, a² = argmax over the other candidates of r̂_t + β‖φ − φ̄‖_{Σ_t⁻¹}."""
    m, n = _candidates(state)
    return _pick(np.zeros(m, dtype=int), _argmax_others(state.upper_scores[0, :, :n]), n + 1)


def _pair_optimistic(state: EnhancerInput, options: EnhancerOptions, rng) -> Enhancement:
    """a¹ = a π¹ sample, a² = argmax of the uncertainty alone (Option I on π¹'s samples)."""
    m, n = _candidates(state)
    return _pick(np.zeros(m, dtype=int), _argmax_others(state.uncertainty[0, :, :n]), n + 1)


def _pair_self(state: EnhancerInput, options: EnhancerOptions, rng) -> Enhancement:
    """a¹, a² two samples of π¹."""
    m, n = _candidates(state)
    return _pick(np.zeros(m, dtype=int), np.ones(m, dtype=int), n + 1)


def _pair_reference(state: EnhancerInput, options: EnhancerOptions, rng) -> Enhancement:
    """a¹ a sample of π¹, a² the draw of π0 (the last slot)."""
    m, n = _candidates(state)
    return _pick(np.zeros(m, dtype=int), np.full(m, n), n + 1)


#: enhancer → the sample-based rule, in the contract of :mod:`rlbandit.enhancers`
#: ``(EnhancerInput, EnhancerOptions, rng) -> Enhancement`` over each prompt's candidates: the
#: bandit world's rules with the Gibbs step replaced by an argmax over π¹_t's own samples (no
#: text-level Gibbs policy can be formed), the names the bandit registry uses.
ENHANCERS = {"rejection": _pair_rejection, "ucb": _pair_ucb, "optimistic": _pair_optimistic,
             "reference": _pair_reference, "self": _pair_self}


@dataclass(frozen=True)
class OnlineDPOConfig:
    """Iterative DPO: T iterations of m comparisons, DPO on all data after each."""

    enhancer: str = "rejection"
    iterations: int = 3
    prompts_per_iteration: int = 32  # m
    n_candidates: int = 4  # responses drawn from π¹_t per prompt
    bonus: float = 1.0  # β of ucb
    reg: float = 1.0  # λ of the MLE and Σ_t
    reference: str = "initial"
    label_noise: float = 0.0
    offline: bool = False  # True: both responses from π0 (the offline baseline at matched sizes)
    dpo: DPOConfig = field(default_factory=lambda: DPOConfig(beta=0.1, steps=30, batch_size=16, lr=5e-4))
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    seed: int = 0

    def __post_init__(self):
        if self.enhancer not in ENHANCERS:
            raise ValueError(f"enhancer: unknown {self.enhancer!r}; expected one of {sorted(ENHANCERS)}")
        if self.reference not in REFERENCES:
            raise ValueError(f"reference: expected one of {REFERENCES}, got {self.reference!r}")
        check_positive_ints(self, ("iterations", "prompts_per_iteration"))
        if self.n_candidates < 2:
            raise ValueError(f"n_candidates: need >= 2 responses per prompt, got {self.n_candidates}")
        if not (self.bonus >= 0 and self.reg > 0):
            raise ValueError(f"bonus/reg: need bonus >= 0 and reg > 0, got {self.bonus}, {self.reg}")
        if not 0 <= self.label_noise < 0.5:
            raise ValueError(f"label_noise: must be in [0, 0.5), got {self.label_noise}")


def evaluate_policy(policy, ref, prompts, gold, sampling: SamplingConfig, seed: int, *, ref_rewards=None,
                    samples_per_prompt: int = 1, proxy=None) -> dict:
    """Gold reward, KL(π‖π0) (k1 and k3 from samples) and win rate against π0 on ``prompts``.

    KL is sequence-level and estimated the same way for every policy: from the policy's own
    samples, k1 = log π(y|x) − log π0(y|x) (unbiased), with its standard error (``kl_to_ref_se``).
    ``proxy`` (a reward function like ``gold``, e.g. a learned reward model) adds ``proxy_reward``.

    Win rate = mean σ(r*(x, y) − r*(x, y0)) with y ∼ π, y0 ∼ π0 (the gold BT probability that π's
    response is preferred), ``ref_rewards`` = gold rewards of π0's responses to the same prompts.
    """
    import torch
    from scipy.special import expit

    from llm.generation import kl_from_samples

    flat = [p for p in prompts for _ in range(samples_per_prompt)]
    samples = generate(policy, flat, sampling, torch_generator(seed, policy.device))
    with torch.no_grad():
        logp = sequence_logprobs(policy.model, samples.batch).double().cpu().numpy()
        ref_logp = sequence_logprobs(ref.model, samples.batch).double().cpu().numpy()
    rewards = np.asarray(gold(flat, samples.responses, samples), dtype=np.float64)
    kl_k1, kl_k1_se = kl_from_samples(logp, ref_logp, "k1")
    out = {"gold_reward": float(rewards.mean()), "gold_reward_se": float(rewards.std(ddof=1) / np.sqrt(len(rewards))),
           "kl_to_ref": kl_k1, "kl_to_ref_se": kl_k1_se, "kl_k3": kl_from_samples(logp, ref_logp, "k3")[0],
           "finished": float(samples.finished.mean()), "length": float(samples.lengths.mean())}
    if proxy is not None:
        out["proxy_reward"] = float(np.mean(np.asarray(proxy(flat, samples.responses, samples), dtype=np.float64)))
    if ref_rewards is not None:
        ref_rewards = np.repeat(np.asarray(ref_rewards, dtype=np.float64), samples_per_prompt)
        out["win_rate"] = float(expit(rewards - ref_rewards).mean())
    return out


def online_dpo(policy, ref, prompts, gold, config: OnlineDPOConfig, *, eval_prompts=None, ref_eval_rewards=None,
               eval_sampling: SamplingConfig | None = None, progress: bool = True) -> pd.DataFrame:
    """Run the loop of the module docstring; updates ``policy`` in place.

    Args:
        policy: the LM trained (start = π0's weights); ref: frozen π0.
        prompts: the prompt pool x ∼ d0 (uniform over the list).
        gold: a :class:`llm.features.LinearGold` (φ and r* on texts).
        eval_prompts / ref_eval_rewards: held-out prompts and π0's gold rewards on them; when given,
            each iteration's row carries gold_reward, kl_to_ref, win_rate of the policy after DPO.

    Returns:
        one row per iteration: iteration, n_comparisons, enhancer, reference, theta_error-free
        diagnostics (uncertainty of the chosen pairs, label agreement with r̂) and the evaluation.
    """
    from llm.features import bt_labels
    from rlbandit.geometry import cholesky, covariance, gap_norms
    from rlbandit.reward import fit_bt

    prompts = list(prompts)
    if not prompts:
        raise ValueError("prompts: need at least one prompt")
    rng = np.random.default_rng(config.seed)
    gen = torch_generator(config.seed, policy.device)
    m, n = config.prompts_per_iteration, config.n_candidates
    data_prompts, data_chosen, data_rejected = [], [], []
    diffs = np.zeros((0, 0))
    labels = np.zeros(0, dtype=np.int8)
    dpo_ref = ref
    rows = []
    for t in range(1, config.iterations + 1):
        batch_prompts = [prompts[i] for i in rng.integers(len(prompts), size=m)]
        flat = [p for p in batch_prompts for _ in range(n)]
        cand = generate(ref if config.offline else policy, flat, config.sampling, gen)
        responses = np.array(cand.responses, dtype=object).reshape(m, n)
        phi = gold.features(flat, cand.responses).reshape(m, n, -1)
        d = phi.shape[-1]
        if diffs.shape[0] == 0:
            theta_hat = np.zeros(d)
            diffs = np.zeros((0, d))
        else:
            theta_hat = fit_bt(diffs, labels, config.reg)
        factor = cholesky(covariance(diffs, config.reg, 1.0 / m))
        uncertainty = gap_norms(phi, phi.mean(1), factor=factor)
        state = _candidate_state(phi @ theta_hat, uncertainty, config.bonus)
        rule = _pair_self if config.offline else ENHANCERS[config.enhancer]
        first, second = (index[0] for index in rule(state, EnhancerOptions(), rng).sampler(np.arange(m)[None], rng))
        rows_idx = np.arange(m)
        y1, phi1 = responses[rows_idx, first], phi[rows_idx, first]
        y2, phi2 = responses[rows_idx, np.minimum(second, n - 1)], phi[rows_idx, np.minimum(second, n - 1)]
        from_ref = second == n  # the rule asked for π0's draw (the last slot)
        if from_ref.any():
            ref_samples = generate(ref, batch_prompts, config.sampling, gen)
            y_ref = np.array(ref_samples.responses, dtype=object)
            phi_ref = gold.features(batch_prompts, list(y_ref))
            y2, phi2 = np.where(from_ref, y_ref, y2), np.where(from_ref[:, None], phi_ref, phi2)
        r1, r2 = phi1 @ gold.theta, phi2 @ gold.theta
        y = bt_labels(r1, r2, rng, config.label_noise)
        diffs = np.concatenate([diffs, phi1 - phi2])
        labels = np.concatenate([labels, y])
        chosen = np.where(y == 1, y1, y2)
        rejected = np.where(y == 1, y2, y1)
        data_prompts += batch_prompts
        data_chosen += list(chosen)
        data_rejected += list(rejected)
        if config.reference == "previous" and t > 1:
            dpo_ref = policy.frozen()
        data = prepare_dpo_data(dpo_ref, data_prompts, data_chosen, data_rejected)
        history = dpo(policy, data, replace(config.dpo, seed=config.seed + t), progress=progress,
                      desc=f"dpo[{config.enhancer}] t={t}")
        row = {"iteration": t, "n_comparisons": len(labels),
               "enhancer": "offline" if config.offline else config.enhancer,
               "reference": config.reference, "dpo_loss": float(history["loss"].iloc[-5:].mean()),
               "pair_uncertainty": float(np.mean(np.linalg.norm(phi1 - phi2, axis=-1))),
               "pair_gold_gap": float(np.mean(np.abs(r1 - r2)))}
        if eval_prompts is not None:
            row.update(evaluate_policy(policy, ref, eval_prompts, gold, eval_sampling or config.sampling,
                                       config.seed + 1000, ref_rewards=ref_eval_rewards))
        rows.append(row)
        if progress:
            shown = {k: round(v, 3) for k, v in row.items() if isinstance(v, float)}
            print(f"[online_dpo:{row['enhancer']}] iteration {t}/{config.iterations}: {shown}", flush=True)
    return pd.DataFrame(rows)
