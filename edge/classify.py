"""One classification: pixels in, an answer out, with the time the model took.

Shared by file and camera input (and ``edge-evaluate``) so all print and serialise results
the same way.  Three kinds of answer:

- a class: the most likely one is likely enough;
- ``"unsure"``: its probability (after the manifest's temperature) is below the threshold
  (``--min-confidence``, by default the manifest's suggested one); the top-k are kept;
- ``"no garment found"``: the photo pipeline found nothing to classify (blank pixels), so
  the model is not asked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from fmnist_edge.edge import photo, preprocess
from fmnist_edge.edge.model import EdgeModel

UNSURE = "unsure"
NO_GARMENT = "no garment found"
#: Decimals a probability is printed with, unless more are needed to show on which side of
#: the "unsure" threshold it lies (:func:`shown_probability`).
DECIMALS = 2


@dataclass(frozen=True)
class Prediction:
    """The top-k classes of one image, the answer given, and how long inference took."""

    name: str
    top: tuple[tuple[str, float], ...]
    latency_ms: float
    #: "ok" (a class), "unsure" (below the threshold) or "none" (no garment found).
    status: str = "ok"
    #: The "unsure" threshold the answer was given under (None: there was none).
    threshold: float | None = None

    @property
    def label(self) -> str:
        """The most likely class ("" when no garment was found)."""
        return self.top[0][0] if self.top else ""

    @property
    def confidence(self) -> float:
        """Probability of the most likely class (0 when no garment was found)."""
        return self.top[0][1] if self.top else 0.0

    @property
    def answer(self) -> str:
        """What the user is told: the class, "unsure" or "no garment found"."""
        return {"ok": self.label, "unsure": UNSURE, "none": NO_GARMENT}[self.status]

    def shown(self, probability: float) -> str:
        """``probability`` as text that sits on the same side of this answer's threshold
        (:func:`shown_probability`)."""
        return shown_probability(probability, self.threshold)

    def line(self) -> str:
        """``path: Class (0.93)``; ``path: unsure: Shirt (0.41)``; ``path: no garment found``."""
        if self.status == "none":
            return f"{self.name}: {NO_GARMENT}"
        ranked = ", ".join(f"{c} ({self.shown(p)})" for c, p in self.top)
        if self.status == "unsure":
            return f"{self.name}: {UNSURE}: {ranked}"
        return f"{self.name}: {ranked}"

    def to_json(self, pipeline: str | None = None) -> dict[str, Any]:
        """The ``--json`` record (one JSON line per image); ``pipeline`` names what made the
        model's input (:func:`photo.pipeline_version`: it differs between machines)."""
        record = {
            "path": self.name,
            "answer": self.answer,
            "status": self.status,
            "top_k": [{"class": c, "probability": round(p, 6)} for c, p in self.top],
            "latency_ms": round(self.latency_ms, 4),
        }
        return record if pipeline is None else {**record, "pipeline": pipeline}


def shown_probability(probability: float, threshold: float | None) -> str:
    """``probability`` with :data:`DECIMALS` decimals, or as many more as it takes for the
    printed number to fall on the same side of ``threshold`` as the probability itself.

    Rounded to two decimals, 0.536 under a threshold of 0.54 would print "unsure (Shirt
    0.54)" while 0.541 printed "Shirt 0.54": one number, opposite verdicts.  So a number
    below the threshold prints below it (0.536) and one at or above prints at or above it
    (0.544 under the second bundle's 0.544, not 0.54); elsewhere two decimals stay.
    """
    if threshold is None:
        return f"{probability:.{DECIMALS}f}"
    below = probability < threshold
    for digits in range(DECIMALS, 18):
        text = f"{probability:.{digits}f}"
        if (float(text) < threshold) == below:
            return text
    return repr(probability)  # reads back exactly, so it is on the right side


def shown_threshold(threshold: float) -> str:
    """The threshold as given, shortest exact text (0.544, not 0.54): numbers printed by
    :func:`shown_probability` beside it then compare as the verdicts do."""
    return repr(float(threshold))


def top_k(probs: np.ndarray, class_names: tuple[str, ...], k: int) -> tuple[tuple[str, float], ...]:
    """The ``k`` most likely classes of one probability vector, best first."""
    order = np.argsort(-probs, kind="stable")[:k]
    return tuple((class_names[i], float(probs[i])) for i in order)


def probabilities(model: EdgeModel, pixels: np.ndarray) -> tuple[np.ndarray, float]:
    """Calibrated class probabilities of one picture and the model's time in ms.

    ``pixels`` is one 28x28 image or a photo's views, (V, 28, 28) (:func:`photo.to_views`):
    the model reads every view in one call and their answers are combined.
    """
    views = pixels[None] if pixels.ndim == 2 else pixels
    x = model.input_tensor(views)
    start = time.perf_counter()
    raw = model.predict_tensor(x)
    latency = (time.perf_counter() - start) * 1000.0
    floor = preprocess.probability_floor(model.artifact.output)
    probs = preprocess.calibrate(preprocess.combine_views(raw, floor),
                                 model.manifest.calibration.temperature, floor)
    return probs, latency


def classify(model: EdgeModel, pixels: np.ndarray, name: str, k: int = 1,
             min_confidence: float | None = None) -> Prediction:
    """Answer for one 28x28 uint8 image, or a photo's views (V, 28, 28); time only the
    model call.

    ``min_confidence`` None means the manifest's suggested threshold (none if it has none).
    """
    if photo.is_blank(pixels):
        return Prediction(name=name, top=(), latency_ms=0.0, status="none")
    probs, latency = probabilities(model, pixels)
    return answer(name, probs, model, k, latency, min_confidence)


def answer(name: str, probs: np.ndarray, model: EdgeModel, k: int, latency_ms: float,
           min_confidence: float | None = None) -> Prediction:
    """The Prediction for calibrated ``probs``: a class, or "unsure" below the threshold."""
    threshold = threshold_for(model, min_confidence)
    top = top_k(probs, model.class_names, k)
    unsure = threshold is not None and top[0][1] < threshold
    return Prediction(name=name, top=top, latency_ms=latency_ms,
                      status="unsure" if unsure else "ok", threshold=threshold)


def threshold_for(model: EdgeModel, min_confidence: float | None) -> float | None:
    """The "unsure" threshold in force: the one given, else the manifest's, else none."""
    if min_confidence is not None:
        return min_confidence
    return model.manifest.calibration.min_confidence
