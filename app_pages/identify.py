"""Identify (1:K): every face in a photo searched against the gallery."""

from __future__ import annotations

import hashlib

import streamlit as st

from facecore.verification import IDENTIFY_RULES, UNKNOWN, Identification, Rule
from ui.audit_trail import log_decision
from ui.drawing import draw_faces
from ui.feedback import show_error
from ui.inputs import decode_or_error, find_faces, image_input, no_face_warning
from ui.operating_point import confidence_chart, confidence_note
from ui.quality import show_quality_warnings
from ui.resources import gallery_location, load_gallery, pipeline
from ui.settings import current_settings, identification_settings

RULE_NAMES = {Rule.NEAREST: "nearest face", Rule.MAJORITY: "k-NN majority vote"}
RULE_MEANING = {
    Rule.NEAREST: "the person of the nearest gallery face, when it is within the threshold.",
    Rule.MAJORITY: "the person with the most faces among the k nearest that are within the threshold "
    "(ties go to the nearer person).",
}

settings = current_settings()
st.title("Identify: who is in this photo?")

try:
    gallery = load_gallery()
    stored = gallery.faces()
except Exception as exc:  # a broken or unwritable gallery folder must not show a traceback
    st.error(f"The gallery at {gallery_location()} cannot be opened: {exc}")
    st.stop()

if not stored:
    st.info("The gallery is empty, so there is nobody to recognise yet. Add people and their photos first.")
    st.page_link("app_pages/gallery.py", label="Open the Gallery", icon=":material/photo_library:")
    st.stop()

try:
    model_version = pipeline(settings.config).embedder.version
except Exception as exc:  # e.g. a kept model file that became unreadable
    show_error(f"The {settings.config.model_label} model could not be loaded", exc)
    st.stop()
# Vectors of different models (or flip TTA settings) are not comparable: search only this one's.
usable = [f for f in stored if f.model_version == model_version]
if not usable:
    st.info(
        f"The gallery has no faces embedded by the sidebar's model, {settings.config.model_label}"
        f"{' with flip TTA' if settings.flip_tta else ''} ({model_version}); its {len(stored)} faces were "
        "embedded by another embedding model or flip TTA setting. Enrol photos on the Gallery page with "
        "this model, or switch the model in the sidebar."
    )
    st.page_link("app_pages/gallery.py", label="Open the Gallery", icon=":material/photo_library:")
    st.stop()

# The settings gallery search decides with: euclidean (L2), the sidebar's threshold or the one the API uses.
search, note = identification_settings(settings)
threshold = search.threshold
people = {f.person_id for f in usable}
st.caption(
    f"{len(usable)} faces of {len(people)} people in the gallery. A face is compared with its k nearest "
    f"gallery faces; those within L2 distance {threshold:.3f} count."
)
if note:
    st.caption(note)
if len(usable) < len(stored):
    st.caption(f"{len(stored) - len(usable)} gallery faces embedded by other models are not searched.")
left, right = st.columns(2)
k = left.slider("Nearest gallery faces to show and vote with (k)", 1, 15, 5, key="identify_k")
rule = Rule(
    right.radio(
        "Who is it?",
        [r.value for r in IDENTIFY_RULES],
        format_func=lambda value: RULE_NAMES[Rule(value)],
        key="identify_rule",
        horizontal=True,
    )
)
st.caption(f"**{RULE_NAMES[rule].capitalize()}**: {RULE_MEANING[rule]}")

item = image_input("Probe photo from", "identify_probe")
if item is None:
    st.stop()
data, name = item
image = decode_or_error(data, name)
if image is None:
    st.stop()
faces = find_faces(image, data, settings)
if faces is None:
    st.stop()
if not faces:
    st.image(draw_faces(image, []), caption=name, width="stretch")
    no_face_warning(name, settings)
    st.stop()

try:
    results = [
        gallery.identify(f.embedding, threshold=threshold, k=k, model_version=model_version, rule=rule)
        for f in faces
    ]
except Exception as exc:
    st.error(f"The gallery search failed: {exc}")
    st.stop()
log_decision(
    "identify",
    {"photo": hashlib.sha256(data).hexdigest(), "model": model_version, "threshold": threshold, "k": k,
     "rule": rule.value, "detector": settings.detector},
    {"faces": [{"name": r.name, "distance": r.distance} for r in results], "rule": rule.value},
    ids=[r.person_id for r in results if r.person_id is not None], model_version=model_version, threshold=threshold,
)


def answer(number: int, result: Identification) -> None:
    """The rule's answer for one face: a known person (green) or unknown (amber), and why."""
    if result.known and result.rule is Rule.NEAREST:
        st.success(f"Face {number}: **{result.name}** (L2 distance {result.distance:.3f} <= {threshold:.3f})")
    elif result.known:
        st.success(
            f"Face {number}: **{result.name}** ({result.votes[result.name]} of the {len(result.matches)} "
            f"nearest gallery faces, within L2 distance {threshold:.3f})"
        )
    elif result.best is not None:
        st.warning(
            f"Face {number}: **unknown**. The nearest gallery face is {result.best.person_name} at L2 "
            f"distance {result.distance:.3f}, above the threshold {threshold:.3f}."
        )
    else:
        st.warning(f"Face {number}: **unknown** (no gallery face to compare with).")
    confidence_note(search, result.distance, search=True)
    if not result.agrees:
        st.info(
            f"The nearest face and the vote disagree on face {number}: the nearest gallery face says "
            f"**{result.nearest_name}**, the vote of the {len(result.matches)} nearest says "
            f"**{result.vote_winner or UNKNOWN}**. The {RULE_NAMES[result.rule]} rule decided."
        )


def vote_tally(result: Identification) -> None:
    if result.votes:
        tally = ", ".join(f"{who}: {n}" for who, n in result.votes.items())
        st.write(
            f"KNN vote (nearest {len(result.matches)} gallery faces, those within the threshold vote): "
            f"{tally}. Winner: **{result.vote_winner}**."
        )
    elif result.matches:
        st.write(f"KNN vote: none of the nearest {len(result.matches)} gallery faces is within the threshold.")


chips = {f.id: f for f in usable}
labels = [f"{i + 1}: {r.name}" for i, r in enumerate(results)]
st.image(draw_faces(image, faces, labels=labels), caption=f"{name}: {len(faces)} face(s)", width="stretch")

for i, (face, result) in enumerate(zip(faces, results, strict=True)):
    with st.container(border=True):
        left, right = st.columns([1, 5])
        left.image(face.chip, caption=f"Face {i + 1}", width=120)
        with right:
            answer(i + 1, result)
            show_quality_warnings(face, len(faces), f"Face {i + 1}")
            vote_tally(result)
            if result.matches:
                columns = st.columns(min(len(result.matches), 8))
                for j, match in enumerate(result.matches):
                    with columns[j % len(columns)]:
                        stored_face = chips.get(match.face_id)
                        caption = f"{match.person_name}: {match.distance:.3f}"
                        if stored_face is not None and stored_face.chip_path.is_file():
                            st.image(str(stored_face.chip_path), width=100, caption=caption)
                        else:
                            st.caption(caption)

# Each face's nearest gallery distance placed on the deciding calibration set's distributions (the
# rates in words are beside each face above).
nearest = {f"face {i + 1}": r.distance for i, r in enumerate(results) if r.distance is not None}
if nearest:
    st.subheader("Where the nearest distances fall")
    confidence_chart(search, nearest, words=False)
