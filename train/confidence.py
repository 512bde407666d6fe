"""How far to trust a top-1 score: temperature scaling, calibration error, a threshold.

The tutorial's MLPs are over-confident (0.8 mean confidence on photos they get wrong), so a
device cannot tell a guess from an answer.  Temperature scaling (Guo et al., 2017) divides the
log-probabilities by one number ``T`` fitted on held-out data; it never changes the top-1
class, only how sure the model claims to be.  The expected calibration error (ECE) says how
far claimed confidence is from accuracy, before and after.  The suggested ``min_confidence``
is the calibrated top-1 score below which at most :data:`MAX_UNSURE_CORRECT` of the correct
answers on rendered validation photos fall: the device may answer "unsure" below it.

Everything here is fitted on the validation split (never the test set, never real photos).
"""

from __future__ import annotations

import math

import numpy as np

from fmnist_edge.edge import metrics, preprocess

#: At most this share of correct answers may fall under the suggested threshold.
MAX_UNSURE_CORRECT = 0.10
#: Temperatures searched (log-spaced); the fit then refines around the best.
_T_RANGE = (0.05, 20.0)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax probabilities at temperature ``T``, exactly as the device applies it
    (:func:`fmnist_edge.edge.preprocess.calibrate`: ``p ** (1/T)`` renormalised)."""
    return preprocess.calibrate(np.asarray(probs, np.float32), float(temperature))


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels."""
    picked = np.asarray(probs, np.float64)[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising validation NLL: a log grid, then a finer one around it."""
    lo, hi = np.log(_T_RANGE[0]), np.log(_T_RANGE[1])
    best = 1.0
    for _ in range(3):
        grid = np.exp(np.linspace(lo, hi, 41))
        losses = [nll(apply_temperature(probs, t), labels) for t in grid]
        i = int(np.argmin(losses))
        best = float(grid[i])
        lo, hi = np.log(grid[max(i - 1, 0)]), np.log(grid[min(i + 1, len(grid) - 1)])
    return round(best, 4)


def ece(probs: np.ndarray, labels: np.ndarray) -> float:
    """Expected calibration error of top-1 answers, as ``edge-evaluate`` computes it."""
    probs = np.asarray(probs)
    return metrics.expected_calibration_error(probs.max(axis=1), probs.argmax(axis=1) == labels)


def suggest_threshold(probs: np.ndarray, labels: np.ndarray,
                      max_unsure: float = MAX_UNSURE_CORRECT) -> float:
    """The highest threshold leaving at most ``max_unsure`` of correct answers below it."""
    conf = np.asarray(probs).max(axis=1)
    correct = np.sort(conf[np.asarray(probs).argmax(axis=1) == labels])
    if not len(correct):
        return 0.0
    k = int(np.floor(max_unsure * len(correct)))  # exactly k correct answers lie below
    return math.floor(float(correct[k]) * 1000) / 1000  # rounded down: never more than k


def calibrate(val_probs: np.ndarray, val_labels: np.ndarray, photo_probs: np.ndarray,
              photo_labels: np.ndarray) -> dict[str, float]:
    """Temperature on all validation images, threshold on rendered ones; ECE both ways."""
    temperature = fit_temperature(val_probs, val_labels)
    calibrated = apply_temperature(photo_probs, temperature)
    threshold = suggest_threshold(calibrated, photo_labels)
    top1 = calibrated.max(axis=1)
    correct = calibrated.argmax(axis=1) == photo_labels
    return {
        "temperature": temperature,
        "min_confidence": threshold,
        "ece_val_before": round(ece(val_probs, val_labels), 4),
        "ece_val_after": round(ece(apply_temperature(val_probs, temperature), val_labels), 4),
        "ece_photo_val_before": round(ece(photo_probs, photo_labels), 4),
        "ece_photo_val_after": round(ece(calibrated, photo_labels), 4),
        "unsure_correct_share": round(float(np.mean(top1[correct] < threshold)), 4),
    }
