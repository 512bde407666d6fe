"""The bundles that ship inside the package, so ``edge-classify img.png`` needs no flags.

They are the int8 models produced by this project's own train + export pipeline
(``make bundles`` regenerates them).  ``--model first`` or ``--model second`` picks one by
name; a path picks any other bundle.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fmnist_edge.edge.manifest import BUNDLES_DIR, MANIFEST_NAME

#: The model ``edge-classify`` uses when ``--model`` is not given.
DEFAULT_MODEL = "second"


def bundles_root() -> Path:
    """Folder holding the shipped bundles (``fmnist_edge/edge/bundles``)."""
    return Path(str(resources.files("fmnist_edge.edge") / BUNDLES_DIR))


def names() -> list[str]:
    """Names of the shipped bundles."""
    root = bundles_root()
    return sorted(p.name for p in root.iterdir() if (p / MANIFEST_NAME).is_file()) \
        if root.is_dir() else []


def resolve_model_arg(arg: str | None) -> Path:
    """``None`` → the default shipped bundle; a shipped name → that bundle; else a path."""
    if arg is None:
        arg = DEFAULT_MODEL
    if not Path(arg).exists() and arg in names():
        return bundles_root() / arg
    return Path(arg)
