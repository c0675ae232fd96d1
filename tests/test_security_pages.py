"""The dashboard's security-facing parts with Streamlit's AppTest: the Audit log page (filter, CSV),
and names that could display as another name refused on the Gallery page."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from facecore.gallery import Gallery
from facecore.gallery.audit import AuditEntry, record

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


def test_the_gallery_page_refuses_names_that_display_as_another(gallery_dir: Path) -> None:
    at = open_page("gallery")
    for name, words in (("Eve\u202eboB", "bidirectional"), ("Bo\u200bb", "zero-width")):
        at.text_input(key="new_person_name").input(name)
        at.button(key="create_person").click().run()
        assert not at.exception
        assert any(words in e.value for e in at.error), [e.value for e in at.error]
    with Gallery(gallery_dir) as gallery:
        assert gallery.people() == []
