"""Face quality on the dashboard: warnings under a face, and the enrolment gate with its override.

The minimums are ``facecore.quality.QualityMinimums.from_env()`` (``FACECORE_QUALITY_*``), the same
ones the API reads; the measures are ``facecore.quality.face_quality``.
"""

from __future__ import annotations

import streamlit as st

from facecore.quality import QualityGate, QualityMinimums, face_quality
from facecore.types import EmbeddedFace

OVERRIDE_KEY = "enrol_allow_low_quality"


def minimums() -> QualityMinimums:
    return QualityMinimums.from_env()


def show_quality_warnings(face: EmbeddedFace, faces_in_photo: int, label: str = "This face") -> None:
    """One warning listing the minimums the face misses (nothing when it meets them all)."""
    problems = minimums().problems(face_quality(face, faces_in_photo))
    if problems:
        st.warning(f"{label}: {'; '.join(problems)}. The answer below is less reliable.")


def quality_override() -> bool:
    """The checkbox that lets enrolment take faces below the minimums (off by default)."""
    m = minimums()
    return st.checkbox(
        "Enrol faces below the quality minimums too",
        key=OVERRIDE_KEY,
        help=(
            f"By default a photo is refused when its face has less than {m.min_eye_distance_px:g} px between "
            f"the eyes, a sharpness under {m.min_blur:g}, a tilt over {m.max_abs_roll_deg:g} degrees or a yaw "
            f"over {m.max_abs_yaw:g}: such faces make Identify less reliable (docs/face_quality.md)."
        ),
    )


def gated(pipeline):
    """The pipeline to enrol with: behind the quality gate unless the override checkbox is ticked."""
    return pipeline if st.session_state.get(OVERRIDE_KEY) else QualityGate(pipeline, minimums())
