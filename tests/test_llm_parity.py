"""Parity with trl 1.16 on the same tiny model (policy ≠ reference), the same batches, float32:

1. DPO, one step: our ``llm.trainers.dpo_loss`` and trl's ``DPOTrainer.compute_loss`` give the same
   loss and, after one backward, the same gradient for every parameter (relative error
   ‖g_ours − g_trl‖ / ‖g_trl‖ ≤ 1e-5 per parameter, plus an element-wise allclose), for every loss
   type the two share, on the packed (default) and the padded forward.
2. DPO, 10 steps from the same weights, AdamW (no weight decay), gradient clipping at 1, the whole
   data set as every batch (so trl's sampler order cannot matter): the same per-step losses and
   final weights. Twice: (a) ``dpo_loss`` + ``torch.optim.AdamW`` at a constant learning rate
   against trl's own optimiser and constant scheduler (``llm.trainers.dpo`` has no constant-lr
   option: its schedule decays linearly to 0.1 × lr); (b) ``llm.trainers.dpo`` itself against trl
   handed a ``torch.optim.AdamW`` that replays the learning rates ``dpo`` used, step for step.
3. GRPO, one batch: ``rlbandit.pg_objectives.group_advantages`` against the advantages trl's
   ``GRPOTrainer`` computes from the same rewards (its own generate-and-score path), and
   ``llm.trainers.pg_loss`` against trl's ``GRPOTrainer._compute_loss`` on one constructed batch
   (trl 1.16's input keys) — loss and every parameter gradient — for each of trl's aggregations,
   with trl's ``use_bias_correction_kl`` False and True (its default, which weights the KL term by
   π/π_old: ``pg_loss(..., bias_correction_kl=True)``).

trl 1.16's ``sigmoid`` ignores label_smoothing (cDPO is ``rlbandit.losses``' extension), so it is
compared at ε = 0.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from llm.corpus import reviews
from llm.generation import make_batch, sequence_logprobs
from llm.tiny import TinyLMConfig, default_model
from llm.trainers import DPOConfig, dpo, dpo_loss, pg_loss, prepare_dpo_data
from llm.trl_compat import (
    gradients,
    relative_errors,
    trl_dpo_trainer,
    trl_grpo_inputs,
    trl_grpo_trainer,
    trl_logged_losses,
    whole_dataset_batch,
)
from rlbandit.pg_objectives import group_advantages

torch.set_num_threads(1)
# raised inside trl 1.16 (it still calls transformers' old name), not by this code
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")

LOSS_TOL = {"abs": 1e-5, "rel": 1e-5}  # one loss value: float32 sums in another order (measured ≤ 7e-7 rel)
# per parameter ‖g_ours − g_trl‖ / ‖g_trl‖: measured ≤ 1.6e-6 (DPO, packed forward), 4.6e-7 (DPO, padded),
# 7.6e-7 (GRPO); the element-wise allclose (rtol 1e-5, atol 1e-5 · max|g|) uses ≤ 15 % of its budget
GRAD_REL_TOL = 1e-5
# 10 AdamW steps (lr 1e-3, the loss falls by 30–90 %), measured: per-step losses ≤ 1.1e-6 relative (≤ 1.3e-7
# absolute where robust's loss crosses 0), final weights ≤ 4e-7 relative per parameter, the displacement
# w_10 − w_0 ≤ 2.5e-6 relative. Float32 noise grows through Adam's per-coordinate normalisation, hence
# tolerances ~10× (losses) to ~25× (weights, displacement) above the measurement.
TRAJ_LOSS_TOL = {"rtol": 1e-5, "atol": 1e-6}
TRAJ_WEIGHT_REL_TOL = 1e-5
TRAJ_STEP_REL_TOL = 1e-4  # ‖Δw_ours − Δw_trl‖ / ‖Δw_trl‖ over all weights, Δw = w_10 − w_0

BETA = 0.1
# every loss type trl 1.16's DPOTrainer and rlbandit.losses share, with its label smoothing
TRL_DPO_LOSSES = [("sigmoid", 0.0), ("hinge", 0.0), ("ipo", 0.0), ("exo_pair", 1e-3), ("nca_pair", 0.0),
                  ("robust", 0.1), ("bco_pair", 0.0), ("sppo_hard", 0.0), ("aot", 0.1), ("aot_unpaired", 0.1),
                  ("apo_zero", 0.0), ("apo_down", 0.0), ("discopop", 0.0), ("sigmoid_norm", 0.0)]


@pytest.fixture(scope="module")
def models():
    ref = default_model(TinyLMConfig.tiny(steps=10), cache=False, progress=False)
    policy = default_model(TinyLMConfig.tiny(steps=40), cache=False, progress=False)  # same tokenizer, other weights
    assert ref.tokenizer.get_vocab() == policy.tokenizer.get_vocab()
    prompts, chosen, _ = reviews(6, np.random.default_rng(0))
    _, rejected, _ = reviews(6, np.random.default_rng(1))
    return policy, ref, (prompts, chosen, rejected)


@pytest.fixture(scope="module")
def data(models):
    _, ref, pairs = models
    return prepare_dpo_data(ref, *pairs)


def _assert_same_gradients(ours: dict, theirs: dict):
    errors = relative_errors(ours, theirs)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= GRAD_REL_TOL, f"{worst}: relative gradient error {errors[worst]:.2e}"
    for name, g in theirs.items():
        # element-wise, with an absolute floor at 1e-5 of the tensor's largest entry (float32 cancellation)
        torch.testing.assert_close(ours[name], g, rtol=1e-5, atol=1e-5 * float(g.abs().max()), msg=name)
    total = sum(float(g.norm()) ** 2 for g in theirs.values()) ** 0.5
    assert total > 1e-6  # a non-trivial gradient, not 0 == 0


def _whole_data(data):
    return data.prompt_ids, data.chosen_ids, data.rejected_ids, data.ref_chosen, data.ref_rejected


@pytest.mark.parametrize("loss_type,smoothing,packed", [(lt, eps, True) for lt, eps in TRL_DPO_LOSSES]
                         + [("sigmoid", 0.0, False), ("ipo", 0.0, False), ("robust", 0.1, False)])
def test_dpo_loss_and_every_gradient_equal_trl(models, data, tmp_path, loss_type, smoothing, packed):
    policy, ref, pairs = models
    config = DPOConfig(beta=BETA, loss_type=loss_type, label_smoothing=smoothing, packed=packed)
    ours_model = policy.copy().model
    ours_model.train()
    ours, _, _ = dpo_loss(ours_model, policy.tokenizer.pad_token_id, *_whole_data(data), config, device=policy.device)
    ours.backward()

    trainer = trl_dpo_trainer(policy, *pairs, ref_lm=ref, beta=BETA, loss_type=loss_type, label_smoothing=smoothing,
                              batch_size=len(pairs[0]), output_dir=str(tmp_path))
    trainer.model.train()
    theirs = trainer.compute_loss(trainer.model, whole_dataset_batch(trainer))
    theirs.backward()

    assert ours.item() == pytest.approx(theirs.item(), **LOSS_TOL)
    if loss_type == "sigmoid":
        assert abs(ours.item() - np.log(2)) > 1e-3  # the policy differs from the reference: a non-trivial loss
    _assert_same_gradients(gradients(ours_model), gradients(trainer.model))


def _assert_same_trajectory(ours_losses, trl_losses, start, ours_model, trl_model):
    assert len(ours_losses) == len(trl_losses) == 10
    np.testing.assert_allclose(ours_losses, trl_losses, **TRAJ_LOSS_TOL)
    assert ours_losses[-1] < ours_losses[0] - 1e-3  # the 10 steps did train
    w_ours = {n: p.detach() for n, p in ours_model.named_parameters()}
    w_trl = {n: p.detach() for n, p in trl_model.named_parameters()}
    errors = relative_errors(w_ours, w_trl)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TRAJ_WEIGHT_REL_TOL, f"{worst}: relative weight error {errors[worst]:.2e}"
    moved = {n: w_trl[n] - start[n] for n in start}
    step_error = sum(float((w_ours[n] - w_trl[n]).norm()) ** 2 for n in start) ** 0.5
    step_size = sum(float(d.norm()) ** 2 for d in moved.values()) ** 0.5
    assert step_size > 1e-3  # the weights moved
    assert step_error / step_size <= TRAJ_STEP_REL_TOL


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo"])
def test_dpo_ten_steps_constant_lr_equal_trl(models, data, tmp_path, loss_type):
    """dpo_loss + torch.optim.AdamW at a constant lr (our side driven by hand: ``dpo`` decays its lr)
    against trl's own optimiser (transformers' default AdamW) and constant scheduler."""
    policy, ref, pairs = models
    lr, steps = 1e-3, 10
    config = DPOConfig(beta=BETA, loss_type=loss_type)
    model = policy.copy().model
    model.train()
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    ours = []
    for _ in range(steps):
        loss, _, _ = dpo_loss(model, policy.tokenizer.pad_token_id, *_whole_data(data), config, device=policy.device)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        ours.append(loss.item())

    trainer = trl_dpo_trainer(policy, *pairs, ref_lm=ref, beta=BETA, loss_type=loss_type, lr=lr, max_steps=steps,
                              batch_size=len(pairs[0]), output_dir=str(tmp_path))
    trainer.train()
    _assert_same_trajectory(ours, trl_logged_losses(trainer), start, model, trainer.model)


@pytest.mark.parametrize("loss_type", ["sigmoid", "robust"])
def test_dpo_trainer_ten_steps_equal_trl(models, data, tmp_path, loss_type):
    """``llm.trainers.dpo`` itself (batch = the whole data set, in its own shuffled order) against
    trl given the same AdamW and the learning rates ``dpo`` used at each step."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    policy, ref, pairs = models
    lr, steps = 1e-3, 10
    smoothing = 0.1 if loss_type == "robust" else 0.0
    ours_lm = policy.copy()
    start = {n: p.detach().clone() for n, p in ours_lm.model.named_parameters()}
    lrs = []
    handle = register_optimizer_step_pre_hook(lambda opt, args, kwargs: lrs.append(opt.param_groups[0]["lr"]))
    try:
        history = dpo(ours_lm, data, DPOConfig(beta=BETA, loss_type=loss_type, label_smoothing=smoothing, steps=steps,
                                               batch_size=len(data), lr=lr, warmup=0, max_grad_norm=1.0),
                      progress=False)
    finally:
        handle.remove()
    assert len(lrs) == steps and lrs[-1] < lrs[0]  # dpo's schedule is not constant: replay it

    trainer = trl_dpo_trainer(policy, *pairs, ref_lm=ref, beta=BETA, loss_type=loss_type, label_smoothing=smoothing,
                              lr=lr, max_steps=steps, batch_size=len(pairs[0]), output_dir=str(tmp_path),
                              lr_factors=[x / lr for x in lrs])
    trainer.train()
    _assert_same_trajectory(list(history["loss"]), trl_logged_losses(trainer), start, ours_lm.model, trainer.model)


# ------------------------------------------------------------------------------------------------
# GRPO

GROUP = 4
# 3 prompts × 4 samples; the middle group has one reward for all (std 0: A = 0 with trl's ε = 1e-4)
REWARDS = [0.1, 0.5, -0.3, 0.9, 1.0, 1.0, 1.0, 1.0, 2.0, -1.0, 0.5, 0.25]


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_group_advantages_equal_trl(models, tmp_path, scale):
    """trl computes the advantages itself (generate, score with our reward function, normalise);
    group_advantages gets the same rewards."""
    policy, _, (prompts, _, _) = models
    prompts = prompts[:len(REWARDS) // GROUP]
    trainer = trl_grpo_trainer(policy, prompts, lambda prompts, completions, **kw: list(REWARDS), group_size=GROUP,
                               max_completion_length=6, clip=0.2, eta=0.0, loss_type="grpo", scale_rewards=scale,
                               output_dir=str(tmp_path))
    trainer.model.eval()
    out = trainer._generate_and_score_completions([{"prompt": p} for p in prompts for _ in range(GROUP)])
    theirs = out["advantages"].double()
    ours = group_advantages(torch.tensor(REWARDS, dtype=torch.float64).reshape(-1, GROUP), scale=scale).reshape(-1)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)  # trl normalises in float32
    if scale != "batch":  # a group of equal rewards: A = 0 (0 / (0 + 1e-4) with "group")
        assert torch.all(ours[GROUP:2 * GROUP] == 0)


def _grpo_batch(policy, n: int, seed: int = 0):
    """n (prompt, response) pairs of mixed prompt and response lengths (left and right padding both
    occur), responses of 2–9 tokens, some ending with EOS."""
    prompts, responses, _ = reviews(n, np.random.default_rng(seed))
    tok = policy.tokenizer
    rng = np.random.default_rng(seed + 1)
    p_ids = [ids[:int(rng.integers(3, len(ids) + 1))] for ids in tok(prompts, add_special_tokens=False)["input_ids"]]
    r_ids = []
    for i, ids in enumerate(tok(responses, add_special_tokens=False)["input_ids"]):
        ids = ids[:int(rng.integers(2, 9))]
        r_ids.append(ids + [tok.eos_token_id] if i % 3 else ids)
    return make_batch(p_ids, r_ids, tok.pad_token_id)


# ours "sequence" (sum over tokens, mean over sequences) is trl's "luspo" at token-level importance sampling
TRL_PG_LOSS = {"grpo": "grpo", "bnpo": "bnpo", "dapo": "dapo", "dr_grpo": "dr_grpo", "sequence": "luspo"}


def _pg_losses_and_gradients(policy, tmp_path, *, loss_type, clip, eta, on_policy, use_bias_correction_kl):
    """(our loss, trl's loss, our gradients, trl's gradients) on one GRPO batch of 12 responses: each
    side's own forward under the same weights; the same rollout and reference log-probs and advantages."""
    batch = _grpo_batch(policy, len(REWARDS))
    max_completion = batch.response_mask.shape[1] + 3  # dr_grpo divides by the cap, not the batch's padded length
    ours_model = policy.copy().model
    ours_model.train()
    _, tok_logp = sequence_logprobs(ours_model, batch, per_token=True)
    gen = torch.Generator().manual_seed(0)
    mask = batch.response_mask.float()
    # rollout and reference log-probs a little off the current ones, so clipping binds on some tokens
    old_tok = tok_logp.detach()
    if not on_policy:
        old_tok = (old_tok + 0.3 * torch.randn(tok_logp.shape, generator=gen)) * mask
    ref_tok = (tok_logp.detach() + 0.5 * torch.randn(tok_logp.shape, generator=gen)) * mask
    adv = group_advantages(torch.tensor(REWARDS).reshape(-1, GROUP), scale="group").reshape(-1, 1)
    if not on_policy:
        assert ((torch.exp(tok_logp.detach() - old_tok) - 1).abs() > 0.2)[mask.bool()].any()  # clipping binds
    ours = pg_loss(tok_logp, old_tok, ref_tok, adv, batch.response_mask, clip=clip, eta=eta,
                   kl_kind="k3" if eta else None, loss_type=loss_type, max_length=max_completion,
                   bias_correction_kl=use_bias_correction_kl)
    ours.backward()

    trainer = trl_grpo_trainer(policy, ["x"], lambda prompts, completions, **kw: [0.0] * len(prompts),
                               group_size=GROUP, max_completion_length=max_completion,
                               clip=1e9 if clip is None else clip, eta=eta, loss_type=TRL_PG_LOSS[loss_type],
                               use_bias_correction_kl=use_bias_correction_kl, output_dir=str(tmp_path))
    trainer.model.eval()  # eval: no gradient-accumulation normaliser (1 either way); the model has no dropout
    theirs = trainer._compute_loss(trainer.model, trl_grpo_inputs(batch, adv, old_tok, ref_tok))
    theirs.backward()
    return ours.item(), theirs.item(), gradients(ours_model), gradients(trainer.model)


@pytest.mark.parametrize("loss_type,clip,eta", [(lt, 0.2, 0.0) for lt in TRL_PG_LOSS]
                         + [(lt, 0.2, 0.1) for lt in TRL_PG_LOSS] + [("grpo", None, 0.1)])
def test_pg_loss_and_every_gradient_equal_trl_grpo(models, tmp_path, loss_type, clip, eta):
    """pg_loss against GRPOTrainer._compute_loss on one off-policy batch (clipping active), trl 1.16's
    own loss code on a constructed inputs dict. η > 0 adds the per-token k3 KL
    exp(ref − logp) − (ref − logp) − 1, with trl's ``use_bias_correction_kl=False`` (the GRPO
    paper's KL term, which pg_loss implements; trl's default True is the next test). clip None is
    trl's ε = 1e9."""
    ours, theirs, g_ours, g_trl = _pg_losses_and_gradients(models[0], tmp_path, loss_type=loss_type, clip=clip,
                                                          eta=eta, on_policy=False, use_bias_correction_kl=False)
    assert ours == pytest.approx(theirs, **LOSS_TOL)
    _assert_same_gradients(g_ours, g_trl)


@pytest.mark.parametrize("on_policy", [True, False])
def test_pg_loss_gradient_equals_trl_grpo_default_bias_corrected_kl(models, tmp_path, on_policy):
    """trl 1.16's default ``use_bias_correction_kl=True`` multiplies the per-token k3 KL by the
    differentiable ratio π/π_old (DeepSeek-V3.2), which changes the KL gradient even on-policy (by
    η·k3·∇log π per token): ``pg_loss(..., bias_correction_kl=True)`` is that loss."""
    ours, theirs, g_ours, g_trl = _pg_losses_and_gradients(models[0], tmp_path, loss_type="grpo", clip=0.2, eta=0.1,
                                                          on_policy=on_policy, use_bias_correction_kl=True)
    assert ours == pytest.approx(theirs, **LOSS_TOL)
    _assert_same_gradients(g_ours, g_trl)


def test_bias_corrected_kl_changes_the_gradient_on_policy(models, tmp_path):
    """The two KL weightings agree in value on-policy (ratio 1) but not in gradient: the option matters."""
    ours, _, g_plain, _ = _pg_losses_and_gradients(models[0], tmp_path, loss_type="grpo", clip=0.2, eta=0.1,
                                                   on_policy=True, use_bias_correction_kl=False)
    corrected, _, g_corrected, _ = _pg_losses_and_gradients(models[0], tmp_path, loss_type="grpo", clip=0.2,
                                                            eta=0.1, on_policy=True, use_bias_correction_kl=True)
    assert ours == pytest.approx(corrected, rel=1e-6)
    assert max(relative_errors(g_plain, g_corrected).values()) > 1e-3
