"""Evaluate one's own labelled photos with the same analysis as LFW.

Contract:

* :func:`evaluate_pairs` embeds every image of a :class:`~facecore.evaluation.own_pairs.PairSet` once
  (the face nearest the centre, else the centre box, exactly as for LFW:
  ``FacePipeline.embed_primary_faces``, through the embedding cache when given, reporting progress),
  measures one distance per pair and scores them with ``facecore.verification.metrics.kfold_verification``
  on stratified folds (``facecore.evaluation.lfw.fold_ids``: each class split by rank modulo k), so
  every fold's threshold is chosen on the other folds. The numbers depend only on the pairs, their
  order and the configuration: a folder and the pairs CSV of the same pairs in the same order give the
  same result.
* :class:`OwnEvaluation` carries the distances and labels, so every other view (histograms, ROC, FAR/FRR
  at a slider, TAR at fixed FARs, bootstrap of the procedure, failure cases) comes from
  ``facecore.evaluation.analysis`` on them; :meth:`OwnEvaluation.summary` has the same keys as
  ``LfwEvaluation.summary`` (what ``evaluate-lfw`` prints last) plus the set's name and pair counts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facecore.cache import EmbeddingCache
from facecore.config import PipelineConfig
from facecore.evaluation.datasets import Pair
from facecore.evaluation.lfw import N_FOLDS, fold_ids
from facecore.evaluation.own_pairs import PairSet
from facecore.pipeline import Progress, build_pipeline
from facecore.verification.decisions import accepts
from facecore.verification.metrics import KFoldResult, kfold_verification, paired_distances


@dataclass(frozen=True)
class OwnEvaluation:
    """Distances of every pair of a set of one's own and the k-fold result, plus what it took."""

    config: dict[str, Any]
    pair_set: PairSet
    distances: np.ndarray
    same: np.ndarray
    folds: np.ndarray
    result: KFoldResult
    images: int
    no_face: int
    seconds: float
    no_face_images: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The JSON-ready summary (the keys of ``LfwEvaluation.summary`` plus the set and its counts)."""
        return {
            **self.result.as_dict(),
            "pairs": len(self.pair_set.pairs),
            "images": self.images,
            "no_face": self.no_face,
            "seconds": round(self.seconds, 2),
            "set": self.pair_set.name,
            "genuine_pairs": self.pair_set.genuine,
            "impostor_pairs": self.pair_set.impostor,
        }

    def per_pair(self, threshold: float | None = None) -> pd.DataFrame:
        """One row per pair: names, truth, distance, fold and the decision at ``threshold``
        (the k-fold procedure's mean threshold when not given)."""
        used = self.result.threshold if threshold is None else threshold
        return pd.DataFrame(
            {
                "image_a": [p.image_a for p in self.pair_set.pairs],
                "image_b": [p.image_b for p in self.pair_set.pairs],
                "same": self.same.astype(int),
                "distance": self.distances,
                "fold": self.folds,
                "accepted": np.asarray(accepts(self.distances, used)).astype(int),
            }
        )


def evaluate_pairs(
    pair_set: PairSet,
    config: PipelineConfig | None = None,
    *,
    metric: str = "euclidean",
    n_folds: int = N_FOLDS,
    cache: EmbeddingCache | None = None,
    progress: Progress | None = None,
) -> OwnEvaluation:
    """Embed the set's images once and score its pairs with the k-fold protocol (thresholds on other folds)."""
    started = time.perf_counter()
    config = config or PipelineConfig()
    names = pair_set.images
    pipeline = build_pipeline(config, cache=cache)
    embeddings, no_face = pipeline.embed_primary_faces([pair_set.root / n for n in names], progress=progress)
    index = {n: i for i, n in enumerate(names)}
    pairs = pair_set.pairs
    a = embeddings[[index[p.image_a] for p in pairs]]
    b = embeddings[[index[p.image_b] for p in pairs]]
    distances = paired_distances(a, b, metric=metric)
    same = np.array([p.same for p in pairs])
    n_folds = max(2, min(n_folds, int(same.sum()), int((~same).sum())))
    folds = fold_ids([Pair(Path(p.image_a), Path(p.image_b), p.same, 0) for p in pairs], n_folds)
    result = kfold_verification(distances, same, folds=folds)
    described = {
        "dataset": pair_set.name,
        "protocol": f"{len(set(folds.tolist()))}-fold stratified, threshold chosen on the other folds",
        "detector": config.detector,
        "embedder": pipeline.embedder.version,
        "metric": metric,
        "flip_tta": config.flip_tta,
        "landmarks": "detector" if config.use_detector_landmarks else "dlib 5-point",
    }
    return OwnEvaluation(
        config=described,
        pair_set=pair_set,
        distances=distances,
        same=same,
        folds=folds,
        result=result,
        images=len(names),
        no_face=int(no_face.sum()),
        seconds=time.perf_counter() - started,
        no_face_images=[n for n, missing in zip(names, no_face, strict=True) if missing],
    )
