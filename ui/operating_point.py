"""The dashboard's side of operating points: which one decides, the confidence beside a distance, saving one.

The rules live in ``facecore.verification.operating_points`` (choosing, confidence) and
``facecore.gallery.operating_points`` (storage in the shared gallery database); this module only reads
the gallery the pages share (``ui.resources.load_gallery``) and lays results out.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from facecore.config import PipelineConfig
from facecore.verification.operating_points import (
    DEFAULT_NAME,
    SOURCES,
    TARGETS,
    Deciding,
    confidence_at,
    from_pairs,
)
from ui.audit_trail import log_change
from ui.charts import lfw_distance_chart
from ui.deciding import deciding, stored_points
from ui.feedback import flash, show_error
from ui.resources import load_gallery


def decided_by(settings) -> str:
    """One sentence: which threshold decided the page's answers."""
    chosen = deciding(settings.config, settings.metric)
    if settings.user_set:
        return f"Decided with your sidebar threshold {settings.threshold:.4f} (the active one is {chosen.name})."
    return f"Decided by {chosen.source}." if chosen.name != DEFAULT_NAME else f"Decided by the default: {chosen.source}"


def confidence_chart(
    settings, marks: dict[str, float], *, height: int = 300, words: bool = True, statistic: str = "distance",
    comparisons: int = 1,
) -> None:
    """``marks`` (label -> distance) on the deciding set's genuine and impostor distances (LFW's for the
    default, via ``ui.charts.lfw_distance_chart``), and per mark the empirical false-accept and
    genuine-accept rates there, in words (unless ``words`` is False, for a page that already gave them);
    ``statistic`` and ``comparisons`` say when a mark aggregates several distances (voters)."""
    chosen = deciding(settings.config, settings.metric)
    st.caption(decided_by(settings))
    if chosen.name == DEFAULT_NAME:
        lfw_distance_chart(settings, marks, height=height)
    else:
        _point_chart(settings, chosen, marks, height)
    if chosen.point is None:
        return
    if words:
        for label, value in marks.items():
            rates = confidence_at(chosen.point, value).of_statistic(statistic, comparisons)
            st.markdown(f"**{label}**: {rates.sentence()}")
    st.caption(
        f"Rates measured on the pairs of '{chosen.point.set_name}', not a probability that these two are one person."
    )


def _point_chart(settings, chosen: Deciding, marks: dict[str, float], height: int) -> None:
    import plotly.graph_objects as go

    point = chosen.point
    fig = go.Figure()
    for name, values, colour in (("same person", point.genuine, "#2ca02c"), ("different people", point.impostor, "#d62728")):
        fig.add_trace(go.Histogram(x=values, name=f"{name} ({point.set_name})", opacity=0.55,
                                   histnorm="probability density", marker_color=colour))
    fig.add_vline(x=settings.threshold, line_dash="dash", line_color="black", annotation_text="threshold",
                  annotation_position="top")
    for label, value in marks.items():
        fig.add_vline(x=value, line_color="#1f77b4", line_width=3, annotation_text=label, annotation_position="top right")
    fig.update_layout(barmode="overlay", height=height, margin=dict(l=10, r=10, t=60, b=10),
                      xaxis_title=f"{settings.metric} distance", yaxis_title="density",
                      legend=dict(orientation="h", yanchor="bottom", y=1.12, x=0))
    st.plotly_chart(fig, width="stretch")


def save_point_form(config: PipelineConfig, metric: str, d: np.ndarray, same: np.ndarray, *, source: str,
                    set_name: str, threshold: float, key: str) -> None:
    """Name, target and "Save as operating point" for pairs just scored (the slider's value for 'manual')."""
    with st.form(key=f"{key}_form"):
        cols = st.columns([2, 2, 1])
        name = cols[0].text_input("Operating point name", value=set_name[:100], key=f"{key}_name")
        target = cols[1].selectbox("Chosen for", TARGETS, index=TARGETS.index("FAR <= 0.1%"), key=f"{key}_target",
                                   help="'manual' saves the slider's threshold.")
        activate = cols[2].checkbox("Make active", value=True, key=f"{key}_activate")
        if st.form_submit_button("Save as operating point"):
            try:
                point = from_pairs(name, config, metric, d, same, target=target, source=source if source in SOURCES
                                   else "own set", set_name=set_name, threshold=threshold)
                saved = stored_points().save(point, activate=activate)
            except Exception as exc:
                show_error("The operating point was not saved", exc)
                return
            log_change(load_gallery(), "save operating point",
                       {"operating_point": saved.name, "target": saved.target, "threshold": saved.threshold,
                        "active": saved.active})
            flash("success", f"Saved {saved.describe()}{' (active)' if saved.active else ''}.")
            if saved.caveat:
                flash("warning", saved.caveat)
            st.rerun()


def active_point_picker(config: PipelineConfig, metric: str, key: str) -> None:
    """Choose which stored point of this configuration decides (or the default)."""
    try:
        points = stored_points().list(config, metric)
    except Exception as exc:
        show_error("The operating points could not be read", exc)
        return
    if not points:
        st.caption(f"No operating points for {config.describe()}, {metric} distance yet: the default decides.")
        return
    names = [DEFAULT_NAME, *[p.name for p in points]]
    active = next((p.name for p in points if p.active), DEFAULT_NAME)
    chosen = st.selectbox("Active operating point (decides in the dashboard and the API)", names,
                          index=names.index(active), key=key)
    for p in points:
        st.caption(("**active** " if p.active else "") + p.describe())
    if chosen != active and st.button("Make it active", key=f"{key}_apply"):
        try:
            stored_points().activate(config, metric, None if chosen == DEFAULT_NAME else chosen)
        except Exception as exc:
            show_error("The active operating point was not changed", exc)
            return
        log_change(load_gallery(), "activate operating point",
                   {"operating_point": None if chosen == DEFAULT_NAME else chosen, "metric": metric})
        flash("success", f"'{chosen}' now decides for {config.describe()}, {metric} distance.")
        st.rerun()


def confidence_note(settings, distance: float | None, *, search: bool = False) -> None:
    """One caption: the empirical rates at ``distance`` on the deciding set, and which threshold decided
    (the sidebar's when the person moved it, else the active operating point or the default); nothing
    without a distance or a calibration set. ``search``: the distance is a gallery search's nearest."""
    chosen = deciding(settings.config, settings.metric)
    found = None if distance is None else chosen.confidence(distance)
    if found is None:
        return
    if search:
        found = found.per_search()
    if settings.user_set:
        decider = f"your sidebar threshold {settings.threshold:.4f}"
    else:
        decider = chosen.name if chosen.name == DEFAULT_NAME else f"operating point '{chosen.name}'"
    st.caption(f"{found.sentence()} (threshold from: {decider})")
