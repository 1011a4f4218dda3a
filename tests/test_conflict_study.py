"""Smoke test of study ``conflict`` (benchmarks/conflict.py): ``configs(True)`` through ``STUDY.run`` and
``STUDY.render``, with the properties the study rests on."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from benchmarks.conflict import STUDY, ConflictConfig, configs, objective_thetas
from benchmarks.conflict_learning import HEADS


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    frames = []
    for config in configs(True):
        part = STUDY.run(config)
        for key, value in asdict(config).items():
            part[key] = [value] * len(part) if isinstance(value, tuple) else value
        frames.append(part)
    return pd.concat(frames, ignore_index=True)


def test_objective_thetas_have_the_angle_and_norm():
    thetas = objective_thetas(np.random.default_rng(0), 5, 4, 3.0, (0.0, 120.0, -120.0))
    norms = np.linalg.norm(thetas, axis=-1)
    np.testing.assert_allclose(norms, 3.0)
    cos = np.einsum("sd,sd->s", thetas[:, 0], thetas[:, 1]) / 9.0
    np.testing.assert_allclose(cos, np.cos(np.deg2rad(120.0)))
    cos23 = np.einsum("sd,sd->s", thetas[:, 1], thetas[:, 2]) / 9.0
    np.testing.assert_allclose(cos23, np.cos(np.deg2rad(240.0)))


def test_soups_against_the_front(frame):
    front = frame[frame["part"] == "front"]
    geo, ari = front[front["method"] == "geometric"], front[front["method"] == "arithmetic"]
    assert len(geo) and len(ari)
    assert geo["gap"].abs().max() < 1e-10  # the geometric soup of Gibbs policies is on the front
    interior = ari[(ari["t"] > 0) & (ari["t"] < 1)]
    assert (interior["gap"] > 0).all()
    assert (ari["gap"] >= -1e-12).all()


def test_price_of_sharing_is_nonnegative(frame):
    sharing = frame[frame["part"] == "sharing"]
    assert len(sharing)
    assert (sharing[["regret_1", "regret_2", "worst", "average"]] >= -1e-12).all().all()
    np.testing.assert_allclose(sharing["worst"], sharing[["regret_1", "regret_2"]].max(axis=1))
    # a wider angle costs the worst-off user more (same seeds and η)
    wide = sharing.groupby("psi")["worst"].mean()
    assert wide.iloc[-1] > wide.iloc[0]


def test_annotator_agreement_and_pooled_limit(frame):
    annot = frame[frame["part"] == "annotators"]
    assert len(annot)
    agreement = annot[[c for c in annot.columns if c.startswith("A_")] + ["agreement"]]
    assert ((agreement >= 0) & (agreement <= 1)).all().all()
    one_type = annot[annot["psi"] == 0]
    assert one_type["distance"].max() < 1e-6  # all types equal: pooled BT recovers θ*
    assert (annot[["gap_1", "gap_2", "gap_3"]] >= -1e-10).all().all()
    pooled = annot[annot["method"] == "pooled"].sort_values(["psi", "eta", "seed"])
    average = annot[annot["method"] == "average"].sort_values(["psi", "eta", "seed"])
    # O(φθ̄) maximises the ρ-average value, so the pooled-BT policy cannot beat it
    assert (pooled["gap_mean"].to_numpy() >= average["gap_mean"].to_numpy() - 1e-10).all()


def test_gate_learning_rows(frame):
    gate = frame[frame["part"] == "gate"]
    assert set(gate["heads"]) == set(HEADS)
    assert (gate[["regret", "price", "gate_error"]] >= 0).all().all()
    assert ((gate["gate_1"] >= 0) & (gate["gate_1"] <= 1)).all()
    # the exact price of sharing of these gates does not depend on the data or the heads
    assert gate.groupby(["psi", "eta", "seed", "user"])["price"].nunique().max() == 1
    # with the true heads, more comparisons per user give a smaller gate error (seed means, n = 10 vs 1000)
    true = gate[gate["heads"] == HEADS[0]].groupby("n")["gate_error"].mean()
    assert true.iloc[-1] < true.iloc[0]


def test_nash_part_rows(frame):
    nash = frame[frame["part"] == "nash"]
    exact = nash[np.isinf(nash["n"])]
    assert set(exact["method"]) == {"pooled", "average", "nash", "conditioned"}
    assert set(nash.loc[np.isfinite(nash["n"]), "method"]) == {"pooled", "nash", "conditioned"}
    gaps = nash[["gap_1", "gap_2", "gap_3"]]
    assert (gaps >= -1e-10).all().all()
    # exact heads and the type known: every type gets its own optimum
    assert exact.loc[exact["method"] == "conditioned", ["gap_1", "gap_2", "gap_3"]].abs().max().max() < 1e-10
    # one annotator type (ψ = 0): the pooled-BT limit is θ* itself
    assert exact.loc[(exact["psi"] == 0) & (exact["method"] == "pooled"), "gap_mean"].abs().max() < 1e-8
    # the exact pooled gaps are those of part ``annotators`` on the same seeds, angles and η
    annot = frame[(frame["part"] == "annotators") & (frame["method"] == "pooled")]
    both = exact[exact["method"] == "pooled"].merge(annot, on=["seed", "psi", "eta"], suffixes=("", "_a"))
    assert len(both) and np.allclose(both["gap_mean"], both["gap_mean_a"], atol=1e-8)


def test_pessimism_rows(frame):
    pess = frame[frame["part"] == "pessimism"]
    assert (pess["regret"] >= 0).all()
    assert set(pess.loc[pess["beta"] == 0, "method"]) == {"mle"}
    assert set(pess.loc[pess["beta"] > 0, "method"]) == {"lcb"}


def test_render(frame):
    content = STUDY.render(frame)
    assert "Front vs soups" in content.summary and "Price of sharing" in content.summary
    assert "Annotators" in content.summary and "Learning the gate" in content.summary
    assert "Nash" in content.summary and "pessimism" in content.summary
    assert len(content.tables) == 7
    assert {f.name for f in content.figures} >= {"front_and_soups", "price_of_sharing", "agreement_psi0",
                                                 "gate_regret", "gate_error", "nash_gaps", "pessimism"}


def test_config_validation():
    with pytest.raises(ValueError, match="part"):
        ConflictConfig(part="nope")
    with pytest.raises(ValueError, match="angles"):
        ConflictConfig(angles=(200.0,))
    with pytest.raises(ValueError, match="etas"):
        ConflictConfig(etas=(0.0,))
    with pytest.raises(ValueError, match="sizes"):
        ConflictConfig(part="gate", sizes=(0,))
    with pytest.raises(ValueError, match="gate_weight"):
        ConflictConfig(gate_weight=1.5)
    with pytest.raises(ValueError, match="betas"):
        ConflictConfig(betas=(-1.0,))
    with pytest.raises(ValueError, match="n_head"):
        ConflictConfig(n_head=0)
