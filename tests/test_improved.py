"""The improved recipe: augmentation on real images, and ``--recipe improved`` end to end.

A small real run (3,000 training images, 3 epochs, the teacher included) must ship exactly
the tutorial's architecture (the teacher, dropout and logits head stay behind), record the
recipe, and give identical weights when run twice.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fmnist_edge.edge import dataset
from fmnist_edge.edge.cli_util import run
from fmnist_edge.train import augment, improved, models, pool, recipes, tta
from fmnist_edge.train.cli import cli as train_cli

QUICK = ["--recipe", "improved", "--epochs", "3", "--subset", "3000", "--quiet"]


@pytest.fixture(scope="module")
def images(data_dir: Path) -> np.ndarray:
    return dataset.load_split("test").images[:200].astype(np.float32) / 255


def test_augmentation_is_fixed_by_seed_and_epoch(images: np.ndarray) -> None:
    aug = augment.Augment()
    a = augment.epoch_images(images, aug, 777, 3)
    assert np.array_equal(a, augment.epoch_images(images, aug, 777, 3))
    assert not np.array_equal(a, augment.epoch_images(images, aug, 777, 4))
    assert a.shape == images.shape and a.dtype == images.dtype
    assert a.min() >= 0 and a.max() <= 1


def test_augmentation_keeps_the_garment(images: np.ndarray) -> None:
    assert augment.epoch_images(images, augment.NONE, 777, 0) is images
    rng = np.random.default_rng(0)
    flips = augment.transform(images, augment.Augment(0, 0, True), rng)
    mirrored = [np.array_equal(f, x[:, ::-1]) for f, x in zip(flips, images, strict=True)]
    unchanged = [np.array_equal(f, x) for f, x in zip(flips, images, strict=True)]
    assert all(m or u for m, u in zip(mirrored, unchanged, strict=True))
    assert 60 < sum(mirrored) < 140  # about half are mirrored
    moved = augment.transform(images, augment.Augment(2, 0.1, False), rng)
    # small shifts and zooms: the ink stays (within 25 %) and mostly overlaps the original
    ink, moved_ink = images.sum(axis=(1, 2)), moved.sum(axis=(1, 2))
    assert np.all(np.abs(moved_ink / ink - 1) < 0.25)
    overlap = (np.minimum(images, moved).sum(axis=(1, 2)) / ink)
    assert np.median(overlap) > 0.7


def test_whole_pixel_shifts_move_pixels_without_blur(images: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    moved = augment.transform(images, augment.Augment(2, 0, False, whole_pixels=True), rng)
    # every output pixel is an input pixel (or the black border): nothing resampled
    for m, x in zip(moved[:20], images[:20], strict=True):
        assert np.isin(m, np.append(x, 0)).all()
    assert any(not np.array_equal(m, x) for m, x in zip(moved, images, strict=True))


def test_pool_pairs_each_view_with_its_own_logits(images: np.ndarray) -> None:
    def ink(x: np.ndarray) -> np.ndarray:  # a stand-in reader whose answer depends on the view
        return np.stack([x[:, :, :14].sum(axis=(1, 2)), x[:, :, 14:].sum(axis=(1, 2))], axis=1)

    views = pool.build(images, augment.Augment(1, 0, True, True), 4, 777, ink)
    assert views.images.shape == (4, *images.shape) and np.array_equal(views.images[0], images)
    order = np.random.default_rng(0).permutation(len(images))
    x, logits = views.epoch(777, 5, order)
    assert logits is not None and np.allclose(logits, ink(x), atol=1e-4)
    again, _ = views.epoch(777, 5, order)
    assert np.array_equal(x, again)  # fixed by (seed, epoch)
    assert not np.array_equal(x, views.epoch(777, 6, order)[0])
    assert not np.array_equal(x, images[order])  # views other than the originals are drawn


def test_teacher_views_are_the_mirror_and_one_pixel_shifts(images: np.ndarray) -> None:
    views = {name: tta.view(images, flip, dy, dx) for name, flip, dy, dx in tta.VIEWS}
    assert np.array_equal(views["image"], images)
    assert np.array_equal(views["mirror"], images[:, :, ::-1])
    assert np.array_equal(views["right"][:, :, 1:], images[:, :, :-1])
    assert np.array_equal(views["up"][:, :-1], images[:, 1:])
    assert not views["right"][:, :, 0].any() and not views["up"][:, -1].any()  # black comes in

    def ink_left(x: np.ndarray) -> np.ndarray:  # a reader whose answer changes with the view
        return np.stack([x[:, :, :14].sum(axis=(1, 2)), x.sum(axis=(1, 2))], axis=1)

    assert np.array_equal(tta.averaged(ink_left, images, 1), ink_left(images))
    both = tta.averaged(ink_left, images, 2)  # image and mirror: left ink becomes half of all
    assert np.allclose(both[:, 0], both[:, 1] / 2, rtol=1e-4)
    with pytest.raises(ValueError, match="views"):
        tta.averaged(ink_left, images, len(tta.VIEWS) + 1)


def test_the_first_student_seed_is_the_runs_own() -> None:
    seeds = [improved.seed_of(777, k) for k in range(3)]
    assert seeds[0] == 777 and len(set(seeds)) == 3


@pytest.mark.slow
def test_several_student_seeds_keep_the_best_on_validation(data_dir: Path) -> None:
    from fmnist_edge.train.fit import TrainConfig, load_data
    from fmnist_edge.train.teacher import TeacherConfig

    data = load_data(TrainConfig(subset=2000))
    cfg = improved.ImprovedConfig(epochs=2, student_seeds={"first": 2},
                                  teacher=TeacherConfig(epochs=1))
    _, result = improved.train(("first",), data, cfg, 777)["first"]
    by_seed = result["val_accuracy_by_seed"]
    assert len(by_seed) == 2 and by_seed[result["student_seed"]] == max(by_seed)
    assert round(result["val_accuracy_max"], 4) == max(by_seed)  # the kept student's record


def test_short_runs_scale_the_teacher_too() -> None:
    recipe = improved.ImprovedConfig()
    assert improved.scaled(recipe, recipe.epochs, recipe.batch_size) == recipe
    assert improved.scaled(recipe, 3, 128).teacher.epochs == 1


@pytest.fixture(scope="module")
def improved_runs(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> list[Path]:
    outs = [tmp_path_factory.mktemp(f"improved{i}") for i in range(2)]
    for out in outs:
        assert run(train_cli, ["-o", str(out), "--models", "first", *QUICK]) == 0
    return outs


@pytest.mark.slow
def test_improved_ships_the_tutorial_architecture(improved_runs: list[Path]) -> None:
    import keras

    assert recipes.get("improved").epochs > recipes.get("tutorial").epochs
    out = improved_runs[0]
    model = keras.saving.load_model(out / "first.keras")
    reference = models.build("first")
    assert model.count_params() == models.EXPECTED_PARAMS["first"]
    assert ([type(layer).__name__ for layer in model.layers]
            == [type(layer).__name__ for layer in reference.layers])  # no Dropout, no teacher
    assert model.layers[-1].activation.__name__ == "softmax"
    m = json.loads((out / "metrics.json").read_text())["models"]["first"]
    assert m["recipe"] == "improved" and m["params"] == models.EXPECTED_PARAMS["first"]
    assert m["recipe_config"]["distill"] and m["teacher"]["params"] > 4 * m["params"]
    assert m["student_seed"] == 0 and len(m["val_accuracy_by_seed"]) == 1  # one for first
    assert len(m["history"]["val_accuracy"]) == m["epochs_run"] == 3
    assert m["val_accuracy_max"] == m["history"]["val_accuracy"][m["best_epoch_by_val_accuracy"]
                                                                 - 1]
    assert m["test_accuracy"] > 0.5  # learnt something from 2,100 images in 3 epochs


@pytest.mark.slow
def test_improved_is_deterministic(improved_runs: list[Path]) -> None:
    import keras

    a, b = (keras.saving.load_model(out / "first.keras").get_weights() for out in improved_runs)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


# Round 5's levers (off by default): each must do what its field says, on real images.


def test_mixup_mixes_each_image_and_its_targets_by_one_weight(images: np.ndarray) -> None:
    n = len(images)
    ids = np.eye(n, dtype=np.float32)  # targets naming each image: t[i] = lam e_i + (1-lam) e_j
    x, t = improved.mixup(images, ids, 0.3, np.random.default_rng(5))
    again = improved.mixup(images, ids, 0.3, np.random.default_rng(5))
    assert np.array_equal(x, again[0]) and np.array_equal(t, again[1])  # fixed by the rng
    assert np.allclose(t.sum(axis=1), 1)  # a packed target stays a distribution
    for i in range(n):
        weights = np.flatnonzero(t[i] > 0)
        assert i in weights and len(weights) <= 2  # itself and at most one partner
        expected = sum(t[i, j] * images[j] for j in weights)
        assert np.allclose(x[i], expected, atol=1e-6)  # the image mixed by the targets' weights
    lam = t[np.arange(n), np.arange(n)]
    assert 0.3 < np.mean((lam > 0.05) & (lam < 0.95)) < 0.9  # Beta(0.3, 0.3): often mixed


def test_logit_matching_is_zero_when_the_logits_match_up_to_a_constant() -> None:
    from keras import ops

    rng = np.random.default_rng(0)
    teacher_z = rng.normal(0, 3, (8, models.NUM_CLASSES)).astype(np.float32)
    from fmnist_edge.train.teacher import softened

    targets = improved._targets(np.arange(8) % models.NUM_CLASSES, softened(teacher_z, 2.0), 0)
    mse = improved._loss(1.0, 2.0, logit_mse=1.0)
    same = ops.convert_to_numpy(mse(targets, teacher_z + 5.0))  # softmax ignores the constant
    other = ops.convert_to_numpy(mse(targets, teacher_z + rng.normal(0, 1, teacher_z.shape)
                                     .astype(np.float32)))
    assert np.allclose(same, 0, atol=1e-4) and np.all(other > 0.1)
    kl = ops.convert_to_numpy(improved._loss(1.0, 2.0)(targets, teacher_z + 5.0))
    half = ops.convert_to_numpy(improved._loss(1.0, 2.0, logit_mse=0.5)(targets, teacher_z))
    assert np.allclose(half, kl / 2, atol=1e-4)  # half the soft term is the KL's


def _one_step(cfg: improved.ImprovedConfig, images: np.ndarray, lr: float) -> list[np.ndarray]:
    """Weights of ``first``'s training graph after one step of plain SGD on 200 images."""
    import keras

    keras.utils.set_random_seed(777)
    model = models.build("first")
    graph = improved._training_graph(model, cfg, 777)
    graph.compile(optimizer=keras.optimizers.SGD(lr), loss=improved._loss(0.0, 2.0))
    labels = np.arange(len(images)) % models.NUM_CLASSES
    graph.fit(images, improved._targets(labels, None, 0), batch_size=len(images), epochs=1,
              shuffle=False, verbose=0)
    return [np.array(w) for w in model.get_weights()]


def test_sharpness_aware_steps_restore_the_weights_and_step_elsewhere(images: np.ndarray
                                                                       ) -> None:
    import keras

    keras.utils.set_random_seed(777)
    start = models.build("first").get_weights()
    base = improved.ImprovedConfig(input_noise=0.0)  # no noise: the same input every pass
    sam = replace(base, sam_rho=0.05)
    frozen = _one_step(sam, images, 0.0)  # learning rate 0: the perturbation is undone
    assert all(np.array_equal(a, b) for a, b in zip(frozen, start, strict=True))
    plain = _one_step(base, images, 0.5)
    sharp = _one_step(sam, images, 0.5)
    tiny = _one_step(replace(base, sam_rho=1e-6), images, 0.5)
    assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(tiny, plain, strict=True))
    assert not all(np.allclose(a, b, atol=1e-5) for a, b in zip(sharp, plain, strict=True))


def test_input_noise_and_dropout_live_in_the_training_graph_only(images: np.ndarray) -> None:
    import keras

    keras.utils.set_random_seed(777)
    model = models.build("first")
    cfg = improved.ImprovedConfig(input_noise=0.1, input_dropout=0.1)
    graph = improved._training_graph(model, cfg, 777)
    kinds = {type(layer).__name__ for layer in graph.layers}
    assert {"GaussianNoise", "Dropout"} <= kinds
    assert len(model.layers) == len(models.build("first").layers)  # shipped model unchanged
    logits = np.asarray(graph(images[:16], training=False))
    noisy = np.asarray(graph(images[:16], training=True))
    probs = model.predict(images[:16], verbose=0)
    assert np.allclose(keras.ops.convert_to_numpy(keras.ops.softmax(logits)), probs, atol=1e-5)
    assert not np.allclose(noisy, logits, atol=1e-3)  # noise and dropout when training
