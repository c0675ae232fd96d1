"""Batch verification round-trips 1,000 pairs through the API and the CLI, each answer ending with its
``#complete,<n>`` trailer and the API's audit entry giving the counts and distances; an answer cut short by an
image that cannot be decoded (in the library, the API and the CLI) lacks the trailer and is not accepted as
complete, and the CLI leaves no output file; bad input gives no rows; each row says the quality of both faces
(a sharp photo is "ok", the same photo shrunk until the eyes are 9 px apart is "small"), through the library,
the CLI and the API, and the embedding cache gives the same quality."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.config import ApiConfig
from api.main import create_app
from facecore.cache import CachedFaces, EmbeddingCache
from facecore.config import PipelineConfig
from facecore.evaluation.batch_verify import (
    COLUMNS,
    QUALITY_COLUMNS,
    BatchTally,
    IncompleteBatch,
    check_complete,
    verify_pages,
)
from facecore.evaluation.datasets import SAMPLES_DIR
from facecore.evaluation.own_pairs import read_pairs_csv
from facecore.gallery.audit import entries
from facecore.images import ImageError
from facecore.pipeline import FacePipeline, build_pipeline
from facecore.verification.operating_points import lfw_default
from tests.archives import zip_bytes

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
REPO = Path(__file__).resolve().parents[1]
FACES = SAMPLES_DIR / "faces_small"
PHOTOS = ["obama/1.jpg", "obama/2.jpg", "biden/1.jpg", "kit_harington/1.jpg", "kit_harington/2.jpg"]
N_PAIRS = 1000


def pairs_csv(n: int = N_PAIRS) -> str:
    """``n`` pairs reusing a few real photos (the embeddings are computed once per photo)."""
    rng = np.random.default_rng(0)
    rows = ["image_a,image_b,same"]
    for _ in range(n):
        a, b = rng.choice(len(PHOTOS), size=2, replace=False)
        rows.append(f"{PHOTOS[a]},{PHOTOS[b]},{int(PHOTOS[a].split('/')[0] == PHOTOS[b].split('/')[0])}")
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> TestClient:
    pipeline: FacePipeline = build_pipeline(ApiConfig(gallery_root=Path("unused")).pipeline)
    with TestClient(create_app(ApiConfig(gallery_root=tmp_path_factory.mktemp("g")), pipeline)) as test_client:
        yield test_client


def post(client: TestClient, csv_text: str, entries: dict[str, bytes]):
    files = {"pairs": ("pairs.csv", csv_text.encode(), "text/csv"), "images": ("images.zip", zip_bytes(entries), "application/zip")}
    return client.post("/verify/batch", files=files)


def answers_of(text: str, expected: int | None = None) -> pd.DataFrame:
    """A whole answer read as a client should: checked complete (trailer and count), then parsed without it."""
    return pd.read_csv(io.StringIO(check_complete(text, expected)))


def check_answers(answers: pd.DataFrame, asked: pd.DataFrame, threshold: float) -> None:
    assert len(answers) == N_PAIRS
    assert list(answers.columns) == [*COLUMNS, "same", *QUALITY_COLUMNS]  # the old columns first, in their order
    assert (answers["quality_a"] == "ok").all() and (answers["quality_b"] == "ok").all()  # the sample photos pass
    assert answers["image_a"].tolist() == asked["image_a"].tolist() and answers["same"].tolist() == asked["same"].tolist()
    assert answers["note"].isna().all() and answers["distance"].notna().all()
    assert (answers["same_person"] == (answers["distance"] <= threshold).astype(int)).all()
    # one distance per distinct pair of photos, however often it is asked
    per_pair = answers.groupby([answers[["image_a", "image_b"]].min(axis=1), answers[["image_a", "image_b"]].max(axis=1)])
    assert (per_pair["distance"].nunique() == 1).all()
    assert answers.loc[answers["same"] == 1, "same_person"].mean() == 1.0  # these photos are easy
    assert answers.loc[answers["same"] == 0, "same_person"].sum() == 0


def test_the_api_round_trips_1000_pairs_with_decisions_and_confidences(client) -> None:
    csv_text = pairs_csv()
    response = post(client, csv_text, {p: (FACES / p).read_bytes() for p in PHOTOS})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv") and response.headers["x-operating-point"] == "default"
    default = lfw_default(client.app.state.engine.pipeline.config, "euclidean")
    assert response.headers["x-threshold-source"] == default.source and response.headers["x-total-pairs"] == "1000"
    assert response.text.endswith("\n#complete,1000\n")
    answers = answers_of(response.text, expected=int(response.headers["x-total-pairs"]))
    threshold = float(response.headers["x-threshold"])
    check_answers(answers, pd.read_csv(io.StringIO(csv_text)), threshold)
    for distance, far in answers[["distance", "false_accept_rate"]].drop_duplicates().itertuples(index=False):
        assert far == pytest.approx(np.mean(default.point.impostor <= distance), abs=1e-6)

    # The audit entry is written once the rows are out, with what they said.
    entry = entries(client.app.state.engine.gallery.database, route="/verify/batch", limit=1)[0]
    assert entry.route == "POST /verify/batch" and entry.threshold == pytest.approx(threshold, rel=1e-5)
    result = dict(entry.result)
    assert result["completed"] is True and result["pairs"] == result["answered"] == N_PAIRS
    assert result["accepted"] == int(answers["same_person"].sum()) == int((answers["same"] == 1).sum())
    assert result["rejected"] == int((answers["same_person"] == 0).sum()) and result["no_face"] == 0
    for key, value in (("min", answers["distance"].min()), ("median", answers["distance"].median()),
                       ("max", answers["distance"].max())):
        assert result[f"distance_{key}"] == pytest.approx(value, abs=1e-6), key
    assert result["operating_point"] == "default"


@pytest.mark.parametrize(
    ("csv_text", "entries", "status", "words"),
    [
        ("image_a,image_b\nobama/1.jpg,obama/9.jpg\n", {"obama/1.jpg": b""}, 422, "obama/9.jpg"),
        ("image_a,picture\nobama/1.jpg,obama/2.jpg\n", {"obama/1.jpg": b""}, 422, "lacks the column(s) image_b"),
        ("image_a,image_b,same\nobama/1.jpg,obama/1.jpg,sure\n", {"obama/1.jpg": b""}, 422, "Row(s) 1"),
    ],
)
def test_a_bad_batch_is_refused_whole_with_a_sentence(client, csv_text, entries, status, words) -> None:
    response = post(client, csv_text, entries)
    assert response.status_code == status and words in response.json()["detail"], response.text


def test_a_photo_without_a_face_gets_a_note_and_no_decision(client) -> None:
    csv_text = "image_a,image_b\nobama/1.jpg,blank.png\nobama/1.jpg,obama/2.jpg\n"
    blank = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (200, 200), "white").save(blank, "PNG")
    response = post(client, csv_text, {"obama/1.jpg": (FACES / "obama/1.jpg").read_bytes(),
                                       "obama/2.jpg": (FACES / "obama/2.jpg").read_bytes(), "blank.png": blank.getvalue()})
    answers = answers_of(response.text, expected=2)
    assert answers.loc[0, "note"] == "no face found in blank.png" and np.isnan(answers.loc[0, "same_person"])
    assert answers.loc[1, "same_person"] == 1


def test_the_cli_round_trips_1000_pairs(tmp_path) -> None:
    (tmp_path / "pairs.csv").write_text(pairs_csv())
    result = subprocess.run(
        [sys.executable, "-m", "facecore", "verify-batch", "--pairs", str(tmp_path / "pairs.csv"), "--images", str(FACES),
         "--output", str(tmp_path / "out.csv"), "--gallery", str(tmp_path / "g")],
        cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ},
    )
    assert result.returncode == 0, result.stderr
    assert "deciding with default" in result.stderr
    threshold = lfw_default(ApiConfig(gallery_root=Path("unused")).pipeline, "euclidean").threshold
    written = (tmp_path / "out.csv").read_text()
    assert written.endswith("\n#complete,1000\n")
    check_answers(answers_of(written, expected=N_PAIRS), pd.read_csv(tmp_path / "pairs.csv"), threshold)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g", "out.csv", "pairs.csv"]  # no .partial left


# ---------------------------------------------------------------------------------------------- cut short

BROKEN = b"not an image: the decoder raises on it"


def cut_short_csv(good: int) -> str:
    """``good`` readable pairs, then one whose second image cannot be decoded (it is embedded last)."""
    return pairs_csv(good) + "obama/1.jpg,broken.jpg,0\n"


def test_a_stream_cut_short_has_no_trailer_and_is_not_taken_as_complete(tmp_path) -> None:
    config = PipelineConfig.interactive()
    for name in PHOTOS[:2]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes((FACES / name).read_bytes())
    (tmp_path / "broken.jpg").write_bytes(BROKEN)
    (tmp_path / "pairs.csv").write_text("image_a,image_b\nobama/1.jpg,obama/2.jpg\nobama/2.jpg,obama/1.jpg\n"
                                        "obama/1.jpg,broken.jpg\n")
    pair_set = read_pairs_csv(tmp_path / "pairs.csv", tmp_path, labelled=False)
    tally, received = BatchTally(), []
    embed = FacePipeline(config).embed_primary_faces_with_quality
    pages = verify_pages(pair_set, embed, lfw_default(config, "euclidean"), page_size=2, tally=tally)
    with pytest.raises(ImageError):
        for text in pages:
            received.append(text)
    partial = "".join(received)
    assert len(pd.read_csv(io.StringIO(partial))) == 2 and tally.answered == 2 and not tally.completed
    with pytest.raises(IncompleteBatch, match="stops after 2 row"):
        check_complete(partial)

    # The same rows with a trailer are complete, but not for more pairs than they answer, nor with a row lost.
    whole = partial + "#complete,2\n"
    assert check_complete(whole, expected=2) == partial
    with pytest.raises(IncompleteBatch, match="2 row\\(s\\) for 3 pairs asked"):
        check_complete(whole, expected=3)
    lines = whole.splitlines(keepends=True)
    with pytest.raises(IncompleteBatch, match="says '2' rows but 1 came before it"):
        check_complete("".join(lines[:2] + lines[3:]))
    with pytest.raises(IncompleteBatch, match="empty"):
        check_complete("")


def test_the_api_stream_cut_short_has_no_trailer_and_its_audit_entry_says_so(client) -> None:
    csv_text = cut_short_csv(500)  # the first page (500 rows) streams, then the broken image is met
    entries_in = {p: (FACES / p).read_bytes() for p in PHOTOS} | {"broken.jpg": BROKEN}
    files = {"pairs": ("pairs.csv", csv_text.encode(), "text/csv"),
             "images": ("images.zip", zip_bytes(entries_in), "application/zip")}
    received = []
    # the error comes while the body is read, after the 200 and its headers
    with pytest.raises(ImageError, match="broken.jpg"), client.stream("POST", "/verify/batch", files=files) as response:
        assert response.status_code == 200 and response.headers["x-total-pairs"] == "501"
        for chunk in response.iter_text():
            received.append(chunk)
    partial = "".join(received)
    assert len(pd.read_csv(io.StringIO(partial))) == 500 and "#complete" not in partial
    with pytest.raises(IncompleteBatch, match="stops after 500 row"):
        check_complete(partial, expected=501)
    result = dict(entries(client.app.state.engine.gallery.database, route="/verify/batch", limit=1)[0].result)
    assert result["completed"] is False and (result["pairs"], result["answered"]) == (501, 500)
    assert result["accepted"] + result["rejected"] == 500 and result["distance_max"] > result["distance_min"]


def test_the_cli_cut_short_writes_no_output_and_exits_non_zero(tmp_path) -> None:
    images = tmp_path / "images"
    for name in PHOTOS:
        (images / name).parent.mkdir(parents=True, exist_ok=True)
        (images / name).write_bytes((FACES / name).read_bytes())
    (images / "broken.jpg").write_bytes(BROKEN)
    (tmp_path / "pairs.csv").write_text(cut_short_csv(500))
    out = tmp_path / "out" / "answers.csv"
    out.parent.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "facecore", "verify-batch", "--pairs", str(tmp_path / "pairs.csv"),
         "--images", str(images), "--output", str(out), "--gallery", str(tmp_path / "g")],
        cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ},
    )
    assert result.returncode == 1, result.stderr
    assert "verify-batch stopped after 500 of 501 pairs" in result.stderr and "broken.jpg" in result.stderr
    assert f"Nothing was written to {out}." in result.stderr and "Traceback" not in result.stderr
    assert list(out.parent.iterdir()) == []  # neither the answers nor the partial file


# ---------------------------------------------------------------------------------------------- quality

QUALITY_CSV = "image_a,image_b\nsharp.jpg,small.png\nsharp.jpg,blank.png\nsmall.png,sharp.jpg\n"


@pytest.fixture(scope="module")
def quality_photos(tmp_path_factory) -> Path:
    """A sharp sample photo, the same photo shrunk to 0.12 of its size (9 px between the eyes) and a blank one."""
    import cv2
    from PIL import Image

    folder = tmp_path_factory.mktemp("quality")
    source = FACES / "obama/1.jpg"
    (folder / "sharp.jpg").write_bytes(source.read_bytes())
    pixels = np.asarray(Image.open(source).convert("RGB"))
    Image.fromarray(cv2.resize(pixels, None, fx=0.12, fy=0.12, interpolation=cv2.INTER_AREA)).save(folder / "small.png")
    Image.new("RGB", (200, 200), "white").save(folder / "blank.png")
    (folder / "pairs.csv").write_text(QUALITY_CSV)
    return folder


def check_quality(answers: pd.DataFrame) -> None:
    """Row 0: sharp vs small; row 1: sharp vs blank (no face); row 2: small vs sharp."""
    assert list(answers.columns) == [*COLUMNS, *QUALITY_COLUMNS]
    assert answers["quality_a"].tolist()[:2] == ["ok", "ok"] and answers.loc[2, "quality_b"] == "ok"
    for small in (answers.loc[0, "quality_b"], answers.loc[2, "quality_a"]):
        assert small.startswith("the face is small: 9 px between the eyes (at least 10 wanted)"), small
    assert answers.loc[0, "eye_distance_px_b"] < 10 <= answers.loc[0, "eye_distance_px_a"]
    assert answers.loc[0, "sharpness_a"] > 4 and answers.loc[0, "faces_in_photo_a"] == 1
    # the image without a face: its note, and no quality for it (the other image keeps its own)
    assert answers.loc[1, "note"] == "no face found in blank.png"
    assert answers.loc[1, [c for c in QUALITY_COLUMNS if c.endswith("_b")]].isna().all()
    assert answers.loc[1, "quality_a"] == "ok"


def count_detections(pipeline: FacePipeline, monkeypatch) -> list[int]:
    """Spy on the real detector's ``detect_batch`` (it still detects): the sizes of the batches it is given."""
    counted: list[int] = []
    detect_batch = pipeline.detector.detect_batch

    def counting(images):
        counted.append(len(images))
        return detect_batch(images)

    monkeypatch.setattr(pipeline.detector, "detect_batch", counting)  # the shared detector, restored after the test
    return counted


def test_the_library_gives_each_faces_quality_and_the_cache_gives_the_same(quality_photos, tmp_path, monkeypatch) -> None:
    config = PipelineConfig.interactive()
    chosen = lfw_default(config, "euclidean")
    pair_set = read_pairs_csv(quality_photos / "pairs.csv", quality_photos, labelled=False)
    detected = count_detections(FacePipeline(config), monkeypatch)

    def run() -> tuple[str, list[int]]:
        detected.clear()
        pipeline = FacePipeline(config, cache=EmbeddingCache(tmp_path / "cache"))
        pages = verify_pages(pair_set, pipeline.embed_primary_faces_with_quality, chosen, page_size=2)
        text = check_complete("".join(pages))
        return text, list(detected)

    cold, cold_detected = run()
    check_quality(pd.read_csv(io.StringIO(cold)))
    assert sum(cold_detected) == 3  # each of the three images detected once (two pages, none twice)
    warm, warm_detected = run()
    assert warm == cold and warm_detected == []  # served from the embedding cache: no detection, same values

    # An entry written before faces_in_photo was stored still reads, with the count unknown.
    cache = EmbeddingCache(tmp_path / "cache")
    with cache._connection() as db:  # noqa: SLF001
        old = {key: CachedFaces.from_bytes(payload) for key, payload in db.execute("SELECT key, payload FROM results")}
    cache.put_many({key: CachedFaces(e.faces, e.embeddings, e.fallback) for key, e in old.items()})
    assert all(e.faces_in_photo is None for e in cache.get_many(old).values())
    stale = pd.read_csv(io.StringIO(run()[0]))
    assert stale[["faces_in_photo_a", "faces_in_photo_b"]].isna().all().all()
    fresh = pd.read_csv(io.StringIO(cold))
    pd.testing.assert_frame_equal(stale.drop(columns=["faces_in_photo_a", "faces_in_photo_b"]),
                                  fresh.drop(columns=["faces_in_photo_a", "faces_in_photo_b"]))


def test_the_api_gives_each_faces_quality(client, quality_photos) -> None:
    entries = {name: (quality_photos / name).read_bytes() for name in ("sharp.jpg", "small.png", "blank.png")}
    response = post(client, QUALITY_CSV, entries)
    assert response.status_code == 200, response.text
    check_quality(answers_of(response.text, expected=3))


def test_the_cli_gives_each_faces_quality_cold_and_from_its_cache(quality_photos, tmp_path) -> None:
    outputs = []
    for run in ("cold", "warm"):
        result = subprocess.run(
            [sys.executable, "-m", "facecore", "verify-batch", "--pairs", str(quality_photos / "pairs.csv"),
             "--images", str(quality_photos), "--output", str(tmp_path / f"{run}.csv"), "--gallery", str(tmp_path / "g"),
             "--cache-dir", str(tmp_path / "cache")],
            cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ},
        )
        assert result.returncode == 0, result.stderr
        outputs.append((tmp_path / f"{run}.csv").read_text())
    check_quality(answers_of(outputs[0], expected=3))
    assert outputs[1] == outputs[0]
    assert len(EmbeddingCache(tmp_path / "cache")) == 3


def test_the_cli_refuses_a_bad_quality_minimum_with_a_sentence(quality_photos, tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "facecore", "verify-batch", "--pairs", str(quality_photos / "pairs.csv"),
         "--images", str(quality_photos), "--gallery", str(tmp_path / "g")],
        cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "FACECORE_QUALITY_MIN_BLUR": "sharp"},
    )
    assert result.returncode == 2 and "FACECORE_QUALITY_MIN_BLUR='sharp' is not a number" in result.stderr
