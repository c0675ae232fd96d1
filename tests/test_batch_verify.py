"""Batch verification round-trips 1,000 pairs through the API and the CLI; bad input gives no rows; each row
says the quality of both faces (a sharp photo is "ok", the same photo shrunk until the eyes are 9 px apart is
"small"), through the library, the CLI and the API, and the embedding cache gives the same quality."""

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
from facecore.evaluation.batch_verify import COLUMNS, QUALITY_COLUMNS, verify_pages
from facecore.evaluation.datasets import SAMPLES_DIR
from facecore.evaluation.own_pairs import read_pairs_csv
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
    answers = pd.read_csv(io.StringIO(response.text))
    check_answers(answers, pd.read_csv(io.StringIO(csv_text)), float(response.headers["x-threshold"]))
    point = lfw_default(client.app.state.engine.pipeline.config, "euclidean").point
    for distance, far in answers[["distance", "false_accept_rate"]].drop_duplicates().itertuples(index=False):
        assert far == pytest.approx(np.mean(point.impostor <= distance), abs=1e-6)


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
    answers = pd.read_csv(io.StringIO(response.text))
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
    check_answers(pd.read_csv(tmp_path / "out.csv"), pd.read_csv(tmp_path / "pairs.csv"), threshold)


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
        text = "".join(verify_pages(pair_set, pipeline.embed_primary_faces_with_quality, chosen, page_size=2))
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
    check_quality(pd.read_csv(io.StringIO(response.text)))


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
    check_quality(pd.read_csv(io.StringIO(outputs[0])))
    assert outputs[1] == outputs[0]
    assert len(EmbeddingCache(tmp_path / "cache")) == 3


def test_the_cli_refuses_a_bad_quality_minimum_with_a_sentence(quality_photos, tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "facecore", "verify-batch", "--pairs", str(quality_photos / "pairs.csv"),
         "--images", str(quality_photos), "--gallery", str(tmp_path / "g")],
        cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "FACECORE_QUALITY_MIN_BLUR": "sharp"},
    )
    assert result.returncode == 2 and "FACECORE_QUALITY_MIN_BLUR='sharp' is not a number" in result.stderr
