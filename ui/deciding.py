"""Which threshold decides in the dashboard: the gallery's active operating point, else the default.

Kept apart from :mod:`ui.operating_point` (which draws) so that :mod:`ui.settings` can use it without
an import cycle. The rule itself is ``facecore.verification.operating_points.deciding_threshold``.
"""

from __future__ import annotations

from facecore.config import PipelineConfig
from facecore.gallery.operating_points import OperatingPoints
from facecore.verification.operating_points import Deciding, deciding_threshold
from ui.resources import load_gallery


def stored_points() -> OperatingPoints:
    """The operating points of the gallery the pages share."""
    return OperatingPoints(load_gallery().database)


def deciding(config: PipelineConfig, metric: str) -> Deciding:
    """The active operating point of this configuration, else its default (also when the gallery is unreadable)."""
    try:
        active = stored_points().active(config, metric)
    except Exception:  # an unreadable gallery must not stop a page: decide with the default
        active = None
    return deciding_threshold(config, metric, active)
