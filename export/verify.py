"""Export verification: every artifact, on the device code path, against Keras.

Each file is opened with :meth:`EdgeModel.open` from the not-yet-published bundle folder,
i.e. manifest parsing, SHA-256 check, preprocessing and the device runtime (LiteRT for
``.tflite``, onnxruntime for ``.onnx``) exactly as on the Pi, and run on all 10,000 test
images.  Its probabilities are compared with the Keras model's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmnist_edge.edge import metrics, tables
from fmnist_edge.edge.model import EdgeModel

#: Minimum top-1 agreement with Keras, per precision.  Float artifacts must be near
#: identical (99.9 %).  Dynamic-range models hold int8 weights, so they are quantised models
#: and get the quantised thresholds: int8 weights alone cap agreement near 99.7 % for these
#: MLPs (a numpy forward pass with int8-rounded weights and float activations gives 99.68 %
#: and 99.71 %), whatever the runtime does.
MIN_AGREEMENT: dict[str, float] = {"float32": 0.999, "float16": 0.999, "dynamic": 0.98,
                                   "int8": 0.98}
#: Largest test-accuracy drop (fraction, vs Keras) a precision may cost; absent = no limit.
MAX_ACCURACY_DROP: dict[str, float] = {"dynamic": 0.01, "int8": 0.01}
#: PSNR is reported for probabilities with peak 1.0; identical outputs are capped here.
PSNR_CAP_DB = 200.0


@dataclass(frozen=True)
class Reference:
    """What every artifact is measured against: test set, labels, Keras outputs."""

    pixels: np.ndarray  # (N, 28, 28) uint8, the official test split
    labels: np.ndarray  # (N,)
    probabilities: np.ndarray  # (N, 10) float32 from Keras

    @property
    def accuracy(self) -> float:
        """Keras test accuracy."""
        return float((self.probabilities.argmax(axis=1) == self.labels).mean())

    @property
    def top1(self) -> np.ndarray:
        """Keras top-1 class per test image, as stored in ``reference_top1.npy``."""
        return self.probabilities.argmax(axis=1).astype(np.uint8)


@dataclass(frozen=True)
class Result:
    """One artifact's figures; ``asdict`` is what goes under ``verification``."""

    accuracy: float
    keras_accuracy: float
    accuracy_delta: float  # artifact minus Keras; negative is a drop
    agreement: float
    max_abs_diff: float
    psnr_db: float
    samples: int
    backend: str
    passed: bool

    def to_json(self) -> dict[str, Any]:
        """The manifest form (plain floats, rounded to what is meaningful)."""
        out = asdict(self)
        for key in ("accuracy", "keras_accuracy", "accuracy_delta", "agreement"):
            out[key] = round(out[key], 6)
        out["max_abs_diff"] = float(f"{self.max_abs_diff:.6g}")
        out["psnr_db"] = round(self.psnr_db, 2)
        return out


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of ``a`` vs ``b`` (capped for identical outputs)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 10.0 * math.log10(peak * peak / mse))


def passes(precision: str, agreement: float, accuracy_delta: float) -> bool:
    """The thresholds: float ≥ 99.9 % agreement; int8 and dynamic range (int8 weights)
    ≥ 98 % and ≤ 1 point accuracy drop."""
    max_drop = MAX_ACCURACY_DROP.get(precision, float("inf"))
    return agreement >= MIN_AGREEMENT[precision] and -accuracy_delta <= max_drop + 1e-12


def compare(probabilities: np.ndarray, reference: Reference, precision: str,
            backend: str) -> Result:
    """Artifact probabilities vs the Keras reference → figures and pass/fail."""
    top1 = probabilities.argmax(axis=1)
    accuracy = metrics.accuracy(top1, reference.labels)
    delta = accuracy - reference.accuracy
    agreement = metrics.agreement(top1, reference.top1)
    return Result(accuracy=accuracy, keras_accuracy=reference.accuracy, accuracy_delta=delta,
                  agreement=agreement,
                  max_abs_diff=float(np.max(np.abs(probabilities - reference.probabilities))),
                  psnr_db=psnr(probabilities, reference.probabilities),
                  samples=len(reference.labels), backend=backend,
                  passed=passes(precision, agreement, delta))


def verify_artifact(bundle_dir: Path, filename: str, reference: Reference) -> Result:
    """Open one artifact exactly as the device does and measure it on the whole test set."""
    model = EdgeModel.open(bundle_dir, artifact=filename)
    probabilities = model.predict(reference.pixels)
    return compare(probabilities, reference, model.artifact.precision, model.session.backend)


def table(rows: list[dict[str, Any]]) -> str:
    """A terminal table, one line per artifact, ✓/✗ in the last column.

    ``rows`` carry ``model``, ``file``, ``bytes`` and a ``verification`` dict.
    """
    columns = ["model", "file", "size KB", "accuracy", "Δacc pt", "agree", "max|Δp|",
               "PSNR dB", "ok"]
    body = [[row["model"], row["file"], f"{row['bytes'] / 1024:.1f}",
             f"{v['accuracy']:.4f}", f"{100 * v['accuracy_delta']:+.2f}",
             f"{100 * v['agreement']:.2f}%", f"{v['max_abs_diff']:.4f}", f"{v['psnr_db']:.1f}",
             "✓" if v["passed"] else "✗"]
            for row in rows for v in [row["verification"]]]
    return tables.text(columns, body, left=2)
