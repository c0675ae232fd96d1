"""Face detection: detectors behind one interface, picked by name from ``DETECTORS``.

All detectors take an (H, W, 3) uint8 RGB image (``facecore.images.load_image``) and return
``facecore.types.Face``s in that image's pixel coordinates, largest first. Each detector is one module
here that registers itself (``@DETECTORS.register("name")``); ``DETECTORS.names()`` finds them all.
Scores are each detector's own confidence and are not comparable across detectors. TensorFlow is
imported only when an MTCNN detector is built.
"""

from facecore.detection.base import (
    DETECTORS,
    INTERACTIVE_MAX_SIDE,
    Detector,
    detect_faces,
    get_detector,
)

__all__ = ["DETECTORS", "INTERACTIVE_MAX_SIDE", "Detector", "detect_faces", "get_detector"]
