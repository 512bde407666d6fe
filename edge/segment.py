"""Find the garment, and only the garment, in a photo: numpy and pillow only.

Phone and Pi camera pictures show a garment lying on a floor, a bed or a table, or hanging
on a door: the background is patterned (tiles, stripes, wood grain), lit unevenly, and the
garment often touches the frame.  Fashion-MNIST models only ever saw a garment on black, so
the device must cut the garment out before anything else.

The method is a small GrabCut without the graph cut (no OpenCV on a bare Pi; measured
better and about five times faster than OpenCV's GrabCut on the same copy):

1. **Lighting.**  A brightness surface fitted to the border ring (its local average, so
   stripes count as their mean; bilinear plus a radial term for the lens's vignetting) is
   divided out, so a wall lit from one side, or brighter in the middle of the picture, is
   one colour (:func:`_lighting_gain`).
2. **Colour models.**  Pixels are binned by colour (YCbCr: coarse luma, finer chroma).  The
   background model is the border ring, also one luma bin darker (a shadow on the floor is
   floor) and, less, one lighter (a fold catching the light).  The garment model is the
   inside of the frame, weighted towards the centre, with the background's share taken out
   (:func:`_unmix`), so a garment covering a tenth of the frame still gets a model of its
   own.  Both are *normalised* histograms, so a garment
   touching the border (a sleeve in the ring) barely dents the background model.
3. **Posterior with a spatial prior.**  Each pixel gets P(garment | colour), mixed with a
   weak prior (the centre first, then where the previous round put the garment) and
   smoothed over its neighbours so texture (stripes, grout lines, wood grain) does not
   fragment the mask.  The first round, whose garment model is only a guess, asks for
   stronger evidence (:data:`FIRST_THRESHOLD`).
4. **Clean-up.**  A morphological opening removes thin attachments (hanger wire, strings);
   the most central large connected region is kept, with any second region of comparable
   size (a pair of shoes); holes are filled (a print on a T-shirt is still the T-shirt).
5. Steps 2-4 repeat twice more with the models re-estimated from the mask, as GrabCut does.

Outcomes are explicit (:class:`Garment`): ``"found"``, ``"none"`` (nothing stands out from
the background: an empty table, a wall) or ``"full"`` (the garment fills the frame: the
whole picture is the garment).  It never raises on any image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

#: Longest edge of the copy segmentation works on: the result is 28 pixels wide, so 96 px
#: is four times the detail the model sees, at a few milliseconds per picture.
SEGMENT_SIDE = 96

#: Width of the border ring that seeds the background model, as a fraction of the short edge
#: (0.06 before pipeline "segment-3": a wider ring samples more of a textured background and
#: pins the lighting fit better).
BORDER_FRACTION = 0.10

#: How far from the centre the first garment model reaches (Gaussian sigma, as a fraction
#: of half the frame): photographers centre garments, but not always.
CENTRE_SPREAD = 0.65

#: GrabCut-style re-estimation rounds.
ROUNDS = 3
#: Rounds of :func:`refine`, whose first garment model is already a segmenter's answer.
REFINE_ROUNDS = 2

#: P(garment) a pixel needs in the first round (0.5 in later rounds).  The first garment
#: model is the inside of the frame minus the border's colours, so a background colour the
#: border lacks (the lit middle of a sheet, a second tile colour) looks like garment; at 0.5
#: it floods in and the later rounds learn it as garment for good.  On 400 renders of
#: validation images (the rest of segment-3 as is), mean IoU at 0.5 / 0.55 / 0.6 / 0.65 /
#: 0.7 / 0.75: 0.832 / 0.857 / 0.871 / 0.877 / 0.874 / 0.871; renders with IoU < 0.5 go
#: from 10 % to 3.5 % at 0.65.
FIRST_THRESHOLD = 0.65

#: How much of each background colour is also expected one luma bin darker (shadows).
SHADOW_WEIGHT = 0.5
#: ... and one luma bin lighter (a fold of a sheet catching the light, a paler floor tile:
#: the lighting fit evens out gradients, not patches).  Without it a stricter first round
#: (:data:`FIRST_THRESHOLD`) took the palest tiles of an empty floor for a garment.
HIGHLIGHT_WEIGHT = 0.25

#: A copy narrower than this (pixels) is too small to tell a garment from its background:
#: all of it is taken as the garment.
MIN_SIDE = 8

#: Less of the frame than this is "no garment" (a crumb, a speck of noise).
MIN_AREA = 0.01
#: More than this and the garment fills the frame: the whole picture is used.
FULL_AREA = 0.97
#: Bhattacharyya coefficient (0 = disjoint, 1 = identical) between the garment's and the
#: background's colour histograms above which the "garment" is just more background.  Set
#: in the gap measured on synthetic scenes (tests/test_segment.py): 50 empty walls, wood,
#: tiles, stripes and studio backdrops all scored 0.887 or more; of 100 garments on them,
#: 99 scored 0.741 or less.
MAX_OVERLAP = 0.85
#: A second region is kept (a pair of shoes) when at least this fraction of the first's area.
SECOND_REGION = 0.35

#: Histogram bins: luma in 8 levels of 32, each chroma channel in 16 steps of 8 around grey.
_LUMA_BINS, _CHROMA_BINS = 8, 16
_BINS = _LUMA_BINS * _CHROMA_BINS * _CHROMA_BINS


@dataclass(frozen=True)
class Garment:
    """Where the garment is in the segmentation copy.

    ``mask`` is a float32 (h, w) array in 0..1 (1 = garment) at the size of the copy
    :func:`find_garment` was given; ``status`` is ``"found"``, ``"none"`` or ``"full"``.
    """

    mask: np.ndarray
    status: str

    @property
    def found(self) -> bool:
        """True when there is something to classify (found, or filling the frame)."""
        return self.status != "none"


def segment_copy(img: Image.Image) -> Image.Image:
    """The small RGB copy :func:`find_garment` expects (longest edge :data:`SEGMENT_SIDE`)."""
    rgb = img.convert("RGB")
    scale = SEGMENT_SIDE / max(rgb.size)
    if scale >= 1:
        return rgb
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    return rgb.resize(size, Image.Resampling.BOX, reducing_gap=2.0)


def colour_bins(small: Image.Image) -> np.ndarray:
    """Each pixel's colour bin, the lighting evened out: what :func:`find_garment` and
    :func:`refine` model.  Pass it to both when both run on the same copy (the photo
    pipeline does): it is about a millisecond per picture."""
    return _colour_bins(small, _border_ring(small.height, small.width))


def find_garment(small: Image.Image, bins: np.ndarray | None = None) -> Garment:
    """Segment the garment in a small RGB picture (see the module docstring); ``bins`` is
    :func:`colour_bins` of it, if already computed."""
    h, w = small.height, small.width
    if min(h, w) < MIN_SIDE:  # too small to tell a garment from its background: use all
        return Garment(np.ones((h, w), np.float32), "full")
    ring = _border_ring(h, w)
    bins = _colour_bins(small, ring) if bins is None else bins
    prior = _centre_prior(h, w)
    # Round one: the garment model is every pixel inside the ring, weighted towards the
    # centre (a garment off-centre still counts); later rounds use the mask found.
    fg_weight = np.where(ring, 0.0, _centre_weight(h, w))
    mask = ~ring
    for round_ in range(ROUNDS):
        fg_hist = _histogram(bins, fg_weight)
        bg_hist = _histogram(bins, (~mask | ring).astype(np.float32))
        if fg_hist is None or bg_hist is None:
            break
        if round_ == 0:
            fg_hist = _unmix(_smooth(fg_hist), _smooth(_shadowed(bg_hist)))
        posterior = _posterior(bins, _smooth(fg_hist), _smooth(_shadowed(bg_hist)), prior)
        mask = _clean(posterior > (FIRST_THRESHOLD if round_ == 0 else 0.5), posterior)
        if not mask.any():
            break
        prior = _spatial_prior(mask)
        fg_weight = (mask & ~ring).astype(np.float32)
    return _verdict(mask, bins)


def refine(small: Image.Image, seed: Garment, bins: np.ndarray | None = None) -> Garment:
    """Colour models seeded by another segmenter's garment instead of the border ring.

    The learned net (:mod:`fmnist_edge.edge.segnet`) finds a garment touching or filling the
    frame but may cut the stripes out of a striped T-shirt; the colour models learn a
    photo's own colours but need the border to be background.  Seeded by the net's mask,
    they learn the garment's colours from most of the garment (stripes included) and the
    background's from the rest of the frame, border or not, then re-estimate
    (:data:`REFINE_ROUNDS`) as :func:`find_garment` does.  A seed that found nothing or
    everything comes back as it is.  (Pipeline segment-6: on 1,500 renders of validation
    images, the shipped models answer 0.741 / 0.766 from this cut-out alone, against
    0.709 / 0.738 from :func:`find_garment`'s and 0.725 / 0.752 from the net's.)
    """
    if seed.status != "found" or seed.mask.shape != (small.height, small.width):
        return seed
    bins = colour_bins(small) if bins is None else bins
    mask = seed.mask > 0.5
    prior = _spatial_prior(mask)
    for _ in range(REFINE_ROUNDS):
        fg_hist = _histogram(bins, mask.astype(np.float32))
        bg_hist = _histogram(bins, (~mask).astype(np.float32))
        if fg_hist is None or bg_hist is None:
            break
        posterior = _posterior(bins, _smooth(fg_hist), _smooth(_shadowed(bg_hist)), prior)
        found = _clean(posterior > 0.5, posterior)
        if not found.any():
            break
        mask, prior = found, _spatial_prior(found)
    return _verdict(mask, bins)


def _colour_bins(small: Image.Image, ring: np.ndarray) -> np.ndarray:
    """Each pixel's colour bin (int32 (h, w)) after evening out the lighting: coarse luma,
    chroma in steps of 8 around grey."""
    ycc = np.asarray(small.convert("YCbCr"), dtype=np.float32)
    gain = _lighting_gain(ycc[..., 0], ring)
    luma = np.clip(ycc[..., 0] * gain, 0, 255).astype(np.int32) >> 5
    half = _CHROMA_BINS // 2
    chroma = [np.clip(np.floor((ycc[..., c] - 128) * gain / 8) + half, 0, _CHROMA_BINS - 1)
              .astype(np.int32) for c in (1, 2)]
    return (luma * _CHROMA_BINS + chroma[0]) * _CHROMA_BINS + chroma[1]


def _lighting_gain(luma: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Per-pixel gain that evens out a lighting gradient across the frame.

    The background's brightness along the border ring (its local average over a sixth of
    the frame, so stripes or tiles count as their mean brightness whatever their phase at
    the edge) is fitted with a bilinear surface plus vignetting (``a + b x + c y + d x y +
    e (x² + y²)``: lenses and lamps light the middle of a picture more than its corners,
    and the ring, corners against mid-edges, sees enough of that to fit it), twice, the
    second time without the quarter of the ring that fits worst (a garment touching the
    frame, a shadow).  Dividing by that surface makes a wall lit from one side one colour,
    so it is not mistaken for a garment.  The gain is kept within 0.5..2 so a bad fit
    cannot invent contrast.
    """
    h, w = luma.shape
    luma = _local_mean(luma, max(2, min(h, w) // 6))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xx, yy = xx / max(w - 1, 1) - 0.5, yy / max(h - 1, 1) - 0.5
    basis = np.stack([np.ones_like(xx), xx, yy, xx * yy, xx * xx + yy * yy], axis=-1)
    a, v = basis[ring], luma[ring]
    keep = np.ones(v.shape, bool)
    for _ in range(2):
        coef, *_ = np.linalg.lstsq(a[keep], v[keep], rcond=None)
        residual = np.abs(a @ coef - v)
        keep = residual <= np.percentile(residual, 75)
    surface = basis @ coef
    level = float(np.median(v[keep]))
    return np.clip(level / np.maximum(surface, 1.0), 0.5, 2.0).astype(np.float32)


def _local_mean(values: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2 radius + 1) square around each pixel, counting only pixels inside the
    frame (an integral image: no edge replication, so an edge stripe is not smeared in)."""
    h, w = values.shape
    total = np.zeros((h + 1, w + 1), np.float64)
    total[1:, 1:] = values.astype(np.float64).cumsum(0).cumsum(1)
    y0 = np.clip(np.arange(h) - radius, 0, h)
    y1 = np.clip(np.arange(h) + radius + 1, 0, h)
    x0 = np.clip(np.arange(w) - radius, 0, w)
    x1 = np.clip(np.arange(w) + radius + 1, 0, w)
    sums = (total[y1][:, x1] - total[y0][:, x1] - total[y1][:, x0] + total[y0][:, x0])
    counts = (y1 - y0)[:, None] * (x1 - x0)[None, :]
    return (sums / counts).astype(np.float32)


def _border_ring(h: int, w: int) -> np.ndarray:
    """Bool (h, w): the ring along the frame that seeds the background model."""
    k = max(2, round(BORDER_FRACTION * min(h, w)))
    ring = np.ones((h, w), bool)
    ring[k:h - k, k:w - k] = False
    return ring


def _centre_weight(h: int, w: int) -> np.ndarray:
    """Float (h, w): a broad bump, 1 at the centre, about 0.3 at the middle of each edge."""
    yy = (np.arange(h, dtype=np.float32) - (h - 1) / 2) / (h / 2)
    xx = (np.arange(w, dtype=np.float32) - (w - 1) / 2) / (w / 2)
    return np.exp(-(yy[:, None] ** 2 + xx[None, :] ** 2) / (2 * CENTRE_SPREAD ** 2))


def _centre_prior(h: int, w: int) -> np.ndarray:
    """Float (h, w) in 0.4..0.6: photographers centre the garment, weakly (the colour
    models decide; a stronger pull turned plain background near the centre into garment)."""
    yy = (np.arange(h, dtype=np.float32) - (h - 1) / 2) / (h / 2)
    xx = (np.arange(w, dtype=np.float32) - (w - 1) / 2) / (w / 2)
    r2 = yy[:, None] ** 2 + xx[None, :] ** 2
    return (0.4 + 0.2 * np.exp(-r2)).astype(np.float32)


def _histogram(bins: np.ndarray, weight: np.ndarray) -> np.ndarray | None:
    """Normalised colour histogram of the pixels, each counted with its ``weight``;
    None when there is (nearly) no weight to count."""
    total = float(weight.sum())
    if total < 16:
        return None
    hist = np.bincount(bins.ravel(), weights=weight.ravel(), minlength=_BINS)
    return (hist / total).astype(np.float32)


def _smooth(hist: np.ndarray) -> np.ndarray:
    """Spread each bin a little to its neighbours (a colour next to a seen one is not
    impossible) and add a floor (nor is any other), renormalised."""
    cube = hist.reshape(_LUMA_BINS, _CHROMA_BINS, _CHROMA_BINS)
    smooth = cube * 0.4
    for axis in range(3):  # 0.1 to each neighbour on every axis
        smooth += 0.1 * (_shift(cube, 1, axis) + _shift(cube, -1, axis))
    flat = smooth.ravel() + 0.2 / _BINS
    return flat / flat.sum()


def _shadowed(background: np.ndarray) -> np.ndarray:
    """The background model, also in shadow and in light: each colour is also expected one
    luma bin (32 levels) darker, at half the weight (a garment's shadow on the floor is
    floor), and one lighter, at a quarter (:data:`HIGHLIGHT_WEIGHT`)."""
    cube = background.reshape(_LUMA_BINS, _CHROMA_BINS, _CHROMA_BINS)
    out = cube + SHADOW_WEIGHT * _shift(cube, -1, 0) + HIGHLIGHT_WEIGHT * _shift(cube, 1, 0)
    flat = out.ravel()
    return flat / flat.sum()


def _unmix(inside: np.ndarray, border: np.ndarray) -> np.ndarray:
    """The garment's colours: the inside histogram minus the background it contains.

    The inside of the frame is a mixture ``pi * background + (1 - pi) * garment``.  The
    largest ``pi`` the main background colours allow (their smallest inside/border ratio)
    is taken out, so a garment that covers a tenth of the frame still gets a model of its
    own colours, and a sleeve in the border ring (a minor border colour) does not count.
    """
    order = np.argsort(-border)
    main = order[:int(np.searchsorted(np.cumsum(border[order]), 0.8)) + 1]
    pi = float(min(0.95, np.min(inside[main] / border[main])))
    garment = np.maximum(inside - pi * border, 0.0)
    total = float(garment.sum())
    return garment / total if total > 1e-6 else inside


def _shift(cube: np.ndarray, step: int, axis: int) -> np.ndarray:
    """``cube`` moved one bin along ``axis``, zero-filled (no wrap-around: black is not
    next to white)."""
    out = np.zeros_like(cube)
    src = [slice(None)] * 3
    dst = [slice(None)] * 3
    src[axis] = slice(0, -1) if step > 0 else slice(1, None)
    dst[axis] = slice(1, None) if step > 0 else slice(0, -1)
    out[tuple(dst)] = cube[tuple(src)]
    return out


def _posterior(bins: np.ndarray, fg: np.ndarray, bg: np.ndarray,
               prior: np.ndarray) -> np.ndarray:
    """P(garment) per pixel from the two colour models and the spatial prior, smoothed."""
    lf, lb = fg[bins] * prior, bg[bins] * (1.0 - prior)
    post = lf / (lf + lb)
    img = Image.fromarray(np.rint(post * 255).astype(np.uint8))
    radius = max(1, round(min(post.shape) / 48))
    return np.asarray(img.filter(ImageFilter.BoxBlur(radius)), np.float32) / 255.0


def _spatial_prior(mask: np.ndarray) -> np.ndarray:
    """Float (h, w) in 0.3..0.7: where the garment was last round, blurred (weak, so a
    narrow gap of floor between two trouser legs can stay floor)."""
    img = Image.fromarray(mask.astype(np.uint8) * 255)
    radius = max(2, round(min(mask.shape) / 12))
    soft = np.asarray(img.filter(ImageFilter.BoxBlur(radius)), np.float32) / 255.0
    return 0.3 + 0.4 * soft


def _clean(mask: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The main region(s), chosen on an opened mask (so a thin bridge of background texture
    or a hanger wire does not join the garment), holes filled (a print on a T-shirt is
    still the T-shirt)."""
    opened = _morph(_morph(mask, ImageFilter.MinFilter(3)), ImageFilter.MaxFilter(3))
    kept = main_regions(opened, score)
    return fill_holes(kept)


def _morph(mask: np.ndarray, op: ImageFilter.Filter) -> np.ndarray:
    """A pillow rank filter on a bool mask (MinFilter = erosion, MaxFilter = dilation)."""
    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(op)) > 127


def label_regions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected regions of a bool mask: labels (int32, 0 = outside) and their count.

    Numpy only (no SciPy on a bare Pi): every pixel starts with its own flat index as its
    label, then each round takes the minimum over whole horizontal runs, whole vertical runs
    and pointer jumps (``labels = labels[labels]``, each label being a pixel of its region),
    so a region settles in a few rounds however long or winding it is.
    """
    h, w = mask.shape
    big = np.int32(h * w)
    labels = np.where(mask, np.arange(h * w, dtype=np.int32).reshape(h, w), big)
    mask_t = np.ascontiguousarray(mask.T)
    for _ in range(h + w):  # a bound; a few rounds in practice
        new = _run_minimum(labels, mask, big)
        new = np.ascontiguousarray(_run_minimum(np.ascontiguousarray(new.T), mask_t, big).T)
        flat = new.ravel()
        inside = flat < big
        flat[inside] = flat[flat[inside]]
        if np.array_equal(new, labels):
            break
        labels = new
    flat_mask = mask.ravel()
    roots, dense = np.unique(labels.ravel()[flat_mask], return_inverse=True)
    out = np.zeros(h * w, np.int32)
    out[flat_mask] = dense.astype(np.int32) + 1
    return out.reshape(h, w), int(roots.size)


def _run_minimum(labels: np.ndarray, mask: np.ndarray, big: np.int32) -> np.ndarray:
    """Every horizontal run of ``mask`` pixels takes the smallest label found in it."""
    h, w = mask.shape
    starts = mask.copy()
    starts[:, 1:] &= ~mask[:, :-1]
    flat_starts = np.flatnonzero(starts)
    if flat_starts.size == 0:
        return labels.copy()
    run_min = np.minimum.reduceat(labels.ravel(), flat_starts)
    run_id = np.cumsum(starts.ravel()) - 1
    out = np.where(mask.ravel(), run_min[np.maximum(run_id, 0)], big)
    return out.reshape(h, w).astype(np.int32)


def main_regions(mask: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The region with the most garment evidence near the centre, plus a second one of
    comparable size (a pair of shoes); everything else is dropped."""
    labels, count = label_regions(mask)
    if count <= 1:
        return mask
    h, w = mask.shape
    weight = score * _centre_prior(h, w)
    flat = labels.ravel()
    evidence = np.bincount(flat, weights=weight.ravel(), minlength=count + 1)[1:]
    area = np.bincount(flat, minlength=count + 1)[1:]
    order = np.argsort(-evidence)
    keep = [order[0]]
    if count > 1 and area[order[1]] >= SECOND_REGION * area[order[0]]:
        keep.append(order[1])
    return np.isin(labels, np.asarray(keep) + 1)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill every background pocket that does not reach the frame's edge."""
    outside = ~mask
    labels, count = label_regions(outside)
    if count == 0:
        return mask
    edge_labels = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    reaches_edge = np.isin(labels, edge_labels[edge_labels > 0])
    return mask | (outside & ~reaches_edge)


def _verdict(mask: np.ndarray, bins: np.ndarray) -> Garment:
    """Decide found / none / full from the final mask."""
    h, w = mask.shape
    area = float(mask.mean())
    if area >= FULL_AREA:
        return Garment(np.ones((h, w), np.float32), "full")
    if area < MIN_AREA:
        return Garment(np.zeros((h, w), np.float32), "none")
    fg = _histogram(bins, mask.astype(np.float32))
    bg = _histogram(bins, (~mask).astype(np.float32))
    if fg is None or bg is None or _overlap(_smooth(fg), _smooth(bg)) > MAX_OVERLAP:
        return Garment(np.zeros((h, w), np.float32), "none")
    return Garment(mask.astype(np.float32), "found")


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya coefficient of two normalised histograms: 1 when identical."""
    return float(np.sqrt(a * b).sum())
