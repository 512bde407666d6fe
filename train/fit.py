"""Fit the tutorial's models and measure them on the official test set.

Mirrors the tutorial: pixels / 255, one-hot labels, a 70/30 train/validation split of the
60,000 training images (seed 777, identical to scikit-learn's ``train_test_split``), Adam,
30 epochs, batch 128, then ``evaluate`` on the 10,000 test images.  Early stopping with
best-weights restore is an opt-in improvement.  With one seed on one machine, two runs give
identical weights (TensorFlow op determinism).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from fmnist_edge.edge import dataset, metrics, preprocess
from fmnist_edge.train import models


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; stored beside the results."""

    models: tuple[str, ...] = tuple(models.ARCHITECTURES)
    recipe: str = "tutorial"
    epochs: int = 30
    batch_size: int = 128
    seed: int = dataset.SEED
    val_fraction: float = 0.3
    subset: int | None = None
    early_stopping: bool = False
    patience: int = 5
    #: Photo renders of training-split images to add (recipes that use them; None: theirs).
    renders: int | None = None


@dataclass
class Data:
    """The three splits, scaled to [0, 1] with one-hot labels where Keras needs them."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    sample_images: np.ndarray = field(repr=False)
    sample_labels: np.ndarray = field(repr=False)
    #: Positions of the train and validation images in the official training split.
    train_index: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.int64))
    val_index: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.int64))
    #: Validation images as a camera sees them (recipes that render; else empty).
    x_val_photo: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 28, 28)))
    y_val_photo: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.int64))


def load_data(cfg: TrainConfig, progress: dataset.Progress | None = None) -> Data:
    """Load Fashion-MNIST and split it the tutorial's way."""
    train = dataset.load_split("train", progress=progress)
    test = dataset.load_split("test", progress=progress)
    images, labels = train.images, train.labels
    if cfg.subset is not None:
        images, labels = images[: cfg.subset], labels[: cfg.subset]
    tr, va = dataset.validation_split(len(images), cfg.val_fraction, cfg.seed)
    return Data(
        x_train=scale(images[tr]), y_train=one_hot(labels[tr]),
        x_val=scale(images[va]), y_val=one_hot(labels[va]),
        x_test=scale(test.images), y_test=test.labels.astype(np.int64),
        sample_images=train.images[:9], sample_labels=train.labels[:9],
        train_index=tr, val_index=va,
    )


def scale(images: np.ndarray) -> np.ndarray:
    """Pixels → network input through the device's own code (edge.preprocess)."""
    return preprocess.pixels_to_float(images, models.PREPROCESSING)


def one_hot(labels: np.ndarray) -> np.ndarray:
    """Integer labels → the one-hot float rows categorical cross-entropy wants."""
    return np.eye(models.NUM_CLASSES, dtype=np.float32)[labels]


def make_deterministic(seed: int) -> None:
    """Seed Python, numpy and TensorFlow and switch on deterministic kernels."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def train_one(name: str, data: Data, cfg: TrainConfig, verbose: int = 2, *,
              optimizer: Any = "adam", callbacks: list[Any] | None = None,
              targets: Callable[[], np.ndarray] | None = None) -> tuple[Any, dict[str, Any]]:
    """Build, fit and evaluate one model; return it with its metrics.

    The one training skeleton every recipe shares, so seeding, timing and measuring cannot
    drift apart between them.  A recipe changes only what it must: the ``optimizer``, the
    ``callbacks`` (default: the config's early stopping) and the ``targets`` (default: the
    one-hot labels).  ``targets`` is called after the model is built, as it may train a
    teacher; the seed is then set again, so the batches are the same whether that teacher
    ran now or earlier (it is trained once for both models).
    """
    make_deterministic(cfg.seed)
    model = models.build(name, optimizer)
    if callbacks is None:
        callbacks = early_stopping(cfg)
    y_train = data.y_train
    if targets is not None:
        y_train = targets()
        make_deterministic(cfg.seed)
    start = time.perf_counter()
    hist = model.fit(data.x_train, y_train, epochs=cfg.epochs, batch_size=cfg.batch_size,
                     validation_data=(data.x_val, data.y_val), callbacks=callbacks,
                     shuffle=True, verbose=verbose)
    seconds = time.perf_counter() - start
    return model, evaluate(model, name, data, hist.history, seconds)


def early_stopping(cfg: TrainConfig) -> list[Any]:
    """The opt-in ``--early-stopping``: stop on validation loss, keep the best weights."""
    import keras

    if not cfg.early_stopping:
        return []
    return [keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience,
                                          restore_best_weights=True)]


def evaluate(model: Any, name: str, data: Data, history: dict[str, list[float]],
             seconds: float) -> dict[str, Any]:
    """Test-set figures of a fitted model, as plain JSON-able values."""
    probs = model.predict(data.x_test, batch_size=1024, verbose=0)
    pred = probs.argmax(axis=1)
    y = data.y_test
    eps = 1e-7
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], eps, 1.0))))
    confusion = metrics.confusion_matrix(y, pred, models.NUM_CLASSES)
    per_class = metrics.per_class_accuracy(confusion)
    val_acc = history["val_accuracy"]
    best = int(np.argmin(history["val_loss"]))
    return {
        "params": int(model.count_params()),
        "test_accuracy": metrics.accuracy(pred, y),
        "test_loss": loss,
        "val_accuracy_final": float(val_acc[-1]),
        "val_accuracy_max": float(max(val_acc)),
        "best_epoch_by_val_loss": best + 1,
        "epochs_run": len(val_acc),
        "train_seconds": round(seconds, 2),
        "per_class_accuracy": {
            n: float(a) for n, a in zip(dataset.CLASS_NAMES, per_class, strict=True)
        },
        "confusion_matrix": confusion.tolist(),
        "history": {k: [float(v) for v in vals] for k, vals in history.items()},
    }


def config_dict(cfg: TrainConfig) -> dict[str, Any]:
    """The config as JSON-able values."""
    out = asdict(cfg)
    out["models"] = list(cfg.models)
    return out
