"""The default photo pipeline answers for several views of a photo (pipeline segment-6).

Three segmenters cut the garment out (colour models, the learned net, colour models seeded
by the net), each cut-out is also mirrored unless it may be a shoe, and the model's answers
are combined into one.
Real renders of validation images, real segmenters, the shipped bundle on its runtime.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import scenes
from PIL import Image

from fmnist_edge.edge import dataset, photo, preprocess, segment, segnet
from fmnist_edge.edge.classify import classify, probabilities
from fmnist_edge.edge.model import EdgeModel
from fmnist_edge.train import render

#: Validation renders looked at (a seeded sample).
COUNT = 24


@pytest.fixture(scope="module")
def renders(data_dir: Path) -> list[Image.Image]:
    """Renders of validation images as the device decodes them."""
    train = dataset.load_split("train")
    _, val = dataset.validation_split(len(train.labels))
    picks = np.sort(np.random.default_rng(11).choice(val, COUNT, replace=False))
    return [photo.open_image(render.render(train.images[i], int(train.labels[i]),
                                           render.rng_for(dataset.SEED, "train", int(i))),
                             f"render {i}") for i in picks]


@pytest.fixture(scope="module")
def second() -> EdgeModel:
    return EdgeModel.open(photo_bundle("second"))


def photo_bundle(name: str) -> Path:
    return Path(photo.__file__).resolve().parent / "bundles" / name


def test_the_views_are_three_segmenters_and_their_mirrors(renders: list[Image.Image]) -> None:
    assert segnet.available(), "no runtime for edge/segmenter/ here"
    sizes = []
    for img in renders:
        views = photo.to_views(img)
        colour, net = photo.to_pixels(img, "segment-3"), photo.to_pixels(img, "segment-4")
        assert views.dtype == np.uint8 and views.shape[1:] == (28, 28)
        found = [v for v in (colour, net, _refined(img)) if not photo.is_blank(v)]
        assert found, "no segmenter found the garment of a render"
        assert np.array_equal(photo.to_pixels(img), found[0])  # colour models' view first
        assert all(np.array_equal(v, f) for v, f in zip(views, found, strict=False))
        mirrors = views[len(found):]
        assert len(mirrors) <= len(found)
        assert all(any(np.array_equal(m, f[:, ::-1]) for f in found) for m in mirrors)
        sizes.append(len(views))
    assert max(sizes) == 6 and min(sizes) >= 1


def _refined(img: Image.Image) -> np.ndarray:
    """The third view, drawn by hand: colour models seeded by the net's mask."""
    work = photo.shrink(img, photo.RENDER_SIDE).convert("RGB")
    small = segment.segment_copy(work)
    garment = segment.refine(small, segnet.find_garment(small))
    if not garment.found:
        return np.zeros((28, 28), np.uint8)
    return photo._cut_out(np.asarray(work.convert("L"), np.float32), garment.mask, work.size)[0]


def test_refine_keeps_a_seed_that_found_nothing_or_everything() -> None:
    small = Image.new("RGB", (72, 96), (200, 190, 180))
    for status, fill in (("none", 0.0), ("full", 1.0)):
        seed = segment.Garment(np.full((96, 72), fill, np.float32), status)
        assert segment.refine(small, seed) is seed


def test_refine_grows_a_rough_seed_to_the_garment() -> None:
    """Seeded well inside a garment that runs off the frame's bottom edge, the colour
    models grow the seed to the garment's edges, the frame's edge included (the border is
    not taken for background, as in segment-3's first round)."""
    rng = np.random.default_rng(3)
    picture = np.empty((96, 72, 3), np.float32)
    picture[:] = (196, 188, 170)
    picture[40:, 10:62] = (40, 70, 150)                    # a blue garment down to the edge
    picture += rng.normal(0, 6, picture.shape)
    small = Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8))
    truth = np.zeros((96, 72), bool)
    truth[40:, 10:62] = True
    rough = np.zeros((96, 72), np.float32)
    rough[46:90, 16:56] = 1.0                               # a seed well inside it
    found = segment.refine(small, segment.Garment(rough, "found"))
    assert found.status == "found"
    iou = (found.mask.astype(bool) & truth).sum() / (found.mask.astype(bool) | truth).sum()
    assert iou > 0.9, iou
    assert (rough.astype(bool) & truth).sum() / truth.sum() < 0.65  # the seed was far off
    assert found.mask[-1, 12:60].all()                               # down to the edge


@pytest.mark.parametrize(("label", "mirrored"), [(7, False), (9, False), (3, True), (1, True)])
def test_shoes_are_never_mirrored_other_garments_are(data_dir: Path, label: int,
                                                     mirrored: bool) -> None:
    """Fashion-MNIST's shoes all face left, so a mirrored shoe would be a view of nothing;
    a dress or trousers mirrored is still a dress or trousers."""
    test = dataset.load_split("test")
    picks = np.flatnonzero(test.labels == label)[:3]
    for n, i in enumerate(picks):
        picture = scenes.scene(test.images[i], scenes.wood(np.random.default_rng(n)),
                               scenes.COLOURS[n % len(scenes.COLOURS)])
        views = photo.to_views(picture)
        has_mirror = any(np.array_equal(v, w[:, ::-1]) and not np.array_equal(v, w)
                         for j, v in enumerate(views) for w in views[:j])
        assert has_mirror == mirrored, (label, i, len(views))


def test_a_dataset_image_is_one_view_byte_for_byte(data_dir: Path) -> None:
    test = dataset.load_split("test")
    for i in range(5):
        views = photo.to_views(Image.fromarray(test.images[i]))
        assert views.shape == (1, 28, 28)
        assert np.array_equal(views[0], test.images[i])


def test_an_empty_wall_is_one_blank_view_and_no_garment(second: EdgeModel) -> None:
    wall = Image.new("RGB", (640, 480), (214, 206, 190))
    views = photo.to_views(wall)
    assert views.shape == (1, 28, 28) and photo.is_blank(views)
    assert classify(second, views, "wall").status == "none"


@pytest.mark.parametrize("method", ["segment-3", "segment-4", "dataset", "simple"])
def test_the_other_methods_give_one_view(renders: list[Image.Image], method: str) -> None:
    for img in renders[:4]:
        views = photo.to_views(img, method)
        assert views.shape == (1, 28, 28)
        assert np.array_equal(views[0], photo.to_pixels(img, method))


def test_a_camera_frame_gives_the_views_of_its_picture(renders: list[Image.Image]) -> None:
    frame = np.asarray(renders[0].convert("RGB"))
    np.testing.assert_array_equal(photo.frame_to_views(frame), photo.to_views(renders[0]))
    buf = io.BytesIO()
    renders[0].save(buf, format="PNG")
    again = photo.open_image(buf.getvalue(), "frame.png")
    np.testing.assert_array_equal(photo.to_views(again), photo.to_views(renders[0]))


def test_combined_answer_is_the_mean_of_the_logits() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.5, 0.1, 0.4]], np.float32)
    combined = preprocess.combine_views(probs)
    expected = np.exp(np.log(probs).mean(axis=0))
    np.testing.assert_allclose(combined, expected / expected.sum(), rtol=1e-6)
    assert abs(float(combined.sum()) - 1.0) < 1e-6
    np.testing.assert_allclose(preprocess.combine_views(probs[::-1]), combined, rtol=1e-6)
    np.testing.assert_array_equal(preprocess.combine_views(probs[:1]), probs[0])
    # A class one view rules out stays unlikely, whatever the other view says.
    ruled_out = preprocess.combine_views(np.array([[0.0, 0.5, 0.5], [0.98, 0.01, 0.01]]),
                                         floor=0.002)
    assert ruled_out.argmax() != 0


def test_classify_combines_the_views_of_a_photo(renders: list[Image.Image],
                                                second: EdgeModel) -> None:
    checked = 0
    for img in renders:
        views = photo.to_views(img)
        if len(views) < 2:
            continue
        probs, _ = probabilities(second, views)
        raw = second.predict(views)
        floor = preprocess.probability_floor(second.artifact.output)
        expected = preprocess.calibrate(preprocess.combine_views(raw, floor),
                                        second.manifest.calibration.temperature, floor)
        np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-7)
        single, _ = probabilities(second, views[0])
        assert not np.allclose(single, probs) or np.allclose(raw[0], raw)
        pred = classify(second, views, "render", k=3)
        assert pred.top[0][0] == second.class_names[int(np.argmax(probs))]
        checked += 1
    assert checked >= COUNT // 2


def test_threads_preprocessing_at_once_get_what_one_thread_gets(renders: list[Image.Image]
                                                                ) -> None:
    """edge-serve preprocesses uploads and camera frames in several threads at once; the
    net's interpreter is shared, so its calls must not interleave."""
    alone = [photo.to_views(img) for img in renders]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(photo.to_views, renders * 3))
    for i, views in enumerate(together):
        np.testing.assert_array_equal(views, alone[i % len(renders)])


def test_a_segmenter_that_cannot_run_falls_back_to_segment_3(
        renders: list[Image.Image], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A runtime that imports but cannot load or run the net (a damaged install) must not
    fail every photo: segment-3 alone, named so, and one line saying why."""
    def broken(path: Path, backend: str | None) -> None:
        raise RuntimeError("cannot load this model")

    segnet._runs.cache_clear()
    monkeypatch.setattr(segnet, "_session", broken)
    try:
        assert not segnet.available()
        assert photo.pipeline_version() == photo.pipeline_version("segment-4") == "segment-3"
        for img in renders[:4]:
            views = photo.to_views(img)
            assert views.shape == (1, 28, 28)
            assert np.array_equal(views[0], photo.to_pixels(img, "segment-3"))
        err = capsys.readouterr().err
        assert err.count("cannot run here") == 1 and "cannot load this model" in err
    finally:
        segnet._runs.cache_clear()


def test_the_contact_sheet_shows_every_cut_out_and_no_mirror(renders: list[Image.Image],
                                                             second: EdgeModel,
                                                             tmp_path: Path) -> None:
    """People read the contact sheet to see why a photo was misread: all the cut-outs the
    answer combined must be on it (the first large, the others small beside it)."""
    from fmnist_edge.edge import evaluate, evaluation_report, labelled

    img = next(i for i in renders if len(photo.to_views(i)) == 6)
    views = photo.to_views(img)
    assert [v.tobytes() for v in evaluation_report._cut_outs(views)] == \
        [v.tobytes() for v in views[:3]]
    img.save(tmp_path / "shirt.png")
    (tmp_path / "labels.tsv").write_text("path\tlabel\nshirt.png\t0\n")
    results = evaluate.run(second, labelled.read_folder(tmp_path, second.class_names),
                           "segment")
    assert np.array_equal(results[0].pixels, views)
    sheet = np.asarray(evaluation_report.contact_sheet(results).convert("L"))
    tile, half = evaluation_report.TILE, evaluation_report.TILE // 2
    x, y = 4 + 2 * tile, 4                              # the second and third cut-outs
    small = [sheet[y + k * half:y + (k + 1) * half, x:x + half] for k in (0, 1)]
    for shown, view in zip(small, views[1:3], strict=True):
        expected = np.asarray(Image.fromarray(view).resize((half, half),
                                                          Image.Resampling.NEAREST))
        np.testing.assert_array_equal(shown, expected)
