"""File identity for the bundle contract: size and SHA-256, computed one way everywhere.

The loader checks the dataset files with it, and the manifest records the bundle's files with
it at export and re-checks them on the device with it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks so memory stays flat."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

