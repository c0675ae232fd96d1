"""Home: what the lab does, where to go, and the current settings."""

import streamlit as st

import facecore
from ui.settings import current_settings

settings = current_settings()

st.title("Face Verification Lab")
st.caption(f"facecore {facecore.__version__}")
st.markdown(
    "See how face verification works, step by step, on your own photos: **find** the faces, "
    "**align** each one to a small chip, **embed** it as a vector (dlib's ResNet by default: a 150x150 "
    "chip, 128-D; or ArcFace, chosen in the sidebar: 112x112, 512-D), "
    "then **compare** vectors by distance. Two faces are called the same person when their "
    "distance is at most a threshold, and the default threshold is the one measured on the "
    "LFW benchmark for the detector and metric you pick."
)

st.subheader("Pages")
LINKS = {
    "Use it": [
        ("app_pages/verify.py", "Verify (1:1): are two photos the same person?", ":material/compare:"),
        ("app_pages/gallery.py", "Gallery: enrol people from photos, a folder, a zip or LFW", ":material/photo_library:"),
        ("app_pages/identify.py", "Identify (1:K): who is in this photo?", ":material/person_search:"),
    ],
    "Tune it": [
        ("app_pages/distance_matrix.py", "Distance matrix: every face against every other", ":material/grid_on:"),
        ("app_pages/threshold_lab.py", "Threshold lab: FAR, FRR, EER and ROC on LFW or the gallery", ":material/tune:"),
        ("app_pages/embedding_space.py", "Embedding space: PCA, t-SNE or UMAP of the vectors", ":material/scatter_plot:"),
        ("app_pages/lfw_benchmark.py", "LFW benchmark: 10-fold accuracy and failure cases", ":material/leaderboard:"),
    ],
    "Learn it": [
        ("app_pages/triplet_classroom.py", "Triplet loss: anchors, margins and mining", ":material/school:"),
        ("app_pages/train_your_own.py", "Train your own: a small triplet or twin network", ":material/model_training:"),
    ],
}
for column, (group, links) in zip(st.columns(len(LINKS)), LINKS.items(), strict=True):
    with column:
        st.markdown(f"**{group}**")
        for page, label, icon in links:
            st.page_link(page, label=label, icon=icon)

st.subheader("Current settings")
st.caption("Change them in the sidebar; every page uses them.")
cols = st.columns(5)
cols[0].metric("Detector", settings.detector)
cols[1].metric("Metric", settings.metric)
cols[2].metric("Flip TTA", "on" if settings.flip_tta else "off")
cols[3].metric("Threshold", f"{settings.threshold:.3f}")
cols[4].metric("Model", settings.config.model_label)
st.caption(("Set by you. Default: " if settings.user_set else "Default: ") + settings.source)
