"""Shared fixtures: every test that needs real faces finds them through ``shared_data``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    override = os.environ.get("FACECORE_SHARED_DATA")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or ``$FACECORE_SHARED_DATA``): LFW, faces_small, faces_group."""
    root = _shared_data_dir()
    if not (root / "faces_small").is_dir() or not (root / "sklearn" / "lfw_home").is_dir():
        pytest.skip(f"real face data not found at {root} (set FACECORE_SHARED_DATA to its folder)")
    return root


@pytest.fixture(scope="session")
def lfw_home(shared_data: Path) -> Path:
    """The data home in scikit-learn's layout (holds ``lfw_home/``). Read-only."""
    return shared_data / "sklearn"


@pytest.fixture(scope="session")
def faces_small(shared_data: Path) -> dict[str, list[Path]]:
    """``{person: [photo, ...]}`` for the small multi-person sample set."""
    root = shared_data / "faces_small"
    return {d.name: sorted(d.glob("*.jpg")) for d in sorted(root.iterdir()) if d.is_dir()}


@pytest.fixture(scope="session")
def faces_group(shared_data: Path) -> list[Path]:
    return sorted((shared_data / "faces_group").glob("*.jpg"))
