"""Every detector finds the faces of small photos: a photo with no face found whose shorter side is under
``SMALL_PHOTO_SIDE`` is searched again at twice the size (SCRFD enlarges small photos itself).

Measured on 40 full-LFW photos (every 120th person) at min_face_size 8, found without / with the second
pass: 80x80 thumbnails haar 36/39, hog 40/40, mtcnn 40/40; 92x112 tight portraits haar 38/38,
hog 38/40, mtcnn 34/40; scrfd 40/40 on both.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facecore.detection import get_detector
from facecore.detection.base import SMALL_PHOTO_SIDE
from facecore.images import load_image

N_PHOTOS = 40


@pytest.fixture(scope="module")
def photos(lfw_home) -> list[np.ndarray]:
    people = sorted((lfw_home / "lfw_home" / "lfw_funneled").iterdir())
    people = people[:: max(1, len(people) // N_PHOTOS)][:N_PHOTOS]
    return [load_image(sorted(person.glob("*.jpg"))[0]) for person in people]


def portrait(photo: np.ndarray, width: int = 92, height: int = 112) -> np.ndarray:
    """A tight crop around the face, shrunk like the small grey portraits of face sets such as ORL."""
    crop_w = photo.shape[1] // 2
    crop_h = round(crop_w * height / width)
    top, left = (photo.shape[0] - crop_h) // 2, (photo.shape[1] - crop_w) // 2
    return cv2.resize(photo[top : top + crop_h, left : left + crop_w], (width, height), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("name", ["haar", "hog", "mtcnn", "scrfd"])
@pytest.mark.parametrize("kind", ["thumbnail-80", "portrait-92x112"])
def test_small_photos_get_a_face(name: str, kind: str, photos: list[np.ndarray]) -> None:
    detector = get_detector(name, min_face_size=8)
    small = [
        cv2.resize(p, (80, 80), interpolation=cv2.INTER_AREA) if kind == "thumbnail-80" else portrait(p)
        for p in photos
    ]
    found = [detector.detect(image) for image in small]
    assert sum(bool(f) for f in found) >= 0.95 * len(small), f"{name}: {sum(map(bool, found))}/{len(small)}"
    for image, faces in zip(small, found, strict=True):
        for face in faces:  # boxes are in the small photo's own pixels
            x, y, w, h = face.box
            assert x >= 0 and y >= 0 and x + w <= image.shape[1] and y + h <= image.shape[0]


def test_the_second_pass_only_runs_for_small_photos() -> None:
    blank = np.full((SMALL_PHOTO_SIDE, SMALL_PHOTO_SIDE, 3), 127, np.uint8)
    detector = get_detector("hog")
    calls = []
    original = detector._detect  # noqa: SLF001
    try:
        detector._detect = lambda image, min_size: calls.append(image.shape) or original(image, min_size)  # noqa: SLF001
        assert detector.detect(blank) == []
        assert calls == [blank.shape]  # not small: one pass
        calls.clear()
        assert detector.detect(blank[:-1]) == []
        assert calls == [blank[:-1].shape, (2 * (SMALL_PHOTO_SIDE - 1), 2 * SMALL_PHOTO_SIDE, 3)]
    finally:
        del detector._detect  # noqa: SLF001
