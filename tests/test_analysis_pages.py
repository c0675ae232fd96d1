"""The four analysis pages driven with AppTest on real embeddings of small, fixed LFW subsets.

One embedding cache (a temp folder) serves the whole module, so each LFW image is embedded once
however many tests look at it; the models load once per process (Streamlit's resource cache).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from facecore.evaluation.datasets import lfw_people

APP = Path(__file__).resolve().parents[1] / "app.py"
TIMEOUT = 300  # the first run in a process imports TensorFlow and loads the models


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACECORE_CACHE_DIR", str(tmp_path_factory.mktemp("analysis_pages_cache")))
        patch.setenv("FACECORE_GALLERY_DIR", str(tmp_path_factory.mktemp("analysis_pages_gallery")))
        yield


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def run(widget) -> AppTest:
    at = widget.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def array(value) -> np.ndarray:
    """A Plotly data array: a plain list, or plotly's base64 form ``{"bdata", "dtype", "shape"}``."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return flat.reshape([int(n) for n in str(shape).split(",")]) if shape else flat
    return np.asarray(value)


def percent(metric) -> float:
    return float(metric.value.rstrip("%")) / 100


# ----------------------------------------------------------------------------- distance matrix


def small_lfw_sample(at: AppTest, key: str, people: int = 4, per_person: int = 3) -> AppTest:
    run(at.number_input(key=f"{key}_people").set_value(people))
    return run(at.number_input(key=f"{key}_per_person").set_value(per_person))


def test_distance_matrix_of_an_lfw_sample(environment, lfw_source) -> None:
    at = small_lfw_sample(open_page("distance_matrix"), "dm")
    assert ("Using full LFW" if lfw_source.full else "Using the bundled mini LFW") in texts(at.caption)
    # The widget offers no more images per person than this copy holds (8 in the pack, 20 on full LFW).
    most = max(len(paths) for paths in lfw_people(lfw_source.home).values())
    assert at.number_input(key="dm_per_person").max == min(20, most) == (20 if lfw_source.full else 8)
    figure = charts(at)[0]
    heatmap = figure["data"][0]
    assert heatmap["type"] == "heatmap" and array(heatmap["z"]).shape == (12, 12)
    assert any(trace["type"] == "contour" for trace in figure["data"])  # the threshold line
    assert len(figure["layout"]["shapes"]) == 4  # one block per identity
    assert "LFW (deep-funneled), 4 people x 3 images, hog detector" in texts(at.caption)

    # Faces 0 and 1 are the same person (identity order); face 3 is the next person.
    options = at.selectbox(key="dm_a").options
    same_person = float(at.metric[0].value)
    run(at.selectbox(key="dm_b").set_value(options[3]))
    different = float(at.metric[0].value)
    assert same_person < different
    assert "different identities" in texts(at.caption)

    run(at.radio(key="dm_order").set_value("hierarchical clustering"))
    at = run(at.toggle(key="dm_binarise").set_value(True))
    z = array(charts(at)[0]["data"][0]["z"])
    assert set(np.unique(z)) <= {0, 1}
    assert (np.diag(z) == 1).all()  # every face matches itself


def test_distance_matrix_with_an_empty_gallery_says_so(environment) -> None:
    at = run(open_page("distance_matrix").radio(key="dm_source").set_value("Gallery people"))
    assert "no faces" in texts(at.info)
    assert not at.get("plotly_chart")


# ----------------------------------------------------------------------------- threshold lab


def test_threshold_lab_slider_and_apply(environment, lfw_source) -> None:
    at = open_page("threshold_lab")
    # The stored full-LFW distances are the default on any copy of LFW, and say where they come from.
    assert "Stored results of full LFW pairs.txt (6,000 pairs), dlib-keras / hog / euclidean" in texts(at.caption)
    assert "python bench/lfw_benchmark.py --write-calibration" in texts(at.caption)
    assert ("Using full LFW" if lfw_source.full else "Using the bundled mini LFW: 953 images of 424 people, "
            "300 pairs (View 1 demo pairs)") in texts(at.caption)
    # ArcFace's configuration chosen on View 1 is drawn beside dlib's on the ROC from the start.
    from facecore.verification.thresholds import view1_choice

    arc = view1_choice("arcface-keras")
    expected = f"arcface-keras / {arc.detector} / {arc.metric}" + (" / flip TTA" if arc.flip_tta else "")
    assert at.multiselect(key="tl_compare").value == [expected]
    roc = next(c for c in charts(at) if any(str(t.get("name", "")).startswith(f"{expected} (AUC") for t in c["data"]))
    assert [t["name"].split(" (AUC")[0] for t in roc["data"] if t.get("mode") == "lines"] == [
        "dlib-keras / hog / euclidean", expected,
    ]
    far, frr = percent(at.metric[0]), percent(at.metric[1])
    threshold = at.slider(key="tl_threshold").value
    at = run(at.slider(key="tl_threshold").set_value(round(threshold + 0.1, 3)))
    assert percent(at.metric[0]) > far and percent(at.metric[1]) < frr  # more accepted: FAR up, FRR down
    assert len(at.dataframe) == 4  # confusion matrix, operating points, the two interval tables
    # Both intervals, labelled: the threshold held fixed, and the threshold chosen again in each resample.
    labels = texts(at.markdown)
    assert "the mean of the thresholds chosen on the training folds): sampling uncertainty only" in labels
    assert "Threshold chosen in each resample (best accuracy)" in labels and "the whole procedure" in labels
    assert "also carries the uncertainty of choosing the threshold" in texts(at.caption)
    fixed = at.dataframe[2].value.set_index("metric")
    procedure = at.dataframe[3].value.set_index("metric")
    assert list(fixed.index) == ["AUC", "EER", "accuracy"]
    assert list(procedure.index) == ["accuracy", "FAR", "FRR", "TAR", "threshold"]
    assert (procedure["95% CI low"] <= procedure["value"]).all()
    assert (procedure["value"] <= procedure["95% CI high"]).all()
    assert procedure.loc["accuracy", "95% CI low"] <= fixed.loc["accuracy", "value"]
    assert fixed.loc["accuracy", "value"] <= procedure.loc["accuracy", "95% CI high"]

    at = run(at.button(key="tl_apply").click())
    assert at.slider(key="threshold").value == pytest.approx(round(threshold + 0.1, 3), abs=0.005)
    assert "Your threshold" in texts(at.sidebar.caption)
    assert "is now" in texts(at.success)


def test_threshold_lab_embeds_the_benchmark_pairs_live(environment, lfw_source) -> None:
    at = open_page("threshold_lab")
    subset = lfw_source.benchmark_subset  # "demo" on the bundled mini LFW: the only live pairs offered
    offered = at.radio(key="tl_source").options
    assert len(offered) == (2 + len({"10_folds", "dev_test", "demo"} & set(lfw_source.subsets)))
    at.session_state["tl_limit"] = 40  # first, so the whole subset is never embedded
    at = run(at.radio(key="tl_source").set_value(subset))
    assert f"LFW {subset} (40 pairs), hog detector" in texts(at.caption)
    points = at.dataframe[1].value
    assert list(points["target FAR"]) == [0.1, 0.01, 0.001]
    assert (points["TAR"] > 0.5).all()  # the real model separates these pairs well
    # Other configurations on the same pairs, ArcFace among them: their ROCs join the first one's.
    at = run(at.multiselect(key="tl_compare").set_value(["dlib-keras / hog / cosine", "arcface-keras / scrfd / cosine"]))
    names = [trace.get("name", "") for trace in charts(at)[-1]["data"]]
    assert any(n.startswith("dlib-keras / hog / euclidean (AUC") for n in names)
    assert any(n.startswith("dlib-keras / hog / cosine (AUC") for n in names)
    assert any(n.startswith("arcface-keras / scrfd / cosine (AUC") for n in names)


# ----------------------------------------------------------------------------- embedding space


def test_embedding_space_projects_and_lists_neighbours(environment) -> None:
    at = small_lfw_sample(open_page("embedding_space"), "es")
    points = sum(array(trace["x"]).size for trace in charts(at)[0]["data"])
    assert points == 12
    assert "PCA" in texts(at.info)
    table = at.dataframe[0].value
    assert table["same identity"].iloc[0]  # the nearest face is the same person
    assert table["distance"].is_monotonic_increasing

    at = run(at.radio(key="es_method").set_value("t-SNE"))
    at = run(at.radio(key="es_dims").set_value(3))
    figure = charts(at)[0]
    assert figure["data"][0]["type"] == "scatter3d"
    assert "t-SNE to 3-D" in texts(at.caption)


def test_embedding_space_with_too_few_faces_says_so(environment) -> None:
    at = small_lfw_sample(open_page("embedding_space"), "es", people=2, per_person=1)
    assert "at least four faces" in texts(at.info)


# ----------------------------------------------------------------------------- LFW benchmark


def test_lfw_benchmark_stored_results_and_a_live_run(environment, lfw_source) -> None:
    from facecore.verification.thresholds import load_calibrations

    at = open_page("lfw_benchmark")
    assert len(at.dataframe[0].value) == len(load_calibrations())
    assert "stored results of full LFW pairs.txt" in texts(at.caption)
    assert ("Using full LFW" if lfw_source.full else "Using the bundled mini LFW") in texts(at.caption)
    assert at.selectbox(key="lb_subset").value == lfw_source.benchmark_subset
    if not lfw_source.full:
        assert "Run a configuration above" in texts(at.info)  # the stored pairs' photos are not here
        assert "Download full LFW" in [b.label for b in at.button]
        assert "DevTest" in texts(at.info)  # the pixel baseline needs full LFW's View 1 files, and says so

    run(at.number_input(key="lb_limit").set_value(40))
    at = run(at.button(key="lb_run").click())
    assert f"{lfw_source.benchmark_subset} (40 pairs)" in texts(at.caption)
    assert percent(at.metric[0]) > 0.8
    assert "From the run above" in texts(at.caption)  # the failure cases now come from this run


def test_lfw_benchmark_sets_the_two_models_side_by_side(environment) -> None:
    from facecore.verification.thresholds import load_calibrations, view1_choice

    at = open_page("lfw_benchmark")
    cards = texts(at.markdown)
    for name in ("dlib-keras", "arcface-keras"):
        chosen = view1_choice(name)
        assert f"**{name}**" in cards and f"{100 * chosen.accuracy:.2f}% +- {100 * chosen.accuracy_std:.2f}" in cards
        assert f"chosen on View 1: {100 * chosen.view1_accuracy:.2f}%" in cards
    assert "non-commercial research use only" in cards and "public domain" in cards
    assert "chosen on LFW View 1 (pairsDevTrain/pairsDevTest)" in texts(at.caption)
    assert "the figures are View 2 (pairs.txt, 10 folds)" in texts(at.caption)
    assert "dlib's 5-point landmarks" in texts(at.caption)  # dlib's overall View 1 choice is not offered here
    # Chosen on View 1, not on pairs.txt: ArcFace's choice (MTCNN) is not its most accurate entry there (SCRFD).
    arcface = [e for e in load_calibrations() if e.embedder.startswith("arcface_w600k_mbf-l2-keras")]
    assert view1_choice("arcface-keras").accuracy < max(e.accuracy for e in arcface)
    # ArcFace's View 1 choice beats dlib's on the same pairs (99.65% vs 99.28%).
    assert view1_choice("arcface-keras").accuracy > view1_choice("dlib-keras").accuracy
    roc = next(c for c in charts(at) if "ROC of each model" in json.dumps(c.get("layout", {})))
    assert sorted(trace["name"].split()[0] for trace in roc["data"]) == ["arcface-keras", "dlib-keras", "fusion:"]


def test_lfw_benchmark_fuses_the_two_models(environment) -> None:
    """The stored recipe's z-score fusion on the stored pairs.txt distances: a higher AUC than either model."""
    from facecore.config import PipelineConfig
    from facecore.verification.fusion import read_fusion_recipe
    from facecore.verification.metrics import kfold_verification, roc_auc
    from facecore.verification.thresholds import lfw_distances

    recipe = read_fusion_recipe()
    assert recipe is not None and {m.embedder for m in recipe.models} == {"dlib-keras", "arcface-keras"}
    stored = [
        lfw_distances(PipelineConfig(detector=m.detector, embedder=m.embedder, flip_tta=m.flip_tta), m.metric)
        for m in recipe.models
    ]
    same = stored[0][1]
    fused = recipe.fuse([d for d, _ in stored])
    assert roc_auc(fused, same) > max(roc_auc(d, same) for d, _ in stored)
    result = kfold_verification(fused, same)
    at = open_page("lfw_benchmark")
    lesson = next(m for m in texts(at.markdown).split("\n") if "Fusing the two models" in m)
    assert f"**{100 * result.accuracy:.2f}% +- {100 * result.accuracy_std:.2f}**" in lesson
    assert f"AUC {roc_auc(fused, same):.5f}" in lesson and "pairsDevTrain" in lesson


def test_lfw_benchmark_stored_failures_and_baseline(environment, full_lfw_home) -> None:
    at = open_page("lfw_benchmark")
    assert "False accepts" in texts(at.markdown) and "False rejects" in texts(at.markdown)
    assert len(at.image) == 8  # 4 false accepts and 4 false rejects, each pair in one image row
    assert "stored full LFW pairs.txt distances" in texts(at.caption)

    at = run(at.toggle(key="lb_baseline").set_value(True))
    labels = [m.label for m in at.metric]
    baseline = percent(at.metric[labels.index("GaussianNB on pixels (DevTest)")])
    model = percent(at.metric[labels.index("This model (pairs.txt, 10-fold)")])
    assert baseline < model - 0.2
