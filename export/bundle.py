"""Build one model's bundle: export every artifact, verify it, write the manifest, swap in.

Everything happens inside :func:`fmnist_edge.edge.atomic.atomic_dir`: the files are written
to a hidden temporary folder beside the bundle, verified there through the device code path,
and only then swapped in.  A failed conversion, a failed check or an interrupt leaves the
previous bundle byte-for-byte as it was.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
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
from fmnist_edge.edge.errors import UserError, first_line
from fmnist_edge.edge.hashing import sha256_of
from fmnist_edge.edge.manifest import Preprocessing
from fmnist_edge.edge.preprocess import pixels_to_float
from fmnist_edge.edge.versions import version_of
from fmnist_edge.export import verify
from fmnist_edge.export.base import PRECISIONS, Exporter
from fmnist_edge.export.calibration import Calibration
from fmnist_edge.train.models import INPUT_SHAPE, NUM_CLASSES

#: Distributions whose versions every manifest records (``None`` if not installed).
TOOLS = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert", "numpy",
         "fmnist-edge")

#: Where the calibration in a manifest comes from (see train.confidence).
CALIBRATION_FITTED_ON = ("validation split: temperature on originals + renders + views; "
                         "min_confidence and ECE on the renders and views")

#: One unit of export work: which exporter writes which precision.
ExportStep = tuple[Exporter, str]


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
    from fmnist_edge.export.npz import NpzExporter
    from fmnist_edge.export.onnx import OnnxExporter
    from fmnist_edge.export.tflite import TfliteExporter

    available: dict[str, Exporter] = {"tflite": TfliteExporter(),
                                      "onnx": OnnxExporter(per_channel=per_channel),
                                      "npz": NpzExporter()}
    return [available[f] for f in formats]


def export_steps(exporters: Sequence[Exporter], precisions: Sequence[str]
                 ) -> list[ExportStep]:
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
    if not path.parent.is_dir():
        raise UserError(f"{path.parent}: no such artifacts folder (train into it with "
                        "fmnist-train -o, or pass -a/--artifacts)")
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


def build(source: SourceModel, steps: Sequence[ExportStep], calibration: Calibration,
          ref: verify.Reference, output: Path, keep_failed: bool = False) -> BundleReport:
    """Export, verify and (if all passed, or ``keep_failed``) publish one model's bundle."""
    report = BundleReport(model=source.name, folder=mf.bundle_dir(output, source.name))
    try:
        with atomic.atomic_dir(report.folder) as tmp:
            manifest = _export_all(source, steps, calibration, ref, tmp)
            mf.write(manifest)  # verification reads it
            mf.write(_verify_all(manifest, ref, report))
            if not report.passed and not keep_failed:
                raise _Rejected
            report.replaced = True
    except _Rejected:
        pass
    return report


def _export_all(source: SourceModel, steps: Sequence[ExportStep], calibration: Calibration,
                ref: verify.Reference, folder: Path) -> mf.Manifest:
    """Write every artifact and the reference predictions; return the manifest (unverified)."""
    artifacts: dict[str, mf.Artifact] = {}
    for exporter, precision in steps:
        filename = mf.artifact_filename(source.name, precision, exporter.name)
        _progress(f"{source.name}: exporting {filename}")
        path = folder / filename
        exporter.export(source.keras, precision, calibration, path)
        spec_in, spec_out = exporter.tensor_specs(path)
        artifacts[filename] = mf.Artifact(
            file=filename, format=exporter.name, precision=precision,
            bytes=path.stat().st_size, sha256=sha256_of(path), input=spec_in, output=spec_out)
    np.save(folder / mf.REFERENCE_FILE, ref.top1)
    return mf.Manifest(
        root=folder, model=source.name, class_names=CLASS_NAMES,
        preprocessing=calibration.preprocessing, artifacts=artifacts,
        reference=mf.Reference(keras_test_accuracy=ref.accuracy, keras_sha256=source.sha256,
                               predictions=mf.FileEntry.of(folder, mf.REFERENCE_FILE)),
        created=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        tools=tool_versions(), **training_blocks(source.training))


def _verify_all(manifest: mf.Manifest, ref: verify.Reference,
                report: BundleReport) -> mf.Manifest:
    """Run each artifact through the device path; the manifest with its figures recorded."""
    verified = {}
    for filename, art in manifest.artifacts.items():
        _progress(f"{report.model}: verifying {filename} on {len(ref.labels):,} test images")
        figures = verify.verify_artifact(manifest.root, filename, ref).to_json()
        verified[filename] = dataclasses.replace(art, verification=figures)
        report.rows.append({"model": report.model, "file": filename, "format": art.format,
                            "precision": art.precision, "bytes": art.bytes,
                            "verification": figures})
    return dataclasses.replace(manifest, artifacts=verified)


def training_blocks(training: dict[str, Any]) -> dict[str, Any]:
    """The manifest's ``recipe`` and ``calibration`` from the training record (may be empty)."""
    if not training.get("recipe"):
        return {}
    version = training.get("pipeline_version")
    out: dict[str, Any] = {"recipe": mf.Recipe(str(training["recipe"]),
                                               None if version is None else str(version))}
    cal = training.get("calibration")
    if isinstance(cal, dict) and "temperature" in cal:
        out["calibration"] = mf.Calibration(
            temperature=float(cal["temperature"]), min_confidence=float(cal["min_confidence"]),
            ece=cal.get("ece_photo_val_after"), ece_before=cal.get("ece_photo_val_before"),
            fitted_on=CALIBRATION_FITTED_ON)
    return out


def tool_versions() -> dict[str, str | None]:
    """Installed versions of the tools that shaped the artifacts (for reproducibility)."""
    return {name: version_of("tensorflow", "tensorflow-cpu") if name == "tensorflow"
            else version_of(name) for name in TOOLS}


def _progress(message: str) -> None:
    import click

    click.echo(message, err=True)
