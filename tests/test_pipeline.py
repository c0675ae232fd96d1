"""The whole path on real photos: same person closer than different people, caching, odd inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from facecore.cache import EmbeddingCache
from facecore.config import PipelineConfig
from facecore.images import read_bytes
from facecore.pipeline import CENTER_BOX_FACE_NAME, FacePipeline, center_box_face, face_nearest_center
from facecore.types import Face
from facecore.verification.metrics import pairwise_distances, roc_auc


@pytest.fixture(scope="module")
def hog_pipeline() -> FacePipeline:
    return FacePipeline(PipelineConfig(detector="hog"))


@pytest.fixture(scope="module")
def small_set_embeddings(hog_pipeline, faces_small) -> tuple[np.ndarray, list[str]]:
    vectors, labels = [], []
    for person, photos in faces_small.items():
        for photo in photos:
            found = hog_pipeline.process_bytes(read_bytes(photo))
            assert found, f"no face found in {photo}"
            vectors.append(found[0].embedding)  # largest face
            labels.append(person)
    return np.stack(vectors), labels


def test_same_person_is_closer_than_different_people(small_set_embeddings):
    vectors, labels = small_set_embeddings
    distances = pairwise_distances(vectors)
    genuine, impostor = [], []
    for i, j in itertools.combinations(range(len(labels)), 2):
        (genuine if labels[i] == labels[j] else impostor).append(distances[i, j])
    genuine, impostor = np.array(genuine), np.array(impostor)
    assert len(genuine) >= 8 and len(impostor) >= 100
    # Every genuine pair is closer than every impostor pair, and dlib's 0.6 rule holds on both sides.
    assert genuine.max() < impostor.min()
    assert genuine.max() < 0.6 < impostor.min()
    same = np.r_[np.ones(len(genuine), bool), np.zeros(len(impostor), bool)]
    assert roc_auc(np.r_[genuine, impostor], same) == 1.0


def test_group_photo_gives_one_embedding_per_face(hog_pipeline, faces_group):
    from facecore.images import load_image

    image = load_image(faces_group[0])
    found = hog_pipeline.process(image)
    assert len(found) >= 2
    for item in found:
        assert item.chip.shape == (150, 150, 3)
        assert item.embedding.shape == (128,)
    # Different people in one photo are far apart.
    assert pairwise_distances(np.stack([f.embedding for f in found]))[0, 1] > 0.6


def test_image_without_a_face_gives_no_embeddings(hog_pipeline):
    sky = np.zeros((300, 400, 3), np.uint8)
    sky[:] = (110, 160, 230)
    assert hog_pipeline.process(sky) == []


def test_process_bytes_is_served_from_cache(tmp_path, faces_small):
    cache = EmbeddingCache(tmp_path)
    pipeline = FacePipeline(PipelineConfig(detector="hog"), cache=cache)
    data = read_bytes(faces_small["biden"][0])
    first = pipeline.process_bytes(data)
    assert len(cache) == 1
    second = pipeline.process_bytes(data)
    assert second[0].chip is None  # came from the cache, not recomputed
    assert second[0].face.box == first[0].face.box
    np.testing.assert_allclose(second[0].embedding, first[0].embedding)


def test_primary_face_falls_back_to_center_box(tmp_path, hog_pipeline):
    from PIL import Image

    # Smooth noise (no face for HOG), lossless, so every box cuts a different chip.
    rng = np.random.default_rng(7)
    coarse = rng.integers(0, 256, (25, 25, 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(coarse).resize((250, 250), Image.BILINEAR))
    path = tmp_path / "no_face.png"
    Image.fromarray(image).save(path)
    assert hog_pipeline.detector.detect(image) == []

    embeddings, no_face = hog_pipeline.embed_primary_faces([path])
    assert no_face.tolist() == [True]
    assert embeddings.shape == (1, 128)
    # With quality: the same vector, and no quality for a face that was not found.
    found = hog_pipeline.embed_primary_faces_with_quality([path])
    assert found.no_face.tolist() == [True] and found.qualities == [None]
    np.testing.assert_array_equal(found.embeddings, embeddings)
    # The vector is the one of the chip aligned on the documented centre box ...
    (centre,) = hog_pipeline.embed_faces(image, [center_box_face(image.shape)])
    assert centre.face.detector == CENTER_BOX_FACE_NAME
    np.testing.assert_allclose(embeddings[0], centre.embedding, rtol=0, atol=1e-6)
    # ... and not of any other box: one shifted by 30 px gives another vector (measured distance 0.31).
    x, y, w, h = center_box_face(image.shape).box
    (shifted,) = hog_pipeline.embed_faces(image, [Face(box=(x + 30, y, w, h), score=0.0, landmarks=None, detector="x")])
    assert np.linalg.norm(shifted.embedding - centre.embedding) > 0.05


def test_center_box_and_nearest_face_helpers():
    box = center_box_face((250, 250, 3))
    assert box.detector == CENTER_BOX_FACE_NAME
    assert box.box == (67, 80, 109, 108)
    assert face_nearest_center([], (10, 10)) is None


def test_cache_keys_follow_the_detector_settings_however_the_detector_is_given() -> None:
    # A page's pipeline reused with another cache must not share entries with a detector that
    # looks at the photo differently (e.g. shrunk to 800 px instead of 1,600 px).
    shrunk = FacePipeline(PipelineConfig(detector="hog", max_side=800))
    reused = FacePipeline(detector=shrunk.detector, embedder=shrunk.embedder)
    assert reused.cache_key("abc", "primary") == shrunk.cache_key("abc", "primary")
    assert FacePipeline(PipelineConfig(detector="hog")).cache_key("abc", "primary") != shrunk.cache_key("abc", "primary")
