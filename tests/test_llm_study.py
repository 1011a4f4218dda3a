"""The ``llm`` study: configs, a reduced smoke sweep in both worlds (test-size LM), and its report."""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("transformers")
pytest.importorskip("sentence_transformers")

from benchmarks.llm import ALGORITHMS, ENHANCER_NAMES, STUDY, LLMConfig


def test_configs_cover_every_algorithm_and_enhancer():
    for smoke in (True, False):
        configs = STUDY.configs(smoke)
        assert {c.algorithm for c in configs} == set(ALGORITHMS)
        assert {c.enhancer for c in configs if c.algorithm == "iterative_dpo"} == set(ENHANCER_NAMES)
    smoke = STUDY.configs(True)
    assert all(c.iterations <= 2 and c.m <= 16 for c in smoke)
    with pytest.raises(ValueError, match="enhancer"):
        LLMConfig(algorithm="iterative_dpo", enhancer="nope")
    with pytest.raises(ValueError, match="enhancer"):
        LLMConfig(algorithm="ppo", enhancer="ucb")
    with pytest.raises(ValueError, match="algorithm"):
        LLMConfig(algorithm="nope")


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    small = dict(model="tiny", iterations=1, m=4, n_candidates=2, dpo_steps=2, ppo_steps=1, bon_max=2, pool_size=4,
                 eval_samples=1, max_new_tokens=8)
    configs = [c for c in STUDY.configs(True) if c.algorithm != "bridge"
               and (c.algorithm != "iterative_dpo" or c.enhancer in ("rejection", "ucb"))]
    frames = []
    with pytest.MonkeyPatch.context() as patch:  # the test-size LM is built in a temporary cache
        patch.setenv("RLBANDIT_CACHE", str(tmp_path_factory.mktemp("cache")))
        for config in configs:
            config = replace(config, **small)
            result = STUDY.run(config)
            for key, value in asdict(config).items():
                result[key] = value
            frames.append(result.assign(run_id=len(frames)))
    return pd.concat(frames, ignore_index=True)


def test_smoke_sweep_rows_in_both_worlds(frame):
    assert set(frame["world"]) == {"lm", "bandit"}
    for method in ("offline", "rejection", "ucb", "ppo", "best_of_n"):
        sub = frame[frame["method"] == method]
        assert set(sub["world"]) == {"lm", "bandit"}, method
        assert np.all(np.isfinite(sub["gold_reward"])), method
    bandit = frame[frame["world"] == "bandit"]
    assert (bandit["kl_to_ref"] >= -1e-12).all()
    bon = frame[(frame["method"] == "best_of_n") & (frame["world"] == "bandit")]
    assert (bon["kl_to_ref"] <= bon["kl_bound"] + 1e-12).all()  # exact BoN KL below log N − (N−1)/N
    start = frame[(frame["iteration"] == 0) & (frame["world"] == "lm") & (frame["method"] != "best_of_n")]
    assert np.allclose(start["kl_to_ref"], 0.0) and np.allclose(start["win_rate"], 0.5)


def test_report_has_tables_figures_and_numbers(frame):
    content = STUDY.render(frame)
    assert content.tables and content.tables[0][1].shape[0] >= 4
    names = {f.name for f in content.figures}
    assert {"learning_curves", "gold_vs_kl", "win_rate"} <= names
    assert "offline" in content.summary and any(ch.isdigit() for ch in content.summary)
    losses = dict(content.tables)["LM world: DPO loss types on the same offline data (last iteration, mean over seeds)"]
    assert set(losses["method"]) == {"dpo_sigmoid", "dpo_ipo", "dpo_hinge", "dpo_apo_zero"}
