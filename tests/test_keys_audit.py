"""API keys and the audit log in a real gallery database: hashed keys, roles, revocation, unique active
names; audit entries, filters, retention and the CSV table; ``python -m facecore api-key``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from facecore.gallery import Gallery, GalleryError
from facecore.gallery.audit import AuditEntry, entries, entries_frame, key_names, record
from facecore.gallery.keys import (
    authenticate,
    create_key,
    has_active_keys,
    list_keys,
    revoke_key,
    role_allows,
)

REPO = Path(__file__).resolve().parents[1]


def test_keys_are_stored_hashed_and_work_until_revoked(tmp_path: Path) -> None:
    with Gallery(tmp_path) as gallery:
        db = gallery.database
        assert not has_active_keys(db)
        key, secret = create_key(db, "kiosk", "enrol")
        assert secret.startswith("fvl_") and len(secret) == 47 and key.prefix == secret[:8]
        assert has_active_keys(db) and authenticate(db, secret) == key
        assert authenticate(db, secret + "x") is None and authenticate(db, "nope") is None
        revision = gallery.revision()
        with pytest.raises(GalleryError, match="already exists"):
            create_key(db, "kiosk", "read")
        with pytest.raises(GalleryError, match="Unknown role"):
            create_key(db, "other", "root")
        with pytest.raises(GalleryError, match="bidirectional"):
            create_key(db, "kiosk\u202e", "read")
        revoked = revoke_key(db, "kiosk")
        assert not revoked.active and authenticate(db, secret) is None and not has_active_keys(db)
        with pytest.raises(GalleryError, match="no active API key"):
            revoke_key(db, "kiosk")
        again, _ = create_key(db, "kiosk", "read")  # a revoked key's name can be reused
        assert [k.name for k in list_keys(db)] == ["kiosk", "kiosk"] and again.active
        assert gallery.revision() == revision  # keys do not touch the faces' revision
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("gallery.sqlite*"))
    assert secret.encode() not in raw


def test_roles_are_ordered() -> None:
    assert role_allows("admin", "read") and role_allows("enrol", "enrol") and role_allows("enrol", "read")
    assert not role_allows("read", "enrol") and not role_allows("enrol", "admin")


def test_audit_entries_filter_and_expire(tmp_path: Path) -> None:
    with Gallery(tmp_path) as gallery:
        db = gallery.database
        first = record(db, AuditEntry("kiosk", "POST /verify", {"same_person": True, "distance": 0.3}, threshold=0.6))
        db.write(lambda c: c.execute("UPDATE audit_log SET time = time - 100 * 86400 WHERE id = ?", (first,)), bump=False)
        record(db, AuditEntry("admin", "DELETE /faces/{face_id}", {"deleted": "face"}, ids=[4]), retention_days=0)
        assert [e.id for e in entries(db)] == [2, first]  # retention 0 keeps everything
        record(db, AuditEntry("kiosk", "POST /identify", {"faces": []}, threshold=0.6), retention_days=90)
        kept = entries(db)
        assert [e.route for e in kept] == ["POST /identify", "DELETE /faces/{face_id}"]  # the 100-day-old one is gone
        assert [e.route for e in entries(db, key_name="kiosk")] == ["POST /identify"]
        assert [e.ids for e in entries(db, route="faces")] == [(4,)]
        assert key_names(db) == ["admin", "kiosk"]
        table = entries_frame(kept)
        assert list(table.columns) == ["id", "time", "key_name", "route", "model_version", "threshold", "result", "ids"]
        assert table["ids"].tolist() == ["[]", "[4]"]


def test_the_command_line_creates_lists_and_revokes_keys(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "facecore", "api-key", "--gallery", str(tmp_path), *args],
            cwd=REPO, capture_output=True, text=True, timeout=300,
        )

    created = cli("create", "--role", "enrol", "--name", "kiosk")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("fvl_") and "only time" in created.stderr
    listed = cli("list")
    assert "kiosk" in listed.stdout and "enrol" in listed.stdout and secret not in listed.stdout
    with Gallery(tmp_path) as gallery:
        assert authenticate(gallery.database, secret).name == "kiosk"
    assert cli("revoke", "kiosk").returncode == 0
    again = cli("revoke", "kiosk")
    assert again.returncode == 2 and "no active API key" in again.stderr
    assert cli("create", "--role", "root", "--name", "x").returncode == 2  # argparse refuses the role


def test_the_command_line_and_python_m_api_use_the_gallery_the_api_serves(
    url_at, store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """On either store, named by ``$FACECORE_GALLERY_URL`` alone or by ``--gallery URL``: a key created on
    the command line is listed, accepted by the API's check, and makes ``python -m api`` see a key; the
    SQLite folder of ``$FACECORE_GALLERY_DIR`` is neither read nor created."""
    from api.__main__ import gallery_keys
    from api.__main__ import main as api_main
    from facecore.cli import main as cli_main
    from facecore.gallery import open_gallery

    url = url_at(tmp_path / "served")
    unused_dir = tmp_path / "not-the-gallery"
    monkeypatch.setenv("FACECORE_GALLERY_URL", url)
    monkeypatch.setenv("FACECORE_GALLERY_DIR", str(unused_dir))

    location, keys_exist = gallery_keys()
    assert not keys_exist
    assert api_main(["--host", "0.0.0.0", "--port", "1"]) == 2  # refused before any bind: no key in *this* gallery
    refused = capsys.readouterr().err
    assert f"No API key exists in the gallery at {location}" in refused and "--insecure" in refused

    env = {**os.environ, "FACECORE_GALLERY_URL": url, "FACECORE_GALLERY_DIR": str(unused_dir)}
    created = subprocess.run(
        [sys.executable, "-m", "facecore", "api-key", "create", "--role", "admin", "--name", "ops"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("fvl_") and location in created.stderr
    if store == "postgresql":
        assert "postgresql://" in created.stderr

    with open_gallery(url) as gallery:
        assert authenticate(gallery.database, secret).name == "ops"
    assert gallery_keys() == (location, True)

    monkeypatch.delenv("FACECORE_GALLERY_URL")  # now only --gallery names it
    assert cli_main(["api-key", "--gallery", url, "list"]) == 0
    listed = capsys.readouterr().out
    assert "ops" in listed and "admin" in listed and secret not in listed
    assert cli_main(["api-key", "--gallery", url, "revoke", "ops"]) == 0
    assert gallery_keys(url) == (location, False)
    assert not unused_dir.exists()


def test_a_gallery_that_cannot_be_opened_is_one_sentence_and_status_2(capsys: pytest.CaptureFixture) -> None:
    from facecore.cli import main as cli_main

    assert cli_main(["api-key", "--gallery", "mysql://somewhere/db", "list"]) == 2
    assert "No gallery store for 'mysql://'" in capsys.readouterr().err
