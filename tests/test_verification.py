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
    assert find_calibration("dlib_resnet_v1-dlib", "hog", "euclidean") is None
    assert calibrated(PipelineConfig(detector="hog", embedder="dlib"), "euclidean") is None
    assert lfw_distances(PipelineConfig(detector="hog", embedder="dlib"), "euclidean") is None
    # Aligning with dlib's landmarks instead of the detector's was never calibrated either.
    assert calibrated(PipelineConfig(detector="mtcnn", use_detector_landmarks=False), "euclidean") is None


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
