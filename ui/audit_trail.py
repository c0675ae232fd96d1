"""The dashboard's own changes to the gallery, in the same audit log as the API's (facecore.gallery.audit).

Contract: :func:`log_change` records one entry per change made on a page (create, rename, delete,
enrol), and :func:`log_decision` one per decision a page shows (Identify, Verify), as the caller
``"(dashboard)"`` (the dashboard has no API keys: who may reach it is the reverse proxy's business, docs/security.md) with the route ``"dashboard: <action>"``, the ids touched
and a small result (names and counts, never images), with ``$FACECORE_AUDIT_RETENTION_DAYS``. The
change has happened by then; if the log cannot be written the page says so instead of failing.
A page reruns on every widget change, so a decision is logged once per browser session for the same
question (photos, model, threshold, rule): moving an unrelated widget logs nothing new.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import streamlit as st

from facecore.gallery import audit

DASHBOARD = "(dashboard)"


def log_change(gallery: Any, action: str, result: Mapping[str, Any], ids: Iterable[int] = ()) -> None:
    """Record a change made on the dashboard (see the module docstring)."""
    entry = audit.AuditEntry(DASHBOARD, f"dashboard: {action}", dict(result), ids=[int(i) for i in ids])
    _write(gallery, entry, "The change was made, but it could not be written to the audit log")


def _write(gallery: Any | None, entry: audit.AuditEntry, failed: str) -> bool:
    """Record ``entry`` with the configured retention in ``gallery`` (None: the pages' gallery); on
    failure say ``failed`` and why, and give False."""
    from ui.resources import load_gallery

    try:
        database = (gallery if gallery is not None else load_gallery()).database
        audit.record(database, entry, retention_days=audit.configured_retention_days())
    except Exception as exc:  # what the page did stands; say that its record is missing
        st.warning(f"{failed} ({exc}).")
        return False
    return True


def log_decision(
    action: str, question: Mapping[str, Any], result: Mapping[str, Any], *,
    ids: Iterable[int] = (), model_version: str | None = None, threshold: float | None = None,
) -> None:
    """Record a decision shown on a page once per session for the same ``question`` (JSON-able: the
    photos' digests and the settings that decide), with its ``result`` (names, distances, decisions),
    in the audit log of the gallery the pages use."""
    digest = hashlib.sha256(json.dumps([action, question], sort_keys=True, default=str).encode()).hexdigest()
    logged = st.session_state.setdefault("_audited_decisions", set())
    if digest in logged:
        return
    entry = audit.AuditEntry(
        DASHBOARD, f"dashboard: {action}", dict(result), ids=[int(i) for i in ids],
        model_version=model_version, threshold=threshold,
    )
    if _write(None, entry, "This answer could not be written to the audit log"):
        logged.add(digest)
