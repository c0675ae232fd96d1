"""Unit tests of the analysis helpers: orderings, tables, projections and the fixed LFW sample.

The metric tables are checked against facecore.verification.metrics on small hand-made arrays; the orderings
and projections on real embeddings of a fixed LFW sample (shared by the module, cached on disk).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facecore.config import PipelineConfig
from facecore.evaluation.analysis import (
    all_pairs,
    calibration_table,
    cluster_order,
    confusion_table,
    failure_cases,
    identity_blocks,
    identity_order,
    nearest_neighbours,
    operating_points,
    procedure_summary_with_ci,
    summary_with_ci,
)
from facecore.evaluation.projection import project, umap_available
from facecore.verification.metrics import rates_at_threshold, roc_auc, tar_at_far
from facecore.verification.thresholds import load_calibrations


@pytest.fixture(scope="module")
def sample(lfw_home: Path, tmp_path_factory: pytest.TempPathFactory):
    """4 LFW people x 3 images, hog + dlib-keras, embedded once into a module cache."""
    from facecore.cache import EmbeddingCache
    from facecore.evaluation.samples import lfw_sample
    from facecore.pipeline import FacePipeline

    cache = EmbeddingCache(tmp_path_factory.mktemp("analysis_cache"))
    return lfw_sample(lfw_home, FacePipeline(PipelineConfig(detector="hog")), n_people=4, per_person=3, cache=cache)


@pytest.fixture
def toy_pairs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    genuine = rng.normal(0.4, 0.08, 300)
    impostor = rng.normal(0.8, 0.08, 700)
    return np.concatenate([genuine, impostor]), np.concatenate([np.ones(300, bool), np.zeros(700, bool)])


# ----------------------------------------------------------------------------- orderings


def test_identity_order_groups_names_and_keeps_order_within_a_name() -> None:
    labels = ["b", "a", "b", "c", "a"]
    order = identity_order(labels)
    assert [labels[i] for i in order] == ["a", "a", "b", "b", "c"]
    assert list(order) == [1, 4, 0, 2, 3]
    assert identity_blocks([labels[i] for i in order]) == [("a", 0, 2), ("b", 2, 4), ("c", 4, 5)]


def test_cluster_order_puts_each_lfw_identity_together(sample) -> None:
    from facecore.verification.metrics import pairwise_distances

    order = cluster_order(pairwise_distances(sample.embeddings))
    assert sorted(order) == list(range(len(sample)))
    # Every identity forms one contiguous run: the model separates these 4 people.
    runs = identity_blocks([sample.labels[i] for i in order])
    assert len(runs) == len(set(sample.labels))


def test_cluster_order_rejects_non_square_input() -> None:
    with pytest.raises(ValueError, match="square"):
        cluster_order(np.zeros((3, 4)))


def test_lfw_sample_is_fixed_and_labelled(sample, lfw_home: Path) -> None:
    from facecore.evaluation.samples import lfw_sample_paths

    again = lfw_sample_paths(lfw_home, 4, 3)
    assert [p for _, p in again] == sample.paths
    assert len(set(sample.labels)) == 4 and len(sample) == 12
    assert sample.embeddings.shape == (12, 128)
    assert "LFW" in sample.description and "hog" in sample.description


# ----------------------------------------------------------------------------- pairs and tables


def test_all_pairs_counts_genuine_pairs(sample) -> None:
    pairs = all_pairs(sample.embeddings, sample.labels)
    assert pairs.distances.size == 12 * 11 // 2
    assert int(pairs.same.sum()) == 4 * 3  # 3 pairs within each of 4 people
    assert pairs.distances[pairs.same].mean() < pairs.distances[~pairs.same].mean()


def test_operating_points_agree_with_tar_at_far(toy_pairs) -> None:
    d, same = toy_pairs
    table = operating_points(d, same)
    assert list(table["target FAR"]) == [0.1, 0.01, 0.001]
    for row in table.to_dict("records"):
        tar, threshold = tar_at_far(d, same, row["target FAR"])
        assert row["TAR"] == tar and row["threshold"] == threshold
        assert row["FAR reached"] <= row["target FAR"]
    assert list(table["measurable"]) == [True, True, False]  # 700 impostors cannot measure 0.1%
    assert table["TAR"].is_monotonic_decreasing


def test_summary_with_ci_brackets_each_value(toy_pairs) -> None:
    d, same = toy_pairs
    table = summary_with_ci(d, same, 0.6, n_boot=100).set_index("metric")
    assert table.loc["AUC", "value"] == pytest.approx(roc_auc(d, same))
    assert table.loc["accuracy", "value"] == pytest.approx(rates_at_threshold(d, same, 0.6).accuracy)
    for _, row in table.iterrows():
        assert row["95% CI low"] <= row["value"] <= row["95% CI high"]


def test_procedure_summary_with_ci_covers_the_fixed_threshold_estimate(toy_pairs) -> None:
    d, same = toy_pairs
    fixed = summary_with_ci(d, same, 0.6, n_boot=100).set_index("metric")
    table = procedure_summary_with_ci(d, same, n_boot=100).set_index("metric")
    assert list(table.index) == ["accuracy", "FAR", "FRR", "TAR", "threshold"]
    assert table.equals(procedure_summary_with_ci(d, same, n_boot=100).set_index("metric"))
    for _, row in table.iterrows():
        assert row["95% CI low"] <= row["value"] <= row["95% CI high"]
    accuracy = table.loc["accuracy"]
    assert accuracy["95% CI low"] <= fixed.loc["accuracy", "value"] <= accuracy["95% CI high"]
    assert 0.5 < table.loc["threshold", "value"] < 0.7  # between the two classes' means (0.4, 0.8)
    assert table.loc["FRR", "value"] + table.loc["TAR", "value"] == pytest.approx(1.0)


def test_confusion_table_counts(toy_pairs) -> None:
    d, same = toy_pairs
    table = confusion_table(d, same, 0.6)
    r = rates_at_threshold(d, same, 0.6)
    assert table.loc["same person", "accepted"] == r.tp and table.loc["different people", "accepted"] == r.fp
    assert table.to_numpy().sum() == d.size


def test_failure_cases_are_the_worst_mistakes() -> None:
    d = np.array([0.2, 0.9, 0.3, 0.55, 0.7, 0.5])
    same = np.array([True, True, False, False, True, False])
    cases = failure_cases(d, same, threshold=0.6, k=2)
    accepts = cases[cases["kind"] == "false accept"]
    rejects = cases[cases["kind"] == "false reject"]
    assert list(accepts["pair"]) == [2, 5]  # impostors at 0.3 and 0.5: the closest first
    assert list(rejects["pair"]) == [1, 4]  # genuine at 0.9 then 0.7
    assert (cases["margin"] > 0).all()
    assert failure_cases(d, same, threshold=-1.0)["kind"].eq("false reject").all()


def test_nearest_neighbours_of_a_real_face_are_the_same_person(sample) -> None:
    table = nearest_neighbours(sample.embeddings, sample.labels, index=0, k=3)
    assert 0 not in table["face"].tolist()
    assert table["distance"].is_monotonic_increasing
    assert table["same identity"].iloc[0]
    with pytest.raises(IndexError):
        nearest_neighbours(sample.embeddings, sample.labels, index=99)


def test_calibration_table_has_one_row_per_stored_configuration() -> None:
    entries = load_calibrations()
    table = calibration_table(entries)
    assert len(table) == len(entries)
    assert table["accuracy"].is_monotonic_decreasing
    assert calibration_table([]).empty


# ----------------------------------------------------------------------------- projections


@pytest.mark.parametrize("method", ["PCA", "t-SNE"])
@pytest.mark.parametrize("dims", [2, 3])
def test_projection_shapes_and_determinism(sample, method: str, dims: int) -> None:
    first = project(sample.embeddings, method, dims, seed=0)
    assert first.shape == (len(sample), dims) and np.isfinite(first).all()
    np.testing.assert_allclose(project(sample.embeddings, method, dims, seed=0), first)


def test_pca_keeps_identities_apart(sample) -> None:
    coords = project(sample.embeddings, "PCA", 2)
    labels = np.array(sample.labels)
    centres = {name: coords[labels == name].mean(axis=0) for name in set(sample.labels)}
    within = np.mean([np.linalg.norm(c - centres[n]) for c, n in zip(coords, labels, strict=True)])
    between = np.mean([np.linalg.norm(a - b) for a in centres.values() for b in centres.values() if a is not b])
    assert within < between


def test_projection_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least"):
        project(np.zeros((2, 128)), "PCA", 2)
    with pytest.raises(ValueError, match="unknown"):
        project(np.random.default_rng(0).normal(size=(10, 4)), "MDS", 2)
    with pytest.raises(ValueError, match="NaN"):
        project(np.full((10, 4), np.nan), "PCA", 2)


@pytest.mark.skipif(not umap_available(), reason="umap-learn is not installed")
def test_umap_projects_real_embeddings(sample) -> None:
    coords = project(sample.embeddings, "UMAP", 2)
    assert coords.shape == (len(sample), 2) and np.isfinite(coords).all()


def test_pixel_baseline_is_far_below_the_model(full_lfw_home: Path, tmp_path: Path) -> None:
    from facecore.evaluation.samples import pixel_naive_bayes_baseline
    from facecore.verification.thresholds import calibrated

    baseline = pixel_naive_bayes_baseline(full_lfw_home, tmp_path)  # View 1: DevTrain and DevTest
    assert (baseline.train_pairs, baseline.test_pairs) == (2200, 1000)
    assert 0.0 < baseline.accuracy < calibrated(PipelineConfig(detector="hog"), "euclidean").accuracy - 0.2
