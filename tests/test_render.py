"""The photo renderer: deterministic, garment inside, real-looking background, right sizes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmnist_edge.edge import dataset, photo
from fmnist_edge.train import render, rendered


@pytest.fixture(scope="module")
def test_split(data_dir: Path) -> dataset.Split:
    return dataset.load_split("test")


def _decode(jpeg: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(jpeg))
    assert img.format == "JPEG"
    return img.convert("RGB")


def test_same_seed_same_bytes_other_seed_other_picture(test_split: dataset.Split) -> None:
    img, label = test_split.images[0], int(test_split.labels[0])
    a = render.render(img, label, render.rng_for(0, "test", 0))
    b = render.render(img, label, render.rng_for(0, "test", 0))
    c = render.render(img, label, render.rng_for(1, "test", 0))
    d = render.render(img, label, render.rng_for(0, "train", 0))
    assert a == b
    assert len({a, c, d}) == 3


@pytest.mark.parametrize("index", range(12))
def test_picture_size_garment_inside_background_not_black(test_split: dataset.Split,
                                                          index: int) -> None:
    img, label = test_split.images[index], int(test_split.labels[index])
    picture, alpha = render.compose(img, label, render.rng_for(5, "test", index))
    assert picture.mode == "RGB"
    assert picture.size in (render.CANVAS, render.CANVAS[::-1])
    assert alpha.shape == (picture.size[1], picture.size[0])
    garment = alpha > 0.5
    share = garment.mean()
    assert 0.02 < share < 0.95, share  # a garment, in the picture, not the whole picture
    ys, xs = np.nonzero(garment)
    h, w = alpha.shape
    span = max((ys.max() - ys.min()) / h, (xs.max() - xs.min()) / w)
    assert span > 0.4, span  # framed as a photo of it, not a speck in a room
    assert 0.2 * h < ys.mean() < 0.8 * h and 0.2 * w < xs.mean() < 0.8 * w
    rgb = np.asarray(picture, np.float32)
    background = rgb[alpha < 0.01]
    assert np.median(background.mean(axis=1)) > 10  # a lit surface, not the dataset's black
    assert background.std() > 1.0  # light, texture and noise: never a flat fill


def test_render_is_a_jpeg_the_device_can_read(test_split: dataset.Split) -> None:
    jpeg = render.render(test_split.images[3], int(test_split.labels[3]),
                         render.rng_for(0, "test", 3), landscape=True)
    assert _decode(jpeg).size == render.CANVAS[::-1]
    pixels = photo.to_pixels(photo.open_image(jpeg, "render"))
    assert pixels.shape == (28, 28) and pixels.dtype == np.uint8


def test_black_image_renders_background_only() -> None:
    picture, alpha = render.compose(np.zeros((28, 28), np.uint8), 0, render.rng_for(0, "test", 0))
    assert not alpha.any()
    assert np.asarray(picture).mean() > 5


def test_garment_mask_fills_enclosed_black_and_drops_specks() -> None:
    img = np.zeros((28, 28), np.uint8)
    img[5:20, 5:20] = 200
    img[10:13, 10:13] = 0  # a white print: negated to 0, but inside the garment
    img[25, 25] = 3  # a lone scanner speck
    mask = render.garment_mask(img)
    assert mask[10:13, 10:13].all()
    assert not mask[25, 25]
    assert mask.sum() == 15 * 15


@pytest.mark.parametrize("kind", list(render.BACKGROUNDS))
def test_every_background_is_a_textured_lit_surface(kind: str) -> None:
    layer = render.background(np.random.default_rng(3), 256, 192, kind)
    assert layer.shape == (256, 192, 3) and layer.dtype == np.float32
    assert layer.min() >= 0.0 and layer.max() <= 1.0
    assert layer.mean() > 0.03


def test_parallel_and_cached_renders_are_the_same_bytes(test_split: dataset.Split,
                                                        tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(rendered.CACHE_VAR, str(tmp_path))
    idx = np.arange(6)
    one = rendered.renders(test_split.images, test_split.labels, idx, "test", 0, workers=1)
    assert len(list(tmp_path.glob("jpeg-*.npz"))) == 1
    cached = rendered.renders(test_split.images, test_split.labels, idx, "test", 0, workers=1)
    assert cached == one
    for f in tmp_path.glob("*.npz"):
        f.unlink()
    two = rendered.renders(test_split.images, test_split.labels, idx, "test", 0, workers=2)
    assert two == one
    px = rendered.pixels(test_split.images, test_split.labels, idx, "test", 0, workers=1)
    assert px.shape == (6, 28, 28)
    assert np.array_equal(px, rendered.to_device_pixels(one))


def _sample(labels: np.ndarray, count: int = 1003, seed: int = 0) -> np.ndarray:
    """The sample ``fmnist-render -n count --seed seed`` renders."""
    return np.sort(dataset.balanced_sample(labels, count, np.random.default_rng(seed)))


def test_balanced_sample_is_balanced_and_seeded(test_split: dataset.Split) -> None:
    a = _sample(test_split.labels)
    assert np.array_equal(a, _sample(test_split.labels))
    assert len(np.unique(a)) == 1003
    counts = np.bincount(test_split.labels[a], minlength=10)
    assert counts.max() - counts.min() <= 1


def test_render_and_calibration_sample_alike(test_split: dataset.Split) -> None:
    """One sampler: the int8 calibration images are the render sample, shuffled."""
    from fmnist_edge.export import calibration

    picked = calibration.balanced_indices(test_split.labels, 23, seed=5)
    assert not np.array_equal(picked, np.sort(picked))  # shuffled: classes interleaved
    assert np.array_equal(np.sort(picked), _sample(test_split.labels, 23, 5))


def test_fmnist_render_writes_a_labelled_folder(tmp_path: Path) -> None:
    env = {**os.environ, rendered.CACHE_VAR: str(tmp_path / "cache")}
    code = "from fmnist_edge.train.render_cli import main; main()"
    proc = subprocess.run([sys.executable, "-c", code, "-n", "20", "-o", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = (tmp_path / "out" / "labels.tsv").read_text().splitlines()
    assert rows[0].split("\t")[:3] == ["path", "label", "class"]
    test = dataset.load_split("test")
    assert len(rows) == 21
    for row in rows[1:]:
        path, label, name, index, _ = row.split("\t")
        assert int(test.labels[int(index)]) == int(label)
        assert dataset.CLASS_NAMES[int(label)] == name
        assert path.startswith(f"{label}_")
        _decode((tmp_path / "out" / path).read_bytes())


def test_fmnist_render_bad_output_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = "from fmnist_edge.train.render_cli import main; main()"
    proc = subprocess.run([sys.executable, "-c", code, "-n", "5", "-o", str(blocker / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "cannot write" in proc.stderr


def test_fmnist_render_more_than_the_split_has_is_a_usage_error(tmp_path: Path) -> None:
    """The test split has 10,000 images: -n 20000 used to write 10,000 and say nothing."""
    code = "from fmnist_edge.train.render_cli import main; main()"
    proc = subprocess.run([sys.executable, "-c", code, "--split", "test", "-n", "20000",
                           "-o", str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "10,000 images" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()

