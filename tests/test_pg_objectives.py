"""The pure policy-gradient pieces shared by both worlds (rlbandit.pg_objectives), each against a
brute-force transcription of its formula, and the LM trainer's GRPO / Dr. GRPO entries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from rlbandit.pg_objectives import (
    LOSS_AGGREGATIONS,
    adaptive_kl_coefficient,
    aggregate_token_loss,
    clipped_surrogate,
    group_advantages,
    leave_one_out_advantages,
)

floats = st.floats(-5, 5, allow_nan=False)


@given(st.lists(st.tuples(st.floats(0.05, 3.0), floats), min_size=1, max_size=20), st.floats(0.05, 0.5))
def test_clipped_surrogate_is_the_elementwise_min_of_the_two_terms(pairs, clip):
    ratio = torch.tensor([p[0] for p in pairs], dtype=torch.float64)
    adv = torch.tensor([p[1] for p in pairs], dtype=torch.float64)
    got = clipped_surrogate(ratio, adv, clip).numpy()
    for (r, a), g in zip(pairs, got):
        assert g == pytest.approx(min(r * a, min(max(r, 1 - clip), 1 + clip) * a), abs=1e-12)
    assert np.allclose(clipped_surrogate(ratio, adv, None).numpy(), ratio.numpy() * adv.numpy())


@given(st.lists(floats, min_size=2, max_size=8), st.integers(1, 4))
def test_leave_one_out_baseline_is_the_mean_of_the_others(values, groups):
    returns = torch.tensor([values] * groups, dtype=torch.float64)
    got = leave_one_out_advantages(returns).numpy()
    for row in got:
        for i, a in enumerate(row):
            others = [v for j, v in enumerate(values) if j != i]
            assert a == pytest.approx(values[i] - np.mean(others), abs=1e-10)


@given(st.lists(floats, min_size=2, max_size=8))
def test_group_advantages_match_trl_convention(values):
    r = np.asarray(values)
    returns = torch.tensor(r[None], dtype=torch.float64)
    expected = (r - r.mean()) / (r.std(ddof=1) + 1e-4)  # trl: unbiased std, ε = 1e-4 outside the sqrt
    assert np.allclose(group_advantages(returns, scale="group").numpy()[0], expected, atol=1e-9)
    assert np.allclose(group_advantages(returns, scale="none").numpy()[0], r - r.mean(), atol=1e-12)


def test_group_advantages_batch_scale_uses_the_whole_batch_std():
    r = torch.tensor([[1.0, 2.0, 4.0], [0.0, 0.0, 3.0]], dtype=torch.float64)
    got = group_advantages(r, scale="batch")
    expected = (r - r.mean(-1, keepdim=True)) / (r.flatten().std() + 1e-4)
    assert torch.allclose(got, expected)
    with pytest.raises(ValueError, match="scale"):
        group_advantages(r, scale="prompt")


def test_token_aggregations_by_hand():
    per = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert aggregate_token_loss(per, mask, "sequence").item() == pytest.approx((6 + 4) / 2)
    assert aggregate_token_loss(per, mask, "grpo").item() == pytest.approx((6 / 3 + 4 / 1) / 2)
    assert aggregate_token_loss(per, mask, "bnpo").item() == pytest.approx(10 / 4)
    assert aggregate_token_loss(per, mask, "dapo").item() == pytest.approx(10 / 4)
    assert aggregate_token_loss(per, mask, "dr_grpo", max_length=8).item() == pytest.approx(10 / (2 * 8))
    assert set(LOSS_AGGREGATIONS) == {"sequence", "grpo", "bnpo", "dapo", "dr_grpo"}
    with pytest.raises(ValueError, match="loss_type"):
        aggregate_token_loss(per, mask, "mean")
    with pytest.raises(ValueError, match="mask"):
        aggregate_token_loss(per, mask[:, :2], "grpo")


def test_adaptive_kl_controller_moves_eta_toward_the_target():
    assert adaptive_kl_coefficient(1.0, 2.0, target=1.0, horizon=10.0) == pytest.approx(1.0 + 0.2 / 10)
    assert adaptive_kl_coefficient(1.0, 0.5, target=1.0, horizon=10.0) == pytest.approx(1.0 - 0.2 / 10)
    assert adaptive_kl_coefficient(1.0, 1.05, target=1.0, horizon=10.0) == pytest.approx(1.0 + 0.05 / 10)
    eta = torch.tensor([1.0, 2.0])
    got = adaptive_kl_coefficient(eta, torch.tensor([3.0, 0.0]), target=1.0, horizon=4.0)
    assert torch.allclose(got, torch.tensor([1.05, 1.9]))
    with pytest.raises(ValueError, match="target"):
        adaptive_kl_coefficient(1.0, 1.0, target=0.0, horizon=1.0)


def test_lm_pg_loss_equals_the_transcribed_grpo_objective():
    """llm.trainers.pg_loss with trl's GRPO settings = −min(ρA, clip(ρ)A) + β k3, token mean per response."""
    pytest.importorskip("transformers")
    from llm.trainers import pg_loss

    gen = torch.Generator().manual_seed(0)
    logp = -torch.rand(3, 4, generator=gen, dtype=torch.float64)
    old = logp + 0.3 * torch.randn(3, 4, generator=gen, dtype=torch.float64)
    ref = logp + 0.2 * torch.randn(3, 4, generator=gen, dtype=torch.float64)
    adv = torch.randn(3, 1, generator=gen, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.float64)
    got = pg_loss(logp, old, ref, adv, mask, clip=0.2, eta=0.04, kl_kind="k3", loss_type="grpo")
    ratio = torch.exp(logp - old)
    per = -torch.minimum(ratio * adv, ratio.clamp(0.8, 1.2) * adv) + 0.04 * (torch.exp(ref - logp) - (ref - logp) - 1)
    expected = ((per * mask).sum(-1) / mask.sum(-1)).mean()
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)


@pytest.mark.parametrize("advantage,loss_type,kl_mode", [("grpo", "grpo", "loss"), ("dr_grpo", "dr_grpo", "loss"),
                                                         ("grpo", "dapo", "reward")])
def test_lm_grpo_variants_train(advantage, loss_type, kl_mode):
    """GRPO / Dr. GRPO run on a tiny LM; the first rollout is π0's own (KL 0) and the per-step
    advantages are group-centred (each prompt's group sums to 0 for dr_grpo)."""
    pytest.importorskip("transformers")
    from llm.corpus import prompt_for, sentiment_score
    from llm.features import ProgrammaticGold
    from llm.generation import SamplingConfig
    from llm.tiny import TinyLMConfig, default_model
    from llm.trainers import PGConfig, policy_gradient

    torch.set_num_threads(1)
    base = default_model(TinyLMConfig.tiny(), cache=False, progress=False)
    lm, ref = base.copy(), base.frozen()
    gold = ProgrammaticGold(lambda p, r: sentiment_score(r))
    config = PGConfig(algorithm="ppo", advantage=advantage, loss_type=loss_type, kl_mode=kl_mode, kl_kind="k3",
                      eta=0.05, steps=2, prompts_per_step=2, samples_per_prompt=3, sampling=SamplingConfig(12))
    history = policy_gradient(lm, ref, [prompt_for("lamp"), prompt_for("tent")], gold, config, progress=False)
    assert list(history["step"]) == [0, 1] and np.all(np.isfinite(history[["reward", "kl", "loss"]]))
    assert history["kl"].iloc[0] == pytest.approx(0.0, abs=1e-4)
    with pytest.raises(ValueError, match="loss_type"):
        PGConfig(loss_type="token")
