"""The dashboard driven end to end with Streamlit's AppTest: real models, real photos, a temp gallery.

AppTest (streamlit 1.67) drives ``st.file_uploader`` and ``st.camera_input`` directly
(``set_value((name, bytes, mime))``), so uploads here go through the same widgets a person uses.
One difference from a browser: the browser refuses files whose extension is not in the uploader's
``type`` list before they reach the server, while AppTest sends them and Streamlit raises; so the
"bad file" tests use an image extension on bytes that are not an image (a renamed or corrupt file),
which is what can really reach a page.
"""

from __future__ import annotations

import hashlib
import io
import sqlite3
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[1] / "app.py"
TIMEOUT = 300  # the first run in a process imports TensorFlow and loads the models


@pytest.fixture
def gallery_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "gallery"
    monkeypatch.setenv("FACECORE_GALLERY_DIR", str(root))
    return root


@pytest.fixture
def app(gallery_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def go(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def jpeg(path: Path) -> tuple[str, bytes, str]:
    return (path.name, path.read_bytes(), "image/jpeg")


def values(elements) -> list[str]:
    return [e.value for e in elements]


def joined(elements) -> str:
    return "\n".join(values(elements))


# ----------------------------------------------------------------------------- shell and settings


def test_no_pages_folder_beside_the_entry_point() -> None:
    # A pages/ folder switches Streamlit to v1 multipage mode, which skips app.py (see its docstring).
    assert not (APP.parent / "pages").exists(), "put page scripts in app_pages/ and list them in app.py"


def test_home_renders_links_and_settings(app: AppTest) -> None:
    assert "Face Verification Lab" in values(app.title)
    assert len(app.page_link) == 9  # every page of the navigation
    assert values(app.metric)[:3] == ["hog", "euclidean", "off"]
    assert [s.label for s in app.sidebar.selectbox] == ["Face detector", "Distance metric", "Embedding model"]
    assert "Default:" in joined(app.sidebar.caption)


def default_threshold(detector: str, metric: str) -> float:
    """The default the sidebar should start from: facecore's, for the dashboard's config."""
    from facecore.config import PipelineConfig
    from facecore.verification import default_threshold

    return default_threshold(PipelineConfig.interactive(detector=detector), metric).value


def test_threshold_follows_the_configuration_unless_set(app: AppTest) -> None:
    threshold = app.slider(key="threshold")
    assert threshold.value == pytest.approx(default_threshold("hog", "euclidean"))

    app.selectbox(key="metric").set_value("cosine").run()
    assert app.slider(key="threshold").value == pytest.approx(default_threshold("hog", "cosine"))
    assert app.button(key="reset_threshold").disabled

    app.slider(key="threshold").set_value(0.05).run()
    assert "Your threshold" in joined(app.sidebar.caption)
    app.selectbox(key="detector").set_value("haar").run()  # a chosen value survives a detector change
    assert app.slider(key="threshold").value == pytest.approx(0.05)

    app.button(key="reset_threshold").click().run()
    assert app.slider(key="threshold").value == pytest.approx(default_threshold("haar", "cosine"))
    assert not app.exception


def test_draw_faces_marks_every_face_on_a_small_copy() -> None:
    from facecore.types import Face
    from ui.drawing import draw_faces

    image = np.zeros((3000, 2000, 3), np.uint8)
    faces = [
        Face(
            (100, 100, 800, 800),
            1.0,
            np.array([[300, 400], [600, 400], [450, 550], [350, 700], [550, 700]], np.float32),
            "x",
        ),
        Face((1200, 1500, 400, 400), 0.5, None, "x"),
    ]
    out = draw_faces(image, faces, selected=0, max_side=1000)
    assert out.shape == (1000, 667, 3) and out.any()
    assert not image.any()  # the input is not drawn on


# ----------------------------------------------------------------------------- verify


def test_verify_two_photos_of_the_same_person(app: AppTest, faces_small) -> None:
    go(app, "verify")
    # A through the example-photo picker, B through the uploader.
    app.radio(key="verify_a_source").set_value("Example photo").run()
    app.selectbox(key="verify_a_example").set_value("obama/1.jpg")
    app.file_uploader(key="verify_b_upload").set_value(jpeg(faces_small["obama"][1]))
    app.run()
    assert not app.exception
    assert "Same person" in joined(app.success)
    assert not app.error
    assert len(app.image) >= 3  # both annotated photos and the chips

    # The embeddings are drawn on demand only: one more chart (two 128-bar series) once asked for.
    charts = len(app.get("plotly_chart"))
    app.toggle(key="verify_show_embeddings").set_value(True).run()
    assert len(app.get("plotly_chart")) == charts + 1


def test_verify_two_different_people(app: AppTest, faces_small) -> None:
    go(app, "verify")
    app.file_uploader(key="verify_a_upload").set_value(jpeg(faces_small["obama"][0]))
    app.file_uploader(key="verify_b_upload").set_value(jpeg(faces_small["biden"][0]))
    app.run()
    assert not app.exception
    assert "Different people" in joined(app.error)
    assert not app.success


def test_verify_group_photo_offers_a_face_picker(app: AppTest, faces_small) -> None:
    go(app, "verify")
    app.file_uploader(key="verify_a_upload").set_value(jpeg(faces_small["biden"][0]))
    # B is a bundled group photo, from the example chooser, which lists it as a group photo.
    app.radio(key="verify_b_source").set_value("Example photo").run()
    chooser = app.selectbox(key="verify_b_example")
    assert "Group photo: obama_and_biden.jpg" in chooser.options
    assert "obama/1.jpg" in chooser.options  # the portraits are still there
    chooser.set_value("group/obama_and_biden.jpg")
    app.run()
    assert not app.exception, app.exception
    picker = app.selectbox(key="verify_b_face")
    assert len(picker.options) >= 2
    decisions = set()
    for index in range(len(picker.options)):
        app.selectbox(key="verify_b_face").set_value(index).run()
        assert not app.exception
        decisions.add("Same person" in joined(app.success))
    assert decisions == {True, False}  # Biden is one of the faces, and not the only one


def test_verify_rejects_bad_files_with_a_message(app: AppTest) -> None:
    go(app, "verify")
    app.file_uploader(key="verify_a_upload").set_value(
        ("holiday.jpg", b"this is not a picture", "image/jpeg")
    )
    app.file_uploader(key="verify_b_upload").set_value(("empty.png", b"", "image/png"))
    app.run()
    assert not app.exception
    errors = joined(app.error)
    assert "holiday.jpg: This file is not an image we can read" in errors
    assert "empty.png: The file is empty." in errors


def test_verify_places_the_pair_on_the_lfw_chart(app: AppTest, faces_small) -> None:
    # The real stored distances of LFW pairs.txt for the default configuration (hog, euclidean).
    go(app, "verify")
    app.file_uploader(key="verify_a_upload").set_value(jpeg(faces_small["obama"][0]))
    app.file_uploader(key="verify_b_upload").set_value(jpeg(faces_small["obama"][2]))
    app.run()
    assert not app.exception
    specs = [chart.proto.spec for chart in app.get("plotly_chart")]
    assert any("same person (LFW)" in spec and "this pair" in spec for spec in specs)
    caption = joined(app.caption)
    assert "At this threshold on LFW's 6,000 pairs" in caption and "In-sample" in caption


def test_verify_with_arcface_and_scrfd_says_the_weights_terms(app: AppTest, faces_small) -> None:
    app.selectbox(key="detector").set_value("scrfd").run()
    app.selectbox(key="model").set_value("arcface-keras").run()
    assert "non-commercial research use only" in joined(app.sidebar.caption)
    go(app, "verify")
    app.file_uploader(key="verify_a_upload").set_value(jpeg(faces_small["obama"][0]))
    app.file_uploader(key="verify_b_upload").set_value(jpeg(faces_small["obama"][1]))
    app.run()
    assert not app.exception
    assert "Same person" in joined(app.success)
    app.file_uploader(key="verify_b_upload").set_value(jpeg(faces_small["biden"][0]))
    app.run()
    assert "Different people" in joined(app.error)
    assert app.toggle(key="verify_show_embeddings").label == "Show the two 512-D embeddings"


def test_verify_voters_rule_decides_one_close_reference_among_far_ones(
    app: AppTest, faces_small, gallery_dir: Path
) -> None:
    # One reference of the probe's person (close) and two of someone else (far): the mean is above
    # the threshold, the nearest below it, and only 1 of 3 references accepts.
    go(app, "verify")
    app.toggle(key="verify_voters").set_value(True).run()
    app.file_uploader(key="voters_probe_upload").set_value(jpeg(faces_small["obama"][2]))
    app.file_uploader(key="voters_refs_upload").set_value(
        [jpeg(faces_small["obama"][0]), jpeg(faces_small["biden"][0]), jpeg(faces_small["biden"][1])]
    )
    app.run()
    assert not app.exception, app.exception
    assert app.radio(key="voters_rule").value == "mean"  # the default rule
    table = app.dataframe[0].value
    assert table["vote"].tolist() == ["accept", "reject", "reject"]
    threshold = app.slider(key="threshold").value
    distances = table["distance"].to_numpy()
    assert distances.min() <= threshold < distances.mean()  # the constructed case
    assert "**Different people**: mean euclidean distance" in joined(app.error)
    assert "1 of 3" in joined(app.markdown) and "(33%)" in joined(app.markdown)
    assert "Mean distance" in joined(app.caption)
    # The rates beside it are of single comparisons, and say they are read at the mean of three.
    assert "rates of one comparison, read at the mean of 3 distances" in joined(app.markdown)

    app.radio(key="voters_rule").set_value("nearest").run()
    assert not app.exception, app.exception
    assert "**Same person**: nearest euclidean distance" in joined(app.success)
    assert f"{distances.min():.3f}" in joined(app.success)
    assert "Nearest distance" in joined(app.caption)

    app.radio(key="voters_rule").set_value("majority").run()
    assert not app.exception, app.exception
    assert "**Different people**: 1 of 3 references accept (majority rule" in joined(app.error)
    # Each rule's decision is in the gallery's audit log once (no photos in it).
    from facecore.gallery import Gallery, audit

    with Gallery(gallery_dir) as gallery:
        logged = audit.entries(gallery.database, route="dashboard: verify voters")
    assert [e.result["rule"] for e in logged] == ["majority", "nearest", "mean"]  # newest first
    assert [e.result["same_person"] for e in logged] == [False, True, False]
    assert all(e.result["voters"] == 3 and e.result["votes"] == 1 for e in logged)
    assert "read at the median of 3 distances" in joined(app.markdown)  # majority's rates too, as in the API


def test_identify_says_when_the_nearest_face_and_the_vote_disagree(
    app: AppTest, faces_small, gallery_dir: Path
) -> None:
    # The same person enrolled under two names: the probe photo itself under one (distance 0, the
    # nearest face), three other photos under the other (within the threshold, the vote's winner).
    from facecore.config import PipelineConfig
    from facecore.gallery import Gallery
    from facecore.pipeline import build_pipeline

    pipeline = build_pipeline(PipelineConfig.interactive(detector="hog"))
    obama = faces_small["obama"]
    with Gallery(gallery_dir) as gallery:
        nearest = gallery.create_person("Obama A")
        gallery.enrol(nearest.id, obama[2].read_bytes(), pipeline)
        voted = gallery.create_person("Obama B")
        for photo in (obama[0], obama[1], obama[3]):
            gallery.enrol(voted.id, photo.read_bytes(), pipeline)

    go(app, "identify")
    assert app.radio(key="identify_rule").value == "nearest"
    app.file_uploader(key="identify_probe_upload").set_value(jpeg(obama[2]))
    app.run()
    assert not app.exception, app.exception
    assert "Face 1: **Obama A** (L2 distance 0.000" in joined(app.success)
    note = joined(app.info)
    assert "disagree" in note and "**Obama A**" in note and "**Obama B**" in note
    assert "Winner: **Obama B**" in joined(app.markdown)

    app.radio(key="identify_rule").set_value("majority").run()
    assert not app.exception, app.exception
    assert "Face 1: **Obama B** (3 of the 4 nearest gallery faces" in joined(app.success)
    assert "disagree" in joined(app.info)


def test_identify_names_each_face_of_an_example_group_photo(app: AppTest, faces_small, gallery_dir: Path) -> None:
    from facecore.config import PipelineConfig
    from facecore.gallery import Gallery
    from facecore.pipeline import build_pipeline

    pipeline = build_pipeline(PipelineConfig.interactive(detector="hog"))
    with Gallery(gallery_dir) as gallery:
        for name, person in (("Barack Obama", "obama"), ("Joe Biden", "biden")):
            enrolled = gallery.create_person(name)
            for photo in faces_small[person][:2]:
                gallery.enrol(enrolled.id, photo.read_bytes(), pipeline)

    go(app, "identify")
    app.radio(key="identify_probe_source").set_value("Example photo").run()
    app.selectbox(key="identify_probe_example").set_value("group/obama_and_biden.jpg").run()
    assert not app.exception, app.exception
    assert not app.error
    caption = next(c for e in app.image for c in e.captions if c.startswith("group/obama_and_biden.jpg: "))
    found = int(caption.split(": ")[-1].split()[0])  # "group/obama_and_biden.jpg: N face(s)"
    assert found >= 2
    answers = joined(app.success) + "\n" + joined(app.warning)
    assert all(f"Face {i}: " in answers for i in range(1, found + 1))  # one answer per face
    assert "**Barack Obama**" in joined(app.success) and "**Joe Biden**" in joined(app.success)

    # The answer is in the audit log, once: a rerun for the same photo and settings adds nothing,
    # another k is another question.
    from facecore.gallery import audit

    def logged() -> list:
        with Gallery(gallery_dir) as gallery:
            return audit.entries(gallery.database, route="dashboard: identify")

    app.run()
    [entry] = logged()
    assert entry.key_name == "(dashboard)" and len(entry.result["faces"]) == found
    assert {"Barack Obama", "Joe Biden"} <= {face["name"] for face in entry.result["faces"]}
    assert entry.threshold is not None and entry.ids
    app.slider(key="identify_k").set_value(3).run()
    assert len(logged()) == 2


# ----------------------------------------------------------------------------- gallery and identify


def _rows_with(db: Path, needle: str) -> int:
    """Rows of any table in the sqlite file holding ``needle`` in some column."""
    with sqlite3.connect(db) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return sum(
            needle in [str(v) for v in row]
            for table in tables
            for row in con.execute(f'SELECT * FROM "{table}"')
        )


def test_identify_with_an_empty_gallery_points_to_the_gallery(app: AppTest) -> None:
    go(app, "identify")
    assert "gallery is empty" in joined(app.info)
    assert [link.label for link in app.page_link] == ["Open the Gallery"]


def test_gallery_create_enrol_list_then_identify(app: AppTest, faces_small, gallery_dir: Path) -> None:
    go(app, "gallery")
    app.text_input(key="new_person_name").input("Barack Obama")
    app.button(key="create_person").click().run()
    assert "Created Barack Obama" in joined(app.success)

    app.text_input(key="new_person_name").input("  ")  # a nameless person is refused with a message
    app.button(key="create_person").click().run()
    assert not app.exception and app.error

    photo = faces_small["obama"][0]
    app.file_uploader(key="enrol_0_upload").set_value(
        [jpeg(photo), ("broken.jpg", b"\xff\xd8\xff\xe0 truncated", "image/jpeg")]
    )
    app.run()
    app.button(key="enrol_go").click().run()
    assert not app.exception
    assert f"{photo.name}: enrolled" in joined(app.success)
    assert "broken.jpg" in joined(app.error)  # reported and skipped

    listed = app.dataframe[0].value
    assert listed[["name", "faces"]].values.tolist() == [["Barack Obama", 1]]
    databases = [p for p in gallery_dir.rglob("*") if p.suffix in {".db", ".sqlite", ".sqlite3"}]
    assert databases, f"no sqlite file under {gallery_dir}"
    sha = hashlib.sha256(photo.read_bytes()).hexdigest()
    assert any(_rows_with(db, "Barack Obama") for db in databases)
    assert any(_rows_with(db, sha) for db in databases)

    go(app, "identify")
    app.file_uploader(key="identify_probe_upload").set_value(jpeg(faces_small["obama"][1]))
    app.run()
    assert not app.exception
    assert "Barack Obama" in joined(app.success)

    app.file_uploader(key="identify_probe_upload").set_value(jpeg(faces_small["biden"][0]))
    app.run()
    assert "unknown" in joined(app.warning)

    # Voters mode against the stored faces of the gallery person.
    go(app, "verify")
    app.toggle(key="verify_voters").set_value(True).run()
    app.file_uploader(key="voters_probe_upload").set_value(jpeg(faces_small["obama"][2]))
    app.radio(key="voters_ref_source").set_value("Gallery person")
    app.run()
    assert not app.exception
    assert "Same person" in joined(app.success)
    assert app.dataframe[0].value["vote"].tolist() == ["accept"]


def test_gallery_imports_a_zip_of_person_folders(app: AppTest, faces_small) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("people/kit_harington/1.jpg", faces_small["kit_harington"][0].read_bytes())
        zf.writestr("people/rose_leslie/1.jpg", faces_small["rose_leslie"][0].read_bytes())
        zf.writestr("people/rose_leslie/notes.jpg", b"not a photo")
    go(app, "gallery")
    app.radio(key="import_source").set_value("Zip file").run()
    app.file_uploader(key="import_zip").set_value(("people.zip", archive.getvalue(), "application/zip")).run()
    app.button(key="import_zip_go").click().run()
    assert not app.exception
    assert "Enrolled 2 face(s) for 2 person(s)" in joined(app.success)
    assert "Skipped 1 file(s)" in joined(app.warning)
    assert sorted(app.dataframe[0].value["name"]) == ["kit harington", "rose leslie"]


def test_gallery_demo_from_lfw_in_one_click(app: AppTest, lfw_source) -> None:
    from facecore.evaluation.datasets import lfw_people

    go(app, "gallery")
    minimum = app.number_input(key="lfw_min").value
    assert minimum == (20 if lfw_source.full else 8)  # the pack: 50 people with 8 photos
    people = lfw_people(lfw_source.home, min_images=minimum)
    assert len(people) == (62 if lfw_source.full else 50)
    assert app.button(key="lfw_go").label == f"Load a demo gallery ({len(people)} people)"
    note = "Using full LFW" if lfw_source.full else "Using the bundled mini LFW: 953 images of 424 people"
    assert note in joined(app.caption)
    app.number_input(key="lfw_per_person").set_value(1).run()  # one photo each keeps the test short
    app.button(key="lfw_go").click().run()
    assert not app.exception
    assert f"for {len(people)} person(s)" in joined(app.success)
    assert len(app.dataframe[0].value) == len(people)


def test_gallery_offers_the_full_lfw_and_says_when_offline(app: AppTest, tmp_path, monkeypatch) -> None:
    from facecore.evaluation.datasets import BUNDLED_LFW_HOME

    monkeypatch.setenv("FACECORE_LFW_HOME", str(BUNDLED_LFW_HOME))  # only the pack, whatever is installed
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "sk"))
    go(app, "gallery")
    assert "about 230 MB" in joined(app.caption) and "needs internet access" in joined(app.caption)
    assert app.button(key="gallery_download_lfw").label == "Download full LFW"
    assert not (tmp_path / "sk").exists()  # nothing is fetched until the button is clicked

    closed = "http://127.0.0.1:9"  # nothing listens there: the download fails at once, as offline
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, closed)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    # urllib builds its shared opener with the proxies of the moment: drop it afterwards, so the closed
    # proxy does not outlive this test in the process.
    monkeypatch.setattr(urllib.request, "_opener", None)
    app.button(key="gallery_download_lfw").click().run()
    assert not app.exception
    assert "LFW could not be downloaded" in joined(app.error) and "needs internet access" in joined(app.error)
    assert "bundled mini LFW keeps working" in joined(app.error)


def test_a_wrong_lfw_home_is_said_not_raised(app: AppTest, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FACECORE_LFW_HOME", str(tmp_path / "no-lfw-here"))
    go(app, "gallery")
    assert not app.exception
    assert "Unset FACECORE_LFW_HOME" in joined(app.error)
    assert not (tmp_path / "no-lfw-here").exists()
