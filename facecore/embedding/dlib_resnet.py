"""dlib's ResNet face-embedding network, rebuilt in Keras 3 from its own ``.dat`` weights.

The weights are read at load time from ``dlib_face_recognition_resnet_model_v1.dat`` (shipped by
the ``face_recognition_models`` package) by a reader of dlib's serialization format, written from
dlib 20.0.1's ``serialize.h``, ``dnn/core.h``, ``dnn/layers.h`` and ``dnn/input.h``. The model uses
Keras layers and ``keras.ops`` only, so it runs on TensorFlow, JAX or PyTorch backends alike.

Network (dlib's ``dnn_face_recognition_ex.cpp``): 7x7/2 conv, 3x3/2 max pool, residual stages
3x32, down+3x64, down+2x128, down+2x256, down 256, global average pool, 128-D linear map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

INPUT_SIZE = 150
# dlib's input layer subtracts these and divides by 256 (see input_rgb_image_sized).
DLIB_MEAN_RGB = (122.782, 117.001, 104.298)
# (filters, number of residual blocks, first block downsamples) from the input side out.
STAGES = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))


class DlibFormatError(ValueError):
    """The file is not the dlib network this module knows how to read."""


# ----------------------------------------------------------------------------- reading


class _Reader:
    """Reads dlib's serialized primitives from a bytes buffer."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def int(self) -> int:
        control = self.data[self.pos]
        size = control & 0x0F
        start = self.pos + 1
        value = int.from_bytes(self.data[start : start + size], "little")
        self.pos = start + size
        return -value if control & 0x80 else value

    def peek_int(self) -> int:
        saved = self.pos
        try:
            return self.int()
        finally:
            self.pos = saved

    def bool(self) -> bool:
        byte = self.data[self.pos : self.pos + 1]
        self.pos += 1
        if byte not in (b"0", b"1", b"\x00", b"\x01"):
            raise DlibFormatError(f"expected a bool at byte {self.pos - 1}, found {byte!r}")
        return byte in (b"1", b"\x01")

    def string(self) -> str:
        length = self.int()
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        return raw.decode("ascii", errors="replace")

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        return float(mantissa) * 2.0**exponent

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise DlibFormatError(f"unsupported tensor version {version} at byte {self.pos}")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos)
        self.pos += 4 * count
        return values.reshape(shape).astype(np.float32)

    def alias_tensor(self) -> tuple[int, ...]:
        if self.int() != 1:
            raise DlibFormatError(f"unsupported alias_tensor version at byte {self.pos}")
        return tuple(self.int() for _ in range(4))


@dataclass
class DlibLayer:
    """One computational layer as dlib stored it (tags and skips store nothing of their own)."""

    kind: str  # "con", "affine", "relu", "max_pool", "avg_pool", "add_prev", "fc"
    params: np.ndarray | None = None
    settings: dict[str, int] = field(default_factory=dict)


@dataclass
class DlibNetwork:
    input_mean_rgb: tuple[float, float, float]
    input_size: tuple[int, int]
    layers: list[DlibLayer]


def _read_layer(reader: _Reader, name: str) -> DlibLayer:
    if name in ("con_4", "con_5", "con_6"):
        params = reader.tensor()
        settings = {
            "filters": reader.int(),
            "nr": reader.int(),
            "nc": reader.int(),
            "stride_y": reader.int(),
            "stride_x": reader.int(),
            "padding_y": reader.int(),
            "padding_x": reader.int(),
        }
        reader.alias_tensor()  # filters view
        reader.alias_tensor()  # biases view
        for _ in range(4):  # learning-rate and weight-decay multipliers
            reader.float()
        if name in ("con_5", "con_6"):
            settings["use_bias"] = int(reader.bool())
        if name == "con_6":
            reader.bool()  # use_relu (a fused-relu flag, off in this model)
        return DlibLayer("con", params, settings)
    if name in ("affine_", "affine_2"):
        params = reader.tensor()
        reader.alias_tensor()  # gamma view
        reader.alias_tensor()  # beta view
        settings = {"mode": reader.int()}
        if name == "affine_2":
            settings["disabled"] = int(reader.bool())
        return DlibLayer("affine", params, settings)
    if name in ("relu_", "relu_2"):
        if name == "relu_2":
            reader.bool()
        return DlibLayer("relu")
    if name in ("max_pool_2", "avg_pool_2"):
        keys = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
        return DlibLayer(name[:-2], None, {key: reader.int() for key in keys})
    if name == "add_prev_":
        return DlibLayer("add_prev")
    if name in ("fc_2", "fc_3"):
        settings = {"outputs": reader.int(), "inputs": reader.int()}
        params = reader.tensor()
        reader.alias_tensor()
        reader.alias_tensor()
        settings["bias_mode"] = reader.int()
        for _ in range(4):
            reader.float()
        if name == "fc_3":
            settings["use_bias"] = int(reader.bool())
        return DlibLayer("fc", params, settings)
    raise DlibFormatError(f"unknown dlib layer {name!r} at byte {reader.pos}")


def _skip_add_layer_trailer(reader: _Reader, *, sample_expansion_factor: bool = False) -> None:
    """Skip what ``add_layer`` stores after its details: three flags, then (empty) tensors.

    The layer right over the input (add_layer version 3) also stores its sample expansion factor.
    """
    for _ in range(3):
        reader.bool()
    while not reader.at_end() and reader.peek_int() == 2:  # tensors start with version 2
        reader.tensor()
    if sample_expansion_factor:
        reader.int()


def read_dlib_network(path: str | Path) -> DlibNetwork:
    """Parse a dlib ``loss_metric`` network file into its layers, input side first."""
    reader = _Reader(Path(path).read_bytes())
    reader.int()  # add_loss_layer version
    loss = reader.string()
    if loss != "loss_metric_2":
        raise DlibFormatError(f"expected a loss_metric_2 network, found {loss!r}")
    reader.float()  # margin
    reader.float()  # distance threshold
    # Every layer writes its version before its sub-network, so the versions of all layers come
    # first, outermost in; versions are 1..3 and the input layer's name is longer than that.
    versions = []
    while reader.peek_int() <= 3:
        versions.append(reader.int())
    if reader.string() != "input_rgb_image_sized":
        raise DlibFormatError("expected an input_rgb_image_sized input layer")
    mean = (reader.float(), reader.float(), reader.float())
    size = (reader.int(), reader.int())
    layers = []
    while not reader.at_end():
        layers.append(_read_layer(reader, reader.string()))
        # The innermost version belongs to the add_layer over the input, the first one read here.
        _skip_add_layer_trailer(reader, sample_expansion_factor=len(layers) == 1 and versions[-1] >= 3)
    return DlibNetwork(input_mean_rgb=mean, input_size=size, layers=layers)


# ----------------------------------------------------------------------------- weights


@dataclass(frozen=True)
class ConvWeights:
    kernel: np.ndarray  # (kh, kw, in, out), Keras layout, affine folded in
    bias: np.ndarray  # (out,)
    stride: int


def _fold_conv_affine(conv: DlibLayer, affine: DlibLayer) -> ConvWeights:
    out = conv.settings["filters"]
    kh, kw = conv.settings["nr"], conv.settings["nc"]
    flat = conv.params.ravel()
    n_weights = flat.size - out
    filters = flat[:n_weights].reshape(out, n_weights // (out * kh * kw), kh, kw)
    bias = flat[n_weights:]
    gamma, beta = np.split(affine.params.ravel(), 2)
    kernel = (filters * gamma[:, None, None, None]).transpose(2, 3, 1, 0)
    return ConvWeights(np.ascontiguousarray(kernel), gamma * bias + beta, conv.settings["stride_y"])


def network_weights(net: DlibNetwork) -> tuple[list[ConvWeights], np.ndarray]:
    """Pair each conv with its affine (folded), and return the final (256, 128) matrix."""
    convs = [layer for layer in net.layers if layer.kind == "con"]
    affines = [layer for layer in net.layers if layer.kind == "affine"]
    fcs = [layer for layer in net.layers if layer.kind == "fc"]
    expected_convs = 1 + 2 * sum(blocks for _, blocks, _ in STAGES)
    if len(convs) != expected_convs or len(affines) != expected_convs or len(fcs) != 1:
        raise DlibFormatError(
            f"expected {expected_convs} conv+affine pairs and one fc layer, found "
            f"{len(convs)}, {len(affines)} and {len(fcs)}"
        )
    folded = [_fold_conv_affine(c, a) for c, a in zip(convs, affines, strict=True)]
    fc = fcs[0]
    matrix = fc.params.reshape(fc.settings["inputs"], fc.settings["outputs"])
    return folded, matrix


# ----------------------------------------------------------------------------- Keras model


def _keras():
    import keras  # deferred: importing a backend costs seconds

    return keras


def _pad_add_layer_class():
    keras = _keras()

    class ZeroPadAdd(keras.layers.Layer):
        """dlib's add_prev: zero-pad the smaller tensor at the end (rows, cols, channels), then add."""

        def compute_output_shape(self, shapes):
            a, b = shapes
            return (a[0],) + tuple(max(x, y) for x, y in zip(a[1:], b[1:], strict=True))

        def call(self, inputs):
            a, b = inputs
            target = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:], strict=True)]

            def pad(t):
                widths = [(0, 0)] + [(0, n - s) for n, s in zip(target, t.shape[1:], strict=True)]
                return keras.ops.pad(t, widths) if any(w for _, w in widths) else t

            return pad(a) + pad(b)

    return ZeroPadAdd


def build_keras_model(net: DlibNetwork):
    """Build the Keras model and load dlib's weights into it. Input: (N, 150, 150, 3) RGB 0..255."""
    keras = _keras()
    layers = keras.layers
    ZeroPadAdd = _pad_add_layer_class()
    convs, fc_matrix = network_weights(net)
    weights = iter(convs)

    def conv(x, filters: int, size: int, stride: int, name: str, activation: str | None = None):
        w = next(weights)
        if w.kernel.shape[-1] != filters or w.kernel.shape[0] != size or w.stride != stride:
            raise DlibFormatError(f"layer {name}: weights do not match the expected architecture")
        # dlib pads only stride-1 convs (by size // 2); strided ones are 'valid' with truncation.
        padding = "same" if stride == 1 else "valid"
        layer = layers.Conv2D(filters, size, strides=stride, padding=padding, activation=activation, name=name)
        y = layer(x)
        layer.set_weights([w.kernel, w.bias])
        return y

    def block(x, filters: int, stride: int, name: str):
        y = conv(x, filters, 3, stride, f"{name}_conv1", activation="relu")
        return conv(y, filters, 3, 1, f"{name}_conv2")

    def residual(x, filters: int, downsample: bool, name: str):
        y = block(x, filters, 2 if downsample else 1, name)
        shortcut = layers.AveragePooling2D(2, 2, padding="valid", name=f"{name}_pool")(x) if downsample else x
        return layers.ReLU(name=f"{name}_out")(ZeroPadAdd(name=f"{name}_add")([y, shortcut]))

    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="chip_rgb")
    mean = np.asarray(net.input_mean_rgb, dtype=np.float32)
    x = layers.Normalization(mean=mean, variance=np.full(3, 256.0**2, np.float32), name="dlib_input")(inputs)
    x = conv(x, 32, 7, 2, "stem_conv", activation="relu")
    x = layers.MaxPooling2D(3, 2, padding="valid", name="stem_pool")(x)
    for stage, (filters, blocks, downsample) in enumerate(STAGES):
        for index in range(blocks):
            x = residual(x, filters, downsample and index == 0, f"stage{stage}_block{index}")
    x = layers.GlobalAveragePooling2D(name="average")(x)
    dense = layers.Dense(fc_matrix.shape[1], use_bias=False, name="embedding")
    outputs = dense(x)
    dense.set_weights([fc_matrix])
    return keras.Model(inputs, outputs, name="dlib_resnet_v1")


def dlib_model_path() -> Path:
    import face_recognition_models

    return Path(face_recognition_models.face_recognition_model_location())


def load_keras_model(path: str | Path | None = None):
    """Read dlib's weights file (default: the one shipped by face_recognition_models) into Keras."""
    return build_keras_model(read_dlib_network(path or dlib_model_path()))

