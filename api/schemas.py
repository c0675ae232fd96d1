"""Request and response bodies of the HTTP API (they are what /docs and /openapi.json describe).

The rule enums are built from ``facecore.verification``'s own lists, so the API offers exactly the
rules facecore decides with (default first).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from api.schemas_calibration import ConfidenceOut, DecidedBy
from facecore.verification import IDENTIFY_RULES, VOTING_RULES

#: ``/verify/person/{id}?rule=``: how the distances to a person's faces become one decision.
VerifyRule = StrEnum("VerifyRule", [(rule.name, rule.value) for rule in VOTING_RULES])
#: ``/identify?rule=``: how the k nearest gallery faces name a probe.
IdentifyRule = StrEnum("IdentifyRule", [(rule.name, rule.value) for rule in IDENTIFY_RULES])


class ErrorOut(BaseModel):
    detail: str = Field(description="A sentence saying what went wrong and, where it can, what to do.")


class Box(BaseModel):
    x: int
    y: int
    w: int
    h: int


class PersonIn(BaseModel):
    name: str = Field(
        max_length=1000,
        description="Unique ignoring case; trimmed, NFC-normalised, 1 to 100 characters, no control characters.",
        examples=["Ada Lovelace"],
    )


class PersonOut(BaseModel):
    id: int
    name: str
    face_count: int
    created: float = Field(description="Unix time.")


class GalleryFaceOut(BaseModel):
    id: int
    person_id: int
    person_name: str
    box: Box = Field(description="Where the face was in the uploaded image.")
    score: float | None = Field(
        description="The detector's own confidence (not comparable across detectors)."
    )
    detector: str
    model_version: str = Field(description="The embedder that made the stored vector.")
    image_sha256: str
    created: float
    chip_url: str = Field(description="The aligned 150x150 chip as PNG.")


class FaceQualityOut(BaseModel):
    eye_distance_px: float | None = Field(description="Distance between the eye centres in image pixels.")
    blur: float | None = Field(description="Variance of the Laplacian of the aligned chip: lower is blurrier.")
    roll_deg: float | None = Field(description="Head tilt in degrees (the eye line against the horizontal).")
    yaw: float | None = Field(description="The nose's sideways offset from the eyes' midpoint, in eye distances.")
    pitch: float | None = Field(description="The nose's offset below the eye line, in eye distances.")
    detector_score: float = Field(description="The detector's score (not comparable across detectors).")
    faces_in_photo: int
    warnings: list[str] = Field(description="The configured minimums this face misses, in words.")


class DetectedFace(BaseModel):
    box: Box
    score: float
    quality: FaceQualityOut = Field(description="Size, blur, pose and crowding of this face (facecore.quality).")
    landmarks: list[list[float]] = Field(
        description="The five (x, y) points the face was aligned to, in image pixels."
    )
    landmarks_order: str = Field(
        description="'dlib5': dlib's 5-point shape (two corners of each eye, then the base of the nose); "
        "'mtcnn5': left eye, right eye, nose, mouth left, mouth right (as seen in the image)."
    )


class EmbeddedFaceOut(DetectedFace):
    embedding: list[float] = Field(description="The embedding (128-D for dlib-keras, 512-D unit-length for arcface-keras); compare two with euclidean (L2) distance.")


class EmbeddingsOut(BaseModel):
    width: int
    height: int
    detector: str
    model_version: str
    faces: list[EmbeddedFaceOut] = Field(description="Every face found, largest first (may be empty).")


class VerifyOut(DecidedBy):
    same_person: bool = Field(description="distance <= threshold")
    distance: float = Field(description="Euclidean (L2) distance between the two largest faces' embeddings.")
    threshold: float
    decision: str = Field(description="The decision in words, with the distance and the threshold.")
    face_a: DetectedFace = Field(description="The largest face of image_a (the one compared).")
    face_b: DetectedFace
    faces_in_a: int
    faces_in_b: int
    model_version: str
    confidence: ConfidenceOut | None = Field(
        default=None, description="Rates at this distance on the calibration set; null when it has no distances."
    )


class VerifyPersonOut(DecidedBy):
    same_person: bool = Field(
        description="mean and nearest: distance <= threshold; majority: more than half of the faces accept."
    )
    rule: VerifyRule = Field(description="The rule that decided (the `rule` query parameter).")
    distance: float = Field(
        description="What the rule compared: the mean L2 distance to the person's faces (mean), the nearest "
        "(nearest), or the median (majority, for information: the votes decide)."
    )
    threshold: float
    decision: str = Field(description="The decision in words: rule, distance, threshold and votes.")
    nearest_distance: float = Field(description="L2 distance to the person's nearest stored face.")
    mean_distance: float = Field(description="Mean L2 distance to the person's stored faces.")
    votes: int = Field(description="How many of the person's faces are within the threshold on their own.")
    voters: int = Field(description="How many faces voted (= faces_compared).")
    person: PersonOut
    nearest_face_id: int
    faces_compared: int = Field(description="How many of the person's faces were embedded by this model.")
    face: DetectedFace = Field(description="The largest face of the uploaded image (the one compared).")
    faces_in_image: int
    model_version: str
    voter_confidence: float = Field(description="The fraction of the person's faces (voters) that accept on their own.")
    confidence: ConfidenceOut | None = Field(
        default=None, description="Rates at the rule's distance on the calibration set; null without distances."
    )


class MatchOut(BaseModel):
    face_id: int
    person_id: int
    person_name: str
    distance: float


class IdentifiedFace(DetectedFace):
    name: str = Field(
        description="The rule's answer: nearest (default), the nearest gallery face's person when within "
        "the threshold; majority, the vote winner; else 'unknown'."
    )
    person_id: int | None = Field(description="The id of the person `name` names; null for 'unknown'.")
    nearest_name: str = Field(
        description="The nearest gallery face's person when within the threshold, else 'unknown'."
    )
    agrees: bool = Field(
        description="Whether nearest_name and vote_winner name the same person (both unknown counts)."
    )
    distance: float | None = Field(
        description="Distance to the nearest gallery face; null when none to compare."
    )
    matches: list[MatchOut] = Field(description="The k nearest gallery faces, nearest first.")
    votes: dict[str, int] = Field(
        description="Person -> how many of the k nearest faces are theirs and within threshold."
    )
    vote_winner: str | None = Field(description="The person with the most votes; null when nobody has one.")
    confidence: ConfidenceOut | None = Field(
        default=None, description="Rates at the nearest distance on the calibration set; null without either."
    )


class IdentifyOut(DecidedBy):
    threshold: float
    rule: IdentifyRule = Field(description="The rule that chose each face's `name`.")
    k: int
    model_version: str
    gallery_faces: int = Field(description="Gallery faces embedded by this model (the ones searched).")
    faces: list[IdentifiedFace] = Field(description="Every face in the image, largest first.")


class HealthOut(BaseModel):
    status: str
    detector: str
    embedder: str
    model_version: str
    licence: str = Field(description="Terms of the detector's and model's weights ('' when unrestricted).")
    threshold: float
    threshold_source: str
    people: int
    faces: int
    max_upload_bytes: int
    max_zip_bytes: int
    max_pixels: int


class SkippedFileOut(BaseModel):
    file: str = Field(description="The file's path inside the zip.")
    reason: str = Field(description="Why it was not enrolled.")


class ImportOut(BaseModel):
    people: int = Field(description="Person folders with at least one image in the zip.")
    enrolled: int = Field(description="Faces stored.")
    skipped: int = Field(description="Files not enrolled (each listed in skipped_files).")
    faces: list[GalleryFaceOut] = Field(description="The stored faces, in zip order.")
    skipped_files: list[SkippedFileOut]
    summary: str = Field(description="The outcome in one sentence.")


class EnrolledFaceOut(GalleryFaceOut):
    quality: FaceQualityOut = Field(description="The quality of the stored face when it was enrolled.")


class FaceMoveIn(BaseModel):
    person_id: int = Field(ge=1, le=2**63 - 1, description="The person the face now belongs to.")


class FaceEmbeddingOut(BaseModel):
    face_id: int
    person_id: int
    model_version: str = Field(description="The embedder that made the vector.")
    dimension: int
    embedding: list[float]
