"""The teacher: a small CNN trained in the same run, used only to make soft targets.

Two blocks of two 3x3 convolutions (batch norm, ReLU) and a max-pool, then one dropout-
wrapped hidden layer: the classic "VGG-lite" that reaches 0.92-0.93 on Fashion-MNIST in about
a dozen epochs on shifted and mirrored images, several points above what an MLP of 50-110k
parameters reaches alone.  Its softened outputs tell a student which wrong classes are
*nearly* right (a shirt that looks like a T-shirt), which one-hot labels cannot; the
stronger the teacher, the more a student can copy (a 0.906 teacher left the students at
0.890 / 0.897).  It never leaves the training process: nothing of it is saved or shipped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fmnist_edge.train import models

#: Batch size for computing soft targets (inference only: bigger is faster).
PREDICT_BATCH = 1024
#: Batch norm's running statistics forget at 10 % a step (Keras: 1 %), so they are the
#: trained network's own even after a short run (a quick test's teacher has 17 steps).
BN_MOMENTUM = 0.9


@dataclass(frozen=True)
class TeacherConfig:
    """The teacher's size and training; the defaults are the recipe's."""

    widths: tuple[int, ...] = (32, 64)  # channels of each conv block (two convs per block)
    convs_per_block: int = 2
    hidden: int = 256
    dropout: float = 0.3
    epochs: int = 12
    learning_rate: float = 2e-3
    weight_decay: float = 0.05  # AdamW, decoupled (times the learning rate)
    label_smoothing: float = 0.1


def build(cfg: TeacherConfig) -> Any:
    """[conv-BN-ReLU x n → pool] per width → dropout → dense → dropout → 10 logits."""
    import keras

    layers = keras.layers
    stack: list[Any] = [keras.Input(shape=models.INPUT_SHAPE),
                        layers.Reshape((*models.INPUT_SHAPE, 1))]
    for width in cfg.widths:
        for _ in range(cfg.convs_per_block):
            stack += [layers.Conv2D(width, 3, padding="same", use_bias=False),
                      layers.BatchNormalization(momentum=BN_MOMENTUM), layers.ReLU()]
        stack.append(layers.MaxPooling2D())
    stack += [layers.Flatten(), layers.Dropout(cfg.dropout, seed=1),
              layers.Dense(cfg.hidden, activation="relu"), layers.Dropout(cfg.dropout, seed=2),
              layers.Dense(models.NUM_CLASSES)]
    return keras.Sequential(stack, name="teacher")


def fit(epoch_data: Callable[[int], tuple[np.ndarray, np.ndarray]], x_val: np.ndarray,
        y_val: np.ndarray, cfg: TeacherConfig, batch_size: int,
        log: Callable[[str], None] = lambda _msg: None) -> tuple[Any, float]:
    """Train the teacher on ``epoch_data(e)`` (images, integer labels) for each epoch.

    Returns the model and its final validation accuracy (only the final one: on one core,
    reading the validation split costs a quarter of an epoch).  AdamW with a one-epoch warm-up
    and cosine decay: with a dozen epochs, the decay is what lets the last ones settle, and
    the warm-up keeps batch norm's first noisy statistics from derailing the start.
    """
    import keras

    model = build(cfg)
    steps = -(-len(epoch_data(0)[0]) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        cfg.learning_rate / 10, max(1, cfg.epochs - 1) * steps, warmup_target=cfg.learning_rate,
        warmup_steps=steps)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay),
                  loss=keras.losses.CategoricalCrossentropy(
                      from_logits=True, label_smoothing=cfg.label_smoothing))
    for epoch in range(cfg.epochs):
        x, y = epoch_data(epoch)
        h = model.fit(x, np.eye(models.NUM_CLASSES, dtype=np.float32)[y],
                      batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        log(f"teacher epoch {epoch + 1}/{cfg.epochs}: loss {h.history['loss'][-1]:.4f}")
    return model, float((logits(model, x_val).argmax(axis=1) == y_val).mean())


def logits(model: Any, x: np.ndarray) -> np.ndarray:
    """The teacher's logits for ``x`` (N, 28, 28) as float32."""
    return np.asarray(model.predict(x, batch_size=PREDICT_BATCH, verbose=0), dtype=np.float32)


def softened(teacher_logits: np.ndarray, temperature: float) -> np.ndarray:
    """The teacher's probabilities at ``temperature`` (softmax of logits / T), float32: the
    soft targets both distilling recipes train on."""
    z = teacher_logits / temperature
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def progress(verbose: int) -> Callable[[str], None]:
    """Where the teacher's per-epoch lines go: stderr, or nowhere under ``--quiet``."""
    if verbose:
        return lambda message: print(message, file=sys.stderr, flush=True)
    return lambda _message: None
