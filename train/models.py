"""The two MLPs of the tutorial, layer for layer.

"first":  Flatten(28x28) → Dense 64 relu → Dense 32 relu → Dense 10 softmax (52,650 params)
"second": Flatten(28x28) → Dense 128 → 64 → 32 relu → Dense 10 softmax (111,146 params)
"""

from __future__ import annotations

from typing import Any

#: Hidden layer widths of each model, by name; the output layer is always 10-way softmax.
ARCHITECTURES: dict[str, tuple[int, ...]] = {
    "first": (64, 32),
    "second": (128, 64, 32),
}

#: Parameter counts the tutorial prints in ``model.summary()``.
EXPECTED_PARAMS: dict[str, int] = {"first": 52_650, "second": 111_146}

INPUT_SHAPE = (28, 28)
NUM_CLASSES = 10


def build(name: str) -> Any:
    """Build and compile one model as the tutorial does (Adam, categorical cross-entropy)."""
    import keras  # here, so the CLI's option checks and --help stay fast

    if name not in ARCHITECTURES:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(ARCHITECTURES)}")
    layers: list[Any] = [keras.Input(shape=INPUT_SHAPE, name="pixels"), keras.layers.Flatten()]
    layers += [keras.layers.Dense(w, activation="relu") for w in ARCHITECTURES[name]]
    layers.append(keras.layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities"))
    model = keras.Sequential(layers, name=name)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model
