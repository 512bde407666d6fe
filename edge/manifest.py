"""The bundle manifest: the one contract between export and the device, written and read here.

A bundle is a folder holding one trained model's exported artifacts and ``manifest.json``.
The exporter builds a :class:`Manifest` and calls :func:`write`; the runner and the
benchmarks call :func:`load`.  Both directions go through the dataclasses below, so the
schema exists once.  Everything the device needs (class names, preprocessing, quantisation,
file hashes, the Keras reference) is here, so no constant is copied between stages.  The
file-naming rules of a bundle and of the artifacts folder (:func:`artifact_filename`,
:func:`bundle_dir`, :func:`keras_file`) live here too, for the same reason.

Schema (version 1)::

    {
      "format": "fmnist-edge-bundle", "version": 1,
      "model": "first", "created": "2026-...Z",
      "class_names": ["T-shirt/top", ...],
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

``preprocessing`` says how 28x28 uint8 pixels (light garment on a dark background, as
Fashion-MNIST stores them; ``size`` is (height, width)) become the float the network was
trained on: ``float = pixel * scale + offset``.  Each artifact's own ``input`` then says how
that float is fed to that file (float32/float16 as is, int8 quantised with its scale and
zero point).  Manifests written before this module wrote them also carry a top-level
``"input"`` block that repeated ``preprocessing.size``; it is accepted and ignored.

``calibration`` (optional; absent means none, :class:`Calibration`) says how far to trust
the probabilities: the runner raises them to ``1 / temperature`` and renormalises
(temperature scaling of a softmax output), and answers "unsure" below ``min_confidence``
unless told otherwise.  ``recipe`` (optional) names the training recipe and the photo
pipeline version the model was trained on (``fmnist-train --recipe``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmnist_edge.edge import atomic
from fmnist_edge.edge.errors import BundleError
from fmnist_edge.edge.hashing import sha256_of

MANIFEST_NAME = "manifest.json"
FORMAT = "fmnist-edge-bundle"
VERSION = 1
#: The Keras top-1 class of every test image, stored in each bundle (uint8 .npy).
REFERENCE_FILE = "reference_top1.npy"
#: Sub-folder of an export's output folder that holds one bundle per model.
BUNDLES_DIR = "bundles"
#: Where fmnist-train writes and fmnist-export / fmnist-compare read, by default.
DEFAULT_ARTIFACTS = "artifacts"
#: Pixel polarities a runner knows how to produce (Fashion-MNIST's own).
POLARITIES = ("light-on-dark",)


def artifact_filename(model: str, precision: str, fmt: str) -> str:
    """The file name of an artifact inside a bundle, e.g. ``first-int8.tflite``."""
    return f"{model}-{precision}.{fmt}"


def bundle_dir(output: Path, model: str) -> Path:
    """``<output>/bundles/<model>``: where fmnist-export puts one model's bundle."""
    return Path(output) / BUNDLES_DIR / model


def keras_file(artifacts: Path, model: str) -> Path:
    """``<artifacts>/<model>.keras``: where fmnist-train saves one trained model."""
    return Path(artifacts) / f"{model}.keras"


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
class FileEntry:
    """A file of the bundle other than an artifact, with its size and SHA-256."""

    file: str
    bytes: int
    sha256: str

    @classmethod
    def of(cls, folder: Path, name: str) -> FileEntry:
        """Describe ``folder/name`` as it is on disk now."""
        path = Path(folder) / name
        return cls(file=name, bytes=path.stat().st_size, sha256=sha256_of(path))

    def to_json(self) -> dict[str, Any]:
        """The manifest form."""
        return {"file": self.file, "bytes": self.bytes, "sha256": self.sha256}


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
    verification: dict[str, Any] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        """False only if export verification ran and failed (``--keep-failed``)."""
        return bool(self.verification.get("passed", True))

    @classmethod
    def from_json(cls, name: str, obj: dict[str, Any]) -> Artifact:
        """Parse the manifest form (keyed by file name)."""
        return cls(file=name, format=str(obj["format"]), precision=str(obj["precision"]),
                   bytes=int(obj["bytes"]), sha256=str(obj["sha256"]),
                   input=TensorSpec.from_json(obj["input"]),
                   output=TensorSpec.from_json(obj["output"]),
                   verification=dict(obj.get("verification", {})))

    def to_json(self) -> dict[str, Any]:
        """The manifest form (without the file name, which is its key)."""
        return {"format": self.format, "precision": self.precision, "bytes": self.bytes,
                "sha256": self.sha256, "input": self.input.to_json(),
                "output": self.output.to_json(), "verification": dict(self.verification)}


@dataclass(frozen=True)
class Preprocessing:
    """How 28x28 uint8 pixels become the float the network saw in training."""

    scale: float
    offset: float
    polarity: str  # "light-on-dark": garment light, background dark (dataset style)
    size: tuple[int, int]  # (height, width)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Preprocessing:
        """Parse the manifest form."""
        return cls(scale=float(obj["scale"]), offset=float(obj["offset"]),
                   polarity=str(obj["polarity"]),
                   size=(int(obj["size"][0]), int(obj["size"][1])))

    def to_json(self) -> dict[str, Any]:
        """The manifest form."""
        return {"scale": self.scale, "offset": self.offset, "polarity": self.polarity,
                "size": list(self.size)}


@dataclass(frozen=True)
class Reference:
    """The Keras model the artifacts were verified against: its accuracy, hash, top-1 file."""

    keras_test_accuracy: float | None = None
    keras_sha256: str | None = None
    predictions: FileEntry | None = None

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Reference:
        """Parse the manifest form (every part optional: a bundle may lack a reference)."""
        acc, pred = obj.get("keras_test_accuracy"), obj.get("predictions")
        return cls(keras_test_accuracy=None if acc is None else float(acc),
                   keras_sha256=None if obj.get("keras_sha256") is None
                   else str(obj["keras_sha256"]),
                   predictions=None if not pred else FileEntry(
                       file=str(pred["file"]), bytes=int(pred["bytes"]),
                       sha256=str(pred["sha256"])))

    def to_json(self) -> dict[str, Any]:
        """The manifest form."""
        out: dict[str, Any] = {}
        if self.keras_test_accuracy is not None:
            out["keras_test_accuracy"] = round(self.keras_test_accuracy, 6)
        if self.keras_sha256 is not None:
            out["keras_sha256"] = self.keras_sha256
        if self.predictions is not None:
            out["predictions"] = self.predictions.to_json()
        return out


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

    def to_json(self) -> dict[str, Any]:
        """The manifest form."""
        return {"name": self.name, "pipeline_version": self.pipeline_version}


@dataclass(frozen=True)
class Calibration:
    """How much to trust the model's probabilities, fitted at export (never on the device).

    The default is no calibration: temperature 1 (probabilities as the model gives them) and
    no confidence threshold (every answer is given, none is "unsure").
    """

    temperature: float = 1.0
    #: The suggested threshold: a top-1 probability (after temperature) below it is "unsure".
    min_confidence: float | None = None
    #: Expected calibration error after / before scaling, and where it was fitted (reports).
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
        cal.check()
        return cal

    def check(self) -> None:
        """Refuse a temperature or threshold that would make answers meaningless."""
        if not self.temperature > 0:
            raise ValueError(f"calibration temperature must be positive, not "
                             f"{self.temperature}")
        if self.min_confidence is not None and not 0 <= self.min_confidence <= 1:
            raise ValueError(f"calibration min_confidence must be within 0..1, not "
                             f"{self.min_confidence}")

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
    """A parsed, validated ``manifest.json`` plus the folder it came from (or goes to)."""

    root: Path
    model: str
    class_names: tuple[str, ...]
    preprocessing: Preprocessing
    artifacts: dict[str, Artifact]
    reference: Reference = field(default_factory=Reference)
    created: str = ""
    tools: dict[str, str | None] = field(default_factory=dict)
    calibration: Calibration = field(default_factory=Calibration)
    recipe: Recipe | None = None

    def path(self, name: str) -> Path:
        """Absolute path of a file named in the manifest."""
        return self.root / name

    def check_file(self, name: str) -> Path:
        """Check a listed file's size and SHA-256; refuse it if either differs.

        (An integrity check, like :func:`fmnist_edge.edge.dataset.check_file`; "verify" in
        this project means export verification against Keras.)"""
        if Path(name).name != name:
            raise BundleError(f"{name}: not a plain file name inside the bundle")
        size, sha = self._file_entry(name)
        path = self.path(name)
        if not path.is_file():
            raise BundleError(f"{path}: listed in {MANIFEST_NAME} but missing")
        if path.stat().st_size != size or sha256_of(path) != sha:
            raise BundleError(f"{path}: does not match its SHA-256 in {MANIFEST_NAME} "
                              "(tampered or truncated); re-export or re-copy the bundle")
        return path

    def reference_top1_path(self) -> Path | None:
        """The hash-checked Keras top-1 file, or None if this bundle has none."""
        pred = self.reference.predictions
        return None if pred is None else self.check_file(pred.file)

    def _file_entry(self, name: str) -> tuple[int, str]:
        if name in self.artifacts:
            art = self.artifacts[name]
            return art.bytes, art.sha256
        pred = self.reference.predictions
        if pred is not None and pred.file == name:
            return pred.bytes, pred.sha256
        raise BundleError(f"{name}: not listed in {self.root / MANIFEST_NAME}")

    def to_json(self) -> dict[str, Any]:
        """The ``manifest.json`` form, in the order of the schema above."""
        return {
            "format": FORMAT, "version": VERSION, "model": self.model, "created": self.created,
            "class_names": list(self.class_names),
            "preprocessing": self.preprocessing.to_json(),
            "artifacts": {name: art.to_json() for name, art in self.artifacts.items()},
            "reference": self.reference.to_json(),
            "tools": dict(self.tools),
            # Written only when set, so an uncalibrated bundle's manifest is unchanged.
            **({"calibration": self.calibration.to_json()}
               if self.calibration != Calibration() else {}),
            **({"recipe": self.recipe.to_json()} if self.recipe is not None else {}),
        }


def write(manifest: Manifest) -> Path:
    """Validate ``manifest`` as :func:`load` would, then write it atomically to its folder."""
    try:
        _check(manifest.preprocessing, manifest.artifacts, len(manifest.class_names))
        manifest.calibration.check()
    except ValueError as exc:
        raise BundleError(f"{manifest.root / MANIFEST_NAME}: refusing to write ({exc})") from exc
    target = manifest.root / MANIFEST_NAME
    atomic.write_json(target, manifest.to_json())
    return target


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
        return parse(Path(bundle_dir), raw)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise BundleError(f"{path}: malformed manifest ({type(exc).__name__}: {exc})") from exc


def parse(root: Path, raw: dict[str, Any]) -> Manifest:
    """The manifest of the bundle in ``root`` from its JSON form (raises on bad values)."""
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise BundleError(f"{root / MANIFEST_NAME}: not an {FORMAT} manifest")
    if int(raw["version"]) > VERSION:
        raise BundleError(f"{root / MANIFEST_NAME}: manifest version {raw['version']} is newer "
                          f"than this runner understands ({VERSION}); upgrade fmnist-edge")
    if not isinstance(raw["artifacts"], dict):
        raise TypeError("artifacts must be an object of file name → entry")
    artifacts = {name: Artifact.from_json(name, a) for name, a in raw["artifacts"].items()}
    class_names = tuple(str(c) for c in raw["class_names"])
    if not class_names:
        raise ValueError("class_names is empty")
    preprocessing = Preprocessing.from_json(raw["preprocessing"])
    _check(preprocessing, artifacts, len(class_names))
    tools = raw.get("tools") or {}
    return Manifest(
        root=root, model=str(raw["model"]), class_names=class_names,
        preprocessing=preprocessing, artifacts=artifacts,
        reference=Reference.from_json(raw.get("reference") or {}),
        created=str(raw.get("created", "")),
        tools={str(k): None if v is None else str(v) for k, v in tools.items()},
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
