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
* ``quality`` is not computed here (face quality is another module's work).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from facecore.evaluation.own_pairs import PairSet
from facecore.verification.decisions import accepts
from facecore.verification.metrics import paired_distances
from facecore.verification.operating_points import Deciding, confidence_at

MAX_PAIRS = 100_000
PAGE_SIZE = 500
COLUMNS = (
    "image_a", "image_b", "distance", "same_person", "false_accept_rate", "genuine_accept_rate", "operating_point", "note",
)

Embed = Callable[[Sequence[Path]], tuple[np.ndarray, np.ndarray]]


def _text(rows: list[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def verify_pages(
    pair_set: PairSet, embed: Embed, chosen: Deciding, *, metric: str = "euclidean", page_size: int = PAGE_SIZE
) -> Iterator[str]:
    """The header, then one CSV text per page of ``page_size`` pairs (see the module docstring)."""
    labelled = any(p.same is not None for p in pair_set.pairs)
    yield _text([[*COLUMNS, *(["same"] if labelled else [])]])
    seen: dict[str, tuple[np.ndarray, bool]] = {}
    for start in range(0, len(pair_set.pairs), page_size):
        page = pair_set.pairs[start : start + page_size]
        new = sorted({n for p in page for n in (p.image_a, p.image_b)} - seen.keys())
        if new:
            vectors, no_face = embed([pair_set.root / n for n in new])
            seen.update({n: (v, bool(f)) for n, v, f in zip(new, vectors, no_face, strict=True)})
        a = np.stack([seen[p.image_a][0] for p in page])
        b = np.stack([seen[p.image_b][0] for p in page])
        distances = paired_distances(a, b, metric=metric)
        rows = []
        for pair, distance in zip(page, distances, strict=True):
            missing = [n for n in (pair.image_a, pair.image_b) if seen[n][1]]
            label = [] if not labelled else ["" if pair.same is None else int(pair.same)]
            if missing:
                note = "no face found in " + " and ".join(dict.fromkeys(missing))
                rows.append([pair.image_a, pair.image_b, "", "", "", "", chosen.name, note, *label])
                continue
            found = None if chosen.point is None else confidence_at(chosen.point, float(distance))
            rates = ["", ""] if found is None else [f"{found.far:.6g}", f"{found.gar:.6g}"]
            decision = int(bool(accepts(float(distance), chosen.threshold)))
            rows.append([pair.image_a, pair.image_b, f"{distance:.6f}", decision, *rates, chosen.name, "", *label])
        yield _text(rows)
