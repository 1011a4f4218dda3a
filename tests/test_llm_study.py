"""The ``llm`` study: configs, its smoke sweep on the test-size LM (every method, every world) and
its report; the GPU-scale study shares run and report."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("transformers")
pytest.importorskip("sentence_transformers")
pytest.importorskip("peft")

from benchmarks.llm import ETA_METHODS, METHODS, PG_RECIPES, STUDY, LLMConfig  # noqa: E402


def test_configs_cover_every_method_and_share_one_budget():
    for smoke in (True, False):
        configs = STUDY.configs(smoke)
        assert {c.method for c in configs} == set(METHODS)
        for method in ETA_METHODS:
            assert all(c.eta > 0 for c in configs if c.method == method)
        # every method on every seed, at the largest η at least (the bands across seeds)
        for seed in {c.seed for c in configs}:
            assert {c.method for c in configs if c.seed == seed and c.eta in (0.0, max(c.eta for c in configs))} \
                == set(METHODS)
        # one data budget: every run of a seed sees the same comparisons and the same held-out prompts
        for seed in {c.seed for c in configs}:
            runs = [c for c in configs if c.seed == seed]
            assert len({(c.n_comparisons, c.train_prompts, c.eval_prompts, c.eval_samples) for c in runs}) == 1
            pg = [c for c in runs if c.method in PG_RECIPES]
            assert len({c.rm_queries for c in pg}) == 1
    full = STUDY.configs(False)
    assert {c.model for c in full} == {"smollm2-135m-instruct"} and {c.adaptation for c in full} == {"top"}
    assert all(c.model == "tiny" for c in STUDY.configs(True))


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="method"):
        LLMConfig(method="nope")
    with pytest.raises(ValueError, match="eta"):
        LLMConfig(method="best_of_n", eta=0.1)
    with pytest.raises(ValueError, match="eta"):
        LLMConfig(method="ppo", eta=0.0)
    with pytest.raises(ValueError, match="n_comparisons"):
        LLMConfig(n_comparisons=10, train_prompts=4)
    with pytest.raises(ValueError, match="model"):
        LLMConfig(model="gpt-5")
    with pytest.raises(ValueError, match="adaptation"):
        LLMConfig(adaptation="qlora")


def test_gpu_study_is_the_same_study_at_another_scale():
    from benchmarks.llm_gpu import STUDY as GPU

    assert GPU.run is STUDY.run and GPU.report is STUDY.report
    full = GPU.configs(False)
    assert {c.method for c in full} == set(METHODS) and {c.adaptation for c in full} == {"full"}
    assert min(c.n_comparisons for c in full) > max(c.n_comparisons for c in STUDY.configs(False))


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    frames = []
    with pytest.MonkeyPatch.context() as patch:  # the test-size LM is built in a temporary cache
        patch.setenv("RLBANDIT_CACHE", str(tmp_path_factory.mktemp("cache")))
        for config in STUDY.configs(True):
            result = STUDY.run(config)
            for key, value in asdict(config).items():
                if key not in result:
                    result[key] = value
            frames.append(result.assign(run_id=str(len(frames))))
    return pd.concat(frames, ignore_index=True)


def test_smoke_sweep_rows_in_every_world(frame):
    assert set(frame["world"]) == {"lm", "bandit", "seq_bridge"}
    lm = frame[frame["world"] == "lm"]
    assert set(lm["method"]) == set(METHODS) - {"bandit", "seq_bridge"}
    policies = lm[lm["method"].isin(("reference", "dpo", *PG_RECIPES, "rs_ft"))]
    for column in ("gold_reward", "proxy_reward", "kl_to_ref", "kl_to_ref_se", "win_rate", "length", "finished"):
        assert np.all(np.isfinite(policies[column])), column
    assert np.allclose(policies.loc[policies["method"] == "reference", "kl_to_ref"], 0.0)
    bon = lm[lm["method"] == "best_of_n"]
    assert bon["kl_is_bound"].all() and np.all(np.diff(bon.sort_values("n")["kl_to_ref"]) > 0)
    rm = lm[lm["method"] == "reward_model"]
    assert set(rm["reward_model"]) == {"phi_head", "lm_head"} and rm["heldout_accuracy"].between(0, 1).all()
    bandit = frame[frame["world"] == "bandit"]
    # the exact optimum beats the plug-in policy of the learned reward on the true objective
    assert (bandit.loc[bandit["policy"] == "gibbs_gold", "suboptimality"] <= 1e-12).all()
    assert (bandit["suboptimality"] >= -1e-12).all()


def test_report_reads_its_findings_from_its_tables(frame):
    content = STUDY.render(frame)
    titles = [t for t, _ in content.tables]
    assert titles[0].startswith("Held-out results")
    assert any(t.startswith("Budgets per run") for t in titles)
    assert any(t.startswith("Reward models") for t in titles)
    assert any(t.startswith("Sequence-level bridge") for t in titles)
    assert {f.name for f in content.figures} == {"pareto", "overoptimization"}
    final = dict(content.tables)[titles[0]]
    ref_gold = float(final.loc[final["method"] == "reference", "gold_reward"].iloc[0])
    assert f"{ref_gold:.3f}" in content.summary
    assert "has not yet run on a GPU" in content.notes
