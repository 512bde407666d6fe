"""File identity for the bundle contract: size and SHA-256, computed one way everywhere.

The loader checks the dataset files with it, and the manifest records the bundle's files with
it at export and re-checks them on the device with it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

#: Files smaller than this are hashed with CPython's built-in SHA-256 when it has one.
#: hashlib's default loads OpenSSL's libcrypto: 3.5 MiB of resident memory at every start
#: of the device runner, whose files are ~100 KB (where the built-in costs ~1 ms more).
#: Big files (the dataset, Keras models) keep OpenSSL's speed.  The digests are identical.
SMALL_FILE_BYTES = 8 << 20


def _sha256(size: int) -> Any:
    """A fresh SHA-256 object: built-in for small files if available, else hashlib's."""
    if size < SMALL_FILE_BYTES:
        for module in ("_sha2", "_sha256"):  # CPython >= 3.12, <= 3.11
            try:
                return importlib.import_module(module).sha256()
            except ImportError:
                continue
    import hashlib

    return hashlib.sha256()


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks so memory stays flat."""
    digest = _sha256(Path(path).stat().st_size)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

