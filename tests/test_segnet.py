"""The learned segmenter (pipeline segment-4) in the device's own runtimes, on real renders.

Renders of VALIDATION images (the 70/30 split, seed 777; never trained on), scored against
the garment's mask as the camera saw it, at the segmentation copy's size.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmnist_edge.edge import dataset, hashing, photo, runtimes, segment, segnet
from fmnist_edge.train import render
from fmnist_edge.train import segnet as train_segnet

#: Renders scored (a seeded sample of validation images).
COUNT = 60
BACKENDS = [b for b in ("litert", "tflite-runtime", "onnxruntime") if runtimes.is_installed(b)]


@pytest.fixture(scope="module")
def renders(data_dir: Path) -> list[tuple[Image.Image, np.ndarray]]:
    """(segmentation copy, mask as seen at the net's (96, 72)) for COUNT validation renders."""
    train = dataset.load_split("train")
    _, val = dataset.validation_split(len(train.labels))
    picks = np.sort(np.random.default_rng(5).choice(val, COUNT, replace=False))
    out = []
    for i in picks:
        picture, _, seen = render.scene(train.images[i], int(train.labels[i]),
                                        render.rng_for(dataset.SEED, "train", int(i)))
        jpeg = render_jpeg(picture)
        small = train_segnet.device_copy(jpeg)
        out.append((small, train_segnet.to_portrait(seen, small.size)))
    return out


def render_jpeg(picture: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    picture.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def _iou(found: np.ndarray, truth: np.ndarray) -> float:
    f, t = found > 0.5, truth > 0.5
    return float((f & t).sum() / max((f | t).sum(), 1))


def _portrait_mask(garment: segment.Garment) -> np.ndarray:
    mask = garment.mask
    return mask.T if mask.shape[1] > mask.shape[0] else mask


def test_the_net_beats_segment_3_on_validation_renders(
        renders: list[tuple[Image.Image, np.ndarray]]) -> None:
    """Measured when the net was chosen (500 validation renders, clean-up included): mean
    IoU 0.90 against segment-3's 0.87, below 0.5 on 1 % of renders against 4 %."""
    assert segnet.available(), "no runtime for edge/segmenter/ here"
    net = [_iou(_portrait_mask(segnet.find_garment(s)), t) for s, t in renders]
    old = [_iou(_portrait_mask(segment.find_garment(s)), t) for s, t in renders]
    assert np.mean(net) > 0.87, np.round(net, 2)
    assert np.mean(net) > np.mean(old) + 0.01, (np.mean(net), np.mean(old))
    assert sum(v < 0.5 for v in net) <= 2, np.round(net, 2)


@pytest.mark.skipif(len(BACKENDS) < 2, reason="needs two runtimes for the net's files")
def test_every_runtime_gives_the_same_mask(renders: list[tuple[Image.Image, np.ndarray]]
                                           ) -> None:
    for small, _ in renders[:20]:
        probs = [segnet.probabilities(small, b) for b in BACKENDS]
        for p in probs[1:]:
            assert np.abs(p - probs[0]).max() < 1e-4
        masks = [segnet.garment(p).mask for p in probs]
        assert all(np.array_equal(m, masks[0]) for m in masks[1:])


@pytest.mark.parametrize("kind", ["wall", "gradient", "sheet", "wood"])
def test_an_empty_surface_is_none(kind: str) -> None:
    for seed in range(3):
        rng = np.random.default_rng(40 + seed)
        layer = render.background(rng, 256, 192, kind)
        img = Image.fromarray(np.clip(np.rint(layer * 255), 0, 255).astype(np.uint8))
        assert segnet.find_garment(segment.segment_copy(img)).status == "none", (kind, seed)


def test_a_blank_wall_is_no_garment_found() -> None:
    wall = Image.new("RGB", (640, 480), (214, 206, 190))
    assert segnet.find_garment(segment.segment_copy(wall)).status == "none"
    assert photo.is_blank(photo.to_pixels(wall))


def test_any_size_gives_a_mask_of_that_size() -> None:
    rng = np.random.default_rng(0)
    for w, h in ((96, 72), (72, 96), (96, 54), (40, 96), (7, 90)):
        small = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        garment = segnet.find_garment(small)
        assert garment.mask.shape == (h, w) and garment.status in ("found", "none", "full")


def test_pipeline_version_says_which_segmenter_ran(monkeypatch: pytest.MonkeyPatch,
                                                   renders: list[tuple[Image.Image, np.ndarray]]
                                                   ) -> None:
    assert photo.PIPELINE_VERSION == "segment-6"
    assert photo.pipeline_version() == "segment-6"
    assert photo.pipeline_version("segment-4") == "segment-4"
    assert photo.pipeline_version("segment-3") == "segment-3"
    small = renders[0][0]
    assert len(photo.to_views(small)) >= 2
    # No runtime for the net (32-bit Pi OS: the numpy runtime only): segment-3, by name.
    monkeypatch.setattr(segnet, "model_path", lambda backend=None: None)
    assert not segnet.available()
    assert photo.pipeline_version() == photo.pipeline_version("segment-4") == "segment-3"
    for method in ("segment", "segment-4"):
        views = photo.to_views(small, method)
        assert views.shape == (1, 28, 28)
        assert np.array_equal(views[0], photo.to_pixels(small, "segment-3"))


def test_shipped_files_match_their_record() -> None:
    record = json.loads((segnet.MODEL_DIR / segnet.RECORD).read_text())
    for name in segnet.FILES.values():
        assert hashing.sha256_of(segnet.MODEL_DIR / name) == record["files"][name]["sha256"]
    figures = record["validation"]
    assert figures["segnet_iou_seen"]["mean"] > figures["segment-3_iou_seen"]["mean"]
    assert max(record["export_max_abs_diff"].values()) < 1e-4


def test_training_pairs_are_cached_by_what_was_rendered(data_dir: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Same indices, other pictures (more of them blanked to background): not the cached
    pairs of the first call, and each kept apart on disk."""
    from fmnist_edge.train import rendered

    monkeypatch.setenv(rendered.CACHE_VAR, str(tmp_path))
    train = dataset.load_split("train")
    idx = np.arange(3)
    images = train.images[idx].copy()
    first = train_segnet.pairs(images, train.labels[idx], idx, dataset.SEED)
    images[1] = 0  # as training_pairs blanks a share of them
    second = train_segnet.pairs(images, train.labels[idx], idx, dataset.SEED)
    assert len(list(tmp_path.glob("segnet-pairs-*.npz"))) == 2
    assert np.array_equal(first["x"][0], second["x"][0])
    assert not second["seen"][1].any() and first["seen"][1].any()
