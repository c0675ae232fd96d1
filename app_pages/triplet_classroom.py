"""Classroom, part 1: triplet loss on three faces you pick, and what mining picks in a batch."""

from __future__ import annotations

import contextlib
import logging

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from facecore.classroom.triplets import (
    TRIPLET_KINDS,
    batch_hard_triplets,
    classify_triplet,
    semi_hard_triplets,
    triangle_coordinates,
    triplet_counts,
    triplet_loss,
)
from facecore.config import PipelineConfig
from facecore.evaluation.datasets import find_lfw, image_folder, lfw_people
from facecore.evaluation.samples import embed_face_files
from facecore.verification.metrics import pairwise_distances
from ui.data import lfw_panel, lfw_source_note
from ui.drawing import thumbnail_uri
from ui.feedback import show_error
from ui.inputs import examples_dir
from ui.resources import load_gallery, pipeline
from ui.settings import current_settings, model_label, model_options, pipeline_config

log = logging.getLogger(__name__)

KIND_COLOURS = {"easy": "#2ca02c", "semi-hard": "#ff7f0e", "hard": "#d62728"}
KIND_MEANING = {
    "easy": "the negative is already farther than the positive by more than the margin: loss 0, "
    "nothing to learn from this triplet.",
    "semi-hard": "the negative is farther than the positive, but inside the margin band: a small loss. "
    "FaceNet learns from these.",
    "hard": "the negative is as close as the positive or closer: the loss is at least the margin. "
    "Too many of these early in training can collapse the embedding.",
}
#: A face to embed: (path, is_chip). Gallery faces are stored as aligned chips, photos are not.
FaceRef = tuple[str, bool]

settings = current_settings()
st.title("Triplet loss, interactively")
st.markdown(
    "An embedding network is trained so that two photos of the **same** person land closer together "
    "than photos of **different** people, by at least a **margin**. Triplet loss measures that on an "
    "anchor *a*, a positive *p* (same person) and a negative *n* (someone else):\n\n"
    "$$L(a, p, n) = \\max\\big(d(a,p) - d(a,n) + \\text{margin},\\ 0\\big)$$\n\n"
    "Distances here are euclidean (L2) between the model's embeddings."
)


# ----------------------------------------------------------------------------- where faces come from


@st.cache_data(show_spinner="Listing LFW people...")
def _lfw_catalogue(home: str) -> dict[str, list[FaceRef]]:
    return {
        name.replace("_", " "): [(str(p), False) for p in paths] for name, paths in lfw_people(home).items()
    }


def _gallery_catalogue() -> dict[str, list[FaceRef]]:
    faces: dict[str, list[FaceRef]] = {}
    try:
        for face in load_gallery().faces():
            if face.chip_path.is_file():
                faces.setdefault(face.person_name, []).append((str(face.chip_path), True))
    except Exception:  # an unreadable gallery just means no gallery source
        log.exception("gallery not readable")
    return faces


def face_sources() -> dict[str, dict[str, list[FaceRef]]]:
    """Source name -> {person: faces}, only the sources that have two people, one with two faces."""
    sources: dict[str, dict[str, list[FaceRef]]] = {}
    with contextlib.suppress(FileNotFoundError):  # $FACECORE_LFW_HOME names no LFW: the batch view says so
        sources["LFW"] = _lfw_catalogue(str(find_lfw().home))
    folder = examples_dir()
    if folder.is_dir():
        sources["Example photos"] = {
            n: [(str(p), False) for p in ps] for n, ps in image_folder(folder).items()
        }
    sources["Gallery"] = _gallery_catalogue()
    return {
        name: people
        for name, people in sources.items()
        if len(people) >= 2 and any(len(faces) >= 2 for faces in people.values())
    }


# ----------------------------------------------------------------------------- embedding


@st.cache_data(max_entries=128, show_spinner="Embedding the faces...")
def embed_refs(refs: tuple[FaceRef, ...], config: PipelineConfig) -> tuple[np.ndarray, np.ndarray]:
    """``(embeddings, no_face)`` per face: photos through the pipeline (centre face), chips directly."""
    paths, chips = zip(*refs, strict=True)
    return embed_face_files(paths, pipeline(config), chips=chips)


def embed_or_error(refs: list[FaceRef], config: PipelineConfig) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        return embed_refs(tuple(refs), config)
    except Exception as exc:  # a bad model file or an unreadable image must not crash the page
        show_error(f"These faces could not be embedded with {config.model_label}", exc)
        return None


# ----------------------------------------------------------------------------- pictures


def _circle(radius: float, points: int = 120) -> tuple[np.ndarray, np.ndarray]:
    angle = np.linspace(0, 2 * np.pi, points)
    return radius * np.cos(angle), radius * np.sin(angle)


def triplet_figure(d_ap: float, d_an: float, d_pn: float, margin: float) -> go.Figure:
    """The three faces as points with their true distances, and the margin band around the anchor."""
    a, p, n = triangle_coordinates(d_ap, d_an, d_pn)
    fig = go.Figure()
    inner_x, inner_y = _circle(d_ap)
    outer_x, outer_y = _circle(d_ap + margin)
    # One ring: around the outer circle, then back around the inner one (filled as an annulus).
    fig.add_trace(
        go.Scatter(
            x=np.concatenate([outer_x, inner_x[::-1]]),
            y=np.concatenate([outer_y, inner_y[::-1]]),
            fill="toself",
            fillcolor="rgba(255,127,14,0.18)",
            line=dict(width=0),
            name="margin band (semi-hard zone)",
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(x=inner_x, y=inner_y, mode="lines", line=dict(dash="dash", color="#555"), name="d(a, p)")
    )
    fig.add_trace(
        go.Scatter(
            x=[a[0], p[0], n[0]],
            y=[a[1], p[1], n[1]],
            mode="markers+text",
            text=["anchor", "positive", "negative"],
            textposition="top center",
            marker=dict(size=16, color=["#1f77b4", "#2ca02c", "#d62728"]),
            name="faces",
        )
    )
    for (x0, y0), (x1, y1) in ((a, p), (a, n)):
        fig.add_trace(
            go.Scatter(x=[x0, x1], y=[y0, y1], mode="lines", line=dict(color="#999"), showlegend=False)
        )
    reach = max(d_an, d_ap + margin) * 1.15 + 1e-6
    fig.update_layout(
        height=420,
        margin=dict(l=10, r=10, t=30, b=10),
        xaxis=dict(range=[-reach, reach], zeroline=False, title="embedding distance"),
        yaxis=dict(range=[-reach, reach], zeroline=False, scaleanchor="x", scaleratio=1),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
    )
    return fig


def counts_figure(counts: pd.Series) -> go.Figure:
    fig = go.Figure(
        go.Bar(
            x=list(counts.index),
            y=counts.to_numpy(),
            marker_color=[KIND_COLOURS[k] for k in counts.index],
            text=counts.to_numpy(),
            textposition="auto",
        )
    )
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=10, b=10), yaxis_title="triplets")
    return fig


# ----------------------------------------------------------------------------- controls

sources = face_sources()
if not sources:
    st.error(
        "No faces to pick from: neither LFW, nor the example photos, nor a gallery with two people "
        "(one with two faces) could be read. The lab's own samples/ folder is incomplete: check out the "
        "repository again."
    )
    st.stop()

left, right = st.columns(2)
with left:
    model = st.selectbox(
        "Embedding model",
        model_options(),
        key="classroom_model",
        format_func=model_label,
        help="The pretrained model, or a .keras model kept on the 'Train your own' page.",
    )
with right:
    margin = st.slider("Margin", 0.0, 1.0, 0.2, 0.01, key="classroom_margin")
config = pipeline_config(settings.detector, model, settings.flip_tta)
if config.model_path is not None:
    st.caption(
        "A model you trained or brought: its distances have their own scale, so pick a margin to match."
    )

tab_triplet, tab_batch = st.tabs(["One triplet", "A batch: counts and mining"])

# ----------------------------------------------------------------------------- one triplet

STATE_KEYS = ("t_anchor", "t_anchor_img", "t_positive_img", "t_negative", "t_negative_img")


def _random_triplet(people: dict[str, list[FaceRef]], seed: int) -> None:
    rng = np.random.default_rng(seed)
    anchors = sorted(p for p, faces in people.items() if len(faces) >= 2)
    anchor = anchors[rng.integers(len(anchors))]
    first, second = rng.choice(len(people[anchor]), 2, replace=False)
    others = sorted(p for p in people if p != anchor)
    negative = others[rng.integers(len(others))]
    state = st.session_state
    state.update(
        t_anchor=anchor,
        t_anchor_img=int(first),
        t_positive_img=int(second),
        t_negative=negative,
        t_negative_img=int(rng.integers(len(people[negative]))),
    )
    state["t_random_draws"] = state.get("t_random_draws", 0) + 1


def _face_name(faces: list[FaceRef]):
    return lambda i: f"{i + 1}: {faces[i][0].rsplit('/', 1)[-1]}"


with tab_triplet:
    source = st.radio("Faces from", list(sources), key="t_source", horizontal=True)
    people = sources[source]
    if source == "LFW":
        st.caption(lfw_source_note(find_lfw()))
    elif source == "Example photos":
        st.caption(f"The example photos bundled with the lab: {len(people)} people (samples/faces_small).")
    anchors = sorted(p for p, faces in people.items() if len(faces) >= 2)
    if st.session_state.get("t_anchor") not in anchors:
        for key in STATE_KEYS:
            st.session_state.pop(key, None)
    st.button(
        "Random triplet",
        on_click=_random_triplet,
        args=(people, st.session_state.get("t_random_draws", 0)),
        key="t_random",
        icon=":material/casino:",
    )
    col_a, col_p, col_n = st.columns(3)
    with col_a:
        anchor = st.selectbox("Anchor person", anchors, key="t_anchor")
        faces = people[anchor]
        if st.session_state.get("t_anchor_img") not in range(len(faces)):
            st.session_state.pop("t_anchor_img", None)
        anchor_img = st.selectbox(
            "Anchor photo", range(len(faces)), key="t_anchor_img", format_func=_face_name(faces)
        )
    with col_p:
        st.selectbox("Positive person (same)", [anchor], disabled=True, key="t_positive_person_shown")
        choices = [i for i in range(len(faces)) if i != anchor_img]
        if st.session_state.get("t_positive_img") not in choices:
            st.session_state.pop("t_positive_img", None)
        positive_img = st.selectbox(
            "Positive photo", choices, key="t_positive_img", format_func=_face_name(faces)
        )
    with col_n:
        negatives = sorted(p for p in people if p != anchor)
        if st.session_state.get("t_negative") not in negatives:
            st.session_state.pop("t_negative", None)
        negative = st.selectbox("Negative person (someone else)", negatives, key="t_negative")
        neg_faces = people[negative]
        if st.session_state.get("t_negative_img") not in range(len(neg_faces)):
            st.session_state.pop("t_negative_img", None)
        negative_img = st.selectbox(
            "Negative photo", range(len(neg_faces)), key="t_negative_img", format_func=_face_name(neg_faces)
        )

    refs = [faces[anchor_img], faces[positive_img], neg_faces[negative_img]]
    for column, (path, _), caption in zip(
        (col_a, col_p, col_n),
        refs,
        (f"anchor: {anchor}", f"positive: {anchor}", f"negative: {negative}"),
        strict=True,
    ):
        uri = thumbnail_uri(path, 220)
        if uri is None:
            column.error(f"{path} cannot be read as an image.")
        else:
            column.image(uri, caption=caption, width=220)

    embedded = embed_or_error(refs, config)
    if embedded is not None:
        vectors, no_face = embedded
        if no_face.any():
            missed = ", ".join(
                r for r, m in zip(("anchor", "positive", "negative"), no_face, strict=True) if m
            )
            st.warning(f"No face was found in the {missed} photo; the centre of the photo was used instead.")
        d = pairwise_distances(vectors)
        d_ap, d_an, d_pn = float(d[0, 1]), float(d[0, 2]), float(d[1, 2])
        loss = float(triplet_loss(d_ap, d_an, margin))
        kind = classify_triplet(d_ap, d_an, margin)
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("d(a, p)", f"{d_ap:.3f}")
        m2.metric("d(a, n)", f"{d_an:.3f}")
        m3.metric("loss", f"{loss:.3f}", help=f"max({d_ap:.3f} - {d_an:.3f} + {margin:.2f}, 0)")
        m4.metric("triplet", kind)
        message = {"easy": st.success, "semi-hard": st.warning, "hard": st.error}[kind]
        message(f"**{kind.capitalize()}**: {KIND_MEANING[kind]}")
        picture, notes = st.columns([3, 2])
        picture.plotly_chart(triplet_figure(d_ap, d_an, d_pn, margin), width="stretch", key="t_figure")
        notes.caption(
            "The anchor is at the centre and the three distances are drawn to scale (the picture keeps "
            "d(a,p), d(a,n) and d(p,n) exactly). A negative inside the dashed circle is hard, in the "
            "orange band semi-hard, outside it easy. Move the margin slider to widen the band."
        )

# ----------------------------------------------------------------------------- a batch

with tab_batch:
    st.markdown(
        "Training sees faces in **batches** of P people x K photos. Every (anchor, positive, negative) "
        "inside a batch is a valid triplet. *Batch-all* averages the loss over every triplet whose loss "
        "is positive; *batch-hard* takes each anchor's farthest positive and closest negative; "
        "*semi-hard* takes, per anchor-positive pair, the closest negative still farther than the positive."
    )
    lfw = lfw_panel("batch")
    if lfw is None:
        st.stop()
    home = lfw.home
    b1, b2, b3 = st.columns(3)
    n_people = b1.slider("People (P)", 2, 10, 5, key="b_people")
    per_person = b2.slider("Photos per person (K)", 2, 6, 3, key="b_per_person")
    batch_seed = b3.number_input(
        "Batch number", 0, 10_000, 0, key="b_seed", help="Another number, other people."
    )
    if not st.toggle("Embed this batch", key="b_on", help="Detects and embeds P x K LFW photos (cached)."):
        st.stop()

    catalogue = {p: faces for p, faces in _lfw_catalogue(str(home)).items() if len(faces) >= per_person}
    rng = np.random.default_rng(int(batch_seed))
    chosen = sorted(rng.choice(sorted(catalogue), min(n_people, len(catalogue)), replace=False))
    batch_refs = [ref for person in chosen for ref in catalogue[person][:per_person]]
    labels = [person for person in chosen for _ in range(per_person)]
    embedded = embed_or_error(batch_refs, config)
    if embedded is None:
        st.stop()
    vectors, _ = embedded
    counts = triplet_counts(vectors, labels, margin)
    c1, c2 = st.columns([1, 2])
    with c1:
        st.markdown(f"**{int(counts.sum())} valid triplets** in a batch of {len(labels)} faces")
        st.plotly_chart(counts_figure(counts), width="stretch", key="b_counts")

    def picks_table(picks: pd.DataFrame) -> pd.DataFrame:
        table = pd.DataFrame(
            {
                role: [thumbnail_uri(batch_refs[i][0], 64) for i in picks[role]]
                for role in ("anchor", "positive", "negative")
            }
        )
        table["anchor person"] = [labels[i] for i in picks["anchor"]]
        table["negative person"] = [labels[i] for i in picks["negative"]]
        for column in ("d_ap", "d_an", "loss", "kind"):
            table[column] = picks[column].to_numpy()
        return table

    hard = batch_hard_triplets(vectors, labels, margin)
    semi = semi_hard_triplets(vectors, labels, margin)
    with c2:
        summary = pd.DataFrame(
            {
                name: {
                    "triplets picked": len(picks),
                    **{kind: int((picks["kind"] == kind).sum()) for kind in TRIPLET_KINDS},
                    "mean loss": float(picks["loss"].mean()),
                }
                for name, picks in (("batch-hard", hard), ("semi-hard", semi))
            }
        ).T
        st.markdown("**What the two mining strategies pick**")
        st.dataframe(summary, width="stretch")
        st.caption(
            "Batch-hard chases the worst case, so its picks are mostly hard; semi-hard avoids the hardest "
            "negatives (often mislabelled or look-alike photos) that can make training collapse. Semi-hard "
            f"fell back to the farthest negative for {int(semi['fallback'].sum())} pairs that had no "
            "negative beyond the positive."
        )
    images = {
        role: st.column_config.ImageColumn(role, width="small") for role in ("anchor", "positive", "negative")
    }
    numbers = {c: st.column_config.NumberColumn(c, format="%.3f") for c in ("d_ap", "d_an", "loss")}
    st.markdown("**Batch-hard picks** (one per anchor)")
    st.dataframe(picks_table(hard), column_config={**images, **numbers}, hide_index=True, width="stretch")
    st.markdown("**Semi-hard picks** (one per anchor-positive pair)")
    st.dataframe(picks_table(semi), column_config={**images, **numbers}, hide_index=True, width="stretch")
