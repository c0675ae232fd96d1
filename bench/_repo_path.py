"""Put the repository root on ``sys.path`` so ``python bench/<script>.py`` can import facecore.

A script run by path gets only its own folder on ``sys.path``; importing this module first
(``import _repo_path  # noqa: F401``) adds the folder above it.
"""

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
