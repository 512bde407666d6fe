"""numpy exporter: the Dense weights in a ``.npz`` that :mod:`fmnist_edge.edge.npz` runs.

Why a format of our own: on 32-bit Pi OS and armv6 no TFLite or ONNX runtime installs, but
numpy does (``apt install python3-numpy``).  The file holds arrays only (no pickle), with the
key names defined once in :mod:`fmnist_edge.edge.npz`.

* ``float32``: the Keras weights as they are; the forward pass is Keras's own arithmetic.
* ``int8``: full-integer in the TFLite sense (int8 input, int8 weights per output channel,
  int8 activations between layers with ranges calibrated on training images); only the
  last layer's logits stay float for the softmax.  A quarter of the float file's size.

Zip entries get a fixed timestamp, so the same model always gives the same bytes and hash.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from fmnist_edge.edge import npz
from fmnist_edge.edge.manifest import TensorSpec
from fmnist_edge.export.base import Exporter, ExportError
from fmnist_edge.export.calibration import Calibration
from fmnist_edge.train.models import INPUT_NAME, INPUT_SHAPE, OUTPUT_NAME

#: Zip timestamp of every entry (the zip epoch), for byte-identical re-exports.
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class NpzExporter(Exporter):
    """Keras Flatten/Dense MLP → ``.npz`` weights for the numpy runtime."""

    name = "npz"
    precisions = ("float32", "int8")

    def export(self, keras_model: Any, precision: str, calibration: Calibration,
               target_path: Path) -> None:
        """Write the weights (quantised for int8); refuse models that are not plain MLPs."""
        if not self.supports(precision):
            raise ExportError(f"npz has no {precision!r} precision")
        layers = dense_layers(keras_model)
        arrays = float_arrays(layers) if precision == "float32" \
            else int8_arrays(layers, calibration.floats())
        write_npz(Path(target_path), arrays)

    def tensor_specs(self, path: Path) -> tuple[TensorSpec, TensorSpec]:
        """Specs read back through the device loader, so they describe the file itself."""
        mlp = npz.load(path)
        shape = (-1, *INPUT_SHAPE)
        classes = int(mlp.layers[-1].bias.shape[0])
        spec_in = TensorSpec(INPUT_NAME, "float32", shape)
        if mlp.input_q is not None:
            spec_in = TensorSpec(INPUT_NAME, "int8", shape, scale=mlp.input_q[0],
                                 zero_point=int(mlp.input_q[1]))
        return spec_in, TensorSpec(OUTPUT_NAME, "float32", (-1, classes))


Dense = tuple[np.ndarray, np.ndarray, str]


def dense_layers(model: Any) -> list[Dense]:
    """(kernel, bias, activation) of each Dense layer; Flatten is the reshape the runner does."""
    out: list[Dense] = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("Flatten", "Dropout", "InputLayer"):  # reshape / identity at inference
            continue
        weights = layer.get_weights()
        activation = getattr(getattr(layer, "activation", None), "__name__", "")
        if kind != "Dense" or len(weights) != 2:
            raise ExportError(f"npz export supports Flatten/Dense MLPs only, not {kind} "
                              f"({layer.name})")
        out.append((np.asarray(weights[0], np.float32), np.asarray(weights[1], np.float32),
                    activation))
    if not out:
        raise ExportError(f"{model.name}: no Dense layers to export")
    return out


def float_arrays(layers: list[Dense]) -> dict[str, np.ndarray]:
    """The float32 file: kernels, biases and activation names."""
    arrays: dict[str, np.ndarray] = {npz.ACTIVATIONS_KEY: np.array([a for _, _, a in layers])}
    for i, (kernel, bias, _) in enumerate(layers):
        arrays[npz.kernel_key(i)], arrays[npz.bias_key(i)] = kernel, bias
    return arrays


def int8_arrays(layers: list[Dense], calibration: np.ndarray) -> dict[str, np.ndarray]:
    """The int8 file: per-channel int8 kernels plus every activation's calibrated range.

    Ranges come from a float forward pass over the calibration images (training split), as
    TFLite's converter does: min/max, widened to include zero so zero is exact.
    """
    arrays = float_arrays(layers)
    h = calibration.reshape(len(calibration), -1).astype(np.float32)
    scale, zero = affine_params(h)
    arrays[npz.INPUT_SCALE], arrays[npz.INPUT_ZERO] = _scalar(scale, np.float32), \
        _scalar(zero, np.int32)
    for i, (kernel, bias, activation) in enumerate(layers):
        peak = np.abs(kernel).max(axis=0)
        k_scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        arrays[npz.kernel_key(i)] = np.clip(np.round(kernel / k_scale), -127, 127).astype(np.int8)
        arrays[npz.kernel_scale_key(i)] = k_scale
        h = h @ kernel + bias
        h = np.maximum(h, 0.0) if activation == "relu" else h
        if i < len(layers) - 1:
            scale, zero = affine_params(h)
            arrays[npz.output_scale_key(i)] = _scalar(scale, np.float32)
            arrays[npz.output_zero_key(i)] = _scalar(zero, np.int32)
    return arrays


def _scalar(value: float, dtype: type) -> np.ndarray:
    """A 0-d array: what ``np.load`` gives back for a scalar entry."""
    return np.array(value, dtype=dtype)


def affine_params(x: np.ndarray) -> tuple[float, int]:
    """int8 scale and zero point covering ``x``'s range (and zero)."""
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (hi - lo) / 255.0 or 1.0
    zero = int(np.clip(round(-128 - lo / scale), -128, 127))
    return scale, zero


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` with fixed entry timestamps (numpy stamps the current time)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())
