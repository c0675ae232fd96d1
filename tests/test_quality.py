"""Face quality on real photos: the record's measures move the right way when a photo is downscaled,
blurred or turned, the gate refuses what misses the minimums, and the API returns the record and
refuses a poor enrolment unless told otherwise."""

from __future__ import annotations

import io
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.config import ApiConfig
from api.main import create_app
from facecore.config import PipelineConfig
from facecore.images import load_image
from facecore.pipeline import FacePipeline, build_pipeline
from facecore.quality import DEFAULT_MINIMUMS, QualityError, QualityGate, QualityMinimums, face_quality

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    return build_pipeline(PipelineConfig.interactive())


@pytest.fixture(scope="module")
def obama(faces_small) -> np.ndarray:
    return load_image(faces_small["obama"][0])


def largest_quality(pipeline: FacePipeline, image: np.ndarray):
    found = pipeline.process(image)
    assert found, "no face found"
    return face_quality(found[0], len(found))


def jpeg(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def test_a_sample_photo_meets_the_default_minimums(pipeline: FacePipeline, obama: np.ndarray) -> None:
    quality = largest_quality(pipeline, obama)
    assert DEFAULT_MINIMUMS.problems(quality) == []
    assert quality.faces_in_photo == 1 and quality.detector_score > 0
    assert abs(quality.roll_deg) < 10 and abs(quality.yaw) < 0.2 and quality.pitch > 0


def test_measures_follow_downscaling_blur_and_rotation(pipeline: FacePipeline, obama: np.ndarray) -> None:
    original = largest_quality(pipeline, obama)
    h, w = obama.shape[:2]
    half = largest_quality(pipeline, cv2.resize(obama, (w // 2, h // 2), interpolation=cv2.INTER_AREA))
    assert half.eye_distance_px == pytest.approx(original.eye_distance_px / 2, rel=0.15)
    blurred = largest_quality(pipeline, cv2.GaussianBlur(obama, (0, 0), 3.0))
    assert blurred.blur < original.blur / 3
    assert blurred.eye_distance_px == pytest.approx(original.eye_distance_px, rel=0.1)
    centre = (w / 2, h / 2)
    turned = cv2.warpAffine(obama, cv2.getRotationMatrix2D(centre, 20, 1.0), (w, h))  # counter-clockwise
    tilted = largest_quality(pipeline, turned)
    assert tilted.roll_deg - original.roll_deg == pytest.approx(-20, abs=5)


def test_the_gate_refuses_a_blurred_photo_and_lets_a_sharp_one_through(
    pipeline: FacePipeline, obama: np.ndarray
) -> None:
    gate = QualityGate(pipeline, DEFAULT_MINIMUMS)
    assert len(gate.process(obama)) == 1
    with pytest.raises(QualityError, match="blurred"):
        gate.process(cv2.GaussianBlur(obama, (0, 0), 10.0))
    strict = QualityGate(pipeline, QualityMinimums(max_faces_in_photo=0))
    with pytest.raises(QualityError, match="1 faces"):
        strict.process(obama)


def test_minimums_come_from_the_environment() -> None:
    found = QualityMinimums.from_env({"FACECORE_QUALITY_MIN_EYE_PX": "33", "FACECORE_QUALITY_MAX_FACES": "1"})
    assert found.min_eye_distance_px == 33 and found.max_faces_in_photo == 1
    assert found.min_blur == DEFAULT_MINIMUMS.min_blur
    with pytest.raises(ValueError, match="FACECORE_QUALITY_MIN_BLUR"):
        QualityMinimums.from_env({"FACECORE_QUALITY_MIN_BLUR": "sharp"})


def test_an_unknown_face_count_is_not_refused(pipeline: FacePipeline, obama: np.ndarray) -> None:
    """A batch face read from an old cache entry has no count (None); a maximum cannot refuse it."""
    (face,) = pipeline.process(obama)
    strict = QualityMinimums(max_faces_in_photo=1)
    assert strict.problems(face_quality(face, None)) == [] and face_quality(face, None).as_dict()["faces_in_photo"] is None
    assert "the photo has 2 faces" in strict.problems(face_quality(face, 2))[0]


def test_the_api_returns_the_record_and_refuses_a_poor_enrolment(
    tmp_path: Path, pipeline: FacePipeline, obama: np.ndarray
) -> None:
    blurred = jpeg(cv2.GaussianBlur(obama, (0, 0), 10.0))
    with TestClient(create_app(ApiConfig(gallery_root=tmp_path / "gallery"), pipeline)) as client:
        person = client.post("/people", json={"name": "Barack Obama"}).json()["id"]
        refused = client.post(f"/people/{person}/faces", files={"image": ("b.jpg", blurred, "image/jpeg")})
        assert refused.status_code == 422
        assert "blurred" in refused.json()["detail"] and "allow_low_quality" in refused.json()["detail"]
        assert client.get(f"/people/{person}").json()["face_count"] == 0
        forced = client.post(
            f"/people/{person}/faces",
            params={"allow_low_quality": "true"},
            files={"image": ("b.jpg", blurred, "image/jpeg")},
        )
        assert forced.status_code == 201 and any("blurred" in w for w in forced.json()["quality"]["warnings"])
        verified = client.post(
            "/verify", files={"image_a": ("a.jpg", jpeg(obama), "image/jpeg"), "image_b": ("b.jpg", blurred, "image/jpeg")}
        ).json()
        assert verified["face_a"]["quality"]["warnings"] == []
        assert any("blurred" in w for w in verified["face_b"]["quality"]["warnings"])
        assert verified["face_a"]["quality"]["eye_distance_px"] > DEFAULT_MINIMUMS.min_eye_distance_px
        assert not math.isnan(verified["face_b"]["quality"]["blur"])
