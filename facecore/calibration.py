"""Decision thresholds calibrated on LFW, so every default threshold is backed by measured numbers.

``facecore/data/calibration.json`` is written by ``bench/lfw_benchmark.py --write-calibration``:
one entry per detector x metric x flip-TTA, each the mean of the 10 thresholds chosen on the
training folds of LFW's pairs.txt, with the accuracy those thresholds gave on the held-out folds.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

CALIBRATION_FILE = Path(__file__).with_name("data") / "calibration.json"
# dlib's published operating point for its embedder with euclidean distance.
DLIB_DEFAULT_THRESHOLD = 0.6


@dataclass(frozen=True)
class Calibration:
    detector: str
    metric: str
    flip_tta: bool
    threshold: float
    accuracy: float
    accuracy_std: float
    auc: float
    eer: float
    embedder: str
    dataset: str = "LFW pairs.txt (deep-funneled images)"
    protocol: str = "10-fold; each threshold chosen on the other 9 folds"

    def describe(self) -> str:
        """One line for a settings panel: where the threshold comes from and what it achieved."""
        return (
            f"{self.threshold:.3f}: calibrated on {self.dataset}, {self.protocol}, "
            f"{self.detector} detector, {self.metric} distance{', flip TTA' if self.flip_tta else ''}; "
            f"accuracy {100 * self.accuracy:.2f}% +- {100 * self.accuracy_std:.2f}"
        )

    def as_dict(self) -> dict:
        return asdict(self)


@functools.lru_cache(maxsize=1)
def load_calibrations(path: Path = CALIBRATION_FILE) -> tuple[Calibration, ...]:
    if not path.exists():
        return ()
    return tuple(Calibration(**entry) for entry in json.loads(path.read_text()))


def calibrated(detector: str, metric: str, flip_tta: bool = False) -> Calibration | None:
    """The LFW calibration for this configuration, or None when it was never measured."""
    for entry in load_calibrations():
        if (entry.detector, entry.metric, entry.flip_tta) == (detector, metric, flip_tta):
            return entry
    return None


def write_calibrations(entries: list[Calibration], path: Path = CALIBRATION_FILE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted(entries, key=lambda e: (e.detector, e.metric, e.flip_tta))
    path.write_text(json.dumps([e.as_dict() for e in ordered], indent=1) + "\n")
    load_calibrations.cache_clear()


DISTANCES_FILE = Path(__file__).with_name("data") / "lfw_distances.npz"


def _distances_key(detector: str, metric: str, flip_tta: bool) -> str:
    return f"{detector}|{metric}|{'flip' if flip_tta else 'plain'}"


def lfw_distances(detector: str, metric: str, flip_tta: bool = False, path: Path = DISTANCES_FILE):
    """``(distances, same)`` of LFW pairs.txt's 6,000 pairs for this configuration, or None.

    Lets a page show where one distance sits among LFW's genuine and impostor distances.
    """
    if not path.exists():
        return None
    with np.load(path) as data:
        key = _distances_key(detector, metric, flip_tta)
        if key not in data:
            return None
        return data[key].astype(np.float64), data["same"].astype(bool)


def write_lfw_distances(table: dict[tuple[str, str, bool], np.ndarray], same, path: Path = DISTANCES_FILE) -> None:
    arrays = {_distances_key(*key): np.asarray(d, np.float32) for key, d in table.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, same=np.asarray(same, bool), **arrays)
