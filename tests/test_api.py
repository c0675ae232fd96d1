"""The HTTP API on real faces: every endpoint through TestClient, a real uvicorn server, and schemathesis."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from PIL import Image
from schemathesis.checks import ignored_auth, positive_data_acceptance

from api.config import ApiConfig
from api.main import create_app
from facecore.config import PipelineConfig
from facecore.detection import INTERACTIVE_MAX_SIDE
from facecore.gallery import Gallery
from facecore.images import decode_image, read_bytes
from facecore.pipeline import FacePipeline, build_pipeline
from facecore.verification import default_threshold, verify_against
from tests.archives import zip_bytes
from tests.bad_inputs import KINDS, bad_input
from tests.processes import stop_process

REPO_ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # starlette's TestClient on httpx


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    """One set of real models for every app in this module (as one server process would have)."""
    return build_pipeline(ApiConfig(gallery_root=Path("unused")).pipeline)


def test_the_api_detects_as_the_dashboard_does(pipeline: FacePipeline) -> None:
    """The API's default pipeline is the one the dashboard builds from its default settings (HOG,
    dlib-keras, no flip, photos shrunk to 800 px for detection), and the built detector does shrink."""
    from ui.settings import pipeline_config

    config = ApiConfig(gallery_root=Path("unused"))
    assert config.pipeline == pipeline_config("hog", "dlib-keras", False)
    assert config.pipeline.max_side == INTERACTIVE_MAX_SIDE
    assert pipeline.config == config.pipeline
    assert pipeline.detector.max_side == 800 and pipeline.detector.settings_key.startswith("hog")


def test_config_from_the_environment() -> None:
    env = {"FACECORE_API_DETECTOR": "mtcnn", "FACECORE_API_FLIP_TTA": "yes", "FACECORE_API_MAX_ZIP_MB": "2"}
    config = ApiConfig.from_env(env)
    assert config.pipeline == PipelineConfig.interactive(detector="mtcnn", flip_tta=True)
    assert config.max_zip_bytes == 2 * 1024 * 1024 and config.max_upload_bytes == 10 * 1024 * 1024
    # No threshold set: facecore's default for this configuration, with its source.
    assert config.decision_threshold() == default_threshold(config.pipeline, "euclidean")
    assert ApiConfig.from_env({"FACECORE_API_THRESHOLD": "0.5"}).decision_threshold().value == 0.5
    assert ApiConfig.from_env({"FACECORE_API_DETECTION_MAX_SIDE": "640"}).pipeline.max_side == 640
    with pytest.raises(ValueError, match="FACECORE_API_DETECTOR"):
        ApiConfig.from_env({"FACECORE_API_DETECTOR": "yolo"})
    arcface = ApiConfig.from_env({"FACECORE_API_DETECTOR": "scrfd", "FACECORE_API_EMBEDDER": "arcface-keras"})
    assert arcface.pipeline == PipelineConfig.interactive(detector="scrfd", embedder="arcface-keras")
    assert arcface.pipeline.licence == "insightface's weights: non-commercial research use only"
    assert config.pipeline.licence == ""
    with pytest.raises(ValueError, match="FACECORE_API_EMBEDDER='keras-file'"):
        ApiConfig.from_env({"FACECORE_API_EMBEDDER": "keras-file"})
    with pytest.raises(ValueError, match="threshold"):
        ApiConfig.from_env({"FACECORE_API_THRESHOLD": "-1"})


def make_client(root: Path, pipeline: FacePipeline, **limits: int) -> TestClient:
    return TestClient(create_app(ApiConfig(gallery_root=root, **limits), pipeline))


@pytest.fixture
def client(tmp_path: Path, pipeline: FacePipeline) -> Iterator[TestClient]:
    """The API over a fresh, empty gallery (startup runs, so the engine is ready)."""
    with make_client(tmp_path / "gallery", pipeline) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def photos(faces_small: dict[str, list[Path]], faces_group: list[Path]) -> dict[str, bytes]:
    group = {p.stem: p for p in faces_group}
    return {
        "obama1": read_bytes(faces_small["obama"][0]),
        "obama2": read_bytes(faces_small["obama"][1]),
        "obama4": read_bytes(faces_small["obama"][3]),
        "biden": read_bytes(faces_small["biden"][1]),
        "kit": read_bytes(faces_small["kit_harington"][0]),
        "rose": read_bytes(faces_small["rose_leslie"][0]),
        "kit_with_rose": read_bytes(group["kit_with_rose"]),
    }


@pytest.fixture(scope="module")
def no_face_photo(faces_small: dict[str, list[Path]]) -> bytes:
    """A real photo's top strip, above the head: real content, no face in it."""
    image = decode_image(read_bytes(faces_small["obama"][0]))[:140, :300]
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def upload(data: bytes, name: str = "photo.jpg") -> tuple[str, bytes, str]:
    return (name, data, "image/jpeg")




def embedding_of(pipeline: FacePipeline, data: bytes) -> np.ndarray:
    """The largest face's embedding, as the API computes it."""
    return pipeline.process(decode_image(data))[0].embedding


def create_person(client: TestClient, name: str) -> int:
    response = client.post("/people", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def enrol(client: TestClient, person_id: int, data: bytes) -> dict:
    response = client.post(f"/people/{person_id}/faces", files={"image": upload(data)})
    assert response.status_code == 201, response.text
    return response.json()


def assert_error(response: httpx.Response, status: int, *words: str) -> None:
    """A JSON error with this status whose sentence mentions each of ``words``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    for word in words:
        assert word.lower() in detail.lower(), detail


def gallery_state(root: Path) -> tuple[dict, set[Path]]:
    with Gallery(root) as gallery:
        stats = gallery.stats()
    stats.pop("revision")
    return stats, {p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.parent.name != "index"}


# ----------------------------------------------------------------------------- service and people


def test_health_reports_the_engine_and_the_gallery(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["detector"] == "hog"
    assert body["model_version"] == "dlib_resnet_v1-keras"
    # The LFW-calibrated euclidean threshold of HOG + dlib-keras (0.6144 in calibration.json), with its source.
    calibrated = default_threshold(PipelineConfig.interactive(detector="hog"), "euclidean")
    assert calibrated.calibration is not None
    assert body["threshold"] == pytest.approx(calibrated.value, abs=1e-12)
    assert body["threshold_source"] == calibrated.source and "LFW" in body["threshold_source"]
    assert (body["people"], body["faces"]) == (0, 0)
    assert body["max_zip_bytes"] == 50 * 1024 * 1024
    assert client.get("/docs").status_code == 200
    assert "/identify" in client.get("/openapi.json").json()["paths"]


def test_people_create_list_rename_delete(client: TestClient) -> None:
    ada = create_person(client, "  Ada Lovelace ")
    grace = create_person(client, "Grace Hopper")
    listed = client.get("/people").json()
    assert [p["name"] for p in listed] == ["Ada Lovelace", "Grace Hopper"]
    assert all(p["face_count"] == 0 for p in listed)

    assert_error(client.post("/people", json={"name": "ADA LOVELACE"}), 409, "already exists")
    assert_error(client.post("/people", json={"name": "   "}), 422, "empty")
    assert_error(client.post("/people", json={"name": "a\nb"}), 422, "control characters")
    assert_error(client.post("/people", json={}), 422, "name")
    assert_error(
        client.post("/people", content=b"not json", headers={"content-type": "application/json"}), 422
    )

    renamed = client.patch(f"/people/{ada}", json={"name": "Augusta Ada King"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Augusta Ada King"
    assert client.get(f"/people/{ada}").json()["name"] == "Augusta Ada King"
    assert_error(client.patch(f"/people/{ada}", json={"name": "grace hopper"}), 409, "already exists")
    assert_error(client.patch("/people/9999", json={"name": "Nobody"}), 404, "9999")

    assert client.delete(f"/people/{grace}").status_code == 204
    assert_error(client.get(f"/people/{grace}"), 404, "no person")
    assert_error(client.delete(f"/people/{grace}"), 404, "no person")
    assert_error(client.get("/people/not-a-number"), 422, "person_id")
    assert_error(client.get(f"/people/{2**70}"), 422, "person_id")
    assert [p["id"] for p in client.get("/people").json()] == [ada]
    wrong_method = client.put("/people")
    assert_error(wrong_method, 405, "GET, POST")
    assert wrong_method.headers["allow"] == "GET, POST"


# ----------------------------------------------------------------------------- faces


def test_faces_add_list_chip_and_delete(client: TestClient, photos: dict[str, bytes]) -> None:
    obama = create_person(client, "Barack Obama")
    first = enrol(client, obama, photos["obama1"])
    second = enrol(client, obama, photos["obama2"])
    assert first["person_name"] == "Barack Obama" and first["model_version"] == "dlib_resnet_v1-keras"
    assert first["box"]["w"] > 100  # the face fills a good part of a 910 px wide portrait

    listed = client.get(f"/people/{obama}/faces").json()
    assert [f["id"] for f in listed] == [first["id"], second["id"]]
    assert [f["id"] for f in client.get("/faces", params={"person_id": obama}).json()] == [
        first["id"],
        second["id"],
    ]
    assert client.get(f"/people/{obama}").json()["face_count"] == 2

    chip = client.get(first["chip_url"])
    assert chip.status_code == 200 and chip.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(chip.content)).size == (150, 150)

    assert client.delete(f"/faces/{first['id']}").status_code == 204
    assert_error(client.get(f"/faces/{first['id']}"), 404, "no face")
    assert_error(client.delete(f"/faces/{first['id']}"), 404, "no face")
    assert [f["id"] for f in client.get("/faces").json()] == [second["id"]]
    assert_error(client.get("/people/4242/faces"), 404, "4242")
    assert_error(client.get("/faces", params={"person_id": 4242}), 404, "4242")


def test_face_index_picks_one_face_of_a_group_photo(client: TestClient, photos: dict[str, bytes]) -> None:
    rose = create_person(client, "Rose Leslie")
    second = client.post(
        f"/people/{rose}/faces", params={"face_index": 1}, files={"image": upload(photos["kit_with_rose"])}
    )
    assert second.status_code == 201, second.text
    largest = enrol(client, rose, photos["kit_with_rose"])
    assert largest["box"]["w"] > second.json()["box"]["w"]  # 0 is the largest face
    assert_error(
        client.post(
            f"/people/{rose}/faces",
            params={"face_index": 5},
            files={"image": upload(photos["kit_with_rose"])},
        ),
        422,
        "2 face(s)",
    )


def test_failed_uploads_leave_the_gallery_as_it_was(
    client: TestClient, photos: dict[str, bytes], no_face_photo: bytes, tmp_path: Path
) -> None:
    obama = create_person(client, "Barack Obama")
    enrol(client, obama, photos["obama1"])
    before = gallery_state(tmp_path / "gallery")

    def add(data: bytes, person: int = obama) -> httpx.Response:
        return client.post(f"/people/{person}/faces", files={"image": upload(data)})

    assert_error(add(photos["obama1"]), 409, "already in the gallery")
    assert_error(add(no_face_photo), 422, "no face found")
    assert_error(add(b"this is not a picture"), 422, "not an image")
    assert_error(add(photos["obama2"][: len(photos["obama2"]) // 3]), 422, "truncated or corrupt")
    assert_error(add(b""), 422, "empty")
    assert_error(add(photos["obama2"], person=777), 404, "777")
    assert_error(client.post(f"/people/{obama}/faces"), 422, "image")  # no file at all
    assert gallery_state(tmp_path / "gallery") == before


# ----------------------------------------------------------------------------- recognition


def test_verify_two_photos(client: TestClient, photos: dict[str, bytes], pipeline: FacePipeline) -> None:
    same = client.post(
        "/verify", files={"image_a": upload(photos["obama1"]), "image_b": upload(photos["obama2"])}
    )
    assert same.status_code == 200, same.text
    body = same.json()
    assert body["same_person"] is True and body["distance"] <= body["threshold"]
    assert body["decision"].startswith("Same person: euclidean distance")
    assert (body["faces_in_a"], body["faces_in_b"]) == (1, 1)
    assert len(body["face_a"]["landmarks"]) == 5

    # The same distance the dashboard's pipeline gives for these two photos.
    a, b = (pipeline.process(decode_image(photos[k]))[0].embedding for k in ("obama1", "obama2"))
    assert body["distance"] == pytest.approx(float(np.linalg.norm(a - b)), abs=1e-5)

    other = client.post(
        "/verify", files={"image_a": upload(photos["obama1"]), "image_b": upload(photos["biden"])}
    )
    assert other.status_code == 200 and other.json()["same_person"] is False

    strict = client.post(
        "/verify",
        params={"threshold": body["distance"] / 2},
        files={"image_a": upload(photos["obama1"]), "image_b": upload(photos["obama2"])},
    )
    assert strict.json()["same_person"] is False and strict.json()["threshold"] == pytest.approx(
        body["distance"] / 2
    )


def test_verify_errors_name_the_image(
    client: TestClient, photos: dict[str, bytes], no_face_photo: bytes
) -> None:
    no_face = client.post(
        "/verify", files={"image_a": upload(photos["obama1"]), "image_b": upload(no_face_photo)}
    )
    assert_error(no_face, 422, "image_b", "no face found")
    bad = client.post(
        "/verify", files={"image_a": upload(b"GIF89a broken"), "image_b": upload(photos["obama1"])}
    )
    assert_error(bad, 422, "image_a")
    assert_error(client.post("/verify", files={"image_a": upload(photos["obama1"])}), 422, "image_b")
    negative = client.post(
        "/verify",
        params={"threshold": -1},
        files={"image_a": upload(photos["obama1"]), "image_b": upload(photos["obama2"])},
    )
    assert_error(negative, 422, "threshold")


def test_verify_against_a_gallery_person(client: TestClient, photos: dict[str, bytes]) -> None:
    obama = create_person(client, "Barack Obama")
    empty = create_person(client, "Nobody Yet")
    stored = [enrol(client, obama, photos[k])["id"] for k in ("obama1", "obama2")]

    match = client.post(f"/verify/person/{obama}", files={"image": upload(photos["obama4"])})
    assert match.status_code == 200, match.text
    body = match.json()
    assert body["same_person"] is True and body["faces_compared"] == 2
    assert body["nearest_face_id"] in stored and body["person"]["name"] == "Barack Obama"
    assert body["rule"] == "mean" and body["distance"] == pytest.approx(body["mean_distance"])  # the default
    assert body["nearest_distance"] <= body["mean_distance"] and (body["votes"], body["voters"]) == (2, 2)

    impostor = client.post(f"/verify/person/{obama}", files={"image": upload(photos["biden"])})
    assert impostor.status_code == 200 and impostor.json()["same_person"] is False
    assert_error(
        client.post(f"/verify/person/{empty}", files={"image": upload(photos["obama4"])}), 422, "no faces"
    )
    assert_error(client.post("/verify/person/31337", files={"image": upload(photos["obama4"])}), 404, "31337")


def test_identify_names_both_people_of_a_group_photo(client: TestClient, photos: dict[str, bytes]) -> None:
    empty = client.post("/identify", files={"image": upload(photos["kit_with_rose"])}).json()
    assert [f["name"] for f in empty["faces"]] == ["unknown", "unknown"]  # nobody to recognise yet
    assert all(f["matches"] == [] and f["distance"] is None for f in empty["faces"])
    assert all(f["nearest_name"] == "unknown" and f["agrees"] is True for f in empty["faces"])
    assert empty["rule"] == "nearest"

    kit, rose = create_person(client, "Kit Harington"), create_person(client, "Rose Leslie")
    enrol(client, kit, photos["kit"])
    enrol(client, rose, photos["rose"])
    enrol(client, create_person(client, "Barack Obama"), photos["obama1"])

    response = client.post("/identify", params={"k": 3}, files={"image": upload(photos["kit_with_rose"])})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["gallery_faces"] == 3 and body["k"] == 3
    faces = body["faces"]
    assert {f["name"] for f in faces} == {"Kit Harington", "Rose Leslie"}
    by_name = {f["name"]: f for f in faces}
    assert by_name["Kit Harington"]["person_id"] == kit and by_name["Rose Leslie"]["person_id"] == rose
    for face in faces:
        assert face["distance"] <= body["threshold"]
        assert len(face["matches"]) == 3
        assert [m["distance"] for m in face["matches"]] == sorted(m["distance"] for m in face["matches"])
        assert face["vote_winner"] == face["name"]
        assert face["nearest_name"] == face["name"] and face["agrees"] is True

    unknown = client.post("/identify", files={"image": upload(photos["biden"])}).json()["faces"]
    assert len(unknown) == 1 and unknown[0]["name"] == "unknown" and unknown[0]["person_id"] is None
    assert unknown[0]["nearest_name"] == "unknown" and unknown[0]["vote_winner"] is None
    assert unknown[0]["agrees"] is True
    assert_error(
        client.post("/identify", params={"k": 0}, files={"image": upload(photos["biden"])}), 422, "k"
    )


VERIFY_RULES = ("mean", "nearest", "majority")


def test_verify_person_rule_mean_nearest_majority(
    client: TestClient, photos: dict[str, bytes], pipeline: FacePipeline
) -> None:
    """One true photo among three strangers' (enrolled by mistake): nearest accepts, mean and majority refuse."""
    obama = create_person(client, "Barack Obama")
    keys = ("obama1", "kit", "rose", "biden")
    stored = {key: enrol(client, obama, photos[key])["id"] for key in keys}
    threshold = client.get("/health").json()["threshold"]

    # facecore's own decisions on the same vectors: the expected answers, and a check of the setup.
    probe = embedding_of(pipeline, photos["obama2"])
    references = np.stack([embedding_of(pipeline, photos[key]) for key in keys])
    expected = {
        rule: verify_against(probe, references, threshold=threshold, rule=rule) for rule in VERIFY_RULES
    }
    assert expected["nearest"].same and not expected["mean"].same and expected["nearest"].votes == 1

    def ask(**params: str) -> dict:
        response = client.post(
            f"/verify/person/{obama}", params=params, files={"image": upload(photos["obama2"])}
        )
        assert response.status_code == 200, response.text
        return response.json()

    answers = {rule: ask(rule=rule) for rule in VERIFY_RULES}
    assert ask()["rule"] == "mean" and ask()["same_person"] is False  # the default rule is mean now
    assert [answers[rule]["same_person"] for rule in VERIFY_RULES] == [False, True, False]
    for rule, body in answers.items():
        assert body["rule"] == rule and body["same_person"] is expected[rule].same
        assert body["distance"] == pytest.approx(expected[rule].distance, abs=1e-5)
        assert (body["votes"], body["voters"], body["faces_compared"]) == (1, 4, 4)
        assert body["nearest_face_id"] == stored["obama1"]
        assert body["threshold"] == pytest.approx(threshold)
    assert answers["nearest"]["distance"] == pytest.approx(answers["nearest"]["nearest_distance"])
    assert answers["mean"]["distance"] == pytest.approx(answers["mean"]["mean_distance"])
    assert answers["mean"]["mean_distance"] > threshold > answers["mean"]["nearest_distance"]
    assert "1 of 4" in answers["majority"]["decision"] and "mean" in answers["mean"]["decision"]
    refused = client.post(
        f"/verify/person/{obama}", params={"rule": "pair"}, files={"image": upload(photos["obama2"])}
    )
    assert_error(refused, 422, "rule")


def test_identify_reports_both_rules_and_whether_they_agree(
    client: TestClient, faces_small: dict[str, list[Path]], pipeline: FacePipeline
) -> None:
    """The probe's nearest photo under one name, two farther photos of the same man under another."""
    obama = [read_bytes(path) for path in faces_small["obama"][:4]]
    probe, others = obama[3], obama[:3]
    target = embedding_of(pipeline, probe)
    distances = [float(np.linalg.norm(embedding_of(pipeline, data) - target)) for data in others]
    threshold = client.get("/health").json()["threshold"]
    assert max(distances) < threshold  # all three vote
    nearest = int(np.argmin(distances))
    first = create_person(client, "Barack Obama")
    twin = create_person(client, "Obama Twin")
    enrol(client, first, others[nearest])
    for i, data in enumerate(others):
        if i != nearest:
            enrol(client, twin, data)

    def ask(**params: object) -> dict:
        response = client.post("/identify", params={"k": 3, **params}, files={"image": upload(probe)})
        assert response.status_code == 200, response.text
        return response.json()

    default, by_nearest, by_majority = ask(), ask(rule="nearest"), ask(rule="majority")
    assert (default["rule"], by_nearest["rule"], by_majority["rule"]) == ("nearest", "nearest", "majority")
    for body in (default, by_nearest, by_majority):
        (face,) = body["faces"]
        assert face["nearest_name"] == "Barack Obama" and face["vote_winner"] == "Obama Twin"
        assert face["votes"] == {"Obama Twin": 2, "Barack Obama": 1} and face["agrees"] is False
        assert face["distance"] == pytest.approx(min(distances), abs=1e-5)
    assert (default["faces"][0]["name"], default["faces"][0]["person_id"]) == ("Barack Obama", first)
    assert (by_majority["faces"][0]["name"], by_majority["faces"][0]["person_id"]) == ("Obama Twin", twin)
    assert_error(
        client.post("/identify", params={"rule": "mean"}, files={"image": upload(probe)}), 422, "rule"
    )


def test_import_people_from_a_zip(
    client: TestClient,
    photos: dict[str, bytes],
    faces_small: dict[str, list[Path]],
    no_face_photo: bytes,
    tmp_path: Path,
) -> None:
    """A zip with one folder per person (inside one top folder): good photos enrolled, the rest reported."""
    kit = [read_bytes(path) for path in faces_small["kit_harington"][:2]]
    archive = zip_bytes(
        {
            "people/Kit_Harington/1.jpg": kit[0],
            "people/Kit_Harington/2.jpg": kit[1],
            "people/Rose_Leslie/1.jpg": photos["rose"],
            "people/Rose_Leslie/broken.jpg": b"this is not a picture",
            "people/Rose_Leslie/landscape.jpg": no_face_photo,
            "people/notes.txt": b"not a photo",
            "__MACOSX/people/._notes.txt": b"hidden: ignored silently",
        }
    )

    def send(data: bytes) -> httpx.Response:
        return client.post("/people/import", files={"archive": ("people.zip", data, "application/zip")})

    response = send(archive)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["people"], body["enrolled"], body["skipped"]) == (2, 3, 3)
    assert [f["person_name"] for f in body["faces"]] == ["Kit Harington", "Kit Harington", "Rose Leslie"]
    skipped = {f["file"]: f["reason"] for f in body["skipped_files"]}
    assert set(skipped) == {
        "people/Rose_Leslie/broken.jpg",
        "people/Rose_Leslie/landscape.jpg",
        "people/notes.txt",
    }
    assert "not an image" in skipped["people/Rose_Leslie/broken.jpg"]
    assert "no face" in skipped["people/Rose_Leslie/landscape.jpg"].lower()
    assert "ignored" in skipped["people/notes.txt"]
    assert body["summary"] == "Enrolled 3 face(s) for 2 person(s). Skipped 3 file(s)."
    people = {p["name"]: p["face_count"] for p in client.get("/people").json()}
    assert people == {"Kit Harington": 2, "Rose Leslie": 1}

    # The imported people are recognised.
    group = client.post("/identify", files={"image": upload(photos["kit_with_rose"])}).json()
    assert {f["name"] for f in group["faces"]} == {"Kit Harington", "Rose Leslie"}

    # The same zip again: nobody is duplicated and every photo is reported as already stored.
    again = send(archive).json()
    assert (again["enrolled"], again["skipped"]) == (0, 6)
    again_skipped = {f["file"]: f["reason"] for f in again["skipped_files"]}
    assert set(again_skipped) == set(skipped) | {
        f"people/{n}" for n in ("Kit_Harington/1.jpg", "Kit_Harington/2.jpg", "Rose_Leslie/1.jpg")
    }
    for name in ("Kit_Harington/1.jpg", "Kit_Harington/2.jpg", "Rose_Leslie/1.jpg"):
        assert "already in the gallery" in again_skipped[f"people/{name}"]
    assert {p["name"]: p["face_count"] for p in client.get("/people").json()} == people

    before = gallery_state(tmp_path / "gallery")
    assert_error(send(b"PK but not a zip at all"), 422, "zip")
    assert_error(send(zip_bytes({"loose.jpg": photos["rose"]})), 422, "person folders")
    assert_error(client.post("/people/import"), 422, "archive")
    for method in ("GET", "PATCH", "DELETE"):  # not /people/{person_id} with person_id "import"
        wrong = client.request(method, "/people/import")
        assert_error(wrong, 405, "use POST")
        assert wrong.headers["allow"] == "POST"
    assert gallery_state(tmp_path / "gallery") == before


def test_import_limits(tmp_path: Path, pipeline: FacePipeline, photos: dict[str, bytes]) -> None:
    """A photo in the zip over the image limit is skipped; a zip over the zip limit is refused (413)."""
    kit = photos["kit"]
    limits = {"max_upload_bytes": len(kit) - 1, "max_zip_bytes": len(kit) + 10_000}  # kit: one byte over
    with make_client(tmp_path / "gallery", pipeline, **limits) as client:
        one = client.post(
            "/people/import", files={"archive": ("k.zip", zip_bytes({"Kit/1.jpg": kit}), "application/zip")}
        )
        assert one.status_code == 200, one.text
        assert one.json()["enrolled"] == 0
        (skipped,) = one.json()["skipped_files"]
        assert skipped["file"] == "Kit/1.jpg" and "larger than the" in skipped["reason"]
        assert "upload limit" in skipped["reason"]
        two = zip_bytes({"Kit/1.jpg": kit, "Kit/2.jpg": kit})
        assert_error(client.post("/people/import", files={"archive": ("k.zip", two, "application/zip")}), 413)
        assert client.get("/health").json()["max_zip_bytes"] == len(kit) + 10_000


def test_embeddings_are_the_pipelines(
    client: TestClient, photos: dict[str, bytes], pipeline: FacePipeline
) -> None:
    response = client.post("/embeddings", files={"image": upload(photos["kit_with_rose"], "group.jpg")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"]) == (501, 700)
    expected = pipeline.process(decode_image(photos["kit_with_rose"]))
    assert len(body["faces"]) == len(expected) == 2
    for got, want in zip(body["faces"], expected, strict=True):
        assert tuple(got["box"].values()) == want.face.box
        assert len(got["embedding"]) == 128
        np.testing.assert_allclose(got["embedding"], want.embedding, atol=1e-5)
        landmarks = np.array(got["landmarks"])
        x, y, w, h = want.face.box
        assert landmarks.shape == (5, 2) and got["landmarks_order"] == "dlib5"
        assert ((landmarks >= (x, y)) & (landmarks <= (x + w, y + h))).all()  # the points lie on the face


def test_embeddings_of_a_photo_without_a_face_is_an_empty_list(
    client: TestClient, no_face_photo: bytes
) -> None:
    body = client.post("/embeddings", files={"image": upload(no_face_photo)}).json()
    assert body["faces"] == [] and (body["width"], body["height"]) == (300, 140)


def test_upload_and_pixel_limits(tmp_path: Path, pipeline: FacePipeline, photos: dict[str, bytes]) -> None:
    limit = len(photos["kit"]) - 1  # the kit photo is one byte over the file limit, under the body limit
    limits = {"max_upload_bytes": limit, "max_pixels": 300_000}
    with make_client(tmp_path / "gallery", pipeline, **limits) as client:
        assert_error(client.post("/embeddings", files={"image": upload(photos["kit"])}), 413, "upload limit")
        # The whole body over the limit (two files and 64 KB): refused before any multipart parsing.
        big = photos["obama1"] * 3
        assert len(big) > 2 * limit + 64 * 1024
        assert_error(client.post("/identify", files={"image": upload(big)}), 413, "request body")
        # Under the file limit in bytes but 800x450 = 0.36 MP: over the pixel limit.
        assert len(photos["obama4"]) < limit
        assert_error(
            client.post("/embeddings", files={"image": upload(photos["obama4"])}), 422, "limit is 0.3 MP"
        )
        assert client.get("/health").json()["max_upload_bytes"] == limit


@pytest.fixture(scope="module")
def corpus_client(tmp_path_factory: pytest.TempPathFactory, pipeline: FacePipeline) -> Iterator[TestClient]:
    with make_client(tmp_path_factory.mktemp("corpus") / "gallery", pipeline) as test_client:
        test_client.post("/people", json={"name": "Corpus Probe"})
        yield test_client


@pytest.mark.parametrize("kind", KINDS)
def test_bad_inputs_corpus_gives_a_result_or_a_clear_4xx(
    corpus_client: TestClient, sample_data: Path, kind: str
) -> None:
    """The robustness corpus (tests/bad_inputs.py) through every image endpoint: never a 5xx."""
    case = bad_input(sample_data, kind)
    sent = {"image": (case.filename, case.data, case.mime)}
    embedded = corpus_client.post("/embeddings", files=sent)
    if case.expect == "error":
        assert_error(embedded, 422, case.message)
    else:
        assert embedded.status_code == 200, embedded.text
        assert (embedded.json()["height"], embedded.json()["width"]) == case.shape
        if case.faces is not None:
            assert len(embedded.json()["faces"]) == case.faces
    identified = corpus_client.post("/identify", files=sent)
    assert identified.status_code == (422 if case.expect == "error" else 200), identified.text
    enrolled = corpus_client.post("/people/1/faces", files=sent)
    assert enrolled.status_code in (201, 409, 422), enrolled.text
    if case.expect == "error" or case.faces == 0:
        assert_error(enrolled, 422)
    verified = corpus_client.post("/verify", files={"image_a": sent["image"], "image_b": sent["image"]})
    if case.faces:
        assert verified.status_code == 200 and verified.json()["distance"] == pytest.approx(0, abs=1e-6)
    else:
        assert_error(verified, 422, "image_a")


# ----------------------------------------------------------------------------- a real server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(base: str, server: subprocess.Popen, patience_s: float = 180.0) -> None:
    """Poll /health while the models load; fail with the server's output if it dies or never answers."""
    deadline = time.monotonic() + patience_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited with {server.returncode}:\n{server.stdout.read()}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.5)
    pytest.fail("the server did not answer /health")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``uvicorn api.main:app`` in its own process on a free loopback port, over a fresh gallery."""
    root = tmp_path / "gallery"
    port = free_port()
    env = {**os.environ, "FACECORE_GALLERY_DIR": str(root), "FACECORE_API_MAX_UPLOAD_MB": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, process)
        yield base, root
    finally:
        stop_process(process)


def test_real_server_over_http_shares_the_gallery(
    server: tuple[str, Path], photos: dict[str, bytes], pipeline: FacePipeline
) -> None:
    base, root = server
    with httpx.Client(base_url=base, timeout=120) as http:
        kit = http.post("/people", json={"name": "Kit Harington"})
        assert kit.status_code == 201, kit.text
        added = http.post(f"/people/{kit.json()['id']}/faces", files={"image": upload(photos["kit"])})
        assert added.status_code == 201, added.text

        # Another process (as the dashboard would) writes to the same gallery while the server runs.
        with Gallery(root) as dashboard_side:
            assert [p.name for p in dashboard_side.people()] == ["Kit Harington"]
            rose = dashboard_side.create_person("Rose Leslie")
            dashboard_side.enrol(rose.id, photos["rose"], pipeline)

        assert [p["name"] for p in http.get("/people").json()] == ["Kit Harington", "Rose Leslie"]
        identified = http.post("/identify", files={"image": upload(photos["kit_with_rose"])})
        assert identified.status_code == 200, identified.text
        assert {f["name"] for f in identified.json()["faces"]} == {"Kit Harington", "Rose Leslie"}

        verified = http.post(
            "/verify", files={"image_a": upload(photos["obama1"]), "image_b": upload(photos["obama2"])}
        )
        assert verified.status_code == 200 and verified.json()["same_person"] is True

        # Over the 1 MB limit of this server: a declared length, then a chunked body with no length.
        assert_error(
            http.post("/embeddings", files={"image": upload(b"\xff" * 1_500_000)}), 413, "upload limit"
        )
        chunks = (b"\x00" * 65536 for _ in range(48))  # 3 MB, sent without a content-length
        assert_error(
            http.post(
                "/embeddings", content=chunks, headers={"content-type": "multipart/form-data; boundary=x"}
            ),
            413,
            "request body",
        )
        assert http.get("/health").json()["faces"] == 2


# ----------------------------------------------------------------------------- schemathesis


@pytest.fixture
def api_schema(tmp_path: Path, pipeline: FacePipeline):
    """The OpenAPI schema of a started app over its own gallery, for schemathesis to fuzz."""
    with make_client(tmp_path / "gallery", pipeline) as started:
        yield schemathesis.openapi.from_asgi("/openapi.json", started.app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_schemathesis_finds_no_server_error_and_keeps_to_the_schema(case) -> None:
    """Fuzzed requests: never 5xx, and answers keep to the documented codes, bodies and Allow headers.

    ``positive_data_acceptance`` is left out: random bytes are a schema-valid upload but not an image.
    ``ignored_auth`` too: this gallery has no API key, so the in-process client is served without one
    by design (api.access); tests/test_api_live_access.py fuzzes a live server that has keys.
    """
    response = case.call()
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
    case.validate_response(response, excluded_checks=[positive_data_acceptance, ignored_auth])
