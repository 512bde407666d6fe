"""File identity for the bundle contract: size and SHA-256, computed one way everywhere.

The loader checks the dataset files with it, the exporter records artifacts with it and the
manifest re-checks them on the device with it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks so memory stays flat."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(path: Path) -> dict[str, Any]:
    """``{"bytes": ..., "sha256": ...}``: how a manifest lists one file."""
    return {"bytes": Path(path).stat().st_size, "sha256": sha256_of(path)}
