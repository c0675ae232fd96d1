"""``ApiConfig``: what the API serves with, read once from the environment at startup.

Contract:

* ``pipeline`` is a :class:`facecore.config.PipelineConfig` built by ``PipelineConfig.interactive``,
  so the API detects, aligns and embeds exactly as the dashboard does (photos shrunk to 800 px for
  detection unless ``FACECORE_API_DETECTION_MAX_SIDE`` says otherwise). The detector is checked against
  ``facecore.detection.DETECTORS``; a bad value fails at startup with a sentence naming the variable.
* ``threshold`` None means the configuration's default from
  :func:`facecore.verification.default_threshold` (LFW-calibrated euclidean where measured);
  :meth:`ApiConfig.decision_threshold` is the one place that turns it into a value and its source.
* Limits: each image file is at most ``max_upload_bytes``, a zip for ``POST /people/import`` at most
  ``max_zip_bytes``; :meth:`ApiConfig.body_limit` is the whole request body allowed on a path (checked
  before anything is parsed).

The variables (docs/api.md lists them): ``FACECORE_GALLERY_DIR``, ``FACECORE_API_DETECTOR``,
``FACECORE_API_EMBEDDER``, ``FACECORE_API_FLIP_TTA``, ``FACECORE_API_THRESHOLD``, ``FACECORE_API_MAX_UPLOAD_MB``,
``FACECORE_API_MAX_ZIP_MB``, ``FACECORE_API_MAX_PIXELS``, ``FACECORE_API_DETECTION_MAX_SIDE``; access
(:mod:`api.access`): ``FACECORE_API_INSECURE``, ``FACECORE_API_CORS_ORIGINS`` (comma-separated, none by
default), ``FACECORE_API_RATE_PER_MINUTE`` and ``FACECORE_API_RATE_BURST`` (per key),
``FACECORE_AUDIT_RETENTION_DAYS``; face quality minimums (``facecore.quality``): ``FACECORE_QUALITY_*``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from facecore.config import DEFAULT_DETECTOR, PipelineConfig
from facecore.detection import DETECTORS
from facecore.embedding import DEFAULT_EMBEDDER
from facecore.embedding.base import builtin_embedders
from facecore.gallery import audit, default_gallery_dir
from facecore.gallery.stores import GALLERY_URL_ENV
from facecore.images import MAX_PIXELS
from facecore.quality import QualityMinimums
from facecore.verification import Threshold, default_threshold

#: Every distance the API answers is of this metric (the gallery's FAISS index is L2 too).
METRIC = "euclidean"
DEFAULT_MAX_UPLOAD_MB = 10.0
DEFAULT_MAX_ZIP_MB = 50.0
MAX_IMAGES_PER_REQUEST = 2  # /verify takes two
MULTIPART_OVERHEAD_BYTES = 64 * 1024  # boundaries and part headers around the files
MIN_DETECTION_SIDE = 32
IMPORT_PATH = "/people/import"
BATCH_PATH = "/verify/batch"  # a CSV and a zip
MB = 1024 * 1024
DEFAULT_RATE_PER_MINUTE = 600.0  # per key; a verify takes about 0.3 s on 2 cores, so 600/min is generous
DEFAULT_RATE_BURST = 60
DEFAULT_AUDIT_RETENTION_DAYS = float(audit.DEFAULT_RETENTION_DAYS)


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ApiConfig:
    """The API's settings; see the module docstring. Invalid values raise ``ValueError``."""

    gallery_root: Path
    gallery_url: str | None = None  # $FACECORE_GALLERY_URL; when set it wins over gallery_root
    pipeline: PipelineConfig = field(default_factory=PipelineConfig.interactive)
    threshold: float | None = None
    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * MB)
    max_zip_bytes: int = int(DEFAULT_MAX_ZIP_MB * MB)
    max_pixels: int = MAX_PIXELS
    insecure: bool = False  # answer callers beyond loopback while no API key exists (api.access)
    cors_origins: tuple[str, ...] = ()
    rate_per_minute: float = DEFAULT_RATE_PER_MINUTE
    rate_burst: int = DEFAULT_RATE_BURST
    audit_retention_days: float = DEFAULT_AUDIT_RETENTION_DAYS
    quality: QualityMinimums = field(default_factory=QualityMinimums)

    def __post_init__(self) -> None:
        if self.pipeline.detector not in DETECTORS.names():
            raise ValueError(
                f"unknown detector {self.pipeline.detector!r}; choose one of {DETECTORS.names()}"
            )
        if self.threshold is not None and not (math.isfinite(self.threshold) and self.threshold >= 0):
            raise ValueError(f"the threshold must be a finite distance >= 0, got {self.threshold}")
        if self.pipeline.max_side is not None and self.pipeline.max_side < MIN_DETECTION_SIDE:
            raise ValueError(
                f"the detection max side must be at least {MIN_DETECTION_SIDE} pixels, got {self.pipeline.max_side}"
            )
        if min(self.max_upload_bytes, self.max_zip_bytes, self.max_pixels) < 1:
            raise ValueError("the upload, zip and pixel limits must be positive")
        if self.rate_per_minute < 0 or self.rate_burst < 1 or self.audit_retention_days < 0:
            raise ValueError("the rate limit and the audit retention must be >= 0 and the burst >= 1")
        if any(o == "*" for o in self.cors_origins) and len(self.cors_origins) > 1:
            raise ValueError("CORS origins: '*' stands alone")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiConfig:
        """The configuration the environment asks for (``os.environ`` by default)."""
        env = os.environ if env is None else env
        detector = env.get("FACECORE_API_DETECTOR", DEFAULT_DETECTOR)
        if detector not in DETECTORS.names():
            raise ValueError(
                f"FACECORE_API_DETECTOR={detector!r}: choose one of {', '.join(DETECTORS.names())}"
            )
        embedder = env.get("FACECORE_API_EMBEDDER", DEFAULT_EMBEDDER)
        if embedder not in builtin_embedders():
            raise ValueError(
                f"FACECORE_API_EMBEDDER={embedder!r}: choose one of {', '.join(builtin_embedders())}"
            )
        fields: dict[str, object] = {
            "detector": detector,
            "embedder": embedder,
            "flip_tta": _flag(env.get("FACECORE_API_FLIP_TTA", "0")),
        }
        if env.get("FACECORE_API_DETECTION_MAX_SIDE"):
            fields["max_side"] = int(env["FACECORE_API_DETECTION_MAX_SIDE"])
        threshold = env.get("FACECORE_API_THRESHOLD")
        return cls(
            gallery_root=default_gallery_dir(),
            gallery_url=env.get(GALLERY_URL_ENV) or None,
            pipeline=PipelineConfig.interactive(**fields),
            threshold=float(threshold) if threshold else None,
            max_upload_bytes=int(float(env.get("FACECORE_API_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB)) * MB),
            max_zip_bytes=int(float(env.get("FACECORE_API_MAX_ZIP_MB", DEFAULT_MAX_ZIP_MB)) * MB),
            max_pixels=int(env.get("FACECORE_API_MAX_PIXELS", MAX_PIXELS)),
            insecure=_flag(env.get("FACECORE_API_INSECURE", "0")),
            cors_origins=tuple(o.strip() for o in env.get("FACECORE_API_CORS_ORIGINS", "").split(",") if o.strip()),
            rate_per_minute=float(env.get("FACECORE_API_RATE_PER_MINUTE", DEFAULT_RATE_PER_MINUTE)),
            rate_burst=int(env.get("FACECORE_API_RATE_BURST", DEFAULT_RATE_BURST)),
            audit_retention_days=float(env.get("FACECORE_AUDIT_RETENTION_DAYS", DEFAULT_AUDIT_RETENTION_DAYS)),
            quality=QualityMinimums.from_env(env),
        )

    def decision_threshold(self) -> Threshold:
        """The threshold requests decide with when they give none, and where it comes from."""
        if self.threshold is None:
            return default_threshold(self.pipeline, METRIC)
        return Threshold(float(self.threshold), f"{self.threshold:g}: set by FACECORE_API_THRESHOLD")

    def body_limit(self, path: str) -> int:
        """The largest request body accepted on ``path``: one zip for the import and batch verify, else two images."""
        if path.rstrip("/") in (IMPORT_PATH, BATCH_PATH):
            return self.max_zip_bytes + MULTIPART_OVERHEAD_BYTES
        return MAX_IMAGES_PER_REQUEST * self.max_upload_bytes + MULTIPART_OVERHEAD_BYTES
