"""Operating points: a named threshold for one model configuration, where it came from, and its distributions.

Contract:

* An :class:`OperatingPoint` belongs to one configuration: the embedder's ``model_version`` (which
  includes flip TTA), the detector and the distance metric. It records its threshold, its source
  (``"LFW"`` or ``"own set"``), the set's name and size (pairs), the target it was chosen for
  (:data:`TARGETS`: ``"FAR <= 0.1%"`` and the other FAR levels, ``"EER"``, ``"max accuracy"``, or
  ``"manual"`` for a threshold picked by hand), and a sorted sample of the set's impostor and genuine
  distances (all of them up to :data:`MAX_STORED`; beyond that, evenly spaced order statistics).
* :func:`confidence_at` is the only place a distance becomes a confidence: the estimated false-accept
  rate at that distance is the fraction of the stored impostor distances that are ``<=`` it (the same
  ``<=`` as :func:`facecore.verification.decisions.accepts`), and the genuine-acceptance rate the
  fraction of genuine distances ``<=`` it. Both are empirical rates on the calibration set, reported
  with their counts; no probability beyond what the data support is claimed.
* :func:`deciding_threshold` picks what decides for a configuration: the active operating point when
  there is one, else :func:`facecore.verification.thresholds.default_threshold`, which, when it is LFW
  calibrated, comes with LFW pairs.txt's distances for the confidence.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import ArrayLike

from facecore.config import PipelineConfig
from facecore.verification.metrics import _check_pairs, best_accuracy_threshold, equal_error_rate, tar_at_far
from facecore.verification.thresholds import default_threshold, lfw_distances

#: What an operating point's threshold was chosen for (FAR levels as fractions).
FAR_TARGETS = {"FAR <= 1%": 0.01, "FAR <= 0.1%": 0.001, "FAR <= 0.01%": 0.0001}
TARGETS = (*FAR_TARGETS, "EER", "max accuracy", "manual")
SOURCES = ("LFW", "own set")
#: Distances stored per class; larger sets keep evenly spaced order statistics (quantiles).
MAX_STORED = 20_000
DEFAULT_NAME = "default"


@dataclass(frozen=True)
class OperatingPoint:
    """A named threshold for one configuration, its source and the sorted distances it was chosen on."""

    name: str
    model_version: str
    detector: str
    metric: str
    threshold: float
    source: str
    set_name: str
    set_size: int
    target: str
    impostor: np.ndarray = field(repr=False, compare=False)
    genuine: np.ndarray = field(repr=False, compare=False)
    created: float = 0.0
    active: bool = False

    def __post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > 100:
            raise ValueError("An operating point needs a name of 1 to 100 characters.")
        if not (math.isfinite(self.threshold) and self.threshold >= 0):
            raise ValueError(f"The threshold must be a finite distance >= 0, got {self.threshold}.")
        if self.source not in SOURCES:
            raise ValueError(f"Unknown source {self.source!r}; expected one of {', '.join(SOURCES)}.")
        if self.target not in TARGETS:
            raise ValueError(f"Unknown target {self.target!r}; expected one of {', '.join(TARGETS)}.")

    @property
    def caveat(self) -> str | None:
        """A sentence when the set is too small to measure the target's false-accept rate, else None.

        A set of n impostor pairs shows no FAR between 0 and 1/n, so a target below that is met by a
        threshold under every impostor distance, whose real rate the set cannot tell.
        """
        far = FAR_TARGETS.get(self.target)
        impostors = int(self.impostor.size)
        if far is None or impostors == 0 or impostors * far >= 1:
            return None
        return (
            f"'{self.target}' needs at least {math.ceil(1 / far):,} impostor pairs to be measured, and "
            f"'{self.set_name}' has {impostors:,}: its smallest non-zero false-accept rate is 1 in {impostors:,}, "
            "so this threshold only keeps out every stranger pair it has, and its real rate is not known. "
            "Score a larger set, or choose a target the set can show."
        )

    def describe(self) -> str:
        """One sentence: which threshold, chosen for what, on which set."""
        return (
            f"operating point '{self.name}': {self.threshold:.4f}, chosen for {self.target} on "
            f"{self.source} set '{self.set_name}' ({self.set_size:,} pairs), {self.detector} detector, "
            f"{self.model_version}, {self.metric} distance"
        )


def compact(distances: ArrayLike, max_size: int = MAX_STORED) -> np.ndarray:
    """The distances sorted (float64); beyond ``max_size``, that many evenly spaced order statistics."""
    d = np.sort(np.asarray(distances, dtype=np.float64).ravel())
    if d.size <= max_size:
        return d
    return d[np.round(np.linspace(0, d.size - 1, max_size)).astype(int)]


def choose_threshold(distances: ArrayLike, same: ArrayLike, target: str) -> float:
    """The threshold that meets ``target`` on these pairs (not for ``"manual"``)."""
    d, y = _check_pairs(distances, same)
    if target in FAR_TARGETS:
        return float(tar_at_far(d, y, FAR_TARGETS[target])[1])
    if target == "EER":
        return float(equal_error_rate(d, y)[1])
    if target == "max accuracy":
        return float(best_accuracy_threshold(d, y))
    raise ValueError(
        f"Unknown target {target!r}; a threshold can be chosen for {', '.join(TARGETS[:-1])} (or pass it, as 'manual')."
    )


def from_pairs(
    name: str,
    config: PipelineConfig,
    metric: str,
    distances: ArrayLike,
    same: ArrayLike,
    *,
    target: str,
    source: str,
    set_name: str,
    threshold: float | None = None,
) -> OperatingPoint:
    """An operating point chosen on labelled pairs for ``target`` (or at ``threshold`` for ``"manual"``)."""
    d, y = _check_pairs(distances, same)
    if target == "manual" and threshold is None:
        raise ValueError("A manual operating point needs its threshold.")
    value = float(threshold) if target == "manual" else choose_threshold(d, y, target)
    return OperatingPoint(
        name=name.strip(), model_version=config.model_version, detector=config.detector, metric=metric,
        threshold=value, source=source, set_name=set_name, set_size=int(d.size), target=target,
        impostor=compact(d[~y]), genuine=compact(d[y]), created=time.time(),
    )


@dataclass(frozen=True)
class Confidence:
    """What one distance means on the calibration set: false-accept and genuine-accept rates, with counts."""

    distance: float
    far: float
    impostors_at_or_below: int
    impostors: int
    gar: float
    genuine_at_or_below: int
    genuine: int
    set_name: str
    #: What else a reader needs to know about the number (see :meth:`of_statistic`, :meth:`per_search`).
    scope: str = ""

    def of_statistic(self, statistic: str, comparisons: int) -> Confidence:
        """These rates, read at the ``statistic`` (``"mean"``, ``"median"``, ...) of ``comparisons``
        distances: the calibration set's rates are of single comparisons, so the sentence says so."""
        if comparisons <= 1 or statistic == "distance":
            return self
        return replace(
            self,
            scope=f"These are the rates of one comparison, read at the {statistic} of {comparisons} "
            "distances; they describe this decision only roughly.",
        )

    def per_search(self) -> Confidence:
        """These rates for the nearest face of a gallery search: they are per comparison, and a search
        makes one comparison per gallery face."""
        return replace(
            self,
            scope="The rate is per comparison: a search compares the photo with every gallery face, so in a "
            "gallery of N faces about N times this rate of them are this close to a stranger.",
        )

    def sentence(self) -> str:
        """The rates in words, saying what they are measured on."""
        if self.impostors_at_or_below == 0:
            stranger = f"none of {self.impostors:,} stranger comparisons in '{self.set_name}' was this close (FAR under 1 in {self.impostors:,})"
        else:
            stranger = (
                f"a stranger is this close in 1 of {1 / self.far:,.0f} comparisons "
                f"({self.impostors_at_or_below:,} of {self.impostors:,} impostor pairs in '{self.set_name}')"
            )
        return (
            f"At distance {self.distance:.4f}, {stranger}; {100 * self.gar:.1f}% of genuine pairs "
            f"({self.genuine_at_or_below:,} of {self.genuine:,}) are this close or closer."
            + (f" {self.scope}" if self.scope else "")
        )


def confidence_at(point: OperatingPoint, distance: float) -> Confidence | None:
    """The empirical FAR and genuine-acceptance rate at ``distance`` on ``point``'s set (None without data)."""
    if point.impostor.size == 0 or point.genuine.size == 0:
        return None
    fp = int(np.searchsorted(point.impostor, distance, side="right"))
    tp = int(np.searchsorted(point.genuine, distance, side="right"))
    return Confidence(
        distance=float(distance), far=fp / point.impostor.size, impostors_at_or_below=fp,
        impostors=int(point.impostor.size), gar=tp / point.genuine.size, genuine_at_or_below=tp,
        genuine=int(point.genuine.size), set_name=point.set_name,
    )


@dataclass(frozen=True)
class Deciding:
    """What decides for a configuration: a threshold, the sentence saying where it comes from, and the
    operating point (a stored one, or the LFW calibration seen as one) whose distributions give confidences."""

    threshold: float
    name: str
    source: str
    point: OperatingPoint | None

    def confidence(self, distance: float) -> Confidence | None:
        return None if self.point is None else confidence_at(self.point, distance)


@functools.lru_cache(maxsize=16)
def lfw_default(config: PipelineConfig, metric: str) -> Deciding:
    """The default threshold, with LFW pairs.txt's distances when it is LFW calibrated (read once per configuration)."""
    choice = default_threshold(config, metric)
    stored = lfw_distances(config, metric) if choice.calibration is not None else None
    point = None
    if stored is not None:
        d, y = stored
        point = OperatingPoint(
            name=DEFAULT_NAME, model_version=config.model_version, detector=config.detector, metric=metric,
            threshold=choice.value, source="LFW", set_name="LFW pairs.txt", set_size=int(d.size),
            target="max accuracy", impostor=compact(d[~y]), genuine=compact(d[y]),
        )
    return Deciding(choice.value, DEFAULT_NAME, choice.source, point)


def deciding_threshold(config: PipelineConfig, metric: str, active: OperatingPoint | None) -> Deciding:
    """The active operating point when there is one, else the configuration's default."""
    if active is not None:
        return Deciding(active.threshold, active.name, active.describe(), active)
    return lfw_default(config, metric)
