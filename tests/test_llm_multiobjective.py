"""Conflicting preferences on LMs (``llm.multiobjective``, study ``conflict_llm``): the soups'
identities on the enumerable sequence world, parameter averaging, the user prefix, validation, and a
smoke run of the study."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from llm import multiobjective as lmo  # noqa: E402
from llm.seq_bridge import SequenceBridgeConfig, make_sequence_world  # noqa: E402
from rlbandit import gibbs  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def world():
    """A small enumerable world: 3 prompt tokens, responses of 1–2 of 3 words (N = 12)."""
    return make_sequence_world(SequenceBridgeConfig(n_contexts=3, n_tokens=3, max_length=2, ref_fit_steps=30, seed=3))


@pytest.fixture(scope="module")
def perturbed(world):
    """Two different fine-tunes of π0: copies with small random weight changes (seeded)."""
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(2):
        lm = world.policy.copy()
        with torch.no_grad():
            for p in lm.model.parameters():
                p.add_(0.3 * torch.randn(p.shape, generator=gen))
        lm.model.eval()
        out.append(lm)
    return out


weights2 = st.floats(0.0, 1.0).map(lambda t: np.array([t, 1.0 - t]))


# ---------------------------------------------------------------------------------------------
# Soups on the enumerable world


@settings(max_examples=25)
@given(w=weights2, eta=st.floats(0.1, 5.0), seed=st.integers(0, 10_000))
def test_sequence_soup_of_exact_gibbs_policies_is_the_combined_optimum(world, w, eta, seed):
    """normalise(Σ_i w_i log O(r_i)) = O(Σ_i w_i r_i) on the LM's exact π0 over all responses (DESIGN §6b);
    beside it, brute force: π0 exp(Σ w r / η) normalised by an explicit sum."""
    ref = world.problem.ref_logprobs
    rewards = np.random.default_rng(seed).normal(size=(2,) + ref.shape)
    per_objective = np.stack([gibbs(r, ref, eta) for r in rewards])
    soup = lmo.sequence_soup(per_objective, w)
    unnormalised = np.exp(ref) * np.exp(np.tensordot(w, rewards, axes=1) / eta)
    brute = unnormalised / unnormalised.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(np.exp(soup), brute, rtol=1e-9, atol=1e-12)


@settings(max_examples=10)
@given(w=weights2)
def test_parameter_average_of_identical_models_is_the_identity(world, w):
    lm = world.policy.copy()
    soup = lmo.parameter_soup([lm, lm.copy()], w)
    for (key, a), b in zip(lm.model.state_dict().items(), soup.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), key
    np.testing.assert_allclose(world.sequence_logprobs(soup), world.sequence_logprobs(lm), atol=1e-5)


@settings(max_examples=10)
@given(w=weights2)
def test_parameter_average_is_the_entrywise_weighted_mean(world, perturbed, w):
    soup = lmo.parameter_soup(perturbed, w)
    a, b = (lm.model.state_dict() for lm in perturbed)
    for key, mixed in soup.model.state_dict().items():
        expected = w[0] * a[key].numpy().astype(np.float64) + w[1] * b[key].numpy().astype(np.float64)
        np.testing.assert_allclose(mixed.numpy(), expected, rtol=1e-6, atol=1e-6, err_msg=key)


def test_parameter_soup_at_a_vertex_is_that_model(world, perturbed):
    soup = lmo.parameter_soup(perturbed, [0.0, 1.0])
    np.testing.assert_allclose(world.sequence_logprobs(soup), world.sequence_logprobs(perturbed[1]), atol=1e-5)


@settings(max_examples=8)
@given(w=weights2)
@example(w=np.array([3.7e-136, 1.0]))  # below float32's range: 0·(−inf) = NaN before the soup ran in float64
def test_token_soup_is_a_normalised_policy_and_the_per_token_geometric_mean(world, perturbed, w):
    """Every response's log-prob under the token soup model sums to one over the enumeration, and each
    token's log-prob is log_softmax(Σ_i w_i log π_i(·|s)) computed here from the two models' logits."""
    soup = lmo.token_soup_model(perturbed, w)
    logp = world.sequence_logprobs(soup)
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, atol=1e-5)
    ids = torch.as_tensor(world.prompt_ids())
    with torch.no_grad():
        first = [torch.log_softmax(lm.model(input_ids=ids, use_cache=False).logits[:, -1].double(), -1)
                 for lm in perturbed]
        soup_first = soup(input_ids=ids, use_cache=False).logits[:, -1].double()
    mixed = sum(wi * torch.where(torch.isfinite(f), f, torch.zeros_like(f)) for wi, f in zip(w, first) if wi > 0)
    barred = ~torch.isfinite(first[0])
    expected = torch.log_softmax(mixed.masked_fill(barred, float("-inf")), -1)
    allowed = ~barred
    np.testing.assert_allclose(soup_first[allowed].numpy(), expected[allowed].numpy(), atol=1e-5)
    assert torch.isinf(soup_first[barred]).all()


def test_token_soup_differs_from_the_sequence_soup_in_general(world, perturbed):
    """Per-step renormalisation is not sequence-level normalisation (why the study reports both)."""
    w = np.array([0.5, 0.5])
    token = world.sequence_logprobs(lmo.token_soup_model(perturbed, w))
    sequence = lmo.sequence_soup(np.stack([world.sequence_logprobs(lm) for lm in perturbed]), w)
    assert np.abs(token - sequence).max() > 1e-3


def test_token_soup_of_identical_models_is_the_model(world, perturbed):
    lm = perturbed[0]
    soup = lmo.token_soup_model([lm, lm], [0.3, 0.7])
    np.testing.assert_allclose(world.sequence_logprobs(soup), world.sequence_logprobs(lm), atol=1e-5)


def test_tied_prompt_embeddings_give_the_same_reference_policy(world):
    lm = world.policy.copy()
    ids = lm.tokenizer.convert_tokens_to_ids(world.prompts)
    before = world.sequence_logprobs(lm)
    assert np.abs(before[0] - before[2]).max() > 1e-3  # the fitted π0 differs between prompts
    lmo.tie_prompt_embeddings(lm.model, [ids[0]], [ids[2]])
    after = world.sequence_logprobs(lm)
    np.testing.assert_array_equal(after[2], after[0])
    np.testing.assert_array_equal(after[:2], before[:2])


# ---------------------------------------------------------------------------------------------
# Prefix, heads, pairs


def test_the_conditioning_prefix_changes_the_prompt():
    plain = "How was the hotel?"
    positive, brief = lmo.conditioned_prompt(plain, "positive"), lmo.conditioned_prompt(plain, "brief")
    assert positive != plain and brief != plain and positive != brief
    assert positive == "[user: positive] How was the hotel?" and positive.endswith(plain)
    assert lmo.conditioned_prompts([plain, "Hi"], ["brief", "positive"]) == [brief, "[user: positive] Hi"]


def test_fit_linear_head_is_ridge_on_prompt_centred_data(rng):
    """Beside it, scikit-learn's Ridge (no intercept) on features and targets centred per group."""
    from sklearn.linear_model import Ridge

    phi, groups = rng.normal(size=(60, 5)), np.repeat(np.arange(3), 20)
    y = phi @ rng.normal(size=5) + 3.0 * groups + 0.1 * rng.normal(size=60)
    theta = lmo.fit_linear_head(phi, y, groups, reg=0.5)
    centre = np.stack([(groups == g) / (groups == g).sum() for g in range(3)])[groups]  # (60, 60) group means
    ref = Ridge(alpha=0.5, fit_intercept=False).fit(phi - centre @ phi, y - centre @ y).coef_
    np.testing.assert_allclose(theta, ref, rtol=1e-8, atol=1e-10)


def test_rescale_direction_sets_the_within_prompt_spread(rng):
    phi, groups = rng.normal(size=(40, 4)), np.repeat(np.arange(4), 10)
    theta = lmo.rescale_direction(phi, rng.normal(size=4), 2.5, groups)
    r = phi @ theta
    centred = np.concatenate([r[groups == g] - r[groups == g].mean() for g in range(4)])
    assert np.isclose(centred.std(), 2.5)


def test_head_transfer_recovers_a_linear_target(rng):
    phi, groups = rng.normal(size=(90, 6)), np.repeat(np.arange(3), 30)
    y = phi @ rng.normal(size=6) + groups
    assert (lmo.head_transfer(phi, y, groups, reg=1e-3) > 0.99).all()


def test_sample_reference_pairs_follow_pi0_and_never_tie(rng):
    """Monte Carlo: given x, a ∼ π0(·|x) and b ∼ π0(·|x) restricted to b ≠ a (b is redrawn)."""
    logp = np.log(np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]]))
    x, a, b = lmo.sample_reference_pairs(logp, 40_000, rng)
    assert (a != b).all()
    for row in range(2):
        freq = np.bincount(a[x == row], minlength=3) / (x == row).sum()
        se = np.sqrt(np.exp(logp[row]) * (1 - np.exp(logp[row])) / (x == row).sum())
        assert (np.abs(freq - np.exp(logp[row])) < 5 * se).all()
    p = np.exp(logp[0])
    expected = ((p[:, None] * p[None, :] / (1 - p[:, None])) * (1 - np.eye(3))).sum(axis=0)  # Σ_a p_a p_b/(1 − p_a)
    freq_b = np.bincount(b[x == 0], minlength=3) / (x == 0).sum()
    assert np.abs(freq_b - expected).max() < 0.015


# ---------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize("weights, match", [([0.5, 0.6], "sum to 1"), ([-0.1, 1.1], ">= 0"), ([], "non-empty"),
                                            ([1.0], "2 weights"), ([[0.5, 0.5]], "vector")])
def test_bad_weights_are_rejected(weights, match):
    with pytest.raises(ValueError, match=match):
        lmo.check_weights(weights, 2)


def test_bad_inputs_are_rejected(world, perturbed, rng):
    with pytest.raises(ValueError, match="user"):
        lmo.conditioned_prompt("x", "")
    with pytest.raises(ValueError, match="user"):
        lmo.conditioned_prompt("x", "a]b")
    with pytest.raises(ValueError, match="users"):
        lmo.conditioned_prompts(["a", "b"], ["u"])
    with pytest.raises(ValueError, match="reg"):
        lmo.fit_linear_head(np.ones((4, 2)), np.ones(4), reg=0.0)
    with pytest.raises(ValueError, match="targets"):
        lmo.fit_linear_head(np.ones((4, 2)), np.ones(3))
    with pytest.raises(ValueError, match="groups"):
        lmo.head_transfer(np.ones((4, 2)), np.ones(4), np.zeros(4))
    with pytest.raises(ValueError, match="logprobs_k"):
        lmo.sequence_soup(np.zeros((2, 3)), [0.5, 0.5])
    with pytest.raises(ValueError, match="logits_k"):
        lmo.token_soup_logits([torch.zeros(2, 3), torch.zeros(2, 4)], [0.5, 0.5])
    barred = torch.tensor([[0.0, float("-inf")], [float("-inf"), 0.0]])
    with pytest.raises(ValueError, match="disjoint"):
        lmo.token_soup_logits([barred, barred.flip(-1)], [0.5, 0.5])
    sd = perturbed[0].model.state_dict()
    with pytest.raises(ValueError, match="keys"):
        lmo.average_state_dicts([sd, {k: v for k, v in list(sd.items())[1:]}], [0.5, 0.5])
    with pytest.raises(ValueError, match="non-floating"):
        lmo.average_state_dicts([{"i": torch.tensor([1])}, {"i": torch.tensor([2])}], [0.5, 0.5])
    with pytest.raises(ValueError, match="shape"):
        lmo.average_state_dicts([{"a": torch.zeros(2)}, {"a": torch.zeros(3)}], [0.5, 0.5])
    with pytest.raises(ValueError, match="models"):
        lmo.parameter_soup([], [])
    with pytest.raises(ValueError, match="target_ids"):
        lmo.tie_prompt_embeddings(perturbed[0].model, [1, 2], [3])
    with pytest.raises(ValueError, match="source_ids"):
        lmo.tie_prompt_embeddings(perturbed[0].model, [10_000], [1])
    with pytest.raises(ValueError, match="rng"):
        lmo.sample_reference_pairs(np.log(np.full((1, 2), 0.5)), 3, 0)
    with pytest.raises(ValueError, match="mass"):
        lmo.sample_reference_pairs(np.array([[0.0, -np.inf]]), 3, rng)
    with pytest.raises(ValueError, match="spread"):
        lmo.rescale_direction(np.ones((3, 2)), np.ones(2), 0.0)


@pytest.mark.parametrize("field, value", [("prompts", ("only one",)), ("words", ("a", "a")), ("users", ("x]",)),
                                          ("max_length", 1), ("spread", -1.0), ("seed", -1)])
def test_bad_world_configs_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        lmo.ConflictWorldConfig(**{field: value})


@pytest.mark.parametrize("field, value", [("mix", 0.5), ("etas", ()), ("n_comparisons", (1,)), ("steps", 0),
                                          ("lr", -1.0), ("n_weights", 1)])
def test_bad_study_configs_are_rejected(field, value):
    from benchmarks.conflict_llm import ConflictLLMConfig

    with pytest.raises(ValueError, match=field):
        ConflictLLMConfig(**{field: value})


# ---------------------------------------------------------------------------------------------
# The study, smoke


@pytest.mark.slow
def test_conflict_llm_smoke_runs_and_reports():
    from benchmarks.conflict_llm import METHODS, STUDY, configs, run
    from rlbandit.study import ReportContent

    config = configs(True)[0]
    frame = run(config)
    users = frame[frame["part"] == "users"]
    assert set(users["method"]) == set(METHODS) and set(users["user"]) == {"positive", "brief"}
    # Gibbs fact 2 per user, two computations: J_ν(π_ν*) − J_ν(π) = η E_x KL(π‖π_ν*) ≥ 0
    np.testing.assert_allclose(users["regret"], users["eta"] * users["kl_opt"], atol=1e-8)
    assert (users.loc[users["method"] == "reference", "kl_ref"].abs() < 1e-12).all()
    world_row = frame[frame["part"] == "world"].iloc[0]
    assert world_row["ref_tie"] == 0.0
    front = frame[frame["part"] == "front"]
    ends = front[np.isclose(front["t"], 0.0) | np.isclose(front["t"], 1.0)]
    # at a vertex every exact soup is the per-objective policy itself: same values
    for _, g in ends[ends["method"].isin(["geometric soup", "arithmetic soup"])].groupby("t"):
        assert np.ptp(g["J_w"]) < 1e-9
    content = STUDY.render(frame.assign(run_id="smoke"))
    assert isinstance(content, ReportContent) and content.tables and len(content.figures) == 2
    assert "conditioned" in content.summary
