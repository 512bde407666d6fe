"""The teacher: a small CNN trained in the same run, used only to make soft targets.

Two 3x3 convolution blocks and one hidden layer (~420k parameters) reach about 0.92-0.93 on
Fashion-MNIST in a few augmented epochs, several points above what an MLP of 50-110k
parameters reaches alone.  Its softened outputs tell a student which wrong classes are
*nearly* right (a shirt that looks like a T-shirt), which one-hot labels cannot.  It never
leaves the training process: nothing of it is saved or shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fmnist_edge.train import models

#: Batch size for computing soft targets (inference only: bigger is faster).
PREDICT_BATCH = 1024


def build(dropout: float = 0.3) -> Any:
    """conv32 → pool → conv64 → pool → dense128 → 10 logits (no softmax)."""
    import keras

    layers = keras.layers
    return keras.Sequential([
        keras.Input(shape=models.INPUT_SHAPE),
        layers.Reshape((*models.INPUT_SHAPE, 1)),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Flatten(),
        layers.Dropout(dropout, seed=1),
        layers.Dense(128, activation="relu"),
        layers.Dropout(dropout, seed=2),
        layers.Dense(models.NUM_CLASSES),
    ], name="teacher")


def fit(epoch_data: Callable[[int], tuple[np.ndarray, np.ndarray]], x_val: np.ndarray,
        y_val: np.ndarray, epochs: int, batch_size: int, learning_rate: float,
        log: Callable[[str], None] = lambda _msg: None) -> tuple[Any, list[float]]:
    """Train the teacher on ``epoch_data(e)`` (images, integer labels) for each epoch.

    Returns the model and its validation accuracy per epoch.  Cosine-decayed Adam: with only
    a few epochs, the decay is what lets the last one settle.
    """
    import keras

    model = build()
    steps = epochs * -(-len(epoch_data(0)[0]) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    val_acc = []
    for epoch in range(epochs):
        x, y = epoch_data(epoch)
        model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        acc = float((logits(model, x_val).argmax(axis=1) == y_val).mean())
        val_acc.append(acc)
        log(f"teacher epoch {epoch + 1}/{epochs}: val accuracy {acc:.4f}")
    return model, val_acc


def logits(model: Any, x: np.ndarray) -> np.ndarray:
    """The teacher's logits for ``x`` (N, 28, 28) as float32."""
    return np.asarray(model.predict(x, batch_size=PREDICT_BATCH, verbose=0), dtype=np.float32)
