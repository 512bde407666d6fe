"""A bundle's model, opened for inference: manifest + verified file + runtime session.

This is the one code path from 28x28 pixels to class probabilities.  ``edge-classify``,
the device benchmarks and the exporter's own verification all go through
:class:`EdgeModel`, so what is verified at export is what runs on the Pi.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmnist_edge.edge import manifest as mf
from fmnist_edge.edge import preprocess, runtimes
from fmnist_edge.edge.errors import BundleError

#: Which artifact a bundle folder resolves to when none is named: smallest and fastest first.
ARTIFACT_PREFERENCE: tuple[tuple[str, str], ...] = (
    ("int8", "tflite"), ("int8", "onnx"), ("dynamic", "tflite"), ("float16", "tflite"),
    ("float32", "tflite"), ("float32", "onnx"),
)


def resolve(path: Path, backend: str | None = None) -> tuple[mf.Manifest, mf.Artifact]:
    """A bundle folder or a model file inside one → its manifest and the artifact to run."""
    path = Path(path)
    if not path.exists():
        raise BundleError(f"{path}: no such model bundle or file")
    if path.is_dir():
        manifest = mf.load(path)
        return manifest, _pick(manifest, backend)
    manifest = mf.load(path.parent)
    if path.name not in manifest.artifacts:
        raise BundleError(f"{path}: not listed in {path.parent / mf.MANIFEST_NAME}")
    return manifest, manifest.artifacts[path.name]


def _pick(manifest: mf.Manifest, backend: str | None) -> mf.Artifact:
    """The preferred artifact whose format has an installed (or the requested) runtime.

    Artifacts that failed verification (kept with ``fmnist-export --keep-failed``) are only
    chosen when nothing verified can run; name one explicitly to use it.
    """
    verified = [a for a in manifest.artifacts.values() if a.verified]
    failed = [a for a in manifest.artifacts.values() if a not in verified]
    for pool in (verified, failed):
        found = _first_runnable(pool, backend)
        if found is not None:
            return found
    have = ", ".join(sorted(manifest.artifacts)) or "none"
    raise BundleError(f"{manifest.root}: no artifact this machine can run (has: {have}; "
                      f"installed runtimes: {', '.join(runtimes.installed()) or 'none'})")


def _first_runnable(pool: list[mf.Artifact], backend: str | None) -> mf.Artifact | None:
    """First artifact of ``pool`` in preference order that a usable runtime can load."""
    wanted = runtimes.FORMAT_OF_BACKEND.get(backend or "")
    for precision, fmt in ARTIFACT_PREFERENCE:
        if wanted and fmt != wanted:
            continue
        if not wanted and not any(runtimes.is_installed(b) for b in runtimes.PREFERENCE[fmt]):
            continue
        for art in pool:
            if art.precision == precision and art.format == fmt:
                return art
    return None


@dataclass
class EdgeModel:
    """An artifact loaded in a runtime, with the manifest that says how to feed it."""

    manifest: mf.Manifest
    artifact: mf.Artifact
    session: runtimes.Session

    @classmethod
    def open(cls, path: Path, backend: str | None = None, threads: int | None = None,
             artifact: str | None = None) -> EdgeModel:
        """Resolve, hash-check and load; refuses a file that does not match its manifest.

        ``artifact`` names one file of the bundle; otherwise the preferred runnable one.
        """
        if artifact is None:
            manifest, art = resolve(path, backend)
        else:
            manifest = mf.load(Path(path) if Path(path).is_dir() else Path(path).parent)
            if artifact not in manifest.artifacts:
                raise BundleError(f"{artifact}: not in {manifest.root / mf.MANIFEST_NAME}")
            art = manifest.artifacts[artifact]
        file = manifest.check_file(art.file)
        return cls(manifest, art, runtimes.open_session(file, backend, threads))

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names in output order, from the manifest."""
        return self.manifest.class_names

    def input_tensor(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 28, 28) uint8 pixels → this artifact's input tensor."""
        return preprocess.to_input(pixels, self.manifest.preprocessing, self.artifact.input)

    def predict_tensor(self, x: np.ndarray) -> np.ndarray:
        """Prepared input tensor → float32 probabilities (N, classes)."""
        return preprocess.to_probabilities(self.session.run(x), self.artifact.output)

    def predict(self, pixels: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """(N, 28, 28) uint8 pixels → float32 probabilities, in batches."""
        if pixels.ndim == 2:
            pixels = pixels[None]
        chunks = [self.predict_tensor(self.input_tensor(pixels[i:i + batch_size]))
                  for i in range(0, len(pixels), batch_size)]
        return np.concatenate(chunks, axis=0)
