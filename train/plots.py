"""The tutorial's figures: a 3x3 sample grid, loss and accuracy curves, confusion matrices.

Each figure is written atomically as a PNG, drawn with matplotlib's headless Agg backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from fmnist_edge.edge import atomic


def _save(fig: Any, target: Path) -> None:
    try:
        fig.tight_layout()
        with atomic.atomic_path(target, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    finally:
        plt.close(fig)


def sample_grid(images: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
                target: Path) -> None:
    """3x3 training images with their class names, as the tutorial's first figure."""
    fig, axes = plt.subplots(3, 3, figsize=(6, 6))
    for ax, img, lab in zip(axes.flat, images, labels, strict=False):
        ax.imshow(img, cmap="gray")
        ax.set_title(class_names[int(lab)], fontsize=10)
        ax.axis("off")
    fig.suptitle("Fashion-MNIST training samples")
    _save(fig, target)


def curves(histories: dict[str, dict[str, list[float]]], target: Path) -> None:
    """Loss and accuracy per epoch, train vs validation, one row per model."""
    names = list(histories)
    fig, axes = plt.subplots(len(names), 2, figsize=(11, 4 * len(names)), squeeze=False)
    for row, name in zip(axes, names, strict=False):
        hist = histories[name]
        epochs = np.arange(1, len(hist["loss"]) + 1)
        for ax, metric in zip(row, ("loss", "accuracy"), strict=False):
            ax.plot(epochs, hist[metric], "b-", label=f"train {metric}")
            ax.plot(epochs, hist[f"val_{metric}"], "r--", label=f"val {metric}")
            ax.set_title(f"{name} model: {metric}")
            ax.set_xlabel("epoch")
            ax.set_ylabel(metric)
            ax.grid(alpha=0.3)
            ax.legend()
    _save(fig, target)


def confusion_figure(matrix: np.ndarray | Sequence[Sequence[int]], class_names: Sequence[str],
                     title: str) -> Any:
    """Counts of true class (rows) against predicted class (columns), as a figure.

    The one confusion plot: training draws it per model, ``edge-bench`` for its best
    artifact, so the two can be compared at a glance.
    """
    counts = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(8, 7))
    ax.imshow(counts, cmap="Blues")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    limit = counts.max() / 2
    for (i, j), v in np.ndenumerate(counts):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                color="white" if v > limit else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return fig


def confusion(matrix: np.ndarray, class_names: Sequence[str], title: str, target: Path) -> None:
    """The confusion figure, written to ``target``."""
    _save(confusion_figure(matrix, class_names, title), target)
