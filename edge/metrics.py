"""Classification figures shared by training, export verification and device benchmarks.

One implementation, so "accuracy" and "confusion" mean the same thing at every stage.
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Counts of true class (rows) against predicted class (columns)."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels.astype(np.int64), predicted.astype(np.int64)), 1)
    return matrix


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Recall of each class (a class with no examples counts as 0, not NaN)."""
    return confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)


def accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of predicted classes that equal the true labels."""
    return _fraction_equal(predicted, labels)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of images two models give the same top-1 class (e.g. artifact vs Keras)."""
    return _fraction_equal(a, b)


def _fraction_equal(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a.astype(np.int64) == b.astype(np.int64)))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray,
                               bins: int = 10) -> float:
    """ECE: how far stated confidence is from accuracy, averaged over equal-width bins.

    ``sum_b |accuracy_b - mean confidence_b| * n_b / n`` over ``bins`` bins of 0..1 (the usual
    definition, Guo et al. 2017).  0 for a perfectly calibrated model; 0 for no samples.
    """
    confidence = np.asarray(confidence, np.float64)
    correct = np.asarray(correct, bool)
    if confidence.size == 0:
        return 0.0
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            total += abs(correct[in_bin].mean() - confidence[in_bin].mean()) * in_bin.sum()
    return float(total / confidence.size)
