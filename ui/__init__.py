"""Streamlit helpers shared by the dashboard's pages (widgets and drawing only; the work is in facecore).

``settings`` (the sidebar), ``resources`` (the cached pipeline, gallery and embedding cache),
``inputs`` (photos and the face picker), ``data`` (which LFW is used, the download), ``drawing``,
``charts``, ``feedback`` (errors, flashes, progress) and ``face_sets`` (labelled faces for the analysis
pages).
"""

import cv2

# OpenCV's worker threads spin while TensorFlow, dlib and other sessions hold the cores: in the
# server a 2,000 px resize took ~100 ms with them against ~10 ms without. Sessions give the
# parallelism here, so OpenCV runs on the calling thread. Set on the first import of any ui module
# (app.py imports ui.settings before any page runs).
cv2.setNumThreads(1)
