"""Your data: score a labelled set of your own photos with the analysis the Threshold lab runs on LFW.

Upload a zip with one folder per person (all genuine pairs plus a seeded sample of impostor pairs), or a
pairs CSV (``image_a,image_b,same``) with a zip of its images. The work is
``facecore.evaluation.own_pairs`` (reading the set) and ``facecore.evaluation.own_data`` (embedding
through the cache and the k-fold protocol); this page lays the results out.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import streamlit as st

from facecore.config import PipelineConfig
from facecore.evaluation.analysis import failure_cases, operating_points, procedure_summary_with_ci
from facecore.evaluation.own_data import OwnEvaluation, evaluate_pairs
from facecore.evaluation.own_pairs import OwnDataError, extract_zip, folder_pairs, read_pairs_csv
from facecore.verification.metrics import rates_at_threshold
from ui.charts import distance_histogram, roc_chart
from ui.feedback import progress_reporter, show_error, show_flashes
from ui.operating_point import active_point_picker, save_point_form
from ui.resources import embedding_cache
from ui.settings import current_settings

FOLDER = "A zip with one folder per person"
PAIRS = "A pairs CSV and a zip of its images"
_RESULT = "_own_data_result"
_FOLDER = "_own_data_folder"  # the unpacked upload, removed when the next one is unpacked
BOOTSTRAP_RESAMPLES = 200

settings = current_settings()
st.title("Your data")
show_flashes()
st.caption(
    "Measure the model on your own cameras, lighting and people: the same analysis as for LFW (k-fold "
    f"accuracy with thresholds chosen on the other folds, ROC, EER, TAR at fixed FARs, bootstrap), with the "
    f"sidebar's pipeline ({settings.config.describe()}) and {settings.metric} distance."
)


def read_set(kind: str, archive, pairs_csv):
    """The uploaded set as a PairSet (unpacked into a folder that lives as long as the session)."""
    previous = st.session_state.pop(_FOLDER, None)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix="facecore-own-"))
    st.session_state[_FOLDER] = str(folder)
    root = extract_zip(archive.getvalue(), folder)
    name = Path(archive.name).stem
    if kind == FOLDER:
        return folder_pairs(root, name=name)
    return read_pairs_csv(pairs_csv.getvalue(), root, name=Path(pairs_csv.name).stem)


kind = st.radio("Your labelled photos", [FOLDER, PAIRS], key="own_kind", horizontal=True)
archive = st.file_uploader("Zip of photos", type=["zip"], key="own_zip")
pairs_csv = st.file_uploader("Pairs CSV (image_a, image_b, same)", type=["csv"], key="own_csv") if kind == PAIRS else None
ready = archive is not None and (kind == FOLDER or pairs_csv is not None)
if st.button("Evaluate", key="own_run", disabled=not ready, type="primary"):
    st.session_state.pop(_RESULT, None)
    bar = st.progress(0.0, text="Embedding your photos")
    try:
        pair_set = read_set(kind, archive, pairs_csv)
        evaluation = evaluate_pairs(
            pair_set, settings.config, metric=settings.metric, cache=embedding_cache(), progress=progress_reporter(bar)
        )
        st.session_state[_RESULT] = (evaluation, settings.config, settings.metric)
    except OwnDataError as exc:
        st.error(f"Nothing was evaluated: {exc}")
    except Exception as exc:
        show_error("Your set could not be evaluated", exc)
    finally:
        bar.empty()


def show(result: OwnEvaluation, config: PipelineConfig, metric: str) -> None:
    s = result.summary()
    st.success(
        f"{s['set']}: {s['genuine_pairs']:,} genuine and {s['impostor_pairs']:,} impostor pairs from {s['images']} "
        f"images ({result.config['protocol']}); no face found in {s['no_face']} (centre box used)."
    )
    cols = st.columns(4)
    cols[0].metric("k-fold accuracy", f"{100 * s['accuracy']:.2f}%", f"± {100 * s['accuracy_std']:.2f}", delta_color="off")
    cols[1].metric("AUC", f"{s['auc']:.4f}")
    cols[2].metric("EER", f"{100 * s['eer']:.2f}%")
    cols[3].metric("Threshold (mean of folds)", f"{s['threshold']:.4f}")
    d, same = result.distances, result.same
    low, high = float(d.min()), float(d.max())
    threshold = st.slider(f"Threshold ({settings.metric})", low, high, float(min(max(s["threshold"], low), high)),
                          step=(high - low) / 500 or 0.001, format="%.4f", key="own_threshold")
    r = rates_at_threshold(d, same, threshold)
    st.caption(f"At {threshold:.4f}: FAR {100 * r.far:.2f}% ({r.fp} of {r.fp + r.tn} impostor pairs accepted), "
               f"FRR {100 * r.frr:.2f}% ({r.fn} of {r.tp + r.fn} genuine pairs rejected).")
    st.plotly_chart(distance_histogram(d, same, threshold, settings.metric, bins=40), width="stretch", key="own_hist")
    roc_chart({s["set"]: (d, same)}, "ROC of your set")
    st.subheader("TAR at fixed FARs")
    st.dataframe(operating_points(d, same), width="stretch")
    st.subheader("The whole procedure, bootstrapped (95% intervals)")
    st.dataframe(procedure_summary_with_ci(d, same, n_boot=BOOTSTRAP_RESAMPLES, seed=0), width="stretch")
    st.subheader("Failure cases at the slider's threshold")
    cases = failure_cases(d, same, threshold, k=6)
    if cases.empty:
        st.caption("No mistakes at this threshold.")
    for row in cases.itertuples(index=False):
        pair = result.pair_set.pairs[row.pair]
        cols = st.columns([1, 1, 2])
        cols[0].image(str(result.pair_set.root / pair.image_a), caption=pair.image_a, width=140)
        cols[1].image(str(result.pair_set.root / pair.image_b), caption=pair.image_b, width=140)
        cols[2].markdown(f"**{row.kind}**: distance {row.distance:.4f}, {row.margin:.4f} past the threshold")
    st.download_button("Per-pair distances and decisions (CSV)", result.per_pair(threshold).to_csv(index=False),
                       f"{s['set']}_pairs.csv", "text/csv", key="own_csv_download")
    st.subheader("Save as operating point")
    st.caption(f"For {config.describe()}, {metric} distance: the Verify and Identify pages and the API then decide "
               "with it when it is active, and give confidences from this set's distances.")
    save_point_form(config, metric, d, same, source="own set", set_name=s["set"], threshold=threshold, key="own_save")
    active_point_picker(config, metric, key="own_active")


if (stored := st.session_state.get(_RESULT)) is not None:
    show(*stored)
