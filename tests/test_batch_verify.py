"""Batch verification round-trips 1,000 pairs through the API and the CLI; bad input gives no rows."""

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
from facecore.evaluation.datasets import SAMPLES_DIR
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
