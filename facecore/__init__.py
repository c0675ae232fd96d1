"""facecore: the face verification engine behind Face Verification Lab.

One path for data, and one subpackage per step::

    bytes -> images -> detection (Face) -> alignment (chip) -> embedding (vector)
          -> verification (distance, threshold, decision) -> gallery / evaluation / classroom

The names below are the short way in (``facecore.face_embeddings``, ``facecore.verify``,
``facecore.PipelineConfig`` ...). They load lazily: ``import facecore`` imports no model library and
has no side effects. ``docs/architecture.md`` maps the modules. This package never imports Streamlit
or FastAPI.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_EXPORTS = {
    "PipelineConfig": "facecore.config",
    "FacePipeline": "facecore.pipeline",
    "build_pipeline": "facecore.pipeline",
    "Face": "facecore.types",
    "EmbeddedFace": "facecore.types",
    "load_image": "facecore.images",
    "face_embeddings": "facecore.facade",
    "verify": "facecore.facade",
    "verify_against": "facecore.verification",
    "identify_decision": "facecore.verification",
    "default_threshold": "facecore.verification",
    "Verdict": "facecore.verification",
    "Rule": "facecore.verification",
    "Gallery": "facecore.gallery",
    "DETECTORS": "facecore.detection",
    "EMBEDDERS": "facecore.embedding",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'facecore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
