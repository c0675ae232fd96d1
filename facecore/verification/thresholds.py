"""Decision thresholds with a stated source: LFW-calibrated where measured, a documented fallback elsewhere.

``facecore/data/calibration.json`` is written by ``--write-calibration`` runs of ``bench/lfw_benchmark.py``
(dlib with HOG and Haar) and ``bench/model_selection.py`` (MTCNN, SCRFD, ArcFace), each entry recording its
own command: one entry per embedder version x detector x metric, each the mean of the 10 thresholds
chosen on the training folds of LFW's pairs.txt (View 2), with the cross-validated accuracy of that
procedure on the held-out folds, plus the same configuration's LFW View 1 figures (added by
``tools/calibration_provenance.py``). Settings are chosen on View 1 and reported on View 2
(:func:`view1_choice`). An embedder that names a ``calibration_twin`` (an onnxruntime oracle computing
the same vectors as a Keras port) shares its twin's entries: every lookup goes through
:func:`calibration_version`, which maps its version to the twin's with the same suffixes (input
scaling, ``+flip``). :func:`default_threshold` is the one place that turns a pipeline configuration and
a metric into the threshold the dashboard, the API and the CLI decide with, and says where it comes from.

>>> from facecore.config import PipelineConfig
>>> choice = default_threshold(PipelineConfig(detector="hog"), "euclidean")
>>> choice.calibration is not None, round(choice.value, 3)
(True, 0.614)
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from facecore.config import PipelineConfig

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
CALIBRATION_FILE = DATA_DIR / "calibration.json"
DISTANCES_FILE = DATA_DIR / "lfw_distances.npz"
# dlib's published operating point for its embedder with euclidean distance.
DLIB_DEFAULT_THRESHOLD = 0.6

#: A plausible threshold range per metric, with a step (for sliders), wide enough for every pretrained
#: model: dlib's vectors have length ~1.45; ArcFace's are unit length (euclidean <= 2, cosine <= 2).
THRESHOLD_RANGES = {
    "euclidean": (0.0, 2.0, 0.005),
    "sqeuclidean": (0.0, 4.0, 0.005),
    "cosine": (0.0, 1.2, 0.001),
    "l1": (0.0, 40.0, 0.05),
}
# Used only when calibration.json has no entry, and for every model of your own (whose vectors LFW
# never measured: a starting point to tune, not a calibrated value). Only the euclidean value is
# published (by dlib); the others are rough equivalents of it for dlib's vectors (length ~1.45).
FALLBACK_THRESHOLDS = {
    "euclidean": DLIB_DEFAULT_THRESHOLD,
    "sqeuclidean": DLIB_DEFAULT_THRESHOLD**2,
    "cosine": 0.085,
    "l1": 5.0,
}


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
    #: The chip geometry the embedder read (``facecore.alignment.CHIP_VERSIONS``) and that geometry's
    #: version when the entry was measured; an entry whose version is not the current one is refused.
    #: Empty in files written before these were recorded (such entries are refused too).
    chip: str = ""
    alignment_version: str = ""
    #: The command that measured the entry (so it can be re-run), without machine paths.
    command: str = ""
    #: The same configuration on LFW View 1 (threshold fitted on pairsDevTrain; accuracy and AUC on
    #: pairsDevTest), where settings are chosen (:func:`view1_choice`), and where those figures come from.
    #: Filled in by ``tools/calibration_provenance.py``; None/"" when View 1 was not measured.
    view1_accuracy: float | None = None
    view1_auc: float | None = None
    view1_source: str = ""

    def describe(self) -> str:
        """One line for a settings panel: where the threshold comes from and what the procedure achieved."""
        return (
            f"{self.threshold:.3f}: mean of the fold thresholds on {self.dataset} ({self.protocol}), "
            f"{self.detector} detector, {self.metric} distance{', flip TTA' if self.flip_tta else ''}; "
            f"cross-validated accuracy of the procedure {100 * self.accuracy:.2f}% +- {100 * self.accuracy_std:.2f}"
        )

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Threshold:
    """A threshold value, the sentence saying where it comes from, and its calibration when it has one."""

    value: float
    source: str
    calibration: Calibration | None = None


@functools.lru_cache(maxsize=4)
def load_calibrations(path: Path = CALIBRATION_FILE) -> tuple[Calibration, ...]:
    if not path.exists():
        return ()
    return tuple(Calibration(**entry) for entry in json.loads(path.read_text()))


def current_alignment_version(chip: str, detector: str | None = None) -> str:
    """The alignment version the embedding cache and the pipeline use today for ``chip`` cut on the faces
    of ``detector`` (on its own landmarks when it gives them, as the pipeline does by default)."""
    from facecore.alignment import CHIP_VERSIONS, alignment_version
    from facecore.detection import DETECTORS

    if chip not in CHIP_VERSIONS:
        return ""
    own_points = detector in DETECTORS and DETECTORS.get(detector).gives_landmarks
    return alignment_version(chip, detector_landmarks=own_points)


def stale_reason(entry: Calibration, chip: str | None = None) -> str | None:
    """Why ``entry`` must not be used (its chips were aligned differently from today's), or None.

    ``chip`` is the geometry the embedder reads today (the entry's own record when not given).
    """
    chip = chip or entry.chip
    current = current_alignment_version(chip, entry.detector)
    if chip and entry.chip == chip and entry.alignment_version and entry.alignment_version == current:
        return None
    measured = entry.alignment_version or "an unrecorded alignment version"
    return (
        f"the stored LFW calibration for {entry.embedder}, {entry.detector}, {entry.metric} was measured on "
        f"{entry.chip or 'unrecorded'} chips ({measured}), but this model's {chip or 'unknown'} chips are now "
        f"{current or 'unknown'}, so it is not used; re-run "
        f"`{entry.command or 'python bench/lfw_benchmark.py --write-calibration'}`"
    )


def calibration_version(model_version: str) -> str:
    """The embedder version whose LFW calibration applies to vectors of ``model_version``.

    Its own, except for an embedder with a ``calibration_twin``: then the twin's version with the same
    suffixes (``"arcface_w600k_mbf-l2-onnx+unit+flip"`` -> ``"arcface_w600k_mbf-l2-keras+unit+flip"``).
    """
    from facecore.embedding import EMBEDDERS

    for name in EMBEDDERS.names():
        cls = EMBEDDERS.get(name)
        if cls.calibration_twin is None:
            continue
        base = cls.model_version_for()
        if model_version == base or model_version.startswith(base + "+"):
            return EMBEDDERS.get(cls.calibration_twin).model_version_for() + model_version[len(base) :]
    return model_version


def _twin(config: PipelineConfig) -> str | None:
    from facecore.embedding import EMBEDDERS

    return EMBEDDERS.get(config.embedder).calibration_twin


def has_lfw_calibration(config: PipelineConfig) -> bool:
    """Whether LFW calibrations ship for this model: a pretrained one, or one sharing a pretrained twin's."""
    from facecore.embedding import EMBEDDERS

    return config.pretrained or bool(_twin(config) and EMBEDDERS.get(_twin(config)).pretrained)


def _stored_entry(model_version: str, detector: str, metric: str, path: Path) -> Calibration | None:
    model_version = calibration_version(model_version)
    for entry in load_calibrations(path):
        if (entry.embedder, entry.detector, entry.metric) == (model_version, detector, metric):
            return entry
    return None


def find_calibration(
    model_version: str, detector: str, metric: str, *, chip: str | None = None, path: Path = CALIBRATION_FILE
) -> Calibration | None:
    """The entry measured with exactly this embedder version (flip TTA included; a twin's version is
    mapped by :func:`calibration_version`), detector and metric.

    None when there is none, and when the entry's alignment version is not the current one for ``chip``
    (the embedder's chip geometry; the entry's own record when not given): see :func:`stale_reason`.
    """
    entry = _stored_entry(model_version, detector, metric, path)
    if entry is None or stale_reason(entry, chip) is not None:
        return None
    return entry


#: Tie-break between configurations with equal View 1 figures (euclidean, squared euclidean and cosine
#: order unit-length vectors alike): the metric listed first wins, as in bench/model_selection.py's rows.
_METRIC_PREFERENCE = tuple(FALLBACK_THRESHOLDS)


def view1_choice(embedder: str, path: Path = CALIBRATION_FILE) -> Calibration | None:
    """A registered embedder's configuration chosen on LFW View 1, among the stored (dashboard) ones.

    The highest View 1 accuracy (threshold fitted on pairsDevTrain, scored on pairsDevTest), then the
    highest View 1 AUC, among the current entries (any detector, metric, flip TTA) that have View 1
    figures. Its ``accuracy``, ``auc`` and ``eer`` are View 2's (pairs.txt, 10 folds): reported on pairs
    that played no part in choosing it. None when no current entry has View 1 figures.
    """
    from facecore.embedding import EMBEDDERS

    cls = EMBEDDERS.get(embedder)
    base = calibration_version(cls.model_version_for())
    entries = [
        e
        for e in load_calibrations(path)
        if e.embedder.split("+")[0] == base and e.view1_accuracy is not None and stale_reason(e, cls.chip) is None
    ]
    return max(
        entries,
        key=lambda e: (e.view1_accuracy, e.view1_auc, -_METRIC_PREFERENCE.index(e.metric)),
        default=None,
    )


def _chip(config: PipelineConfig) -> str:
    from facecore.embedding import EMBEDDERS

    return EMBEDDERS.get(config.embedder).chip


def calibrated(config: PipelineConfig, metric: str, path: Path = CALIBRATION_FILE) -> Calibration | None:
    """The LFW calibration of this configuration, or None when it was never measured (or is stale).

    Calibrations were measured with each detector's own landmarks; a config that aligns with dlib's
    landmarks instead, or any model of your own, has none. An entry measured on chips of another
    alignment version than today's is refused (:func:`stale_reason`).
    """
    if not config.use_detector_landmarks:
        return None
    return find_calibration(config.model_version, config.detector, metric, chip=_chip(config), path=path)


def default_threshold(config: PipelineConfig, metric: str = "euclidean", path: Path = CALIBRATION_FILE) -> Threshold:
    """The threshold to decide with for ``config`` and ``metric``: calibrated when measured, else a fallback."""
    if metric not in FALLBACK_THRESHOLDS:
        raise ValueError(f"unknown metric {metric!r}; choose one of: {', '.join(FALLBACK_THRESHOLDS)}")
    twin = _twin(config)
    shared = (
        f" Calibrated on {twin}, which computes the same vectors as {config.embedder} (the same weights "
        "under another runtime)."
        if twin
        else ""
    )
    cal = calibrated(config, metric, path)
    if cal is not None:
        return Threshold(float(cal.threshold), f"{cal.describe()}.{shared}" if twin else cal.describe(), cal)
    stale = ""
    if has_lfw_calibration(config) and config.use_detector_landmarks:
        chip = _chip(config)
        entry = _stored_entry(config.model_version, config.detector, metric, path)
        if entry is not None:
            stale = f" Not calibrated: {stale_reason(entry, chip)}."
        other = next(
            (
                e for e in load_calibrations(path)
                if e.embedder == calibration_version(config.model_version)
                and e.metric == metric
                and stale_reason(e, chip) is None
            ),
            None,
        )
        if other is not None:
            return Threshold(
                float(other.threshold),
                f"{other.threshold:.3f}: calibrated for this model with the {other.detector} detector "
                f"(LFW pairs.txt, 10-fold, mean of the fold thresholds); not measured with "
                f"{config.detector}.{shared}{stale}",
            )
    value = FALLBACK_THRESHOLDS[metric]
    if not has_lfw_calibration(config):
        return Threshold(
            value,
            f"{value:.3f} (dlib's fallback), not calibrated for {config.model_label}; "
            "tune it in the Threshold lab on gallery pairs.",
        )
    if metric == "euclidean":
        why = "dlib's published threshold for its embedder with euclidean distance"
    else:
        why = f"a rough equivalent of dlib's {DLIB_DEFAULT_THRESHOLD} for {metric} distance, not measured"
    return Threshold(
        value,
        f"{value:.3f}: {why}. No LFW calibration for {config.describe()} with {metric} distance yet "
        "(a --write-calibration run of bench/lfw_benchmark.py or bench/model_selection.py writes it)."
        f"{stale}",
    )


def clamp_threshold(value: float, metric: str) -> float:
    """``value`` moved into the metric's plausible range (:data:`THRESHOLD_RANGES`)."""
    low, high, _ = THRESHOLD_RANGES[metric]
    return float(min(max(value, low), high))


def write_calibrations(entries: list[Calibration], path: Path = CALIBRATION_FILE) -> None:
    """Store ``entries``, replacing those of the same embedder version, detector and metric."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = {(e.embedder, e.detector, e.metric) for e in entries}
    kept = [e for e in load_calibrations(path) if (e.embedder, e.detector, e.metric) not in new]
    ordered = sorted([*kept, *entries], key=lambda e: (e.embedder, e.detector, e.metric))
    path.write_text(json.dumps([e.as_dict() for e in ordered], indent=1) + "\n")
    load_calibrations.cache_clear()


def _distances_key(model_version: str, detector: str, metric: str) -> str:
    return f"{model_version}|{detector}|{metric}"


def lfw_distances(config: PipelineConfig, metric: str, path: Path = DISTANCES_FILE):
    """``(distances, same)`` of LFW pairs.txt's 6,000 pairs for this configuration, or None.

    Stored only for the calibrated configurations (the file holds the pretrained model's distances), so
    a page can show where one distance sits among LFW's genuine and impostor distances.
    """
    if calibrated(config, metric) is None or not path.exists():
        return None
    with np.load(path) as data:
        key = _distances_key(calibration_version(config.model_version), config.detector, metric)
        if key not in data:
            return None
        return data[key].astype(np.float64), data["same"].astype(bool)


def write_lfw_distances(table: dict[tuple[str, str, str], np.ndarray], same, path: Path = DISTANCES_FILE) -> None:
    """Store ``{(model_version, detector, metric): distances}`` of pairs.txt, keeping other entries."""
    arrays = {}
    if path.exists():
        with np.load(path) as old:
            arrays = {key: old[key] for key in old.files if key != "same"}
    arrays.update({_distances_key(*key): np.asarray(d, np.float32) for key, d in table.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, same=np.asarray(same, bool), **arrays)
