"""Bodies for operating points and for the confidence beside each distance (issue 17)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from facecore.verification.operating_points import SOURCES, TARGETS


class ConfidenceOut(BaseModel):
    """Empirical rates on the set the deciding threshold was calibrated on; not a probability of identity."""

    false_accept_rate: float = Field(description="Fraction of the set's impostor pairs at or below this distance.")
    impostors_at_or_below: int
    impostors: int
    genuine_accept_rate: float = Field(description="Fraction of the set's genuine pairs at or below this distance.")
    genuine_at_or_below: int
    genuine: int
    calibration_set: str
    sentence: str = Field(description="The same in words: 'a stranger is this close in 1 of N comparisons'.")


class DecidedBy(BaseModel):
    """Which threshold decided and where it came from."""

    operating_point: str = Field(
        description="The active operating point's name; 'default' for the configuration's default threshold, "
        "'request' for ?threshold=, 'FACECORE_API_THRESHOLD' for the server's setting."
    )
    threshold_source: str = Field(description="Where the threshold comes from, in words.")


class OperatingPointIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    target: str = Field(description=f"One of: {', '.join(TARGETS)}.")
    source: str = Field(default="own set", description=f"One of: {', '.join(SOURCES)}.")
    set_name: str = Field(min_length=1, max_length=200)
    distances: list[float] = Field(max_length=200_000, description="One distance per labelled pair (euclidean).")
    same: list[bool] = Field(max_length=200_000, description="True for a genuine pair, one per distance.")
    threshold: float | None = Field(default=None, description="Required for target 'manual'.")
    activate: bool = False


class OperatingPointOut(BaseModel):
    name: str
    model_version: str
    detector: str
    metric: str
    threshold: float
    source: str
    set_name: str
    set_size: int
    target: str
    active: bool
    created: float
    description: str
    caveat: str | None = Field(
        default=None, description="Set when the set is too small to measure the target's false-accept rate."
    )


class ActivateIn(BaseModel):
    name: str | None = Field(description="The operating point to decide with; null for the default threshold.")
