"""LFW benchmark: stored results per configuration, a fresh run of one, its failure cases, a pixel baseline."""

from __future__ import annotations

import streamlit as st

from facecore.cache import default_cache_dir
from facecore.config import PipelineConfig
from facecore.detection import DETECTORS
from facecore.embedding import DEFAULT_EMBEDDER, EMBEDDERS
from facecore.evaluation.analysis import calibration_table, failure_cases, operating_points
from facecore.evaluation.datasets import LfwSource, read_lfw_pairs
from facecore.evaluation.lfw import evaluate_lfw
from facecore.evaluation.samples import pixel_naive_bayes_baseline
from facecore.verification import accepts
from facecore.verification.fusion import read_fusion_recipe
from facecore.verification.metrics import METRICS, kfold_verification, roc_auc, tar_at_far
from facecore.verification.thresholds import calibrated, lfw_distances, load_calibrations, view1_choice
from ui.charts import roc_chart
from ui.data import lfw_panel, subset_label
from ui.face_sets import thumbnail
from ui.feedback import progress_reporter, show_error
from ui.resources import embedding_cache
from ui.settings import current_settings

#: Pairs a live run can score, when the LFW copy in use has them (the bundled mini LFW: "demo").
SUBSETS = ("10_folds", "dev_test", "demo")
STORED = ("stored results of full LFW pairs.txt (6,000 pairs, 10-fold), made by "
          "`python bench/lfw_benchmark.py --write-calibration` (dlib-keras with HOG and Haar) or "
          "`python bench/model_selection.py --write-calibration` (every other entry)")
_RUN = "_lfw_benchmark_run"
CHOSEN = ("chosen on LFW View 1 (pairsDevTrain/pairsDevTest) among the configurations this dashboard offers; "
          "the figures are View 2 (pairs.txt, 10 folds)")
#: Models whose best configuration on View 1 overall is not one the dashboard offers (its calibrations
#: align on each detector's own landmarks), from docs/results/model_selection_dlib_view1.json.
OUTSIDE_DASHBOARD = {
    "dlib-keras": "MTCNN boxes aligned on dlib's 5-point landmarks, flip TTA, euclidean distance (99.00% on "
                  "View 1); the dashboard aligns on MTCNN's own points, so the card shows the best "
                  "configuration it offers",
}

settings = current_settings()
#: The sidebar's configuration with a pretrained model (the default one when a kept model is chosen):
#: what the stored LFW results measured.
MODELS = [name for name in EMBEDDERS.names() if EMBEDDERS.get(name).pretrained]
measured = PipelineConfig(
    detector=settings.detector,
    embedder=settings.config.embedder if settings.pretrained else DEFAULT_EMBEDDER,
    flip_tta=settings.flip_tta,
)
st.title("LFW benchmark")
st.caption(
    "Labeled Faces in the Wild, deep-funneled images, the standard pairs protocol: each fold is scored "
    "with the threshold that was best on the other folds."
)
if not settings.pretrained:
    st.info(f"Everything here measures the pretrained models, not {settings.config.model_label} (the sidebar's "
            "choice); the Threshold lab measures a kept model on the gallery's pairs.")
source = lfw_panel("lb")


def stored_results() -> None:
    st.subheader("Stored results (every detector x metric x flip TTA)")
    table = calibration_table(load_calibrations())
    if table.empty:
        st.info("No stored results: `--write-calibration` runs of bench/lfw_benchmark.py and "
                "bench/model_selection.py write them.")
        return
    st.dataframe(
        table.style.format({"accuracy": "{:.2%}", "accuracy std": "{:.2%}", "AUC": "{:.4f}", "EER": "{:.2%}",
                            "threshold": "{:.4f}"}),
        hide_index=True,
        width="stretch",
    )
    st.caption(f"The {STORED} (facecore/data/calibration.json): the full pipeline from the raw images. "
               "Times, no-face counts and TAR@FAR for the main configurations: docs/benchmarks.md.")


def model_cards() -> None:
    st.subheader("The models, side by side")
    cols = st.columns(len(MODELS))
    for col, name in zip(cols, MODELS, strict=True):
        card, best = EMBEDDERS.get(name).card, view1_choice(name)
        with col:
            st.markdown(f"**{name}**")
            st.markdown("\n".join(f"- *{key}*: {value}" for key, value in card.items()))
            if best is not None:
                st.markdown(
                    f"- *measured here* (LFW pairs.txt, 10-fold): **{100 * best.accuracy:.2f}% +- "
                    f"{100 * best.accuracy_std:.2f}**, AUC {best.auc:.4f}, EER {100 * best.eer:.2f}% with the "
                    f"{best.detector} detector, {best.metric} distance{', flip TTA' if best.flip_tta else ''} "
                    f"(chosen on View 1: {100 * best.view1_accuracy:.2f}%, AUC {best.view1_auc:.4f})"
                )
            if name in OUTSIDE_DASHBOARD:
                st.caption(f"On View 1 overall, {name} did best with {OUTSIDE_DASHBOARD[name]}.")
    st.caption(f"Each model's configuration is {CHOSEN}: the pairs it is reported on played no part in choosing it.")
    curves = {}
    for name in MODELS:
        best = view1_choice(name)
        config = None if best is None else PipelineConfig(detector=best.detector, embedder=name, flip_tta=best.flip_tta)
        found = None if config is None else lfw_distances(config, best.metric)
        if found is not None:
            curves[f"{name} ({best.detector}, {best.metric}{', flip' if best.flip_tta else ''})"] = found
    fused = fusion_curve()
    if fused is not None:
        curves[fused[0]] = fused[1]
    if len(curves) > 1:
        roc_chart(curves, "ROC of each model's configuration chosen on LFW View 1, on the same 6,000 pairs of "
                  "LFW pairs.txt (View 2)")
        st.caption(f"The {STORED}. Read the left of the chart: at a false-accept rate of 0.1% (1e-3), the "
                   "higher curve accepts more genuine pairs.")
    if fused is not None:
        fusion_lesson(*fused[1])


def fusion_curve() -> tuple[str, tuple] | None:
    """``(name, (fused distances, same))`` of the stored fusion recipe, or None without one."""
    recipe = read_fusion_recipe()
    if recipe is None:
        return None
    stored = []
    for m in recipe.models:
        found = lfw_distances(PipelineConfig(detector=m.detector, embedder=m.embedder, flip_tta=m.flip_tta), m.metric)
        if found is None:
            return None
        stored.append(found)
    names = " + ".join(f"{m.embedder} ({m.detector}, {m.metric})" for m in recipe.models)
    return f"fusion: {names}", (recipe.fuse([d for d, _ in stored]), stored[0][1])


def fusion_lesson(distances, same) -> None:
    """What fusing the two models does, with the fused figures measured on the stored pairs."""
    recipe = read_fusion_recipe()
    result = kfold_verification(distances, same)  # pairs.txt's 10 folds are 10 blocks of 600 pairs
    st.markdown(
        "**Fusing the two models.** Each model's distance is turned into a z-score (minus its mean, divided "
        f"by its standard deviation, both measured on {recipe.fitted_on}, never on these pairs), and the two "
        "z-scores are averaged: a pair both models find close stays close, and one model's rare confident "
        f"mistake is diluted by the other. On these 6,000 pairs: 10-fold accuracy **{100 * result.accuracy:.2f}% "
        f"+- {100 * result.accuracy_std:.2f}**, AUC {roc_auc(distances, same):.5f}, EER {100 * result.eer:.2f}%, "
        f"TAR {100 * tar_at_far(distances, same, 1e-3)[0]:.2f}% at FAR 0.1%. It costs both models' work per "
        "face; docs/benchmarks.md (\"Fusion\") has the View-1 choice among fusions and weights."
    )


def run_form(source: LfwSource) -> None:
    st.subheader("Run one configuration")
    subsets = [subset for subset in SUBSETS if subset in source.subsets]
    cols = st.columns(6)
    detectors = DETECTORS.names()
    detector = cols[0].selectbox("Detector", detectors, index=detectors.index(settings.detector), key="lb_detector")
    model = cols[1].selectbox("Model", MODELS, index=MODELS.index(measured.embedder), key="lb_model")
    metric = cols[2].selectbox("Metric", METRICS, index=list(METRICS).index(settings.metric), key="lb_metric")
    flip = cols[3].checkbox("Flip TTA", value=settings.flip_tta, key="lb_flip")
    subset = cols[4].selectbox("Pairs", subsets, index=subsets.index(source.benchmark_subset),
                               format_func=lambda s: subset_label(source, s), key="lb_subset")
    limit = int(cols[5].number_input("Pairs to use (0 = all)", 0, 6000, 0, step=100, key="lb_limit")) or None
    st.caption("A cold run embeds every image (about 5 minutes for all of pairs.txt on 2 CPU cores, well under "
               "a minute for the bundled demo pairs); the embeddings go to the on-disk cache, so the same run "
               "again takes seconds.")
    if not st.button("Run", key="lb_run", type="primary"):
        return
    bar = st.progress(0.0, text="Embedding LFW images")
    try:
        evaluation = evaluate_lfw(source.home, PipelineConfig(detector=detector, embedder=model, flip_tta=flip),
                                  metric=metric,
                                  subset=subset, limit=limit, cache=embedding_cache(), progress=progress_reporter(bar))
    except Exception as exc:
        show_error("The LFW run failed", exc)
        return
    finally:
        bar.empty()
    st.session_state[_RUN] = evaluation


def show_run() -> None:
    evaluation = st.session_state.get(_RUN)
    if evaluation is None:
        return
    if source is not None and evaluation.pairs and not evaluation.pairs[0].path_a.is_relative_to(source.home):
        del st.session_state[_RUN]  # a run on another copy of LFW (before a download)
        return
    r = evaluation.result
    config = evaluation.config
    points = operating_points(evaluation.distances, evaluation.same).set_index("target FAR")
    cols = st.columns(6)
    cols[0].metric("Accuracy", f"{100 * r.accuracy:.2f}%", help=f"+- {100 * r.accuracy_std:.2f} (std over folds)")
    cols[1].metric("AUC", f"{r.auc:.4f}")
    cols[2].metric("EER", f"{100 * r.eer:.2f}%")
    cols[3].metric("TAR @ FAR 1%", f"{100 * points.loc[0.01, 'TAR']:.2f}%")
    cols[4].metric("No face", f"{evaluation.no_face} / {evaluation.images}")
    cols[5].metric("Time", f"{evaluation.seconds:.1f} s")
    st.caption(
        f"{config['dataset']}, {config['subset']} ({len(evaluation.pairs):,} pairs), {config['protocol']}; "
        f"{config['detector']} detector, {config['embedder']}, {config['metric']} distance. Accuracy "
        f"{100 * r.accuracy:.2f}% +- {100 * r.accuracy_std:.2f}; TAR @ FAR 0.1% {100 * r.tar_at_far_1e3:.2f}%."
    )


def failure_source(source: LfwSource):
    """``(pairs, distances, same, threshold, description)``: the last run, else the stored distances
    (full LFW's pairs.txt: only when that copy of LFW is here, to show its photos)."""
    evaluation = st.session_state.get(_RUN)
    if evaluation is not None:
        c = evaluation.config
        return (evaluation.pairs, evaluation.distances, evaluation.same, evaluation.result.threshold,
                f"the run above ({c['detector']}, {c['metric']}{', flip TTA' if c['flip_tta'] else ''})")
    if not source.full:
        return None
    stored = lfw_distances(measured, settings.metric)
    entry = calibrated(measured, settings.metric)
    if stored is None or entry is None:
        return None
    pairs = read_lfw_pairs(source.home)
    return (pairs, stored[0], stored[1], entry.threshold,
            f"the stored full LFW pairs.txt distances of the sidebar's configuration ({settings.detector}, "
            f"{settings.metric}{', flip TTA' if settings.flip_tta else ''})")


def failure_gallery(source: LfwSource) -> None:
    st.subheader("Failure cases")
    found = failure_source(source)
    if found is None:
        st.info("Run a configuration above to see its failure cases.")
        return
    pairs, distances, same, threshold, description = found
    k = st.slider("Cases of each kind", 1, 12, 4, key="lb_failures")
    cases = failure_cases(distances, same, threshold, k=k)
    st.caption(f"From {description}, at the k-fold threshold {threshold:.4f}: false accepts are different "
               f"people closest together, false rejects the same person farthest apart.")
    if cases.empty:
        st.success("No mistakes at this threshold.")
        return
    accepted = accepts(distances, threshold)
    totals = {"false accept": int((accepted & ~same).sum()), "false reject": int((~accepted & same).sum())}
    for kind, total in totals.items():
        rows = cases[cases["kind"] == kind]
        st.markdown(f"**{kind.capitalize()}s** ({total} in all)")
        if rows.empty:
            st.caption("None.")
            continue
        cols = st.columns(4)
        for n, row in enumerate(rows.itertuples()):
            pair = pairs[row.pair]
            with cols[n % 4]:
                st.image([thumbnail(pair.path_a, 110), thumbnail(pair.path_b, 110)], width=110)
                st.caption(f"{pair.path_a.parent.name.replace('_', ' ')} / "
                           f"{pair.path_b.parent.name.replace('_', ' ')}: {row.distance:.4f}")


@st.cache_data(show_spinner="Fitting GaussianNB on 2,200 pairs of raw pixels...")
def pixel_baseline(home: str):
    return pixel_naive_bayes_baseline(home, default_cache_dir() / "sklearn_lfw")


def baseline_section(source: LfwSource) -> None:
    st.subheader("Baseline: naive Bayes on raw pixels")
    st.caption("The twin-CNN seed's baseline, for contrast: what a model that knows nothing about faces "
               "gets from the pixels of a pair.")
    if not {"dev_train", "dev_test"} <= set(source.subsets):
        st.info("It is fitted on LFW's DevTrain pairs and scored on DevTest (View 1), which come with the full "
                "LFW; download it above to compute it. The Train your own page compares the same baseline on "
                "the bundled mini LFW.")
        return
    if not st.toggle("Compute it", key="lb_baseline"):
        return
    try:
        baseline = pixel_baseline(str(source.home))
    except Exception as exc:
        show_error("The pixel baseline could not be computed", exc)
        return
    cols = st.columns(2)
    cols[0].metric("GaussianNB on pixels (DevTest)", f"{100 * baseline.accuracy:.1f}%")
    entry = calibrated(measured, settings.metric)
    evaluation = st.session_state.get(_RUN)
    if evaluation is not None and evaluation.config["subset"] == "dev_test":
        cols[1].metric("This model (DevTest, your run)", f"{100 * evaluation.result.accuracy:.1f}%")
    elif entry is not None:
        cols[1].metric("This model (pairs.txt, 10-fold)", f"{100 * entry.accuracy:.1f}%")
    st.caption(f"{baseline.description}. Chance is 50%.")


model_cards()
stored_results()
if source is not None:
    run_form(source)
    show_run()
    failure_gallery(source)
    baseline_section(source)
