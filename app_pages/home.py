"""Home: what the lab does, where to go, and the current settings."""

import streamlit as st

import facecore
from ui.common import current_settings

settings = current_settings()

st.title("Face Verification Lab")
st.caption(f"facecore {facecore.__version__}")
st.markdown(
    "See how face verification works, step by step, on your own photos: **find** the faces, "
    "**align** each one to a 150x150 chip, **embed** it as a 128-D vector with dlib's ResNet, "
    "then **compare** vectors by distance. Two faces are called the same person when their "
    "distance is at most a threshold, and the default threshold is the one measured on the "
    "LFW benchmark for the detector and metric you pick."
)

st.subheader("Pages")
st.page_link(
    "app_pages/verify.py", label="Verify (1:1): are two photos the same person?", icon=":material/compare:"
)
st.page_link(
    "app_pages/gallery.py",
    label="Gallery: enrol people from photos, a folder, a zip or LFW",
    icon=":material/photo_library:",
)
st.page_link(
    "app_pages/identify.py", label="Identify (1:K): who is in this photo?", icon=":material/person_search:"
)

st.subheader("Current settings")
st.caption("Change them in the sidebar; every page uses them.")
cols = st.columns(4)
cols[0].metric("Detector", settings.detector)
cols[1].metric("Metric", settings.metric)
cols[2].metric("Flip TTA", "on" if settings.flip_tta else "off")
cols[3].metric("Threshold", f"{settings.threshold:.3f}")
st.caption(("Set by you. Default: " if settings.user_set else "Default: ") + settings.source)
