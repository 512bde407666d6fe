"""The bundle manifest: the one contract between export and the device.

A bundle is a folder holding one trained model's exported artifacts and ``manifest.json``.
The exporter writes it; the runner and the benchmarks only read it.  Everything the device
needs (class names, input spec, preprocessing, quantisation, file hashes, the Keras
reference) is here, so no constant is copied between stages.

Schema (version 1)::

    {
      "format": "fmnist-edge-bundle", "version": 1,
      "model": "first", "created": "2026-...Z",
      "class_names": ["T-shirt/top", ...],
      "input": {"shape": [28, 28], "layout": "HW", "dtype": "uint8"},
      "preprocessing": {"scale": 0.00392156..., "offset": 0.0,
                        "polarity": "light-on-dark", "size": [28, 28]},
      "artifacts": {
        "first-int8.tflite": {"format": "tflite", "precision": "int8", "bytes": 0,
                              "sha256": "...",
                        "input":  {"name": "...", "dtype": "int8", "shape": [-1, 28, 28],
                                   "scale": 0.0039, "zero_point": -128},
                        "output": {"name": "...", "dtype": "int8", "shape": [-1, 10],
                                   "scale": 0.0039, "zero_point": -128},
                        "verification": {"accuracy": 0.87, "agreement": 0.99, ...,
                                         "passed": true}}
      },
      "reference": {"keras_test_accuracy": 0.871, "keras_sha256": "...",
                    "predictions": {"file": "reference_top1.npy", "sha256": "...",
                                    "bytes": 0}},
      "tools": {"tensorflow": "2.21.0", ...},
      "recipe": {"name": "photo", "pipeline_version": "segment-1"},      # optional
      "calibration": {"temperature": 1.4, "min_confidence": 0.55,      # optional
                      "ece": 0.03, "ece_before": 0.08, "fitted_on": "validation split"}
    }

``input`` describes the pixels the preprocessing produces (28x28 uint8, light garment on a
dark background, as Fashion-MNIST stores them).  ``preprocessing`` says how those pixels
become the float the network was trained on: ``float = pixel * scale + offset``.  Each
artifact's own ``input`` then says how that float is fed to that file (float32/float16 as is,
int8 quantised with its scale and zero point).

``calibration`` (optional; absent means none) says how far to trust the probabilities: the
runner raises them to ``1 / temperature`` and renormalises (temperature scaling of a softmax
output), and answers "unsure" below ``min_confidence`` unless told otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmnist_edge.edge.errors import BundleError
from fmnist_edge.edge.hashing import sha256_of

MANIFEST_NAME = "manifest.json"
FORMAT = "fmnist-edge-bundle"
VERSION = 1


@dataclass(frozen=True)
class TensorSpec:
    """How one model tensor is typed and (for int8) quantised."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    scale: float = 0.0
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        """True when values must go through ``scale``/``zero_point``."""
        return self.dtype in ("int8", "uint8") and self.scale > 0

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TensorSpec:
        """Parse the manifest form."""
        return cls(name=str(obj.get("name", "")), dtype=str(obj["dtype"]),
                   shape=tuple(int(d) for d in obj["shape"]),
                   scale=float(obj.get("scale", 0.0)), zero_point=int(obj.get("zero_point", 0)))

    def to_json(self) -> dict[str, Any]:
        """The manifest form."""
        out: dict[str, Any] = {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}
        if self.quantized:
            out.update(scale=self.scale, zero_point=self.zero_point)
        return out


@dataclass(frozen=True)
class Artifact:
    """One exported model file inside a bundle."""

    file: str
    format: str  # "tflite" | "onnx"
    precision: str  # "float32" | "float16" | "dynamic" | "int8"
    bytes: int
    sha256: str
    input: TensorSpec
    output: TensorSpec
    verification: dict[str, Any]


@dataclass(frozen=True)
class Preprocessing:
    """How 28x28 uint8 pixels become the float the network saw in training."""

    scale: float
    offset: float
    polarity: str  # "light-on-dark": garment light, background dark (dataset style)
    size: tuple[int, int]


@dataclass(frozen=True)
class Recipe:
    """How the model was trained: the recipe's name and the photo pipeline version it saw."""

    name: str
    pipeline_version: str | None

    @classmethod
    def from_json(cls, obj: dict[str, Any] | None) -> Recipe | None:
        """Parse the optional ``recipe`` block (older bundles have none)."""
        if obj is None:
            return None
        version = obj.get("pipeline_version")
        return cls(name=str(obj["name"]),
                   pipeline_version=None if version is None else str(version))


@dataclass(frozen=True)
class Calibration:
    """How much to trust the model's probabilities, fitted at export (not on the device).

    The default is no calibration: temperature 1 (probabilities as the model gives them) and
    no confidence threshold (every answer is given, none is "unsure").
    """

    temperature: float = 1.0
    #: The suggested threshold: a top-1 probability (after temperature) below it is "unsure".
    min_confidence: float | None = None
    #: Expected calibration error after / before scaling, where it was fitted (for reports).
    ece: float | None = None
    ece_before: float | None = None
    fitted_on: str = ""

    @classmethod
    def from_json(cls, obj: dict[str, Any] | None) -> Calibration:
        """Parse the manifest form (``None`` or absent: no calibration)."""
        if obj is None:
            return cls()
        if not isinstance(obj, dict):
            raise TypeError("calibration must be an object")
        threshold = obj.get("min_confidence")
        cal = cls(temperature=float(obj.get("temperature", 1.0)),
                  min_confidence=None if threshold is None else float(threshold),
                  ece=_optional_float(obj.get("ece")),
                  ece_before=_optional_float(obj.get("ece_before")),
                  fitted_on=str(obj.get("fitted_on", "")))
        if not cal.temperature > 0:
            raise ValueError(f"calibration temperature must be positive, not {cal.temperature}")
        if cal.min_confidence is not None and not 0 <= cal.min_confidence <= 1:
            raise ValueError(f"calibration min_confidence must be within 0..1, not "
                             f"{cal.min_confidence}")
        return cal

    def to_json(self) -> dict[str, Any]:
        """The manifest form (only the figures that are set)."""
        out: dict[str, Any] = {"temperature": self.temperature,
                               "min_confidence": self.min_confidence}
        for key in ("ece", "ece_before"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.fitted_on:
            out["fitted_on"] = self.fitted_on
        return out


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Manifest:
    """A parsed, validated ``manifest.json`` plus the folder it came from."""

    root: Path
    model: str
    class_names: tuple[str, ...]
    preprocessing: Preprocessing
    artifacts: dict[str, Artifact]
    reference: dict[str, Any]
    raw: dict[str, Any]
    calibration: Calibration = Calibration()
    recipe: Recipe | None = None

    def path(self, name: str) -> Path:
        """Absolute path of a file named in the manifest."""
        return self.root / name

    def verify_file(self, name: str) -> Path:
        """Check a listed file's size and SHA-256; refuse it if either differs."""
        if Path(name).name != name:
            raise BundleError(f"{name}: not a plain file name inside the bundle")
        entry = self._file_entry(name)
        path = self.path(name)
        if not path.is_file():
            raise BundleError(f"{path}: listed in {MANIFEST_NAME} but missing")
        size = path.stat().st_size
        if size != entry["bytes"] or sha256_of(path) != entry["sha256"]:
            raise BundleError(f"{path}: does not match its SHA-256 in {MANIFEST_NAME} "
                              "(tampered or truncated); re-export or re-copy the bundle")
        return path

    def _file_entry(self, name: str) -> dict[str, Any]:
        if name in self.artifacts:
            art = self.artifacts[name]
            return {"bytes": art.bytes, "sha256": art.sha256}
        pred = self.reference.get("predictions", {})
        if pred.get("file") == name:
            return dict(pred)
        raise BundleError(f"{name}: not listed in {self.root / MANIFEST_NAME}")


def load(bundle_dir: Path) -> Manifest:
    """Read and validate ``bundle_dir/manifest.json``; one clear error if anything is off."""
    path = Path(bundle_dir) / MANIFEST_NAME
    if not path.is_file():
        raise BundleError(f"{bundle_dir}: no {MANIFEST_NAME} (not a model bundle)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from exc
    try:
        return _parse(Path(bundle_dir), raw)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise BundleError(f"{path}: malformed manifest ({type(exc).__name__}: {exc})") from exc


#: Pixel polarities a runner knows how to produce (Fashion-MNIST's own).
POLARITIES = ("light-on-dark",)


def _parse(root: Path, raw: dict[str, Any]) -> Manifest:
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise BundleError(f"{root / MANIFEST_NAME}: not an {FORMAT} manifest")
    if int(raw["version"]) > VERSION:
        raise BundleError(f"{root / MANIFEST_NAME}: manifest version {raw['version']} is newer "
                          f"than this runner understands ({VERSION}); upgrade fmnist-edge")
    pre = raw["preprocessing"]
    if not isinstance(raw["artifacts"], dict):
        raise TypeError("artifacts must be an object of file name → entry")
    artifacts = {
        name: Artifact(file=name, format=str(a["format"]), precision=str(a["precision"]),
                       bytes=int(a["bytes"]), sha256=str(a["sha256"]),
                       input=TensorSpec.from_json(a["input"]),
                       output=TensorSpec.from_json(a["output"]),
                       verification=dict(a.get("verification", {})))
        for name, a in raw["artifacts"].items()
    }
    class_names = tuple(str(c) for c in raw["class_names"])
    if not class_names:
        raise ValueError("class_names is empty")
    preprocessing = Preprocessing(scale=float(pre["scale"]), offset=float(pre["offset"]),
                                  polarity=str(pre["polarity"]),
                                  size=(int(pre["size"][0]), int(pre["size"][1])))
    _check(preprocessing, artifacts, len(class_names))
    return Manifest(
        root=root, model=str(raw["model"]), class_names=class_names,
        preprocessing=preprocessing, artifacts=artifacts,
        reference=dict(raw.get("reference", {})), raw=raw,
        calibration=Calibration.from_json(raw.get("calibration")),
        recipe=Recipe.from_json(raw.get("recipe")))


def _check(pre: Preprocessing, artifacts: dict[str, Artifact], classes: int) -> None:
    """Refuse values that would make the runner silently wrong rather than fail."""
    if pre.polarity not in POLARITIES:
        raise ValueError(f"preprocessing polarity {pre.polarity!r} is not one of {POLARITIES}")
    if min(pre.size) <= 0 or pre.scale <= 0:
        raise ValueError("preprocessing size and scale must be positive")
    for name, art in artifacts.items():
        if Path(name).name != name or name.startswith("."):
            raise ValueError(f"artifact name {name!r} must be a plain file name")
        for spec in (art.input, art.output):
            if spec.dtype in ("int8", "uint8") and spec.scale <= 0:
                raise ValueError(f"{name}: {spec.dtype} tensor without a positive scale")
        if art.output.shape and art.output.shape[-1] not in (-1, classes):
            raise ValueError(f"{name}: {art.output.shape[-1]} outputs for {classes} classes")
