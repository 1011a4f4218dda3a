"""The sequence-level bridge: responses of 1 … L tokens are enumerable, so the LM's π(y|x) is a
bandit policy over whole responses and the trainers' sequence-level conventions (credit assignment
across tokens, per-token KL summed over a response, EOS handling) can be checked against the exact
sequence Gibbs policy π* ∝ π0 exp(r*/η)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from llm.generation import SamplingConfig, generate, packed_sequence_logprobs
from llm.seq_bridge import (
    SequenceBridgeConfig,
    dpo_exact_sequences,
    exact_sequence_preference_pairs,
    make_sequence_world,
    method_target,
    run_method,
    sampled_sequence_kl,
    token_level_fixed_point,
)
from rlbandit import gibbs, kl

torch.set_num_threads(1)

ETA = 0.5


@pytest.fixture(scope="module")
def world():
    return make_sequence_world(SequenceBridgeConfig(seed=0))


@pytest.fixture(scope="module")
def dpo_policy(world):
    """π̂ = DPO on the exact preference population at β = η (trained once, shared)."""
    lm = world.policy.copy()
    dpo_exact_sequences(world, ETA, policy=lm)
    return lm


def _kl_to_gibbs(world, lm, eta):
    star = world.problem.optimal_policy(eta)
    d0 = world.problem.context_probs
    return float(d0 @ kl(world.sequence_logprobs(lm), star)), float(d0 @ kl(world.problem.ref_logprobs, star))


def test_enumeration_sums_to_one_and_matches_sampling_frequencies(world):
    config = world.config
    assert world.n_responses == 3 + 9 + 27 == config.n_responses
    logp = world.sequence_logprobs()
    assert logp.shape == (config.n_contexts, world.n_responses)
    np.testing.assert_allclose(np.exp(logp).sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(logp, world.problem.ref_logprobs, atol=1e-12)  # π0 = the LM before training
    n = 4000
    prompts = [p for p in world.prompts for _ in range(n)]
    samples = generate(world.policy, prompts, SamplingConfig(max_new_tokens=config.max_length),
                       torch.Generator().manual_seed(0))
    index = world.responses_of(samples)  # raises on any response outside the enumeration (e.g. a first EOS)
    np.testing.assert_array_equal(samples.finished, world.finished[index])
    counts = np.zeros_like(logp)
    np.add.at(counts, (world.contexts_of(prompts), index), 1)
    # Pearson χ² per context with N − 1 = 38 degrees of freedom: mean 38, sd √76 ≈ 8.7; P(χ² > 90) ≈ 4e-6
    expected = n * np.exp(logp)
    chi2 = ((counts - expected) ** 2 / expected).sum(-1)
    assert (chi2 < 90).all(), chi2


def test_sequence_logprobs_equal_the_product_of_brute_force_next_token_probabilities(world):
    """log π(y|x) by the trainers' masked sum = Σ_t log softmax(LM(x, y_<t))[y_t], each prefix run
    on its own (no batch, no padding), in float64."""
    model = world.policy.model
    brute = np.zeros((world.config.n_contexts, world.n_responses))
    with torch.no_grad():
        for x, prompt in enumerate(world.prompt_ids()):
            for n, response in enumerate(world.responses):
                for t, token in enumerate(response):
                    ids = torch.tensor([prompt + list(response[:t])])
                    logits = model(input_ids=ids, use_cache=False).logits[0, -1].double()
                    brute[x, n] += torch.log_softmax(logits, -1)[token].item()
    np.testing.assert_allclose(world.sequence_logprobs(), brute, atol=2e-5)
    # the padding-free packed path of the DPO trainer sees the same masked head
    prompts = [p for p in world.prompt_ids() for _ in world.responses]
    responses = [list(r) for _ in world.prompts for r in world.responses]
    with torch.no_grad():
        packed = packed_sequence_logprobs(model, prompts, responses, world.vocab.pad).double().numpy()
    np.testing.assert_allclose(packed.reshape(brute.shape), brute, atol=2e-5)


def test_eos_is_barred_first_and_only_response_tokens_have_mass(world):
    model, vocab = world.policy.model, world.vocab
    with torch.no_grad():
        first = model(input_ids=torch.tensor(world.prompt_ids())).logits[:, -1]
        later = model(input_ids=torch.tensor([[vocab.context(0), 1]])).logits[:, -1]
    assert torch.isinf(first[:, vocab.eos]).all() and torch.isfinite(first[:, :vocab.eos]).all()
    assert torch.isfinite(later[:, :vocab.eos + 1]).all()  # content tokens and EOS
    for logits in (first, later):
        assert torch.isinf(logits[:, vocab.eos + 1:]).all()  # pad, unk and the prompt tokens


def test_an_unfinished_length_L_response_is_scored_without_eos(world):
    """c₁…c_L (the cap reached, no EOS) scores Σ_{t≤L} log π(c_t|·) — no EOS term — while the
    finished c₁…c_{L−1} EOS carries log π(EOS|c₁…c_{L−1}); together with the L-token extensions
    they split the mass of the prefix exactly."""
    tok = world.token_logprobs()  # (X, N, L)
    total = world.sequence_logprobs()
    length, eos = world.config.max_length, world.vocab.eos
    unfinished = np.flatnonzero(~world.finished)
    assert all(len(world.responses[n]) == length and eos not in world.responses[n] for n in unfinished)
    np.testing.assert_allclose(total[:, unfinished], tok[:, unfinished].sum(-1), atol=1e-6)
    p = np.exp(total)
    prefix = (0, 1)
    stop = world.response_index(prefix + (eos,))
    extensions = [world.response_index(prefix + (c,)) for c in range(world.config.n_tokens)]
    mass = sum(p[:, n] for n, r in enumerate(world.responses) if r[:2] == prefix)
    np.testing.assert_allclose(p[:, stop] + p[:, extensions].sum(-1), mass, rtol=1e-12)
    assert (tok[:, stop, length - 1] < 0).all()  # the EOS term is there
    # the sampler marks such responses unfinished, and the reward looks them up without EOS
    samples = generate(world.policy, world.prompts * 200, SamplingConfig(max_new_tokens=length),
                       torch.Generator().manual_seed(1))
    idx = world.responses_of(samples)
    assert (~samples.finished).any()
    x = world.contexts_of(samples.prompts)
    np.testing.assert_array_equal(world.reward_fn(samples.prompts, samples.responses, samples),
                                  world.problem.rewards[x, idx])
    assert set(idx[~samples.finished]) <= set(unfinished)


def test_summed_per_token_k1_is_an_unbiased_estimate_of_the_sequence_kl(world, dpo_policy):
    """E_{y∼π} Σ_t [log π(y_t|s_t) − log π0(y_t|s_t)] = KL(π‖π0) over whole responses (EOS terms
    included); per-token k3 summed is unbiased too (chain rule), but heavy-tailed (π0/π is large on
    rare tokens), so its sample SE understates the spread: over 10 seeds z(k1) ∈ [−1.4, 2.4], z(k3)
    down to −4.3."""
    out = sampled_sequence_kl(world, dpo_policy, samples_per_prompt=2000, seed=3)
    assert out["exact"] > 0.3
    assert abs(out["k1"] - out["exact"]) < 4 * out["k1_se"], out
    assert abs(out["k3"] - out["exact"]) < 6 * out["k3_se"], out


def test_dpo_on_exact_preferences_reaches_the_sequence_gibbs_policy(world, dpo_policy):
    """DPO's population minimiser satisfies β(ρ_y − ρ_y′) = r*(y) − r*(y′) on every pair π0 can draw,
    so π = O(r*, β, π0) over whole responses (600 full-batch steps: ≈ 6e-5 of the start)."""
    _, _, _, weights = exact_sequence_preference_pairs(world)
    np.testing.assert_allclose(weights.sum(), (1 - np.exp(2 * world.problem.ref_logprobs).sum(-1)).mean() / 2)
    after, start = _kl_to_gibbs(world, dpo_policy, ETA)
    assert start > 0.5
    assert after < 1e-3 * start


def test_ppo_with_summed_per_token_kl_reaches_the_sequence_gibbs_policy(world):
    """PPO with R = r − η Σ_t log π/π0 (the sequence k1, EOS included) on sampled responses reaches
    O(r*, η, π0) over whole responses. Worlds 0–2 × seeds 0–2: KL(π̂‖π*) = 0.6–1.8 % of KL(π0‖π*)."""
    result = run_method(world, "ppo", ETA, kl_samples_per_prompt=300)  # 300 steps, lr 3e-3
    assert result["target"] == "gibbs" and result["kl_target_to_optimal"] == 0.0
    assert result["kl_ref_to_optimal"] > 0.5
    assert result["kl_ratio"] < 0.05, result
    assert abs(result["sampled_kl_k1"] - result["kl_to_ref"]) < 4 * result["sampled_kl_k1_se"]


# ----------------------------------------------------------------------------------------------
# The exact fixed points of token-level KL options (no training: exact expected gradients)


def _node_conditionals(world, logp):
    """π(a | x, prefix) from sequence log-probs by summing the masses of responses through each prefix."""
    p = np.exp(logp)
    cond = {}
    for x in range(world.config.n_contexts):
        for n, response in enumerate(world.responses):
            for t in range(len(response)):
                key = (x, response[:t], response[t])
                if key in cond:
                    continue
                through = sum(p[x, m] for m, r in enumerate(world.responses) if r[:t + 1] == response[:t + 1])
                at = sum(p[x, m] for m, r in enumerate(world.responses) if r[:t] == response[:t])
                cond[key] = np.log(through / at)
    return cond


def _expected_gradient(world, logp, rewards, eta, kl_kind, kl_mode, ratio_weighted=False):
    """∇ of the trainers' expected loss E_{y∼sg π}[−A(y) log π(y) + η Σ_t k_t] (KL in the loss; each
    k_t times ρ_t = π/sg π with ``ratio_weighted``) or with A from R = r − η (log π − log π0) (KL in
    the reward), A = R − E_π R, for a tabular policy (one logit per prefix and next token) at π;
    the largest |∂/∂logit|."""
    from rlbandit.losses import kl_estimate

    cond, ref = _node_conditionals(world, logp), _node_conditionals(world, world.problem.ref_logprobs)
    logits = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in cond.items()}
    nodes = {}
    for (x, prefix, a), z in logits.items():
        nodes.setdefault((x, prefix), []).append((a, z))
    norm = {k: torch.logsumexp(torch.stack([z for _, z in v]), 0) for k, v in nodes.items()}
    loss = 0.0
    for x in range(world.config.n_contexts):
        tok = [torch.stack([logits[(x, r[:t], r[t])] - norm[(x, r[:t])] for t in range(len(r))])
               for r in world.responses]
        ref_tok = [torch.tensor([ref[(x, r[:t], r[t])] for t in range(len(r))]) for r in world.responses]
        seq = torch.stack([t.sum() for t in tok])
        p = torch.exp(seq).detach()
        returns = torch.tensor(rewards[x])
        if kl_mode == "reward":
            returns = returns - eta * (seq.detach() - torch.stack([t.sum() for t in ref_tok]))
        adv = returns - (p * returns).sum()
        loss = loss - (p * adv * seq).sum()
        if kl_mode == "loss":
            weight = [torch.exp(t - t.detach()) if ratio_weighted else 1.0 for t in tok]
            loss = loss + eta * sum(p[n] * (weight[n] * kl_estimate(tok[n], ref_tok[n], kl_kind)).sum()
                                    for n in range(world.n_responses))
    loss.backward()
    return max(abs(z.grad.item()) for z in logits.values())


@pytest.mark.parametrize("kl_kind, kl_mode", [("k1", "reward"), ("k3", "loss"), ("k2", "loss")])
def test_token_level_fixed_points_are_zeros_of_the_exact_expected_gradient(world, kl_kind, kl_mode):
    """k1 summed in the reward: the sequence Gibbs policy. k3 / k2 per token in the loss (states not
    differentiated): backward induction with the bandit rule per prefix on the expected reward to go
    — forward-KL / next-token Gibbs — which is not the sequence Gibbs policy."""
    rewards = world.problem.rewards
    target = token_level_fixed_point(world, rewards, ETA, kl_kind, kl_mode)
    # float32 LM log-probs leave ~1e-7 in the π0 conditionals; off the fixed point the gradient is ≳ 1e-3
    assert _expected_gradient(world, target, rewards, ETA, kl_kind, kl_mode) < 1e-6
    sequence_gibbs = gibbs(rewards, world.problem.ref_logprobs, ETA)
    gap = float(world.problem.context_probs @ kl(target, sequence_gibbs))
    if kl_mode == "reward":
        assert gap < 1e-20
    else:
        assert gap > 1e-3
        assert _expected_gradient(world, sequence_gibbs, rewards, ETA, kl_kind, kl_mode) > 1e-3
    # a per-prompt advantage scale c_x acts as the temperature η c_x
    scale = np.array([0.5, 1.0, 2.0])
    scaled = token_level_fixed_point(world, rewards, ETA, kl_kind, kl_mode, temperature_scale=scale)
    for x, c in enumerate(scale):
        np.testing.assert_allclose(scaled[x], token_level_fixed_point(world, rewards, ETA * c, kl_kind, kl_mode)[x],
                                   atol=1e-10)


@pytest.mark.parametrize("advantage, bias_correction_kl", [("dr_grpo", False), ("grpo", False), ("dr_grpo", True)])
def test_grpo_targets_are_zeros_of_the_exact_expected_gradient(world, advantage, bias_correction_kl):
    """The group mean includes the sample itself, so E[(R_i − R̄)∇log π_i] = (G−1)/G E[(R_i − μ)∇log π_i]:
    with the KL in the loss η acts as η G/(G−1) (and as η σ_x G/(G−1) with GRPO's std division, σ_x
    solved self-consistently); trl's ratio-weighted KL turns k3 into the next-token reverse KL."""
    from llm.trainers import PGConfig

    group = 8
    config = PGConfig(algorithm="ppo", advantage=advantage, kl_mode="loss", kl_kind="k3", eta=ETA,
                      samples_per_prompt=group, missing_eos_penalty=0.0, bias_correction_kl=bias_correction_kl)
    name, target = method_target(world, config)
    rule = "token_gibbs" if bias_correction_kl else "token_forward_kl"
    assert name == (rule + "_std_normalised" if advantage == "grpo" else rule)
    rewards = world.problem.rewards
    p = np.exp(target)
    sigma = np.sqrt((p * (rewards - (p * rewards).sum(-1, keepdims=True)) ** 2).sum(-1, keepdims=True))
    scale = (group - 1) / group / (sigma if advantage == "grpo" else 1.0)
    assert _expected_gradient(world, target, rewards * scale, ETA, "k3", "loss", bias_correction_kl) < 1e-6
    assert _expected_gradient(world, target, rewards, ETA, "k3", "loss", bias_correction_kl) > 1e-3


def test_config_is_validated():
    for bad, name in (({"n_tokens": 0}, "n_tokens"), ({"hidden_size": 30, "n_heads": 4}, "n_heads"),
                      ({"n_tokens": 20, "max_length": 3}, "max_length"), ({"ref_fit_steps": -1}, "ref_fit_steps"),
                      ({"eos_bias": float("nan")}, "eos_bias")):
        with pytest.raises(ValueError, match=name):
            SequenceBridgeConfig(**bad)
    with pytest.raises(ValueError, match="method"):
        run_method(None, "sft", ETA)
