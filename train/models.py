"""The two MLPs of the tutorial, layer for layer.

"first":  Flatten(28x28) → Dense 64 relu → Dense 32 relu → Dense 10 softmax (52,650 params)
"second": Flatten(28x28) → Dense 128 → 64 → 32 relu → Dense 10 softmax (111,146 params)
"""

from __future__ import annotations

from typing import Any

from fmnist_edge.edge.dataset import IMAGE_SHAPE
from fmnist_edge.edge.manifest import Preprocessing

#: Hidden layer widths of each model, by name; the output layer is always 10-way softmax.
#: Its keys are the one list of model names every command and default uses.
ARCHITECTURES: dict[str, tuple[int, ...]] = {
    "first": (64, 32),
    "second": (128, 64, 32),
}

#: Parameter counts the tutorial prints in ``model.summary()``.
EXPECTED_PARAMS: dict[str, int] = {"first": 52_650, "second": 111_146}

#: One image, (height, width): the dataset's own shape.
INPUT_SHAPE = IMAGE_SHAPE
#: What the pixels are divided by before training (and, through the manifest, on the device).
PIXEL_SCALE = 1.0 / 255.0
NUM_CLASSES = 10
#: The training preprocessing, written into every bundle's manifest by the exporter and
#: applied on the device from there: ``pixel / 255``, light garment on a dark background.
PREPROCESSING = Preprocessing(scale=PIXEL_SCALE, offset=0.0, polarity="light-on-dark",
                              size=INPUT_SHAPE)

#: Tensor names the models carry into every exported format.
INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"


def build(name: str, optimizer: Any = "adam") -> Any:
    """Build and compile one model as the tutorial does (Adam, categorical cross-entropy).

    ``optimizer``: what a recipe trains with instead of the tutorial's default Adam.
    """
    import keras  # here, so the CLI's option checks and --help stay fast

    if name not in ARCHITECTURES:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(ARCHITECTURES)}")
    layers: list[Any] = [keras.Input(shape=INPUT_SHAPE, name=INPUT_NAME), keras.layers.Flatten()]
    layers += [keras.layers.Dense(w, activation="relu") for w in ARCHITECTURES[name]]
    layers.append(keras.layers.Dense(NUM_CLASSES, activation="softmax", name=OUTPUT_NAME))
    model = keras.Sequential(layers, name=name)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    return model
