"""The sidebar's settings: which pipeline, which metric, which threshold, and where that threshold comes from.

A :class:`Settings` holds one :class:`~facecore.config.PipelineConfig` (detector, embedding model, flip
TTA), the distance metric, the threshold the pages decide with and the default
:class:`~facecore.verification.Threshold` it started from. The pickers list what the registries
(``DETECTORS``, ``EMBEDDERS``) and the folder of kept models hold; the default threshold is the gallery's
active operating point for the configuration (``ui.deciding.deciding``), else
:func:`facecore.verification.default_threshold`.

Session-state keys (the widget keys, which tests and other pages use): ``detector``, ``metric``,
``flip_tta``, ``model``, ``threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from facecore.config import DEFAULT_DETECTOR, PipelineConfig
from facecore.detection import DETECTORS
from facecore.embedding import DEFAULT_EMBEDDER, EMBEDDERS
from facecore.embedding.model_store import default_models_dir, saved_models
from facecore.verification import Threshold, default_threshold
from facecore.verification.metrics import METRICS
from facecore.verification.operating_points import DEFAULT_NAME
from facecore.verification.thresholds import THRESHOLD_RANGES, Calibration, clamp_threshold
from ui.deciding import deciding

DEFAULT_METRIC = "euclidean"
#: The registered embedder that reads a kept ``.keras`` file (offered as one entry per kept file).
KEPT_MODEL_EMBEDDER = "keras-file"
KEPT_MODEL_SUFFIX = ".keras"

_USER_SET = "_threshold_user_set"
_THRESHOLD_FOR = "_threshold_for"


@dataclass(frozen=True)
class Settings:
    """What the sidebar holds: the pipeline's config, the metric and the threshold with its default."""

    config: PipelineConfig
    metric: str
    threshold: float
    #: The default threshold of ``config`` and ``metric`` (value, source sentence, calibration).
    default: Threshold
    #: The model picker's value: a registered embedder's name or a kept ``.keras`` file's name.
    model: str
    #: True when the person moved the threshold away from the default.
    user_set: bool

    @property
    def detector(self) -> str:
        return self.config.detector

    @property
    def flip_tta(self) -> bool:
        return self.config.flip_tta

    @property
    def pretrained(self) -> bool:
        """True for a model whose LFW calibration and distances ship with the lab."""
        return self.config.pretrained

    @property
    def calibration(self) -> Calibration | None:
        return self.default.calibration

    @property
    def source(self) -> str:
        """One line on where the default threshold comes from."""
        return self.default.source


# ----------------------------------------------------------------------------- model choices


def model_options() -> list[str]:
    """The registered embedders (except the file reader) and every kept ``.keras`` model, by file name."""
    registered = [name for name in EMBEDDERS.names() if name != KEPT_MODEL_EMBEDDER]
    return [*registered, *(path.name for path in saved_models())]


def detector_label(detector: str) -> str:
    """A detector picker entry as shown: ``HOG``, ``MTCNN``, ``SCRFD``, ``Haar``."""
    return "Haar" if detector == "haar" else detector.upper()


def model_label(model: str) -> str:
    """A model picker entry as shown: ``dlib-keras (pretrained)``, or the kept file's name."""
    if model in EMBEDDERS and EMBEDDERS.get(model).pretrained:
        return f"{model} (pretrained)"
    return model


def pipeline_config(detector: str, model: str, flip_tta: bool) -> PipelineConfig:
    """The dashboard's config for a detector, a model picker entry and flip TTA."""
    if model.endswith(KEPT_MODEL_SUFFIX):
        path = default_models_dir() / model
        return PipelineConfig.interactive(
            detector=detector, embedder=KEPT_MODEL_EMBEDDER, model_path=str(path), flip_tta=flip_tta
        )
    return PipelineConfig.interactive(detector=detector, embedder=model, flip_tta=flip_tta)


def _help(registry, names) -> str:
    lines = []
    for name in names:
        cls = registry.get(name)
        lines.append(f"**{name}**: {cls.summary}" + (f" ({cls.licence})" if cls.licence else ""))
    return "\n\n".join(lines)


# ----------------------------------------------------------------------------- session state


def _default(config: PipelineConfig, metric: str) -> Threshold:
    """The threshold that decides when the person sets none: the active operating point, else the default."""
    chosen = deciding(config, metric)
    if chosen.name == DEFAULT_NAME:
        return default_threshold(config, metric)
    return Threshold(chosen.threshold, chosen.source)


def _state_config() -> PipelineConfig:
    state = st.session_state
    return pipeline_config(state["detector"], state["model"], bool(state["flip_tta"]))


def _init_state() -> None:
    state = st.session_state
    detectors = DETECTORS.names()
    if state.get("detector") not in detectors:
        state["detector"] = DEFAULT_DETECTOR if DEFAULT_DETECTOR in detectors else detectors[0]
    if state.get("metric") not in METRICS:
        state["metric"] = DEFAULT_METRIC
    if not isinstance(state.get("flip_tta"), bool):
        state["flip_tta"] = False
    if state.get("model") not in model_options():
        if state.get("model") not in (None, DEFAULT_EMBEDDER):
            state["_model_missing"] = state["model"]
        state["model"] = DEFAULT_EMBEDDER
    state.setdefault(_USER_SET, False)
    default = _default(_state_config(), state["metric"])
    key = (state["detector"], state["metric"], state["flip_tta"], state["model"], default.value)
    previous = state.get(_THRESHOLD_FOR)
    if previous == key and isinstance(state.get("threshold"), float | int):
        return
    # The configuration changed (or this is the first run): move the threshold to the new default,
    # unless the person chose one. A chosen value means nothing on another metric's scale, so a
    # metric change always resets it.
    metric_changed = previous is None or previous[1] != key[1]
    if metric_changed or not state[_USER_SET] or not isinstance(state.get("threshold"), float | int):
        state["threshold"] = clamp_threshold(default.value, key[1])
        state[_USER_SET] = False
    state[_THRESHOLD_FOR] = key


def _mark_user_threshold() -> None:
    st.session_state[_USER_SET] = True


def _reset_threshold() -> None:
    state = st.session_state
    state["threshold"] = clamp_threshold(_default(_state_config(), state["metric"]).value, state["metric"])
    state[_USER_SET] = False


def apply_threshold(value: float) -> None:
    """Make ``value`` the sidebar's threshold, as if the person had set it (an ``on_click`` callback)."""
    _init_state()
    st.session_state["threshold"] = clamp_threshold(float(value), st.session_state["metric"])
    st.session_state[_USER_SET] = True


def current_settings() -> Settings:
    """The settings the sidebar holds (defaults when a page runs before the sidebar ever did)."""
    _init_state()
    state = st.session_state
    config = _state_config()
    return Settings(
        config=config,
        metric=state["metric"],
        threshold=float(state["threshold"]),
        default=_default(config, state["metric"]),
        model=state["model"],
        user_set=bool(state[_USER_SET]),
    )


def identification_settings(settings: Settings) -> tuple[Settings, str]:
    """The settings gallery search decides with, and a note when they are not the sidebar's.

    The gallery is searched with euclidean (L2) distance. With the sidebar on euclidean, its threshold
    decides (the active operating point unless the person moved it). On another metric the sidebar's
    threshold means nothing on the L2 scale, so the euclidean threshold the API would use decides: the
    gallery's active euclidean operating point for this configuration, else the calibrated default (both
    through ``facecore.verification.operating_points.deciding_threshold``, see ``ui.deciding``).
    """
    if settings.metric == "euclidean":
        return settings, ""
    default = _default(settings.config, "euclidean")
    search = Settings(
        config=settings.config,
        metric="euclidean",
        threshold=float(default.value),
        default=default,
        model=settings.model,
        user_set=False,
    )
    return search, (
        f"The gallery is searched with euclidean (L2) distance and the sidebar's threshold is on the "
        f"{settings.metric} scale, so Identify decides with the euclidean threshold the API uses: {default.source}"
    )


# ----------------------------------------------------------------------------- the sidebar


def settings_sidebar() -> Settings:
    """Detector, metric, model, flip TTA and threshold in the sidebar; call once per run, before the page."""
    _init_state()
    state = st.session_state
    with st.sidebar:
        st.header("Settings")
        detectors = DETECTORS.names()
        st.selectbox(
            "Face detector",
            detectors,
            key="detector",
            format_func=detector_label,
            help=_help(DETECTORS, detectors),
        )
        st.selectbox(
            "Distance metric",
            METRICS,
            key="metric",
            help="How two embeddings are compared; smaller means more alike.",
        )
        st.checkbox(
            "Flip test-time augmentation",
            key="flip_tta",
            help="Average each face's embedding with its mirror image's (twice the embedding work).",
        )
        registered = [name for name in EMBEDDERS.names() if name != KEPT_MODEL_EMBEDDER]
        st.selectbox(
            "Embedding model",
            model_options(),
            key="model",
            format_func=model_label,
            help=_help(EMBEDDERS, [*registered, KEPT_MODEL_EMBEDDER])
            + "\n\nThe gallery keeps each model's faces apart: Identify searches only faces embedded by this one.",
        )
        if missing := state.pop("_model_missing", None):
            st.warning(f"The kept model {missing} is gone; using the pretrained model.")
        if terms := _state_config().licence:
            st.caption(f":warning: {terms}.")
        _init_state()  # apply a detector/metric/model/TTA change made in this run before the slider exists
        low, high, step = THRESHOLD_RANGES[state["metric"]]
        st.slider(
            f"Decision threshold ({state['metric']})",
            min_value=low,
            max_value=high,
            step=step,
            format="%.3f",
            key="threshold",
            on_change=_mark_user_threshold,
            help="Two faces are the same person when their distance is at most this value.",
        )
        settings = current_settings()
        st.caption(f"{'Your threshold. ' if settings.user_set else ''}Default: {settings.source}")
        st.button(
            "Reset to calibrated" if settings.calibration is not None else "Reset to default",
            on_click=_reset_threshold,
            disabled=not settings.user_set,
            key="reset_threshold",
            width="stretch",
        )
    return settings
