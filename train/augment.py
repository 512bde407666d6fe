"""Training-time augmentation that keeps a garment a garment.

Each image gets one random affine map: a small scale (zoom in or out), a sub-pixel shift and,
with probability one half, a horizontal flip.  Every Fashion-MNIST class survives a mirror
(a left shoe mirrored is a right shoe; shirts, bags and trousers are near symmetric), so the
flip is safe for all ten; vertical flips and rotations are not used (an upside-down boot is
not in the data).  Sampling is bilinear with black outside the frame, the background of the
dataset.

Written in numpy, not as Keras layers, so that an epoch's images are a pure function of
``(seed, epoch)``: two runs see the same pixels, and the teacher's outputs for an epoch can
be computed once and reused by both students.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Images transformed per vectorised chunk (bounds the temporaries to ~100 MB).
CHUNK = 8192


@dataclass(frozen=True)
class Augment:
    """How far each transform may go; zero switches it off."""

    shift: float = 2.0  # pixels, uniform in [-shift, shift] per axis
    scale: float = 0.10  # relative, uniform zoom in [1 - scale, 1 + scale]
    flip: bool = True  # horizontal mirror with probability 0.5
    #: Shifts by whole pixels (uniform over -shift..shift): no resampling blur, the images
    #: stay as sharp as the test images; the choice for the teacher and the students.
    whole_pixels: bool = False

    @property
    def active(self) -> bool:
        """Whether this changes any image at all."""
        return self.shift > 0 or self.scale > 0 or self.flip


NONE = Augment(shift=0.0, scale=0.0, flip=False)


def epoch_images(x: np.ndarray, aug: Augment, seed: int, epoch: int) -> np.ndarray:
    """The augmented training images of one epoch, fixed by ``(seed, epoch)``."""
    if not aug.active:
        return x
    rng = np.random.default_rng([seed, epoch])
    return transform(x, aug, rng)


def transform(x: np.ndarray, aug: Augment, rng: np.random.Generator) -> np.ndarray:
    """Apply one random affine map per image of ``x`` (N, H, W) float32."""
    n = len(x)
    scale = rng.uniform(1 - aug.scale, 1 + aug.scale, n).astype(np.float32)
    if aug.whole_pixels:
        reach = int(aug.shift)
        dx = rng.integers(-reach, reach + 1, n).astype(np.float32)
        dy = rng.integers(-reach, reach + 1, n).astype(np.float32)
    else:
        dx = rng.uniform(-aug.shift, aug.shift, n).astype(np.float32)
        dy = rng.uniform(-aug.shift, aug.shift, n).astype(np.float32)
    flip = rng.random(n) < 0.5 if aug.flip else np.zeros(n, dtype=bool)
    out = np.empty_like(x)
    for start in range(0, n, CHUNK):
        part = slice(start, start + CHUNK)
        out[part] = _affine(x[part], scale[part], dx[part], dy[part], flip[part])
    return out


def _affine(x: np.ndarray, scale: np.ndarray, dx: np.ndarray, dy: np.ndarray,
            flip: np.ndarray) -> np.ndarray:
    """Bilinear resampling of each image about its centre (the inverse map per pixel)."""
    n, h, w = x.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    rows = np.arange(h, dtype=np.float32)[None, :, None]
    cols = np.arange(w, dtype=np.float32)[None, None, :]
    cols = np.where(flip[:, None, None], (w - 1) - cols, cols)
    src_y = cy + (rows - cy) / scale[:, None, None] - dy[:, None, None]
    src_x = cx + (cols - cx) / scale[:, None, None] - dx[:, None, None]
    src_y = np.broadcast_to(src_y, (n, h, w))
    # A one-pixel black border, so every out-of-frame sample reads zero.
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    src_y = np.clip(src_y + 1, 0, h + 1)
    src_x = np.clip(src_x + 1, 0, w + 1)
    y0 = np.floor(src_y).astype(np.int32)
    x0 = np.floor(src_x).astype(np.int32)
    wy = (src_y - y0).astype(np.float32)
    wx = (src_x - x0).astype(np.float32)
    y1 = np.minimum(y0 + 1, h + 1)
    x1 = np.minimum(x0 + 1, w + 1)
    flat = padded.reshape(n, -1)
    stride = w + 2
    idx = np.arange(n)[:, None]

    def at(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        return flat[idx, (yy * stride + xx).reshape(n, -1)].reshape(n, h, w)

    top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    return (top * (1 - wy) + bottom * wy).astype(x.dtype)
