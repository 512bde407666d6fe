"""A folder of labelled photos, as ``edge-evaluate`` reads it.

Two layouts, the first that applies wins:

``labels.tsv``
    Tab-separated with a header row: ``path`` (relative to the folder), then ``label``
    (0-9, or -1 for "none of the ten classes") and/or ``class`` (a class name, or ``none``);
    more columns are ignored.  This is how ``real-photos-dev`` is labelled.
class-named sub-folders
    ``Shirt/``, ``ankle-boot/``, ``6_Shirt/``, ``none-of-the-ten/``...: case, punctuation and
    a leading ``N_`` index are ignored; ``none``, ``other``, ``unknown`` and
    ``none-of-the-ten`` hold photos of none of the ten.

Every problem is one :class:`UserError` line naming the file and line to fix.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from fmnist_edge.edge.errors import UserError
from fmnist_edge.edge.inputs import image_suffixes

LABELS_FILE = "labels.tsv"

#: The label of a photo showing none of the ten classes.
NONE_LABEL = -1

_NONE_NAMES = frozenset({"none", "other", "others", "unknown", "noneoftheten", "negative"})


@dataclass(frozen=True)
class LabelledPhoto:
    """One photo and its label (class index, or :data:`NONE_LABEL`)."""

    path: Path
    name: str
    label: int


def read_folder(folder: Path, class_names: tuple[str, ...]) -> list[LabelledPhoto]:
    """Every labelled photo of ``folder``, in a stable order."""
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder (give a folder holding {LABELS_FILE} or "
                        f"class-named sub-folders)")
    table = folder / LABELS_FILE
    photos = _from_table(table, class_names) if table.is_file() else \
        _from_subfolders(folder, class_names)
    if not photos:
        raise UserError(f"{folder}: no labelled photos (expected {LABELS_FILE} or sub-folders "
                        f"named after classes, e.g. Shirt/, none/)")
    return photos


def class_index(name: str, class_names: tuple[str, ...]) -> int | None:
    """Class index of a folder or class name (None when it names no class)."""
    key = _key(re.sub(r"^\d+[_\- ]+", "", name.strip()))
    if key in _NONE_NAMES or name.strip() == str(NONE_LABEL):
        return NONE_LABEL
    for i, cls in enumerate(class_names):
        if _key(cls) == key:
            return i
    return None


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _from_table(table: Path, class_names: tuple[str, ...]) -> list[LabelledPhoto]:
    """Photos listed in ``labels.tsv``."""
    try:
        text = table.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{table}: cannot read ({exc})") from exc
    rows = list(csv.reader(text.splitlines(), delimiter="\t"))
    if not rows:
        raise UserError(f"{table}: empty (expected a header row: path, label)")
    header = [h.strip().lower() for h in rows[0]]
    if "path" not in header or not ({"label", "class"} & set(header)):
        raise UserError(f"{table}: the header row must name a 'path' column and a 'label' or "
                        f"'class' column (got: {', '.join(header)})")
    col = {h: i for i, h in enumerate(header)}
    photos = []
    for line, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        where = f"{table}, line {line}"
        rel = _cell(row, col["path"], where, "path")
        label = _label(row, col, class_names, where)
        photos.append(LabelledPhoto(path=table.parent / rel, name=rel, label=label))
    return photos


def _cell(row: list[str], index: int, where: str, what: str) -> str:
    if index >= len(row) or not row[index].strip():
        raise UserError(f"{where}: no {what}")
    return row[index].strip()


def _label(row: list[str], col: dict[str, int], class_names: tuple[str, ...],
           where: str) -> int:
    """The label column if present, else the class column, checked against the model."""
    if "label" in col:
        raw = _cell(row, col["label"], where, "label")
        try:
            label = int(raw)
        except ValueError:
            label = -2
        if not NONE_LABEL <= label < len(class_names):
            raise UserError(f"{where}: label {raw!r} is not {NONE_LABEL} (none of the ten) or "
                            f"a class index 0-{len(class_names) - 1}")
        return label
    raw = _cell(row, col["class"], where, "class")
    found = class_index(raw, class_names)
    if found is None:
        raise UserError(f"{where}: {raw!r} is not a class ({', '.join(class_names)}, none)")
    return found


def _from_subfolders(folder: Path, class_names: tuple[str, ...]) -> list[LabelledPhoto]:
    """Photos in class-named sub-folders (one level; other files are ignored)."""
    photos = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        label = class_index(sub.name, class_names)
        if label is None:
            raise UserError(f"{sub}: folder name is not a class ({', '.join(class_names)}) "
                            f"nor none/other; rename it or add a {LABELS_FILE}")
        for path in sorted(sub.iterdir()):
            if path.is_file() and path.suffix.lower() in image_suffixes():
                photos.append(LabelledPhoto(path=path, name=f"{sub.name}/{path.name}",
                                            label=label))
    return photos
