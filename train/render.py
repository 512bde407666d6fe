"""Fashion-MNIST images → photo-like pictures, the way a phone or Pi camera sees a garment.

The models only ever saw studio shots: a light garment centred on pure black.  A camera sees
the garment lying on a wooden floor, a tiled bathroom, a striped blanket, or hanging on a door,
lit from one side, slightly rotated, cut by the frame edge, with a hanger hook or a hand in the
picture.  :func:`render` makes such a picture from one 28x28 image so that the ``photo`` recipe
can train on what the DEVICE pipeline (:func:`fmnist_edge.edge.photo.to_pixels`) makes of it.

One picture, step by step (every choice drawn from a generator seeded by (seed, split, index),
so a render never depends on which other images were rendered or on the worker it ran in):

1. a procedural background: wood planks, floor tiles, striped or checked blankets, carpet,
   a painted wall or door, a wrinkled sheet, a plain gradient (sometimes two meeting at an edge);
2. the garment, upscaled from 28 px; its mask is where the dataset image is not black (the
   dataset is light-on-dark, so its grey level is the negated product photo); it is coloured
   from those grey levels, as a plain colour or with a pattern (stripes, checks, dots, a print);
   shoes sometimes come as a pair;
3. rotation, horizontal flip, scale (sometimes cut by the border), offset, a soft shadow;
4. sometimes a hanger above the garment or a hand reaching in from an edge;
5. a lighting gradient, vignette and colour cast, a mild perspective tilt, blur, sensor noise
   and a JPEG re-encode.

Only numpy and pillow: a render takes a few milliseconds at 192x256.

    python -m fmnist_edge.train.render --split test -n 1000 -o rendered-test
"""

from __future__ import annotations

import colorsys
import io
import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

#: Bump when a change makes renders differ: it keys the render cache.
RENDER_VERSION = 2

#: Canvas (width, height) of a portrait render; landscape ones swap the two.  Phone photos are
#: 3:4; the device pipeline shrinks larger pictures anyway, so more pixels only cost time.
CANVAS = (192, 256)

#: Labels of the footwear classes (Sandal, Sneaker, Ankle boot): sometimes rendered as a pair.
SHOES = (5, 7, 9)
#: Classes a hanger makes sense for (tops, trousers, dresses, coats, shirts).
HANGABLE = (0, 1, 2, 3, 4, 6)

#: Splits a render's seed is derived from, so train and test renders never share a stream.
SPLIT_CODES = {"train": 0, "test": 1}

Rng = np.random.Generator
Layer = np.ndarray  # float32 (H, W, 3) in [0, 1]


def render(image: np.ndarray, label: int, rng: Rng, landscape: bool | None = None) -> bytes:
    """One 28x28 light-on-dark uint8 image → a photo-like RGB picture, JPEG-encoded.

    ``landscape`` forces the orientation (camera frames are 4:3 landscape); by default it is
    drawn (30 % landscape, like the mix of phone photos and camera frames).
    """
    picture, _ = compose(image, label, rng, landscape)
    return encode(picture, rng)


def encode(picture: Image.Image, rng: Rng) -> bytes:
    """A composed picture as a phone saves it: JPEG at a quality drawn from 40 to 95."""
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=int(rng.integers(40, 96)))
    return out.getvalue()


def compose(image: np.ndarray, label: int, rng: Rng, landscape: bool | None = None
            ) -> tuple[Image.Image, np.ndarray]:
    """The picture before JPEG encoding, and where the garment is in it (alpha, before the
    camera's tilt and blur): what :func:`render` encodes, and what tests check."""
    picture, alpha, _ = scene(image, label, rng, landscape)
    return picture, alpha


def scene(image: np.ndarray, label: int, rng: Rng, landscape: bool | None = None
          ) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """:func:`compose`, plus the alpha as the camera saw it: moved by the same perspective
    tilt as the picture (the learned segmenter, :mod:`fmnist_edge.train.segnet`, trains on
    where the garment IS in the picture).  Draws exactly what :func:`compose` draws."""
    if landscape is None:
        landscape = bool(rng.random() < 0.3)
    w, h = CANVAS[::-1] if landscape else CANVAS
    canvas = background(rng, h, w)
    garment, alpha = _garment_layer(np.asarray(image, np.uint8), label, rng)
    garment, alpha = _place(garment, alpha, rng, h, w, label)
    canvas = _shadow(canvas, alpha, rng)
    canvas = canvas * (1 - alpha[..., None]) + garment * alpha[..., None]
    picture = Image.fromarray(_to_uint8(canvas))
    _occluder(picture, alpha, label, rng)
    picture, tilt = _camera(picture, rng)
    seen = alpha
    if tilt is not None:
        seen = np.asarray(Image.fromarray(alpha.astype(np.float32), mode="F").transform(
            (w, h), Image.Transform.PERSPECTIVE, tilt, Image.Resampling.BILINEAR, fillcolor=0.0),
            np.float32)
    return picture, alpha, seen


def garment_mask(image: np.ndarray) -> np.ndarray:
    """Where the garment is in a dataset image.

    The dataset is light-on-dark, so the garment is where pixels are not 0, with two fixes a
    photo needs: black pixels enclosed by the garment (white cuffs, a white print: the
    product photo's white negates to 0) are garment, not holes through which the floor would
    show; and isolated specks (a lit pixel with at most one lit neighbour: scanner noise)
    are not garment, or they would become bright flecks beside it.
    """
    lit = np.asarray(image) > 0
    padded = np.pad(lit, 1).astype(np.int8)
    neighbours = np.sum([np.roll(padded, (dy, dx), (0, 1))
                         for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx], axis=0)[1:-1, 1:-1]
    lit &= neighbours >= 2
    outside = np.zeros_like(lit)  # background: dark pixels connected to the image border
    outside[0], outside[-1], outside[:, 0], outside[:, -1] = (~lit[0], ~lit[-1], ~lit[:, 0],
                                                              ~lit[:, -1])
    while True:
        grown = outside.copy()
        grown[1:] |= outside[:-1]
        grown[:-1] |= outside[1:]
        grown[:, 1:] |= outside[:, :-1]
        grown[:, :-1] |= outside[:, 1:]
        grown &= ~lit
        if (grown == outside).all():
            return ~outside
        outside = grown


# --------------------------------------------------------------------------------------------
# Colours and noise


def _colour(rng: Rng, sat: tuple[float, float] = (0.0, 0.9),
            val: tuple[float, float] = (0.1, 0.95), hue: tuple[float, float] = (0.0, 1.0)
            ) -> np.ndarray:
    """A random RGB colour in [0, 1] from ranges of hue, saturation and value."""
    rgb = colorsys.hsv_to_rgb(rng.uniform(*hue) % 1.0, rng.uniform(*sat), rng.uniform(*val))
    return np.asarray(rgb, np.float32)


def _smooth_noise(rng: Rng, h: int, w: int, cells: int) -> np.ndarray:
    """Noise in [0, 1] varying over about ``cells`` blobs per side (bicubic-upsampled)."""
    ch, cw = max(2, cells * h // max(h, w)), max(2, cells * w // max(h, w))
    small = Image.fromarray(rng.random((ch, cw)).astype(np.float32), mode="F")
    return np.asarray(small.resize((w, h), Image.Resampling.BICUBIC), np.float32).clip(0, 1)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates as float32 arrays of shape (H, 1) and (1, W)."""
    return (np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :])


def _to_uint8(layer: Layer) -> np.ndarray:
    return np.clip(np.rint(layer * 255), 0, 255).astype(np.uint8)


def _palette(rng: Rng, n: int) -> list[np.ndarray]:
    """``n`` colours that go together: a shared hue family, or anything (kids' blankets)."""
    if rng.random() < 0.5:
        base = rng.random()
        return [_colour(rng, hue=(base - 0.08, base + 0.08)) for _ in range(n)]
    return [_colour(rng) for _ in range(n)]


# --------------------------------------------------------------------------------------------
# Backgrounds: what garments lie on or hang in front of


def _wood(rng: Rng, h: int, w: int) -> Layer:
    """Planks with grain: warped sine rings along the plank, a seam between planks."""
    y, x = _grid(h, w)
    along, across = (y, x) if rng.random() < 0.5 else (x, y)
    plank = rng.uniform(18, 60)
    idx = np.floor(across / plank)
    base = _colour(rng, sat=(0.25, 0.7), val=(0.25, 0.85), hue=(0.04, 0.11))
    warp = _smooth_noise(rng, h, w, 6) * rng.uniform(10, 40)
    rings = 0.5 + 0.5 * np.sin((across + warp + along * 0.05) * rng.uniform(0.3, 0.9) + idx * 7)
    jitter = 1 + 0.18 * np.sin(idx * 12.9898 + rng.random() * 6)
    seam = (np.mod(across, plank) < rng.uniform(0.8, 2.5)).astype(np.float32)
    shade = (0.72 + 0.28 * rings) * jitter * (1 - 0.45 * seam)
    return base * shade[..., None]


def _tiles(rng: Rng, h: int, w: int) -> Layer:
    """Floor or wall tiles: squares (sometimes two-colour checker) with grout lines."""
    y, x = _grid(h, w)
    size = rng.uniform(20, 70)
    grout = rng.uniform(1.0, 4.0)
    ty, tx = np.floor(y / size), np.floor(x / size)
    a, b = _colour(rng, sat=(0, 0.5)), _colour(rng, sat=(0, 0.5))
    checker = (rng.random() < 0.35) * (np.mod(ty + tx, 2))
    tile = a * (1 - checker[..., None]) + b * checker[..., None]
    tile = tile * (1 + 0.08 * np.sin(ty * 3.1 + tx * 7.7)[..., None])
    speckle = 1 + rng.uniform(0, 0.08) * (rng.random((h, w)).astype(np.float32) - 0.5)
    tile = tile * speckle[..., None]
    lines = (np.mod(y, size) < grout) | (np.mod(x, size) < grout)
    line_colour = _colour(rng, sat=(0, 0.2), val=(0.2, 0.95))
    return np.where(lines[..., None], line_colour, tile)


def _bands(rng: Rng, length: int) -> np.ndarray:
    """Colours of ``length`` positions across a woven band pattern: (length, 3)."""
    colours = _palette(rng, int(rng.integers(2, 6)))
    edges = np.cumsum(rng.uniform(4, 30, size=64))
    band = np.searchsorted(edges, np.arange(length) % edges[-1])
    return np.stack([colours[i % len(colours)] for i in band]).astype(np.float32)


def _stripes(rng: Rng, h: int, w: int) -> Layer:
    """A striped blanket or rug: bands of random widths from a small palette."""
    if rng.random() < 0.6:
        return np.broadcast_to(_bands(rng, h)[:, None], (h, w, 3)).copy()
    return np.broadcast_to(_bands(rng, w)[None, :], (h, w, 3)).copy()


def _checks(rng: Rng, h: int, w: int) -> Layer:
    """Plaid or gingham: horizontal and vertical bands woven together (averaged)."""
    return 0.5 * (_bands(rng, h)[:, None] + _bands(rng, w)[None, :])


def _carpet(rng: Rng, h: int, w: int) -> Layer:
    """Carpet or rug: a colour with fine pile noise and soft blotches."""
    base = _colour(rng, sat=(0, 0.6), val=(0.15, 0.9))
    fine = rng.standard_normal((h, w), dtype=np.float32) * rng.uniform(0.04, 0.14)
    blotch = _smooth_noise(rng, h, w, 8) - 0.5
    return base * (1 + fine + 0.25 * blotch)[..., None]


def _wall(rng: Rng, h: int, w: int) -> Layer:
    """A painted wall or door: flat paint, uneven light, sometimes door panels and a handle."""
    base = _colour(rng, sat=(0, 0.35), val=(0.45, 0.97))
    layer = base * (0.9 + 0.15 * _smooth_noise(rng, h, w, 3))[..., None]
    if rng.random() < 0.5:  # door panels: darker outlines of two or four rectangles
        img = Image.fromarray(_to_uint8(layer))
        draw = ImageDraw.Draw(img)
        edge = tuple(int(v) for v in _to_uint8(base * 0.7))
        m = int(w * 0.12)
        for top, bottom in ((0.08, 0.45), (0.52, 0.92)):
            draw.rectangle((m, int(h * top), w - m, int(h * bottom)), outline=edge,
                           width=int(rng.integers(1, 4)))
        if rng.random() < 0.6:
            hx, hy = int(w * rng.choice([0.06, 0.9])), int(h * 0.5)
            metal = tuple(int(v) for v in rng.integers(60, 220, 3))
            draw.rectangle((hx - 3, hy - 12, hx + 3, hy + 12), fill=metal)
        layer = np.asarray(img, np.float32) / 255
    return layer


def _sheet(rng: Rng, h: int, w: int) -> Layer:
    """A bed sheet or duvet: light fabric with wrinkle shading, sometimes a small print."""
    base = _colour(rng, sat=(0, 0.5), val=(0.5, 0.97))
    folds = _smooth_noise(rng, h, w, 5) * 0.6 + _smooth_noise(rng, h, w, 14) * 0.4
    layer = base * (0.72 + 0.35 * folds)[..., None]
    if rng.random() < 0.3:
        y, x = _grid(h, w)
        step = rng.uniform(8, 20)
        dots = (np.mod(y, step) < 3) & (np.mod(x + (np.floor(y / step) % 2) * step / 2, step) < 3)
        layer = np.where(dots[..., None], _colour(rng), layer)
    return layer


def _gradient(rng: Rng, h: int, w: int) -> Layer:
    """A plain surface in uneven light: two colours blended along a random direction."""
    y, x = _grid(h, w)
    angle = rng.uniform(0, 2 * math.pi)
    t = (x * math.cos(angle) + y * math.sin(angle))
    t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    a, b = _colour(rng), _colour(rng)
    return a * (1 - t[..., None]) + b * t[..., None]


#: Background makers and how often each is drawn.
BACKGROUNDS: dict[str, tuple[Callable[[Rng, int, int], Layer], float]] = {
    "wood": (_wood, 0.18), "tiles": (_tiles, 0.10), "stripes": (_stripes, 0.06),
    "checks": (_checks, 0.04), "carpet": (_carpet, 0.14), "wall": (_wall, 0.18),
    "sheet": (_sheet, 0.22), "gradient": (_gradient, 0.08),
}


def background(rng: Rng, h: int, w: int, kind: str | None = None) -> Layer:
    """A (H, W, 3) float background; a quarter of them join two surfaces at a random edge
    (a floor meeting a wall, the end of a bed)."""
    names = list(BACKGROUNDS)
    weights = np.array([BACKGROUNDS[n][1] for n in names])
    pick = kind or str(rng.choice(names, p=weights / weights.sum()))
    layer = BACKGROUNDS[pick][0](rng, h, w)
    if kind is None and rng.random() < 0.2:
        other = BACKGROUNDS[str(rng.choice(names, p=weights / weights.sum()))][0](rng, h, w)
        y, x = _grid(h, w)
        angle = rng.uniform(0, 2 * math.pi)
        side = (x - w / 2) * math.cos(angle) + (y - h / 2) * math.sin(angle)
        cut = side > rng.uniform(0.25, 0.5) * max(h, w)
        layer = np.where(cut[..., None], other, layer)
    return np.clip(layer, 0, 1).astype(np.float32)


# --------------------------------------------------------------------------------------------
# The garment


def _garment_layer(image: np.ndarray, label: int, rng: Rng) -> tuple[Layer, np.ndarray]:
    """The 28x28 garment, cropped to its mask, coloured, at about 7x: (RGB, alpha) floats."""
    mask = garment_mask(image)
    if not mask.any():  # an all-black image: nothing to render but the background
        return np.zeros((1, 1, 3), np.float32), np.zeros((1, 1), np.float32)
    ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    box = np.s_[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1]
    crop = np.pad(_spread_interior(image, mask), 2, mode="edge")[box[0].start:box[0].stop + 4,
                                                                  box[1].start:box[1].stop + 4]
    inside = np.pad(mask, 2)[box[0].start:box[0].stop + 4, box[1].start:box[1].stop + 4]
    factor = rng.uniform(5.5, 8.0)
    size = (max(2, round(crop.shape[1] * factor)), max(2, round(crop.shape[0] * factor)))
    grey = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BICUBIC),
                      np.float32) / 255
    hard = Image.fromarray((inside * 255).astype(np.uint8)).resize(
        size, Image.Resampling.BILINEAR)
    alpha = np.asarray(hard.filter(ImageFilter.GaussianBlur(0.8)), np.float32) / 255
    alpha = np.clip((alpha - 0.35) * 2.5, 0, 1)
    rgb = _colourise(grey.clip(0, 1), rng)
    if rng.random() < 0.5:
        rgb, alpha = rgb[:, ::-1], alpha[:, ::-1]
    if label in SHOES and rng.random() < 0.35:
        rgb, alpha = _pair(rgb, alpha, rng)
    return rgb, alpha


def _max3(values: np.ndarray) -> np.ndarray:
    """3x3 grey-level dilation (maximum over each pixel's neighbourhood)."""
    padded = np.pad(values, 1)
    h, w = values.shape
    return np.max([padded[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], axis=0)


def _spread_interior(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The garment's interior grey levels, spread over its outline and a little beyond.

    The dataset's outline pixels are anti-aliased toward black (white in the product photo);
    coloured as they are, every garment would get a light rim, and upscaling would bleed the
    black background into the edge.  The interior (the mask shrunk by one pixel) is grown
    outward three pixels by grey-level dilation instead; the alpha mask still gives the shape.
    """
    grey = np.asarray(image, np.float32)
    interior = mask & ~_max3((~mask).astype(np.float32)).astype(bool)
    if not interior.any():
        interior = mask
    values = np.where(interior, grey, 0.0)
    for _ in range(3):
        values = np.where(values > 0, values, _max3(values))
    return values.clip(0, 255).astype(np.uint8)


def _colourise(grey: np.ndarray, rng: Rng) -> Layer:
    """Give the garment a colour and texture from its grey levels.

    A dataset grey level is a negated product photo: high means a dark part of the garment.
    ``shade`` keeps that relief (seams, folds, prints) while the colour is drawn freely:
    as photographed (tinted grey), a plain colour, or a pattern (stripes, checks, dots, denim,
    a print on the chest).
    """
    h, w = grey.shape
    lum = 1 - grey  # the product photo's own brightness of each garment pixel
    inside = grey > 0.02
    lo, hi = (np.percentile(lum[inside], (5, 90)) if inside.any() else (0.0, 1.0))
    # The dataset's anti-aliased outline is nearly white in the product photo; without this
    # clamp every garment would get a light halo no real garment has.
    lum = np.minimum(lum, hi)
    rel = np.clip((lum - lo) / max(float(hi - lo), 0.05), 0, 1)
    mode = rng.random()
    if mode < 0.3:  # as photographed: the dataset's brightness, tinted and re-exposed
        tint = 1 - rng.uniform(0, 0.35) * (1 - _colour(rng, sat=(0.3, 1.0), val=(1, 1)))
        exposure = rng.uniform(0.7, 1.4)
        return np.clip(lum[..., None] * exposure * tint, 0, 1)
    colour = _colour(rng, sat=(0, 1.0), val=(0.08, 0.98))
    depth = rng.uniform(0.15, 0.55)
    layer = colour * (1 - depth + depth * rel)[..., None]
    if mode > 0.65:
        layer = _pattern(layer, rng, h, w)
    fabric = 1 + rng.standard_normal((h, w), dtype=np.float32) * rng.uniform(0.0, 0.06)
    return np.clip(layer * fabric[..., None], 0, 1)


def _pattern(layer: Layer, rng: Rng, h: int, w: int) -> Layer:
    """Overlay a fabric pattern or a chest print on a coloured garment."""
    y, x = _grid(h, w)
    other = _colour(rng)
    kind = rng.integers(0, 5)
    if kind == 0:  # stripes at an angle
        angle, period = rng.uniform(0, math.pi), rng.uniform(5, 20)
        on = np.mod(x * math.cos(angle) + y * math.sin(angle), period) < period / 2
    elif kind == 1:  # checks
        period = rng.uniform(6, 22)
        on = (np.mod(x, period) < period / 2) ^ (np.mod(y, period) < period / 2)
    elif kind == 2:  # dots or a small floral print
        period = rng.uniform(6, 16)
        radius = period * rng.uniform(0.15, 0.35)
        on = (np.mod(x, period) - period / 2) ** 2 + (np.mod(y, period) - period / 2) ** 2
        on = on < radius ** 2
    elif kind == 3:  # denim: fine diagonal twill noise in blue
        twill = 0.5 + 0.5 * np.sin((x + y) * 1.3)
        denim = _colour(rng, sat=(0.3, 0.8), val=(0.2, 0.7), hue=(0.55, 0.65))
        noise = rng.standard_normal((h, w), dtype=np.float32) * 0.08
        return layer * 0.2 + denim * (0.85 + 0.15 * twill + noise)[..., None]
    else:  # a print in the middle of the chest: blobs of contrasting colour
        blob = _smooth_noise(rng, h, w, 6) > 0.55
        box = ((np.abs(y - h * 0.42) < h * rng.uniform(0.1, 0.22))
               & (np.abs(x - w / 2) < w * rng.uniform(0.12, 0.3)))
        on = blob & box
    mix = np.broadcast_to(on, (h, w))[..., None]
    return np.where(mix, layer * 0.3 + other * 0.7, layer)


def _pair(rgb: Layer, alpha: np.ndarray, rng: Rng) -> tuple[Layer, np.ndarray]:
    """Two shoes: a second copy behind the first, shifted down/up and sideways."""
    h, w = alpha.shape
    dy, dx = int(h * rng.uniform(0.25, 0.6)), int(w * rng.uniform(-0.2, 0.2))
    H, W = h + dy, w + abs(dx)
    out = np.zeros((H, W, 3), np.float32)
    a = np.zeros((H, W), np.float32)
    bx, fx = (max(dx, 0), max(-dx, 0))
    out[:h, bx:bx + w], a[:h, bx:bx + w] = rgb * 0.9, alpha
    front = alpha[..., None]
    region = np.s_[dy:dy + h, fx:fx + w]
    out[region] = out[region] * (1 - front) + rgb * front
    a[region] = np.maximum(a[region], alpha)
    return out, a


def _place(rgb: Layer, alpha: np.ndarray, rng: Rng, h: int, w: int, label: int
           ) -> tuple[Layer, np.ndarray]:
    """Rotate, scale and offset the garment onto an (H, W) canvas; sometimes cut by the edge."""
    rgba = np.dstack([rgb, alpha])
    img = Image.fromarray(_to_uint8(rgba), mode="RGBA")
    angle = rng.normal(0, 3) if rng.random() < 0.85 else rng.uniform(-15, 15)
    if label in SHOES and rng.random() < 0.2:
        angle = rng.uniform(-40, 40)  # shoes lie any which way on a floor
    img = img.rotate(float(angle), resample=Image.Resampling.BILINEAR, expand=True)
    fill = rng.uniform(0.7, 1.0) if rng.random() < 0.75 else rng.uniform(1.0, 1.15)
    scale = fill * min(w / img.width, h / img.height)
    size = (max(2, round(img.width * scale)), max(2, round(img.height * scale)))
    img = img.resize(size, Image.Resampling.BILINEAR)
    slack_x, slack_y = w - size[0], h - size[1]
    cx = slack_x / 2 + rng.normal(0, 0.06) * w
    cy = slack_y / 2 + rng.normal(0, 0.06) * h
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    layer.paste(img, (round(cx), round(cy)), img)
    arr = np.asarray(layer, np.float32) / 255
    return arr[..., :3], arr[..., 3]


def _shadow(canvas: Layer, alpha: np.ndarray, rng: Rng) -> Layer:
    """A soft shadow: the garment's mask, blurred and shifted, darkening what is under it."""
    if rng.random() < 0.5:
        return canvas
    mask = Image.fromarray(_to_uint8(alpha))
    soft = mask.filter(ImageFilter.GaussianBlur(float(rng.uniform(3, 12))))
    dx, dy = (int(v) for v in rng.integers(-10, 11, 2))
    shade = np.roll(np.asarray(soft, np.float32) / 255, (dy, dx), axis=(0, 1))
    return canvas * (1 - rng.uniform(0.1, 0.35) * shade)[..., None]


def _occluder(picture: Image.Image, alpha: np.ndarray, label: int, rng: Rng) -> None:
    """Sometimes a hanger above the garment or a hand reaching in from an edge (in place)."""
    ys, xs = np.nonzero(alpha > 0.5)
    if not len(ys):
        return
    top, left, right, bottom = int(ys.min()), int(xs.min()), int(xs.max()), int(ys.max())
    draw = ImageDraw.Draw(picture)
    roll = rng.random()
    if label in HANGABLE and roll < 0.15:
        cx, span = (left + right) // 2, (right - left) * rng.uniform(0.3, 0.5)
        colour = tuple(int(v) for v in _to_uint8(_colour(rng, sat=(0, 0.5))))
        width = int(rng.integers(2, 6))
        bar_y = top + int(rng.integers(0, 8))
        draw.line((cx - span, bar_y, cx, bar_y - 18, cx + span, bar_y), fill=colour, width=width)
        draw.arc((cx - 8, bar_y - 38, cx + 8, bar_y - 18), 180, 360 + 90, fill=colour,
                 width=max(1, width - 1))
        draw.line((cx, bar_y - 18, cx, bar_y - 26), fill=colour, width=max(1, width - 1))
    elif roll < 0.2:
        skin = colorsys.hsv_to_rgb(rng.uniform(0.02, 0.09), rng.uniform(0.25, 0.6),
                                   rng.uniform(0.35, 0.95))
        fill = tuple(int(v * 255) for v in skin)
        side = int(rng.integers(0, 4))
        w, h = picture.size
        r = int(min(w, h) * rng.uniform(0.08, 0.14))
        edge_pos = {0: (int(rng.integers(left, right + 1)), 0),
                    1: (int(rng.integers(left, right + 1)), h),
                    2: (0, int(rng.integers(top, bottom + 1))),
                    3: (w, int(rng.integers(top, bottom + 1)))}[side]
        ex, ey = edge_pos
        draw.ellipse((ex - r, ey - r, ex + r, ey + r), fill=fill)
        tx = (left + right) / 2 - ex
        ty = (top + bottom) / 2 - ey
        norm = max(math.hypot(tx, ty), 1.0)
        for k in range(4):  # fingers toward the garment
            ox, oy = -ty / norm * (k - 1.5) * r * 0.45, tx / norm * (k - 1.5) * r * 0.45
            fx, fy = ex + ox + tx / norm * r * 1.6, ey + oy + ty / norm * r * 1.6
            draw.line((ex + ox, ey + oy, fx, fy), fill=fill, width=max(2, r // 3))


def _camera(picture: Image.Image, rng: Rng) -> tuple[Image.Image, tuple[float, ...] | None]:
    """Light, lens and sensor: gradient, vignette, cast, tilt, blur and noise; also the tilt's
    perspective coefficients (None: no tilt), so the garment's mask can follow it."""
    w, h = picture.size
    tilt = None
    if rng.random() < 0.4:
        picture, tilt = _perspective(picture, rng)
    y, x = _grid(h, w)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (x / w - 0.5) * math.cos(angle) + (y / h - 0.5) * math.sin(angle)
    vignette = 1 - rng.uniform(0, 0.35) * (((x / w - 0.5) ** 2 + (y / h - 0.5) ** 2) * 2)
    light = (1 + rng.uniform(0, 0.7) * ramp) * vignette * rng.uniform(0.7, 1.25)
    cast = rng.uniform(0.88, 1.12, 3).astype(np.float32)
    arr = np.asarray(picture, np.float32) * light[..., None] * cast
    noise = rng.standard_normal((h, w, 1), dtype=np.float32) * rng.uniform(0, 9)
    out = Image.fromarray(np.clip(arr + noise, 0, 255).astype(np.uint8))
    if rng.random() < 0.6:
        out = out.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.4))))
    return out, tilt


def _perspective(picture: Image.Image, rng: Rng) -> tuple[Image.Image, tuple[float, ...]]:
    """A camera not quite square to the floor or door: corners moved by up to 5 %; the
    picture and the transform's coefficients."""
    w, h = picture.size
    src = [(0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))]
    jitter = rng.uniform(-0.05, 0.05, (4, 2)) * (w, h)
    dst = [(sx + float(jx), sy + float(jy)) for (sx, sy), (jx, jy) in zip(src, jitter,
                                                                            strict=True)]
    coeffs = _perspective_coeffs(src, dst)
    return picture.transform((w, h), Image.Transform.PERSPECTIVE, coeffs,
                             Image.Resampling.BILINEAR, fillcolor=_edge_colour(picture)), coeffs


def _edge_colour(picture: Image.Image) -> tuple[int, ...]:
    """The median border colour: what a slightly wider shot would have shown there."""
    arr = np.asarray(picture)
    ring = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    return tuple(int(v) for v in np.median(ring, axis=0))


def _perspective_coeffs(src: list[tuple[float, float]], dst: list[tuple[float, float]]
                        ) -> tuple[float, ...]:
    """The 8 coefficients pillow's PERSPECTIVE transform wants (output ``src`` → input ``dst``)."""
    rows: list[list[float]] = []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    rhs = np.array([c for pt in dst for c in pt], np.float64)
    return tuple(float(c) for c in np.linalg.solve(np.array(rows, np.float64), rhs))


# --------------------------------------------------------------------------------------------
# Many at once


def rng_for(seed: int, split: str, index: int) -> Rng:
    """The generator of one render: depends only on (seed, split, image index)."""
    return np.random.default_rng([seed, SPLIT_CODES[split], index])


if __name__ == "__main__":  # pragma: no cover
    from fmnist_edge.train.render_cli import main

    main()
