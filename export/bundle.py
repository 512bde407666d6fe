"""Build one model's bundle: export every artifact, verify it, write the manifest, swap in.

Everything happens inside :func:`fmnist_edge.edge.atomic.atomic_dir`: the files are written
to a hidden temporary folder beside the bundle, verified there through the device code path,
and only then swapped in.  A failed conversion, a failed check or an interrupt leaves the
previous bundle byte-for-byte as it was.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fmnist_edge.edge import atomic
from fmnist_edge.edge import manifest as mf
from fmnist_edge.edge.dataset import CLASS_NAMES
from fmnist_edge.edge.errors import UserError
from fmnist_edge.edge.hashing import file_entry, sha256_of
from fmnist_edge.edge.manifest import Preprocessing
from fmnist_edge.edge.model import artifact_filename
from fmnist_edge.edge.preprocess import pixels_to_float
from fmnist_edge.export import verify
from fmnist_edge.export.base import PRECISIONS, Exporter, first_line
from fmnist_edge.export.calibration import Calibration
from fmnist_edge.train.models import INPUT_SHAPE, NUM_CLASSES

BUNDLES = "bundles"
REFERENCE_FILE = "reference_top1.npy"
#: Distributions whose versions every manifest records (``None`` if not installed).
TOOLS = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert", "numpy",
         "fmnist-edge")

#: What a manifest's ``calibration`` block carries from training (see train.confidence).
CALIBRATION_KEYS = ("temperature", "min_confidence", "ece_val_before", "ece_val_after",
                    "ece_photo_val_before", "ece_photo_val_after")

#: One unit of work: which exporter writes which precision.
Job = tuple[Exporter, str]


@dataclass(frozen=True)
class SourceModel:
    """A trained Keras model, loaded and checked to have the tutorial's interface."""

    name: str
    path: Path
    keras: Any
    sha256: str
    #: What ``fmnist-train`` recorded about this very file (recipe, pipeline, calibration),
    #: or empty if its ``metrics.json`` is missing or describes another file.
    training: dict[str, Any] = field(default_factory=dict)


@dataclass
class BundleReport:
    """What happened to one bundle: its artifacts' rows and whether it was swapped in."""

    model: str
    folder: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    replaced: bool = False

    @property
    def passed(self) -> bool:
        """True if every artifact met its thresholds."""
        return all(row["verification"]["passed"] for row in self.rows)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {"model": self.model, "folder": str(self.folder), "passed": self.passed,
                "replaced": self.replaced, "artifacts": self.rows}


class _Rejected(Exception):
    """Raised inside ``atomic_dir`` so a bundle that failed verification is not swapped in."""


def make_exporters(formats: Sequence[str], per_channel: bool = False) -> list[Exporter]:
    """The exporters for the requested formats (imported here: they pull in TensorFlow)."""
    from fmnist_edge.export.onnx import OnnxExporter
    from fmnist_edge.export.tflite import TfliteExporter

    available: dict[str, Exporter] = {"tflite": TfliteExporter(),
                                      "onnx": OnnxExporter(per_channel=per_channel)}
    return [available[f] for f in formats]


def plan(exporters: Sequence[Exporter], precisions: Sequence[str]) -> list[Job]:
    """Every (exporter, precision) pair that exists, precision-major like the tables."""
    return [(e, p) for p in PRECISIONS if p in precisions for e in exporters if e.supports(p)]


def load_model(path: Path, name: str) -> SourceModel:
    """Load ``path`` with plain ``keras.saving.load_model`` and check its interface."""
    path = check_model_file(path)
    if not zipfile.is_zipfile(path):  # Keras would call it "File not found", which misleads
        raise UserError(f"{path}: not a Keras model file (not a .keras zip archive; "
                        "corrupt or truncated?)")
    import keras

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # zipfile, h5py, json and Keras all raise their own types
        raise UserError(f"{path}: not a loadable Keras model ({first_line(exc)})") from exc
    _check_interface(path, model)
    digest = sha256_of(path)
    return SourceModel(name=name, path=path, keras=model, sha256=digest,
                       training=training_record(path, name, digest))


def training_record(path: Path, name: str, sha256: str) -> dict[str, Any]:
    """The training run's figures for this model file, from ``metrics.json`` beside it.

    Only trusted when the recorded SHA-256 is this file's: a model retrained or copied in
    from elsewhere must not inherit another run's recipe or calibration.
    """
    from fmnist_edge.train.cli import METRICS_FILE

    try:
        record = json.loads((path.parent / METRICS_FILE).read_text())["models"][name]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return record if isinstance(record, dict) and record.get("keras_sha256") == sha256 else {}


def check_model_file(path: Path) -> Path:
    """Fail fast, before TensorFlow is imported, if a model file is simply not there."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such model file (train it with fmnist-train, or pass "
                        "-a/--artifacts)")
    return path


def _check_interface(path: Path, model: Any) -> None:
    """Refuse a model that does not take (N, 28, 28) pixels and return 10 scores."""
    try:
        inputs, outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError) as exc:  # e.g. an unbuilt subclassed model
        raise UserError(f"{path}: model has no defined inputs/outputs ({exc})") from exc
    want_in, want_out = (None, *INPUT_SHAPE), (None, NUM_CLASSES)
    if len(inputs) != 1 or tuple(inputs[0].shape) != want_in:
        got = [tuple(t.shape) for t in inputs]
        raise UserError(f"{path}: unexpected input shape {got}, expected {want_in}")
    if len(outputs) != 1 or tuple(outputs[0].shape) != want_out:
        got = [tuple(t.shape) for t in outputs]
        raise UserError(f"{path}: unexpected output shape {got}, expected {want_out}")


def reference(source: SourceModel, test_pixels: np.ndarray, test_labels: np.ndarray,
              pre: Preprocessing) -> verify.Reference:
    """The Keras model's own probabilities on the test set, preprocessed as the device does."""
    probs = source.keras.predict(pixels_to_float(test_pixels, pre), batch_size=1024, verbose=0)
    return verify.Reference(pixels=test_pixels, labels=test_labels,
                            probabilities=np.asarray(probs, dtype=np.float32))


def build(source: SourceModel, jobs: Sequence[Job], calibration: Calibration,
          ref: verify.Reference, output: Path, keep_failed: bool = False) -> BundleReport:
    """Export, verify and (if all passed, or ``keep_failed``) publish one model's bundle."""
    report = BundleReport(model=source.name, folder=Path(output) / BUNDLES / source.name)
    try:
        with atomic.atomic_dir(report.folder) as tmp:
            manifest = _export_all(source, jobs, calibration, ref, tmp)
            atomic.write_json(tmp / mf.MANIFEST_NAME, manifest)  # verification reads it
            _verify_all(manifest, ref, tmp, report)
            atomic.write_json(tmp / mf.MANIFEST_NAME, manifest)
            if not report.passed and not keep_failed:
                raise _Rejected
            report.replaced = True
    except _Rejected:
        pass
    return report


def _export_all(source: SourceModel, jobs: Sequence[Job], calibration: Calibration,
                ref: verify.Reference, folder: Path) -> dict[str, Any]:
    """Write every artifact and the reference predictions; return the manifest (unverified)."""
    artifacts: dict[str, Any] = {}
    for exporter, precision in jobs:
        filename = artifact_filename(source.name, precision, exporter.name)
        _progress(f"{source.name}: exporting {filename}")
        path = folder / filename
        exporter.export(source.keras, precision, calibration, path)
        spec_in, spec_out = exporter.tensor_specs(path)
        artifacts[filename] = {"format": exporter.name, "precision": precision,
                               **file_entry(path), "input": spec_in.to_json(),
                               "output": spec_out.to_json(), "verification": {}}
    np.save(folder / REFERENCE_FILE, ref.top1)
    return _manifest(source, calibration.preprocessing, artifacts, ref, folder)


def _verify_all(manifest: dict[str, Any], ref: verify.Reference, folder: Path,
                report: BundleReport) -> None:
    """Run each artifact through the device path; record figures in manifest and report."""
    for filename, entry in manifest["artifacts"].items():
        _progress(f"{report.model}: verifying {filename} on {len(ref.labels):,} test images")
        entry["verification"] = verify.verify_artifact(folder, filename, ref).to_json()
        report.rows.append({"model": report.model, "file": filename, "format": entry["format"],
                            "precision": entry["precision"], "bytes": entry["bytes"],
                            "verification": entry["verification"]})


def _manifest(source: SourceModel, pre: Preprocessing, artifacts: dict[str, Any],
              ref: verify.Reference, folder: Path) -> dict[str, Any]:
    """The manifest in the schema of :mod:`fmnist_edge.edge.manifest` (version 1)."""
    return {
        "format": mf.FORMAT, "version": mf.VERSION, "model": source.name,
        "created": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "class_names": list(CLASS_NAMES),
        "input": {"shape": list(INPUT_SHAPE), "layout": "HW", "dtype": "uint8"},
        "preprocessing": {"scale": pre.scale, "offset": pre.offset, "polarity": pre.polarity,
                          "size": list(pre.size)},
        "artifacts": artifacts,
        "reference": {"keras_test_accuracy": round(ref.accuracy, 6),
                      "keras_sha256": source.sha256,
                      "predictions": {"file": REFERENCE_FILE,
                                      **file_entry(folder / REFERENCE_FILE)}},
        "tools": tool_versions(),
        **_training_blocks(source.training),
    }


def _training_blocks(training: dict[str, Any]) -> dict[str, Any]:
    """``recipe`` (name, pipeline version) and ``calibration`` from the training record."""
    if not training.get("recipe"):
        return {}
    out: dict[str, Any] = {"recipe": {"name": training["recipe"],
                                      "pipeline_version": training.get("pipeline_version")}}
    cal = training.get("calibration")
    if isinstance(cal, dict) and "temperature" in cal:
        out["calibration"] = {k: cal[k] for k in CALIBRATION_KEYS if k in cal}
    return out




def tool_versions() -> dict[str, str | None]:
    """Installed versions of the tools that shaped the artifacts (for reproducibility)."""
    versions: dict[str, str | None] = {}
    for name in TOOLS:
        candidates = ("tensorflow", "tensorflow-cpu") if name == "tensorflow" else (name,)
        versions[name] = next((v for v in map(_version, candidates) if v), None)
    return versions


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _progress(message: str) -> None:
    import click

    click.echo(message, err=True)
