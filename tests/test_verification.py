"""The one home of every decision: the rule, pairs, voters, identification, thresholds and the façade.

Real embeddings of real photos where a model is involved; small hand-made vectors where the point is
the arithmetic of a rule (each checked against the numbers written beside it).
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import facecore
import facecore.config
import facecore.verification.decisions
import facecore.verification.fusion
import facecore.verification.metrics
import facecore.verification.thresholds
from facecore.config import PipelineConfig
from facecore.types import Match
from facecore.verification import (
    UNKNOWN,
    Rule,
    accepts,
    default_threshold,
    identify_decision,
    verify,
    verify_against,
)
from facecore.verification.thresholds import calibrated, find_calibration, lfw_distances


@pytest.mark.parametrize(
    "module",
    [
        facecore.verification.decisions,
        facecore.verification.metrics,
        facecore.verification.thresholds,
        facecore.verification.fusion,
        facecore.config,
    ],
)
def test_docstring_examples_hold(module) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_the_rule_accepts_at_the_threshold_and_rejects_above_it() -> None:
    assert accepts(0.6, 0.6) is True
    assert accepts(0.6000001, 0.6) is False
    assert accepts(np.array([[0.1, 0.7], [0.6, 0.61]]), 0.6).tolist() == [[True, False], [True, False]]


def test_verify_with_cosine_uses_the_cosine_distance() -> None:
    verdict = verify(np.array([1.0, 0.0]), np.array([0.0, 2.0]), threshold=0.5, metric="cosine")
    assert verdict.distance == pytest.approx(1.0) and not verdict.same
    assert verdict.sentence() == "Different people: cosine distance 1.000 > threshold 0.500"


def test_voting_rules_can_disagree_and_each_says_why() -> None:
    probe = np.zeros(2)
    # one very close reference, two far ones: distances 0.1, 0.9, 1.0
    refs = np.array([[0.1, 0.0], [0.0, 0.9], [1.0, 0.0]])
    nearest = verify_against(probe, refs, threshold=0.6, rule=Rule.NEAREST)
    mean = verify_against(probe, refs, threshold=0.6, rule="mean")
    majority = verify_against(probe, refs, threshold=0.6, rule=Rule.MAJORITY)
    assert nearest.same and nearest.distance == pytest.approx(0.1)
    assert not mean.same and mean.distance == pytest.approx(2.0 / 3.0)
    assert not majority.same and (majority.votes, majority.voters) == (1, 3)
    assert mean.accept_fraction == pytest.approx(1 / 3)
    assert mean.distances == pytest.approx((0.1, 0.9, 1.0))
    assert majority.sentence().startswith("Different people: 1 of 3 references accept")


def test_verify_against_refuses_no_references_and_a_pair_rule_with_several() -> None:
    with pytest.raises(ValueError, match="no reference"):
        verify_against(np.zeros(2), np.zeros((0, 2)), threshold=0.6)
    with pytest.raises(ValueError, match="exactly one reference"):
        verify_against(np.zeros(2), np.zeros((2, 2)), threshold=0.6, rule=Rule.PAIR)


def _matches(*rows: tuple[str, float]) -> list[Match]:
    ids = {name: i for i, name in enumerate(dict.fromkeys(n for n, _ in rows), start=1)}
    return [Match(face_id=j, person_id=ids[n], person_name=n, distance=d) for j, (n, d) in enumerate(rows)]


def test_identification_names_the_nearest_and_reports_the_vote_beside_it() -> None:
    matches = _matches(("Ann", 0.30), ("Bob", 0.40), ("Bob", 0.45), ("Ann", 0.90))
    nearest = identify_decision(matches, threshold=0.6)
    vote = identify_decision(matches, threshold=0.6, rule="majority")
    assert (nearest.name, nearest.vote_winner, nearest.agrees) == ("Ann", "Bob", False)
    assert vote.name == "Bob" and vote.person_id == 2
    assert nearest.votes == {"Bob": 2, "Ann": 1}


def test_identification_says_unknown_when_nobody_is_within_the_threshold() -> None:
    result = identify_decision(_matches(("Ann", 0.7)), threshold=0.6)
    assert result.name == UNKNOWN and result.person_id is None and result.agrees
    assert identify_decision([], threshold=0.6).name == UNKNOWN
    with pytest.raises(ValueError, match="identification rules"):
        identify_decision([], threshold=0.6, rule="mean")


def test_default_threshold_is_the_calibrated_one_with_its_source() -> None:
    choice = default_threshold(PipelineConfig(detector="hog"), "euclidean")
    assert choice.calibration is not None
    assert choice.value == choice.calibration.threshold
    assert "mean of the fold thresholds" in choice.source
    assert "cross-validated accuracy of the procedure" in choice.source
    assert choice.calibration.embedder == PipelineConfig(detector="hog").model_version


def test_calibration_lookup_matches_the_embedder_too() -> None:
    flipped = PipelineConfig(detector="mtcnn", flip_tta=True)
    assert calibrated(flipped, "cosine").embedder == "dlib_resnet_v1-keras+flip"
    # The same detector and metric measured with another embedder version is not this calibration.
    # (ArcFace without flip was measured with SCRFD only; dlib's reference shares dlib-keras's, below.)
    assert find_calibration("dlib_resnet_v1-keras", "hog", "euclidean") is not None
    assert find_calibration("arcface_w600k_mbf-l2-keras", "hog", "euclidean") is None
    assert calibrated(PipelineConfig(detector="hog", embedder="arcface-keras"), "euclidean") is None
    assert lfw_distances(PipelineConfig(detector="hog", embedder="arcface-keras"), "euclidean") is None
    # Aligning with dlib's landmarks instead of the detector's was never calibrated either.
    assert calibrated(PipelineConfig(detector="mtcnn", use_detector_landmarks=False), "euclidean") is None


@pytest.mark.parametrize(
    ("oracle", "twin", "detector", "metric"),
    [
        ("arcface-onnx", "arcface-keras", "scrfd", "cosine"),
        ("dlib-onnx", "dlib-keras", "hog", "euclidean"),
        ("dlib", "dlib-keras", "mtcnn", "cosine"),
    ],
)
@pytest.mark.parametrize("flip", [False, True])
def test_an_onnxruntime_oracle_shares_its_keras_twins_calibration(oracle, twin, detector, metric, flip) -> None:
    """The oracles compute their Keras twin's vectors (tests/test_arcface_scrfd.py, tests/test_dlib_onnx.py),
    so they decide with its LFW threshold, not dlib's fallback (cosine 0.085 would reject ArcFace's genuine pairs)."""
    from facecore.verification.thresholds import FALLBACK_THRESHOLDS, calibration_version

    config, keras = (PipelineConfig(detector=detector, embedder=name, flip_tta=flip) for name in (oracle, twin))
    assert config.model_version != keras.model_version  # caches and the gallery still tell them apart
    assert calibration_version(config.model_version) == keras.model_version
    choice = default_threshold(config, metric)
    assert choice.calibration == calibrated(keras, metric) and choice.calibration is not None
    assert choice.value == default_threshold(keras, metric).value != FALLBACK_THRESHOLDS[metric]
    assert f"Calibrated on {twin}, which computes the same vectors as {oracle}" in choice.source
    assert np.array_equal(lfw_distances(config, metric)[0], lfw_distances(keras, metric)[0])
    # ArcFace's input-scaling suffix is kept: "+unit" maps to the Keras port's "+unit", never to "arcface".
    assert calibration_version("arcface_w600k_mbf-l2-onnx+unit+flip") == "arcface_w600k_mbf-l2-keras+unit+flip"


def test_an_uncalibrated_model_gets_the_fallback_and_says_so(tmp_path) -> None:
    model = tmp_path / "mine-0123456789ab.keras"
    model.write_bytes(b"not read for the version")
    config = PipelineConfig(embedder="keras-file", model_path=str(model))
    choice = default_threshold(config, "euclidean")
    assert choice.calibration is None and choice.value == 0.6
    assert "not calibrated for mine-0123456789ab.keras" in choice.source
    assert config.model_version.startswith("keras-file-") and not config.pretrained


def test_config_refuses_unknown_names_and_a_model_path_for_a_pretrained_model() -> None:
    with pytest.raises(ValueError, match="unknown detector 'nope'; choose one of: haar, hog, mtcnn"):
        PipelineConfig(detector="nope")
    with pytest.raises(ValueError, match="model_path"):
        PipelineConfig(model_path="x.keras")
    assert PipelineConfig.interactive().max_side == 800


def test_facade_embeds_and_verifies_real_photos(faces_small) -> None:
    a = facecore.face_embeddings(faces_small["obama"][0])[0]
    b = facecore.face_embeddings(faces_small["obama"][1])[0]
    c = facecore.face_embeddings(faces_small["biden"][0])[0]
    assert a.landmarks is not None and a.chip.shape == (150, 150, 3)
    same, different = facecore.verify(a, b), facecore.verify(a, c)
    threshold = default_threshold(PipelineConfig(), "euclidean").value
    assert same.same and same.threshold == threshold and same.distance < threshold
    assert not different.same and different.distance > threshold


# ----------------------------------------------------------------------------- fusion


def test_zscore_fusion_puts_two_scales_on_one_and_keeps_the_order_of_one_model() -> None:
    from facecore.verification.fusion import fit_zscore, zscore_fused

    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.2, 1.0, 50), rng.uniform(10, 30, 50)  # two models, very different scales
    scales = [fit_zscore(a), fit_zscore(b)]
    fused = zscore_fused([a, b], scales)
    assert abs(fused.mean()) < 1e-9  # both standardised on the same pairs: the mean z-score is 0
    only_a = zscore_fused([a, b], scales, weights=[1, 0])
    assert np.array_equal(np.argsort(only_a), np.argsort(a))
    with pytest.raises(ValueError, match="one scale per model"):
        zscore_fused([a, b], scales[:1])
    with pytest.raises(ValueError, match="every pair"):
        zscore_fused([a, b[:10]], scales)
    with pytest.raises(ValueError, match="non-negative"):
        zscore_fused([a, b], scales, weights=[1, -1])
    with pytest.raises(ValueError, match="equal"):
        fit_zscore(np.ones(5))


def test_concatenated_distance_is_the_weighted_sum_of_the_parts() -> None:
    from facecore.verification.fusion import concatenated
    from facecore.verification.metrics import paired_distances

    rng = np.random.default_rng(1)
    x1, y1 = rng.normal(size=(20, 128)), rng.normal(size=(20, 128))
    x2, y2 = rng.normal(size=(20, 512)), rng.normal(size=(20, 512))
    unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)  # noqa: E731
    d1 = paired_distances(unit(x1), unit(y1), "sqeuclidean")
    d2 = paired_distances(unit(x2), unit(y2), "sqeuclidean")
    fused = paired_distances(concatenated([x1, x2], [0.75, 0.25]), concatenated([y1, y2], [0.75, 0.25]), "sqeuclidean")
    np.testing.assert_allclose(fused, 2 * (0.75 * d1 + 0.25 * d2), rtol=1e-5)
    with pytest.raises(ValueError, match="zero vector"):
        concatenated([np.zeros((1, 3)), np.ones((1, 3))])


def test_the_stored_fusion_recipe_reads_back(tmp_path) -> None:
    from facecore.verification.fusion import FusedModel, FusionRecipe, read_fusion_recipe, write_fusion_recipe

    recipe = FusionRecipe(
        (FusedModel("dlib-keras", "mtcnn", "euclidean", True, 0.6, 0.2), FusedModel("arcface-keras", "scrfd", "cosine", True, 0.7, 0.3)),
        (0.5, 0.5), "LFW pairsDevTrain", "python bench/model_fusion.py --write",
    )  # fmt: skip
    assert read_fusion_recipe(tmp_path / "none.json") is None
    write_fusion_recipe(recipe, tmp_path / "fusion.json")
    assert read_fusion_recipe(tmp_path / "fusion.json") == recipe
    np.testing.assert_allclose(recipe.fuse([np.array([0.6]), np.array([1.0])]), [0.5])
