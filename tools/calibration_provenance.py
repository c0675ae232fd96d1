"""Fill in the provenance fields of the shipped calibration data, from the stored benchmark results.

    python tools/calibration_provenance.py            # rewrite facecore/data/{calibration,fusion}.json
    python tools/calibration_provenance.py --check    # exit 1 when a rewrite would change them

Two things, both deterministic (the same inputs give byte-identical files):

1. Every stored ``command`` is made portable: the LFW data home becomes ``"$FACECORE_LFW_HOME"`` and the
   ``--cache-dir`` of ``bench/model_selection.py`` and ``bench/model_fusion.py`` is dropped (there it only
   says where embeddings are cached; in ``bench/lfw_benchmark.py`` it also chooses which configurations
   a ``--write-calibration`` run measures, so it is kept there). Machine paths never ship.
2. Each calibration entry gets its LFW View 1 figures (``view1_accuracy``: threshold fitted on
   pairsDevTrain, scored on pairsDevTest; ``view1_auc`` on pairsDevTest; ``view1_source``) from the rows of
   ``docs/results/model_selection_*.json`` that measured the same embedder version (flip TTA included),
   detector and metric with the same landmarks: a calibration entry aligns on the detector's own five
   points when it gives them (MTCNN, SCRFD), else on dlib's 5-point predictor (HOG, Haar), so a row
   aligned on dlib's points with MTCNN or SCRFD is another configuration and is not used. Rows of several
   files for one entry must agree; so must a row's View 2 figures, where it has them, with the entry's
   (else the row measured another pipeline and the tool stops). Product code reads these fields, never docs/.

A ``--write-calibration`` run replaces its entries without View 1 figures (they would describe the
previous pipeline); measure View 1 again (``bench/model_selection.py``), store its rows in docs/results/,
and re-run this tool.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from facecore.detection import DETECTORS  # noqa: E402

DATA = REPO / "facecore" / "data"
RESULTS = REPO / "docs" / "results"
#: The View 1 results, in the order they are read (later files must agree with earlier ones).
VIEW1_FILES = (
    "model_selection_dlib_view1.json",
    "model_selection_dlib_mtcnn.json",
    "model_selection_arcface.json",
    "model_selection_arcface_detectors.json",
)
VIEW1_PROTOCOL = "LFW View 1 (threshold fitted on pairsDevTrain, scored on pairsDevTest)"
# View 2 figures of a row and of the entry it fills come from one computation: equal up to float printing.
SAME = 1e-12


def portable(command: str) -> str:
    """``command`` without machine paths (see the module docstring)."""
    command = re.sub(r"--data-home\s+\S+", '--data-home "$FACECORE_LFW_HOME"', command)
    if "bench/lfw_benchmark.py" not in command:
        command = re.sub(r"\s--cache-dir\s+\S+", "", command)
    return command


def _row_landmarks(row: dict) -> bool:
    """Whether the row aligned on the detector's own points when it has them (the benchmarks' default)."""
    if "landmarks" in row:
        return row["landmarks"] != "dlib 5-point"
    return bool(row.get("detector_landmarks", True))


def _aligned_on(detector: str, detector_points: bool) -> str:
    return detector if detector_points and DETECTORS.get(detector).gives_landmarks else "dlib 5-point"


def view1_rows() -> dict[tuple[str, str, str], dict]:
    """``(embedder version, detector, metric) -> {view1_accuracy, view1_auc, view1_source, view2 figures}``
    of every row measured as a calibration entry is (the detector's own landmarks where it has them)."""
    found: dict[tuple[str, str, str], dict] = {}
    for name in VIEW1_FILES:
        for row in json.loads((RESULTS / name).read_text())["rows"]:
            if _aligned_on(row["detector"], _row_landmarks(row)) != _aligned_on(row["detector"], True):
                continue
            key = (row["embedder"], row["detector"], row["metric"])
            figures = {"view1_accuracy": row["view1_accuracy"], "view1_auc": row["view1_auc"]}
            if key in found:
                if {k: found[key][k] for k in figures} != figures:
                    raise SystemExit(f"{name} disagrees with {found[key]['files']} on the View 1 figures of {key}")
                found[key]["files"].append(name)
            else:
                found[key] = {**figures, "files": [name]}
            for field, figure in (("view2_accuracy", "accuracy"), ("view2_auc", "auc")):
                if field in row:
                    found[key].setdefault("view2", {})[figure] = row[field]
    return found


def with_view1(entry: dict, found: dict) -> dict:
    key = (entry["embedder"], entry["detector"], entry["metric"])
    row = found.get(key)
    entry = {k: v for k, v in entry.items() if not k.startswith("view1_")}
    if row is None:
        return entry
    for figure, value in row.get("view2", {}).items():
        if abs(value - entry[figure]) > SAME:
            raise SystemExit(f"the View 1 rows of {key} measured another pipeline: View 2 {figure} {value} "
                             f"against the entry's {entry[figure]}")
    files = ", ".join(f"docs/results/{name}" for name in row["files"])
    return {**entry, "view1_accuracy": row["view1_accuracy"], "view1_auc": row["view1_auc"],
            "view1_source": f"{VIEW1_PROTOCOL}: {files}"}


def rewritten() -> dict[Path, str]:
    """The new text of each data file."""
    found = view1_rows()
    entries = json.loads((DATA / "calibration.json").read_text())
    entries = [with_view1({**e, "command": portable(e["command"])}, found) for e in entries]
    fusion = json.loads((DATA / "fusion.json").read_text())
    fusion["command"] = portable(fusion["command"])
    return {
        DATA / "calibration.json": json.dumps(entries, indent=1) + "\n",
        DATA / "fusion.json": json.dumps(fusion, indent=1) + "\n",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a rewrite would")
    args = parser.parse_args()
    changed = [path for path, text in rewritten().items() if path.read_text() != text]
    if args.check:
        for path in changed:
            print(f"{path.relative_to(REPO)} is not up to date: run python tools/calibration_provenance.py")
        return 1 if changed else 0
    for path, text in rewritten().items():
        path.write_text(text)
    print(f"rewrote {len(changed)} file(s)" if changed else "already up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
