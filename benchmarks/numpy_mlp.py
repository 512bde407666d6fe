"""The tutorial's MLPs as a plain numpy forward pass: the speed floor for the edge runner.

An MLP this small is a few matrix products; ``relu(x @ W + b)`` per hidden layer and a
softmax at the end is the least work any runtime can do.  The edge runner's target is to
stay within 2x of this, while also handling quantised files, other runtimes and manifests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fmnist_edge.edge.npz import softmax
from fmnist_edge.export.npz import dense_layers


@dataclass(frozen=True)
class NumpyMLP:
    """Dense layers (kernel, bias) with ReLU between them and softmax at the end."""

    layers: tuple[tuple[np.ndarray, np.ndarray], ...]

    @classmethod
    def from_keras(cls, model: Any) -> NumpyMLP:
        """The Dense layers' weights, read by the npz exporter's own reader.

        One reader, so the floor multiplies exactly the matrices the device's ``.npz`` holds
        and refuses what that exporter refuses (anything but Flatten/Dense).
        """
        return cls(tuple((np.ascontiguousarray(kernel), np.ascontiguousarray(bias))
                         for kernel, bias, _ in dense_layers(model)))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(N, 28, 28) or (N, 784) float32 in [0, 1] → (N, 10) float32 probabilities."""
        h = x.reshape(len(x), -1)
        for kernel, bias in self.layers[:-1]:
            h = np.maximum(h @ kernel + bias, 0.0)
        kernel, bias = self.layers[-1]
        return softmax(h @ kernel + bias)
