"""dlib's ResNet as an ONNX graph built from dlib's own weights, run by onnxruntime (``dlib-onnx``).

Contract: :func:`build_onnx_model` turns the network :func:`~facecore.embedding.dlib_resnet.read_dlib_network`
reads into an ONNX ``ModelProto`` (opset 17) with the same weights the Keras port loads
(:func:`~facecore.embedding.dlib_resnet.network_weights`: each conv with its affine folded in). Input
``chip_rgb``: ``(N, 150, 150, 3)`` float32 RGB 0..255, NHWC (transposed inside the graph); output
``embedding``: ``(N, 128)`` float32, the vectors of dlib's ``compute_face_descriptor`` (same scale, no
normalisation). Every shape but the batch is static, so the pads of the residual adds are constants.
:func:`dlib_onnx_bytes` keeps the serialized graph in memory (once per process and weights file);
nothing is ever written to disk. The graph exists so that onnxruntime can be measured as a CPU runtime
next to TensorFlow and JAX (bench/arcface_throughput.py); tests/test_dlib_onnx.py checks it against
dlib and the Keras port, whose LFW calibration it shares (``calibration_twin``).

The layers follow ``dlib_resnet.build_keras_model``: input mean subtracted and divided by 256; 7x7/2
conv + ReLU; 3x3/2 max pool ('valid'); residual blocks (3x3 conv + ReLU, 3x3 conv) whose strided convs
are 'valid' (dlib pads only stride-1 convs, by k // 2); the shortcut of a downsampling block is a 2x2/2
average pool; dlib's add_prev zero-pads the smaller tensor at the END of rows, cols and channels; ReLU
after the add; global average pool; a 256x128 matrix without bias.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from facecore.embedding.base import EMBEDDERS, Embedder
from facecore.embedding.dlib_resnet import INPUT_SIZE, STAGES, DlibFormatError, DlibNetwork

OPSET = 17
IR_VERSION = 8  # the lowest IR version that carries opset 17: readable by any recent onnxruntime


class _GraphBuilder:
    """Collects nodes and initializers; tracks each NCHW tensor's static (C, H, W) shape."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, hint: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], hint: str, **attributes) -> str:
        from onnx import helper

        output = self.name(hint)
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output


def _pooled(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


def build_onnx_model(net: DlibNetwork):
    """The ONNX ``ModelProto`` of ``net`` (see the module docstring for its input and output)."""
    from onnx import TensorProto, helper

    from facecore.embedding.dlib_resnet import network_weights

    convs, fc_matrix = network_weights(net)
    weights = iter(convs)
    g = _GraphBuilder()

    Shape = tuple[int, int, int]  # (C, H, W) of one NCHW tensor, batch left out

    def conv(x: str, shape: Shape, filters: int, size: int, stride: int, relu: bool, hint: str):
        w = next(weights)
        if w.kernel.shape[-1] != filters or w.kernel.shape[0] != size or w.stride != stride:
            raise DlibFormatError(f"layer {hint}: weights do not match the expected architecture")
        pad = size // 2 if stride == 1 else 0  # dlib pads stride-1 convs only; strided ones are 'valid'
        kernel = g.const(f"{hint}_w", w.kernel.transpose(3, 2, 0, 1).astype(np.float32))
        bias = g.const(f"{hint}_b", w.bias.astype(np.float32))
        y = g.node("Conv", [x, kernel, bias], hint, kernel_shape=[size, size], strides=[stride, stride],
                   pads=[pad] * 4)  # fmt: skip
        _, h, wd = shape
        out = (filters, _pooled(h + 2 * pad, size, stride), _pooled(wd + 2 * pad, size, stride))
        return (g.node("Relu", [y], f"{hint}_relu") if relu else y), out

    def pad_to(x: str, shape: Shape, target: Shape, hint: str) -> str:
        ends = [t - s for t, s in zip(target, shape, strict=True)]
        if not any(ends):
            return x
        # ONNX's pads: the begins of N, C, H, W (all 0: dlib pads at the end), then the ends.
        pads = g.const(f"{hint}_pads", np.asarray([0, 0, 0, 0, 0, *ends], np.int64))
        return g.node("Pad", [x, pads], hint, mode="constant")

    def residual(x: str, shape: Shape, filters: int, downsample: bool, hint: str):
        stride = 2 if downsample else 1
        y, y_shape = conv(x, shape, filters, 3, stride, True, f"{hint}_conv1")
        y, y_shape = conv(y, y_shape, filters, 3, 1, False, f"{hint}_conv2")
        short, s_shape = x, shape
        if downsample:
            short = g.node("AveragePool", [x], f"{hint}_pool", kernel_shape=[2, 2], strides=[2, 2])
            s_shape = (shape[0], _pooled(shape[1], 2, 2), _pooled(shape[2], 2, 2))
        target = tuple(max(a, b) for a, b in zip(y_shape, s_shape, strict=True))
        y = pad_to(y, y_shape, target, f"{hint}_pad_y")
        short = pad_to(short, s_shape, target, f"{hint}_pad_shortcut")
        added = g.node("Add", [y, short], f"{hint}_add")
        return g.node("Relu", [added], f"{hint}_out"), target

    mean = g.const("dlib_mean", np.asarray(net.input_mean_rgb, np.float32))
    scale = g.const("dlib_scale", np.asarray(1 / 256, np.float32))  # a power of two: exact as a product
    x = g.node("Mul", [g.node("Sub", ["chip_rgb", mean], "centred"), scale], "scaled")
    x = g.node("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    x, shape = conv(x, (3, INPUT_SIZE, INPUT_SIZE), 32, 7, 2, True, "stem_conv")
    x = g.node("MaxPool", [x], "stem_pool", kernel_shape=[3, 3], strides=[2, 2])
    shape = (shape[0], _pooled(shape[1], 3, 2), _pooled(shape[2], 3, 2))
    for stage, (filters, blocks, downsample) in enumerate(STAGES):
        for index in range(blocks):
            x, shape = residual(x, shape, filters, downsample and index == 0, f"stage{stage}_block{index}")
    if next(weights, None) is not None:
        raise DlibFormatError("more conv layers than the architecture has")
    x = g.node("Flatten", [g.node("GlobalAveragePool", [x], "average")], "flat")
    matrix = g.const("embedding_matrix", fc_matrix.astype(np.float32))
    g.nodes.append(helper.make_node("MatMul", [x, matrix], ["embedding"], name="embedding"))
    graph = helper.make_graph(
        g.nodes,
        "dlib_resnet_v1",
        [helper.make_tensor_value_info("chip_rgb", TensorProto.FLOAT, ["N", INPUT_SIZE, INPUT_SIZE, 3])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", fc_matrix.shape[1]])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="facecore")
    model.ir_version = IR_VERSION
    return model


@functools.lru_cache(maxsize=2)
def dlib_onnx_bytes(path: str | None = None) -> bytes:
    """The serialized graph of dlib's weights file (default: face_recognition_models'), built once."""
    from facecore.embedding.dlib_resnet import dlib_model_path, read_dlib_network

    return build_onnx_model(read_dlib_network(path or dlib_model_path())).SerializeToString()


def load_onnx_model(path: str | Path | None = None):
    """The ONNX ``ModelProto`` of dlib's weights file (parsed from the in-memory cache)."""
    import onnx

    return onnx.load_from_string(dlib_onnx_bytes(str(path) if path else None))


@EMBEDDERS.register("dlib-onnx")
class DlibOnnxEmbedder(Embedder):
    """dlib's ResNet under onnxruntime (CPU), from a graph built from the weights the Keras port uses."""

    summary = (
        "dlib's ResNet run by onnxruntime (CPU) from a graph built from the same weights: "
        "measured as a CPU runtime next to TensorFlow and JAX"
    )
    order = 22
    model_version = "dlib_resnet_v1-onnx"
    # The same weights as the Keras port (tests/test_dlib_onnx.py: cosine >= 0.9999999 against it).
    calibration_twin = "dlib-keras"

    def __init__(
        self, *, flip_tta: bool = False, batch_size: int = 32, threads: int | None = None, spinning: bool = True
    ) -> None:
        """``threads`` and ``spinning``: as :func:`facecore.insightface_files.onnx_session`."""
        super().__init__(flip_tta=flip_tta)
        from facecore.insightface_files import onnx_session

        self.batch_size = batch_size
        self._session = onnx_session(dlib_onnx_bytes(), threads, spinning)
        self._input = self._session.get_inputs()[0].name

    def _embed(self, chips: np.ndarray) -> np.ndarray:
        batches = (chips[start : start + self.batch_size] for start in range(0, len(chips), self.batch_size))
        chunks = [self._session.run(None, {self._input: batch.astype(np.float32)})[0] for batch in batches]
        return np.concatenate(chunks).astype(np.float32)
