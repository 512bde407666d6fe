"""The one small interface every exporter implements, plus what they share.

Each file format gets its own exporter (the Hugging Face optimum layout): the bundle builder
only ever talks to :class:`Exporter`, so adding a format means adding one module, not
touching the pipeline.
"""

from __future__ import annotations

import contextlib
import io
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fmnist_edge.edge.errors import UserError
from fmnist_edge.edge.manifest import TensorSpec
from fmnist_edge.edge.quiet import fd_silenced
from fmnist_edge.export.calibration import Calibration

#: Every precision the project knows, in the order bundles and tables list them.
PRECISIONS: tuple[str, ...] = ("float32", "float16", "dynamic", "int8")


class ExportError(UserError):
    """A conversion failed (e.g. an op has no int8 kernel); nothing is written for it."""


class Exporter(ABC):
    """Turns one Keras model into one file of one format at one precision."""

    #: File format, also the file extension: ``"tflite"`` or ``"onnx"``.
    name: str
    #: Precisions this format can produce, a subset of :data:`PRECISIONS`.
    precisions: tuple[str, ...]

    @abstractmethod
    def export(self, keras_model: Any, precision: str, calibration: Calibration,
               target_path: Path) -> None:
        """Write ``keras_model`` at ``precision`` to ``target_path`` or raise ExportError."""

    @abstractmethod
    def tensor_specs(self, path: Path) -> tuple[TensorSpec, TensorSpec]:
        """Read back the written file's (input, output) spec, incl. int8 scale/zero point.

        Read from the file itself rather than assumed, so the manifest describes exactly
        what the converter produced.
        """

    def supports(self, precision: str) -> bool:
        """True if this format has ``precision`` (ONNX has no float16/dynamic here)."""
        return precision in self.precisions


@contextlib.contextmanager
def silenced_stdout() -> Iterator[None]:
    """Discard everything printed to stdout (by Python or C++) for a while.

    The converters chatter on stdout ("Saved artifact at /tmp/...", endpoint listings);
    ``--json`` promises a clean stdout and the table a readable one.  Errors still arrive as
    exceptions and warnings still go to stderr.
    """
    with fd_silenced(1), contextlib.redirect_stdout(io.StringIO()):
        yield
