"""The dashboard's own changes to the gallery, in the same audit log as the API's (facecore.gallery.audit).

Contract: :func:`log_change` records one entry per change made on a page (create, rename, delete,
enrol), as the caller ``"(dashboard)"`` (the dashboard has no API keys: who may reach it is the
reverse proxy's business, docs/security.md) with the route ``"dashboard: <action>"``, the ids touched
and a small result (names and counts, never images), with ``$FACECORE_AUDIT_RETENTION_DAYS``. The
change has happened by then; if the log cannot be written the page says so instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import streamlit as st

from facecore.gallery import audit

DASHBOARD = "(dashboard)"


def log_change(gallery: Any, action: str, result: Mapping[str, Any], ids: Iterable[int] = ()) -> None:
    """Record a change made on the dashboard (see the module docstring)."""
    entry = audit.AuditEntry(DASHBOARD, f"dashboard: {action}", dict(result), ids=[int(i) for i in ids])
    try:
        audit.record(gallery.database, entry, retention_days=audit.configured_retention_days())
    except Exception as exc:  # the change stands; say that its record is missing
        st.warning(f"The change was made, but it could not be written to the audit log ({exc}).")
