"""The whole path in one place: image -> faces -> aligned chips -> embeddings (with caching).

Pages, the CLI and the API call this module rather than chaining the steps themselves, so a face is
always detected, aligned and embedded the same way everywhere. :func:`build_pipeline` is the one
factory: a :class:`~facecore.config.PipelineConfig` in, a ready ``FacePipeline`` out (the models
themselves load once per process and are shared).

``FacePipeline.embed_primary_faces`` gives one vector per image file (the face nearest the centre);
``embed_primary_faces_with_quality`` adds that face's ``facecore.quality.FaceQuality`` without a second
detection (its docstring says how cache hits are measured).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from facecore.alignment import align_face, alignment_version
from facecore.cache import CachedFaces, EmbeddingCache
from facecore.config import PipelineConfig
from facecore.detection import Detector, get_detector
from facecore.embedding import Embedder, get_embedder
from facecore.images import decode_image, image_hash, read_bytes
from facecore.quality import FaceQuality, face_quality
from facecore.types import EmbeddedFace, Face

Progress = Callable[[int, int], None]

# Where HOG puts the face in a median deep-funneled LFW image (250x250: x=67, y=80, w=109, h=108),
# as fractions of the image. Used as the face box when a detector finds nothing in an evaluation
# image, so every pair still gets a distance (as the LFW protocol requires); counted as no_face.
CENTER_BOX_FRACTIONS = (0.268, 0.320, 0.436, 0.432)
CENTER_BOX_FACE_NAME = "center-fallback"


class PrimaryFaces(NamedTuple):
    """:meth:`FacePipeline.embed_primary_faces_with_quality`'s answer, one entry per image."""

    embeddings: np.ndarray  # (n, dim) float32: the face nearest the centre, else the centre box
    no_face: np.ndarray  # (n,) bool: no face was detected (the centre box was embedded)
    qualities: list[FaceQuality | None]  # the chosen face's quality; None where no face was found


def center_box_face(shape: tuple[int, ...]) -> Face:
    """The documented fallback face box for an image where no face was found."""
    height, width = shape[:2]
    fx, fy, fw, fh = CENTER_BOX_FRACTIONS
    box = (round(fx * width), round(fy * height), round(fw * width), round(fh * height))
    return Face(box=box, score=0.0, landmarks=None, detector=CENTER_BOX_FACE_NAME)


def face_nearest_center(faces: Sequence[Face], shape: tuple[int, ...]) -> Face | None:
    """The face whose centre is nearest the image centre (LFW centres the labelled person)."""
    if not faces:
        return None
    cy, cx = shape[0] / 2.0, shape[1] / 2.0
    return min(faces, key=lambda f: (f.center[0] - cx) ** 2 + (f.center[1] - cy) ** 2)


class FacePipeline:
    """Detector + aligner + embedder, with an optional on-disk cache of per-image results."""

    def __init__(
        self,
        config: PipelineConfig | None = None,
        *,
        cache: EmbeddingCache | None = None,
        detector: Detector | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        """The models of ``config`` (shared per process); ``detector``/``embedder`` objects replace them.

        Cache keys come from the objects actually used (the detector's settings, the embedder's version),
        so a pipeline built around a custom detector never shares entries with another configuration.
        """
        self.config = config or PipelineConfig()
        self.detector = detector or get_detector(self.config.detector, **self.config.detector_options)
        self.embedder = embedder or get_embedder(self.config.embedder, **self.config.embedder_options)
        self.use_detector_landmarks = self.config.use_detector_landmarks
        self.cache = cache
        self._detector_key = self.detector.settings_key

    def with_cache(self, cache: EmbeddingCache | None) -> FacePipeline:
        """This pipeline's models and settings with another embedding cache (no model is loaded again)."""
        return FacePipeline(self.config, detector=self.detector, embedder=self.embedder, cache=cache)

    # ------------------------------------------------------------------ single images

    def embed_faces(self, image: np.ndarray, faces: Sequence[Face]) -> list[EmbeddedFace]:
        """Align and embed the given faces of ``image`` in one batch."""
        aligned = [
            align_face(image, face, chip=self.embedder.chip, use_detector_landmarks=self.use_detector_landmarks) for face in faces
        ]
        if not aligned:
            return []
        vectors = self.embedder.embed(np.stack([a.chip for a in aligned]))
        return [
            EmbeddedFace(face=a.face, embedding=v, chip=a.chip, alignment=a.method, landmarks=a.landmarks)
            for a, v in zip(aligned, vectors, strict=True)
        ]

    def process(self, image: np.ndarray) -> list[EmbeddedFace]:
        """Every face in a decoded RGB image, largest first, with chips and embeddings."""
        return self.embed_faces(image, self.detector.detect(image))

    def process_bytes(self, data: bytes) -> list[EmbeddedFace]:
        """Like :meth:`process` for encoded bytes, served from the cache when possible (no chips then)."""
        key = self.cache_key(image_hash(data), "all")
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            return [EmbeddedFace(f, e) for f, e in zip(hit.faces, hit.embeddings, strict=True)]
        found = self.process(decode_image(data))
        if self.cache is not None:
            self.cache.put(key, _to_cached(found, fallback=False, dim=self.embedder.dimension))
        return found

    # ------------------------------------------------------------------ datasets

    def cache_key(self, content_hash: str, mode: str) -> str:
        landmarks = "det-landmarks" if self.use_detector_landmarks else "dlib-landmarks"
        own_points = self.use_detector_landmarks and type(self.detector).gives_landmarks
        chip = alignment_version(self.embedder.chip, detector_landmarks=own_points)
        return "|".join((content_hash, self._detector_key, chip, landmarks, self.embedder.version, mode))

    def embed_primary_faces(
        self,
        paths: Sequence[str | Path],
        *,
        chunk_size: int = 64,
        progress: Progress | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One embedding per image: the face nearest the centre, else the centre box.

        Returns ``(embeddings (n, dim), no_face (n,) bool)``. Detection runs in batches (MTCNN
        gains from it), embedding in batches of the embedder's size; cached images are not decoded.
        """
        found = self._embed_primary(paths, chunk_size=chunk_size, progress=progress, with_quality=False)
        return found.embeddings, found.no_face

    def embed_primary_faces_with_quality(
        self,
        paths: Sequence[str | Path],
        *,
        chunk_size: int = 64,
        progress: Progress | None = None,
    ) -> PrimaryFaces:
        """:meth:`embed_primary_faces` plus the ``FaceQuality`` of each image's chosen face.

        ``qualities[i]`` is None where the image had no face (``no_face[i]``). The detector runs at most
        once per image: on a cache miss the quality is measured on the chip and landmarks just used for
        the embedding; on a cache hit the image is decoded and the cached face aligned again (no
        detection) to measure it. ``faces_in_photo`` is stored in new cache entries; a hit on an entry
        written before it was stored reports it as None (unknown).
        """
        return self._embed_primary(paths, chunk_size=chunk_size, progress=progress, with_quality=True)

    def _embed_primary(
        self, paths: Sequence[str | Path], *, chunk_size: int, progress: Progress | None, with_quality: bool
    ) -> PrimaryFaces:
        n = len(paths)
        embeddings = np.zeros((n, self.embedder.dimension), np.float32)
        no_face = np.zeros(n, bool)
        qualities: list[FaceQuality | None] = [None] * n
        done = 0
        for start in range(0, n, chunk_size):
            chunk = list(range(start, min(start + chunk_size, n)))
            contents = [read_bytes(paths[i]) for i in chunk]
            keys = [self.cache_key(image_hash(data), "primary") for data in contents]
            hits = self.cache.get_many(keys) if self.cache is not None else {}
            missing = [j for j, key in enumerate(keys) if key not in hits]
            fresh, fresh_qualities = self._primary_results([contents[j] for j in missing], with_quality=with_quality)
            if self.cache is not None and fresh:
                self.cache.put_many({keys[j]: result for j, result in zip(missing, fresh, strict=True)})
            results = dict(hits)
            results.update({keys[j]: result for j, result in zip(missing, fresh, strict=True)})
            measured = dict(zip(missing, fresh_qualities, strict=True))
            for j, i in enumerate(chunk):
                result = results[keys[j]]
                embeddings[i] = result.embeddings[0]
                no_face[i] = result.fallback
                if with_quality and not result.fallback:
                    qualities[i] = measured[j] if j in measured else self._cached_quality(contents[j], result)
            done += len(chunk)
            if progress is not None:
                progress(done, n)
        return PrimaryFaces(embeddings, no_face, qualities)

    def _cached_quality(self, data: bytes, cached: CachedFaces) -> FaceQuality:
        """The quality of a cache hit's face: the image decoded and the face aligned again, not detected."""
        aligned = align_face(
            decode_image(data), cached.faces[0], chip=self.embedder.chip, use_detector_landmarks=self.use_detector_landmarks
        )
        face = EmbeddedFace(aligned.face, cached.embeddings[0], aligned.chip, aligned.method, aligned.landmarks)
        return face_quality(face, cached.faces_in_photo)

    def _primary_results(
        self, contents: Sequence[bytes], *, with_quality: bool = False
    ) -> tuple[list[CachedFaces], list[FaceQuality | None]]:
        """The cache entries of uncached images, and (``with_quality``) their chosen faces' quality."""
        if not contents:
            return [], []
        images = [decode_image(data) for data in contents]
        detections = self.detector.detect_batch(images)
        chosen: list[Face] = []
        fallbacks: list[bool] = []
        for image, faces in zip(images, detections, strict=True):
            face = face_nearest_center(faces, image.shape)
            fallbacks.append(face is None)
            chosen.append(face if face is not None else center_box_face(image.shape))
        aligned = [
            align_face(image, face, chip=self.embedder.chip, use_detector_landmarks=self.use_detector_landmarks)
            for image, face in zip(images, chosen, strict=True)
        ]
        vectors = self.embedder.embed(np.stack([a.chip for a in aligned]))
        counts = [len(faces) for faces in detections]
        results = [
            CachedFaces(faces=(face,), embeddings=vector[None], fallback=fallback, faces_in_photo=count)
            for face, vector, fallback, count in zip(chosen, vectors, fallbacks, counts, strict=True)
        ]
        qualities: list[FaceQuality | None] = [
            face_quality(EmbeddedFace(a.face, vector, a.chip, a.method, a.landmarks), count)
            if with_quality and not fallback
            else None
            for a, vector, fallback, count in zip(aligned, vectors, fallbacks, counts, strict=True)
        ]
        return results, qualities


def _to_cached(found: Sequence[EmbeddedFace], *, fallback: bool, dim: int) -> CachedFaces:
    vectors = np.stack([f.embedding for f in found]) if found else np.zeros((0, dim), np.float32)
    return CachedFaces(faces=tuple(f.face for f in found), embeddings=vectors, fallback=fallback)


def build_pipeline(config: PipelineConfig | None = None, *, cache: EmbeddingCache | None = None) -> FacePipeline:
    """The one factory: the pipeline of ``config`` (default: ``PipelineConfig()``), models shared per process."""
    return FacePipeline(config, cache=cache)
