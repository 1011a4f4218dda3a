"""DPO parity with trl 1.16's DPOTrainer: the same tiny model (policy ≠ reference), the same batch,
the same loss to float32 precision (tolerance: 1e-5 absolute + 1e-5 relative). trl 1.16's
``sigmoid`` ignores label_smoothing (cDPO is ``rlbandit.losses``' extension), so it is compared at ε = 0."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from llm.corpus import reviews
from llm.models import TinyLMConfig, default_model
from llm.trl_compat import our_dpo_loss, trl_dpo_loss

torch.set_num_threads(1)
TOL = dict(abs=1e-5, rel=1e-5)


@pytest.fixture(scope="module")
def models():
    ref = default_model(TinyLMConfig.tiny(steps=10), cache=False, progress=False)
    policy = default_model(TinyLMConfig.tiny(steps=40), cache=False, progress=False)  # same tokenizer, other weights
    assert ref.tokenizer.get_vocab() == policy.tokenizer.get_vocab()
    prompts, chosen, _ = reviews(6, np.random.default_rng(0))
    _, rejected, _ = reviews(6, np.random.default_rng(1))
    return policy, ref, (prompts, chosen, rejected)


@pytest.mark.parametrize("loss_type,smoothing", [("sigmoid", 0.0), ("ipo", 0.0), ("hinge", 0.0),
                                                 ("robust", 0.1), ("apo_zero", 0.0)])
def test_one_dpo_step_loss_equals_trl(models, tmp_path, loss_type, smoothing):
    policy, ref, (prompts, chosen, rejected) = models
    ours = our_dpo_loss(policy, prompts, chosen, rejected, ref_lm=ref, beta=0.1, loss_type=loss_type,
                        label_smoothing=smoothing)
    theirs = trl_dpo_loss(policy, prompts, chosen, rejected, ref_lm=ref, beta=0.1, loss_type=loss_type,
                          label_smoothing=smoothing, output_dir=str(tmp_path))
    assert ours == pytest.approx(theirs, **TOL)
    if loss_type == "sigmoid" and smoothing == 0.0:
        assert abs(ours - np.log(2)) > 1e-3  # the policy differs from the reference: a non-trivial loss
