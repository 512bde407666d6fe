"""ONNX exporter: float32 through tf2onnx, int8 by onnxruntime static quantisation.

float32 is converted from a ``tf.function`` with an explicit ``input_signature``
(``tf2onnx.convert.from_keras`` breaks on Keras 3), batch dimension left dynamic, opset 17.
int8 is that float model quantised in QDQ form (QuantizeLinear/DequantizeLinear pairs around
float ops, the layout onnxruntime's CPU kernels fuse best): int8 activations from the
calibration sample, symmetric int8 weights, optionally per output channel.  Input and output
stay float32, so the device feeds it like the float model.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)

from fmnist_edge.edge.errors import first_line
from fmnist_edge.edge.manifest import TensorSpec
from fmnist_edge.export.base import Exporter, ExportError, silenced_stdout
from fmnist_edge.export.calibration import Calibration
from fmnist_edge.train.models import INPUT_NAME, INPUT_SHAPE, OUTPUT_NAME

OPSET = 17
BATCH_DIM = "batch"

_ONNX_DTYPES = {1: "float32", 10: "float16", 3: "int8", 2: "uint8"}


class OnnxExporter(Exporter):
    """Keras → ``.onnx``; ``per_channel`` gives each weight row its own int8 scale."""

    name = "onnx"
    precisions = ("float32", "int8")

    def __init__(self, per_channel: bool = False) -> None:
        self.per_channel = per_channel

    def export(self, keras_model: Any, precision: str, calibration: Calibration,
               target_path: Path) -> None:
        """Write the float32 model, or quantise a temporary float32 one into ``target_path``."""
        if not self.supports(precision):
            raise ExportError(f"ONNX has no {precision!r} precision here (float32, int8)")
        target_path = Path(target_path)
        if precision == "float32":
            _save(_convert(keras_model), target_path)
            return
        with tempfile.TemporaryDirectory(prefix=".onnx-int8.", dir=target_path.parent) as tmp:
            float_path = Path(tmp) / "float32.onnx"
            _save(_convert(keras_model), float_path)
            _quantize(float_path, Path(tmp) / "prepared.onnx", target_path, calibration,
                      self.per_channel)

    def tensor_specs(self, path: Path) -> tuple[TensorSpec, TensorSpec]:
        """Graph input/output spec; a symbolic (dynamic) dimension is recorded as -1."""
        graph = onnx.load(str(path)).graph
        return _spec(graph.input[0]), _spec(graph.output[0])


def _convert(keras_model: Any) -> Any:
    """Keras model → float32 ModelProto with named tensors and a named dynamic batch."""
    import tensorflow as tf
    import tf2onnx

    signature = [tf.TensorSpec([None, *INPUT_SHAPE], tf.float32, name=INPUT_NAME)]
    function = tf.function(lambda x: keras_model(x, training=False), input_signature=signature)
    try:
        with silenced_stdout():
            proto, _ = tf2onnx.convert.from_function(function, input_signature=signature,
                                                     opset=OPSET)
    except Exception as exc:  # tf2onnx raises assorted internal types
        raise ExportError(f"ONNX conversion failed: {first_line(exc)}") from exc
    _rename_output(proto.graph, OUTPUT_NAME)
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param = BATCH_DIM
    proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param = BATCH_DIM
    return proto


def _rename_output(graph: Any, new: str) -> None:
    """tf2onnx names the output ``Identity:0``; give it the Keras layer's meaning instead."""
    old = graph.output[0].name
    for node in graph.node:
        node.output[:] = [new if name == old else name for name in node.output]
        node.input[:] = [new if name == old else name for name in node.input]
    graph.output[0].name = new


def _save(proto: Any, path: Path) -> None:
    """Check, then write; a structurally invalid graph is an export failure, not a file."""
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"ONNX model failed onnx.checker: {first_line(exc)}") from exc
    onnx.save(proto, str(path))


def _quantize(float_path: Path, prepared: Path, target: Path, calibration: Calibration,
              per_channel: bool) -> None:
    """Static QDQ int8: shape-infer the float model, calibrate (MinMax), insert Q/DQ pairs."""
    try:
        # Symbolic shape inference (needs sympy) adds nothing for a fixed-width MLP.
        quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(target), CalibrationReader(calibration),
            quant_format=QuantFormat.QDQ, per_channel=per_channel,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False})
    except ExportError:
        raise
    except Exception as exc:  # onnxruntime raises RuntimeError/ValueError/Fail...
        raise ExportError(f"ONNX int8 quantisation failed: {first_line(exc)}") from exc


class CalibrationReader(CalibrationDataReader):
    """Feeds the calibration sample to onnxruntime's calibrator one image at a time."""

    def __init__(self, calibration: Calibration) -> None:
        self._calibration = calibration
        self._it: Iterator[np.ndarray] = calibration.samples()

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next ``{input name: (1, 28, 28) float32}`` feed, or None when done."""
        x = next(self._it, None)
        return None if x is None else {INPUT_NAME: x}

    def __len__(self) -> int:
        return len(self._calibration)

    def rewind(self) -> None:
        """Start over (a calibrator may read the sample more than once)."""
        self._it = self._calibration.samples()


def _spec(value_info: Any) -> TensorSpec:
    """An ONNX ValueInfo → manifest spec."""
    tensor = value_info.type.tensor_type
    shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
    return TensorSpec(name=value_info.name, dtype=_ONNX_DTYPES.get(tensor.elem_type, "float32"),
                      shape=shape)
