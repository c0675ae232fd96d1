"""Bring-your-own model: a kept ``.keras`` embedder chosen in the sidebar drives Verify, Gallery and Identify.

The model is a real (small, untrained) Keras encoder behind the pipeline's chip format, saved where
"Train your own" keeps models. What is checked is the routing: the pages embed with the chosen model,
say that its threshold is not calibrated, and never compare its vectors with the pretrained model's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from facecore.classroom.models import build_encoder, export_for_chips, save_model
from facecore.config import PipelineConfig
from facecore.embedding import DEFAULT_EMBEDDER
from facecore.gallery import Gallery
from facecore.pipeline import build_pipeline

APP = Path(__file__).resolve().parents[1] / "app.py"
MODEL = "mine.keras"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    encoder = build_encoder((32, 32, 1), embedding_size=16, seed=1)
    save_model(export_for_chips(encoder), folder / MODEL)
    return folder


@pytest.fixture
def app(models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("FACECORE_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("FACECORE_GALLERY_DIR", str(tmp_path / "gallery"))
    at = AppTest.from_file(str(APP), default_timeout=300)
    at.run()
    assert not at.exception, at.exception
    return at


def jpeg(path: Path) -> tuple[str, bytes, str]:
    return (path.name, path.read_bytes(), "image/jpeg")


def texts(elements) -> str:
    return "\n".join(e.value for e in elements)


def choose_model(at: AppTest) -> None:
    assert MODEL in at.selectbox(key="model").options
    at.selectbox(key="model").set_value(MODEL).run()
    assert not at.exception, at.exception


def test_verify_with_a_kept_model_says_its_threshold_is_not_calibrated(app: AppTest, faces_small) -> None:
    choose_model(app)
    assert f"not calibrated for {MODEL}" in texts(app.caption)
    app.switch_page("app_pages/verify.py").run()
    app.file_uploader(key="verify_a_upload").set_value(jpeg(faces_small["obama"][0]))
    app.file_uploader(key="verify_b_upload").set_value(jpeg(faces_small["obama"][1]))
    app.run()
    assert not app.exception, app.exception
    decision = texts(app.success) + texts(app.error)
    assert "Same person" in decision or "Different people" in decision
    assert "measured with the pretrained model" in texts(app.info)  # no LFW chart for another model

    # The Threshold lab, where the caption sends you, offers only the gallery's pairs for this model.
    app.switch_page("app_pages/threshold_lab.py").run()
    assert not app.exception, app.exception
    assert app.radio(key="tl_source").options == ["All pairs of the gallery"]


def test_identify_searches_only_faces_of_the_chosen_model(
    app: AppTest, faces_small, tmp_path: Path
) -> None:
    pretrained = build_pipeline(PipelineConfig.interactive(detector="hog"))
    with Gallery(tmp_path / "gallery") as gallery:
        obama = gallery.create_person("Barack Obama")
        gallery.enrol(obama.id, faces_small["obama"][0].read_bytes(), pretrained)
        biden = gallery.create_person("Joe Biden")  # enrolled with the pretrained model only
        gallery.enrol(biden.id, faces_small["biden"][0].read_bytes(), pretrained)

    choose_model(app)
    app.switch_page("app_pages/identify.py").run()
    assert f"no faces embedded by the sidebar's model, {MODEL}" in texts(app.info)

    app.switch_page("app_pages/gallery.py").run()
    app.selectbox(key="enrol_person").set_value(obama.id)
    app.file_uploader(key="enrol_0_upload").set_value([jpeg(faces_small["obama"][1])])
    app.run()
    app.button(key="enrol_go").click().run()
    assert not app.exception, app.exception
    assert "enrolled" in texts(app.success), (texts(app.error), texts(app.warning), texts(app.info))

    app.switch_page("app_pages/identify.py").run()
    app.file_uploader(key="identify_probe_upload").set_value(jpeg(faces_small["obama"][1]))
    app.run()
    assert not app.exception, app.exception
    assert "Barack Obama" in texts(app.success)  # the same photo, embedded by the same model: distance 0
    assert "2 gallery faces embedded by other models are not searched" in texts(app.caption)

    # Biden's pretrained face is never a candidate for this model, even for the very photo enrolled.
    app.file_uploader(key="identify_probe_upload").set_value(jpeg(faces_small["biden"][0]))
    app.run()
    assert not app.exception, app.exception
    shown = "\n".join(texts(kind) for kind in (app.success, app.warning, app.caption, app.markdown))
    assert "Joe Biden" not in shown
    with Gallery(tmp_path / "gallery") as gallery:
        assert len(gallery.model_versions()) == 2  # each model's faces kept apart


def test_a_kept_model_that_disappears_falls_back_to_the_pretrained_model(app: AppTest, models_dir: Path) -> None:
    gone = models_dir / "gone.keras"
    gone.write_bytes((models_dir / MODEL).read_bytes())
    try:
        app.run()
        app.selectbox(key="model").set_value(gone.name).run()
        assert app.selectbox(key="model").value == gone.name
    finally:
        gone.unlink()
    app.run()
    assert not app.exception, app.exception
    assert "gone.keras is gone; using the pretrained model" in texts(app.warning)
    assert app.selectbox(key="model").value == DEFAULT_EMBEDDER
    assert "not calibrated" not in texts(app.caption)
