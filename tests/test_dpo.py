"""DPO on the bandit: the DPO minimiser is the Gibbs policy of the BT MLE; deterministic preferences
break DPO but not IPO; online DPO and XPO."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlbandit import LinearBandit, PreferenceData, ProblemConfig, fit_bt, gibbs, kl, make_problems
from rlbandit.dpo import (
    DPOConfig,
    OnlineDPOConfig,
    dpo_objective,
    online_dpo,
    policy_logprobs,
    train_dpo,
)
from rlbandit.losses import LOSSES

torch.set_num_threads(1)  # the CI machine has 2 cores shared with xdist workers


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), beta=st.floats(0.05, 5.0), reg=st.sampled_from([0.0, 0.1, 1.0]),
       n=st.integers(30, 150), scenario=st.sampled_from(["random", "coverage_shift", "few_good"]))
def test_dpo_minimizer_equals_gibbs_of_bt_mle(seed, beta, reg, n, scenario):
    """Log-linear class π_w ∝ π0 exp(φw/β): DPO's w = θ̂ (BT MLE, same ridge) and π_DPO = O(φθ̂, β, π0)."""
    problems = make_problems(ProblemConfig(scenario=scenario, n_contexts=4, n_actions=5, dim=3, seed=seed), [seed, seed + 1])
    rng = np.random.default_rng(seed)
    data = problems.sample_preferences(problems.ref_logprobs, problems.ref_logprobs, n, rng)
    theta_hat = fit_bt(problems.diffs(data), data.labels, reg if reg > 0 else 1e-8)
    policy = train_dpo(problems, data, DPOConfig(beta=beta, reg=reg if reg > 0 else 1e-8))
    np.testing.assert_allclose(policy.w.detach().numpy(), theta_hat, atol=1e-5 * (1 + np.abs(theta_hat).max()))
    oracle = gibbs(np.einsum("sxkd,sd->sxk", problems.features, theta_hat), problems.ref_logprobs, beta)
    assert kl(policy_logprobs(policy), oracle).max() < 1e-9


def test_tabular_dpo_is_bt_mle_on_one_hot_features():
    """The tabular class is the log-linear class with one-hot features: β·u = θ̂(one-hot BT MLE)."""
    problems = make_problems(ProblemConfig(n_contexts=3, n_actions=4, dim=2), [0])
    rng = np.random.default_rng(5)
    data = problems.sample_preferences(problems.ref_logprobs, problems.ref_logprobs, 200, rng)
    beta, reg = 0.7, 0.5
    x, k = 3, 4
    one_hot = np.eye(x * k).reshape(x, k, x * k)[None]
    theta_hat = fit_bt(data.diffs(one_hot), data.labels, reg)  # (1, X·K)
    policy = train_dpo(problems, data, DPOConfig(policy="tabular", beta=beta, reg=reg))
    np.testing.assert_allclose(beta * policy.logits.detach().numpy().reshape(1, -1), theta_hat, atol=1e-6)
    oracle = gibbs(theta_hat.reshape(1, x, k), problems.ref_logprobs, beta)
    assert kl(policy_logprobs(policy), oracle).max() < 1e-10


# --- deterministic preferences: DPO degenerates, IPO does not (Azar et al. 2023, §4.2) -----------


def _three_action_problem():
    ref = np.log(np.array([[0.2, 0.5, 0.3]]))
    problem = LinearBandit(np.zeros((1, 3, 1)), np.zeros(1), ref)
    data = PreferenceData(np.zeros(3, int), np.array([0, 1, 0]), np.array([1, 2, 2]), np.ones(3, int))  # 0 ≻ 1 ≻ 2
    return problem, data, ref


@pytest.mark.parametrize("beta", [0.1, 1.0, 10.0])
def test_dpo_deterministic_preferences_drive_winner_to_one(beta):
    """With 0 ≻ 1 ≻ 2 always, the DPO loss has no minimiser: it decreases strictly to 0 along
    u = t·(2, 1, 0) while π(0) → 1, for every β. IPO's loss has the regularised minimiser
    log π/π0 = (2, 1, 0)/(3β) + c (its squared loss targets margins 1/(2β))."""
    problem, data, ref = _three_action_problem()
    ref_t = torch.as_tensor(ref)
    config = DPOConfig(policy="tabular", beta=beta, reg=0.0, optimizer="lbfgs", steps=300, tolerance=0.0)
    from rlbandit.policies import TabularPolicy

    values, losers = [], []
    for t in (0.0, 1.0, 5.0, 25.0, 125.0, 625.0):
        policy = TabularPolicy(ref[None], init=np.array([[[2.0, 1.0, 0.0]]]) * t / beta)
        values.append(float(dpo_objective(policy, ref_t[None], _batched(data), config).detach()))
        losers.append(float(torch.logsumexp(policy.logprobs()[0, 0, 1:], 0).detach()))  # log(1 − π(0))
    assert all(a > b for a, b in zip(values, values[1:])) and values[-1] < 1e-200
    assert all(a > b for a, b in zip(losers, losers[1:])) and losers[-1] < np.log(1e-20)

    dpo = np.exp(policy_logprobs(train_dpo(problem, data, config)))[0]
    ipo = np.exp(policy_logprobs(train_dpo(problem, data, DPOConfig(policy="tabular", beta=beta, reg=0.0,
                                                                     loss_type="ipo"))))[0]
    closed = np.exp(ref[0] + np.array([2.0, 1.0, 0.0]) / (3 * beta))
    closed /= closed.sum()
    np.testing.assert_allclose(ipo, closed, atol=1e-8)
    # float64 stalls the optimiser once the loss is ~e^-55 (β = 10 reaches π(0) ≈ 0.989)
    assert dpo[0] > 0.95 and dpo[0] > ipo[0]


def _batched(data):
    return PreferenceData(*(np.asarray(a)[None] for a in (data.contexts, data.actions1, data.actions2, data.labels,
                                                           data.source)))


# --- every loss trains ----------------------------------------------------------------------------


@pytest.mark.parametrize("loss_type", sorted(LOSSES))
def test_every_loss_type_trains_on_the_bandit(loss_type):
    problems = make_problems(ProblemConfig(n_contexts=3, n_actions=4, dim=2), [0, 1])
    rng = np.random.default_rng(0)
    data = problems.sample_preferences(problems.ref_logprobs, problems.ref_logprobs, 60, rng)
    eps = 1e-3 if loss_type == "exo_pair" else 0.0
    ref = torch.as_tensor(np.array(problems.ref_logprobs))
    before = float(dpo_objective(_fresh(problems), ref, data,
                                 DPOConfig(loss_type=loss_type, label_smoothing=eps, beta=0.5)).detach())
    policy = train_dpo(problems, data, DPOConfig(loss_type=loss_type, label_smoothing=eps, beta=0.5, steps=50))
    after = float(dpo_objective(policy, ref, data, DPOConfig(loss_type=loss_type, label_smoothing=eps, beta=0.5)).detach())
    assert np.isfinite(policy_logprobs(policy)).all()
    assert after <= before + 1e-12


def _fresh(problems):
    from rlbandit.policies import LogLinearPolicy

    return LogLinearPolicy(problems.features, problems.ref_logprobs, 0.5)


# --- online DPO and XPO -------------------------------------------------------------------------


def test_online_dpo_approaches_gibbs():
    problems = make_problems(ProblemConfig(n_contexts=4, n_actions=6, dim=3), range(3))
    result = online_dpo(problems, OnlineDPOConfig(dpo=DPOConfig(beta=0.5, reg=0.1), iterations=6, pairs_per_iteration=64))
    by_round = result.history.groupby("iteration").kl_to_target.mean()
    assert by_round.iloc[-1] < 0.25 * by_round.iloc[0]
    assert result.history.comparisons.max() == 6 * 64
    assert set(result.history.columns) >= {"iteration", "seed", "comparisons", "kl_to_target", "subopt", "kl_to_ref"}


def test_xpo_term_pushes_mass_off_reference_samples():
    problems = make_problems(ProblemConfig(n_contexts=3, n_actions=5, dim=3), [0])
    rng = np.random.default_rng(1)
    data = problems.sample_preferences(problems.ref_logprobs, problems.ref_logprobs, 40, rng)
    explore = (np.array(data.contexts), np.array(data.actions2))
    plain = train_dpo(problems, data, DPOConfig(beta=0.5))
    xpo = train_dpo(problems, data, DPOConfig(beta=0.5), explore=explore, alpha=0.2)
    rows = np.arange(1)[:, None]

    def mean_logp(policy):
        return float(policy.logprobs().detach().numpy()[rows, explore[0], explore[1]].mean())

    assert mean_logp(xpo) < mean_logp(plain) - 1e-3
    result = online_dpo(problems, OnlineDPOConfig(dpo=DPOConfig(beta=0.5), iterations=3, pairs_per_iteration=16,
                                                  sampler="reference", xpo_alpha=0.01))
    assert len(result.history) == 4


def test_config_validation():
    with pytest.raises(ValueError, match="loss_type"):
        DPOConfig(loss_type="kto")
    with pytest.raises(ValueError, match="xpo_alpha"):
        OnlineDPOConfig(xpo_alpha=0.1)
    problems = make_problems(ProblemConfig(n_contexts=3, n_actions=4, dim=2), [0, 1])
    data = PreferenceData(np.zeros((1, 2), int), np.zeros((1, 2), int), np.ones((1, 2), int), np.ones((1, 2), int))
    with pytest.raises(ValueError, match="data"):
        train_dpo(problems, data, DPOConfig())
