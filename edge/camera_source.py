"""What a ``--camera`` source may be, checked without opening anything.

Kept apart from :mod:`fmnist_edge.edge.camera` (pillow drawing, lazy OpenCV and Picamera2)
so ``edge-classify`` and ``edge-serve`` can check the option when they parse it without
paying for that module's imports on every start; both take the option and this one check
from :mod:`fmnist_edge.edge.cli_options`.
"""

from __future__ import annotations

from pathlib import Path

#: Picamera2 if it finds a camera, else the first USB webcam.
AUTO = "auto"
#: A Raspberry Pi CSI camera through Picamera2.
PICAMERA = "picamera"
#: The sources that are neither a device number nor a file path.
NAMED_SOURCES = (AUTO, PICAMERA)


def is_device_number(source: str) -> bool:
    """``"0"``, ``"1"``, ...: a webcam by OpenCV device index."""
    return source.isdigit()


def source_problem(source: str) -> str | None:
    """Why ``source`` cannot name a camera at all, or None if it may.

    A source that is not a name (:data:`NAMED_SOURCES`) or a device number is a path, and a
    path that does not exist (a typo, a missing video file or device node) or is not a
    regular file is a mistake in the command line, known before any camera library is
    asked: both CLIs call it a usage error (exit 2).  Whether a source that passes opens and
    keeps delivering frames is only known by trying (:func:`camera.open_camera`).
    """
    source = source.strip()
    if source in NAMED_SOURCES or is_device_number(source):
        return None
    path = Path(source)
    if not path.exists():
        return "no such video file or device"
    if path.is_char_device():  # /dev/video0: OpenCV takes a webcam by its index
        index = "".join(c for c in path.name if c.isdigit()) or "0"
        return f"a device node: name the webcam by its number (--camera {index})"
    if not path.is_file():
        return "not a video file (a folder)"
    return None
