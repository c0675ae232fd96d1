"""Charts shared by pages: a distance placed among LFW's genuine and impostor distances, embeddings as bars,
ROC curves, and the genuine/impostor histogram of a set with its threshold."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import streamlit as st

from ui.settings import Settings

if TYPE_CHECKING:
    import plotly.graph_objects as go


def lfw_distance_chart(settings: Settings, marks: dict[str, float], *, height: int = 300) -> None:
    """LFW genuine vs impostor distances with the threshold and ``marks`` (label -> distance).

    Says so instead when the LFW distances for this configuration were never measured.
    """
    import plotly.graph_objects as go

    from facecore.verification import thresholds
    from facecore.verification.metrics import rates_at_threshold

    if not thresholds.has_lfw_calibration(settings.config):
        st.info(
            f"The LFW distances were measured with the pretrained model, not {settings.config.model_label}, so "
            "this distance is not placed on them. The Threshold lab measures your model on gallery pairs."
        )
        return
    found = thresholds.lfw_distances(settings.config, settings.metric)
    if found is None:
        st.info(
            f"No LFW distances for {settings.detector}/{settings.metric}"
            f"{'/flip TTA' if settings.flip_tta else ''} yet, so there is no chart to place this "
            "distance on (bench/lfw_benchmark.py writes facecore/data/lfw_distances.npz)."
        )
        return
    distances, same = found
    fig = go.Figure()
    for name, mask, colour in (
        ("same person (LFW)", same, "#2ca02c"),
        ("different people (LFW)", ~same, "#d62728"),
    ):
        fig.add_trace(
            go.Histogram(
                x=distances[mask], name=name, opacity=0.55, histnorm="probability density", marker_color=colour
            )
        )
    fig.add_vline(
        x=settings.threshold, line_dash="dash", line_color="black", annotation_text="threshold",
        annotation_position="top",
    )
    for label, value in marks.items():
        fig.add_vline(
            x=value, line_color="#1f77b4", line_width=3, annotation_text=label, annotation_position="top right"
        )
    fig.update_layout(
        barmode="overlay",
        height=height,
        margin=dict(l=10, r=10, t=60, b=10),
        xaxis_title=f"{settings.metric} distance",
        yaxis_title="density",
        legend=dict(orientation="h", yanchor="bottom", y=1.12, x=0),
    )
    st.plotly_chart(fig, width="stretch")
    rates = rates_at_threshold(distances, same, settings.threshold)
    st.caption(
        f"At this threshold on LFW's {len(same):,} pairs: {100 * rates.tar:.1f}% of same-person pairs "
        f"accepted, {100 * rates.far:.2f}% of different-people pairs wrongly accepted (FAR), "
        f"accuracy {100 * rates.accuracy:.2f}%. In-sample: the default threshold was fitted on these "
        "same pairs, so these rates flatter it (the sidebar gives the cross-validated accuracy of the "
        "procedure). Stored results of full LFW pairs.txt; docs/benchmarks.md gives the command."
    )


def embeddings_chart(vectors: dict[str, np.ndarray]) -> None:
    """Embeddings side by side as grouped bars (one series per name), and the same numbers as a table."""
    import plotly.graph_objects as go

    frame = pd.DataFrame(vectors)
    frame.index.name = "dimension"
    fig = go.Figure([go.Bar(x=frame.index, y=frame[c], name=c) for c in frame.columns])
    fig.update_layout(
        barmode="group", height=260, margin=dict(l=10, r=10, t=10, b=10), xaxis_title="dimension",
        yaxis_title="value",
    )
    st.plotly_chart(fig, width="stretch")
    st.dataframe(frame.T, width="stretch")


def roc_chart(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str, *, height: int = 340) -> None:
    """ROC curves (TAR against FAR, FAR on a log scale) of several ``{name: (distances, same)}`` sets."""
    import plotly.graph_objects as go

    from facecore.verification.metrics import roc

    fig = go.Figure()
    for name, (distances, same) in curves.items():
        far, tar, _ = roc(distances, same, drop_intermediate=True)
        keep = far > 0  # the log axis cannot show FAR = 0
        fig.add_trace(go.Scatter(x=far[keep], y=tar[keep], mode="lines", name=name))
    fig.update_layout(
        title=title,
        height=height,
        margin=dict(l=10, r=10, t=50, b=10),
        xaxis=dict(title="false accept rate (FAR)", type="log"),
        yaxis=dict(title="true accept rate (TAR)", range=[0.8, 1.0]),
        legend=dict(orientation="h", yanchor="bottom", y=-0.45, x=0),
    )
    st.plotly_chart(fig, width="stretch")


def distance_histogram(
    d: np.ndarray, same: np.ndarray, threshold: float, metric: str, *, bins: int = 60
) -> go.Figure:
    """Genuine and impostor distances as overlaid density histograms, the threshold as a dashed line."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, mask, colour in (("genuine (same person)", same, "#2ca02c"), ("impostor (different)", ~same, "#d62728")):
        fig.add_trace(go.Histogram(x=d[mask], name=name, opacity=0.55, histnorm="probability density",
                                   marker_color=colour, nbinsx=bins))
    fig.add_vline(x=threshold, line_dash="dash", annotation_text="threshold", annotation_position="top")
    fig.update_layout(barmode="overlay", height=320, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis_title=f"{metric} distance", yaxis_title="density", legend=dict(orientation="h", y=1.15))
    return fig
