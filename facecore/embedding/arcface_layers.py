"""Keras building blocks for the ArcFace port that run fast on every backend's CPU path.

* ``depthwise``: a depthwise conv, either Keras's ``DepthwiseConv2D`` or, where that is slow
  (XLA:CPU under JAX: 158 ms vs 12 ms for one 32x28x28x128 3x3 layer), a sum of shifted slices
  times per-channel weights (``"shifts"``), which XLA fuses. ``"auto"`` picks shifts on JAX.
* ``grouped_conv``: a grouped conv as a depthwise conv plus a sum over each group's inputs
  (TensorFlow's CPU kernel for ``Conv2D(groups=...)`` took 4.4 s of a 32-chip batch).
* ``constant_pad``: padding with a constant (the mean pixel, for a conv with folded normalisation).

Each is exact up to float rounding. Keras layers and ``keras.ops`` only; keras is imported lazily.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

DepthwiseMethod = Literal["auto", "conv", "shifts"]


def _keras():
    import keras  # deferred: importing a backend costs seconds

    return keras


def resolve_depthwise(method: DepthwiseMethod) -> Literal["conv", "shifts"]:
    """``"auto"``: shifted slices on JAX, ``DepthwiseConv2D`` on other backends."""
    if method == "auto":
        return "shifts" if _keras().backend.backend() == "jax" else "conv"
    if method not in ("conv", "shifts"):
        raise ValueError(f"depthwise must be 'auto', 'conv' or 'shifts', got {method!r}")
    return method


def constant_pad(pad: int, value: float):
    """A layer padding rows and columns by ``pad`` on both sides with ``value``."""
    keras = _keras()

    class ConstantPad(keras.layers.Layer):
        def compute_output_shape(self, shape):
            grow = lambda n: None if n is None else n + 2 * pad  # noqa: E731
            return (shape[0], grow(shape[1]), grow(shape[2]), shape[3])

        def call(self, x):
            return keras.ops.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)], constant_values=value)

    return ConstantPad()


def _shift_depthwise_class():
    keras = _keras()
    ops = keras.ops

    class ShiftDepthwise(keras.layers.Layer):
        """Depthwise conv (kernel (kh, kw, C*M) after repeating each input channel M times) by slices."""

        def __init__(self, size: tuple[int, int], strides: tuple[int, int], same: bool, multiplier: int, **kw):
            super().__init__(**kw)
            self.size, self.strides, self.same, self.multiplier = size, strides, same, multiplier

        def build(self, shape):
            channels = shape[-1] * self.multiplier
            self.kernel = self.add_weight(shape=(*self.size, channels), initializer="zeros", name="kernel")
            self.bias = self.add_weight(shape=(channels,), initializer="zeros", name="bias")

        def _out(self, n: int, k: int, s: int) -> int:
            return -(-n // s) if self.same else (n - k) // s + 1

        def compute_output_shape(self, shape):
            (kh, kw), (sh, sw) = self.size, self.strides
            return (shape[0], self._out(shape[1], kh, sh), self._out(shape[2], kw, sw), shape[3] * self.multiplier)

        def call(self, x):
            (kh, kw), (sh, sw) = self.size, self.strides
            if self.multiplier > 1:
                x = ops.repeat(x, self.multiplier, axis=-1)
            height, width = x.shape[1], x.shape[2]
            out_h, out_w = self._out(height, kh, sh), self._out(width, kw, sw)
            if self.same:  # stride-1 'same' only (see depthwise)
                x = ops.pad(x, [(0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)])
            total = None
            for dy in range(kh):
                for dx in range(kw):
                    window = x[:, dy : dy + (out_h - 1) * sh + 1 : sh, dx : dx + (out_w - 1) * sw + 1 : sw, :]
                    term = window * self.kernel[dy, dx]
                    total = term if total is None else total + term
            return total + self.bias

    return ShiftDepthwise


def depthwise(x, kernel: np.ndarray, bias: np.ndarray | None, strides, padding: str, name: str, method: str):
    """Depthwise conv of ``x`` with ``kernel`` (kh, kw, C, M): output channel ``c*M + m``."""
    layers = _keras().layers
    kh, kw, channels, multiplier = kernel.shape
    bias = np.zeros(channels * multiplier, np.float32) if bias is None else bias
    strides = tuple(strides)
    if resolve_depthwise(method) == "shifts" and (padding == "valid" or strides == (1, 1)):
        layer = _shift_depthwise_class()((kh, kw), strides, padding == "same", multiplier, name=name)
        y = layer(x)
        layer.set_weights([kernel.reshape(kh, kw, channels * multiplier), bias])
        return y
    layer = layers.DepthwiseConv2D((kh, kw), strides, padding, depth_multiplier=multiplier, name=name)
    y = layer(x)
    layer.set_weights([kernel, bias])
    return y


def grouped_conv(x, hwio: np.ndarray, bias: np.ndarray, group: int, strides, padding: str, name: str, method: str):
    """A grouped conv (kernel (kh, kw, I, G*O)) as a depthwise conv plus a sum over each group's inputs.

    Output channel ``g*O + j`` is the sum over ``i`` of input channel ``g*I + i`` convolved with its
    kernel, which is what a depthwise conv with multiplier ``O`` makes (channel ``(g*I + i)*O + j``)
    before the sum over ``i``.
    """
    kh, kw, in_per_group, out_ch = hwio.shape
    out_per_group = out_ch // group
    # (kh, kw, I, G*O) -> (kh, kw, G, I, O) -> depthwise kernel (kh, kw, G*I, O)
    kernel = hwio.reshape(kh, kw, in_per_group, group, out_per_group).transpose(0, 1, 3, 2, 4)
    kernel = kernel.reshape(kh, kw, group * in_per_group, out_per_group)
    y = depthwise(x, kernel, None, strides, padding, f"{name}_dw", method)
    summed = _group_sum(group, in_per_group, out_per_group, name)
    y = summed(y)
    summed.set_weights([bias])
    return y


def _group_sum(group: int, in_per_group: int, out_per_group: int, name: str):
    keras = _keras()

    class GroupSum(keras.layers.Layer):
        """Channels ``(g, i, j)`` summed over ``i`` to ``(g, j)``, plus a bias per output channel."""

        def build(self, shape):
            self.bias = self.add_weight(shape=(group * out_per_group,), initializer="zeros", name="bias")

        def compute_output_shape(self, shape):
            return (*shape[:3], group * out_per_group)

        def call(self, x):
            shape = keras.ops.shape(x)
            y = keras.ops.reshape(x, (shape[0], shape[1], shape[2], group, in_per_group, out_per_group))
            y = keras.ops.sum(y, axis=4)
            return keras.ops.reshape(y, (shape[0], shape[1], shape[2], group * out_per_group)) + self.bias

    return GroupSum(name=name)
