"""What the dashboard loads once and shares between sessions: the pipeline, the gallery, the embedding cache.

``pipeline(config)`` is the only cached pipeline: one per :class:`~facecore.config.PipelineConfig`,
built by :func:`facecore.pipeline.build_pipeline` (which shares the models themselves per process).
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from facecore.config import PipelineConfig
from facecore.pipeline import FacePipeline, build_pipeline


@st.cache_resource(show_spinner="Loading the face models (TensorFlow)...")
def pipeline(config: PipelineConfig) -> FacePipeline:
    """The pipeline of ``config``, shared by every session.

    Raises what loading raises (e.g. ``KerasModelError`` for a kept model file that became unusable);
    callers show it with :func:`ui.feedback.show_error`.
    """
    return build_pipeline(config)


def gallery_root() -> Path:
    """Where the gallery lives: ``$FACECORE_GALLERY_DIR``, else ``./gallery``."""
    return Path(os.environ.get("FACECORE_GALLERY_DIR") or "gallery").expanduser().resolve()


def gallery_location() -> str:
    """Where the gallery lives, to show: ``$FACECORE_GALLERY_URL`` (password hidden), else :func:`gallery_root`."""
    from facecore.gallery.stores import redact_url

    url = os.environ.get("FACECORE_GALLERY_URL")
    return redact_url(url) if url else str(gallery_root())


@st.cache_resource(show_spinner=False)
def _gallery_at(url: str):
    from facecore.gallery.stores import open_gallery

    return open_gallery(url)


def load_gallery():
    """The shared gallery of ``$FACECORE_GALLERY_URL``, else of ``$FACECORE_GALLERY_DIR`` (one instance per place)."""
    return _gallery_at(os.environ.get("FACECORE_GALLERY_URL") or f"sqlite://{gallery_root()}")


@st.cache_resource(show_spinner=False)
def _embedding_cache_at(directory: str):
    from facecore.cache import EmbeddingCache

    return EmbeddingCache(directory)


def embedding_cache():
    """The on-disk embedding cache (``$FACECORE_CACHE_DIR``, else ``~/.cache/facecore``)."""
    from facecore.cache import default_cache_dir

    return _embedding_cache_at(str(default_cache_dir()))
