"""Batch verification: a pairs CSV with its images in, one CSV row of answers per pair out, page by page.

Contract:

* The pairs are read whole first (``own_pairs.read_pairs_csv(labelled=False, max_pairs=MAX_PAIRS)``):
  a bad file fails before any row is written, so no partial output is ever taken as complete.
* Rows are then produced in pages of ``page_size`` pairs (:func:`verify_pages` yields one CSV text per
  page, the header first), so a caller can stream them; each page embeds only images it has not seen
  (``embed(paths) -> (embeddings, no_face)``, e.g. ``FacePipeline.embed_primary_faces``, through
  the embedding cache when the pipeline has one), so a photo used by many pairs is embedded once.
* Each row: ``image_a, image_b, distance, same_person`` (1/0, decided by
  ``facecore.verification.decisions.accepts`` with the deciding threshold), ``false_accept_rate`` and
  ``genuine_accept_rate`` (``operating_points.confidence_at`` on the deciding set; empty without one),
  ``operating_point``, ``note``, and ``same`` when the input had labels. A pair where either image has
  no face gets no distance and no decision, and a note naming the image.
* Then the quality of the face used from each image (:data:`QUALITY_COLUMNS`, appended after all the
  columns above so that readers by position or by name are unaffected): ``quality_a``/``quality_b``
  are ``ok`` or the problems ``facecore.quality.QualityMinimums.problems`` finds with the given
  ``minimums`` (default ``QualityMinimums.from_env()``), joined by ``"; "``; then the measurements, a
  and b side by side: ``eye_distance_px`` (1 decimal), ``sharpness`` (``FaceQuality.blur``, the
  Laplacian variance of the chip, 1 decimal), ``roll_deg`` (1 decimal), ``yaw`` (3 decimals) and
  ``faces_in_photo``. They are empty for an image without a face (its pair keeps its note), and
  ``faces_in_photo`` is empty when unknown (an embedding-cache entry older than the count). The
  measures themselves are ``facecore.quality.face_quality``'s; the embed function supplies them
  (``FacePipeline.embed_primary_faces_with_quality`` measures each image once, on the chip it embeds,
  or for a cache hit on the cached face aligned again, without detecting). An embed function that
  answers only ``(embeddings, no_face)`` leaves all the quality columns empty.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from facecore.evaluation.own_pairs import PairSet
from facecore.quality import FaceQuality, QualityMinimums
from facecore.verification.decisions import accepts
from facecore.verification.metrics import paired_distances
from facecore.verification.operating_points import Deciding, confidence_at

MAX_PAIRS = 100_000
PAGE_SIZE = 500
COLUMNS = (
    "image_a", "image_b", "distance", "same_person", "false_accept_rate", "genuine_accept_rate", "operating_point", "note",
)

QUALITY_COLUMNS = (
    "quality_a", "quality_b", "eye_distance_px_a", "eye_distance_px_b", "sharpness_a", "sharpness_b",
    "roll_deg_a", "roll_deg_b", "yaw_a", "yaw_b", "faces_in_photo_a", "faces_in_photo_b",
)

# (embeddings, no_face) or (embeddings, no_face, qualities), e.g. FacePipeline.embed_primary_faces_with_quality
Embed = Callable[[Sequence[Path]], tuple]


def _number(value: float, digits: int) -> str:
    return "" if math.isnan(value) else f"{value:.{digits}f}"


def _quality_cells(quality: FaceQuality | None, minimums: QualityMinimums) -> list[str]:
    """[verdict, eye distance, sharpness, roll, yaw, faces in photo] of one image; empty when not measured."""
    if quality is None:
        return [""] * 6
    problems = minimums.problems(quality)
    return [
        "; ".join(problems) if problems else "ok",
        _number(quality.eye_distance_px, 1),
        _number(quality.blur, 1),
        _number(quality.roll_deg, 1),
        _number(quality.yaw, 3),
        "" if quality.faces_in_photo is None else str(quality.faces_in_photo),
    ]


def _text(rows: list[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def verify_pages(
    pair_set: PairSet,
    embed: Embed,
    chosen: Deciding,
    *,
    metric: str = "euclidean",
    page_size: int = PAGE_SIZE,
    minimums: QualityMinimums | None = None,
) -> Iterator[str]:
    """The header, then one CSV text per page of ``page_size`` pairs (see the module docstring)."""
    minimums = QualityMinimums.from_env() if minimums is None else minimums
    labelled = any(p.same is not None for p in pair_set.pairs)
    yield _text([[*COLUMNS, *(["same"] if labelled else []), *QUALITY_COLUMNS]])
    # name -> (embedding, no face, the quality cells of its face)
    seen: dict[str, tuple[np.ndarray, bool, list[str]]] = {}
    for start in range(0, len(pair_set.pairs), page_size):
        page = pair_set.pairs[start : start + page_size]
        new = sorted({n for p in page for n in (p.image_a, p.image_b)} - seen.keys())
        if new:
            found = embed([pair_set.root / n for n in new])
            vectors, no_face = found[0], found[1]
            measured = found[2] if len(found) > 2 else [None] * len(new)
            seen.update(
                {
                    n: (v, bool(f), _quality_cells(None if f else q, minimums))
                    for n, v, f, q in zip(new, vectors, no_face, measured, strict=True)
                }
            )
        a = np.stack([seen[p.image_a][0] for p in page])
        b = np.stack([seen[p.image_b][0] for p in page])
        distances = paired_distances(a, b, metric=metric)
        rows = []
        for pair, distance in zip(page, distances, strict=True):
            missing = [n for n in (pair.image_a, pair.image_b) if seen[n][1]]
            label = [] if not labelled else ["" if pair.same is None else int(pair.same)]
            # a's and b's cells interleaved: quality_a, quality_b, eye_distance_px_a, eye_distance_px_b, ...
            quality = [cell for both in zip(seen[pair.image_a][2], seen[pair.image_b][2], strict=True) for cell in both]
            if missing:
                note = "no face found in " + " and ".join(dict.fromkeys(missing))
                rows.append([pair.image_a, pair.image_b, "", "", "", "", chosen.name, note, *label, *quality])
                continue
            found_rates = None if chosen.point is None else confidence_at(chosen.point, float(distance))
            rates = ["", ""] if found_rates is None else [f"{found_rates.far:.6g}", f"{found_rates.gar:.6g}"]
            decision = int(bool(accepts(float(distance), chosen.threshold)))
            rows.append(
                [pair.image_a, pair.image_b, f"{distance:.6f}", decision, *rates, chosen.name, "", *label, *quality]
            )
        yield _text(rows)
