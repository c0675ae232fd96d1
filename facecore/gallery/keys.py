"""API keys with roles, stored hashed in the gallery database (table ``api_keys``).

Contract:

* Roles are ordered: ``read`` (verify, identify, embeddings, listing) < ``enrol`` (add and change people
  and faces) < ``admin`` (delete, keys, settings); a key may do what its role and every lower role may
  (:func:`role_allows`).
* :func:`create_key` returns the secret once (``fvl_`` + 43 URL-safe characters: 256 random bits from
  :mod:`secrets`). Only its SHA-256 is stored, with an 8-character prefix to recognise it in lists.
  Why SHA-256 and not a slow password hash (scrypt, bcrypt): a slow hash protects guessable secrets; a
  256-bit random key cannot be guessed, so one fast hash already makes a stolen database useless for
  logging in, while scrypt would add tens of milliseconds to every request.
* :func:`authenticate` finds the active key whose hash matches (the lookup is by hash, so the time it
  takes says nothing about how close a guess was). Revoked keys stay listed, never match again.
* Key names are cleaned like people's names (:func:`facecore.gallery.names.clean_name`); an active
  name is unique (a revoked key's name may be reused).

The table is in ``facecore.gallery.database._SCHEMA``; all other SQL lives here and reaches the database only through ``Database.write`` / ``Database.snapshot``
(``Gallery.database``); key writes do not bump the gallery's revision (no index depends on them).
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from dataclasses import dataclass

from facecore.gallery.names import clean_name
from facecore.gallery.records import DatabaseLike, GalleryError

ROLES = ("read", "enrol", "admin")
KEY_PREFIX = "fvl_"
_SELECT = "SELECT id, name, role, prefix, created, revoked FROM api_keys"


@dataclass(frozen=True)
class ApiKey:
    """A stored key, never its secret."""

    id: int
    name: str
    role: str
    prefix: str
    created: float
    revoked: float | None

    @property
    def active(self) -> bool:
        return self.revoked is None


def role_allows(role: str, needed: str) -> bool:
    """Whether a key of ``role`` may do what ``needed`` may (roles are ordered read < enrol < admin)."""
    return ROLES.index(role) >= ROLES.index(needed)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _key(row: tuple) -> ApiKey:
    return ApiKey(int(row[0]), row[1], row[2], row[3], float(row[4]), None if row[5] is None else float(row[5]))


def create_key(database: DatabaseLike, name: str, role: str) -> tuple[ApiKey, str]:
    """A new key of ``role`` named ``name``, and its secret (shown once: it is not stored)."""
    if role not in ROLES:
        raise GalleryError(f"Unknown role {role!r}: choose one of {', '.join(ROLES)}.")
    name = clean_name(name)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)

    def insert(db: sqlite3.Connection) -> int:
        if db.execute("SELECT 1 FROM api_keys WHERE name = ? AND revoked IS NULL", (name,)).fetchone():
            raise GalleryError(f"An active key named {name!r} already exists; revoke it first or pick another name.")
        row = db.execute(
            "INSERT INTO api_keys (name, role, key_sha256, prefix, created) VALUES (?, ?, ?, ?, ?) RETURNING id",
            (name, role, hash_key(secret), secret[: len(KEY_PREFIX) + 4], time.time()),
        ).fetchone()
        return int(row[0])

    key_id = database.write(insert, bump=False)
    with database.snapshot() as db:
        return _key(db.execute(f"{_SELECT} WHERE id = ?", (key_id,)).fetchone()), secret


def list_keys(database: DatabaseLike) -> list[ApiKey]:
    """Every key, active or revoked, oldest first."""
    with database.snapshot() as db:
        return [_key(row) for row in db.execute(f"{_SELECT} ORDER BY id").fetchall()]


def revoke_key(database: DatabaseLike, name_or_id: str | int) -> ApiKey:
    """Revoke the active key with this name (or id); ``GalleryError`` when there is none."""

    def revoke(db: sqlite3.Connection) -> int:
        if isinstance(name_or_id, int) or str(name_or_id).isdigit():
            row = db.execute(
                "SELECT id FROM api_keys WHERE id = ? AND revoked IS NULL", (int(name_or_id),)
            ).fetchone()
        else:
            row = db.execute(
                "SELECT id FROM api_keys WHERE name = ? AND revoked IS NULL", (clean_name(str(name_or_id)),)
            ).fetchone()
        if row is None:
            raise GalleryError(f"There is no active API key {name_or_id!r}.")
        db.execute("UPDATE api_keys SET revoked = ? WHERE id = ?", (time.time(), row[0]))
        return int(row[0])

    key_id = database.write(revoke, bump=False)
    with database.snapshot() as db:
        return _key(db.execute(f"{_SELECT} WHERE id = ?", (key_id,)).fetchone())


def authenticate(database: DatabaseLike, secret: str) -> ApiKey | None:
    """The active key whose secret this is, or None."""
    if not secret.startswith(KEY_PREFIX):
        return None
    with database.snapshot() as db:
        row = db.execute(f"{_SELECT} WHERE key_sha256 = ? AND revoked IS NULL", (hash_key(secret),)).fetchone()
    return None if row is None else _key(row)


def has_active_keys(database: DatabaseLike) -> bool:
    """Whether any key is active (with none, the API answers on loopback only)."""
    with database.snapshot() as db:
        return db.execute("SELECT 1 FROM api_keys WHERE revoked IS NULL LIMIT 1").fetchone() is not None
