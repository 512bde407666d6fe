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
