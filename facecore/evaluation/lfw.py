"""LFW evaluation: the standard pairs protocol over the full pipeline, from raw images."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facecore.cache import EmbeddingCache
from facecore.config import PipelineConfig
from facecore.evaluation.datasets import Pair, read_lfw_pairs, unique_images
from facecore.pipeline import FacePipeline, Progress, build_pipeline
from facecore.verification.metrics import KFoldResult, kfold_verification, paired_distances

N_FOLDS = 10


@dataclass(frozen=True)
class LfwEvaluation:
    """Distances of every pair and the 10-fold verification result, plus what it took."""

    config: dict[str, Any]
    pairs: list[Pair]
    distances: np.ndarray
    same: np.ndarray
    folds: np.ndarray
    result: KFoldResult
    images: int
    no_face: int
    seconds: float
    no_face_images: list[Path] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The JSON-ready summary the CLI prints last."""
        return {
            **self.result.as_dict(),
            "pairs": len(self.pairs),
            "images": self.images,
            "no_face": self.no_face,
            "seconds": round(self.seconds, 2),
        }


def select_pairs(pairs: list[Pair], limit: int | None) -> list[Pair]:
    """At most ``limit`` pairs, balanced over folds and over same/different pairs, in file order."""
    if limit is None or limit >= len(pairs):
        return list(pairs)
    groups: dict[tuple[int, bool], list[Pair]] = {}
    for pair in pairs:
        groups.setdefault((pair.fold, pair.same), []).append(pair)
    per_group = max(1, limit // len(groups))
    chosen = {id(p) for members in groups.values() for p in members[:per_group]}
    return [p for p in pairs if id(p) in chosen][:limit]


def fold_ids(pairs: list[Pair], n_folds: int = N_FOLDS) -> np.ndarray:
    """LFW's own folds when the file has them; else stratified folds (rank within class mod k)."""
    folds = np.array([p.fold for p in pairs])
    if len(set(folds.tolist())) >= 2:
        return folds
    same = np.array([p.same for p in pairs])
    assigned = np.zeros(len(pairs), int)
    for label in (True, False):
        members = np.flatnonzero(same == label)
        assigned[members] = np.arange(len(members)) % n_folds
    return assigned


@dataclass(frozen=True)
class LfwEmbeddings:
    """The chosen LFW pairs and the embeddings of both sides of each pair."""

    pairs: list[Pair]
    images: list[Path]
    a: np.ndarray
    b: np.ndarray
    no_face_images: list[Path]
    embedder: str


def embed_lfw_pairs(
    data_home: str | Path,
    config: PipelineConfig | None = None,
    *,
    subset: str = "10_folds",
    limit: int | None = None,
    cache: EmbeddingCache | None = None,
    progress: Progress | None = None,
    pipeline: FacePipeline | None = None,
) -> LfwEmbeddings:
    """Embed every image of the chosen LFW pairs once (through the cache when given).

    LFW's photos are 250 px, so they are always detected at full size (``max_side`` is dropped from
    ``config``): the dashboard's and the CLI's runs then share cache entries. ``pipeline``, when given,
    is used as it is instead (with its own cache), e.g. one with an embedder built with options
    ``PipelineConfig`` does not carry.
    """
    pairs = select_pairs(read_lfw_pairs(data_home, subset), limit)
    images = unique_images(pairs)
    if pipeline is None:
        pipeline = build_pipeline((config or PipelineConfig()).replace(max_side=None), cache=cache)
    embeddings, no_face = pipeline.embed_primary_faces(images, progress=progress)
    index = {path: i for i, path in enumerate(images)}
    return LfwEmbeddings(
        pairs=pairs,
        images=images,
        a=embeddings[[index[p.path_a] for p in pairs]],
        b=embeddings[[index[p.path_b] for p in pairs]],
        no_face_images=[p for p, missing in zip(images, no_face, strict=True) if missing],
        embedder=pipeline.embedder.version,
    )


def score_lfw_pairs(embedded: LfwEmbeddings, metric: str = "euclidean") -> tuple[np.ndarray, np.ndarray, np.ndarray, KFoldResult]:
    """``(distances, same, folds, k-fold result)`` of embedded pairs under one distance metric."""
    distances = paired_distances(embedded.a, embedded.b, metric=metric)
    same = np.array([p.same for p in embedded.pairs])
    folds = fold_ids(embedded.pairs)
    return distances, same, folds, kfold_verification(distances, same, folds=folds)


def evaluate_lfw(
    data_home: str | Path,
    config: PipelineConfig | None = None,
    *,
    metric: str = "euclidean",
    subset: str = "10_folds",
    limit: int | None = None,
    cache: EmbeddingCache | None = None,
    progress: Progress | None = None,
) -> LfwEvaluation:
    """Embed every image of the chosen LFW pairs and score them with the k-fold protocol.

    Thresholds are always chosen on the training folds, never on the pairs they score.
    """
    started = time.perf_counter()
    config = config or PipelineConfig()
    embedded = embed_lfw_pairs(data_home, config, subset=subset, limit=limit, cache=cache, progress=progress)
    distances, same, folds, result = score_lfw_pairs(embedded, metric)
    described = {
        "dataset": "LFW (deep-funneled)",
        "subset": subset,
        "protocol": f"{len(set(folds.tolist()))}-fold, threshold chosen on the other folds",
        "detector": config.detector,
        "embedder": embedded.embedder,
        "metric": metric,
        "flip_tta": config.flip_tta,
        "landmarks": "detector" if config.use_detector_landmarks else "dlib 5-point",
    }
    return LfwEvaluation(
        config=described,
        pairs=embedded.pairs,
        distances=distances,
        same=same,
        folds=folds,
        result=result,
        images=len(embedded.images),
        no_face=len(embedded.no_face_images),
        seconds=time.perf_counter() - started,
        no_face_images=embedded.no_face_images,
    )
