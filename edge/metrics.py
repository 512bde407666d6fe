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


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of positions where two label vectors agree (accuracy, when b is the truth)."""
    return float(np.mean(a.astype(np.int64) == b.astype(np.int64)))
