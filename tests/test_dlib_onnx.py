"""``dlib-onnx`` (dlib's ResNet as an ONNX graph built from dlib's weights, under onnxruntime) against
dlib itself (the oracle) and the Keras port, on real LFW faces cut by dlib's own pipeline."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest

from facecore.embedding import EMBEDDERS, get_embedder
from facecore.embedding.dlib_onnx import IR_VERSION, OPSET, load_onnx_model
from tests.conftest import N_ORACLE_FACES
from tests.test_architecture import REPO

# The Keras port's bars (tests/test_embedding.py). Measured on the bundled mini LFW's 60 faces (onnxruntime
# 1.32, 2 threads): max abs diff 3.9e-7 vs dlib and vs the Keras port; cosine (in float64) 1 - 3e-13 vs
# both. The cosine is computed in float64: in float32 its own rounding (~1e-7) shows, e.g. 0.99999976
# for vectors 3.9e-7 apart, which says nothing about the vectors.
MIN_COSINE = 0.9999999
MAX_ABS_DIFF = 1e-6




@pytest.fixture(scope="module")
def onnx_vectors(dlib_chips: np.ndarray) -> np.ndarray:
    return get_embedder("dlib-onnx", threads=2).embed(dlib_chips)


def _assert_same(vectors: np.ndarray, reference: np.ndarray) -> None:
    a, b = vectors.astype(np.float64), reference.astype(np.float64)
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    diff = float(np.abs(a - b).max())
    worst = f"1 - min cosine {1 - cosine.min():.1e}, max abs diff {diff:.1e}"
    assert cosine.min() >= MIN_COSINE and diff < MAX_ABS_DIFF, worst


def test_registered_as_a_cpu_runtime_with_its_own_version() -> None:
    cls, keras = EMBEDDERS.get("dlib-onnx"), EMBEDDERS.get("dlib-keras")
    assert not cls.pretrained and (cls.dimension, cls.chip, cls.chip_size) == (keras.dimension, keras.chip, 150)
    versions = {EMBEDDERS.get(name).version_for() for name in ("dlib-onnx", "dlib-keras", "dlib")}
    assert len(versions) == 3 and cls.version_for(flip_tta=True) == "dlib_resnet_v1-onnx+flip"
    assert "onnxruntime" in cls.summary


def test_graph_is_valid_with_static_shapes_but_the_batch() -> None:
    model = load_onnx_model()
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == OPSET and model.ir_version == IR_VERSION
    dims = lambda value: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]  # noqa: E731
    assert dims(model.graph.input[0]) == ["N", 150, 150, 3] and dims(model.graph.output[0]) == ["N", 128]
    ops = {node.op_type for node in model.graph.node}
    assert {"Transpose", "Conv", "MaxPool", "AveragePool", "Pad", "Add", "GlobalAveragePool", "MatMul"} <= ops
    assert "Shape" not in ops  # pads are constants computed while building


def test_building_the_graph_loads_no_deep_learning_framework() -> None:
    code = (
        "import sys; from facecore.embedding.dlib_onnx import dlib_onnx_bytes; dlib_onnx_bytes();"
        "print(','.join(m for m in ('tensorflow', 'keras', 'jax', 'torch', 'dlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_matches_dlib_oracle(dlib_chips: np.ndarray, onnx_vectors: np.ndarray) -> None:
    assert onnx_vectors.shape == (N_ORACLE_FACES, 128) and onnx_vectors.dtype == np.float32
    _assert_same(onnx_vectors, get_embedder("dlib").embed(dlib_chips))


def test_matches_keras_port(dlib_chips: np.ndarray, onnx_vectors: np.ndarray) -> None:
    _assert_same(onnx_vectors, get_embedder("dlib-keras").embed(dlib_chips))


def test_batching_threads_and_spinning_keep_vectors(dlib_chips: np.ndarray, onnx_vectors: np.ndarray) -> None:
    other = get_embedder("dlib-onnx", batch_size=7, threads=1, spinning=False)
    np.testing.assert_allclose(other.embed(dlib_chips[:10]), onnx_vectors[:10], atol=1e-6)


def test_flip_tta_and_chip_shape(dlib_chips: np.ndarray, onnx_vectors: np.ndarray) -> None:
    tta = get_embedder("dlib-onnx", flip_tta=True, threads=2)
    mirrored = get_embedder("dlib-onnx", threads=2).embed(dlib_chips[:4, :, ::-1])
    np.testing.assert_allclose(tta.embed(dlib_chips[:4]), (onnx_vectors[:4] + mirrored) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="150, 150, 3"):
        tta.embed(np.zeros((1, 112, 112, 3), np.uint8))
