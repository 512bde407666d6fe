"""Photo-like views of dataset images: deterministic, drawn as the device draws, wider clothes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fmnist_edge.edge import dataset, photo
from fmnist_edge.train import views


@pytest.fixture(scope="module")
def test_split(data_dir: Path) -> dataset.Split:
    return dataset.load_split("test")


def _box(pixels: np.ndarray) -> tuple[int, int]:
    """(width, height) of the lit pixels' bounding box."""
    ys, xs = np.nonzero(pixels)
    return int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def test_same_seed_same_views_whatever_the_chunking(test_split: dataset.Split) -> None:
    idx = np.arange(40)
    one = views.views(test_split.images[idx], test_split.labels[idx], idx, seed=3)
    again = views.many(test_split.images, test_split.labels, idx, seed=3, copies=1, workers=1)
    halves = np.concatenate([views.views(test_split.images[idx[:17]], test_split.labels[idx[:17]],
                                         idx[:17], seed=3),
                             views.views(test_split.images[idx[17:]], test_split.labels[idx[17:]],
                                         idx[17:], seed=3)])
    other = views.views(test_split.images[idx], test_split.labels[idx], idx, seed=4)
    assert np.array_equal(one, again)
    assert np.array_equal(one, halves)
    assert not np.array_equal(one, other)


def test_two_copies_are_two_different_views(test_split: dataset.Split) -> None:
    idx = np.arange(10)
    both = views.many(test_split.images, test_split.labels, idx, seed=0, copies=2, workers=1)
    assert both.shape == (20, *photo.SHAPE)
    assert all(not np.array_equal(both[i], both[10 + i]) for i in range(10))


def test_views_are_drawn_the_way_the_device_draws_a_photo(test_split: dataset.Split) -> None:
    idx = np.arange(200)
    out = views.views(test_split.images[idx], test_split.labels[idx], idx, seed=0)
    assert out.dtype == np.uint8 and out.shape == (200, *photo.SHAPE)
    for pixels in out:
        assert pixels.any()  # never blank: the device would say "no garment found"
        assert max(_box(pixels)) >= photo.SHAPE[0] - 1  # longest edge 28, as the pipeline
    # the garment's median tone is the one the device sets for every photo
    inside = out[out > 0]
    assert abs(float(np.median(inside)) - photo.GARMENT_TONES[1]) < 20


def test_clothes_spread_out_shoes_keep_their_shape(test_split: dataset.Split) -> None:
    labels = test_split.labels
    clothes = np.flatnonzero(np.isin(labels, (0, 1, 3)))[:300]
    out = views.views(test_split.images[clothes], labels[clothes], clothes, seed=0)

    def aspect(images: np.ndarray) -> float:
        return float(np.median([w / h for w, h in map(_box, images)]))

    assert aspect(out) > 1.15 * aspect(test_split.images[clothes])


def test_some_shoes_come_as_a_pair(test_split: dataset.Split) -> None:
    sneakers = np.flatnonzero(test_split.labels == 7)[:100]
    out = views.views(test_split.images[sneakers], test_split.labels[sneakers], sneakers, seed=0)
    # a sneaker alone is about twice as wide as tall; a pair, one beside and a little above
    # the other, rotated any way, is often squarer
    squarish = [w / h < 1.3 for w, h in map(_box, out)]
    originals = [w / h < 1.3 for w, h in map(_box, test_split.images[sneakers])]
    assert sum(squarish) >= sum(originals) + 10
