"""TFLite exporter: float32, float16, dynamic-range and full-integer int8.

The int8 file is *full* integer, int8 input and output included, with the op set limited to
``TFLITE_BUILTINS_INT8``: if any op had no int8 kernel the converter must fail instead of
quietly leaving float islands in a file the manifest calls int8.  The device quantises the
input itself with the scale and zero point read back into the manifest.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from fmnist_edge.edge.errors import first_line
from fmnist_edge.edge.manifest import TensorSpec
from fmnist_edge.export.base import Exporter, ExportError, silenced_stdout
from fmnist_edge.export.calibration import Calibration


class TfliteExporter(Exporter):
    """Keras → ``.tflite`` through TensorFlow's converter."""

    name = "tflite"
    precisions = ("float32", "float16", "dynamic", "int8")

    def export(self, keras_model: Any, precision: str, calibration: Calibration,
               target_path: Path) -> None:
        """Convert and write; conversion errors become one-line :class:`ExportError`."""
        if not self.supports(precision):
            raise ExportError(f"TFLite has no {precision!r} precision")
        converter = _converter(keras_model, precision, calibration)
        try:
            with silenced_stdout():
                flat = converter.convert()
        except Exception as exc:  # the converter raises many private types
            raise ExportError(f"TFLite {precision} conversion failed: {first_line(exc)}") from exc
        Path(target_path).write_bytes(flat)

    def tensor_specs(self, path: Path) -> tuple[TensorSpec, TensorSpec]:
        """Input/output spec as LiteRT (the device runtime) sees the file."""
        interpreter = importlib.import_module("ai_edge_litert.interpreter").Interpreter
        interp = interpreter(model_path=str(path))
        return _spec(interp.get_input_details()[0]), _spec(interp.get_output_details()[0])


def _converter(keras_model: Any, precision: str, calibration: Calibration) -> Any:
    """A configured ``TFLiteConverter``; one branch per precision."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if precision == "float32":
        return converter
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # weights → int8 (dynamic range)
    if precision == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        converter.representative_dataset = lambda: ([x] for x in calibration.samples())
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter


def _spec(detail: dict[str, Any]) -> TensorSpec:
    """An interpreter tensor detail → manifest spec (batch from ``shape_signature``: -1)."""
    shape = detail.get("shape_signature", detail["shape"])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorSpec(name=str(detail["name"]), dtype=np.dtype(detail["dtype"]).name,
                      shape=tuple(int(d) for d in shape), scale=float(scale),
                      zero_point=int(zero_point))
