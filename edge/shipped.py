"""The bundles that ship inside the package, so ``edge-classify img.png`` needs no flags.

They are the int8 models produced by this project's own train + export pipeline
(``make bundles`` regenerates them).  ``--model first`` or ``--model second`` picks one by
name; a path picks any other bundle.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fmnist_edge.edge import cli_util
from fmnist_edge.edge.errors import BundleError
from fmnist_edge.edge.manifest import BUNDLES_DIR, MANIFEST_NAME

#: The model ``edge-classify`` uses when ``--model`` is not given.
DEFAULT_MODEL = "second"


def bundles_root() -> Path:
    """Folder holding the shipped bundles (``fmnist_edge/edge/bundles``).

    Beside this file, rather than ``importlib.resources`` (7 ms of imports at every start):
    the package is always installed as plain files, never zipped.
    """
    return Path(__file__).parent / BUNDLES_DIR


def names() -> list[str]:
    """Names of the shipped bundles."""
    root = bundles_root()
    return sorted(p.name for p in root.iterdir() if (p / MANIFEST_NAME).is_file()) \
        if root.is_dir() else []


def resolve_model_arg(arg: str | None) -> Path:
    """The one way every command names a model: ``None`` → the default shipped bundle; a
    shipped name (``first``, ``second``) → that bundle; else a bundle folder or a model
    file inside one (its ``manifest.json`` names the folder too).

    An argument that names nothing (no such path, no shipped model of that name) is a
    usage error, exit 2, in one line listing the shipped names; a bundle that exists but
    is broken fails later as an input, exit 1.
    """
    if arg is None:
        arg = DEFAULT_MODEL
    path = Path(arg)
    if not path.exists() and arg in names():
        return bundles_root() / arg
    if not path.exists():
        shipped = ", ".join(names()) or "none installed"
        raise BundleError(f"{arg}: no such model bundle or file, and no shipped model has "
                          f"that name (shipped: {shipped})", exit_code=cli_util.EXIT_USAGE)
    if path.name == MANIFEST_NAME and path.is_file():
        return path.parent
    return path


def resolve_model_args(args: Sequence[str]) -> list[Path]:
    """Several model arguments (as :func:`resolve_model_arg`); none → every shipped bundle."""
    if not args:
        found = [bundles_root() / n for n in names()]
        if not found:
            raise BundleError(f"no bundle shipped in {bundles_root()}; name a bundle folder")
        return found
    return [resolve_model_arg(a) for a in args]
