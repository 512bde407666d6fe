"""``fmnist-train``: fit the tutorial's MLPs and write models, metrics and plots.

    fmnist-train                                   # both models, tutorial recipe, ./artifacts
    fmnist-train --recipe photo -o artifacts-photo # + photo renders, calibrated confidence
    fmnist-train --recipe improved -o artifacts-improved  # + CNN teacher, distillation
    fmnist-train --models first --epochs 5 --subset 12000 -o /tmp/quick
    fmnist-train --early-stopping --patience 5     # restore the best-val-loss weights
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from fmnist_edge.edge import atomic, cli_util
from fmnist_edge.edge import manifest as mf
from fmnist_edge.edge.dataset import CLASS_NAMES
from fmnist_edge.edge.hashing import sha256_of
from fmnist_edge.train import recipes, rendered
from fmnist_edge.train.fit import TrainConfig
from fmnist_edge.train.models import ARCHITECTURES

METRICS_FILE = "metrics.json"


@click.command(name="fmnist-train", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-o", "--output", "output", type=click.Path(path_type=Path),
              default=mf.DEFAULT_ARTIFACTS, show_default=True,
              help="Folder for models, metrics and plots.")
@click.option("--models", "names", default=",".join(TrainConfig.models), show_default=True,
              callback=cli_util.comma_choices(ARCHITECTURES),
              help=f"Comma-separated models to train ({', '.join(ARCHITECTURES)}).")
@click.option("-r", "--recipe", "recipe_name", type=click.Choice(list(recipes.RECIPES)),
              default=TrainConfig.recipe, show_default=True,
              help="How to train: " + "; ".join(f"{r.name}: {r.summary}"
                                                 for r in recipes.RECIPES.values()) + ".")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Epochs.  [default: the recipe's; tutorial "
                   f"{recipes.get(TrainConfig.recipe).epochs}]")
@click.option("--batch-size", type=click.IntRange(min=1), default=TrainConfig.batch_size,
              show_default=True)
@click.option("--seed", type=int, default=TrainConfig.seed, show_default=True,
              help="Seeds the 70/30 split and the weights; same seed, same weights.")
@click.option("--subset", type=click.IntRange(min=100, max=60000), default=None,
              help="Train on the first N training images only (quick runs).")
@click.option("--early-stopping/--no-early-stopping", default=TrainConfig.early_stopping,
              show_default=True,
              help="Stop when validation loss stops improving; keep the best weights.")
@click.option("--patience", type=click.IntRange(min=1), default=TrainConfig.patience,
              show_default=True)
@click.option("--renders", type=click.IntRange(min=20), default=None,
              help="Photo renders of training images to add (recipes that render).  "
                   "[default: the recipe's]")
@click.option("--quiet", is_flag=True, help="No per-epoch progress.")
def cli(output: Path, names: tuple[str, ...], recipe_name: str, epochs: int | None,
        batch_size: int, seed: int, subset: int | None, early_stopping: bool, patience: int,
        renders: int | None, quiet: bool) -> None:
    """Train the tutorial's Fashion-MNIST MLPs and evaluate them on the official test set."""
    recipe = recipes.get(recipe_name)
    if early_stopping and not recipe.early_stopping:
        raise click.UsageError(f"--early-stopping is for the tutorial recipe; {recipe.name} "
                               "always runs every epoch and keeps its best validation epoch")
    cli_util.check_writable(output)
    from fmnist_edge.train import fit, plots  # matplotlib (and later Keras) past option checks

    cfg = TrainConfig(models=names, recipe=recipe.name, epochs=epochs or recipe.epochs,
                      batch_size=batch_size, seed=seed, subset=subset,
                      early_stopping=early_stopping, patience=patience, renders=renders)
    data = recipe.prepare(fit.load_data(cfg, progress=cli_util.progress), cfg)
    plots.sample_grid(data.sample_images, data.sample_labels, CLASS_NAMES,
                      output / "plots" / "samples.png")
    metrics = _previous_metrics(output / METRICS_FILE)
    for name in names:
        click.echo(f"training {name!r} ({len(data.x_train):,} train / {len(data.x_val):,} val, "
                   f"{cfg.epochs} epochs, batch {batch_size}, recipe {recipe.name})", err=True)
        model, result = recipe.train_one(name, data, cfg, 0 if quiet else 2)
        with atomic.atomic_path(mf.keras_file(output, name), suffix=".keras") as tmp:
            model.save(tmp)
        plots.confusion(np.array(result["confusion_matrix"]), CLASS_NAMES,
                        f"{name} model: test confusion matrix",
                        output / "plots" / f"confusion_{name}.png")
        metrics["models"][name] = {"recipe": recipe.name,
                                   "pipeline_version": rendered.pipeline_version(),
                                   "config": fit.config_dict(cfg),
                                   "keras_sha256": sha256_of(mf.keras_file(output, name)),
                                   **result}
        metrics["class_names"] = list(CLASS_NAMES)
        atomic.write_json(output / METRICS_FILE, metrics)  # each model's figures beside it
        click.echo(f"{name}: test accuracy {result['test_accuracy']:.4f}  "
                   f"val accuracy {result['val_accuracy_final']:.4f}  "
                   f"params {result['params']:,}  {result['train_seconds']:.1f}s")
        if cfg.early_stopping:
            click.echo(_stopping_line(name, result, cfg.epochs), err=True)
    plots.curves({n: m["history"] for n, m in metrics["models"].items()},
                 output / "plots" / "curves.png")
    click.echo(f"wrote {output}/", err=True)


def _stopping_line(name: str, result: dict[str, Any], epochs: int) -> str:
    """What --early-stopping did, in one line (metrics.json has the same two numbers):
    Keras restores the lowest-validation-loss epoch's weights whether or not it stopped."""
    ran, kept = result["epochs_run"], result["best_epoch_by_val_loss"]
    when = (f"stopped early after epoch {ran} of {epochs}" if ran < epochs
            else f"ran all {ran} epochs (never stopped early)")
    return f"{name}: {when}; kept epoch {kept} (lowest validation loss)"


def _previous_metrics(path: Path) -> dict[str, Any]:
    """Keep the other model's figures when only one model is retrained."""
    try:
        old = json.loads(path.read_text())
        if isinstance(old, dict) and isinstance(old.get("models"), dict):
            return {"models": old["models"]}
    except (OSError, ValueError):
        pass
    return {"models": {}}


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli_util.run(cli))


if __name__ == "__main__":  # pragma: no cover
    main()
