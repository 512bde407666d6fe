"""Write Fashion-MNIST test images out as PNG files, named by index and true class.

Real image files for ``edge-classify`` to read back (``make classify``, and the tests that
classify all 10,000 of them and must reproduce the bundle's verified accuracy).

    python -m fmnist_edge.edge.dataset_pngs -o test-png            # all 10,000
    python -m fmnist_edge.edge.dataset_pngs -o test-png --limit 20
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import click
from PIL import Image

from fmnist_edge.edge import atomic, cli_util, dataset

_NAME = re.compile(r"^(\d+)_(\d)_")


def file_name(index: int, label: int) -> str:
    """``00042_3_Dress.png``: index, label and class name, sortable."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", dataset.CLASS_NAMES[label])
    return f"{index:05d}_{label}_{slug}.png"


def label_of(path: Path) -> int:
    """The true label encoded in a file name written by :func:`file_name`."""
    match = _NAME.match(path.name)
    if not match:
        raise ValueError(f"{path.name}: not a file name written by fmnist_edge.edge.dataset_pngs")
    return int(match.group(2))


def write(out: Path, limit: int | None = None, progress: dataset.Progress | None = None) -> int:
    """Write the first ``limit`` test images (all by default) as 8-bit grayscale PNGs."""
    test = dataset.load_split("test", progress=progress)
    count = len(test.labels) if limit is None else min(limit, len(test.labels))
    out.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        buf = io.BytesIO()
        Image.fromarray(test.images[i], mode="L").save(buf, format="PNG")
        atomic.write_bytes(out / file_name(i, int(test.labels[i])), buf.getvalue())
    return count


@click.command(name="fmnist-pngs")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Only the first N test images.")
def cli(output: Path, limit: int | None) -> None:
    """Write Fashion-MNIST test images as PNG files named index_label_class.png."""
    cli_util.check_writable(output)
    click.echo(f"wrote {write(output, limit, cli_util.progress)} PNGs to {output}", err=True)


def main() -> None:
    """``python -m fmnist_edge.edge.dataset_pngs``."""
    sys.exit(cli_util.run(cli))


if __name__ == "__main__":
    main()
