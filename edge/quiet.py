"""Silence a file descriptor for a while: native libraries print where Python cannot catch.

LiteRT announces its delegate on fd 2 and the converters chatter on fd 1 from C++; a
``--json`` stdout must stay clean and a terminal readable.  Python-level errors still raise.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def fd_silenced(fd: int) -> Iterator[bool]:
    """Point ``fd`` at /dev/null inside the block; yields False if ``fd`` is not a real one.

    Python's own buffers are flushed first so nothing written before is lost or misordered.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        saved = os.dup(fd)
    except OSError:  # no such fd (embedded use, replaced streams)
        yield False
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield True
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)
