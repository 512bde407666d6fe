"""Training recipes: how the same two architectures are fitted, by name.

``fmnist-train --recipe NAME`` looks the recipe up here.  A recipe decides the data a model
sees (:attr:`Recipe.prepare`), how one model is fitted and measured (:attr:`Recipe.train_one`)
and its own defaults; it never changes the architecture or the parameter count
(:mod:`fmnist_edge.train.models`), so every recipe's models export and run the same way.
The recipe's name goes into ``metrics.json`` and, through the exporter, into each bundle's
manifest.

To add one: write its module (prepare/train_one), then add a line to :data:`RECIPES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fmnist_edge.train import fit
from fmnist_edge.train.improved import ImprovedConfig

Prepare = Callable[[fit.Data, fit.TrainConfig], fit.Data]
TrainOne = Callable[[str, fit.Data, fit.TrainConfig, int], tuple[Any, dict[str, Any]]]


def _as_loaded(data: fit.Data, cfg: fit.TrainConfig) -> fit.Data:
    """The tutorial trains on the dataset as it is."""
    return data


def _photo_prepare(data: fit.Data, cfg: fit.TrainConfig) -> fit.Data:
    from fmnist_edge.train import photo_recipe  # renders: only when this recipe runs

    return photo_recipe.prepare(data, cfg)


def _photo_train_one(name: str, data: fit.Data, cfg: fit.TrainConfig, verbose: int
                     ) -> tuple[Any, dict[str, Any]]:
    from fmnist_edge.train import photo_recipe

    return photo_recipe.train_one(name, data, cfg, verbose)


def _improved_train_one(name: str, data: fit.Data, cfg: fit.TrainConfig, verbose: int
                        ) -> tuple[Any, dict[str, Any]]:
    from fmnist_edge.train import improved

    return improved.train_one(name, data, cfg, verbose)


@dataclass(frozen=True)
class Recipe:
    """One way of training the tutorial's models."""

    name: str
    summary: str
    epochs: int
    prepare: Prepare
    train_one: TrainOne
    #: Photo renders of training images a recipe adds by default (0: none).
    renders: int = 0
    #: Whether ``--early-stopping`` applies (the other recipes always run every epoch and
    #: keep their best validation epoch's weights).
    early_stopping: bool = False


RECIPES: dict[str, Recipe] = {
    "tutorial": Recipe(
        name="tutorial", epochs=30, prepare=_as_loaded, train_one=fit.train_one,
        early_stopping=True,
        summary="the Keras tutorial: 30 epochs, batch 128, Adam, the dataset as it is"),
    "photo": Recipe(
        name="photo", epochs=40, prepare=_photo_prepare, train_one=_photo_train_one,
        renders=20_000,
        summary="tutorial data plus photo-like renders through the device pipeline; "
                "best-validation weights; temperature and min_confidence fitted on validation"),
    "improved": Recipe(
        name="improved", epochs=ImprovedConfig.epochs, prepare=_as_loaded,
        train_one=_improved_train_one,
        summary="distilled from a small CNN teacher trained in the same run (never shipped), "
                "AdamW with a cosine schedule, best-validation weights"),
}

#: The recipe ``fmnist-train`` uses unless told otherwise (the tutorial, reproduced).
DEFAULT = fit.TrainConfig.recipe


def get(name: str) -> Recipe:
    """The recipe called ``name``; a clear error listing the others if there is none."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose from {', '.join(RECIPES)}")
    return RECIPES[name]
