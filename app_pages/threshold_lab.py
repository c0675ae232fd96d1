"""Threshold lab: genuine vs impostor distances, error rates at any threshold, ROC, operating points."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from facecore.config import PipelineConfig
from facecore.detection import DETECTORS
from facecore.embedding import DEFAULT_EMBEDDER, EMBEDDERS
from facecore.evaluation.analysis import (
    all_pairs,
    confusion_table,
    operating_points,
    procedure_summary_with_ci,
    summary_with_ci,
)
from facecore.evaluation.datasets import LfwSource
from facecore.evaluation.samples import lfw_pair_distances
from facecore.verification.metrics import (
    METRICS,
    equal_error_rate,
    kfold_verification,
    rates_at_threshold,
    roc,
    roc_auc,
    threshold_sweep,
)
from facecore.verification.thresholds import lfw_distances, view1_choice
from ui.charts import distance_histogram
from ui.data import lfw_panel, subset_label
from ui.feedback import flash, progress_reporter, show_error, show_flashes
from ui.operating_point import active_point_picker, save_point_form
from ui.resources import embedding_cache, load_gallery
from ui.settings import apply_threshold, current_settings

STORED = "stored"
GALLERY = "gallery"
#: Pairs embedded live, when the LFW copy in use has them (on the bundled mini LFW: the demo pairs).
LIVE_SUBSETS = ("10_folds", "dev_test", "demo")
STORED_LABEL = "Stored results of full LFW pairs.txt (6,000 pairs)"
STORED_ORIGIN = ("made by `python bench/lfw_benchmark.py --write-calibration` (dlib-keras with HOG and Haar) or "
                 "`python bench/model_selection.py --write-calibration` (every other entry); each "
                 "configuration's own command is in facecore/data/calibration.json, its distances in "
                 "facecore/data/lfw_distances.npz")
_PAIRS_STORE = "_threshold_lab_pairs"
#: Resamples behind both interval tables (the same resamples: both use seed 0).
BOOTSTRAP_RESAMPLES = 200

settings = current_settings()
st.title("Threshold lab")
show_flashes()
st.caption(
    "Where genuine (same person) and impostor (different people) distances fall, and what any "
    "threshold between them costs in false accepts and false rejects."
)


# ----------------------------------------------------------------------------- getting distances


#: The pretrained models: LFW's pairs are embedded with one of them (the sidebar's, else the default).
MODELS = [name for name in EMBEDDERS.names() if EMBEDDERS.get(name).pretrained]
LFW_MODEL = settings.config.embedder if settings.pretrained else DEFAULT_EMBEDDER


def config_name(model: str, detector: str, metric: str, flip: bool) -> str:
    return f"{model} / {detector} / {metric}{' / flip TTA' if flip else ''}"


def lfw_config(model: str, detector: str, flip: bool) -> PipelineConfig:
    """A pretrained model with ``detector`` and flip TTA: what the LFW pairs here are embedded with."""
    return PipelineConfig(detector=detector, embedder=model, flip_tta=flip)


def stored_lfw(model: str, detector: str, metric: str, flip: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """pairs.txt distances from the calibration run, if that configuration was stored."""
    return lfw_distances(lfw_config(model, detector, flip), metric)


def computed_lfw(home, subset: str, limit: int | None, model: str, detector: str, metric: str, flip: bool):
    """Distances embedded now (served from the on-disk cache when seen before), with a progress bar."""
    key = (str(home), subset, limit, model, detector, metric, flip)
    store = st.session_state.setdefault(_PAIRS_STORE, {})
    if key not in store:
        bar = st.progress(0.0, text=f"Embedding LFW images for {config_name(model, detector, metric, flip)}")
        try:
            found = lfw_pair_distances(
                home, lfw_config(model, detector, flip), metric=metric, subset=subset, limit=limit,
                cache=embedding_cache(), progress=progress_reporter(bar),
            )
        except Exception as exc:
            show_error("LFW pairs could not be embedded", exc)
            return None
        finally:
            bar.empty()
        store[key] = (found.distances, found.same, found.folds, found.description)
        while len(store) > 12:
            store.pop(next(iter(store)))
    return store[key]


def gallery_pairs(metric: str):
    try:
        version = settings.config.model_version
        gallery = load_gallery()
        face_ids, _, vectors = gallery.embeddings(version)
        names = {face.id: face.person_name for face in gallery.faces()}
    except Exception as exc:
        show_error("The gallery could not be read", exc)
        return None
    labels = [names[int(i)] for i in face_ids]
    pairs = all_pairs(vectors, labels, metric)
    description = f"All {pairs.distances.size:,} pairs of the gallery's {len(labels)} faces, {version}, {metric} distance"
    return pairs.distances, pairs.same, None, description


def stored_pairs(model: str, detector: str, metric: str, flip: bool):
    """The stored full-LFW pairs.txt distances of a configuration, with pairs.txt's folds (600 pairs
    each, in file order), or None after a message when that configuration was never stored."""
    stored = stored_lfw(model, detector, metric, flip)
    if stored is None:
        st.info(f"No stored results for {config_name(model, detector, metric, flip)}: they are {STORED_ORIGIN}.")
        return None
    distances, same = stored
    folds = np.arange(distances.size) // max(distances.size // 10, 1)
    return (distances, same, folds, f"{STORED_LABEL}, {config_name(model, detector, metric, flip)}: stored results "
            f"{STORED_ORIGIN}")


def distances_for(
    source: str, limit: int | None, lfw: LfwSource | None, model: str, detector: str, metric: str, flip: bool
):
    """``(distances, same, folds or None, description)`` or None after a message."""
    if source == GALLERY:
        return gallery_pairs(metric)
    if source == STORED:
        return stored_pairs(model, detector, metric, flip)
    if lfw is None:
        return None
    return computed_lfw(lfw.home, source, limit, model, detector, metric, flip)


# ----------------------------------------------------------------------------- cached computations


@st.cache_data(max_entries=32, show_spinner=False)
def curves(distances: np.ndarray, same: np.ndarray) -> dict:
    far, tar, thresholds = roc(distances, same)
    eer, eer_threshold = equal_error_rate(distances, same)
    return dict(
        far=far, tar=tar, thresholds=thresholds, auc=roc_auc(distances, same), eer=eer,
        eer_threshold=eer_threshold, sweep=threshold_sweep(distances, same),
    )


@st.cache_data(max_entries=16, show_spinner=False)
def kfold_threshold(distances: np.ndarray, same: np.ndarray, folds: np.ndarray) -> float:
    return kfold_verification(distances, same, folds=folds).threshold


@st.cache_data(max_entries=16, show_spinner="Bootstrapping 95% intervals...")
def intervals(distances: np.ndarray, same: np.ndarray, threshold: float) -> pd.DataFrame:
    return summary_with_ci(distances, same, threshold, n_boot=BOOTSTRAP_RESAMPLES, seed=0)


@st.cache_data(max_entries=16, show_spinner="Bootstrapping the threshold choice...")
def procedure_intervals(distances: np.ndarray, same: np.ndarray) -> pd.DataFrame:
    return procedure_summary_with_ci(distances, same, n_boot=BOOTSTRAP_RESAMPLES, seed=0)


# ----------------------------------------------------------------------------- figures


def error_rates_figure(c: dict, threshold: float) -> go.Figure:
    sweep = c["sweep"]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=sweep["threshold"], y=sweep["far"], name="FAR", line_color="#d62728"))
    fig.add_trace(go.Scatter(x=sweep["threshold"], y=sweep["frr"], name="FRR", line_color="#2ca02c"))
    fig.add_trace(go.Scatter(x=[c["eer_threshold"]], y=[c["eer"]], mode="markers+text", name="EER",
                             text=[f"EER {100 * c['eer']:.2f}%"], textposition="top right",
                             marker=dict(size=10, color="black")))
    fig.add_vline(x=threshold, line_dash="dash")
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=40, b=10), xaxis_title=f"{settings.metric} threshold",
                      yaxis_title="rate", legend=dict(orientation="h", y=1.15))
    return fig


def roc_figure(configs: dict[str, dict], log_far: bool, marker: tuple[float, float] | None) -> go.Figure:
    fig = go.Figure()
    for name, c in configs.items():
        far = np.maximum(c["far"], 1e-5) if log_far else c["far"]  # log axis: FAR 0 drawn at 1e-5
        fig.add_trace(go.Scatter(x=far, y=c["tar"], name=f"{name} (AUC {c['auc']:.4f})", mode="lines"))
    if marker is not None:
        fig.add_trace(go.Scatter(x=[max(marker[0], 1e-5) if log_far else marker[0]], y=[marker[1]],
                                 mode="markers", name="slider threshold", marker=dict(size=11, color="black")))
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="FAR (false accept rate)",
                      yaxis_title="TAR (true accept rate)", legend=dict(orientation="h", y=-0.2))
    fig.update_xaxes(type="log" if log_far else "linear")
    return fig


# ----------------------------------------------------------------------------- page


def choose_pairs() -> tuple[str, int | None, LfwSource | None]:
    lfw = None
    if not settings.pretrained:
        # The LFW pairs here are embedded by the pretrained model only; a kept model is tuned on the
        # gallery's pairs (its faces, enrolled with that model).
        sources = {GALLERY: "All pairs of the gallery"}
        st.session_state["tl_source"] = GALLERY
        st.info(f"{settings.config.model_label} is measured on the gallery's pairs: enrol people with it on the Gallery "
                "page (the LFW pairs here are the pretrained model's).")
    else:
        lfw = lfw_panel("tl")
        sources = {STORED: STORED_LABEL}
        for subset in LIVE_SUBSETS:
            if lfw is not None and subset in lfw.subsets:
                sources[subset] = f"{subset_label(lfw, subset)}, embedded now"
        sources[GALLERY] = "All pairs of the gallery"
        if st.session_state.get("tl_source") not in sources:
            st.session_state.pop("tl_source", None)
    cols = st.columns([3, 1])
    source = cols[0].radio("Pairs", list(sources), format_func=sources.get, key="tl_source", horizontal=True)
    limit = None
    if source not in (GALLERY, STORED):
        n = cols[1].number_input("Pairs to use (0 = all)", 0, 6000, 0, step=100, key="tl_limit",
                                 help="A fold- and class-balanced subset, for a quick look. Embedding uses the "
                                      "on-disk cache, so a second look is fast.")
        limit = int(n) or None
    return source, limit, lfw


@st.fragment
def threshold_panel(d: np.ndarray, same: np.ndarray, c: dict) -> None:
    """The slider and everything that follows it: reruns alone when the slider moves."""
    low, high = float(d.min()), float(d.max())
    state = st.session_state
    if not isinstance(state.get("tl_threshold"), float) or not low <= state["tl_threshold"] <= high:
        state["tl_threshold"] = float(min(max(settings.threshold, low), high))
    threshold = st.slider(f"Threshold ({settings.metric})", low, high, step=(high - low) / 500 or 0.001,
                          format="%.4f", key="tl_threshold")
    r = rates_at_threshold(d, same, threshold)
    cols = st.columns(4)
    cols[0].metric("FAR", f"{100 * r.far:.2f}%", help="Different people accepted as the same")
    cols[1].metric("FRR", f"{100 * r.frr:.2f}%", help="Same person rejected")
    cols[2].metric("Accuracy", f"{100 * r.accuracy:.2f}%")
    cols[3].metric("TAR", f"{100 * r.tar:.2f}%")
    left, right = st.columns([3, 2])
    left.plotly_chart(distance_histogram(d, same, threshold, settings.metric), width="stretch", key="tl_hist")
    right.dataframe(confusion_table(d, same, threshold), width="stretch")
    right.caption(f"Threshold {threshold:.4f}; the sidebar's is {settings.threshold:.4f}.")
    if right.button("Use this threshold in the app", key="tl_apply", on_click=apply_threshold, args=(threshold,)):
        flash("success", f"The app's {settings.metric} threshold is now {threshold:.4f} (sidebar).")
        st.rerun()
    st.plotly_chart(error_rates_figure(c, threshold), width="stretch", key="tl_rates")
    st.session_state["_tl_marker"] = (r.far, r.tar)


source, limit, lfw = choose_pairs()
found = distances_for(source, limit, lfw, LFW_MODEL, settings.detector, settings.metric, settings.flip_tta)
if found is not None:
    d, same, folds, description = found
    if d.size == 0:
        st.info("There are no pairs here yet (the gallery needs at least two faces).")
    elif same.all() or not same.any():
        st.error("These pairs are all genuine or all impostor; the lab needs both (enrol at least two "
                 "people with two faces each to use the gallery's pairs).")
    else:
        st.caption(f"{description}. Genuine pairs: {int(same.sum()):,}; impostor pairs: {int((~same).sum()):,}.")
        c = curves(d, same)
        threshold_panel(d, same, c)
        with st.expander("Save as operating point (shared with the Verify/Identify pages and the API)"):
            lab_config = settings.config if source == GALLERY else lfw_config(LFW_MODEL, settings.detector, settings.flip_tta)
            set_name = {GALLERY: "gallery pairs", STORED: "LFW pairs.txt"}.get(source, f"LFW {source}")
            save_point_form(lab_config, settings.metric, d, same, source="own set" if source == GALLERY else "LFW",
                            set_name=set_name, threshold=float(st.session_state["tl_threshold"]), key="tl_save")
            active_point_picker(lab_config, settings.metric, key="tl_active")

        st.subheader("ROC")
        others = [
            config_name(model, det, m, f)
            for model in MODELS for det in DETECTORS.names() for m in METRICS for f in (False, True)
        ]
        current = config_name(LFW_MODEL, settings.detector, settings.metric, settings.flip_tta)
        choices = [o for o in others if o != current]
        # On the stored results, the other models' configurations chosen on View 1 are drawn beside this
        # one from the start (reading them costs nothing); live runs and the gallery add them on request.
        default = []
        for model in MODELS if source == STORED else []:
            pick = view1_choice(model) if model != LFW_MODEL else None
            name = pick and config_name(model, pick.detector, pick.metric, pick.flip_tta)
            if name in choices:
                default.append(name)
        cols = st.columns([3, 1])
        extra = cols[0].multiselect(
            "Compare configurations (model / detector / metric / flip TTA) on the same pairs: e.g. "
            "dlib's ResNet against ArcFace",
            choices, default=default, key="tl_compare", disabled=source == GALLERY,
            help="Each is read from the stored calibration run or embedded through the on-disk cache; "
            "on the stored results the other model's configuration chosen on LFW View 1 is shown at first.",
        )
        log_far = cols[1].toggle("Log FAR axis", value=True, key="tl_log")
        configs = {current: c}
        for name in extra:
            model, detector, metric, *flip = name.split(" / ")
            other = distances_for(source, limit, lfw, model, detector, metric, bool(flip))
            if other is not None:
                configs[name] = curves(other[0], other[1])
        st.plotly_chart(roc_figure(configs, log_far, st.session_state.get("_tl_marker")), width="stretch")
        st.caption("The ROC does not depend on the threshold; the black dot is the slider's threshold.")

        st.subheader("Operating points")
        points = operating_points(d, same)
        st.dataframe(points.style.format({"target FAR": "{:.1%}", "TAR": "{:.2%}", "threshold": "{:.4f}",
                                          "FAR reached": "{:.3%}", "FRR": "{:.2%}"}), width="stretch")
        if not points["measurable"].all():
            st.caption("'measurable' is False where there are too few impostor pairs for that FAR: one false "
                       "accept already exceeds it.")

        st.subheader("95% confidence intervals (bootstrap)")
        if folds is not None and len(set(folds.tolist())) >= 2:
            ci_threshold = kfold_threshold(d, same, folds)
            why = "the mean of the thresholds chosen on the training folds"
        else:
            ci_threshold, why = c["eer_threshold"], "the EER threshold"
        st.markdown(f"**Threshold fixed at {ci_threshold:.4f} ({why}): sampling uncertainty only**")
        st.dataframe(intervals(d, same, float(ci_threshold)), width="stretch")
        st.markdown("**Threshold chosen in each resample (best accuracy), scored on the pairs left out of it: "
                    "the whole procedure**")
        st.dataframe(procedure_intervals(d, same).style.format(
            {"value": "{:.4f}", "95% CI low": "{:.4f}", "95% CI high": "{:.4f}"}), width="stretch")
        st.caption(
            f"Both tables: the same {BOOTSTRAP_RESAMPLES} resamples of the genuine and impostor pairs (each class "
            "separately). The first keeps the threshold where it is, so its interval is only how much the "
            "accuracy of that one threshold moves with the sample of pairs. The second redoes the choice of the "
            "threshold in every resample and scores it on the pairs that resample did not draw (about 37%), so "
            "it also carries the uncertainty of choosing the threshold: that is the interval for the whole "
            "procedure, and the one to quote for a threshold picked on these pairs. Its accuracy is the mean "
            "over the resamples; its 'threshold' row is where the chosen threshold fell."
        )

        st.subheader("Downloads")
        cols = st.columns(3)
        cols[0].download_button("Sweep table (CSV)", c["sweep"].to_csv(index=False), "threshold_sweep.csv",
                                "text/csv", key="tl_csv")
        # Self-contained HTML (plotly.js inside, ~5 MB) so a saved figure opens offline; built only
        # when the button is clicked (a callable), not on every slider move.
        roc_fig = roc_figure(configs, log_far, None)
        hist_fig = distance_histogram(d, same, st.session_state["tl_threshold"], settings.metric)
        cols[1].download_button("ROC (HTML)", lambda: roc_fig.to_html(include_plotlyjs=True),
                                "roc.html", "text/html", key="tl_roc_html")
        cols[2].download_button("Histogram (HTML)", lambda: hist_fig.to_html(include_plotlyjs=True),
                                "distances.html", "text/html", key="tl_hist_html")
        st.caption("PNG: use the camera button in each chart's toolbar.")
