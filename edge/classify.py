"""One classification: pixels in, top-k classes out, with the time the model took.

Shared by file and camera input so both print and serialise results the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from fmnist_edge.edge.model import EdgeModel


@dataclass(frozen=True)
class Prediction:
    """The top-k classes of one image and how long inference took."""

    name: str
    top: tuple[tuple[str, float], ...]
    latency_ms: float

    @property
    def label(self) -> str:
        """The most likely class."""
        return self.top[0][0]

    def line(self) -> str:
        """``path: Class (0.93)``, with further classes after commas for --top-k."""
        ranked = ", ".join(f"{c} ({p:.2f})" for c, p in self.top)
        return f"{self.name}: {ranked}"

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` record (one JSON line per image)."""
        return {
            "path": self.name,
            "top_k": [{"class": c, "probability": round(p, 6)} for c, p in self.top],
            "latency_ms": round(self.latency_ms, 4),
        }


def top_k(probs: np.ndarray, class_names: tuple[str, ...], k: int) -> tuple[tuple[str, float], ...]:
    """The ``k`` most likely classes of one probability vector, best first."""
    order = np.argsort(-probs, kind="stable")[:k]
    return tuple((class_names[i], float(probs[i])) for i in order)


def classify(model: EdgeModel, pixels: np.ndarray, name: str, k: int = 1) -> Prediction:
    """Run one 28x28 uint8 image through the model; time only the model call."""
    x = model.input_tensor(pixels[None])
    start = time.perf_counter()
    probs = model.predict_tensor(x)[0]
    latency = (time.perf_counter() - start) * 1000.0
    return Prediction(name=name, top=top_k(probs, model.class_names, k), latency_ms=latency)
