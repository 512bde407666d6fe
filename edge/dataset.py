"""Fashion-MNIST from the four official IDX gz files, with numpy only.

Where the files come from, in order: ``$FMNIST_DATA_DIR``; the user cache
(``$XDG_CACHE_HOME/fmnist-edge`` or ``~/.cache/fmnist-edge``); a download from the official
mirror into the cache.  Every file is checked against its published SHA-256 before a single
byte is parsed, so a corrupted or truncated file is refused, never used.  The folder named by
``$FMNIST_DATA_DIR`` is only read, never written (in CI it is read-only).

This module lives in ``edge`` because the device benchmarks need the test set too.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmnist_edge.edge import atomic
from fmnist_edge.edge.errors import DataError
from fmnist_edge.edge.hashing import sha256_of

#: Official class names, in label order (zalandoresearch/fashion-mnist README).
CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

#: Height and width of every Fashion-MNIST image, in numpy's (H, W) order, the one order
#: the project uses (pillow's (W, H) sizes are derived where pillow needs them).
IMAGE_SHAPE: tuple[int, int] = (28, 28)

#: The tutorial's ``random_state``: every seeded draw from the data (the 70/30 split, the
#: int8 calibration sample, the weights) defaults to it.
SEED = 777

#: ``progress(done, total, label)``: how a long download reports itself (the CLIs pass
#: :func:`fmnist_edge.edge.cli_util.progress`; library use stays silent).
Progress = Callable[[float, float, str], None]

#: The official mirror named in the Fashion-MNIST README.
MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

ENV_VAR = "FMNIST_DATA_DIR"
#: Set (to anything) to forbid downloads, e.g. on an air-gapped Pi or in tests.
NO_DOWNLOAD_VAR = "FMNIST_NO_DOWNLOAD"


@dataclass(frozen=True)
class IdxFile:
    """One official file: its name, published SHA-256 and expected size."""

    name: str
    sha256: str
    size: int


FILES: dict[str, IdxFile] = {
    "train-images": IdxFile(
        "train-images-idx3-ubyte.gz",
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26_421_880),
    "train-labels": IdxFile(
        "train-labels-idx1-ubyte.gz",
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29_515),
    "test-images": IdxFile(
        "t10k-images-idx3-ubyte.gz",
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4_422_102),
    "test-labels": IdxFile(
        "t10k-labels-idx1-ubyte.gz",
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5_148),
}


@dataclass(frozen=True)
class Split:
    """Images (N, 28, 28) uint8 and labels (N,) uint8 of one official split."""

    images: np.ndarray
    labels: np.ndarray


def cache_dir() -> Path:
    """The per-user cache folder; downloads land here, never beside ``$FMNIST_DATA_DIR``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fmnist-edge" / "fashion-mnist"


def check_file(path: Path, spec: IdxFile) -> None:
    """Refuse a file whose size or SHA-256 differs from the published one."""
    size = path.stat().st_size
    if size != spec.size:
        raise DataError(
            f"{path}: {size:,} bytes, expected {spec.size:,} (truncated or wrong file); "
            f"delete it and put the official {spec.name} there, or unset {ENV_VAR} to download it")
    if sha256_of(path) != spec.sha256:
        raise DataError(
            f"{path}: checksum mismatch (corrupted file); delete it and put the official "
            f"{spec.name} there, or unset {ENV_VAR} to download it")


def locate(key: str, download: bool = True, progress: Progress | None = None) -> Path:
    """Find a verified copy of one official file, downloading it to the cache if allowed."""
    spec = FILES[key]
    env_dir = os.environ.get(ENV_VAR)
    if env_dir:
        candidate = Path(env_dir) / spec.name
        if candidate.is_file():
            check_file(candidate, spec)
            return candidate
    cached = cache_dir() / spec.name
    if cached.is_file():
        check_file(cached, spec)
        return cached
    if not download or os.environ.get(NO_DOWNLOAD_VAR):
        raise DataError(_missing_message(spec, env_dir))
    return _download(spec, cached, env_dir, progress)


def _missing_message(spec: IdxFile, env_dir: str | None) -> str:
    where = f"{ENV_VAR}={env_dir}" if env_dir else f"{ENV_VAR} is not set"
    return (f"{spec.name} not found ({where}; cache {cache_dir()}): put the four Fashion-MNIST "
            f"IDX gz files in a folder and set {ENV_VAR} to it, or go online to download them")


def _download(spec: IdxFile, target: Path, env_dir: str | None,
              progress: Progress | None) -> Path:
    """Fetch one file from the mirror with a progress bar; verify it before it is kept.

    urllib and http.client are imported here, not at the top: the device runner imports this
    module for the image shape, and they pull in ssl, email and OpenSSL (about 15 ms and
    4 MiB at every ``edge-classify`` start).
    """
    import http.client
    import urllib.error

    url = MIRROR + spec.name
    try:
        with atomic.atomic_path(target) as tmp:
            _fetch(url, tmp, spec.size, progress)
            check_file(tmp, spec)
    except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as exc:
        raise DataError(f"could not download {url} ({exc}); " + _missing_message(spec, env_dir)
                        ) from exc
    return target


def _fetch(url: str, dest: Path, expected: int, progress: Progress | None) -> None:
    """Stream ``url`` into ``dest``, reporting each chunk to ``progress`` if given."""
    import urllib.request

    label = url.rsplit("/", 1)[-1]
    with urllib.request.urlopen(url, timeout=30) as resp, open(dest, "wb") as out:
        done = 0
        while chunk := resp.read(1 << 16):
            out.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, expected, f"{label} {done / 2**20:.1f} MiB")


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    """Parse a big-endian IDX file (already checksum-verified)."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    header = np.frombuffer(raw, dtype=">i4", count=1 + ndim)
    if int(header[0]) != magic:
        raise DataError(f"{path}: not an IDX file (magic {int(header[0]):#x})")
    shape = tuple(int(d) for d in header[1:])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 * (1 + ndim)).reshape(shape)


def load_split(split: str, download: bool = True, progress: Progress | None = None) -> Split:
    """Load ``"train"`` (60,000 images) or ``"test"`` (10,000 images)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    images = _read_idx(locate(f"{split}-images", download, progress), 0x803, 3)
    labels = _read_idx(locate(f"{split}-labels", download, progress), 0x801, 1)
    return Split(images=images, labels=labels)


def validation_split(n: int, val_fraction: float = 0.3, seed: int = SEED
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) of a seeded shuffle split.

    Reproduces ``sklearn.model_selection.train_test_split(test_size=0.3, random_state=777)``
    exactly, as the tutorial used it, without needing scikit-learn: ShuffleSplit takes
    ``RandomState(seed).permutation(n)``, the first ``ceil(fraction * n)`` for validation.
    """
    n_val = int(np.ceil(val_fraction * n))
    perm = np.random.RandomState(seed).permutation(n)
    return perm[n_val:], perm[:n_val]


def class_shares(count: int, classes: int) -> np.ndarray:
    """How many of ``count`` images each class gets: ``count // classes``, the first
    ``count % classes`` classes one more (as equal as whole images allow)."""
    shares = np.full(classes, count // classes)
    shares[: count % classes] += 1
    return shares


def balanced_sample(labels: np.ndarray, count: int, rng: np.random.Generator,
                    classes: np.ndarray | None = None) -> np.ndarray:
    """Indices into ``labels``, :func:`class_shares` of ``count`` per class, in class order.

    One sampler for every stage that wants a class-balanced subset of a split (the renders
    of ``fmnist-render``, the int8 calibration images), so equal seeds pick equal images.
    Images are drawn without replacement; a class with fewer images than its share gives
    all it has.  ``classes``: the classes sharing ``count`` (default: those in ``labels``).
    Callers order the result themselves: sorted for a folder, shuffled with ``rng`` to
    interleave classes.
    """
    classes = np.unique(labels) if classes is None else classes
    picks = [rng.choice(np.flatnonzero(labels == c), size=min(int(n), int((labels == c).sum())),
                        replace=False)
             for c, n in zip(classes, class_shares(count, len(classes)), strict=True)]
    return np.concatenate(picks)
