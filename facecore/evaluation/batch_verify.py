"""Batch verification: a pairs CSV with its images in, one CSV row of answers per pair out, page by page.

Contract:

* The pairs are read whole first (``own_pairs.read_pairs_csv(labelled=False, max_pairs=MAX_PAIRS)``):
  a bad file fails before any row is written.
* No partial answer is taken as complete: after the last row :func:`verify_pages` yields one trailer
  line, ``#complete,<n>`` (:func:`trailer`; ``n`` = the rows above it = the pairs asked). An answer cut
  short (an image that cannot be decoded raises ``facecore.images.ImageError``, its message starting
  with the image's name, mid-stream; a dropped connection) ends without it. :func:`check_complete` is
  the reader's side: it gives the CSV text without the trailer, or raises :class:`IncompleteBatch` with
  a sentence when the trailer is missing or its count disagrees with the rows (or with the pairs the
  caller asked). A :class:`BatchTally` passed to :func:`verify_pages` counts what was answered as it
  goes (accepted, rejected, without a face, the distances, whether it completed), for the audit log.
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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facecore.evaluation.own_pairs import PairSet
from facecore.images import ImageError, load_image
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
#: The first cell of the trailer line that ends every complete answer: ``#complete,<rows>``.
TRAILER = "#complete"


class IncompleteBatch(ValueError):
    """An answer that is not complete (no trailer, or a trailer whose count disagrees); its message says why."""


def trailer(rows: int) -> str:
    """The last line of a complete answer of ``rows`` rows."""
    return f"{TRAILER},{int(rows)}\n"


def check_complete(text: str, expected: int | None = None) -> str:
    """``text`` (a whole answer: header, rows, trailer) without its trailer line, or :class:`IncompleteBatch`.

    Complete means: the last line is ``#complete,<n>``, ``n`` equals the rows between the header and
    it, and (when given) ``n == expected``, the pairs asked.
    """
    lines = list(csv.reader(io.StringIO(text)))
    if not lines:
        raise IncompleteBatch("The answer is empty: not even the header arrived, so it is not complete.")
    rows = len(lines) - 1  # without the header
    last = lines[-1]
    if len(last) != 2 or last[0] != TRAILER:
        raise IncompleteBatch(
            f"The answer stops after {rows} row(s) without its last line '{TRAILER},<rows>': it was cut short, "
            "so it is not complete."
        )
    rows -= 1  # without the trailer
    if not last[1].isdigit() or int(last[1]) != rows:
        raise IncompleteBatch(
            f"The answer's last line says {last[1]!r} rows but {rows} came before it, so it is not complete."
        )
    if expected is not None and rows != expected:
        raise IncompleteBatch(f"The answer has {rows} row(s) for {expected} pairs asked, so it is not complete.")
    body = text.rstrip("\n")
    return body[: body.rfind("\n") + 1]


@dataclass
class BatchTally:
    """What :func:`verify_pages` has answered so far, updated page by page."""

    pairs: int = 0  # asked
    answered: int = 0  # rows produced
    accepted: int = 0
    rejected: int = 0
    no_face: int = 0
    distances: list[float] = field(default_factory=list)
    completed: bool = False  # every pair answered (the trailer follows)

    def summary(self) -> dict[str, int | float | bool | None]:
        """A small JSON-ready record: the counts, min / median / max distance (None without one), completed."""
        d = np.asarray(self.distances, dtype=float)
        spread = (None, None, None) if d.size == 0 else (float(d.min()), float(np.median(d)), float(d.max()))
        return {
            "pairs": self.pairs, "answered": self.answered, "accepted": self.accepted, "rejected": self.rejected,
            "no_face": self.no_face, "distance_min": spread[0], "distance_median": spread[1],
            "distance_max": spread[2], "completed": self.completed,
        }



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


def _naming_the_image(error: ImageError, root: Path, names: Sequence[str]) -> ImageError:
    """``error`` (from embedding a page) with the name of the first of ``names`` that cannot be loaded."""
    for name in names:
        try:
            load_image(root / name)
        except ImageError as found:
            return ImageError(f"{name}: {found}")
    return error


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
    tally: BatchTally | None = None,
) -> Iterator[str]:
    """The header, one CSV text per page of ``page_size`` pairs, then the trailer (see the module docstring)."""
    minimums = QualityMinimums.from_env() if minimums is None else minimums
    tally = BatchTally() if tally is None else tally
    tally.pairs = len(pair_set.pairs)
    labelled = any(p.same is not None for p in pair_set.pairs)
    yield _text([[*COLUMNS, *(["same"] if labelled else []), *QUALITY_COLUMNS]])
    # name -> (embedding, no face, the quality cells of its face)
    seen: dict[str, tuple[np.ndarray, bool, list[str]]] = {}
    for start in range(0, len(pair_set.pairs), page_size):
        page = pair_set.pairs[start : start + page_size]
        new = sorted({n for p in page for n in (p.image_a, p.image_b)} - seen.keys())
        if new:
            try:
                found = embed([pair_set.root / n for n in new])
            except ImageError as error:
                raise _naming_the_image(error, pair_set.root, new) from error
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
                tally.no_face += 1
                continue
            found_rates = None if chosen.point is None else confidence_at(chosen.point, float(distance))
            rates = ["", ""] if found_rates is None else [f"{found_rates.far:.6g}", f"{found_rates.gar:.6g}"]
            decision = int(bool(accepts(float(distance), chosen.threshold)))
            rows.append(
                [pair.image_a, pair.image_b, f"{distance:.6f}", decision, *rates, chosen.name, "", *label, *quality]
            )
            tally.accepted += decision
            tally.rejected += 1 - decision
            tally.distances.append(float(distance))
        tally.answered += len(rows)
        yield _text(rows)
    tally.completed = True
    yield trailer(tally.answered)
