"""Photo-like scenes for the tests: a Fashion-MNIST test garment as cloth on a background a
Pi camera sees (a lit wall, wood, floor tiles, a striped blanket, a studio backdrop), with a
shadow, a lighting gradient and JPEG noise.  What is bright in the dataset is dark in the
world, as the dataset negated its photos.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image

SCENE = (480, 640)  # height, width: a camera frame


def wall(rng: np.random.Generator) -> np.ndarray:
    """A painted wall, lit from one side."""
    base = np.array([205, 195, 175], np.float32)
    ramp = np.linspace(0.6, 1.1, SCENE[1], dtype=np.float32)[None, :, None]
    return base * ramp + rng.normal(0, 3, (*SCENE, 3)).astype(np.float32)


def wood(rng: np.random.Generator) -> np.ndarray:
    """Wooden floor boards: brown, with grain and a seam every 90 pixels."""
    y, x = np.mgrid[0:SCENE[0], 0:SCENE[1]].astype(np.float32)
    grain = 0.85 + 0.12 * np.sin(y / 3.0 + 2.0 * np.sin(x / 45.0))
    grain[(y.astype(int) % 90) < 3] = 0.55
    base = np.array([160, 110, 70], np.float32)
    return base * grain[..., None] + rng.normal(0, 4, (*SCENE, 3)).astype(np.float32)


def tiles(rng: np.random.Generator) -> np.ndarray:
    """Beige floor tiles with grey grout, each tile a little different."""
    y, x = np.mgrid[0:SCENE[0], 0:SCENE[1]]
    shade = rng.uniform(0.9, 1.05, (SCENE[0] // 80 + 1, SCENE[1] // 80 + 1))[y // 80, x // 80]
    img = np.array([225, 215, 195], np.float32) * shade[..., None].astype(np.float32)
    grout = (y % 80 < 4) | (x % 80 < 4)
    img[grout] = (120, 115, 110)
    return img + rng.normal(0, 3, (*SCENE, 3)).astype(np.float32)


def stripes(rng: np.random.Generator) -> np.ndarray:
    """A striped blanket: blue and white bands."""
    y = np.arange(SCENE[0])[:, None, None]
    img = np.where((y // 24) % 2 == 0, np.float32([60, 90, 170]), np.float32([235, 235, 230]))
    img = np.broadcast_to(img, (*SCENE, 3)).astype(np.float32)
    return img + rng.normal(0, 3, (*SCENE, 3)).astype(np.float32)


def studio(rng: np.random.Generator) -> np.ndarray:
    """A product shot's white backdrop (what Fashion-MNIST was made from)."""
    return np.full((*SCENE, 3), 246, np.float32) + rng.normal(0, 2, (*SCENE, 3)).astype(
        np.float32)


def dark_carpet(rng: np.random.Generator) -> np.ndarray:
    """A dark grey carpet in dim light: nearly black, but not a dataset image's black."""
    y, x = np.mgrid[0:SCENE[0], 0:SCENE[1]].astype(np.float32)
    blotch = 1 + 0.12 * np.sin(x / 37.0) * np.sin(y / 29.0)
    base = np.array([36, 32, 30], np.float32)
    return base * blotch[..., None] + rng.normal(0, 4, (*SCENE, 3)).astype(np.float32)


BACKGROUNDS: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "wall": wall, "wood": wood, "tiles": tiles, "stripes": stripes, "studio": studio}
COLOURS = [(170, 30, 40), (30, 40, 60), (235, 200, 60), (40, 120, 60)]


def scene(orig: np.ndarray, background: np.ndarray, colour: tuple[int, int, int],
          at: tuple[int, int] = (90, 180), scale: int = 11) -> Image.Image:
    """``orig`` as cloth on ``background`` with a shadow and a lighting gradient, as a JPEG."""
    size = 28 * scale
    big = np.asarray(Image.fromarray(orig).resize((size, size), Image.Resampling.BICUBIC),
                     np.float32) / 255.0
    alpha = np.clip(big / 0.12, 0, 1)                        # the garment's extent
    cloth = np.float32(colour) * (1.0 - 0.45 * big[..., None])  # bright in dataset = dark
    img = background.copy()
    top, left = at
    # Shadow: the garment's outline, offset down-right, darkens what is behind.
    sy, sx = top + 12, left + 12
    region = img[max(sy, 0):sy + size, max(sx, 0):sx + size]
    shadow = alpha[:region.shape[0], :region.shape[1]]
    region *= (1.0 - 0.35 * shadow)[..., None]
    # The garment (clipped where it leaves the frame).
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + size, SCENE[0]), min(left + size, SCENE[1])
    a = alpha[y0 - top:y1 - top, x0 - left:x1 - left, None]
    c = cloth[y0 - top:y1 - top, x0 - left:x1 - left]
    img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - a) + c * a
    ramp = np.linspace(1.1, 0.8, SCENE[0], dtype=np.float32)[:, None, None]
    out = Image.fromarray(np.clip(img * ramp, 0, 255).astype(np.uint8))
    data = io.BytesIO()
    out.save(data, format="JPEG", quality=85)
    return Image.open(io.BytesIO(data.getvalue())).convert("RGB")
