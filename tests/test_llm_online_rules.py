"""llm.online's pair rules follow the enhancer contract of rlbandit.enhancers: each takes an
EnhancerInput over a prompt's candidates (plus π0's draw in the last slot) and returns an
Enhancement whose one-hot marginals are the pair its sampler returns."""

import numpy as np
import pytest

from llm.online import ENHANCERS, _candidate_state
from rlbandit.enhancers import ENHANCERS as BANDIT_ENHANCERS
from rlbandit.enhancers import Enhancement, EnhancerOptions


@pytest.fixture
def state():
    rng = np.random.default_rng(0)
    return _candidate_state(rng.standard_normal((5, 4)), rng.uniform(0, 2, (5, 4)), 0.7)


@pytest.mark.parametrize("name", sorted(ENHANCERS))
def test_rules_return_an_enhancement_whose_marginals_are_the_sampled_pair(state, name):
    assert name in BANDIT_ENHANCERS  # one vocabulary across the worlds
    out = ENHANCERS[name](state, EnhancerOptions(), np.random.default_rng(1))
    assert isinstance(out, Enhancement) and out.logprobs1.shape == out.logprobs2.shape == (1, 5, 5)
    first, second = out.sampler(np.arange(5)[None], np.random.default_rng(2))
    np.testing.assert_array_equal(out.logprobs1[0].argmax(-1), first[0])
    np.testing.assert_array_equal(out.logprobs2[0].argmax(-1), second[0])
    assert (first[0] != second[0]).all() and (first[0] < 4).all()
    assert ((second[0] == 4) == (name == "reference")).all()  # only reference asks for π0's draw


def test_rejection_is_best_against_worst_and_ucb_adds_the_bonus(state):
    scores, u = state.scores[0, :, :4], state.uncertainty[0, :, :4]
    first, second = ENHANCERS["rejection"](state, EnhancerOptions(), None).sampler(np.arange(5)[None], None)
    np.testing.assert_array_equal(first[0], scores.argmax(-1))
    np.testing.assert_array_equal(second[0], scores.argmin(-1))
    _, second = ENHANCERS["ucb"](state, EnhancerOptions(), None).sampler(np.arange(5)[None], None)
    np.testing.assert_array_equal(second[0], (scores + 0.7 * u)[:, 1:].argmax(-1) + 1)
