"""Audit log: every decision and change made through the API, filtered, and exported as CSV.

Reads ``facecore.gallery.audit`` from the shared gallery; writes nothing.
"""

from __future__ import annotations

import time

import streamlit as st

from facecore.gallery.audit import entries, entries_frame, key_names
from ui.resources import gallery_location, load_gallery

st.title("Audit log")
st.caption(
    "Every verify, identify and change made through the HTTP API: when, which key (its name, never "
    "the key), the route, the model, the threshold, the result and the ids touched. No images are "
    "kept. Entries older than the API's retention (FACECORE_AUDIT_RETENTION_DAYS, 90 days by default) "
    "are removed as new ones are written."
)

#: The most entries the page shows and the CSV holds (a browser table of more is slow to send and read).
SHOWN = 10_000

try:
    gallery = load_gallery()
    names = key_names(gallery.database)
except Exception as exc:  # a broken gallery folder must not show a traceback
    st.error(f"The gallery at {gallery_location()} cannot be opened: {exc}")
    st.stop()

left, middle, right = st.columns(3)
key_name = left.selectbox("Key", ["(every key)", *names], key="audit_key")
route = middle.text_input("Route contains", key="audit_route", placeholder="e.g. verify, identify, /people")
days = right.number_input("Last days", min_value=1, max_value=3650, value=30, step=1, key="audit_days")

found = entries(
    gallery.database,
    key_name=None if key_name == "(every key)" else key_name,
    route=route.strip() or None,
    since=time.time() - float(days) * 86400,
    limit=SHOWN + 1,
)
more = len(found) > SHOWN
table = entries_frame(found[:SHOWN])
if table.empty:
    st.info("No audit entries match. Decisions and changes made through the API and the dashboard appear here.")
else:
    if more:
        st.warning(
            f"More than {SHOWN:,} entries match: the newest {SHOWN:,} are shown and downloaded. Narrow the key, "
            "the route or the days to see older ones."
        )
    else:
        st.write(f"{len(table)} entries, newest first.")
    st.dataframe(table, hide_index=True, width="stretch")
st.download_button(
    "Download CSV",
    table.to_csv(index=False).encode("utf-8"),
    file_name="audit_log.csv",
    mime="text/csv",
    key="audit_csv",
    disabled=table.empty,
)
