"""The default "segment" photo pipeline on photo-like scenes built from real test images.

Each scene is a Fashion-MNIST test garment, coloured and shaded like cloth (what is bright in
the dataset is dark in the world, as the dataset negated its photos), laid on a background
a Pi camera sees: a lit wall, wood, floor tiles, a striped blanket; with a lighting gradient,
a shadow, JPEG noise, sometimes touching the frame.  The pipeline must find the garment and
only the garment, draw it like the dataset, and say "nothing" for a scene without one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scenes import BACKGROUNDS, COLOURS, dark_carpet, scene, tiles, wall, wood

from fmnist_edge.edge import photo, segment
from fmnist_edge.edge.dataset import load_split
from fmnist_edge.train import render

#: Two images of every class, spread over the test set (as tests/test_photo.py).
SAMPLE = [0, 1, 2, 3, 4, 8, 11, 19, 21, 23, 29, 34, 41, 46, 55, 61, 67, 72, 88, 97]


@pytest.fixture(scope="module")
def test_split(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    split = load_split("test")
    return split.images, split.labels



def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Overlap of the two garments' silhouettes (pixels above a faint level)."""
    sa, sb = a > 25, b > 25
    return float((sa & sb).sum() / max((sa | sb).sum(), 1))


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(np.float64).ravel(), b.astype(np.float64).ravel())[0, 1])


@pytest.mark.parametrize("name", sorted(BACKGROUNDS))
def test_garment_is_found_on_textured_backgrounds(name: str,
                                                  test_split: tuple[np.ndarray, np.ndarray]
                                                  ) -> None:
    images, _ = test_split
    rng = np.random.default_rng(7)
    ious = []
    for n, i in enumerate(SAMPLE):
        img = scene(images[i], BACKGROUNDS[name](rng), COLOURS[n % len(COLOURS)])
        out = photo.to_pixels(img)
        assert out.shape == (28, 28) and out.dtype == np.uint8
        assert not photo.is_blank(out), (name, i)
        assert out[0, 0] == 0 and out[-1, -1] == 0  # background pure black
        ious.append(iou(out, images[i]))
    # Silhouette overlap with the original dataset image after the whole pipeline.
    assert np.median(ious) > 0.7, (name, np.round(ious, 2))
    assert min(ious) > 0.15, (name, np.round(ious, 2))  # a thin sandal is the worst


def test_segment_beats_the_dataset_method_on_textured_scenes(
        test_split: tuple[np.ndarray, np.ndarray]) -> None:
    images, _ = test_split
    rng = np.random.default_rng(11)
    seg, dat = [], []
    for n, i in enumerate(SAMPLE):
        img = scene(images[i], wood(rng), COLOURS[n % len(COLOURS)])
        seg.append(iou(photo.to_pixels(img, "segment"), images[i]))
        dat.append(iou(photo.to_pixels(img, "dataset"), images[i]))
    assert np.mean(seg) > np.mean(dat) + 0.2, (np.mean(seg), np.mean(dat))


def test_garment_touching_the_frame(test_split: tuple[np.ndarray, np.ndarray]) -> None:
    images, _ = test_split
    rng = np.random.default_rng(3)
    found = 0
    for n, i in enumerate(SAMPLE):
        # Pushed past the left edge by a tenth of its width.
        img = scene(images[i], tiles(rng), COLOURS[n % len(COLOURS)], at=(80, -30))
        out = photo.to_pixels(img)
        found += not photo.is_blank(out)
        if not photo.is_blank(out):
            assert out[:, -1].max() < 60 or out[0].max() < 60  # not the whole frame
    # The one miss allowed: a thin dark flip-flop cut by the frame on tiles with dark grout
    # (its colours are the grout's; see segment.MAX_OVERLAP).
    assert found >= len(SAMPLE) - 1, found


@pytest.mark.parametrize("name", sorted(BACKGROUNDS))
def test_empty_scene_finds_no_garment(name: str) -> None:
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        img = Image.fromarray(np.clip(BACKGROUNDS[name](rng), 0, 255).astype(np.uint8))
        assert photo.is_blank(photo.to_pixels(img)), (name, seed)


@pytest.mark.parametrize("picture", [
    Image.new("RGB", (1, 1), (10, 200, 30)),
    Image.new("RGB", (3, 900), (255, 255, 255)),
    Image.new("RGB", (640, 480), (0, 0, 0)),
    Image.new("L", (640, 480), 255),
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)),
    Image.fromarray(np.tile(np.arange(256, dtype=np.uint8), (200, 2))),
])
def test_any_picture_gives_pixels_never_an_error(picture: Image.Image) -> None:
    out = photo.to_pixels(picture)
    assert out.shape == (28, 28) and out.dtype == np.uint8


def test_renders_of_test_images_are_segmented(test_split: tuple[np.ndarray, np.ndarray]
                                              ) -> None:
    """The photo recipe's own renders (train.render: textured floors, beds, walls, hands,
    hangers, pairs of shoes, tilt, vignetting) of the first 60 test images, scored against
    the garment's true alpha at the segmentation copy's size.  Pipeline segment-2 scored a
    mean IoU of 0.754 with 13 renders below 0.5; segment-3 0.808 with 6."""
    images, labels = test_split
    ious = []
    for i in range(60):
        picture, alpha = render.compose(images[i], int(labels[i]), render.rng_for(0, "test", i))
        small = segment.segment_copy(picture)
        true = Image.fromarray(alpha.astype(np.float32), mode="F").resize(
            small.size, Image.Resampling.BOX)
        truth, found = np.asarray(true) > 0.5, segment.find_garment(small).mask > 0.5
        ious.append((truth & found).sum() / max((truth | found).sum(), 1))
    assert np.mean(ious) > 0.79, np.round(ious, 2)
    assert sum(v < 0.5 for v in ious) <= 8, np.round(ious, 2)


def test_dark_floor_is_segmented_not_taken_for_black(test_split: tuple[np.ndarray, np.ndarray]
                                                     ) -> None:
    """A dim carpet (grey 25..40 along the edge) is a background to cut the garment from,
    not a dataset image's black to trim (segment-2 did that: median silhouette IoU 0.28)."""
    images, _ = test_split
    ious = []
    for n, i in enumerate(SAMPLE):
        img = scene(images[i], dark_carpet(np.random.default_rng(n)), (200, 190, 170))
        out = photo.to_pixels(img)
        assert out[0, 0] == 0 and out[-1, -1] == 0
        ious.append(iou(out, images[i]))
    assert np.median(ious) > 0.75, np.round(ious, 2)


def test_dataset_image_passes_through_byte_identical(
        test_split: tuple[np.ndarray, np.ndarray]) -> None:
    images, _ = test_split
    for i in SAMPLE:
        assert photo.to_pixels(Image.fromarray(images[i])).tobytes() == images[i].tobytes()


def test_shoe_is_turned_to_face_left(test_split: tuple[np.ndarray, np.ndarray]) -> None:
    """Fashion-MNIST shoes point left (heel, the taller end, on the right): 93-99.8 % of
    them by the pipeline's own rule, so a shoe photographed pointing right is mirrored."""
    images, labels = test_split
    shoes = [i for i in range(400) if labels[i] in (5, 7, 9)][:20]
    rng = np.random.default_rng(5)
    turned = 0
    for i in shoes:
        mirrored = np.ascontiguousarray(images[i][:, ::-1])  # a shoe pointing right
        out = photo.to_pixels(scene(mirrored, wall(rng), (40, 40, 50)))
        turned += corr(out, images[i]) > corr(out, mirrored)
    assert turned >= 17, turned


def test_pipeline_version_names_the_default() -> None:
    assert photo.DEFAULT_METHOD == "segment"
    assert photo.DEFAULT_METHOD in photo.METHODS
    assert photo.PIPELINE_VERSION.startswith("segment-")


def test_label_regions_matches_a_flood_fill() -> None:
    rng = np.random.default_rng(1)
    mask = rng.random((40, 30)) > 0.5
    labels, count = segment.label_regions(mask)
    # Reference: a plain breadth-first flood fill.
    ref = np.zeros(mask.shape, int)
    n = 0
    for y, x in zip(*np.nonzero(mask), strict=True):
        if ref[y, x]:
            continue
        n += 1
        stack = [(y, x)]
        ref[y, x] = n
        while stack:
            a, b = stack.pop()
            for c, d in ((a + 1, b), (a - 1, b), (a, b + 1), (a, b - 1)):
                if 0 <= c < 40 and 0 <= d < 30 and mask[c, d] and not ref[c, d]:
                    ref[c, d] = n
                    stack.append((c, d))
    assert count == n
    assert len(set(zip(labels[mask], ref[mask], strict=True))) == n  # same partition
    assert (labels[~mask] == 0).all()


def test_pair_of_shoes_keeps_both(test_split: tuple[np.ndarray, np.ndarray]) -> None:
    """Two shoes side by side are one garment (a pair), not a shoe and some floor."""
    images, labels = test_split
    sneaker = images[int(np.flatnonzero(labels == 7)[0])]
    square = np.zeros((64, 64), np.uint8)
    square[18:46, 0:28], square[18:46, 36:64] = sneaker, sneaker  # a gap of 8 pixels
    small = np.asarray(Image.fromarray(square).resize((28, 28), Image.Resampling.BILINEAR))
    img = scene(small, wood(np.random.default_rng(9)), (30, 30, 40), at=(60, 150), scale=12)
    assert segment.label_regions(small > 25)[1] == 2
    out = photo.to_pixels(img)
    # Both shoes, where they were (one shoe alone would be scaled to fill the width).
    assert iou(out, small) > 0.6, iou(out, small)


def test_hanger_wire_is_not_part_of_the_garment(test_split: tuple[np.ndarray, np.ndarray]
                                                ) -> None:
    """A dark wire from the top of the frame to the garment (a hanger on a door)."""
    images, labels = test_split
    top = int(np.flatnonzero(labels == 0)[0])
    img = np.asarray(scene(images[top], wall(np.random.default_rng(4)), (30, 30, 40),
                           at=(120, 180)), np.float32).copy()
    img[0:140, 335:341] = 25                                  # 6 px wire, 140 px long
    out = photo.to_pixels(Image.fromarray(img.astype(np.uint8)))
    without = photo.to_pixels(scene(images[top], wall(np.random.default_rng(4)),
                                    (30, 30, 40), at=(120, 180)))
    assert iou(out, images[top]) > 0.8, iou(out, images[top])
    assert iou(out, without) > 0.9
