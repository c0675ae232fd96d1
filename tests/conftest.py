"""Shared fixtures: real faces come from the demo pack in ``samples/`` (always in the checkout), LFW
from :func:`facecore.evaluation.datasets.find_lfw` (the bundled mini LFW on a fresh clone, the full LFW
when ``$FACECORE_LFW_HOME`` points at it).

* ``faces_small``, ``faces_group``: the bundled photos.
* ``lfw_source``, ``lfw_home``: the LFW every test uses unless it needs the full one.
* ``full_lfw_home``: the full LFW; a test that asks for it is marked ``full_lfw`` and skipped, with a
  reason naming ``FACECORE_LFW_HOME``, when only the pack is there.
* ``sample_data``: a folder laid out like the old shared data folder (``faces_small``, ``faces_group``,
  ``sklearn`` = the LFW data home), made of symlinks, for tests that build paths under one root.

``FACECORE_REQUIRE_DATA=1`` turns every data skip into a failure (CI's full-LFW run).

Modules whose outcome cannot depend on which LFW is found (they read only ``samples/`` photos, arrays or
the source) are listed in ``LFW_INDEPENDENT`` and marked ``lfw_independent``: CI runs them once, in its
fresh-clone pass, and skips them in the full-LFW pass (``-m "not lfw_independent"``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from facecore.evaluation.datasets import LFW_HOME_ENV, SAMPLES_DIR, LfwSource, find_lfw

REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIRE_DATA = os.environ.get("FACECORE_REQUIRE_DATA") == "1"
FULL_LFW_FIXTURE = "full_lfw_home"
LFW_INDEPENDENT = frozenset({
    "test_api.py",
    "test_api_access.py",
    "test_api_live_access.py",
    "test_api_operating_points.py",
    "test_architecture.py",
    "test_batch_verify.py",
    "test_bench_scripts.py",
    "test_e2e_browser.py",
    "test_gallery.py",
    "test_gallery_postgres.py",
    "test_gallery_scale.py",
    "test_gallery_stress.py",
    "test_images.py",
    "test_keys_audit.py",
    "test_metrics.py",
    "test_operating_points.py",
    "test_pipeline.py",
    "test_properties.py",
    "test_quality.py",
    "test_security_pages.py",
    "test_streamlit_fixes.py",
    "test_triplet.py",
    "test_verification.py",
})


def skip_for_data(reason: str) -> None:
    """Skip for missing data, or fail under ``FACECORE_REQUIRE_DATA=1``."""
    if REQUIRE_DATA:
        pytest.fail(f"{reason} (FACECORE_REQUIRE_DATA=1: data skips are failures)", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects, so ``-m full_lfw`` / ``-m "not full_lfw"`` work
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests ``full_lfw`` (they use ``full_lfw_home``) and ``lfw_independent`` (see the docstring)."""
    for item in items:
        if FULL_LFW_FIXTURE in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.full_lfw)
        elif item.path.name in LFW_INDEPENDENT:
            item.add_marker(pytest.mark.lfw_independent)


@pytest.fixture(scope="session")
def faces_small() -> dict[str, list[Path]]:
    """``{person: [photo, ...]}`` for the bundled multi-person sample set (``samples/faces_small``)."""
    root = SAMPLES_DIR / "faces_small"
    return {d.name: sorted(d.glob("*.jpg")) for d in sorted(root.iterdir()) if d.is_dir()}


@pytest.fixture(scope="session")
def faces_group() -> list[Path]:
    """The bundled group photos (``samples/faces_group``)."""
    return sorted((SAMPLES_DIR / "faces_group").glob("*.jpg"))


@pytest.fixture(scope="session")
def lfw_source() -> LfwSource:
    """The LFW the app would use here (``find_lfw``): the bundled mini LFW on a fresh clone."""
    return find_lfw()


@pytest.fixture(scope="session")
def lfw_home(lfw_source: LfwSource) -> Path:
    """The data home in scikit-learn's layout (holds ``lfw_home/``) of ``lfw_source``. Read-only."""
    return lfw_source.home


@pytest.fixture(scope="session")
def full_lfw_home(lfw_source: LfwSource) -> Path:
    """The full LFW's data home (13,233 images, pairs.txt and the View 1 files); skips on the pack."""
    if not lfw_source.full or not {"10_folds", "dev_train", "dev_test"} <= set(lfw_source.subsets):
        skip_for_data(
            f"needs the full LFW: set {LFW_HOME_ENV} to a data home holding lfw_home/ with pairs.txt, "
            f"pairsDevTrain.txt and pairsDevTest.txt (found {lfw_source.describe()})"
        )
    return lfw_source.home


@pytest.fixture(scope="session")
def sample_data(lfw_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only-by-convention folder of symlinks: ``faces_small``, ``faces_group`` (the bundled
    photos) and ``sklearn`` (the LFW data home in use)."""
    root = tmp_path_factory.mktemp("sample_data")
    (root / "faces_small").symlink_to(SAMPLES_DIR / "faces_small", target_is_directory=True)
    (root / "faces_group").symlink_to(SAMPLES_DIR / "faces_group", target_is_directory=True)
    (root / "sklearn").symlink_to(lfw_home, target_is_directory=True)
    return root


# ----------------------------------------------------------------------------- gallery stores


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL + pgvector for the whole session (tests/stores.py); its log must show no crash."""
    import shutil
    import tempfile

    from tests.stores import PostgresServer

    # Not under pytest's tmp folder: as root, pgserver runs PostgreSQL as its own user, which must reach it.
    folder = Path(tempfile.mkdtemp(prefix="facecore-pg-"))
    server = PostgresServer(folder)
    yield server
    crashes = server.crashes()
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)
    assert not crashes, "the PostgreSQL server crashed:\n" + "\n".join(crashes)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> str:
    """Each gallery store in turn; a test that takes it runs once per store."""
    return request.param


@pytest.fixture(scope="session")
def url_at(store: str, request: pytest.FixtureRequest):
    """``url_at(path)``: the URL of the gallery "at" ``path`` in the current store (a folder for SQLite,
    a schema of the session's PostgreSQL otherwise)."""
    from tests.stores import store_url

    server = request.getfixturevalue("postgres_server") if store == "postgresql" else None
    return lambda path: store_url(store, path, server)


@pytest.fixture(scope="session")
def gallery_at(url_at):
    """``gallery_at(path)``: the gallery "at" ``path`` in the current store, opened by ``open_gallery``."""
    from facecore.gallery import open_gallery

    return lambda path: open_gallery(url_at(path))


# ----------------------------------------------------------------------------- dlib's own chips

#: Faces in :func:`dlib_chips`, the oracle set the dlib ports are checked on.
N_ORACLE_FACES = 60


@pytest.fixture(scope="session")
def dlib_chips(lfw_home: Path):
    """Chips made by dlib's own pipeline (HOG, 5-point shape, get_face_chip) from many LFW people: the
    inputs on which the Keras port and the onnxruntime graph are checked against dlib itself."""
    import dlib
    import face_recognition_models
    import numpy as np

    from facecore.images import load_image

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
    people = sorted((lfw_home / "lfw_home" / "lfw_funneled").iterdir())
    chips = []
    # People spread over the alphabet (every 57th of full LFW, every 4th of the bundled mini LFW).
    for person in people[:: max(1, len(people) // 100)]:
        image = load_image(sorted(person.glob("*.jpg"))[0])
        if found := detector(image, 1):
            chips.append(dlib.get_face_chip(image, predictor(image, found[0]), size=150, padding=0.25))
        if len(chips) == N_ORACLE_FACES:
            break
    assert len(chips) == N_ORACLE_FACES
    return np.stack(chips)
