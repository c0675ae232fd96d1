"""Speed of the analysis pages on real LFW embeddings (2 CPU cores, no GPU).

    python bench/analysis_speed.py [--data-home ../shared/data/sklearn] [--cache-dir /tmp/analysis_bench]

1. Distance matrix page, 100 LFW faces (25 people x 4), warm: a new browser session (AppTest)
   opening the page with the models loaded and the embeddings in the on-disk cache.
2. Threshold lab slider on LFW's 6,000 pairs: what one slider move computes (rates, confusion
   matrix, both figures), and the whole page rerun AppTest sees after the move.
3. PCA, t-SNE and UMAP of 2,000 real embeddings (500 LFW people x 4 images).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import _repo_path  # noqa: F401  (puts the repo root on sys.path)
import numpy as np

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


def distance_matrix_page() -> None:
    def open_100_faces() -> None:
        at = new_session("distance_matrix")
        at.session_state["dm_people"] = 25
        at.session_state["dm_per_person"] = 4
        at.run()
        assert not at.exception and not at.error, (at.exception, at.error)
        assert "25 people x 4 images" in "\n".join(c.value for c in at.caption)

    start = time.perf_counter()
    open_100_faces()  # cold: loads the models and fills the embedding cache
    print(f"distance matrix, 100 faces, first time (models + embedding): {time.perf_counter() - start:.2f} s")
    median, runs = timed(open_100_faces)
    print(f"distance matrix, 100 faces, warm new session: median {median:.2f} s  ({', '.join(f'{t:.2f}' for t in runs)})")


def threshold_slider() -> None:
    from facecore.evaluation.analysis import confusion_table
    from facecore.verification.metrics import equal_error_rate, rates_at_threshold, threshold_sweep
    from facecore.verification.thresholds import lfw_distances

    d, same = lfw_distances("hog", "euclidean", False)
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

    median, _ = timed(one_move, repeats=20)
    print(f"threshold lab, one slider move on 6,000 pairs (computations + figure JSON): median {1000 * median:.0f} ms")

    at = new_session("threshold_lab")
    at.run()
    values = iter(np.linspace(0.45, 0.75, 6))

    def page_rerun() -> None:
        at.slider(key="tl_threshold").set_value(float(round(next(values), 3))).run()
        assert not at.exception

    median, runs = timed(page_rerun, repeats=5)
    print(f"threshold lab, slider move, whole-page rerun (AppTest): median {1000 * median:.0f} ms "
          f"({', '.join(f'{1000 * t:.0f}' for t in runs)})")


def projections(data_home: Path) -> None:
    from facecore.cache import EmbeddingCache
    from facecore.evaluation.projection import project, umap_available
    from facecore.evaluation.samples import lfw_sample
    from facecore.pipeline import FacePipeline

    start = time.perf_counter()
    sample = lfw_sample(data_home, FacePipeline("hog"), n_people=500, per_person=4, cache=EmbeddingCache())
    print(f"embedded {len(sample)} LFW faces in {time.perf_counter() - start:.1f} s (cache: {os.environ['FACECORE_CACHE_DIR']})")
    for method, repeats in (("PCA", 5), ("t-SNE", 2)):
        median, runs = timed(lambda m=method: project(sample.embeddings, m, 2), repeats=repeats)
        print(f"{method} of {len(sample)} points to 2-D: median {median:.3f} s ({', '.join(f'{t:.3f}' for t in runs)})")
    if umap_available():
        start = time.perf_counter()
        project(sample.embeddings, "UMAP", 2)
        print(f"UMAP of {len(sample)} points, first call in the process (import + numba compile): "
              f"{time.perf_counter() - start:.1f} s")
        median, _ = timed(lambda: project(sample.embeddings, "UMAP", 2), repeats=2)
        print(f"UMAP of {len(sample)} points, later calls: median {median:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-home", type=Path, default=REPO.parent / "shared" / "data" / "sklearn")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/analysis_bench"))
    parser.add_argument("--only", choices=["matrix", "slider", "projections"], help="run one part")
    args = parser.parse_args()
    os.environ["FACECORE_CACHE_DIR"] = str(args.cache_dir)
    os.environ.setdefault("FACECORE_SHARED_DATA", str(args.data_home.parent))
    if args.only in (None, "matrix"):
        distance_matrix_page()
    if args.only in (None, "slider"):
        threshold_slider()
    if args.only in (None, "projections"):
        projections(args.data_home)


if __name__ == "__main__":
    main()
