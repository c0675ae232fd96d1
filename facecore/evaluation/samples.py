"""Fixed, reproducible face sets for the analysis pages: an LFW sample and LFW pairs, embedded once.

Every embedding goes through :meth:`FacePipeline.embed_primary_faces` with the on-disk
:class:`~facecore.cache.EmbeddingCache`, so the second look at the same sample costs only
reading and hashing the files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecore.cache import EmbeddingCache
from facecore.config import PipelineConfig
from facecore.evaluation.datasets import lfw_people
from facecore.evaluation.lfw import LfwEmbeddings, embed_lfw_pairs
from facecore.pipeline import FacePipeline, Progress
from facecore.verification.metrics import paired_distances


@dataclass(frozen=True)
class FaceSample:
    """Labelled faces: one embedding per image (the face nearest the centre)."""

    labels: list[str]
    paths: list[Path]
    embeddings: np.ndarray
    no_face: np.ndarray
    description: str

    def __len__(self) -> int:
        return len(self.labels)


def lfw_sample_paths(
    data_home: str | os.PathLike[str], n_people: int, per_person: int
) -> list[tuple[str, Path]]:
    """``(name, image)`` for ``n_people`` LFW people with at least ``per_person`` images each.

    The people are spread evenly over the alphabetical list of those who qualify (not just the
    first few names), and each contributes their first ``per_person`` images: the same call always
    gives the same faces, so their embeddings are served from the cache next time.
    """
    if n_people < 1 or per_person < 1:
        raise ValueError("n_people and per_person must be at least 1")
    people = lfw_people(data_home, min_images=per_person)
    if not people:
        raise ValueError(f"no LFW person has {per_person} or more images")
    names = sorted(people)
    picks = np.unique(np.linspace(0, len(names) - 1, min(n_people, len(names))).round().astype(int))
    return [(names[i], path) for i in picks for path in people[names[i]][:per_person]]


def embed_images(
    paths: list[Path], pipeline: FacePipeline, *, cache: EmbeddingCache | None = None, progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(embeddings, no_face)`` of the primary face of each image, through ``cache`` when given.

    ``pipeline``'s detector and embedder are reused (they load once per process); only the cache
    differs, so a page's shared pipeline can be used as is.
    """
    cached = pipeline.with_cache(cache if cache is not None else pipeline.cache)
    return cached.embed_primary_faces(paths, progress=progress)


def embed_face_files(
    paths: Sequence[str | os.PathLike[str]],
    pipeline: FacePipeline,
    *,
    chips: Sequence[bool] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(embeddings, no_face)`` of image files, one embedding each, in order.

    A photo gives its primary face (the one nearest the centre, else the centre box, flagged in
    ``no_face``); a file marked in ``chips`` is an aligned face chip (as the gallery stores them) and is
    embedded as it is. No on-disk cache: meant for a handful of faces.
    """
    from facecore.images import load_image

    is_chip = [False] * len(paths) if chips is None else [bool(c) for c in chips]
    if len(is_chip) != len(paths):
        raise ValueError(f"{len(paths)} paths but {len(is_chip)} chip flags")
    embeddings = np.zeros((len(paths), pipeline.embedder.dimension), np.float32)
    no_face = np.zeros(len(paths), bool)
    photos = [i for i, chip in enumerate(is_chip) if not chip]
    chip_rows = [i for i, chip in enumerate(is_chip) if chip]
    if photos:
        embeddings[photos], no_face[photos] = pipeline.embed_primary_faces([paths[i] for i in photos])
    if chip_rows:
        embeddings[chip_rows] = pipeline.embedder.embed(np.stack([load_image(paths[i]) for i in chip_rows]))
    return embeddings, no_face


def lfw_sample(
    data_home: str | os.PathLike[str],
    pipeline: FacePipeline,
    *,
    n_people: int = 10,
    per_person: int = 4,
    cache: EmbeddingCache | None = None,
    progress: Progress | None = None,
) -> FaceSample:
    """A fixed LFW sample (see :func:`lfw_sample_paths`) with its embeddings."""
    chosen = lfw_sample_paths(data_home, n_people, per_person)
    paths = [path for _, path in chosen]
    embeddings, no_face = embed_images(paths, pipeline, cache=cache, progress=progress)
    people = len({name for name, _ in chosen})
    return FaceSample(
        labels=[name.replace("_", " ") for name, _ in chosen],
        paths=paths,
        embeddings=embeddings,
        no_face=no_face,
        description=(
            f"LFW (deep-funneled), {people} people x {per_person} images, "
            f"{pipeline.detector.name} detector, {pipeline.embedder.version}"
        ),
    )


@dataclass(frozen=True)
class PairDistances:
    """LFW pairs with one distance per pair under one metric, plus what produced them."""

    embedded: LfwEmbeddings
    metric: str
    distances: np.ndarray
    same: np.ndarray
    folds: np.ndarray
    description: str


def lfw_pair_distances(
    data_home: str | os.PathLike[str],
    config: PipelineConfig,
    *,
    metric: str,
    subset: str = "10_folds",
    limit: int | None = None,
    cache: EmbeddingCache | None = None,
    progress: Progress | None = None,
) -> PairDistances:
    """Distances of LFW pairs (all of ``subset``, or a fold- and class-balanced ``limit``)."""
    embedded = embed_lfw_pairs(data_home, config, subset=subset, limit=limit, cache=cache, progress=progress)
    distances = paired_distances(embedded.a, embedded.b, metric=metric)
    same = np.array([p.same for p in embedded.pairs], dtype=bool)
    folds = np.array([p.fold for p in embedded.pairs], dtype=np.int64)
    return PairDistances(
        embedded=embedded,
        metric=metric,
        distances=distances,
        same=same,
        folds=folds,
        description=(
            f"LFW {subset} ({len(embedded.pairs):,} pairs), {config.detector} detector, {embedded.embedder}, "
            f"{metric} distance; {len(embedded.no_face_images)} of {len(embedded.images):,} images with no face found"
        ),
    )


@dataclass(frozen=True)
class PixelBaseline:
    """Accuracy of Gaussian naive Bayes on the raw pixels of a pair (the twin-CNN seed's baseline)."""

    accuracy: float
    train_pairs: int
    test_pairs: int
    description: str


def pixel_naive_bayes_baseline(
    data_home: str | os.PathLike[str], scratch_dir: str | os.PathLike[str]
) -> PixelBaseline:
    """GaussianNB fitted on LFW DevTrain and scored on DevTest, features = both 62x47 crops' pixels.

    Uses scikit-learn's own LFW pair crops (:func:`facecore.evaluation.datasets.sklearn_pixel_pairs`); a model
    that knows nothing about faces, to show what the embeddings add.
    """
    from sklearn.naive_bayes import GaussianNB

    from facecore.evaluation.datasets import sklearn_pixel_pairs

    train_x, train_y = sklearn_pixel_pairs(data_home, "dev_train", scratch_dir)
    test_x, test_y = sklearn_pixel_pairs(data_home, "dev_test", scratch_dir)
    model = GaussianNB().fit(train_x.reshape(len(train_x), -1), train_y)
    accuracy = float(model.score(test_x.reshape(len(test_x), -1), test_y))
    return PixelBaseline(
        accuracy=accuracy,
        train_pairs=len(train_y),
        test_pairs=len(test_y),
        description=(
            f"GaussianNB on raw gray pixels of both 62x47 crops (scikit-learn's LFW pairs), "
            f"trained on DevTrain ({len(train_y):,} pairs), scored on DevTest ({len(test_y):,} pairs)"
        ),
    )
