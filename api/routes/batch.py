"""Batch verification: ``POST /verify/batch`` (a pairs CSV and a zip of its images in, a CSV streamed out).

Contract: the CSV (``image_a,image_b`` and optionally ``same``; at most
``facecore.evaluation.batch_verify.MAX_PAIRS`` rows, at most ``MAX_CSV_BYTES``) and the zip (within
the API's zip limit) are checked whole before anything is answered: a bad file is a 4xx with a
sentence and no rows. The answer is ``text/csv`` streamed page by page
(``facecore.evaluation.batch_verify.verify_pages``), decided with the threshold
``api.calibration.deciding`` chooses, named in the ``X-Operating-Point`` header (where it comes from in
``X-Threshold-Source``, its value in ``X-Threshold``) and on every row. ``X-Total-Pairs`` says how many
rows a complete answer has, and a complete answer ends with the trailer line ``#complete,<rows>``
(``batch_verify.trailer``); one cut short after the status was sent (an image that cannot be decoded,
a failure mid-stream) ends without it, which ``batch_verify.check_complete`` reports. Header values
are ASCII: other characters are written as backslash escapes (``\\xe9`` for é). Each row ends with
the quality of the face used from each image (``batch_verify.QUALITY_COLUMNS``), judged against the
API's minimums (``ApiConfig.quality``, i.e. ``QualityMinimums.from_env``); the detector runs once per
image (``Engine.embed_primary_faces_with_quality``).

Audit: one entry per batch, written when the stream ends (completed, failed or abandoned by the
client), with ``BatchTally.summary``: pairs asked and answered, accepted, rejected, without a face,
min / median / max distance, ``completed``; and the operating point's name.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, UploadFile
from fastapi.responses import StreamingResponse

from api.audit import AuditDep
from api.calibration import deciding
from api.config import METRIC
from api.errors import ERRORS, read_upload
from api.routes.common import EngineDep, ThresholdQuery
from facecore.evaluation.batch_verify import MAX_PAIRS, BatchTally, verify_pages
from facecore.evaluation.own_pairs import OwnDataError, extract_zip, read_pairs_csv

router = APIRouter(tags=["recognition"])
MAX_CSV_BYTES = 20 * 1024 * 1024


def _header_value(text: str) -> str:
    """``text`` as an HTTP header value: ASCII, non-ASCII as backslash escapes, on one line."""
    return " ".join(text.split()).encode("ascii", "backslashreplace").decode("ascii")


@router.post(
    "/verify/batch",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "One row per pair, streamed."}, 413: ERRORS[413]},
)
def verify_batch(
    pairs: Annotated[UploadFile, File(description="CSV with the columns image_a,image_b (and optionally same).")],
    images: Annotated[UploadFile, File(description="A zip holding the images the CSV names (paths inside the zip).")],
    engine: EngineDep,
    audit: AuditDep,
    threshold: ThresholdQuery = None,
) -> StreamingResponse:
    """1:1 for many pairs at once: distance, decision, confidence and each face's quality per pair, as CSV."""
    table = read_upload(pairs, "pairs", MAX_CSV_BYTES)
    archive = read_upload(images, "images", engine.config.max_zip_bytes)
    folder = Path(tempfile.mkdtemp(prefix="facecore-batch-"))
    try:
        root = extract_zip(archive, folder)
        pair_set = read_pairs_csv(table, root, name=pairs.filename or "pairs.csv", labelled=False, max_pairs=MAX_PAIRS)
    except OwnDataError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise HTTPException(422, str(exc)) from None
    chosen = deciding(engine, threshold)
    tally = BatchTally(pairs=len(pair_set.pairs))

    def rows() -> Iterator[str]:
        try:
            yield from verify_pages(
                pair_set, engine.embed_primary_faces_with_quality, chosen, metric=METRIC,
                minimums=engine.config.quality, tally=tally,
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            # One entry for the batch, once its rows are out (or it stopped): what was decided, and whether all.
            audit.record({**tally.summary(), "operating_point": chosen.name}, threshold=chosen.threshold)

    headers = {
        "X-Operating-Point": _header_value(chosen.name),
        "X-Threshold-Source": _header_value(chosen.source),
        "X-Threshold": f"{chosen.threshold:.6g}",
        "X-Total-Pairs": str(len(pair_set.pairs)),
        "Content-Disposition": 'attachment; filename="verified_pairs.csv"',
    }
    return StreamingResponse(rows(), media_type="text/csv", headers=headers)
