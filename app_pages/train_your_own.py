"""Classroom, part 2: train a triplet-loss embedding and the twin network on LFW, live, on the CPU."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from facecore.classroom.data import ClassroomData, load_lfw_crops, prepare_data
from facecore.classroom.evaluate import Verification, evaluate_embeddings, pixel_naive_bayes
from facecore.classroom.losses import MINING
from facecore.classroom.models import export_for_chips, save_model
from facecore.classroom.training import EpochReport, train_triplet_model, train_twin_network
from facecore.config import PipelineConfig
from facecore.embedding.keras_file import KerasModelError
from facecore.embedding.model_store import default_models_dir, keep_model, saved_models
from facecore.evaluation.datasets import lfw_people
from facecore.evaluation.projection import project
from facecore.evaluation.samples import embed_images
from ui.data import lfw_panel
from ui.feedback import show_error
from ui.resources import embedding_cache, pipeline
from ui.settings import current_settings

RESULTS = "classroom_results"
#: Held-out people drawn in the live projection (more would be an unreadable rainbow).
PROJECTED_PEOPLE = 10

settings = current_settings()
st.title("Train your own face embedding")
st.markdown(
    "A small CNN (about 100k weights) learns a face embedding with **triplet loss** on LFW people, "
    "while you watch. It is judged on fixed same/different pairs of **held-out people** it never saw, "
    "next to the **twin network** (the same encoder used twice, trained as a same/different "
    "classifier), **GaussianNB on raw pixels**, and the **pretrained** dlib model."
)

source = lfw_panel("train")
if source is None:
    st.stop()
home = source.home


@st.cache_data(max_entries=4, show_spinner="Reading the LFW crops...")
def classroom_data(min_images: int, max_images: int, size: int, color: bool) -> ClassroomData:
    crops = load_lfw_crops(home, min_images=min_images, max_images=max_images, size=size, color=color)
    return prepare_data(crops, held_out=0.25, n_pairs=600, seed=0)


@st.cache_data(max_entries=16, show_spinner=False)
def eligible(home: str, min_images: int, max_images: int) -> tuple[int, int]:
    """``(people, crops)`` the form's data settings give on this copy of LFW."""
    people = lfw_people(home, min_images=min_images)
    return len(people), sum(min(len(paths), max_images) for paths in people.values())


# ----------------------------------------------------------------------------- charts


def curve_figure(history: dict[str, list[float]], title: str) -> go.Figure:
    fig = go.Figure()
    epochs = list(range(1, len(history["loss"]) + 1))
    fig.add_trace(go.Scatter(x=epochs, y=history["loss"], mode="lines+markers", name="training loss"))
    fig.add_trace(
        go.Scatter(x=epochs, y=history["auc"], mode="lines+markers", name="held-out AUC", yaxis="y2")
    )
    fig.update_layout(
        title=title,
        height=320,
        margin=dict(l=10, r=10, t=40, b=10),
        xaxis=dict(title="epoch", dtick=1 if len(epochs) <= 20 else None),
        yaxis=dict(title="loss"),
        yaxis2=dict(title="AUC", overlaying="y", side="right", range=[0.4, 1.0]),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0.4),
    )
    return fig


def projection_figure(embeddings: np.ndarray, data: ClassroomData, epoch: int) -> go.Figure:
    people = np.unique(data.test.labels)[:PROJECTED_PEOPLE]
    keep = np.isin(data.test.labels, people)
    points = project(embeddings[keep], "PCA")
    names = [data.test.names[label].replace("_", " ") for label in data.test.labels[keep]]
    fig = go.Figure()
    for name in dict.fromkeys(names):
        mask = np.array([n == name for n in names])
        fig.add_trace(go.Scatter(x=points[mask, 0], y=points[mask, 1], mode="markers", name=name))
    fig.update_layout(
        title=f"Held-out people, PCA of the embeddings (epoch {epoch})",
        height=320,
        margin=dict(l=10, r=10, t=40, b=10),
        showlegend=len(people) <= PROJECTED_PEOPLE,
    )
    return fig


def roc_figure(results: list[Verification]) -> go.Figure:
    fig = go.Figure()
    for result in results:
        far, tar = result.roc()
        fig.add_trace(go.Scatter(x=far, y=tar, mode="lines", name=f"{result.model} (AUC {result.auc:.3f})"))
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"), name="chance")
    )
    fig.update_layout(
        height=420,
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis_title="false accept rate (different people accepted)",
        yaxis_title="true accept rate (same person accepted)",
        legend=dict(yanchor="bottom", y=0.02, xanchor="right", x=0.98),
    )
    return fig


# ----------------------------------------------------------------------------- training


def pretrained_result(data: ClassroomData) -> Verification:
    pretrained = pipeline(PipelineConfig.interactive(detector=settings.detector, flip_tta=settings.flip_tta))
    embeddings, _ = embed_images(list(data.test.paths), pretrained, cache=embedding_cache())
    return evaluate_embeddings(f"pretrained {pretrained.embedder.version}", embeddings, data)


def model_bytes(model) -> bytes:
    with tempfile.TemporaryDirectory() as scratch:
        return save_model(export_for_chips(model), Path(scratch) / "model.keras").read_bytes()


def train(data: ClassroomData, options: dict) -> dict:
    """Train what the form asks for, drawing the curves after every epoch; returns what to show after."""
    progress = st.progress(0.0, text="Training the triplet model...")
    curve_slot, projection_slot = st.columns(2)
    curve, projection = curve_slot.empty(), projection_slot.empty()
    history: dict[str, list[float]] = {"loss": [], "auc": []}
    epochs = options["epochs"]
    total = epochs * (2 if options["twin"] else 1)

    def on_triplet_epoch(report: EpochReport) -> None:
        history["loss"].append(report.loss)
        history["auc"].append(report.held_out.auc)
        progress.progress(report.epoch / total, text=f"Triplet model: epoch {report.epoch}/{epochs}")
        curve.plotly_chart(
            curve_figure(history, "Triplet model"), width="stretch", key=f"curve_{report.epoch}"
        )
        projection.plotly_chart(
            projection_figure(report.test_embeddings, data, report.epoch),
            width="stretch",
            key=f"projection_{report.epoch}",
        )

    run = train_triplet_model(
        data,
        mining=options["mining"],
        margin=options["margin"],
        embedding_size=options["embedding_size"],
        epochs=epochs,
        on_epoch=on_triplet_epoch,
    )
    results = [run.result]
    twin_history: dict[str, list[float]] = {"loss": [], "auc": []}
    if options["twin"]:
        twin_curve = st.empty()

        def on_twin_epoch(report: EpochReport) -> None:
            twin_history["loss"].append(report.loss)
            twin_history["auc"].append(report.held_out.auc)
            progress.progress(
                (epochs + report.epoch) / total, text=f"Twin network: epoch {report.epoch}/{epochs}"
            )
            twin_curve.plotly_chart(
                curve_figure(twin_history, "Twin network (binary cross-entropy)"),
                width="stretch",
                key=f"twin_curve_{report.epoch}",
            )

        twin = train_twin_network(
            data, embedding_size=options["embedding_size"], epochs=epochs, on_epoch=on_twin_epoch
        )
        results.append(twin.result)
    results.append(pixel_naive_bayes(data))
    if options["pretrained"]:
        progress.progress(1.0, text="Embedding the held-out photos with the pretrained model...")
        results.append(pretrained_result(data))
    progress.empty()
    return {
        "results": results,
        "history": history,
        "twin_history": twin_history,
        "model_bytes": model_bytes(run.model),
        "options": options,
        "data": data.describe(),
    }


# ----------------------------------------------------------------------------- the form

with st.form("train_form"):
    c1, c2, c3 = st.columns(3)
    with c1:
        st.markdown("**Data (LFW)**")
        min_images = st.slider("People with at least this many photos", 4, 60, 10 if source.full else 8,
                               key="train_min_images",
                               help="The bundled mini LFW has 50 people with 8 photos and 65 with 4 or more.")
        max_images = st.slider("Photos per person, at most", 4, 40, 20, key="train_max_images")
        size = st.select_slider("Crop size (pixels)", [24, 32, 48], 32, key="train_size")
        color = st.toggle("Colour crops (else grey)", key="train_color")
    with c2:
        st.markdown("**Triplet model**")
        mining = st.radio("Mining", MINING, key="train_mining", horizontal=True)
        margin = st.slider("Margin", 0.05, 1.0, 0.2, 0.05, key="train_margin")
        embedding_size = st.select_slider("Embedding size", [8, 16, 32, 64, 128], 64, key="train_embedding")
        epochs = st.slider("Epochs", 1, 40, 12, key="train_epochs")
    with c3:
        st.markdown("**Compare with**")
        twin = st.checkbox("The twin network (same epochs)", True, key="train_twin")
        pretrained = st.checkbox(
            "The pretrained model (embeds the held-out photos once, then cached)",
            True,
            key="train_pretrained",
        )
        st.caption("GaussianNB on raw pixels is always included: it takes a fraction of a second.")
    submitted = st.form_submit_button("Train", type="primary", icon=":material/model_training:")

people_count, crop_count = eligible(str(home), int(min_images), max(int(max_images), 2))
st.caption(
    f"With these settings: {people_count} LFW people with at least {min_images} photos, {crop_count:,} face "
    f"crops (at most {max_images} per person); a quarter of the people are held out for the test pairs."
    + ("" if people_count >= 4 else " That is too few people to train on: lower the minimum.")
)

if submitted:
    options = dict(
        mining=mining,
        margin=margin,
        embedding_size=embedding_size,
        epochs=epochs,
        twin=twin,
        pretrained=pretrained,
    )
    try:
        data = classroom_data(min_images, max(max_images, 2), size, color)
        st.caption(f"Data: {data.describe()}")
        st.session_state[RESULTS] = train(data, options)
    except ValueError as exc:  # settings that leave too few people, for example
        st.error(f"Training could not start: {exc}")
    except Exception as exc:
        show_error("Training failed", exc)

# ----------------------------------------------------------------------------- results

done = st.session_state.get(RESULTS)
if done is not None:
    st.subheader("Held-out people: who tells them apart?")
    st.caption(f"Data: {done['data']}. Options: {done['options']}")
    if not submitted:
        cols = st.columns(2 if done["twin_history"]["loss"] else 1)
        cols[0].plotly_chart(
            curve_figure(done["history"], "Triplet model"), width="stretch", key="curve_done"
        )
        if done["twin_history"]["loss"]:
            cols[1].plotly_chart(
                curve_figure(done["twin_history"], "Twin network (binary cross-entropy)"),
                width="stretch",
                key="twin_curve_done",
            )
    results: list[Verification] = done["results"]
    left, right = st.columns([3, 2])
    left.plotly_chart(roc_figure(results), width="stretch", key="roc")
    table = pd.DataFrame(
        {
            "model": [r.model for r in results],
            "AUC": [r.auc for r in results],
            "accuracy": [r.accuracy for r in results],
        }
    )
    right.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "AUC": st.column_config.NumberColumn(format="%.3f"),
            "accuracy": st.column_config.ProgressColumn(format="%.3f", min_value=0.0, max_value=1.0),
        },
    )
    right.caption(
        "Same pairs for every model. Accuracy: the threshold of each of 5 folds is tuned on the other 4, "
        "so no model is scored with a threshold fitted on the pairs it is scored on."
    )
    with st.expander("Triplet model or twin network: why they differ", expanded=True):
        st.markdown(
            "Both use one shared encoder. The **triplet model** is trained on *distances*: every batch "
            "of P people x K photos yields hundreds of triplets, and the loss shapes the whole space so "
            "that any person's photos cluster, which is what verification of *new* people needs. The "
            "**twin network** sees one pair at a time and only learns a yes/no answer through a dense "
            "layer on |e_a - e_b|: each pair carries one bit, half the pairs are easy, and nothing asks "
            "the embedding to be a metric, so with the same epochs it usually learns less. Its sigmoid "
            "gives a probability with a natural 0.5 threshold, while the triplet model needs a distance "
            "threshold chosen on data. The pixel GaussianNB, which knows nothing about faces, is close to "
            "chance; the pretrained model, trained on millions of faces at 150x150 in colour, is far ahead."
        )
    st.download_button(
        "Download the triplet model (.keras)",
        done["model_bytes"],
        file_name="classroom_triplet_model.keras",
        mime="application/octet-stream",
        icon=":material/download:",
        key="download_model",
    )
    st.caption(
        "The file takes the pipeline's aligned 150x150 RGB face chips (0..255) and returns the embedding: "
        "the crop, resize and grey conversion are layers inside it, so it needs no code from this project."
    )
    if st.button("Keep it for the other pages", key="keep_model", icon=":material/save:"):
        try:
            kept = keep_model(done["model_bytes"], "classroom-triplet")
            st.success(f"Kept as {kept.name}: choose it as the embedding model on the Triplet loss page.")
        except (KerasModelError, OSError) as exc:
            st.error(f"The model could not be kept: {exc}")

# ----------------------------------------------------------------------------- bring your own

st.subheader("Bring your own model")
st.markdown(
    "Any Keras 3 `.keras` model with one image input (height x width x 1 or 3, pixels 0..255) and one "
    "vector output can be an embedder: the pipeline resizes its 150x150 face chips to the model's input."
)
upload = st.file_uploader("A .keras model", type=["keras"], key="byo_upload")
if upload is not None:
    try:
        kept = keep_model(upload.getvalue(), upload.name)
        from facecore.embedding.keras_file import KerasFileEmbedder

        st.success(f"{KerasFileEmbedder(path=str(kept)).describe()}. Kept as {kept.name}.")
    except KerasModelError as exc:
        st.error(str(exc))
    except OSError as exc:
        st.error(f"The model could not be stored in {default_models_dir()}: {exc}")
kept_models = saved_models()
if kept_models:
    st.caption(f"Kept models ({default_models_dir()}): " + ", ".join(p.name for p in kept_models))
