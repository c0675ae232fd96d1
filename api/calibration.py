"""What decides an API answer, and the confidence beside each distance.

Contract: :func:`deciding` is the one place the API chooses its threshold. In order: the request's
``?threshold=``; else the gallery's active operating point for the engine's configuration
(``facecore.gallery.operating_points``, read on every request, so a change made by the dashboard or
the CLI applies at once and survives restarts); else ``FACECORE_API_THRESHOLD`` when set; else
``facecore.verification.thresholds.default_threshold``. The distributions used for confidences are
those of the active operating point, else LFW pairs.txt's for a calibrated default (none otherwise).
"""

from __future__ import annotations

from dataclasses import replace

from api.config import METRIC
from api.engine import Engine
from api.schemas_calibration import ConfidenceOut
from facecore.gallery.operating_points import REQUEST_NAME, SERVER_SETTING_NAME, OperatingPoints
from facecore.verification.operating_points import Deciding, deciding_threshold, lfw_default


def deciding(engine: Engine, override: float | None = None) -> Deciding:
    """The threshold this request decides with, its name and source, and the calibration set behind it."""
    config = engine.pipeline.config
    active = OperatingPoints(engine.gallery.database).active(config, METRIC)
    if active is None and engine.config.threshold is not None:
        chosen = Deciding(engine.threshold, SERVER_SETTING_NAME, engine.threshold_source, lfw_default(config, METRIC).point)
    else:
        chosen = deciding_threshold(config, METRIC, active)
    if override is None:
        return chosen
    return replace(chosen, threshold=float(override), name=REQUEST_NAME, source=f"{override:g}: the request's ?threshold=")


def confidence_out(
    chosen: Deciding, distance: float | None, *, statistic: str = "distance", comparisons: int = 1,
    search: bool = False,
) -> ConfidenceOut | None:
    """The confidence at ``distance`` on the deciding calibration set (None without distance or data).

    ``statistic`` and ``comparisons`` say that ``distance`` aggregates several (a voters' mean, median or
    nearest); ``search`` that it is the nearest face of a gallery search. The sentence then says what the
    per-comparison rates mean for it.
    """
    found = None if distance is None else chosen.confidence(distance)
    if found is None:
        return None
    found = found.per_search() if search else found.of_statistic(statistic, comparisons)
    return ConfidenceOut(
        false_accept_rate=found.far,
        impostors_at_or_below=found.impostors_at_or_below,
        impostors=found.impostors,
        genuine_accept_rate=found.gar,
        genuine_at_or_below=found.genuine_at_or_below,
        genuine=found.genuine,
        calibration_set=found.set_name,
        sentence=found.sentence(),
    )
