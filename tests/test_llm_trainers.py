"""A smoke run of each llm trainer on a tiny model, plus the NaN guard and config validation."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from llm.corpus import prompt_for, reviews, sentiment_score
from llm.features import ProgrammaticGold, bt_labels
from llm.generation import SamplingConfig, generate
from llm.online import ENHANCERS, OnlineDPOConfig, online_dpo
from llm.tiny import TinyLMConfig, default_model
from llm.trainers import (
    DPOConfig,
    DPOData,
    NonFiniteLossError,
    PGConfig,
    RMConfig,
    RSConfig,
    SFTConfig,
    best_of_n,
    dpo,
    gae_advantages,
    policy_gradient,
    prepare_dpo_data,
    rejection_sampling_finetune,
    sft,
    train_lm_reward_model,
)
from rlbandit.losses import LOSSES

torch.set_num_threads(1)
SHORT = SamplingConfig(max_new_tokens=12)


@pytest.fixture(scope="module")
def base():
    return default_model(TinyLMConfig.tiny(), cache=False, progress=False)


@pytest.fixture(scope="module")
def pairs():
    prompts, chosen, _ = reviews(16, np.random.default_rng(0))
    _, rejected, _ = reviews(16, np.random.default_rng(1))
    return prompts, chosen, rejected


class HashGold:
    """A cheap linear gold reward for smoke tests: φ = normalised character-trigram hashes (d = 16).

    The hash is crc32, not ``hash()``: Python salts string hashes per process (PYTHONHASHSEED), which
    made the features, and so every test using them, differ from one run to the next.
    θ* is scaled so reward differences (std ≈ 2.3) carry information; at unit scale they are ≈ 0.55
    and the labels are close to coin flips."""

    def __init__(self, d=16, scale=4.0):
        self.theta = scale * np.random.default_rng(0).standard_normal(d)

    def features(self, prompts, responses):
        out = np.zeros((len(responses), len(self.theta)))
        for i, text in enumerate(responses):
            for j in range(max(0, len(text) - 2)):
                out[i, zlib.crc32(text[j:j + 3].encode()) % len(self.theta)] += 1.0
        return out / np.maximum(1.0, np.linalg.norm(out, axis=-1, keepdims=True))

    def __call__(self, prompts, responses, samples=None):
        return self.features(prompts, responses) @ self.theta


def test_sft_lowers_the_loss(base):
    lm = base.copy()
    prompts, responses, _ = reviews(32, np.random.default_rng(2))
    losses = sft(lm, prompts, responses, SFTConfig(steps=25, batch_size=8, lr=3e-3), progress=False)
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


@pytest.mark.parametrize("loss_type", sorted(LOSSES))
def test_every_dpo_loss_type_trains(base, pairs, loss_type):
    lm, ref = base.copy(), base.frozen()
    smoothing = 1e-3 if loss_type == "exo_pair" else 0.0
    data = prepare_dpo_data(ref, *pairs)
    history = dpo(lm, data, DPOConfig(beta=0.1, loss_type=loss_type, label_smoothing=smoothing, steps=3,
                                      batch_size=8, lr=1e-3), progress=False)
    assert len(history) == 3 and np.all(np.isfinite(history["loss"]))


def test_dpo_raises_the_chosen_margin(base, pairs):
    lm, ref = base.copy(), base.frozen()
    history = dpo(lm, prepare_dpo_data(ref, *pairs), DPOConfig(beta=0.5, steps=15, batch_size=16, lr=3e-3),
                  progress=False)
    assert history["reward_margin"].iloc[-1] > 1.0 and history["accuracy"].iloc[-1] == 1.0


def test_nan_loss_stops_before_the_update_and_keeps_weights(base, pairs, tmp_path):
    lm, ref = base.copy(), base.frozen()
    good = prepare_dpo_data(ref, *pairs)
    # π0 gives the rejected responses no mass: ρ_l = +∞, the DPO loss is +∞ (valid inputs, non-finite loss)
    bad = DPOData(good.prompt_ids, good.chosen_ids, good.rejected_ids, good.ref_chosen,
                  np.full(len(good), -np.inf), good.weights)
    before = [p.detach().clone() for p in lm.model.parameters()]
    with pytest.raises(NonFiniteLossError, match="before the update"):
        dpo(lm, bad, DPOConfig(beta=0.1, steps=2, batch_size=4), progress=False, checkpoint_dir=tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(before, lm.model.parameters()))


@pytest.mark.parametrize("algorithm,kl_mode", [("ppo", "reward"), ("rloo", "loss")])
def test_policy_gradient_smoke(base, algorithm, kl_mode):
    lm, ref = base.copy(), base.frozen()
    gold = ProgrammaticGold(lambda p, r: sentiment_score(r))
    config = PGConfig(algorithm=algorithm, kl_mode=kl_mode, eta=0.1, steps=2, prompts_per_step=4, samples_per_prompt=2,
                      sampling=SHORT)
    history = policy_gradient(lm, ref, [prompt_for("lamp"), prompt_for("tent")], gold, config, progress=False)
    assert list(history["step"]) == [0, 1] and np.all(np.isfinite(history[["reward", "kl", "loss"]]))
    # the first rollout is drawn from π0 itself, so its KL is exactly 0
    assert history["kl"].iloc[0] == pytest.approx(0.0, abs=1e-4)


def test_adaptive_kl_controller_moves_eta(base):
    lm, ref = base.copy(), base.frozen()
    gold = ProgrammaticGold(lambda p, r: sentiment_score(r))
    config = PGConfig(algorithm="rloo", eta=0.1, steps=3, prompts_per_step=2, samples_per_prompt=2, sampling=SHORT,
                      target_kl=1e-6, lr=1e-2)
    history = policy_gradient(lm, ref, [prompt_for("lamp")], gold, config, progress=False)
    assert history["eta"].iloc[0] == 0.1
    # the first rollout comes from π0 (KL = 0 < target): η shrinks by the clipped 0.2 / horizon
    assert history["eta"].iloc[1] == pytest.approx(0.1 * (1 - 0.2 / 20))
    with pytest.raises(ValueError, match="target_kl"):
        PGConfig(target_kl=-1.0)


def _brute_force_gae(rewards, values, lengths, gamma, lam):
    """A_t = Σ_l (γλ)^l δ_{t+l}, δ_t = r_t + γ V_{t+1} − V_t (V = 0 past the end), one sequence at a time."""
    adv, ret = np.zeros_like(rewards), np.zeros_like(rewards)
    for i, n in enumerate(lengths):
        v = np.append(values[i, :n], 0.0)
        delta = [rewards[i, t] + gamma * v[t + 1] - v[t] for t in range(n)]
        for t in range(n):
            adv[i, t] = sum((gamma * lam) ** l * delta[t + l] for l in range(n - t))
            ret[i, t] = adv[i, t] + v[t]
    return adv, ret


@pytest.mark.parametrize("gamma,lam", [(1.0, 0.95), (0.9, 0.8), (1.0, 1.0), (0.7, 0.0)])
def test_gae_matches_the_brute_force_sum(gamma, lam):
    rng = np.random.default_rng(0)
    lengths = [6, 3, 1, 0, 5]
    rewards, values = rng.standard_normal((5, 6)), rng.standard_normal((5, 6))  # padding holds junk on purpose
    mask = (np.arange(6)[None] < np.array(lengths)[:, None]).astype(float)
    adv, ret = gae_advantages(torch.tensor(rewards), torch.tensor(values), torch.tensor(mask), gamma, lam)
    want_adv, want_ret = _brute_force_gae(rewards, values, lengths, gamma, lam)
    np.testing.assert_allclose(adv.numpy(), want_adv, atol=1e-12)
    np.testing.assert_allclose(ret.numpy(), want_ret, atol=1e-12)
    # a one-token response (the bridge world): A = r − V(x), the return is r
    assert adv[2, 0].item() == pytest.approx(rewards[2, 0] - values[2, 0])
    assert ret[2, 0].item() == pytest.approx(rewards[2, 0])


def test_gae_rejects_bad_inputs():
    r, v, m = torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2, 3)
    with pytest.raises(ValueError, match="values"):
        gae_advantages(r, torch.zeros(2, 4), m)
    with pytest.raises(ValueError, match="values"):
        gae_advantages(r[0], v[0], m[0])
    with pytest.raises(ValueError, match="gamma"):
        gae_advantages(r, v, m, gamma=1.5)
    with pytest.raises(ValueError, match="lam"):
        gae_advantages(r, v, m, lam=-0.1)
    with pytest.raises(ValueError, match="mask"):
        gae_advantages(r, v, torch.tensor([[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]]))  # left padding
    with pytest.raises(ValueError, match="mask"):
        gae_advantages(r, v, 2 * m)


@pytest.mark.parametrize("kl_mode", ["reward", "loss"])
def test_gae_per_token_rewards_follow_trl(kl_mode):
    """With V = 0 and γ = λ = 1 the return R_t is the reward still to come: score − η Σ_{s≥t} log π_old/π0
    (kl_mode="reward"; the KL sits on every token, the score on the last) or the score alone."""
    from llm.trainers import ADVANTAGES

    rng = np.random.default_rng(1)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])
    old_tok, ref_tok = (torch.tensor(rng.standard_normal((3, 4)), dtype=torch.float32) * mask for _ in range(2))
    scores = np.array([1.0, -2.0, 0.5])
    config = PGConfig(advantage="gae", kl_mode=kl_mode, gamma=1.0, gae_lambda=1.0)
    adv, ret = ADVANTAGES["gae"](scores, old_tok, ref_tok, mask, torch.zeros(3, 4), 0.3, config)
    kl = (old_tok - ref_tok).double().numpy() if kl_mode == "reward" else np.zeros((3, 4))
    to_go = scores[:, None] - 0.3 * np.flip(np.cumsum(np.flip(kl, -1), -1), -1)
    np.testing.assert_allclose(ret.double().numpy(), to_go * mask.numpy(), atol=1e-5)
    valid = adv[mask.bool()]  # whitened over the batch's response tokens
    assert valid.mean().item() == pytest.approx(0.0, abs=1e-6) and valid.std().item() == pytest.approx(1.0, abs=1e-4)
    assert torch.all(adv[~mask.bool()] == 0)


@pytest.mark.parametrize("kl_mode", ["reward", "loss"])
def test_policy_gradient_with_gae_critic_smoke(base, kl_mode):
    lm, ref = base.copy(), base.frozen()
    gold = ProgrammaticGold(lambda p, r: sentiment_score(r))
    config = PGConfig(advantage="gae", kl_mode=kl_mode, eta=0.1, steps=2, prompts_per_step=4, samples_per_prompt=2,
                      sampling=SHORT)
    history = policy_gradient(lm, ref, [prompt_for("lamp"), prompt_for("tent")], gold, config, progress=False)
    assert list(history["step"]) == [0, 1]
    assert np.all(np.isfinite(history[["reward", "kl", "loss", "value_loss"]])) and np.all(history["value_loss"] >= 0)
    assert history["kl"].iloc[0] == pytest.approx(0.0, abs=1e-4)
    assert "value_loss" not in policy_gradient(lm, ref, [prompt_for("lamp")], gold,
                                               PGConfig(steps=1, prompts_per_step=2, samples_per_prompt=2,
                                                        sampling=SHORT), progress=False)


def test_pg_config_validates_the_critic_fields():
    assert PGConfig().advantage == "loo"  # the default keeps the critic-free RLOO baseline
    for kwargs, name in (({"advantage": "nope"}, "advantage"), ({"gamma": 1.5}, "gamma"),
                         ({"gae_lambda": -0.1}, "gae_lambda"), ({"gae_lambda": float("nan")}, "gae_lambda"),
                         ({"value_coef": -1.0}, "value_coef"), ({"value_clip": 0.0}, "value_clip")):
        with pytest.raises(ValueError, match=name):
            PGConfig(**kwargs)


def test_best_of_n_picks_the_maximum(base):
    gold = ProgrammaticGold(lambda p, r: np.array([len(x) for x in r], dtype=float))
    picked, best, everything = best_of_n(base, [prompt_for("sofa")] * 3, 4, gold, SHORT,
                                         torch.Generator().manual_seed(0), missing_eos_penalty_value=0.0)
    assert np.allclose(best, everything.max(-1)) and [len(p) for p in picked] == list(best)


def test_rejection_sampling_finetune_smoke(base):
    lm = base.copy()
    gold = ProgrammaticGold(lambda p, r: sentiment_score(r))
    config = RSConfig(rounds=1, n=2, prompts_per_round=4, sft=SFTConfig(steps=2, batch_size=4), sampling=SHORT)
    history = rejection_sampling_finetune(lm, [prompt_for("lamp")], gold, config, progress=False)
    assert len(history) == 1 and history["best_reward"].iloc[0] >= history["sample_reward"].iloc[0]


def test_lm_reward_model_learns_the_preference(base):
    prompts, chosen, rejected = [], [], []
    for product in ("lamp", "tent", "sofa", "kettle"):
        prompts += [prompt_for(product)] * 2
        chosen += [" The lid is great.", " Five stars, a superb tent."]
        rejected += [" The lid is awful.", " One star, a broken tent."]
    rm, history = train_lm_reward_model(base, prompts, chosen, rejected, RMConfig(steps=30, batch_size=8, lr=3e-3),
                                        progress=False)
    assert history["loss"].iloc[-1] < 0.3
    assert np.all(rm(prompts, chosen) > rm(prompts, rejected))


def test_bt_head_on_features_is_the_mle():
    from rlbandit.reward import fit_bt

    gold = HashGold()
    prompts, r1, _ = reviews(1000, np.random.default_rng(3))
    _, r2, _ = reviews(1000, np.random.default_rng(4))
    labels = bt_labels(gold(prompts, r1), gold(prompts, r2), np.random.default_rng(5))
    theta = fit_bt(gold.features(prompts, r1) - gold.features(prompts, r2), labels, reg=1.0)
    # 0.97–0.99 over 40 salted variants of the hash; 0.9 leaves a margin that is not luck
    assert np.corrcoef(theta, gold.theta)[0, 1] > 0.9  # the MLE recovers the direction of θ*
    from llm.features import fit_feature_reward

    proxy = fit_feature_reward(gold.features(prompts, r1), gold.features(prompts, r2), labels, reg=1.0)
    np.testing.assert_allclose(proxy.theta, theta)
    noisy = bt_labels(np.full(2000, 5.0), np.zeros(2000), np.random.default_rng(6), noise=0.3)
    assert abs((1 - noisy.mean()) - (0.3 * 0.9933 + 0.7 * 0.0067)) < 0.03


@pytest.mark.parametrize("enhancer", sorted(ENHANCERS))
def test_online_dpo_each_enhancer(base, enhancer):
    lm, ref = base.copy(), base.frozen()
    config = OnlineDPOConfig(enhancer=enhancer, iterations=2, prompts_per_iteration=3, n_candidates=3,
                             dpo=DPOConfig(beta=0.1, steps=2, batch_size=4), sampling=SHORT)
    prompts = [prompt_for("lamp"), prompt_for("tent")]
    frame = online_dpo(lm, ref, prompts, HashGold(), config, eval_prompts=prompts, ref_eval_rewards=np.zeros(2),
                       progress=False)
    assert list(frame["n_comparisons"]) == [3, 6] and set(frame["enhancer"]) == {enhancer}
    assert np.all(np.isfinite(frame[["gold_reward", "kl_to_ref", "win_rate"]]))


def test_config_validation():
    with pytest.raises(ValueError, match="loss_type"):
        DPOConfig(loss_type="nope")
    with pytest.raises(ValueError, match="enhancer"):
        OnlineDPOConfig(enhancer="nope")
    with pytest.raises(ValueError, match="kl_mode"):
        PGConfig(kl_mode="nope")
    with pytest.raises(ValueError, match="reference"):
        OnlineDPOConfig(reference="nope")
    with pytest.raises(ValueError, match="noise"):
        bt_labels(np.zeros(2), np.zeros(2), np.random.default_rng(0), noise=0.6)
    for config in (SFTConfig, DPOConfig, PGConfig, RMConfig):
        with pytest.raises(ValueError, match="max_grad_norm"):
            config(max_grad_norm=float("nan"))
        config(max_grad_norm=0.0)  # 0 turns clipping off
    for config in (SFTConfig, DPOConfig):
        with pytest.raises(ValueError, match="warmup"):
            config(warmup=-1)


def test_prompt_too_long_for_training(base):
    with pytest.raises(ValueError, match="context window"):
        sft(base.copy(), ["Review of the lamp:" * 30], [" Great."], SFTConfig(steps=1), progress=False)


def test_generation_after_training_is_still_text(base, pairs):
    lm = base.copy()
    dpo(lm, prepare_dpo_data(base.frozen(), *pairs), DPOConfig(beta=0.1, steps=2, batch_size=4), progress=False)
    samples = generate(lm, [prompt_for("lamp")], SHORT, torch.Generator().manual_seed(0))
    assert isinstance(samples.responses[0], str)
