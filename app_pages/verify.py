"""Verify (1:1): are the faces in two photos the same person? Or, in voters mode, is a probe the
person several reference photos show?"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
import streamlit as st

from facecore.verification import VOTING_RULES, Rule, Verdict, accepts, verify, verify_against
from ui.audit_trail import log_decision
from ui.charts import embeddings_chart
from ui.inputs import decode_or_error, find_faces, images_input, pick_face
from ui.operating_point import confidence_chart
from ui.resources import load_gallery
from ui.settings import current_settings

settings = current_settings()

#: What each voting rule does, for the caption under the rule picker.
RULE_MEANING = {
    Rule.MEAN: "the mean distance to the references is compared with the threshold. The threshold was "
    "calibrated on single pairs; a mean of genuine distances has less spread, so both error rates fall "
    "as references are added.",
    Rule.NEAREST: "the nearest reference decides. Each extra reference is another chance for a stranger to "
    "come close, so false accepts grow with the number of references.",
    Rule.MAJORITY: "more than half of the references must accept on their own.",
}


def show_verdict(verdict: Verdict) -> None:
    """The decision as a green or red sentence, e.g. **Same person**: euclidean distance 0.41 <= ..."""
    head, _, rest = verdict.sentence().partition(": ")
    (st.success if verdict.same else st.error)(f"**{head}**: {rest}")


# ----------------------------------------------------------------------------- 1:1


def log_verdict(action: str, verdict: Verdict, embeddings: Sequence[np.ndarray]) -> None:
    """The decision in the audit log, once per session for these faces and settings (no images)."""
    log_decision(
        action,
        {"faces": [hashlib.sha256(np.ascontiguousarray(e).tobytes()).hexdigest() for e in embeddings],
         "threshold": verdict.threshold, "metric": verdict.metric, "rule": verdict.rule.value,
         "model": settings.config.model_version},
        {"same_person": verdict.same, "distance": verdict.distance, "metric": verdict.metric,
         "rule": verdict.rule.value, "votes": verdict.votes, "voters": verdict.voters},
        model_version=settings.config.model_version, threshold=verdict.threshold,
    )


def one_to_one() -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Photo A")
        a = pick_face("Photo A from", "verify_a", settings)
    with right:
        st.subheader("Photo B")
        b = pick_face("Photo B from", "verify_b", settings)
    if a is None or b is None:
        st.info("Choose two photos (upload, camera or an example) to compare their faces.")
        return
    verdict = verify(a.embedding, b.embedding, threshold=settings.threshold, metric=settings.metric)
    log_verdict("verify", verdict, [a.embedding, b.embedding])

    st.divider()
    chips, result = st.columns([1, 2])
    with chips:
        st.image([a.face.chip, b.face.chip], caption=[f"A: {a.name}", f"B: {b.name}"], width=150)
        height, width = a.face.chip.shape[:2]
        st.caption(f"Aligned {width}x{height} chips ({a.face.alignment} / {b.face.alignment}) the network embedded.")
    with result:
        st.metric(f"{settings.metric} distance", f"{verdict.distance:.3f}", help="Smaller means more alike.")
        show_verdict(verdict)
        confidence_chart(settings, {"this pair": verdict.distance})
    # A toggle, not an expander: a collapsed expander still builds and ships its chart on every run.
    if st.toggle(f"Show the two {a.embedding.size}-D embeddings", key="verify_show_embeddings"):
        embeddings_chart({"A": a.embedding, "B": b.embedding})


# ----------------------------------------------------------------------------- voters

#: One reference photo: its name, its embedding (None when it has no usable face) and a note.
Reference = tuple[str, np.ndarray | None, str]


def uploaded_references() -> tuple[list[Reference], str]:
    """One row per reference photo (its largest face), and the claimed name."""
    claimed = st.text_input("Claimed person (optional, for the summary)", key="voters_claimed")
    rows: list[Reference] = []
    for data, name in images_input("Reference photos from", "voters_refs"):
        image = decode_or_error(data, name)
        if image is None:
            rows.append((name, None, "not an image we can read"))
            continue
        faces = find_faces(image, data, settings)
        if not faces:
            rows.append((name, None, "no face found"))
            continue
        rows.append((name, faces[0].embedding, f"largest of {len(faces)} faces" if len(faces) > 1 else ""))
    return rows, claimed.strip()


def gallery_references() -> tuple[list[Reference], str]:
    """The stored embeddings of a gallery person's faces (those of the sidebar's model)."""
    gallery = load_gallery()
    people = [p for p in gallery.people() if p.face_count > 0]
    if not people:
        st.info("The gallery has nobody with faces yet; add some on the Gallery page.")
        st.page_link("app_pages/gallery.py", label="Open the Gallery", icon=":material/photo_library:")
        return [], ""
    by_id = {p.id: p for p in people}
    chosen = st.selectbox("Claimed person", list(by_id), format_func=lambda i: by_id[i].name, key="voters_person")
    if chosen is None or chosen not in by_id:
        return [], ""
    person = by_id[chosen]
    # The stored embeddings of the model the probe goes through (flip TTA gives another model version).
    version = settings.config.model_version
    face_ids, person_ids, vectors = gallery.embeddings(version)
    mine = person_ids == person.id
    rows: list[Reference] = [
        (f"{person.name} #{face_id}", vector, "") for face_id, vector in zip(face_ids[mine], vectors[mine], strict=True)
    ]
    if not rows:
        st.warning(
            f"{person.name}'s faces were stored by another model version than {version} "
            f"({settings.config.model_label}; flip TTA changes it too); switch the embedding model or flip "
            "TTA in the sidebar, or enrol them again."
        )
    return rows, person.name


def reference_table(references: list[Reference], distances: Sequence[float]) -> pd.DataFrame:
    """One row per reference photo: its distance to the probe and its own vote (skipped ones included)."""
    measured = iter(distances)
    rows = []
    for name, vector, note in references:
        if vector is None:
            rows.append({"reference": name, "distance": None, "vote": "skipped", "note": note})
            continue
        d = next(measured)
        vote = "accept" if accepts(d, settings.threshold) else "reject"
        rows.append({"reference": name, "distance": round(d, 4), "vote": vote, "note": note})
    return pd.DataFrame(rows)


def voters() -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Probe")
        probe = pick_face("Probe photo from", "voters_probe", settings)
    with right:
        st.subheader("References")
        source = st.radio(
            "Reference photos of the claimed person",
            ["Upload photos", "Gallery person"],
            horizontal=True,
            key="voters_ref_source",
        )
        references, claimed = uploaded_references() if source == "Upload photos" else gallery_references()
    rule = Rule(
        st.radio(
            "Decision rule",
            [rule.value for rule in VOTING_RULES],
            format_func=lambda value: Rule(value).label,
            key="voters_rule",
            horizontal=True,
            help="How the references' distances become one decision.",
        )
    )
    st.caption(f"**{rule.label.capitalize()}**: {RULE_MEANING[rule]}")
    if probe is None or not references:
        st.info("Choose a probe photo and at least one reference photo of the claimed person.")
        return
    usable = [vector for _, vector, _ in references if vector is not None]
    st.divider()
    if not usable:
        st.dataframe(reference_table(references, []), width="stretch", hide_index=True)
        st.error("None of the reference photos has a usable face, so there is nothing to vote with.")
        return
    verdict = verify_against(
        probe.embedding, np.stack(usable), threshold=settings.threshold, metric=settings.metric, rule=rule
    )
    log_verdict("verify voters", verdict, [probe.embedding, *usable])
    st.dataframe(reference_table(references, verdict.distances), width="stretch", hide_index=True)
    who = claimed or "the claimed person"
    st.write(
        f"**{verdict.votes} of {verdict.voters}** references accept {probe.name} as {who} "
        f"({100 * verdict.accept_fraction:.0f}%); {rule.label} decides."
    )
    show_verdict(verdict)
    confidence_chart(
        settings, {f"{verdict.distance_name} distance": verdict.distance},
        statistic=verdict.distance_name, comparisons=verdict.voters,
    )


# ----------------------------------------------------------------------------- page

st.title("Verify: same person or not?")
st.caption(
    f"{settings.detector} detector, {settings.metric} distance, threshold {settings.threshold:.3f}"
    f"{', flip TTA' if settings.flip_tta else ''} (change them in the sidebar)."
)
if st.toggle(
    "Voters mode: one probe against several photos of a claimed person",
    key="verify_voters",
    help="Every reference photo votes accept/reject; the decision rule you pick (mean distance by default) decides.",
):
    voters()
else:
    one_to_one()
