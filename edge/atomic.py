"""Atomic file and folder writes, so an interrupted run never leaves half a file behind.

Every writer in the project goes through here: write next to the target under a hidden
temporary name, flush to disk, then ``os.replace``, which is atomic on POSIX filesystems.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(target: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it over ``target`` only on success.

    ``suffix`` lets callers keep an extension some libraries insist on (Keras wants
    ``.keras``).  On any exception the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{suffix}",
                                    dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    write_bytes(target, text.encode("utf-8"))


def write_json(target: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically."""
    write_text(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield an empty temporary folder; swap it in for ``target`` only on success.

    The previous ``target`` (if any) is kept until the new one is in place, so a failed or
    interrupted build leaves the old folder exactly as it was.  The swap is two renames; if
    a run dies between them, the next call finds the old folder parked and restores it.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    old = target.parent / f".{target.name}.old"
    if old.exists() and not target.exists():
        os.replace(old, target)  # an earlier run died mid-swap: put the old folder back
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the usual folder mode
    try:
        yield tmp
        _swap(tmp, target, old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _swap(new: Path, target: Path, old: Path) -> None:
    """Replace ``target`` by ``new``; on any interruption, put the previous one back."""
    if old.exists():
        shutil.rmtree(old)
    had_target = target.exists()
    if had_target:
        os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        if had_target and not target.exists():
            os.replace(old, target)
        raise
    if had_target:
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    """The process umask (reading it means setting it; put it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_file(path: Path) -> None:
    """Flush a file's bytes to disk before it is renamed into place."""
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
