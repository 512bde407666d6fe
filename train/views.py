"""Photo-like views of dataset images, drawn in 28x28 the way the device draws a photo.

The device pipeline (:mod:`fmnist_edge.edge.photo`) cuts a garment out of a photo and draws
it as the dataset would.  What comes out still differs from the dataset's studio shots in
ways the renders (:mod:`fmnist_edge.train.render`) do not teach, seen in the pipeline's
output for phone photos (the development photos, looked at and measured, never trained on:
the ranges below are broad, not fitted to them) against the dataset's training images:

- **proportions**: a garment lying flat on a bed or a floor spreads out.  The median
  width/height of the garment's box is 0.98 for T-shirts (dataset 0.79), 0.64 for trousers
  (0.39), 1.04 for shirts (0.75);
- **appearance**: the garment's inside is the photo's fabric, tone-normalised: often nearly
  flat, or a print, stripes, checks, folds, never the dataset's studio shading;
- **shape**: a garment laid down a little askew, a pair of shoes side by side.

A view keeps the garment's outline and class and changes the rest: the dataset image is
enlarged three times, its outline taken as the mask, its inside mixed with a flat tone,
a pattern, creases and folds drawn in, the shape widened (clothes), rotated, a shoe
sometimes doubled into a pair, the mask's edge grown or shrunk by a pixel; then the
device's own :func:`photo.garment_tone` and :func:`photo.draw_garment` draw it (negation
aside: the dataset image is already light on dark).  Each view is deterministic from
``(seed, copy, index)``.  About 1.5 ms per view: no cache needed.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from fmnist_edge.edge import photo, segment
from fmnist_edge.train import rendered

#: Working size: three times the dataset's, so rotations stay smooth.
UPSCALE = 3
#: Widening of clothes: the log of the width factor, uniform in this range (0.90x..1.82x).
#: Flat-lay photos are wider than the dataset's product shots (see the module docstring).
LOG_WIDTH = (-0.1, 0.6)
#: Width change of shoes and bags (log), which keep their shape when photographed.
LOG_WIDTH_RIGID = (-0.15, 0.15)
#: Rotation in degrees, either way (a garment is rarely laid perfectly straight).
ROTATION = 10.0
#: Rotation of a pair of shoes, either way: pairs lie any way round.
PAIR_ROTATION = 60.0
#: Strength (grey levels, at most) of the creases and folds drawn into the fabric.
TEXTURE = 25.0
#: Share of shoe views drawn as a pair side by side.
PAIR_SHARE = 0.5
#: Garment pixels: brighter than this in the dataset image (its background is 0).
GARMENT_LEVEL = 10

SHOES = (5, 7, 9)
BAG = 8


#: Views per process-pool job.
_CHUNK = 2_000


def many(images: np.ndarray, labels: np.ndarray, indices: np.ndarray, seed: int,
         copies: int, workers: int = rendered.MAX_WORKERS) -> np.ndarray:
    """(copies * N, 28, 28) uint8: ``copies`` views of each ``images[indices]``, copy after
    copy, made in the small process pool the renders use."""
    jobs = [(images[indices[s:s + _CHUNK]], labels[indices[s:s + _CHUNK]],
             indices[s:s + _CHUNK], seed, c)
            for c in range(copies) for s in range(0, len(indices), _CHUNK)]
    chunks = rendered.pool_map(_views_job, jobs, workers)
    return np.concatenate(chunks) if chunks else np.zeros((0, *photo.SHAPE), np.uint8)


def _views_job(job: tuple[np.ndarray, np.ndarray, np.ndarray, int, int]) -> np.ndarray:
    return views(*job)


def views(images: np.ndarray, labels: np.ndarray, keys: np.ndarray, seed: int,
          copy: int = 0) -> np.ndarray:
    """(N, 28, 28) uint8: one view of each image, seeded by ``(seed, copy, keys[k])`` (its
    index in the split: the same view whichever chunk or process makes it)."""
    out = np.zeros((len(images), *photo.SHAPE), np.uint8)
    for k, (image, label) in enumerate(zip(images, labels, strict=True)):
        rng = np.random.default_rng([seed, 7_000 + copy, int(keys[k])])
        out[k] = view(image, int(label), rng)
    return out


def view(image: np.ndarray, label: int, rng: np.random.Generator) -> np.ndarray:
    """One photo-like view of one (28, 28) uint8 dataset image (see the module docstring)."""
    side = photo.SHAPE[0] * UPSCALE
    big = np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BICUBIC),
                     np.float32)
    mask = _enlarge(_outline(image), side)
    value = _appearance(big, rng)
    rotation = ROTATION
    if label in SHOES and rng.random() < PAIR_SHARE:
        value, mask = _pair(value, mask, rng)
        rotation = PAIR_ROTATION
    rigid = label in SHOES or label == BAG
    value, mask = _reshape(value, mask, rng, LOG_WIDTH_RIGID if rigid else LOG_WIDTH, rotation)
    inside = mask > 0.5
    if inside.sum() < 4 * UPSCALE * UPSCALE:  # the shape collapsed: keep the original
        return image.copy()
    if not rigid and rng.random() < 0.5:  # clothes lie either way round; shoes face left
        value, mask, inside = value[:, ::-1], mask[:, ::-1], inside[:, ::-1]
    return photo.draw_garment(photo.garment_tone(value, inside, negate=False), mask)


def _outline(image: np.ndarray) -> np.ndarray:
    """The garment's filled outline: a dark print or a black coat's inside is still garment."""
    closed = (Image.fromarray(((image > GARMENT_LEVEL) * 255).astype(np.uint8))
              .filter(ImageFilter.MaxFilter(3)).filter(ImageFilter.MinFilter(3)))
    return segment.fill_holes(np.asarray(closed) > 0)


def _enlarge(mask: np.ndarray, side: int) -> np.ndarray:
    """A bool mask resized to ``side`` square, as float 0..1 (soft edges)."""
    img = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(img.resize((side, side), Image.Resampling.BILINEAR), np.float32) / 255


def _appearance(big: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The garment's inside: its own shading, or that mixed with a flat tone or a pattern."""
    flat = np.full(big.shape, rng.uniform(0, 255), np.float32)
    pick = rng.random()
    if pick < 0.3:
        value = big
    elif pick < 0.55:
        value = _mix(big, flat, rng.uniform(0.0, 0.7))
    elif pick < 0.8:
        pattern = _pattern(rng, big.shape[0])
        printed = flat * (1 - 0.6 * pattern) + rng.uniform(0, 255) * 0.6 * pattern
        value = _mix(big, printed, rng.uniform(0.0, 0.6))
    else:
        value = flat
    return np.clip(value + _creases(rng, big.shape[0]), 0, 255)


def _creases(rng: np.random.Generator, side: int) -> np.ndarray:
    """Fabric texture as a phone photo shows it after tone normalisation: wrinkles at the
    scale of a dataset pixel and folds a few pixels across, each of random strength."""
    fine = rng.normal(size=photo.SHAPE).astype(np.float32)
    folds = rng.normal(size=(9, 9)).astype(np.float32)
    return (_resize(fine, side, Image.Resampling.BILINEAR) * rng.uniform(0, TEXTURE)
            + _resize(folds, side, Image.Resampling.BICUBIC) * rng.uniform(0, TEXTURE))


def _resize(values: np.ndarray, side: int, method: Image.Resampling) -> np.ndarray:
    return np.asarray(Image.fromarray(values).resize((side, side), method))


def _mix(a: np.ndarray, b: np.ndarray, share_a: float) -> np.ndarray:
    return share_a * a + (1 - share_a) * b


def _pattern(rng: np.random.Generator, side: int) -> np.ndarray:
    """A 0..1 fabric pattern: stripes, checks, blotches (folds, shading) or a chest print."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    period = rng.uniform(4, 14)
    angle = rng.uniform(0, np.pi)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    kind = rng.integers(4)
    if kind == 0:
        return (np.sin(2 * np.pi * u / period) > 0).astype(np.float32)
    if kind == 1:
        v = -xx * np.sin(angle) + yy * np.cos(angle)
        return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    if kind == 2:
        blotches = _resize(rng.normal(size=(4, 4)).astype(np.float32), side,
                           Image.Resampling.BICUBIC)
        return (blotches - blotches.min()) / max(float(np.ptp(blotches)), 1e-3)
    cy, cx = rng.uniform(0.3, 0.55) * side, rng.uniform(0.35, 0.65) * side
    ry, rx = rng.uniform(0.06, 0.2) * side, rng.uniform(0.08, 0.25) * side
    chest = ((np.abs(yy - cy) < ry) & (np.abs(xx - cx) < rx)).astype(np.float32)
    if rng.random() < 0.5:
        chest *= rng.random(chest.shape) < 0.5
    return chest


def _pair(value: np.ndarray, mask: np.ndarray, rng: np.random.Generator
          ) -> tuple[np.ndarray, np.ndarray]:
    """Two shoes side by side, the second usually the mirror image (a left and a right)."""
    side = value.shape[0]
    dx = int(rng.uniform(0.25, 0.8) * side)
    dy = int(rng.uniform(-0.25, 0.25) * side)
    height, width = side + abs(dy), side + dx
    out_v = np.zeros((height, width), np.float32)
    out_m = np.zeros((height, width), np.float32)
    first_y, second_y = max(0, -dy), max(0, dy)
    mirror = rng.random() < 0.7
    out_v[second_y:second_y + side, dx:] = value[:, ::-1] if mirror else value
    out_m[second_y:second_y + side, dx:] = mask[:, ::-1] if mirror else mask
    front = (slice(first_y, first_y + side), slice(0, side))
    out_v[front] = np.where(mask > 0, value, out_v[front])
    out_m[front] = np.maximum(out_m[front], mask)
    return out_v, out_m


def _reshape(value: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
             log_width: tuple[float, float], rotation: float
             ) -> tuple[np.ndarray, np.ndarray]:
    """Widen (or narrow), rotate, and grow or shrink the mask's edge by a pixel."""
    width = max(4, round(value.shape[1] * float(np.exp(rng.uniform(*log_width)))))
    angle = rng.uniform(-rotation, rotation)
    grow = int(rng.integers(-1, 2))
    out = []
    for array, is_mask in ((value, False), (mask, True)):
        img = Image.fromarray(np.clip(array * (255 if is_mask else 1), 0, 255).astype(np.uint8))
        img = img.resize((width, array.shape[0]), Image.Resampling.BILINEAR)
        img = img.rotate(angle, Image.Resampling.BILINEAR, expand=True)
        if is_mask and grow:
            img = img.filter(ImageFilter.MaxFilter(3) if grow > 0 else ImageFilter.MinFilter(3))
        out.append(np.asarray(img, np.float32) / (255 if is_mask else 1))
    return out[0], out[1]

