"""``fmnist-render``: write a labelled folder of photo-like renders of Fashion-MNIST images.

    fmnist-render -o rendered-test                     # 1,000 renders of TEST images
    fmnist-render --split test -n 2000 --seed 1 -o /tmp/more
    fmnist-render --split train -n 50 -o /tmp/look     # to look at what the photo recipe sees
    python -m fmnist_edge.train.render --split test -n 1000 -o rendered-test

The folder has one sub-folder per class (``0_T-shirt-top/``, ...) and a ``labels.tsv``
(path, label, class, index of the source image in its split, SHA-256), so any labelled-folder
evaluation (``edge-evaluate``) can score a model on it.  The images are a seeded,
class-balanced sample of the split; the same command gives the same bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

from fmnist_edge.edge import atomic, cli_util, dataset
from fmnist_edge.edge.hashing import sha256_of
from fmnist_edge.train import rendered

LABELS_FILE = "labels.tsv"


@click.command(name="fmnist-render", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Folder to write (class sub-folders and labels.tsv).")
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True,
              help="Which Fashion-MNIST split to render (test: never trained on).")
@click.option("-n", "--count", type=click.IntRange(min=1, max=60000), default=1000,
              show_default=True, help="How many renders (a class-balanced sample).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds the sample and every render.")
def cli(output: Path, split: str, count: int, seed: int) -> None:
    """Render Fashion-MNIST images as photo-like JPEGs into a labelled folder."""
    data = dataset.load_split(split)
    if count > len(data.labels):  # balanced_sample would quietly give the whole split
        raise click.BadParameter(f"the {split} split has {len(data.labels):,} images; ask for "
                                 "at most that many", param_hint="'-n' / '--count'")
    cli_util.check_writable(output)
    indices = np.sort(dataset.balanced_sample(data.labels, count, np.random.default_rng(seed)))
    jpegs = rendered.renders(data.images, data.labels, indices, split, seed)
    rows = ["path\tlabel\tclass\tsource_index\tsha256"]
    for index, jpeg in zip(indices, jpegs, strict=True):
        label = int(data.labels[index])
        rel = f"{class_folder(label)}/{split}-{index:05d}.jpg"
        atomic.write_bytes(output / rel, jpeg)
        rows.append(f"{rel}\t{label}\t{dataset.CLASS_NAMES[label]}\t{index}\t"
                    f"{sha256_of(output / rel)}")
    atomic.write_text(output / LABELS_FILE, "\n".join(rows) + "\n")
    click.echo(f"wrote {len(indices):,} renders of {split} images to {output}/", err=True)


def class_folder(label: int) -> str:
    """``0_T-shirt-top``: index and class name, safe as a folder name."""
    return f"{label}_{dataset.CLASS_NAMES[label].replace('/', '-').replace(' ', '-')}"


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli_util.run(cli))


if __name__ == "__main__":  # pragma: no cover
    main()
