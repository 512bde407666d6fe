"""Inference runtimes behind one small interface.

``open_session(path)`` picks a runtime from the file type and what is installed:

* ``.tflite``: ai-edge-litert (LiteRT, the successor), else tflite-runtime (frozen at 2.14,
  Python <= 3.11, numpy < 2); TensorFlow's own ``tf.lite.Interpreter`` only when asked for
  by name (``backend="tensorflow"``).  That one is a plug-in: the ``export`` package
  registers it under the entry-point group :data:`PLUGIN_GROUP`, so no code in ``edge``
  ever imports TensorFlow, and it is there only where TensorFlow is installed.
* ``.onnx``: onnxruntime.

Every session takes a batch (N, ...) in the artifact's own input dtype and returns its raw
output; quantisation is applied outside, by :mod:`fmnist_edge.edge.preprocess`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fmnist_edge.edge.errors import UserError, first_line
from fmnist_edge.edge.quiet import fd_silenced

#: Runtimes per model format, in order of preference.
PREFERENCE: dict[str, tuple[str, ...]] = {
    "tflite": ("litert", "tflite-runtime"),
    "onnx": ("onnxruntime",),
}
#: Python module that provides each runtime.
MODULES: dict[str, str] = {
    "litert": "ai_edge_litert",
    "tflite-runtime": "tflite_runtime",
    "onnxruntime": "onnxruntime",
    "tensorflow": "tensorflow",
}
FORMAT_OF_BACKEND: dict[str, str] = {
    "litert": "tflite", "tflite-runtime": "tflite", "tensorflow": "tflite", "onnxruntime": "onnx",
}


class Session(Protocol):
    """A loaded model: raw batch in, raw batch out."""

    backend: str

    def run(self, x: np.ndarray) -> np.ndarray:
        """Run one batch (N, ...) and return the first output (N, classes)."""
        ...


def model_format(path: Path) -> str:
    """``tflite`` or ``onnx`` from the file name."""
    suffix = Path(path).suffix.lower()
    if suffix == ".tflite":
        return "tflite"
    if suffix == ".onnx":
        return "onnx"
    raise UserError(f"{path}: unknown model type (expected .tflite or .onnx)")


#: Entry-point group of TFLite interpreters provided by other packages, by backend name.
PLUGIN_GROUP = "fmnist_edge.tflite_interpreters"


def _plugin(backend: str) -> importlib.metadata.EntryPoint | None:
    found = importlib.metadata.entry_points(group=PLUGIN_GROUP, name=backend)
    return next(iter(found), None)


def is_installed(backend: str) -> bool:
    """True if the runtime's Python module can be imported (without importing it)."""
    if backend == "tensorflow" and _plugin(backend) is None:
        return False
    try:
        return importlib.util.find_spec(MODULES[backend]) is not None
    except (ImportError, ValueError):
        return False


def installed() -> list[str]:
    """Names of the runtimes usable here (TensorFlow is never picked automatically)."""
    return [b for fmt in PREFERENCE.values() for b in fmt if is_installed(b)]


def choose(fmt: str, backend: str | None = None) -> str:
    """The runtime to use for a model format, honouring an explicit choice."""
    if backend:
        if backend not in MODULES:
            raise UserError(f"unknown backend {backend!r}; choose from {', '.join(MODULES)}", 2)
        if FORMAT_OF_BACKEND[backend] != fmt:
            raise UserError(f"backend {backend} cannot run .{fmt} models", 2)
        if not is_installed(backend):
            raise UserError(f"backend {backend} is not installed ({_install_hint(backend)})")
        return backend
    for name in PREFERENCE[fmt]:
        if is_installed(name):
            return name
    hints = " or ".join(_install_hint(b) for b in PREFERENCE[fmt])
    raise UserError(f"no runtime for .{fmt} models is installed ({hints})")


def _install_hint(backend: str) -> str:
    return {
        "litert": "pip install ai-edge-litert",
        "tflite-runtime": "pip install tflite-runtime (Python <= 3.11, numpy < 2)",
        "onnxruntime": "pip install onnxruntime",
        "tensorflow": "pip install 'fmnist-edge[export]'",
    }[backend]


def open_session(path: Path, backend: str | None = None, threads: int | None = None) -> Session:
    """Load a model file in the chosen (or best installed) runtime."""
    fmt = model_format(path)
    name = choose(fmt, backend)
    try:
        if name == "onnxruntime":
            return OnnxSession(Path(path), threads)
        return TfliteSession(Path(path), name, threads)
    except UserError:
        raise
    except Exception as exc:  # runtimes raise their own types for corrupt files
        raise UserError(f"{path}: {name} cannot load this model ({first_line(exc)})") from exc


def _interpreter_class(backend: str) -> Any:
    if backend == "litert":
        return importlib.import_module("ai_edge_litert.interpreter").Interpreter
    if backend == "tflite-runtime":
        return importlib.import_module("tflite_runtime.interpreter").Interpreter
    plugin = _plugin(backend)
    if plugin is None:
        raise UserError(f"backend {backend} is not installed ({_install_hint(backend)})")
    return plugin.load()()


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send C-level writes to fd 2 to /dev/null for a moment; Python errors still raise."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced (pytest capture, IDEs)
        yield
        return
    with fd_silenced(fd):
        yield


class TfliteSession:
    """A TFLite model in LiteRT, tflite-runtime or (by request) TensorFlow."""

    def __init__(self, path: Path, backend: str, threads: int | None = None) -> None:
        self.backend = backend
        with _native_stderr_silenced():  # LiteRT prints "INFO: Created ... delegate" to fd 2
            self._interp = _interpreter_class(backend)(model_path=str(path), num_threads=threads)
            self._interp.allocate_tensors()
        self._in = self._interp.get_input_details()[0]
        self._out = self._interp.get_output_details()[0]
        self._batch = int(self._in["shape"][0])

    def run(self, x: np.ndarray) -> np.ndarray:
        """Run a batch, resizing the input tensor only when the batch size changes."""
        if x.shape[0] != self._batch:
            self._interp.resize_tensor_input(self._in["index"], list(x.shape), strict=False)
            self._interp.allocate_tensors()
            self._batch = x.shape[0]
        self._interp.set_tensor(self._in["index"], np.ascontiguousarray(x))
        self._interp.invoke()
        return np.array(self._interp.get_tensor(self._out["index"]))


class OnnxSession:
    """An ONNX model in onnxruntime on the CPU."""

    backend = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        ort = importlib.import_module("onnxruntime")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._sess = ort.InferenceSession(str(path), sess_options=opts,
                                          providers=["CPUExecutionProvider"])
        self._input = self._sess.get_inputs()[0].name

    def run(self, x: np.ndarray) -> np.ndarray:
        """Run a batch; the exported ONNX models have a dynamic batch dimension."""
        return np.asarray(self._sess.run(None, {self._input: np.ascontiguousarray(x)})[0])
