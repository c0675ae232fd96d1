"""LFW evaluation through the full pipeline, and the command line that prints it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from facecore.cache import EmbeddingCache
from facecore.config import PipelineConfig
from facecore.evaluation.datasets import read_lfw_pairs
from facecore.evaluation.lfw import evaluate_lfw, fold_ids, select_pairs

SUMMARY_KEYS = {
    "accuracy", "accuracy_std", "auc", "eer", "tar_at_far_1e-3", "threshold", "pairs", "images", "no_face", "seconds",
}


@pytest.fixture(scope="module")
def lfw_cache(tmp_path_factory) -> EmbeddingCache:
    return EmbeddingCache(tmp_path_factory.mktemp("lfw-cache"))


@pytest.fixture(scope="module")
def subset_evaluation(lfw_home, lfw_cache):
    """600 pairs of pairs.txt (30 same + 30 different from each of the 10 folds), HOG + Keras port."""
    return evaluate_lfw(lfw_home, PipelineConfig(detector="hog"), limit=600, cache=lfw_cache)


def test_lfw_subset_accuracy(subset_evaluation):
    summary = subset_evaluation.summary()
    assert summary["pairs"] == 600
    assert summary["accuracy"] >= 0.985, summary
    assert summary["auc"] >= 0.99, summary
    assert 0.4 < summary["threshold"] < 0.7  # dlib's published operating point is 0.6
    assert summary["no_face"] <= 0.02 * summary["images"]


def test_lfw_subset_keeps_the_official_folds(subset_evaluation):
    folds = subset_evaluation.folds
    assert sorted(set(folds.tolist())) == list(range(10))
    assert all((folds == k).sum() == 60 for k in range(10))
    assert subset_evaluation.same.sum() == 300


def test_warm_cache_gives_identical_numbers_without_recomputing(lfw_home, lfw_cache, subset_evaluation):
    stored = len(lfw_cache)
    again = evaluate_lfw(lfw_home, PipelineConfig(detector="hog"), limit=600, cache=lfw_cache)
    assert len(lfw_cache) == stored
    np.testing.assert_array_equal(again.distances, subset_evaluation.distances)
    assert again.seconds < subset_evaluation.seconds


def test_select_pairs_balances_folds_and_labels(lfw_home):
    pairs = read_lfw_pairs(lfw_home, "10_folds")
    chosen = select_pairs(pairs, 100)
    assert len(chosen) == 100
    assert sum(p.same for p in chosen) == 50
    assert {p.fold for p in chosen} == set(range(10))
    assert select_pairs(pairs, None) == pairs


def test_dev_pairs_get_stratified_folds(lfw_home):
    pairs = read_lfw_pairs(lfw_home, "dev_test")
    folds = fold_ids(pairs)
    same = np.array([p.same for p in pairs])
    for k in range(10):
        assert same[folds == k].sum() == 50 and (~same[folds == k]).sum() == 50


def _run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "facecore", *args], capture_output=True, text=True, timeout=600, cwd=cwd
    )


def test_cli_evaluate_lfw_prints_json_last(lfw_home, tmp_path):
    done = _run_cli(
        "evaluate-lfw", "--data-home", str(lfw_home), "--detector", "haar", "--pairs", "dev_test",
        "--limit", "100", "--cache-dir", str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert set(summary) == SUMMARY_KEYS
    assert summary["pairs"] == 100
    assert summary["accuracy"] > 0.9
    assert "accuracy" in lines[0] or any("accuracy" in line for line in lines[:-1])


def test_cli_embed_prints_one_json_object_per_face(faces_small, faces_group, tmp_path):
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("this is not a photo")
    photo, group = faces_small["obama"][0], faces_group[0]
    done = _run_cli("embed", str(photo), str(group), str(not_an_image), "--json")
    assert done.returncode == 1  # one input failed, the others were still embedded
    records = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert sum(r["image"] == str(photo) for r in records) == 1
    assert sum(r["image"] == str(group) for r in records) >= 2
    for record in records:
        assert len(record["embedding"]) == 128 and len(record["box"]) == 4
    assert "notes.jpg" in done.stderr and "image" in done.stderr.lower()
    assert "Traceback" not in done.stderr
