"""Issue 17 pages with AppTest: Your data scores a set and saves an operating point; Verify and Identify decide with it and give confidences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from facecore.evaluation.datasets import SAMPLES_DIR
from tests.archives import zip_bytes

APP = Path(__file__).resolve().parents[1] / "app.py"
FACES_SMALL = SAMPLES_DIR / "faces_small"


@pytest.fixture
def page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("FACECORE_GALLERY_DIR", str(tmp_path / "gallery"))
    at = AppTest.from_file(str(APP), default_timeout=300)
    at.run()
    at.switch_page("app_pages/own_data.py").run()
    assert not at.exception, at.exception
    return at


def _people_zip() -> tuple[str, bytes, str]:
    entries = {f"{p.parent.name}/{p.name}": p.read_bytes() for p in sorted(FACES_SMALL.glob("*/*.jpg"))}
    return ("faces_small.zip", zip_bytes(entries), "application/zip")


def test_a_zip_per_person_is_scored_with_plots_tables_and_both_faces_of_failures(page: AppTest) -> None:
    page.file_uploader(key="own_zip").set_value(_people_zip())
    page.run()
    page.button(key="own_run").click().run()
    assert not page.exception, page.exception
    assert not page.error, [e.value for e in page.error]
    assert "12 genuine and 124 impostor pairs from 17 images" in page.success[0].value
    assert len(page.dataframe) >= 2  # TAR at fixed FARs, the bootstrap of the procedure
    # a threshold far too high: every impostor pair near it is a false accept, shown with both faces
    page.slider(key="own_threshold").set_value(page.slider(key="own_threshold").max).run()
    assert not page.exception, page.exception
    assert "false accept" in "\n".join(m.value for m in page.markdown)
    assert len(page.image) >= 2
    assert len(page.get("plotly_chart")) == 2  # the distributions and the ROC


def test_a_pairs_csv_with_a_wrong_label_is_refused_and_nothing_is_shown(page: AppTest) -> None:
    page.radio(key="own_kind").set_value("A pairs CSV and a zip of its images").run()
    page.file_uploader(key="own_zip").set_value(_people_zip())
    csv = b"image_a,image_b,same\nobama/1.jpg,obama/2.jpg,1\nobama/1.jpg,biden/1.jpg,perhaps\n"
    page.file_uploader(key="own_csv").set_value(("pairs.csv", csv, "text/csv"))
    page.run()
    page.button(key="own_run").click().run()
    assert not page.exception, page.exception
    assert "Nothing was evaluated" in page.error[0].value and "Row(s) 2" in page.error[0].value
    assert not page.success


def test_save_as_operating_point_then_verify_decides_with_it_and_says_so(page: AppTest) -> None:
    page.file_uploader(key="own_zip").set_value(_people_zip())
    page.run()
    page.button(key="own_run").click().run()
    page.text_input(key="own_save_name").set_value("studio")
    page.selectbox(key="own_save_target").set_value("EER")
    page.button(key="FormSubmitter:own_save_form-Save as operating point").click().run()
    assert not page.exception, page.exception
    assert any("Saved operating point 'studio'" in s.value for s in page.success), [s.value for s in page.success]
    threshold = float(page.session_state["threshold"])  # the sidebar now starts from the active point
    assert "operating point 'studio'" in page.sidebar.caption[-1].value

    page.switch_page("app_pages/verify.py").run()
    page.file_uploader(key="verify_a_upload").set_value(("1.jpg", (FACES_SMALL / "obama/1.jpg").read_bytes(), "image/jpeg"))
    page.file_uploader(key="verify_b_upload").set_value(("3.jpg", (FACES_SMALL / "obama/3.jpg").read_bytes(), "image/jpeg"))
    page.run()
    assert not page.exception, page.exception
    captions = "\n".join(c.value for c in page.caption)
    assert "Decided by operating point 'studio'" in captions and f"{threshold:.4f}" in captions
    sentence = "\n".join(m.value for m in page.markdown)
    assert "of 124 impostor pairs in 'faces_small'" in sentence or "none of 124 stranger comparisons" in sentence
    assert "genuine pairs" in sentence


def test_identify_gives_the_confidence_of_each_face_from_the_lfw_calibration(page: AppTest, tmp_path: Path) -> None:
    from facecore.config import PipelineConfig
    from facecore.gallery import Gallery
    from facecore.pipeline import build_pipeline

    pipeline = build_pipeline(PipelineConfig.interactive(detector="hog"))
    with Gallery(tmp_path / "gallery") as gallery:
        person = gallery.create_person("Obama")
        gallery.enrol(person.id, (FACES_SMALL / "obama/1.jpg").read_bytes(), pipeline)
    page.switch_page("app_pages/identify.py").run()
    page.file_uploader(key="identify_probe_upload").set_value(
        ("2.jpg", (FACES_SMALL / "obama/2.jpg").read_bytes(), "image/jpeg")
    )
    page.run()
    assert not page.exception, page.exception
    captions = "\n".join(c.value for c in page.caption)
    assert "impostor pairs in 'LFW pairs.txt'" in captions or "stranger comparisons in 'LFW pairs.txt'" in captions
    assert "of genuine pairs" in captions and "(threshold from: default)" in captions


def test_identify_on_a_cosine_sidebar_decides_with_the_active_euclidean_point_and_charts_the_distance(
    page: AppTest, tmp_path: Path
) -> None:
    # Identify searches with L2 distance; with the sidebar on cosine it must decide as the API does: with
    # the active euclidean operating point. 0.30 is stricter than the two Obama photos' distance (0.36),
    # which the calibrated default (0.614) accepts, so the answer itself shows which threshold decided.
    from facecore.config import PipelineConfig
    from facecore.gallery import Gallery
    from facecore.gallery.operating_points import OperatingPoints
    from facecore.pipeline import build_pipeline
    from facecore.verification.operating_points import from_pairs
    from facecore.verification.thresholds import default_threshold, lfw_distances

    config = PipelineConfig.interactive(detector="hog")
    distances, same = lfw_distances(config, "euclidean")
    point = from_pairs("strict", config, "euclidean", distances, same, target="manual", source="LFW",
                       set_name="LFW pairs.txt", threshold=0.30)
    assert default_threshold(config, "euclidean").value > 0.37  # else the test could not tell them apart
    with Gallery(tmp_path / "gallery") as gallery:
        person = gallery.create_person("Obama")
        gallery.enrol(person.id, (FACES_SMALL / "obama/1.jpg").read_bytes(), build_pipeline(config))
        OperatingPoints(gallery.database).save(point, activate=True)

    page.selectbox(key="metric").set_value("cosine").run()
    page.switch_page("app_pages/identify.py").run()
    page.file_uploader(key="identify_probe_upload").set_value(
        ("2.jpg", (FACES_SMALL / "obama/2.jpg").read_bytes(), "image/jpeg")
    )
    page.run()
    assert not page.exception, page.exception
    assert page.session_state["metric"] == "cosine"
    captions = "\n".join(c.value for c in page.caption)
    assert "those within L2 distance 0.300 count" in captions
    assert "the euclidean threshold the API uses: operating point 'strict': 0.3000" in captions
    assert "(threshold from: operating point 'strict')" in captions and "Decided by operating point 'strict'" in captions
    (verdict,) = [w.value for w in page.warning if w.value.startswith("Face 1")]
    assert "**unknown**" in verdict and "above the threshold 0.300" in verdict
    assert not [s.value for s in page.success if s.value.startswith("Face 1")]

    # The face's nearest distance on the point's distributions, the threshold drawn at the point's.
    (chart,) = [json.loads(c.proto.spec) for c in page.get("plotly_chart")]
    assert {trace["name"] for trace in chart["data"]} == {"same person (LFW pairs.txt)", "different people (LFW pairs.txt)"}
    lines = {a["text"]: shape["x0"] for a, shape in zip(chart["layout"]["annotations"], chart["layout"]["shapes"], strict=True)}
    assert lines["threshold"] == pytest.approx(0.30)
    assert 0.30 < lines["face 1"] < 0.614
    assert f"At distance {lines['face 1']:.4f}" in captions


def test_threshold_lab_saves_an_lfw_operating_point_that_the_sidebar_then_uses(page: AppTest, tmp_path: Path) -> None:
    from facecore.config import PipelineConfig
    from facecore.gallery import Gallery
    from facecore.gallery.audit import entries as audit_entries
    from facecore.gallery.operating_points import OperatingPoints

    page.switch_page("app_pages/threshold_lab.py").run()
    assert not page.exception, page.exception
    page.radio(key="tl_source").set_value("stored").run()
    page.text_input(key="tl_save_name").set_value("strict LFW")
    page.selectbox(key="tl_save_target").set_value("FAR <= 0.1%")
    page.button(key="FormSubmitter:tl_save_form-Save as operating point").click().run()
    assert not page.exception, page.exception
    saved = [s.value for s in page.success if "Saved operating point 'strict LFW'" in s.value]
    assert saved and "FAR <= 0.1% on LFW set 'LFW pairs.txt' (6,000 pairs)" in saved[0]
    with Gallery(tmp_path / "gallery") as gallery:
        active = OperatingPoints(gallery.database).active(PipelineConfig(detector="hog"), "euclidean")
        (logged,) = audit_entries(gallery.database, route="save operating point")
    assert active.name == "strict LFW" and active.set_size == 6000
    assert logged.key_name == "(dashboard)" and logged.result["operating_point"] == "strict LFW"
    assert float(page.session_state["threshold"]) == pytest.approx(active.threshold, abs=1e-9)
    assert "operating point 'strict LFW'" in page.sidebar.caption[-1].value
