"""Distance matrix: N faces against each other, ordered by identity or by clustering."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from facecore.evaluation.analysis import cluster_order, identity_blocks, identity_order
from facecore.verification import accepts
from facecore.verification.metrics import pairwise_distances
from ui.face_sets import FaceSet, face_set_picker, thumbnail
from ui.settings import current_settings

MAX_FACES = 300
MAX_AXIS_THUMBNAILS = 60  # beyond this the thumbnails are too small to read; use the pair inspector

settings = current_settings()
st.title("Distance matrix")
st.caption(
    "Every face against every other: dark cells are close (the model thinks: same person). "
    "Same-identity blocks along the diagonal should be dark, everything else light."
)

faces = face_set_picker("dm", settings, default_people=10, default_per_person=4)


def ordered(faces: FaceSet, distances: np.ndarray, how: str) -> np.ndarray:
    return cluster_order(distances) if how == "hierarchical clustering" else identity_order(faces.labels)


def matrix_figure(faces: FaceSet, d: np.ndarray, order: np.ndarray, binarise: bool, show_blocks: bool) -> go.Figure:
    n = len(order)
    names = [faces.labels[i] for i in order]
    z = d[np.ix_(order, order)]
    hover = np.array([[f"{names[r]} vs {names[c]}" for c in range(n)] for r in range(n)])
    if binarise:
        heat = go.Heatmap(
            z=accepts(z, settings.threshold).astype(int),
            customdata=np.dstack([hover, z.round(4).astype(str)]),
            colorscale=[[0, "#f7f7f7"], [1, "#08519c"]],
            zmin=0,
            zmax=1,
            showscale=False,
            hovertemplate="%{customdata[0]}<br>distance %{customdata[1]}<extra></extra>",
        )
    else:
        heat = go.Heatmap(
            z=z,
            customdata=hover,
            colorscale="Blues_r",
            colorbar=dict(title=settings.metric),
            hovertemplate="%{customdata}<br>distance %{z:.4f}<extra></extra>",
        )
    fig = go.Figure(heat)
    if not binarise:  # the decision boundary as a contour line on the continuous map
        fig.add_trace(
            go.Contour(
                z=z,
                contours=dict(start=settings.threshold, end=settings.threshold, size=1, coloring="none"),
                line=dict(color="#d62728", width=1.5),
                showscale=False,
                hoverinfo="skip",
                name="threshold",
            )
        )
    if show_blocks:
        for _, start, end in identity_blocks(names):
            fig.add_shape(
                type="rect", x0=start - 0.5, x1=end - 0.5, y0=start - 0.5, y1=end - 0.5,
                line=dict(color="#2ca02c", width=2),
            )
    ticks = [f"{name} [{i}]" for name, i in zip(names, order, strict=True)]
    fig.update_xaxes(tickvals=list(range(n)), ticktext=ticks, tickangle=-60, showticklabels=n <= 60)
    fig.update_yaxes(tickvals=list(range(n)), ticktext=ticks, autorange="reversed", showticklabels=n <= 60)
    if n <= MAX_AXIS_THUMBNAILS:
        for position, i in enumerate(order):
            uri = thumbnail(faces.images[i])
            fig.add_layout_image(source=uri, xref="x", yref="paper", x=position, y=1.0, sizex=1, sizey=0.08,
                                 xanchor="center", yanchor="bottom", layer="above")
            fig.add_layout_image(source=uri, xref="paper", yref="y", x=0, y=position, sizex=0.08, sizey=1,
                                 xanchor="right", yanchor="middle", layer="above")
    side = min(900, 250 + 14 * n)
    fig.update_layout(height=side, margin=dict(l=140 if n <= MAX_AXIS_THUMBNAILS else 10, r=10, t=90, b=10))
    return fig


def pair_inspector(faces: FaceSet, d: np.ndarray, order: np.ndarray) -> None:
    st.subheader("Two faces and their distance")
    labels = [f"[{i}] {faces.labels[i]}" for i in order]
    positions = {int(i): k for k, i in enumerate(order)}
    selection = st.session_state.get("dm_chart")
    points = (selection or {}).get("selection", {}).get("points", []) if isinstance(selection, dict) else []
    if points and "x" in points[0] and "y" in points[0]:
        clicked = (int(order[int(points[0]["y"])]), int(order[int(points[0]["x"])]))
        if st.session_state.get("_dm_clicked") != clicked:  # a new click moves the pickers to the cell
            st.session_state["_dm_clicked"] = clicked
            st.session_state["dm_a"], st.session_state["dm_b"] = (labels[positions[c]] for c in clicked)
    cols = st.columns(2)
    a_label = cols[0].selectbox("Face A", labels, index=0, key="dm_a")
    b_label = cols[1].selectbox("Face B", labels, index=min(1, len(labels) - 1), key="dm_b")
    a, b = (int(order[labels.index(x)]) for x in (a_label, b_label))
    distance = float(d[a, b])
    same_decision = accepts(distance, settings.threshold)
    for col, i in zip(cols, (a, b), strict=True):
        col.image(thumbnail(faces.images[i], 160), caption=faces.labels[i], width=160)
    truth = "same identity" if faces.labels[a] == faces.labels[b] else "different identities"
    st.metric(f"{settings.metric} distance", f"{distance:.4f}",
              delta="same person" if same_decision else "different people",
              delta_color="normal" if same_decision else "inverse")
    st.caption(f"Threshold {settings.threshold:.3f}; the labels say: {truth}.")


if faces is not None:
    if len(faces) < 2:
        st.info("Pick at least two faces.")
    elif len(faces) > MAX_FACES:
        st.error(f"{len(faces)} faces is more than this page draws ({MAX_FACES}); choose fewer people.")
    else:
        cols = st.columns(3)
        how = cols[0].radio("Order", ["identity", "hierarchical clustering"], key="dm_order", horizontal=True)
        binarise = cols[1].toggle("Binarise at the threshold", key="dm_binarise")
        show_blocks = cols[2].toggle("Outline identity blocks", value=True, key="dm_blocks")
        distances = pairwise_distances(faces.embeddings, metric=settings.metric)
        order = ordered(faces, distances, how)
        st.plotly_chart(
            matrix_figure(faces, distances, order, binarise, show_blocks),
            key="dm_chart",
            on_select="rerun",
            selection_mode="points",
            width="stretch",
        )
        same = np.equal.outer(np.array(faces.labels), np.array(faces.labels))
        off_diagonal = ~np.eye(len(faces), dtype=bool)
        genuine, impostor = distances[same & off_diagonal], distances[~same]
        st.caption(
            f"{faces.description}; {settings.metric} distance, threshold {settings.threshold:.3f}. "
            + (f"Mean same-identity distance {genuine.mean():.3f}, " if genuine.size else "")
            + (f"mean different-identity distance {impostor.mean():.3f}." if impostor.size else "")
        )
        pair_inspector(faces, distances, order)
