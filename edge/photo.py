"""Stage 1 of preprocessing: any picture (file, bytes, camera frame) → 28x28 uint8 pixels.

The output always looks like Fashion-MNIST: a light garment on a dark background, 28x28,
8-bit grey.  The manifest's ``preprocessing`` (``polarity: "light-on-dark"``) describes it and
:func:`fmnist_edge.edge.preprocess.to_input` turns it into a tensor.  Files, camera frames and
benchmarks all come through here, so the device never preprocesses two different ways.

Five methods, selectable so they can be compared (:data:`DEFAULT_METHOD` is the default for
files and camera frames alike):

``"segment"``
    For real photos (pipeline :data:`PIPELINE_VERSION`): find the garment and only the
    garment (patterned floors, beds, doors, shadows, a garment touching or filling the
    frame), then draw it as Fashion-MNIST does: garment only, light on pure black, cropped,
    longest edge 28, centred, its tones spread like the dataset's, and a shoe turned to face
    left, as every shoe in the dataset does.  The garment is found three times, by
    segmenters that fail on different photos (``"segment-3"``'s colour models seeded by the
    frame's border, ``"segment-4"``'s learned net, and colour models seeded by the net's
    mask, :func:`segment.refine`), and each cut-out is also mirrored (unless it may be a
    shoe, which must face left): the model answers for every view and :func:`to_views`
    hands them all over, so the answer is their consensus
    (:func:`fmnist_edge.edge.preprocess.combine_views`).  A picture where no segmenter
    finds anything that stands out from the background gives blank pixels
    (:func:`is_blank`): "no garment found".
``"segment-3"``
    One view: the garment found by colour models seeded from the frame's border
    (:mod:`fmnist_edge.edge.segment`).  What the photo recipe trains on
    (:data:`TRAINING_METHOD`), and all ``"segment"`` can do where no runtime runs the net
    (numpy runtime only).
``"segment-4"``
    One view: the garment found by the learned segmenter (:mod:`fmnist_edge.edge.segnet`, a
    43,870-parameter U-Net run by the device's own runtime).
``"dataset"``
    The conversion Zalando used to build Fashion-MNIST from product photos
    (zalandoresearch/fashion-mnist README): trim the background, resize the longest edge to
    28, sharpen, pad the short edge to 28 centred, negate, make 8-bit grey.  A photo whose
    background is already dark is not negated, and an image that already is a 28x28
    light-on-dark grey picture (a dataset image) passes through byte for byte.
``"simple"``
    The tutorial's naive way: grey, squash to 28x28 ignoring the aspect ratio, ``255 - x``.

Only pillow and numpy are used (no OpenCV, no TensorFlow), so this runs on a bare Raspberry
Pi install.  Memory stays bounded: images claiming more than :data:`MAX_PIXELS` are refused
from their header before any pixel is decoded, JPEGs are decoded at reduced scale, and the
pipeline works on a copy at most :data:`WORKING_SIDE` pixels on its longest edge.
"""

from __future__ import annotations

import importlib
import io
import os
import stat
import warnings
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from fmnist_edge.edge import segment, segnet
from fmnist_edge.edge.dataset import IMAGE_SHAPE
from fmnist_edge.edge.errors import UserError, first_line
from fmnist_edge.edge.inputs import MAX_STDIN_BYTES, SAFE_FORMATS

METHODS = ("segment", "segment-3", "segment-4", "dataset", "simple")

#: What files and camera frames get unless ``--preprocess`` says otherwise.
DEFAULT_METHOD = "segment"

#: Names what :data:`DEFAULT_METHOD` makes (reports print it).  Bump it whenever the pixels
#: change ("segment-1" was the first draft: no lighting correction, shadows, unmixing;
#: sharpened; "segment-2" had no vignetting term, one threshold for every round, and took a
#: dark floor for a dataset image's black; "segment-3" is one view by colour models,
#: "segment-4" one view by the learned net, "segment-5" both and their mirrors).  Chosen
#: on 1,500 renders of validation images against single segmenters and pairs, with and
#: without the mirrors (benchmarks/PHOTOS.md).
PIPELINE_VERSION = "segment-6"

#: The pixels the photo recipe learns from (one view per render, colour models: no model
#: file is needed to train, and the shipped bundles were trained on it).  The exporter
#: records it in the manifest, so a model trained on other pixels can be told apart.
TRAINING_METHOD = "segment-3"

#: Where no runtime can run the learned net (numpy runtime only), what ``"segment"`` and
#: ``"segment-4"`` fall back to (:func:`pipeline_version` says so in every report).
FALLBACK_VERSION = "segment-3"

#: Output shape (height, width), as in the manifest's ``preprocessing.size``.
SHAPE = IMAGE_SHAPE
#: The same as pillow wants it, (width, height).
_PIL_SIZE = (SHAPE[1], SHAPE[0])

#: Refuse images claiming more pixels than this (64 megapixels), judged from the header.
MAX_PIXELS = 64_000_000

#: The dataset pipeline works on a copy at most this long on its longest edge: the result is
#: 28 pixels wide, so more detail only costs memory and time.
WORKING_SIDE = 1024

#: JPEGs are decoded at the smallest 1/2, 1/4 or 1/8 scale that keeps both edges at least
#: this long (a 12 MP phone photo decodes at about 1000x750, four times faster).
DRAFT_SIDE = 512

#: The segment pipeline draws the garment from a copy this long on its longest edge: 28
#: output pixels from at least 128 keeps the edges smooth, as the dataset's downscaling did.
RENDER_SIDE = 160

#: Tones of Fashion-MNIST garments: the 10th, 50th and 90th percentile of the pixels inside
#: the garment (> 10), averaged over 5,000 training images (82, 165, 209).  A garment's
#: median tone lands on the middle one and its spread is scaled towards the outer two.
GARMENT_TONES = (82.0, 165.0, 209.0)

#: A background darker than this (median grey) is taken as already black, as in the
#: dataset's own images: the garment is then not negated.
DARK_BACKGROUND = 40

#: A frame whose edge is (nine tenths) darker than this is a dataset image (upscaled, in a
#: video): trimmed, not segmented.  Stricter than :data:`DARK_BACKGROUND`: a dark carpet,
#: floor or dim wall in a photo sits at 25..40 along the edge (measured on renders of
#: validation images, where taking those for black lost nine answers in ten), while a
#: dataset image's black stays below 16 even through JPEG or MJPG.
BLACK_BORDER = 16

#: When segmentation finds nothing, a frame with this share of its edge black is still a
#: dataset image: a shirt's sleeves or a pair of trousers touch two edges of the 28x28
#: square, so only 0.8-0.9 of an upscaled image's edge is black, its border ring holds the
#: garment's own colours, and segmentation (which learns the background from that ring)
#: loses it: 30 of the first 300 test images, upscaled to 224 px and saved as JPEG, were
#: "no garment found".  Only tried where segmentation found nothing, so no picture
#: segmentation handles changes: the renders and views the shipped models trained on
#: (145,708), 1,000 renders of test images and the 281 dev photos give the same pixels.
MOSTLY_BLACK = 0.75

#: Largest and smallest contrast gain: a flat single-colour garment is not blown up into
#: noise, a contrasty one is not flattened.
TONE_GAIN = (0.5, 1.5)

#: A shape at least this much wider than tall may be a shoe seen from the side.  Fashion-MNIST
#: shoes point left: the taller end (heel, shaft) is on the right in 93 % of sandals, 99.5 %
#: of sneakers and 99.8 % of ankle boots (measured on the training set; 10 % of boots are
#: barely wider than tall).  Such a shape is mirrored when its taller end is on the left;
#: the other wide things (bags, tops with sleeves out) are near-symmetric, so a mirror costs
#: them nothing.
SHOE_ASPECT = 1.0

#: A pixel is background when its RMS distance over R, G, B from the background colour is
#: within 5% of full intensity (the README's trim tolerance).
TRIM_TOLERANCE = 0.05 * 255

_WHITE = (255, 255, 255)

#: The README's sharpening: Gaussian radius (standard deviation) 1.0, full strength.
_SHARPEN = ImageFilter.UnsharpMask(radius=1.0, percent=100, threshold=0)


# --------------------------------------------------------------------------------------------
# Decoding


def open_image(source: Path | bytes, name: str) -> Image.Image:
    """Decode ``source`` (a path or the file's bytes) into an RGB or L image, safely.

    Every failure a user can cause (empty, truncated, not an image, too large, unreadable)
    becomes one :class:`UserError` line starting with ``name``, never a traceback.  The header
    is checked against :data:`MAX_PIXELS` before decoding so a decompression bomb costs no
    memory; the full decode (``load``) happens inside the guard so truncation is caught here
    rather than later in the pipeline.  Animated images give their first frame.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise UserError(f"{name}: empty file")
        return _decode(io.BytesIO(data), name)
    path = Path(source)
    try:
        if path.is_dir():
            raise UserError(f"{name}: is a folder, not an image")
        with open(path, "rb") as fh:  # opened here so unreadable files get a clear line
            info = os.fstat(fh.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size == 0:
                raise UserError(f"{name}: empty file")
            # pillow (>= 12) given a path loads only the plugin its suffix names
            if stat.S_ISREG(info.st_mode):
                return _decode(path, name)
            return _decode(_read_stream(fh, name), name)  # a pipe cannot seek back
    except FileNotFoundError as exc:
        raise UserError(f"{name}: no such file") from exc
    except PermissionError as exc:
        raise UserError(f"{name}: cannot read ({exc.strerror or 'permission denied'})") from exc
    except IsADirectoryError as exc:
        raise UserError(f"{name}: is a folder, not an image") from exc


def _decode(fh: IO[bytes] | Path, name: str) -> Image.Image:
    """Open, size-check, fully decode and normalise one image from a file or its path."""
    with warnings.catch_warnings():
        # pillow warns (rather than fails) between MAX_IMAGE_PIXELS and twice that: refuse too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with _open(fh) as img:  # closes the file pillow opened for a path
                _check_size(img, name)
                img.draft(None, (DRAFT_SIDE, DRAFT_SIDE))  # JPEG: decode at 1/2..1/8
                img.load()
                upright = ImageOps.exif_transpose(img)
                return _flatten(upright)
        except UserError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise UserError(f"{name}: image too large (over {MAX_PIXELS // 1_000_000} megapixels;"
                            " refused as a possible decompression bomb)") from exc
        except UnidentifiedImageError as exc:
            raise UserError(f"{name}: not an image (or not a supported format: "
                            f"{', '.join(SAFE_FORMATS)})") from exc
        except MemoryError as exc:
            raise UserError(f"{name}: image too large to decode (out of memory)") from exc
        except Exception as exc:  # pillow plugins raise many exception types on bad data
            raise UserError(f"{name}: {_reason(exc)}") from exc


#: The pillow plugin a file suffix names, so a cold start imports that one plugin only.
_PLUGIN_OF_SUFFIX = {".png": "PngImagePlugin", ".jpg": "JpegImagePlugin",
                     ".jpeg": "JpegImagePlugin", ".bmp": "BmpImagePlugin",
                     ".gif": "GifImagePlugin", ".ppm": "PpmImagePlugin", ".pgm": "PpmImagePlugin"}


def _open(source: IO[bytes] | Path) -> Image.Image:
    """``Image.open`` restricted to :data:`SAFE_FORMATS`, the likely format first.

    ``Image.init()`` imports every pillow plugin (about 40 ms, a fifth of a cold start), and
    ``preinit()`` five of them; a PNG needs one.  So the plugin the file's suffix names (or
    pillow's common five) is tried first, and only a file it does not accept pays for all.
    """
    plugin = _PLUGIN_OF_SUFFIX.get(source.suffix.lower()) if isinstance(source, Path) else None
    if plugin:
        importlib.import_module(f"PIL.{plugin}")
    else:
        Image.preinit()
    first = _safe_formats()
    try:
        return Image.open(source, formats=first)
    except UnidentifiedImageError:
        Image.init()
        rest = tuple(f for f in _safe_formats() if f not in first)
        if not rest:
            raise
        if not isinstance(source, Path):
            source.seek(0)
        return Image.open(source, formats=rest)


def _read_stream(fh: IO[bytes], name: str) -> io.BytesIO:
    """A non-seekable file (a named pipe, ``/dev/stdin``) read once, capped as stdin is."""
    data = fh.read(MAX_STDIN_BYTES + 1)
    if len(data) > MAX_STDIN_BYTES:
        raise UserError(f"{name}: larger than {MAX_STDIN_BYTES // 2**20} MiB")
    if not data:
        raise UserError(f"{name}: empty file")
    return io.BytesIO(data)


def _safe_formats() -> tuple[str, ...]:
    """:data:`SAFE_FORMATS` that pillow has registered so far (AVIF support is optional).

    JPEG covers MPO too (multi-picture files from phones: the first picture is used).
    """
    return tuple(f for f in SAFE_FORMATS if f in Image.OPEN)


def _check_size(img: Image.Image, name: str) -> None:
    """Refuse an image whose header claims more than :data:`MAX_PIXELS`, before decoding."""
    width, height = img.size
    if width <= 0 or height <= 0:
        raise UserError(f"{name}: image has no pixels ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise UserError(f"{name}: image too large ({width}x{height} pixels; the limit is "
                        f"{MAX_PIXELS // 1_000_000} megapixels)")


def _reason(exc: Exception) -> str:
    """One line saying why decoding failed."""
    text = first_line(exc)
    if "truncated" in text or isinstance(exc, (EOFError, SyntaxError)):
        return f"truncated or corrupt image ({text})"
    return f"cannot decode image ({text})"


def _flatten(img: Image.Image) -> Image.Image:
    """Any pillow mode → a new RGB or L image (alpha on white, 16-bit scaled, CMYK → RGB).

    Transparent areas are composited onto white because product photos (the dataset's source)
    are garments on white; the pipeline then treats white as background.
    """
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return Image.fromarray(_to_uint8(np.asarray(img)))
    if img.mode == "1":
        return img.convert("L")
    if img.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in img.info:
        grey = img.mode in ("LA", "La", "L", "1")
        rgba = img.convert("RGBA")
        flat = Image.alpha_composite(Image.new("RGBA", rgba.size, (*_WHITE, 255)), rgba)
        return flat.convert("L" if grey else "RGB")
    if img.mode == "L":
        return img.copy()
    return img.convert("RGB")  # RGB, P, CMYK, YCbCr, LAB, HSV, ...


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """16-bit, 32-bit integer or float grey values → 0..255 uint8.

    Integer data above 255 is taken as 16-bit (0..65535), as 16-bit PNG/TIFF decode; float
    data within 0..1 is taken as normalised.
    """
    if values.dtype.kind == "f":
        top = 1.0 if float(np.nanmax(values, initial=0.0)) <= 1.0 else 255.0
        scaled = np.nan_to_num(values.astype(np.float32)) * np.float32(255.0 / top)
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    wide = values.astype(np.int64)
    if values.dtype.itemsize >= 2 and int(wide.max(initial=0)) > 255:
        wide = (np.clip(wide, 0, 65535) * 255 + 32767) // 65535
    return np.clip(wide, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Pixels


def to_pixels(img: Image.Image, method: str = DEFAULT_METHOD) -> np.ndarray:
    """Turn a picture into (28, 28) uint8 pixels, light garment on dark, as the model expects.

    ``method`` is one of :data:`METHODS` (see the module docstring).  For ``"segment"`` this
    is the first of :func:`to_views` (the colour models' cut-out, else the net's), the one
    a report shows large.  All-zero pixels mean nothing was found
    (:func:`is_blank`).
    """
    return to_views(img, method)[0]


def to_views(img: Image.Image, method: str = DEFAULT_METHOD) -> np.ndarray:
    """Every view the model answers for, (V, 28, 28) uint8: several for ``"segment"``, one
    for the other methods.  Blank views (a segmenter found nothing) are left out; when
    every view is blank one blank view remains (:func:`is_blank`)."""
    if method not in METHODS:
        raise UserError(f"unknown preprocessing method {method!r} (choose from "
                        f"{', '.join(METHODS)})")
    flat = _flatten(img) if img.mode not in ("RGB", "L") else img
    if method == "simple":
        return _simple(flat)[None]
    if method == "dataset":
        return _dataset(flat)[None]
    return _segmented(flat, method)


def pipeline_version(method: str = DEFAULT_METHOD) -> str:
    """The name of what ``method`` makes on this machine: :data:`FALLBACK_VERSION` wherever
    the learned segmenter would be needed but no runtime here can run it."""
    learned = {"segment": PIPELINE_VERSION, "segment-4": "segment-4"}
    if method in learned:
        return learned[method] if segnet.available() else FALLBACK_VERSION
    return method


def refusal(method: str) -> str | None:
    """Why ``method`` cannot run here, or None.  Only an explicit ``"segment-4"`` is refused:
    it asks for the learned net alone, and silently getting segment-3 instead would make any
    comparison a lie; plain ``"segment"`` falls back to segment-3 and reports it
    (:func:`pipeline_version`)."""
    if method != "segment-4" or segnet.available():
        return None
    return ("pipeline segment-4 needs the learned segmenter, which no runtime here can run: "
            f"{segnet.install_hint()}; or use segment-3 (colour models alone)")


def _garments(small: Image.Image, method: str) -> list[segment.Garment]:
    """The garments ``method``'s segmenters find in the segmentation copy, in view order:
    colour models, the learned net, colour models seeded by the net (:func:`segment.refine`).
    Without a runtime for the net, ``"segment"`` is exactly ``"segment-3"`` (no mirrors)."""
    if method == "segment-3" or not segnet.available():
        return [segment.find_garment(small)]
    net = segnet.find_garment(small)
    if method == "segment-4":
        return [net]
    bins = segment.colour_bins(small)  # both colour-model segmenters model the same bins
    return [segment.find_garment(small, bins), net, segment.refine(small, net, bins)]


def is_blank(pixels: np.ndarray) -> bool:
    """True when the pipeline found no garment (all pixels black): say so, do not classify."""
    return not np.any(pixels)


def frame_to_pixels(frame: np.ndarray, method: str = DEFAULT_METHOD) -> np.ndarray:
    """A camera frame (H, W, 3) RGB uint8 (or (H, W) grey) → the same pixels as
    :func:`to_pixels`.  :mod:`fmnist_edge.edge.camera` hands out RGB whatever the library."""
    return frame_to_views(frame, method)[0]


def frame_to_views(frame: np.ndarray, method: str = DEFAULT_METHOD) -> np.ndarray:
    """A camera frame (H, W, 3) RGB uint8 (or (H, W) grey) → the same views as
    :func:`to_views`."""
    arr = np.asarray(frame)
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise UserError(f"camera frame must be (H, W, 3) or (H, W) uint8, "
                        f"got {arr.shape} {arr.dtype}")
    return to_views(Image.fromarray(np.ascontiguousarray(arr)), method)


def _simple(img: Image.Image) -> np.ndarray:
    """The tutorial's way: grey, squash to 28x28 (pillow's default bicubic), ``255 - x``."""
    small = img.convert("L").resize(_PIL_SIZE, Image.Resampling.BICUBIC)
    return (255 - np.asarray(small, dtype=np.uint8)).astype(np.uint8)


def _dataset(img: Image.Image) -> np.ndarray:
    """The Fashion-MNIST conversion, plus polarity detection and a dataset pass-through."""
    if img.size == _PIL_SIZE:
        return _small_as_dataset(img)
    work = _working_copy(img).convert("RGB")
    rgb = np.asarray(work)
    background = _background_colour(rgb)
    light_background = _is_light(background)
    box = _content_box(rgb, background)
    if box is None:  # nothing but background: an empty (dark) picture
        return np.zeros(SHAPE, np.uint8)
    garment = work.crop(box)                        # (1) trim
    garment = garment.resize(_fit(garment.size), Image.Resampling.LANCZOS)  # (2) resize
    garment = garment.filter(_SHARPEN)  # (3) sharpen
    canvas = Image.new("RGB", _PIL_SIZE, background)                     # (4) extend, centred
    canvas.paste(garment, _centre_offset(garment.size))
    if light_background:
        canvas = ImageOps.invert(canvas)                           # (5) negate
        background = tuple(255 - c for c in background)
    grey = np.asarray(canvas.convert("L"))                         # (6) 8-bit grey
    return _level(grey, _luma(background))


def _segmented(img: Image.Image, method: str) -> np.ndarray:
    """Real photo → garment only, light on black, as Fashion-MNIST draws it: one view per
    garment ``method``'s segmenters found (and, for ``"segment"``, each one's mirror
    image), (V, 28, 28)."""
    if img.size == _PIL_SIZE:
        return _small_as_dataset(img)[None]
    work = shrink(img, RENDER_SIDE).convert("RGB")
    if _black_border(work):  # already light on black, as the dataset's own images: trim it
        return _dataset(img)[None]
    small = segment.segment_copy(work)
    grey = np.asarray(work.convert("L"), np.float32)
    garments = _garments(small, method)
    cut_outs = [_cut_out(grey, g.mask, work.size) for g in garments if g.found]
    views = [pixels for pixels, _ in cut_outs if not is_blank(pixels)]
    if not views:  # a dataset image whose garment touches two edges: trim it too
        return (_dataset(img) if _black_border(work, MOSTLY_BLACK)
                else np.zeros(SHAPE, np.uint8))[None]
    if method == "segment" and len(garments) > 1:
        views += [pixels[:, ::-1] for pixels, shoe in cut_outs
                  if not shoe and not is_blank(pixels)]
    return np.ascontiguousarray(np.stack(views))


def _cut_out(grey: np.ndarray, small_mask: np.ndarray, size: tuple[int, int]
             ) -> tuple[np.ndarray, bool]:
    """One segmenter's mask (on the segmentation copy) → the garment drawn as the dataset,
    and whether it may be a shoe: :func:`draw_garment` then turned it to face left as the
    dataset's shoes do (:func:`_may_be_shoe`, the same box), so its mirror image is not a
    view of it."""
    mask = _upsample(small_mask, size)
    negate = not _already_light_on_dark(grey, mask)
    ys, xs = np.nonzero(mask > 0.5)
    shoe = bool(xs.size) and _may_be_shoe(int(xs.max() - xs.min()) + 1,
                                          int(ys.max() - ys.min()) + 1)
    return draw_garment(garment_tone(grey, mask > 0.5, negate), mask), shoe


def _may_be_shoe(width: int, height: int) -> bool:
    """A garment's box at least :data:`SHOE_ASPECT` times as wide as tall."""
    return width >= SHOE_ASPECT * height


def draw_garment(tone: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Draw a cut-out garment the way Fashion-MNIST draws one: (28, 28) uint8.

    ``tone`` is the garment's grey (already light on dark, :func:`garment_tone`) and
    ``mask`` its 0..1 mask (1 = garment), both (h, w) at any size.  The garment is masked
    onto black, cropped to the mask, a shoe turned to face left, scaled so its longest edge
    is 28 and centred.  The training recipes draw their photo-like views of dataset images
    with this same function, so what they learn from is drawn as the device draws.
    """
    ys, xs = np.nonzero(mask > 0.5)
    if ys.size == 0:
        return np.zeros(SHAPE, np.uint8)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    cut = Image.fromarray(np.clip(np.rint(tone * mask), 0, 255).astype(np.uint8)).crop(box)
    cut = _face_left(cut)
    cut = cut.resize(_fit(cut.size), Image.Resampling.LANCZOS)
    canvas = Image.new("L", _PIL_SIZE, 0)
    canvas.paste(cut, _centre_offset(cut.size))
    return np.asarray(canvas, dtype=np.uint8).copy()


def shrink(img: Image.Image, side: int) -> Image.Image:
    """A copy at most ``side`` on its longest edge (box filter: fast and alias-free)."""
    scale = side / max(img.size)
    if scale >= 1:
        return img
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.BOX, reducing_gap=2.0)


def _upsample(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A 0..1 mask resized (bilinear) to ``size``: soft edges, as a downscaled photo has."""
    img = Image.fromarray(np.rint(mask * 255).astype(np.uint8))
    return np.asarray(img.resize(size, Image.Resampling.BILINEAR), np.float32) / 255.0


def _black_border(work: Image.Image, share: float = 0.9) -> bool:
    """Is ``share`` of the frame's edge black (a dataset image, upscaled or on a screen)?
    Then anything not black is garment, a dark garment too: the dataset method's trim finds
    it where colour models cannot tell a dark coat from a black backdrop."""
    grey = np.asarray(work.convert("L"))
    ring = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return float(np.percentile(ring, 100 * share)) < BLACK_BORDER


def _already_light_on_dark(grey: np.ndarray, mask: np.ndarray) -> bool:
    """Is the background already (nearly) black, as in the dataset's own images (a
    Fashion-MNIST picture on a screen, an upscaled dataset image)?  Then it is not negated."""
    outside = grey[mask < 0.5]
    return bool(outside.size) and float(np.median(outside)) < DARK_BACKGROUND


def garment_tone(grey: np.ndarray, inside: np.ndarray, negate: bool) -> np.ndarray:
    """The garment's grey, negated, its median moved to the dataset's median garment tone
    and its spread scaled towards the dataset's (within :data:`TONE_GAIN`).

    Negated whatever the background's colour (unless it is black already): the dataset
    negated its photos, so what is darker in the world (seams, folds, shaded edges, collars,
    soles, a dark garment) is what the model learned as bright.  The background is masked
    to black anyway.
    """
    value = 255.0 - grey if negate else grey
    lo, mid, hi = np.percentile(value[inside], (10, 50, 90))
    low_tone, mid_tone, high_tone = GARMENT_TONES
    gain = float(np.clip((high_tone - low_tone) / max(hi - lo, 1e-3), *TONE_GAIN))
    return np.clip(mid_tone + (value - mid) * gain, 0.0, 255.0)


def _face_left(cut: Image.Image) -> Image.Image:
    """Mirror a wide shape whose taller end is on the left, so a shoe points left."""
    width, height = cut.size
    if not _may_be_shoe(width, height):
        return cut
    columns = (np.asarray(cut) > 0).sum(axis=0)
    third = max(1, width // 3)
    if columns[:third].mean() > columns[-third:].mean():
        return cut.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return cut


def _small_as_dataset(img: Image.Image) -> np.ndarray:
    """A 28x28 picture already has the dataset's size: only fix grey and polarity.

    A light-on-dark grey one (a dataset image) comes back byte-identical, also when stored
    as RGB (pillow's integer luma weights sum to exactly 1, so equal channels convert
    losslessly); a dark-on-light one (e.g. a negated dataset image) is negated, nothing else,
    so it round-trips exactly.
    """
    grey = np.array(img.convert("L"), dtype=np.uint8)
    if _is_light(_background_colour(grey[..., None])):
        return (255 - grey).astype(np.uint8)
    return grey


def _working_copy(img: Image.Image) -> Image.Image:
    """A copy at most :data:`WORKING_SIDE` on its longest edge (memory and time bound)."""
    if max(img.size) <= WORKING_SIDE:
        return img
    small = img.copy()
    small.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BOX)
    return small


def _background_colour(rgb: np.ndarray) -> tuple[int, ...]:
    """The background: per-channel median of the one-pixel border (robust to a garment
    touching an edge or a corner, unlike a single corner pixel)."""
    ring = np.concatenate([rgb[0], rgb[-1], rgb[1:-1, 0], rgb[1:-1, -1]], axis=0)
    return tuple(int(v) for v in np.median(ring, axis=0).round())


def _luma(colour: tuple[int, ...]) -> float:
    """ITU-R 601 luma of an RGB (or single grey) colour, as pillow's ``convert("L")``."""
    if len(colour) == 1:
        return float(colour[0])
    r, g, b = colour[:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def _is_light(colour: tuple[int, ...]) -> bool:
    """A light background means a dark-on-light photo, which must be negated."""
    return _luma(colour) >= 128


def _content_box(rgb: np.ndarray, background: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """Bounding box (left, top, right, bottom) of pixels not close to the background colour.

    Row by row, so the float work never exceeds one row band of the working copy.
    """
    bg = np.asarray(background, np.float32)
    limit = np.float32(TRIM_TOLERANCE) ** 2 * rgb.shape[2]
    rows = np.zeros(rgb.shape[0], bool)
    cols = np.zeros(rgb.shape[1], bool)
    for start in range(0, rgb.shape[0], 128):
        band = rgb[start:start + 128].astype(np.float32) - bg
        mask = (band * band).sum(axis=2) > limit
        rows[start:start + 128] = mask.any(axis=1)
        cols |= mask.any(axis=0)
    if not rows.any():
        return None
    ys, xs = np.flatnonzero(rows), np.flatnonzero(cols)
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def _fit(size: tuple[int, int]) -> tuple[int, int]:
    """Scale ``size`` so its longest edge is 28, keeping the aspect ratio (at least 1 px)."""
    width, height = size
    scale = max(SHAPE) / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _centre_offset(size: tuple[int, int]) -> tuple[int, int]:
    """Where to paste ``size`` so it is centred in 28x28; an odd margin puts its extra pixel
    on the left/top, as the dataset does (measured on the test set: 3224 of 3234 odd-margin
    images do this horizontally)."""
    return (_PIL_SIZE[0] - size[0] + 1) // 2, (_PIL_SIZE[1] - size[1] + 1) // 2


def _level(grey: np.ndarray, background: float) -> np.ndarray:
    """Map the (negated) background level to 0 and stretch the rest to keep 255 at 255.

    Not in the published list: their photos were on pure white, where this changes nothing
    (the background negates to 0).  Real photos on grey-ish paper or a dim table would
    otherwise leave a grey background the network never saw in training.
    """
    level = round(background)
    if level <= 0:
        return grey
    if level >= 255:
        return np.zeros_like(grey)
    stretched = (grey.astype(np.int32) - level) * 255 / (255 - level)
    return np.clip(np.rint(stretched), 0, 255).astype(np.uint8)
