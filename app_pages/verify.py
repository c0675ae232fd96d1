"""Verify (1:1): are the faces in two photos the same person? Or, in voters mode, is a probe the
person several reference photos show?"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from facecore.pipeline import EmbeddedFace
from facecore.verification.metrics import paired_distances
from ui.common import (
    Settings,
    current_settings,
    decode_or_error,
    draw_faces,
    face_label,
    find_faces,
    image_input,
    images_input,
    lfw_distance_chart,
    load_gallery,
    settings_pipeline,
)

settings = current_settings()


def pick_face(label: str, key: str) -> tuple[EmbeddedFace, str] | None:
    """An image input, the photo with its faces drawn, and the face to use (largest by default)."""
    item = image_input(label, key)
    if item is None:
        return None
    data, name = item
    image = decode_or_error(data, name)
    if image is None:
        return None
    faces = find_faces(image, data, settings)
    if faces is None:
        return None
    if not faces:
        st.image(draw_faces(image, []), caption=name, width="stretch")
        st.warning(
            f"No face found in {name} with the {settings.detector} detector. Try a photo where the face "
            "is larger, frontal and well lit, or another detector in the sidebar."
        )
        return None
    index = 0
    if len(faces) > 1:
        index = st.selectbox(
            f"{len(faces)} faces found; compare this one",
            range(len(faces)),
            format_func=lambda i: face_label(i, len(faces)),
            key=f"{key}_face",
        )
        index = index if index is not None and index < len(faces) else 0
    st.image(draw_faces(image, faces, index), caption=name, width="stretch")
    return faces[index], name


def decision(distance: float, threshold: float, metric: str, what: str = "distance") -> None:
    if distance <= threshold:
        st.success(f"**Same person**: {metric} {what} {distance:.3f} <= threshold {threshold:.3f}")
    else:
        st.error(f"**Different people**: {metric} {what} {distance:.3f} > threshold {threshold:.3f}")


def distance(a: np.ndarray, b: np.ndarray, s: Settings) -> float:
    return float(paired_distances(a, b, s.metric)[0])


def embeddings_view(vectors: dict[str, np.ndarray]) -> None:
    frame = pd.DataFrame(vectors)
    frame.index.name = "dimension"
    fig = go.Figure([go.Bar(x=frame.index, y=frame[c], name=c) for c in frame.columns])
    fig.update_layout(
        barmode="group",
        height=260,
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis_title="dimension",
        yaxis_title="value",
    )
    st.plotly_chart(fig, width="stretch")
    st.dataframe(frame.T, width="stretch")


# ----------------------------------------------------------------------------- 1:1


def one_to_one() -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Photo A")
        a = pick_face("Photo A from", "verify_a")
    with right:
        st.subheader("Photo B")
        b = pick_face("Photo B from", "verify_b")
    if a is None or b is None:
        st.info("Choose two photos (upload, camera or an example) to compare their faces.")
        return
    (face_a, name_a), (face_b, name_b) = a, b
    d = distance(face_a.embedding, face_b.embedding, settings)

    st.divider()
    chips, result = st.columns([1, 2])
    with chips:
        st.image(
            [face_a.chip, face_b.chip],
            caption=[f"A: {name_a}", f"B: {name_b}"],
            width=150,
        )
        st.caption(f"Aligned 150x150 chips ({face_a.alignment} / {face_b.alignment}) the network embedded.")
    with result:
        st.metric(f"{settings.metric} distance", f"{d:.3f}", help="Smaller means more alike.")
        decision(d, settings.threshold, settings.metric)
        lfw_distance_chart(settings, {"this pair": d})
    # A toggle, not an expander: a collapsed expander still builds and ships its chart on every run.
    if st.toggle(f"Show the two {face_a.embedding.size}-D embeddings", key="verify_show_embeddings"):
        embeddings_view({"A": face_a.embedding, "B": face_b.embedding})


# ----------------------------------------------------------------------------- voters


def uploaded_references() -> tuple[list[tuple[str, np.ndarray | None, str]], str]:
    """``(name, embedding or None, note)`` per reference photo (its largest face), and the claim."""
    claimed = st.text_input("Claimed person (optional, for the summary)", key="voters_claimed")
    items = images_input("Reference photos from", "voters_refs")
    rows = []
    for data, name in items:
        image = decode_or_error(data, name)
        if image is None:
            rows.append((name, None, "not an image we can read"))
            continue
        faces = find_faces(image, data, settings)
        if not faces:
            rows.append((name, None, "no face found"))
            continue
        note = f"largest of {len(faces)} faces" if len(faces) > 1 else ""
        rows.append((name, faces[0].embedding, note))
    return rows, claimed.strip()


def gallery_references() -> tuple[list[tuple[str, np.ndarray | None, str]], str]:
    """The stored embeddings of a gallery person's faces."""
    gallery = load_gallery()
    people = [p for p in gallery.people() if p.face_count > 0]
    if not people:
        st.info("The gallery has nobody with faces yet; add some on the Gallery page.")
        st.page_link("app_pages/gallery.py", label="Open the Gallery", icon=":material/photo_library:")
        return [], ""
    by_id = {p.id: p for p in people}
    chosen = st.selectbox(
        "Claimed person",
        list(by_id),
        format_func=lambda i: by_id[i].name,
        key="voters_person",
    )
    if chosen is None or chosen not in by_id:
        return [], ""
    person = by_id[chosen]
    # The stored embeddings of the model the probe goes through (flip TTA gives another model version).
    version = settings_pipeline(settings).embedder.version
    face_ids, person_ids, vectors = gallery.embeddings(version)
    mine = person_ids == person.id
    rows = [
        (f"{person.name} #{face_id}", vector, "")
        for face_id, vector in zip(face_ids[mine], vectors[mine], strict=True)
    ]
    if not rows:
        st.warning(
            f"{person.name}'s faces were stored by another model version than {version} "
            f"({settings.model}; flip TTA changes it too); switch the embedding model or flip TTA in the "
            "sidebar, or enrol them again."
        )
    return rows, person.name


def voters() -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Probe")
        probe = pick_face("Probe photo from", "voters_probe")
    with right:
        st.subheader("References")
        source = st.radio(
            "Reference photos of the claimed person",
            ["Upload photos", "Gallery person"],
            horizontal=True,
            key="voters_ref_source",
        )
        references, claimed = uploaded_references() if source == "Upload photos" else gallery_references()
    if probe is None or not references:
        st.info("Choose a probe photo and at least one reference photo of the claimed person.")
        return
    face, probe_name = probe
    table = []
    for name, vector, note in references:
        if vector is None:
            table.append({"reference": name, "distance": None, "vote": "skipped", "note": note})
            continue
        d = distance(face.embedding, vector, settings)
        vote = "accept" if d <= settings.threshold else "reject"
        table.append({"reference": name, "distance": round(d, 4), "vote": vote, "note": note})
    votes = pd.DataFrame(table)
    counted = votes[votes["vote"] != "skipped"]
    st.divider()
    st.dataframe(votes, width="stretch", hide_index=True)
    if counted.empty:
        st.error("None of the reference photos has a usable face, so there is nothing to vote with.")
        return
    accepted = int((counted["vote"] == "accept").sum())
    mean = float(counted["distance"].mean())
    who = claimed or "the claimed person"
    st.write(
        f"**{accepted} of {len(counted)}** references accept {probe_name} as {who}; "
        f"mean {settings.metric} distance {mean:.3f}."
    )
    decision(mean, settings.threshold, settings.metric, what="mean distance")
    lfw_distance_chart(settings, {"mean": mean})


# ----------------------------------------------------------------------------- page

st.title("Verify: same person or not?")
st.caption(
    f"{settings.detector} detector, {settings.metric} distance, threshold {settings.threshold:.3f}"
    f"{', flip TTA' if settings.flip_tta else ''} (change them in the sidebar)."
)
if st.toggle(
    "Voters mode: one probe against several photos of a claimed person",
    key="verify_voters",
    help="Every reference photo votes accept/reject; the decision uses the mean distance.",
):
    voters()
else:
    one_to_one()
