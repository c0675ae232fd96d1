"""The PostgreSQL store's row helpers: URLs to show, vectors read back, counts, exports, and the
deletion of uploads and chips that no face uses any more (inside the caller's transaction)."""

from __future__ import annotations

from typing import Any

import numpy as np

from facecore.gallery.pg_database import PgConnection, read_revision


def safe_url(url: str) -> str:
    """``url`` without its password, for logs and stats."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(url)
    host, port = info.get("host", ""), info.get("port", "")
    where = f"/{info.get('dbname', '')}?host={host}" if host.startswith("/") else f"{host}:{port}/{info.get('dbname', '')}"
    return f"postgresql://{info.get('user', '')}@{where}"


def vector_of(value: Any) -> np.ndarray:
    """A pgvector value (``Vector`` or array) as a float32 row."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, np.float32)


def export_rows(db: PgConnection, model_version: str | None) -> list[tuple[int, str, str, bytes]]:
    """``(face id, name, model version, float32 bytes)`` by face id, as the export functions take them."""
    query = "SELECT f.id, p.name, f.model_version, f.embedding FROM faces f JOIN people p ON p.id = f.person_id"
    if model_version is None:
        rows = db.execute(f"{query} ORDER BY f.id").fetchall()
    else:
        rows = db.execute(f"{query} WHERE f.model_version = ? ORDER BY f.id", (model_version,)).fetchall()
    return [(r[0], r[1], r[2], vector_of(r[3]).tobytes()) for r in rows]


def gallery_counts(db: PgConnection) -> dict[str, Any]:
    """People, faces, images, faces per model version and the revision, as ``Gallery.stats`` gives them."""
    people = db.execute("SELECT COUNT(*) FROM people").fetchone()[0]
    empty = db.execute(
        "SELECT COUNT(*) FROM people p WHERE NOT EXISTS (SELECT 1 FROM faces f WHERE f.person_id = p.id)"
    ).fetchone()[0]
    faces, images = db.execute("SELECT COUNT(*), COUNT(DISTINCT image_sha256) FROM faces").fetchone()
    versions = dict(db.execute("SELECT model_version, COUNT(*) FROM faces GROUP BY model_version").fetchall())
    return {
        "people": people,
        "people_without_faces": empty,
        "faces": faces,
        "images": images,
        "faces_by_model_version": versions,
        "revision": read_revision(db),
    }


def drop_unreferenced(db: PgConnection) -> int:
    """Delete the images and chips no face uses (inside the caller's transaction)."""
    images = db.execute(
        "DELETE FROM images i WHERE NOT EXISTS (SELECT 1 FROM faces f WHERE f.image_sha256 = i.sha256) RETURNING 1"
    ).fetchall()
    chips = db.execute(
        "DELETE FROM chips c WHERE NOT EXISTS (SELECT 1 FROM faces f WHERE f.chip_sha256 = c.sha256) RETURNING 1"
    ).fetchall()
    return len(images) + len(chips)


def drop_if_unused(db: PgConnection, files: list[tuple[str, str]]) -> list[str]:
    """Delete these ``(image sha, chip sha)`` rows' image and chip unless a face still uses them; returns
    the chips deleted."""
    for sha in {image for image, _ in files}:
        db.execute("DELETE FROM images WHERE sha256 = ? AND NOT EXISTS (SELECT 1 FROM faces WHERE image_sha256 = ?)", (sha, sha))
    gone = []
    for sha in {chip for _, chip in files}:
        if db.execute(
            "DELETE FROM chips WHERE sha256 = ? AND NOT EXISTS (SELECT 1 FROM faces WHERE chip_sha256 = ?) RETURNING 1",
            (sha, sha),
        ).fetchone():
            gone.append(sha)
    return gone
