"""Calibration data for int8: a seeded, class-balanced sample of *training* images.

Full-integer quantisation fixes every activation's range from a few hundred real inputs.
They come from the training split only, so the test set stays untouched for verification,
and every class is equally represented, so no class's activations are clipped for lack of
examples.  The pixels go through :func:`fmnist_edge.edge.preprocess.pixels_to_float` with
the same :class:`Preprocessing` the manifest records, so calibration sees exactly what the
device will feed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from fmnist_edge.edge import dataset
from fmnist_edge.edge.errors import UserError
from fmnist_edge.edge.manifest import Preprocessing
from fmnist_edge.edge.preprocess import pixels_to_float
from fmnist_edge.train.models import NUM_CLASSES, PREPROCESSING

DEFAULT_SIZE = 300


@dataclass(frozen=True)
class Calibration:
    """The chosen training images and how to turn them into network input."""

    pixels: np.ndarray  # (N, 28, 28) uint8
    indices: np.ndarray  # positions in the training split, for reproducibility checks
    preprocessing: Preprocessing

    def __len__(self) -> int:
        return len(self.pixels)

    def floats(self) -> np.ndarray:
        """All samples as float32 (N, 28, 28), exactly as the device preprocesses."""
        return pixels_to_float(self.pixels, self.preprocessing)

    def samples(self) -> Iterator[np.ndarray]:
        """One (1, 28, 28) float32 batch per image: the shape converters calibrate with."""
        x = self.floats()
        for i in range(len(x)):
            yield x[i:i + 1]


def balanced_indices(labels: np.ndarray, size: int, seed: int = dataset.SEED) -> np.ndarray:
    """``size`` indices into ``labels``, as equal per class as possible, reproducible by seed.

    Each class gets ``size // classes`` images and the first ``size % classes`` classes one
    more; within a class images are drawn without replacement.
    """
    classes = np.arange(NUM_CLASSES)
    if size < len(classes):
        raise UserError(f"calibration size {size} is too small: need at least {len(classes)} "
                        "images (one per class)")
    for cls, count in zip(classes, dataset.class_shares(size, len(classes)), strict=True):
        have = int((labels == cls).sum())
        if have < count:
            raise UserError(f"no calibration data: the training split has {have} images of "
                            f"class {cls}, calibration needs {count}")
    rng = np.random.default_rng(seed)
    indices = dataset.balanced_sample(labels, size, rng, classes)
    rng.shuffle(indices)  # interleave classes; the order is still fixed by the seed
    return indices


def load(size: int = DEFAULT_SIZE, seed: int = dataset.SEED,
         preprocessing: Preprocessing = PREPROCESSING,
         progress: dataset.Progress | None = None) -> Calibration:
    """Draw the calibration sample from the official training split (never the test split)."""
    if size < 1:
        raise UserError(f"calibration size must be a positive number of images, not {size}")
    train = dataset.load_split("train", progress=progress)
    if len(train.images) == 0:
        raise UserError("no calibration data: the training split is empty")
    indices = balanced_indices(train.labels, size, seed)
    return Calibration(pixels=np.ascontiguousarray(train.images[indices]), indices=indices,
                       preprocessing=preprocessing)
