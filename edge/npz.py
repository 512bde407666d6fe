"""The ``.npz`` model format and its forward pass: an MLP that needs nothing but numpy.

Why: 32-bit Pi OS (armv7l) and armv6 (Pi Zero W, Pi 1) have no wheel of LiteRT,
onnxruntime or a working tflite-runtime, but Debian ships ``python3-numpy``.  The
tutorial's models are Flatten → Dense → ... → Dense, so their weights in a plain ``.npz``
and a dozen lines of numpy are a complete runtime.

The file is written by :mod:`fmnist_edge.export.npz` and read here; the key names below are
the whole format (no pickled objects: ``np.load(..., allow_pickle=False)``)::

    activations   (L,) str     "relu" | "linear" for hidden layers, "softmax" | "linear" last
    kernel_<i>    (in, out)    float32, or int8 with ``kernel_scale_<i>`` (out,) float32
    bias_<i>      (out,)       float32
    -- int8 files only: every activation is int8 with a scale and zero point --
    input_scale, input_zero_point           ()   how the int8 input was quantised
    output_scale_<i>, output_zero_point_<i> ()   hidden layer i's int8 output (calibrated)

A float32 file runs ``relu(x @ W + b)`` per layer.  An int8 file keeps int8 weights and int8
activations between layers, as a full-integer TFLite model does: each product is of
integers (computed in float32, exact because |sum| < 2**24), rescaled by
``input_scale * kernel_scale``, biased, activated and requantised; only the last layer's
logits stay float for the softmax.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmnist_edge.edge.errors import BundleError

ACTIVATIONS_KEY = "activations"
HIDDEN_ACTIVATIONS = ("relu", "linear")
OUTPUT_ACTIVATIONS = ("softmax", "linear")
INPUT_SCALE, INPUT_ZERO = "input_scale", "input_zero_point"


def kernel_key(i: int) -> str:
    """Key of layer ``i``'s kernel."""
    return f"kernel_{i}"


def kernel_scale_key(i: int) -> str:
    """Key of layer ``i``'s per-output-channel int8 kernel scales."""
    return f"kernel_scale_{i}"


def bias_key(i: int) -> str:
    """Key of layer ``i``'s bias."""
    return f"bias_{i}"


def output_scale_key(i: int) -> str:
    """Key of hidden layer ``i``'s int8 output scale."""
    return f"output_scale_{i}"


def output_zero_key(i: int) -> str:
    """Key of hidden layer ``i``'s int8 output zero point."""
    return f"output_zero_point_{i}"


@dataclass(frozen=True)
class Layer:
    """One Dense layer; ``kernel_scale`` and ``out_q`` are set in int8 files only."""

    kernel: np.ndarray  # float32, or int8 values held as float32 (exact)
    bias: np.ndarray
    activation: str
    kernel_scale: np.ndarray | None = None
    out_q: tuple[float, float] | None = None  # (scale, zero point) of the int8 output


@dataclass(frozen=True)
class NpzMLP:
    """A loaded ``.npz`` MLP: layers, and the input quantisation for int8 files."""

    layers: tuple[Layer, ...]
    input_q: tuple[float, float] | None = None

    @property
    def quantized(self) -> bool:
        """True for int8 files (int8 input, weights and activations)."""
        return self.input_q is not None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(N, ...) batch (float32, or int8 for an int8 file) → (N, classes) float32."""
        h = x.reshape(len(x), -1).astype(np.float32)
        scale = np.float32(1.0)
        if self.input_q is not None:
            h -= np.float32(self.input_q[1])
            scale = np.float32(self.input_q[0])
        for layer in self.layers:
            z = h @ layer.kernel
            if layer.kernel_scale is not None:
                z *= scale * layer.kernel_scale
            z += layer.bias
            h = _activate(z, layer.activation)
            if layer.out_q is not None:
                scale = np.float32(layer.out_q[0])
                q = np.clip(np.round(h / scale) + np.float32(layer.out_q[1]), -128, 127)
                h = (q - np.float32(layer.out_q[1])).astype(np.float32)
        return h.astype(np.float32, copy=False)


def _activate(z: np.ndarray, name: str) -> np.ndarray:
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "softmax":
        return softmax(z)
    return z


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so large logits cannot overflow."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def load(path: Path) -> NpzMLP:
    """Read and check a ``.npz`` MLP; a malformed file is one :class:`BundleError` line."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError) as exc:
        raise BundleError(f"{path}: not a readable .npz MLP ({exc})") from exc
    try:
        return _parse(arrays)
    except (KeyError, ValueError, TypeError) as exc:
        raise BundleError(f"{path}: malformed .npz MLP ({type(exc).__name__}: {exc})") from exc


def _parse(arrays: dict[str, np.ndarray]) -> NpzMLP:
    names = [str(a) for a in arrays[ACTIVATIONS_KEY]]
    if not names:
        raise ValueError("no layers")
    quantized = INPUT_SCALE in arrays
    layers, width = [], None
    for i, act in enumerate(names):
        allowed = OUTPUT_ACTIVATIONS if i == len(names) - 1 else HIDDEN_ACTIVATIONS
        if act not in allowed:
            raise ValueError(f"layer {i}: activation {act!r} is not one of {allowed}")
        kernel, bias = arrays[kernel_key(i)], arrays[bias_key(i)]
        if kernel.ndim != 2 or bias.shape != (kernel.shape[1],):
            raise ValueError(f"layer {i}: kernel {kernel.shape} and bias {bias.shape} disagree")
        if width is not None and kernel.shape[0] != width:
            raise ValueError(f"layer {i}: takes {kernel.shape[0]} inputs, gets {width}")
        width = kernel.shape[1]
        hidden = i < len(names) - 1
        layers.append(Layer(
            kernel=kernel.astype(np.float32), bias=bias.astype(np.float32), activation=act,
            kernel_scale=arrays[kernel_scale_key(i)].astype(np.float32) if quantized else None,
            out_q=(float(arrays[output_scale_key(i)]), float(arrays[output_zero_key(i)]))
            if quantized and hidden else None))
    input_q = (float(arrays[INPUT_SCALE]), float(arrays[INPUT_ZERO])) if quantized else None
    return NpzMLP(layers=tuple(layers), input_q=input_q)
