"""The dashboard's security-facing parts with Streamlit's AppTest: the Audit log page (filter, CSV),
names that could display as another name refused on the Gallery page, and folder import confined to
``$FACECORE_IMPORT_ROOT`` (off by default; path traversal refused with a message)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from facecore.gallery import Gallery, GalleryError
from facecore.gallery.audit import AuditEntry, record
from facecore.gallery.audit import entries as audit_entries
from facecore.gallery.import_root import allowed_import_root, resolve_under

APP = Path(__file__).resolve().parents[1] / "app.py"
TIMEOUT = 300


@pytest.fixture
def gallery_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "gallery"
    monkeypatch.setenv("FACECORE_GALLERY_DIR", str(root))
    return root


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def test_the_audit_page_lists_filters_and_exports(gallery_dir: Path) -> None:
    with Gallery(gallery_dir) as gallery:
        record(gallery.database, AuditEntry("kiosk", "POST /verify", {"same_person": True, "distance": 0.41}, threshold=0.6))
        record(gallery.database, AuditEntry("admin-key", "DELETE /people/{person_id}", {"deleted": "person"}, ids=[7]))
        record(gallery.database, AuditEntry("kiosk", "POST /identify", {"faces": []}, threshold=0.6))
    at = open_page("audit_log")
    table = at.dataframe[0].value
    assert table["route"].tolist() == ["POST /identify", "DELETE /people/{person_id}", "POST /verify"]
    assert table["ids"].tolist() == ["[]", "[7]", "[]"]

    at.selectbox(key="audit_key").set_value("kiosk").run()
    assert at.dataframe[0].value["key_name"].tolist() == ["kiosk", "kiosk"]
    at.text_input(key="audit_route").input("verify").run()
    only = at.dataframe[0].value
    assert only["route"].tolist() == ["POST /verify"] and '"distance": 0.41' in only["result"].iloc[0]
    csv = at.get("download_button")[0]
    assert csv.proto.label == "Download CSV" and not csv.proto.disabled

    at.text_input(key="audit_route").input("nothing like this").run()
    assert not at.dataframe and "No audit entries match" in at.info[0].value


def test_the_audit_page_says_when_it_shows_only_the_newest_entries(gallery_dir: Path) -> None:
    with Gallery(gallery_dir) as gallery:
        for i in range(10_001):
            record(gallery.database, AuditEntry("kiosk", "POST /verify", {"i": i}))
    at = open_page("audit_log")
    assert len(at.dataframe[0].value) == 10_000 and at.dataframe[0].value["result"].iloc[0] == '{"i": 10000}'
    assert "More than 10,000 entries match" in at.warning[0].value


def test_the_gallery_page_refuses_names_that_display_as_another(gallery_dir: Path) -> None:
    at = open_page("gallery")
    for name, words in (("Eve\u202eboB", "bidirectional"), ("Bo\u200bb", "zero-width")):
        at.text_input(key="new_person_name").input(name)
        at.button(key="create_person").click().run()
        assert not at.exception
        assert any(words in e.value for e in at.error), [e.value for e in at.error]
    with Gallery(gallery_dir) as gallery:
        assert gallery.people() == []


def test_changes_made_on_the_gallery_page_are_in_the_audit_log(gallery_dir: Path) -> None:
    """A person created and renamed on the page: one entry each, as the caller "(dashboard)"."""
    at = open_page("gallery")
    at.text_input(key="new_person_name").input("Barack Obama")
    at.button(key="create_person").click().run()
    with Gallery(gallery_dir) as gallery:
        (person,) = gallery.people()
        gallery.rename_person(person.id, "B. Obama")  # not through the page: not the dashboard's entry
        gallery.rename_person(person.id, "Barack Obama")
    at.text_input(key=f"rename_{person.id}").input("Barack H. Obama")
    at.button(key=f"rename_go_{person.id}").click().run()
    assert not at.exception, at.exception
    with Gallery(gallery_dir) as gallery:
        logged = audit_entries(gallery.database, key_name="(dashboard)")
    assert [(e.route, list(e.ids)) for e in logged] == [
        ("dashboard: rename person", [person.id]), ("dashboard: create person", [person.id])
    ]
    assert logged[1].result == {"name": "Barack Obama"} and logged[0].result == {"name": "Barack H. Obama"}


def test_folder_import_is_off_by_default(gallery_dir: Path) -> None:
    at = open_page("gallery")
    assert at.radio(key="import_source").options == ["Zip file"]
    assert not [t for t in at.text_input if t.key == "import_folder"]
    assert any("FACECORE_IMPORT_ROOT" in c.value for c in at.caption)


def test_folder_import_reads_only_under_the_allowed_root(
    gallery_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, faces_small
) -> None:
    root = tmp_path / "imports"
    (root / "people" / "Barack Obama").mkdir(parents=True)
    shutil.copy(faces_small["obama"][0], root / "people" / "Barack Obama" / "a.jpg")
    outside = tmp_path / "private" / "Joe Biden"
    outside.mkdir(parents=True)
    shutil.copy(faces_small["biden"][0], outside / "b.jpg")
    (root / "escape").symlink_to(tmp_path / "private", target_is_directory=True)
    monkeypatch.setenv("FACECORE_IMPORT_ROOT", str(root))

    at = open_page("gallery")
    at.radio(key="import_source").set_value("Folder on the server").run()
    for typed in ("../private", str(tmp_path / "private"), "escape", "people/../../private", "/etc"):
        at.text_input(key="import_folder").input(typed).run()
        at.button(key="import_folder_go").click().run()
        assert not at.exception
        assert any("Only folders under" in e.value for e in at.error), (typed, [e.value for e in at.error])
        assert str(tmp_path / "private") not in " ".join(e.value for e in at.error) or typed.startswith("/")
    with Gallery(gallery_dir) as gallery:
        assert gallery.people() == []

    at.text_input(key="import_folder").input("people").run()
    at.button(key="import_folder_go").click().run()
    assert not at.exception and not at.error
    with Gallery(gallery_dir) as gallery:
        assert [(p.name, p.face_count) for p in gallery.people()] == [("Barack Obama", 1)]


def test_resolve_under_refuses_every_way_out(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "inside").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    (root / "link").symlink_to(tmp_path / "out", target_is_directory=True)
    assert resolve_under(root.resolve(), "inside") == (root / "inside").resolve()
    assert resolve_under(root.resolve(), str(root / "inside")) == (root / "inside").resolve()
    for typed in ("..", "../out", "link", "inside/../../out", str(tmp_path / "out"), "/"):
        with pytest.raises(GalleryError, match="Only folders under"):
            resolve_under(root.resolve(), typed)
    with pytest.raises(GalleryError, match="no folder"):
        resolve_under(root.resolve(), "missing")
    assert allowed_import_root({}) is None
    with pytest.raises(GalleryError, match="FACECORE_IMPORT_ROOT"):
        allowed_import_root({"FACECORE_IMPORT_ROOT": str(tmp_path / "nope")})
