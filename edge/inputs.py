"""Turn command-line arguments into a stream of images to classify.

Arguments may be files, folders (``--recursive`` to descend), glob patterns, or ``-`` for
image bytes on stdin.  Items are yielded lazily, one at a time, so a folder of 100,000
images never sits in memory.  A problem with one argument is yielded as an :class:`Issue`
and the rest still run.
"""

from __future__ import annotations

import functools
import glob
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: Formats pillow may decode (:func:`fmnist_edge.edge.photo.open_image` opens no other).
#: Deliberately excludes EPS/PS (pillow hands those to Ghostscript, an external interpreter)
#: and exotic formats nobody photographs garments in.  A folder walk picks up the files of
#: these formats (:func:`image_suffixes`) and skips anything else with a note.
SAFE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "DIB", "TIFF", "WEBP", "AVIF", "PPM", "TGA",
                "ICO")
#: Stdin is read whole; cap it so a runaway pipe cannot exhaust memory.
MAX_STDIN_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Item:
    """One image to classify: its display name and where its bytes are."""

    name: str
    path: Path | None = None
    data: bytes | None = None

    @property
    def source(self) -> Path | bytes:
        """What to decode: the bytes read from stdin, else the file."""
        if self.data is not None:
            return self.data
        assert self.path is not None, "an Item holds a path or data"
        return self.path


@dataclass(frozen=True)
class Issue:
    """An argument that yields no image: ``fatal`` ones make the exit code 1."""

    name: str
    reason: str
    fatal: bool = True


def expand(args: tuple[str, ...], recursive: bool = False) -> Iterator[Item | Issue]:
    """Yield every image named by ``args``, in order, and an Issue for each problem.

    An argument that names no image at all (an empty folder, a folder of other files, a
    pattern that matches nothing) is a fatal Issue naming it: otherwise the command would
    print nothing and exit 0, and "nothing to do" would look like "done".
    """
    for arg in args:
        found = False
        for entry in _expand_one(arg, recursive):
            # an image, or a failure already reported (missing file, unreadable folder)
            found = found or isinstance(entry, Item) or entry.fatal
            yield entry
        if not found:
            yield Issue(arg, _nothing_reason(arg, recursive))


def _expand_one(arg: str, recursive: bool) -> Iterator[Item | Issue]:
    """The images (and notes) of one argument."""
    if arg == "-":
        yield _stdin()
        return
    path = Path(arg)
    if path.is_dir():
        yield from _walk(path, recursive)
    elif path.exists() or path.is_symlink():
        yield Item(name=arg, path=path)
    elif glob.has_magic(arg):
        for match in sorted(glob.glob(arg, recursive=True)):
            yield from _walk(Path(match), recursive) if Path(match).is_dir() \
                else iter([Item(name=match, path=Path(match))])
    else:
        yield Issue(arg, "no such file or folder")


def _nothing_reason(arg: str, recursive: bool) -> str:
    """Why ``arg`` gave no image, in words that say what to try."""
    path = Path(arg)
    if path.is_dir():
        if not any(path.iterdir()):
            return "folder is empty: no images to classify"
        hint = "" if recursive else " (images in sub-folders? add --recursive)"
        return f"folder has no image files ({', '.join(SAFE_FORMATS)}){hint}"
    if glob.glob(arg, recursive=True):
        return "pattern matches no image files"
    return "no files match this pattern"


def _walk(folder: Path, recursive: bool,
          seen: set[tuple[int, int]] | None = None) -> Iterator[Item | Issue]:
    """Images in a folder, sorted; other files and (without --recursive) subfolders noted.

    ``seen`` holds the (device, inode) of every folder entered, so a symlink loop is
    reported once instead of classifying the same images over and over.
    """
    seen = set() if seen is None else seen
    try:
        key = (folder.stat().st_dev, folder.stat().st_ino)
        entries = sorted(folder.iterdir())
    except OSError as exc:
        yield Issue(str(folder), f"cannot list folder ({exc.strerror or exc})")
        return
    if key in seen:
        yield Issue(str(folder), "skipped: folder already visited (symlink loop)", fatal=False)
        return
    seen.add(key)
    suffixes = image_suffixes()
    for entry in entries:
        if entry.is_dir():
            if recursive:
                yield from _walk(entry, recursive, seen)
            else:
                yield Issue(str(entry), "skipped folder (use --recursive)", fatal=False)
        elif entry.suffix.lower() in suffixes:
            yield Item(name=str(entry), path=entry)
        else:
            yield Issue(str(entry), "skipped: not an image file type", fatal=False)


@functools.cache
def image_suffixes() -> frozenset[str]:
    """File suffixes a folder walk picks up: those pillow registers here for
    :data:`SAFE_FORMATS`.  Derived rather than listed, so a folder holds exactly the types a
    single file path opens (AVIF, TGA, ICO, DIB... and no more where this pillow reads fewer).
    It costs ``Image.init()`` (every plugin, about 40 ms) once, so only folder walks ask."""
    from PIL import Image

    Image.init()
    return frozenset(ext.lower() for ext, fmt in Image.registered_extensions().items()
                     if fmt in SAFE_FORMATS)


def _stdin() -> Item | Issue:
    """Image bytes piped in on stdin (read once, capped)."""
    data = sys.stdin.buffer.read(MAX_STDIN_BYTES + 1)
    if len(data) > MAX_STDIN_BYTES:
        return Issue("-", f"stdin is larger than {MAX_STDIN_BYTES // 2**20} MiB")
    return Item(name="-", data=data)
