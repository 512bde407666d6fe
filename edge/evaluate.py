"""Evaluate a model on a folder of labelled photos, on the device: the figures that say
whether ``edge-classify`` is right about what a camera sees, and why not.

:func:`run` classifies every photo exactly as ``edge-classify`` does (same decoding, same
photo pipeline, same calibrated answer), timing each stage; :func:`summarise` turns the
results into accuracy, per-class accuracy, a confusion matrix, mean confidences,
calibration error, "unsure" rates and per-stage times.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fmnist_edge.edge import photo
from fmnist_edge.edge.classify import NO_GARMENT, Prediction, classify, threshold_for
from fmnist_edge.edge.errors import UserError
from fmnist_edge.edge.labelled import NONE_LABEL, LabelledPhoto
from fmnist_edge.edge.metrics import confusion_matrix, expected_calibration_error
from fmnist_edge.edge.model import EdgeModel

STAGES = ("decode", "preprocess", "inference")


@dataclass(frozen=True)
class PhotoResult:
    """One photo's answer, the 28x28 views the model saw ((V, 28, 28): the answer combines
    them, :func:`photo.to_views`) and the time of each stage (ms).

    ``error`` is set (and ``prediction`` None) when the photo could not be decoded.
    """

    photo: LabelledPhoto
    prediction: Prediction | None
    pixels: np.ndarray | None
    times: tuple[float, float, float]
    error: str = ""
    #: The model's class names, to name the label.
    names: tuple[str, ...] = ()

    @property
    def pred(self) -> Prediction:
        """The prediction of a decoded photo (summaries only look at those)."""
        if self.prediction is None:
            raise ValueError(f"{self.photo.name}: not decoded ({self.error})")
        return self.prediction

    @property
    def correct(self) -> bool:
        """A labelled photo whose most likely class is its label (no garment: wrong)."""
        pred = self.prediction
        return (pred is not None and pred.status != "none" and self.photo.label >= 0
                and pred.top[0][0] == self.class_name)

    @property
    def class_name(self) -> str:
        """The label's class name ("" for none of the ten)."""
        return self.names[self.photo.label] if self.photo.label >= 0 else ""


def run(model: EdgeModel, photos: list[LabelledPhoto], method: str,
        min_confidence: float | None = None,
        progress: Callable[[int, int], None] | None = None) -> list[PhotoResult]:
    """Classify every photo as edge-classify would, timing decode, preprocess, inference."""
    k = min(3, len(model.class_names))
    results = []
    for i, item in enumerate(photos):
        results.append(_one(model, item, method, k, min_confidence))
        if progress is not None:
            progress(i + 1, len(photos))
    return results


def _one(model: EdgeModel, item: LabelledPhoto, method: str, k: int,
         min_confidence: float | None) -> PhotoResult:
    """Decode, preprocess and classify one photo, timing each stage."""
    start = time.perf_counter()
    try:
        img = photo.open_image(item.path, item.name)
    except UserError as exc:
        return PhotoResult(item, None, None, (0.0, 0.0, 0.0), str(exc), model.class_names)
    decoded = time.perf_counter()
    views = photo.to_views(img, method)
    prepared = time.perf_counter()
    pred = classify(model, views, item.name, k, min_confidence)  # times the model call
    times = ((decoded - start) * 1000, (prepared - decoded) * 1000, pred.latency_ms)
    return PhotoResult(item, pred, views, times, "", model.class_names)


def summarise(results: list[PhotoResult], model: EdgeModel, method: str,
              min_confidence: float | None = None) -> dict[str, Any]:
    """Every figure ``edge-evaluate`` reports, as one JSON-ready dict."""
    names = model.class_names
    done = [r for r in results if r.prediction is not None]
    labelled = [r for r in done if r.photo.label >= 0]
    others = [r for r in done if r.photo.label == NONE_LABEL]
    right = [r for r in labelled if r.correct]
    wrong = [r for r in labelled if not r.correct and r.pred.status != "none"]
    present = sorted({r.photo.label for r in labelled})
    threshold = threshold_for(model, min_confidence)
    conf = np.array([r.pred.confidence for r in labelled])
    return {
        "model": model.manifest.model,
        "artifact": model.artifact.file,
        "backend": model.session.backend,
        "pipeline": method,
        "pipeline_version": photo.pipeline_version(method),
        "temperature": model.manifest.calibration.temperature,
        "min_confidence": threshold,
        "photos": len(results),
        "labelled": len(labelled),
        "none_of_the_ten": len(others),
        "failed": len(results) - len(done),
        "accuracy": _rate(len(right), len(labelled)),
        "correct": len(right),
        "answered_accuracy": _rate(sum(r.pred.status == "ok" for r in right),
                                   sum(r.pred.status == "ok" for r in labelled)),
        "per_class": {names[c]: {"photos": sum(r.photo.label == c for r in labelled),
                                 "accuracy": _rate(sum(r.photo.label == c for r in right),
                                                   sum(r.photo.label == c for r in labelled))}
                      for c in present},
        "confusion": _confusion(labelled, present, names),
        "mean_confidence": {
            "right": _mean([r.pred.confidence for r in right]),
            "wrong": _mean([r.pred.confidence for r in wrong]),
            "none_of_the_ten": _mean([r.pred.confidence for r in others
                                      if r.pred.status != "none"]),
        },
        "ece": round(expected_calibration_error(conf, np.array([r.correct for r in labelled])), 4),
        "unsure": {
            "right_unsure": _rate(sum(r.pred.status == "unsure" for r in right),
                                  len(right)),
            "none_of_the_ten_unsure": _rate(sum(r.pred.status == "unsure"
                                                for r in others), len(others)),
            "none_of_the_ten_unsure_or_no_garment": _rate(
                sum(r.pred.status != "ok" for r in others), len(others)),
            "labelled_no_garment": sum(r.pred.status == "none" for r in labelled),
            "none_of_the_ten_no_garment": sum(r.pred.status == "none" for r in others),
        },
        "time_ms": _times(done),
    }


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def _confusion(labelled: list[PhotoResult], present: list[int],
               names: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """True class (present ones) → answered class (or "no garment found") → count.

    Counted by :func:`metrics.confusion_matrix`, as everywhere else, with "no garment found"
    as one more answer column."""
    columns = (*names, NO_GARMENT)
    truth = np.array([r.photo.label for r in labelled], np.int64)
    said = np.array([columns.index(r.pred.label if r.pred.status != "none" else NO_GARMENT)
                     for r in labelled], np.int64)
    matrix = confusion_matrix(truth, said, len(columns))
    return {names[c]: {col: int(n) for col, n in zip(columns, matrix[c], strict=True)}
            for c in present}


def _times(done: list[PhotoResult]) -> dict[str, dict[str, float | None]]:
    """p50 and p99 of each stage and of their sum, in ms (inference only where it ran)."""
    out: dict[str, dict[str, float | None]] = {}
    table = np.array([r.times for r in done], np.float64).reshape(-1, 3)
    ran = np.array([r.prediction is not None and r.prediction.status != "none" for r in done])
    columns = {**{s: table[:, i] for i, s in enumerate(STAGES)}, "total": table.sum(axis=1)}
    columns["inference"] = table[ran, 2] if ran.any() else table[:0, 2]
    for stage, values in columns.items():
        out[stage] = {"p50": _pct(values, 50), "p99": _pct(values, 99)}
    return out


def _pct(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values.size else None
