"""The stored LFW calibration is reproducible: every number in ``facecore/data/calibration.json`` comes
back from the stored pairs.txt distances (``facecore/data/lfw_distances.npz``), and those distances come
back from LFW's images through today's pipeline.

A stored entry measured on chips of another alignment version than today's is refused, and the default
threshold says why.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from facecore.alignment import CHIP_VERSIONS, MTCNN_TEMPLATE_VERSION
from facecore.config import PipelineConfig
from facecore.embedding import EMBEDDERS
from facecore.evaluation.datasets import read_lfw_pairs
from facecore.evaluation.lfw import embed_lfw_pairs
from facecore.verification.metrics import kfold_verification, paired_distances
from facecore.verification.thresholds import (
    CALIBRATION_FILE,
    DISTANCES_FILE,
    FALLBACK_THRESHOLDS,
    calibrated,
    current_alignment_version,
    default_threshold,
    find_calibration,
    load_calibrations,
    view1_choice,
)

ENTRIES = load_calibrations(CALIBRATION_FILE)
# pairs.txt: 10 folds of 600 consecutive pairs (300 same, then 300 different), in file order.
PAIRS_TXT_FOLDS = np.arange(6000) // 600
EXACT = 1e-9
# The npz keeps the distances as float32 while the calibration was computed on the float64 distances,
# so a threshold (a midpoint between two neighbouring distances) comes back to float32 precision
# (measured: at most 3.4e-8 relative). Accuracies, AUC and EER are counts and come back exactly.
FLOAT32_RELATIVE = float(np.finfo(np.float32).eps)


def _key(entry) -> str:
    return f"{entry.embedder}|{entry.detector}|{entry.metric}"


def _entry_id(entry) -> str:
    return _key(entry)


@pytest.fixture(scope="module")
def stored_distances() -> dict[str, np.ndarray]:
    with np.load(DISTANCES_FILE) as data:
        return {key: data[key] for key in data.files}


def test_every_pairs_txt_distance_set_has_its_calibration_entry(stored_distances):
    assert len(ENTRIES) == 44  # dlib: 4 detectors x plain/flip; ArcFace: scrfd plain/flip, mtcnn/hog/haar flip; x 4 metrics
    assert {_key(e) for e in ENTRIES} == set(stored_distances) - {"same"}
    same = stored_distances["same"]
    assert same.shape == (6000,)
    # pairs.txt's layout: in each fold the 300 same-person pairs come first.
    assert same.reshape(10, 600)[:, :300].all() and not same.reshape(10, 600)[:, 300:].any()


@pytest.mark.parametrize("entry", ENTRIES, ids=_entry_id)
def test_stored_entry_is_rederived_from_its_stored_distances(entry, stored_distances):
    distances = stored_distances[_key(entry)].astype(np.float64)
    assert distances.shape == (6000,)
    result = kfold_verification(distances, stored_distances["same"], folds=PAIRS_TXT_FOLDS)
    assert result.accuracy == pytest.approx(entry.accuracy, abs=EXACT)
    assert result.accuracy_std == pytest.approx(entry.accuracy_std, abs=EXACT)
    assert result.auc == pytest.approx(entry.auc, abs=EXACT)
    assert result.eer == pytest.approx(entry.eer, abs=EXACT)
    # kfold_verification's threshold is the mean of the 10 fold thresholds, as calibration.json says.
    assert result.threshold == pytest.approx(float(np.mean(result.fold_thresholds)), abs=EXACT)
    assert result.threshold == pytest.approx(entry.threshold, rel=FLOAT32_RELATIVE)


@pytest.mark.parametrize("entry", ENTRIES, ids=_entry_id)
def test_stored_entry_records_its_chip_alignment_and_command(entry):
    chip = EMBEDDERS.get("arcface-keras" if entry.embedder.startswith("arcface") else "dlib-keras").chip
    assert entry.chip == chip
    # The chip's geometry version, plus the landmark template's for dlib chips cut on a detector's points.
    assert entry.alignment_version == current_alignment_version(chip, entry.detector)
    if entry.detector == "mtcnn" and chip == "dlib150":
        assert entry.alignment_version == f"{CHIP_VERSIONS[chip]}+{MTCNN_TEMPLATE_VERSION}"
    else:
        assert entry.alignment_version == CHIP_VERSIONS[chip]
    assert entry.command.startswith(("python bench/lfw_benchmark.py ", "python bench/model_selection.py "))
    assert "--write-calibration" in entry.command
    assert entry.flip_tta == entry.embedder.endswith("+flip")
    # Settings are chosen on View 1 (view1_choice), so every configuration the dashboard offers has it.
    assert 0.5 < entry.view1_accuracy <= 1 and 0.5 < entry.view1_auc <= 1
    assert entry.view1_source.startswith("LFW View 1 (threshold fitted on pairsDevTrain, scored on pairsDevTest): ")


def test_view1_figures_and_portable_commands_are_what_the_tool_derives_from_the_stored_results():
    """tools/calibration_provenance.py --check: the View 1 figures are those of docs/results/ (the rows
    measured with each detector's own landmarks), and no stored command names a machine path."""
    result = subprocess.run(
        [sys.executable, "tools/calibration_provenance.py", "--check"],
        cwd=CALIBRATION_FILE.parents[2], capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # An example read by hand from docs/results/model_selection_arcface_detectors.json: MTCNN's own points.
    mtcnn = find_calibration("arcface_w600k_mbf-l2-keras+flip", "mtcnn", "euclidean")
    assert (mtcnn.view1_accuracy, mtcnn.view1_auc) == (0.995, 0.998276)
    # ... and from model_selection_dlib_view1.json: HOG gives no points, so its rows use dlib's 5-point ones.
    hog = find_calibration("dlib_resnet_v1-keras+flip", "hog", "cosine")
    assert (hog.view1_accuracy, hog.view1_auc) == (0.989, 0.999012)


def _stale_copy(tmp_path, detector: str, metric: str, flip: bool = False):
    """calibration.json with the one matching dlib-keras entry's alignment version altered."""
    rows = json.loads(CALIBRATION_FILE.read_text())
    altered = 0
    for row in rows:
        if (row["embedder"], row["detector"], row["metric"]) == (
            PipelineConfig(flip_tta=flip).model_version, detector, metric
        ):
            row["alignment_version"] = "chip150-p0.25-a0"
            altered += 1
    assert altered == 1
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(rows, indent=1))
    return path


def test_entry_with_another_alignment_version_is_refused(tmp_path):
    config = PipelineConfig(detector="hog")
    current = calibrated(config, "euclidean")
    assert current is not None and current.alignment_version == CHIP_VERSIONS["dlib150"]
    path = _stale_copy(tmp_path, "hog", "euclidean")
    stored = next(e for e in load_calibrations(path) if _key(e) == _key(current))
    assert dataclasses.replace(stored, alignment_version=current.alignment_version) == current

    assert calibrated(config, "euclidean", path) is None
    assert find_calibration(config.model_version, "hog", "euclidean", chip="dlib150", path=path) is None
    # The other entries of the same file are still used.
    assert calibrated(config, "cosine", path) == calibrated(config, "cosine")
    assert calibrated(PipelineConfig(detector="scrfd", embedder="arcface-keras"), "cosine", path) is not None

    choice = default_threshold(config, "euclidean", path)
    assert choice.calibration is None
    # The other detectors' entries for this model are current, so it falls back to one of them ...
    assert choice.value in {e.threshold for e in load_calibrations(path)
                            if e.embedder == config.model_version and e.metric == "euclidean" and e.detector != "hog"}
    # ... and says why the hog entry was not used.
    assert "chip150-p0.25-a0" in choice.source and CHIP_VERSIONS["dlib150"] in choice.source
    assert "python bench/lfw_benchmark.py" in choice.source
    assert default_threshold(config, "euclidean").value == current.threshold


def test_all_stale_entries_fall_back_to_dlibs_threshold_and_say_why(tmp_path):
    rows = json.loads(CALIBRATION_FILE.read_text())
    for row in rows:
        if row["chip"] == "dlib150":
            row["alignment_version"] = "chip150-p0.25-a0"
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(rows, indent=1))
    config = PipelineConfig(detector="mtcnn", flip_tta=True)
    choice = default_threshold(config, "cosine", path)
    assert choice.calibration is None
    assert choice.value == FALLBACK_THRESHOLDS["cosine"]
    assert "not used" in choice.source and "chip150-p0.25-a0" in choice.source
    assert view1_choice("dlib-keras", path) is None
    assert view1_choice("arcface-keras", path) == view1_choice("arcface-keras")


def test_settings_are_chosen_on_view1_and_reported_on_view2(tmp_path):
    """view1_choice ranks by View 1 accuracy, then View 1 AUC; pairs.txt (View 2) plays no part."""
    arcface = view1_choice("arcface-keras")
    # docs/results/model_selection_arcface_detectors.json: MTCNN + flip TTA, 99.50% on View 1 (euclidean,
    # squared euclidean and cosine tie on unit vectors; the first metric wins) ...
    chosen = (arcface.detector, arcface.flip_tta, arcface.metric, arcface.view1_accuracy)
    assert chosen == ("mtcnn", True, "euclidean", 0.995)
    # ... though SCRFD + flip TTA scores higher on pairs.txt: choosing there would pick it.
    scrfd = find_calibration("arcface_w600k_mbf-l2-keras+flip", "scrfd", "euclidean")
    assert scrfd.accuracy > arcface.accuracy and scrfd.view1_accuracy < arcface.view1_accuracy
    dlib = view1_choice("dlib-keras")
    assert (dlib.detector, dlib.flip_tta, dlib.metric, dlib.view1_accuracy) == ("mtcnn", True, "cosine", 0.989)
    # The oracle shares its Keras twin's entries, so its choice too.
    assert view1_choice("arcface-onnx") == arcface
    # Entries without View 1 figures are never chosen; a model with none has no choice.
    rows = json.loads(CALIBRATION_FILE.read_text())
    for row in rows:
        if (row["embedder"], row["detector"], row["metric"]) == (arcface.embedder, "mtcnn", "euclidean"):
            del row["view1_accuracy"], row["view1_auc"]
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(rows))
    assert view1_choice("arcface-keras", path).metric == "sqeuclidean"
    path = tmp_path / "without_view1.json"  # another name: load_calibrations caches by path
    path.write_text(json.dumps([{k: v for k, v in row.items() if not k.startswith("view1_")} for row in rows]))
    assert view1_choice("arcface-keras", path) is None and len(load_calibrations(path)) == len(ENTRIES)


def test_file_without_alignment_versions_loads_and_is_refused(tmp_path):
    rows = json.loads(CALIBRATION_FILE.read_text())
    for row in rows:
        for field in ("chip", "alignment_version", "command"):
            del row[field]
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(rows, indent=1))
    assert len(load_calibrations(path)) == len(ENTRIES)
    config = PipelineConfig(detector="hog")
    assert calibrated(config, "euclidean", path) is None
    choice = default_threshold(config, "euclidean", path)
    assert choice.value == FALLBACK_THRESHOLDS["euclidean"]
    assert "unrecorded" in choice.source


# Fresh embeddings of LFW images against the stored distances: the stored numbers are what today's
# pipeline gives. Measured on these 40 pairs (4 per fold, 2 same + 2 different): dlib with HOG (one
# image has no face and takes the centre box) max abs difference 3.3e-7 (euclidean), 1.0e-7 (cosine);
# ArcFace with SCRFD and flip 5.6e-8 / 4.7e-8: float32 storage and the CPU kernels. Any change of
# detector, alignment or model moves them by 1e-2 or more.
PIPELINE_DISTANCE_TOLERANCE = 1e-5
# MTCNN's stored distances (dlib, flip; 2026-11-30) are reproduced to 1e-5 on 37 of the 40 pairs; the
# three pairs with Abdullah_0001 or Aaron_Sorkin_0001/2 move by 0.0067, 0.0056 and 0.0014 (euclidean), the
# same in a fresh process and with other images sharing the detector's batch, so the cause lies in the
# run that stored them; the bound below is what is published in docs/benchmarks.md.
MTCNN_MOVED_PAIRS, MTCNN_MOVED_BY = 4, 0.01


#: Configurations re-embedded: dlib's own pipeline, ArcFace's View 2 headline, dlib's View 1 dashboard choice.
REEMBEDDED = (("hog", "dlib-keras", False), ("scrfd", "arcface-keras", True), ("mtcnn", "dlib-keras", True))


def test_stored_distances_are_reproduced_from_lfw_images(full_lfw_home, stored_distances):
    """One test for the three (one skip on a fresh clone, whose skips CI counts)."""
    all_pairs = read_lfw_pairs(full_lfw_home, "10_folds")
    for detector, embedder, flip in REEMBEDDED:
        config = PipelineConfig(detector=detector, embedder=embedder, flip_tta=flip)
        embedded = embed_lfw_pairs(full_lfw_home, config, limit=40)
        index = [all_pairs.index(p) for p in embedded.pairs]
        assert len(index) == 40 and len(set(PAIRS_TXT_FOLDS[index])) == 10
        assert embedded.embedder == config.model_version
        for metric in ("euclidean", "cosine"):
            fresh = paired_distances(embedded.a, embedded.b, metric=metric)
            stored = stored_distances[f"{config.model_version}|{detector}|{metric}"][index].astype(np.float64)
            moved = np.abs(fresh - stored) > PIPELINE_DISTANCE_TOLERANCE
            if detector == "mtcnn":
                assert moved.sum() <= MTCNN_MOVED_PAIRS, (config, metric, np.flatnonzero(moved))
                np.testing.assert_allclose(fresh, stored, rtol=0, atol=MTCNN_MOVED_BY, err_msg=str(config))
            else:
                np.testing.assert_allclose(fresh, stored, rtol=0, atol=PIPELINE_DISTANCE_TOLERANCE, err_msg=str(config))
        assert np.array_equal(stored_distances["same"][index], [p.same for p in embedded.pairs])


def test_mtcnn_entry_fitted_with_another_landmark_template_is_refused(tmp_path):
    """A dlib chip cut on MTCNN's points depends on MTCNN_5_TEMPLATE: an entry measured with an older
    template (t1 was fitted partly on pairs.txt's people) is stale, while HOG's entries are untouched."""
    rows = json.loads(CALIBRATION_FILE.read_text())
    config = PipelineConfig(detector="mtcnn", flip_tta=True)
    for row in rows:
        if (row["embedder"], row["detector"]) == (config.model_version, "mtcnn"):
            row["alignment_version"] = f"{CHIP_VERSIONS['dlib150']}+mtcnn5-t1"
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(rows, indent=1))
    assert calibrated(config, "cosine") is not None
    assert calibrated(config, "cosine", path) is None
    assert calibrated(PipelineConfig(detector="hog", flip_tta=True), "cosine", path) is not None
    assert "mtcnn5-t1" in default_threshold(config, "cosine", path).source
