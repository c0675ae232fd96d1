"""Speed of the analysis pages on real LFW embeddings (2 CPU cores, no GPU).

    python bench/analysis_speed.py [--data-home "$FACECORE_LFW_HOME"] [--cache-dir /tmp/analysis_bench]
    python bench/analysis_speed.py --repeats 1 --matrix-people 3 --projection-people 10 --no-umap   # quick

1. Distance matrix page, 100 LFW faces (25 people x 4), warm: a new browser session (AppTest)
   opening the page with the models loaded and the embeddings in the on-disk cache.
2. Threshold lab slider on LFW's 6,000 pairs: what one slider move computes (rates, confusion
   matrix, both figures), and the whole page rerun AppTest sees after the move.
3. PCA, t-SNE and UMAP of 2,000 real embeddings (500 LFW people x 4 images).

LFW is ``--data-home``, else ``$FACECORE_LFW_HOME``, else the bundled mini LFW (65 people with 4+
photos, so at most 260 embeddings in part 3); the pages are pointed at the same one. ``--repeats``
replaces every timed repeat count (default: 5 page opens, 20 slider moves, 5 page reruns, 2 per
projection) and the smaller ``--*-people`` make a quick run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import _data
import _repo_path  # noqa: F401  (puts the repo root on sys.path)
import numpy as np

from facecore.evaluation.datasets import LFW_HOME_ENV

REPO = Path(__file__).resolve().parents[1]


def timed(action, repeats: int = 5) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def new_session(page: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=600)
    at.run()
    at.switch_page(f"app_pages/{page}.py")
    return at


def distance_matrix_page(people: int, repeats: int | None) -> None:
    faces = people * 4

    def open_page() -> None:
        at = new_session("distance_matrix")
        at.session_state["dm_people"] = people
        at.session_state["dm_per_person"] = 4
        at.run()
        assert not at.exception and not at.error, (at.exception, at.error)
        assert f"{people} people x 4 images" in "\n".join(c.value for c in at.caption)

    start = time.perf_counter()
    open_page()  # cold: loads the models and fills the embedding cache
    print(f"distance matrix, {faces} faces, first time (models + embedding): {time.perf_counter() - start:.2f} s")
    median, runs = timed(open_page, repeats=repeats or 5)
    print(f"distance matrix, {faces} faces, warm new session: median {median:.2f} s  ({', '.join(f'{t:.2f}' for t in runs)})")


def threshold_slider(repeats: int | None) -> None:
    from facecore.config import PipelineConfig
    from facecore.evaluation.analysis import confusion_table
    from facecore.verification.metrics import equal_error_rate, rates_at_threshold, threshold_sweep
    from facecore.verification.thresholds import lfw_distances

    d, same = lfw_distances(PipelineConfig(detector="hog"), "euclidean")
    sweep = threshold_sweep(d, same)
    eer, eer_threshold = equal_error_rate(d, same)
    thresholds = np.linspace(0.4, 0.8, 20)

    def one_move() -> None:
        import plotly.graph_objects as go

        t = float(thresholds[np.random.default_rng().integers(20)])
        rates_at_threshold(d, same, t)
        confusion_table(d, same, t)
        hist = go.Figure([go.Histogram(x=d[same]), go.Histogram(x=d[~same])])
        hist.add_vline(x=t)
        rates = go.Figure([go.Scatter(x=sweep["threshold"], y=sweep["far"]), go.Scatter(x=sweep["threshold"], y=sweep["frr"]),
                           go.Scatter(x=[eer_threshold], y=[eer])])
        rates.add_vline(x=t)
        hist.to_json(), rates.to_json()  # what Streamlit serialises for the browser

    median, _ = timed(one_move, repeats=repeats or 20)
    print(f"threshold lab, one slider move on 6,000 pairs (computations + figure JSON): median {1000 * median:.0f} ms")

    at = new_session("threshold_lab")
    at.run()
    values = iter(np.linspace(0.45, 0.75, 6))

    def page_rerun() -> None:
        at.slider(key="tl_threshold").set_value(float(round(next(values), 3))).run()
        assert not at.exception

    median, runs = timed(page_rerun, repeats=min(repeats or 5, 6))  # 6 slider values
    print(f"threshold lab, slider move, whole-page rerun (AppTest): median {1000 * median:.0f} ms "
          f"({', '.join(f'{1000 * t:.0f}' for t in runs)})")


def projections(data_home: Path, people: int, repeats: int | None, with_umap: bool) -> None:
    from facecore.cache import EmbeddingCache
    from facecore.config import PipelineConfig
    from facecore.evaluation.projection import project, umap_available
    from facecore.evaluation.samples import lfw_sample
    from facecore.pipeline import FacePipeline

    start = time.perf_counter()
    sample = lfw_sample(data_home, FacePipeline(PipelineConfig(detector="hog")), n_people=people, per_person=4, cache=EmbeddingCache())
    print(f"embedded {len(sample)} LFW faces in {time.perf_counter() - start:.1f} s (cache: {os.environ['FACECORE_CACHE_DIR']})")
    for method, default_repeats in (("PCA", 5), ("t-SNE", 2)):
        median, runs = timed(lambda m=method: project(sample.embeddings, m, 2), repeats=repeats or default_repeats)
        print(f"{method} of {len(sample)} points to 2-D: median {median:.3f} s ({', '.join(f'{t:.3f}' for t in runs)})")
    if with_umap and umap_available():
        start = time.perf_counter()
        project(sample.embeddings, "UMAP", 2)
        print(f"UMAP of {len(sample)} points, first call in the process (import + numba compile): "
              f"{time.perf_counter() - start:.1f} s")
        median, _ = timed(lambda: project(sample.embeddings, "UMAP", 2), repeats=repeats or 2)
        print(f"UMAP of {len(sample)} points, later calls: median {median:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-home", type=Path, default=None, help=_data.LFW_HOME_HELP)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/analysis_bench"))
    parser.add_argument("--only", choices=["matrix", "slider", "projections"], help="run one part")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats of every step (default: see above)")
    parser.add_argument("--matrix-people", type=int, default=25, help="people (x 4 images) on the distance matrix")
    parser.add_argument("--projection-people", type=int, default=500, help="people (x 4 images) projected")
    parser.add_argument("--no-umap", action="store_true", help="skip UMAP (its first call compiles for 10-30 s)")
    args = parser.parse_args()
    data_home = _data.lfw_home(args.data_home)
    os.environ["FACECORE_CACHE_DIR"] = str(args.cache_dir)
    os.environ[LFW_HOME_ENV] = str(data_home)  # the pages find LFW through it
    if args.only in (None, "matrix"):
        distance_matrix_page(args.matrix_people, args.repeats)
    if args.only in (None, "slider"):
        threshold_slider(args.repeats)
    if args.only in (None, "projections"):
        projections(data_home, args.projection_people, args.repeats, with_umap=not args.no_umap)


if __name__ == "__main__":
    main()
