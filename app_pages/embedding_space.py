"""Embedding space: the 128-D embeddings projected to 2-D or 3-D, coloured by identity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from facecore.evaluation.analysis import nearest_neighbours
from facecore.evaluation.projection import EXPLANATIONS, METHODS, project, umap_available
from facecore.verification import accepts
from ui.face_sets import FaceSet, face_set_picker, thumbnail
from ui.feedback import show_error
from ui.inputs import decode_or_error, find_faces, image_input
from ui.settings import current_settings

MAX_POINT_THUMBNAILS = 80  # images drawn on the 2-D plot; more would cover it
PROBE = "probe (your photo)"

settings = current_settings()
st.title("Embedding space")
st.caption("Where the model puts each face: every point is one 128-D embedding, flattened for the eye.")

faces = face_set_picker("es", settings, default_people=10, default_per_person=6)


def with_probe(faces: FaceSet) -> FaceSet:
    """The face set plus the largest face of an optional probe photo."""
    with st.expander("Add a probe photo"):
        chosen = image_input("Probe", "es_probe", camera=False)
    if chosen is None:
        return faces
    data, name = chosen
    image = decode_or_error(data, name)
    found = find_faces(image, data, settings) if image is not None else None
    if not found:
        if found is not None:
            st.warning(f"No face found in {name}; the probe is left out.")
        return faces
    face = found[0]
    return faces.with_extra(PROBE, face.chip if face.chip is not None else image, face.embedding)


@st.cache_data(max_entries=16, show_spinner=False)
def projected(embeddings: np.ndarray, method: str, dims: int) -> np.ndarray:
    return project(embeddings, method, dims, seed=0)


def scatter(faces: FaceSet, coords: np.ndarray, dims: int, show_images: bool) -> go.Figure:
    frame = pd.DataFrame(coords, columns=["x", "y", "z"][:dims])
    frame["identity"] = faces.labels
    frame["face"] = np.arange(len(faces))
    common = dict(color="identity", hover_name="identity", hover_data={"face": True, "identity": False},
                  custom_data=["face"])
    if dims == 3:
        fig = px.scatter_3d(frame, x="x", y="y", z="z", **common)
        fig.update_traces(marker=dict(size=4))
    else:
        fig = px.scatter(frame, x="x", y="y", **common)
        fig.update_traces(marker=dict(size=9, line=dict(width=0.5, color="white")))
        if show_images:
            span = float(np.ptp(coords, axis=0).max()) or 1.0
            for (x, y), image in zip(coords, faces.images, strict=True):
                fig.add_layout_image(source=thumbnail(image), x=x, y=y, xref="x", yref="y", sizex=span / 14,
                                     sizey=span / 14, xanchor="center", yanchor="middle", layer="above")
    if PROBE in faces.labels:
        fig.update_traces(selector=dict(name=PROBE), marker=dict(size=16, symbol="diamond", color="black"))
    fig.update_layout(height=620, margin=dict(l=10, r=10, t=30, b=10), legend_title_text="identity")
    return fig


def neighbours_panel(faces: FaceSet) -> None:
    st.subheader("Nearest neighbours in 128-D")
    names = [f"[{i}] {label}" for i, label in enumerate(faces.labels)]
    default = len(names) - 1 if PROBE in faces.labels else 0
    selection = st.session_state.get("es_chart")
    points = (selection or {}).get("selection", {}).get("points", []) if isinstance(selection, dict) else []
    if points and points[0].get("customdata"):
        clicked = int(points[0]["customdata"][0])
        if st.session_state.get("_es_clicked") != clicked:
            st.session_state["_es_clicked"] = clicked
            st.session_state["es_point"] = names[clicked]
    chosen = st.selectbox("Face", names, index=default, key="es_point")
    k = st.slider("Neighbours", 1, min(20, len(faces) - 1), min(5, len(faces) - 1), key="es_k")
    index = names.index(chosen)
    table = nearest_neighbours(faces.embeddings, faces.labels, index, k=k, metric=settings.metric)
    table["same person at threshold"] = accepts(table["distance"].to_numpy(), settings.threshold)
    table.insert(0, "photo", [thumbnail(faces.images[i], 64) for i in table["face"]])
    cols = st.columns([1, 4])
    cols[0].image(thumbnail(faces.images[index], 128), caption=faces.labels[index], width=128)
    cols[1].dataframe(
        table,
        column_config={"photo": st.column_config.ImageColumn("photo"),
                       "distance": st.column_config.NumberColumn(format="%.4f")},
        hide_index=True,
        width="stretch",
    )
    st.caption(f"{settings.metric} distance on the full embeddings (not the projection); "
               f"threshold {settings.threshold:.3f}.")


if faces is not None:
    faces = with_probe(faces)
    if len(faces) < 4:
        st.info("Pick at least four faces to project.")
    else:
        methods = [m for m in METHODS if m != "UMAP" or umap_available()]
        cols = st.columns([2, 1, 1])
        method = cols[0].radio("Projection", methods, key="es_method", horizontal=True)
        dims = cols[1].radio("Dimensions", [2, 3], key="es_dims", horizontal=True)
        show_images = cols[2].toggle("Faces on the plot", value=len(faces) <= MAX_POINT_THUMBNAILS,
                                     key="es_images", disabled=dims == 3 or len(faces) > MAX_POINT_THUMBNAILS)
        if not umap_available():
            st.caption("UMAP is not offered: the umap-learn package is not installed.")
        spinner = {
            "PCA": "Projecting with PCA...",
            "t-SNE": "Running t-SNE (a few seconds for a thousand faces)...",
            "UMAP": "Running UMAP (the first run in a process compiles numba code: up to half a minute)...",
        }[method]
        try:
            with st.spinner(spinner):
                coords = projected(faces.embeddings, method, dims)
        except Exception as exc:
            show_error(f"{method} failed on these faces", exc)
        else:
            st.plotly_chart(scatter(faces, coords, dims, show_images and dims == 2), key="es_chart",
                            on_select="rerun", selection_mode="points", width="stretch")
            st.info(EXPLANATIONS[method])
            st.caption(f"{faces.description}; {method} to {dims}-D, seed 0. Hover a point for its identity; "
                       "click one to list its nearest neighbours below.")
            neighbours_panel(faces)
