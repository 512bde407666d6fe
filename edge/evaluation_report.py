"""How ``edge-evaluate`` shows its figures: terminal text, a Markdown report, a contact sheet.

The contact sheet is how people see *why* a photo was misread: each photo beside the 28x28
inputs the model actually saw (after the photo pipeline: every segmenter's cut-out, the
first one large; mirror images, which show nothing new, left out) and the answer, wrong
ones first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from fmnist_edge.edge import atomic, camera, photo, tables
from fmnist_edge.edge.classify import NO_GARMENT, shown_threshold
from fmnist_edge.edge.errors import UserError
from fmnist_edge.edge.evaluate import STAGES, PhotoResult

#: Contact-sheet tile: photo and model input side by side, each this many pixels square.
TILE = 112
#: Tiles per row of the contact sheet.
COLUMNS = 6
_TEXT_HEIGHT = 34
_RED, _GREEN, _GREY = (230, 60, 60), (70, 200, 90), (170, 170, 170)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def photos(count: int, what: str = "photo") -> str:
    """``1 photo``, ``2 photos``: a folder of one photo is a common first try."""
    return f"{count} {what}{'' if count == 1 else 's'}"


def header(summary: dict[str, Any], folder: str) -> str:
    """One paragraph: what was evaluated, with which model, pipeline and threshold."""
    threshold = summary["min_confidence"]
    unsure = (f"unsure below {shown_threshold(threshold)}" if threshold is not None
              else "no unsure threshold")
    return (f"{folder}: {photos(summary['photos'])} ({summary['labelled']} labelled, "
            f"{summary['none_of_the_ten']} none of the ten, {summary['failed']} failed); "
            f"model {summary['model']} ({summary['artifact']}, {summary['backend']}); "
            f"pipeline {summary['pipeline_version']}; temperature "
            f"{summary['temperature']:g}; {unsure}")


def sections(summary: dict[str, Any], render: Any = tables.text) -> list[tuple[str, str]]:
    """(title, table) pairs, drawn with ``render`` (:func:`tables.text` or ``markdown``)."""
    per_class = [[name, str(v["photos"]), _fmt(v["accuracy"])]
                 for name, v in summary["per_class"].items()]
    per_class.append(["all labelled", str(summary["labelled"]), _fmt(summary["accuracy"])])
    conf = summary["mean_confidence"]
    unsure = summary["unsure"]
    out = [
        ("Accuracy per class", render(["class", "photos", "accuracy"], per_class)),
        ("Confusion (rows: true class; columns: answer)", _confusion(summary, render)),
        ("Confidence and calibration", render(["figure", "value"], [
            ["mean confidence, right", _fmt(conf["right"])],
            ["mean confidence, wrong", _fmt(conf["wrong"])],
            ["mean confidence, none of the ten", _fmt(conf["none_of_the_ten"])],
            ["expected calibration error (10 bins)", _fmt(summary["ece"])],
            ["accuracy of confident answers", _fmt(summary["answered_accuracy"])],
            ["right answers that are unsure", _fmt(unsure["right_unsure"])],
            ["none of the ten: unsure", _fmt(unsure["none_of_the_ten_unsure"])],
            ["none of the ten: unsure or no garment",
             _fmt(unsure["none_of_the_ten_unsure_or_no_garment"])],
            ["labelled: no garment found", str(unsure["labelled_no_garment"])],
            ["none of the ten: no garment found", str(unsure["none_of_the_ten_no_garment"])],
        ])),
        ("Time per photo (ms)", render(["stage", "p50", "p99"], [
            [stage, _fmt(summary["time_ms"][stage]["p50"], 2),
             _fmt(summary["time_ms"][stage]["p99"], 2)] for stage in (*STAGES, "total")])),
    ]
    return out


def _confusion(summary: dict[str, Any], render: Any) -> str:
    """The confusion matrix with short column heads (class index, or "none")."""
    rows = summary["confusion"]
    if not rows:
        return "(no labelled photos)"
    answers = list(next(iter(rows.values())))
    heads = [str(i) if a != NO_GARMENT else "none" for i, a in enumerate(answers)]
    body = [[f"{true}", *(str(row[a]) for a in answers)] for true, row in rows.items()]
    legend = ", ".join(f"{i} {a}" for i, a in enumerate(answers) if a != NO_GARMENT)
    return render(["true \\ answer", *heads], body) + f"\n\n{legend}; none: {NO_GARMENT}"


def text(summary: dict[str, Any], folder: str) -> str:
    """The terminal report."""
    parts = [header(summary, folder),
             f"accuracy {_fmt(summary['accuracy'])} ({summary['correct']}/"
             f"{photos(summary['labelled'], 'labelled photo')} right)"]
    parts += [f"\n{title}\n{table}" for title, table in sections(summary)]
    return "\n".join(parts)


def markdown(summary: dict[str, Any], folder: str, sheet: str | None) -> str:
    """The Markdown report written by ``-o``."""
    lines = [f"# edge-evaluate: {Path(folder).name or folder}", "", header(summary, folder), "",
             f"**Accuracy {_fmt(summary['accuracy'])}** ({summary['correct']}/"
             f"{photos(summary['labelled'], 'labelled photo')} right).", ""]
    for title, table in sections(summary, tables.markdown):
        lines += [f"## {title}", "", table, ""]
    if sheet:
        lines += ["## Contact sheet", "",
                  "Each photo beside the 28x28 inputs the model saw (every segmenter's "
                  "cut-out, the first large; the answer combines them and their mirror "
                  "images) and its answer; wrong answers first (red), then none of the ten "
                  "(grey), then right (green).", "",
                  f"![contact sheet]({sheet})", ""]
    return "\n".join(lines)


def contact_sheet(results: list[PhotoResult]) -> Image.Image:
    """Every decoded photo beside its model input and answer, wrong ones first."""
    shown = sorted((r for r in results if r.pixels is not None), key=_order)
    rows = max(1, -(-len(shown) // COLUMNS))
    tile_w, tile_h = 2 * TILE + TILE // 2 + 8, TILE + _TEXT_HEIGHT + 8
    sheet = Image.new("RGB", (COLUMNS * tile_w, rows * tile_h), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    font = camera.font(11)
    for i, result in enumerate(shown):
        x, y = (i % COLUMNS) * tile_w + 4, (i // COLUMNS) * tile_h + 4
        sheet.paste(_thumbnail(result), (x, y))
        assert result.pixels is not None
        cut_outs = _cut_outs(result.pixels)
        for j, view in enumerate(cut_outs[:3]):
            side = TILE if j == 0 else TILE // 2
            seen = Image.fromarray(view).resize((side, side), Image.Resampling.NEAREST)
            sheet.paste(seen.convert("RGB"), (x + TILE + (0 if j == 0 else TILE),
                                              y + (0 if j < 2 else TILE // 2)))
        colour, lines = _caption(result)
        draw.text((x, y + TILE + 2), lines[0], fill=colour, font=font)
        draw.text((x, y + TILE + 16), lines[1], fill=colour, font=font)
    return sheet


def _cut_outs(views: np.ndarray) -> list[np.ndarray]:
    """The views of a photo without the mirror images of earlier ones (one view: itself)."""
    views = views[None] if views.ndim == 2 else views
    kept: list[np.ndarray] = []
    for view in views:
        if not any(np.array_equal(view, k[:, ::-1]) for k in kept):
            kept.append(view)
    return kept


def _order(result: PhotoResult) -> tuple[int, str]:
    """Wrong (labelled) first, then none of the ten, then right."""
    if result.photo.label < 0:
        return 1, result.photo.name
    return (2 if result.correct else 0), result.photo.name


def _caption(result: PhotoResult) -> tuple[tuple[int, int, int], tuple[str, str]]:
    pred = result.prediction
    assert pred is not None
    said = pred.answer
    if pred.status == "unsure":
        said = f"unsure ({pred.label} {pred.shown(pred.confidence)})"
    elif pred.status == "ok":
        said = f"{pred.label} {pred.shown(pred.confidence)}"
    truth = result.class_name or "none of the ten"
    colour = _GREY if result.photo.label < 0 else (_GREEN if result.correct else _RED)
    return colour, (f"true: {truth}"[:36], f"said: {said}"[:36])


def _thumbnail(result: PhotoResult) -> Image.Image:
    """The photo, upright, fitted into a TILE square on dark grey."""
    tile = Image.new("RGB", (TILE, TILE), (40, 40, 40))
    try:  # the device's own safe decoder (size check, draft decode, EXIF rotation)
        small = photo.open_image(result.photo.path, result.photo.name).convert("RGB")
    except UserError:  # it decoded once already; a thumbnail is not worth failing for
        return tile
    small.thumbnail((TILE, TILE))
    tile.paste(small, ((TILE - small.width) // 2, (TILE - small.height) // 2))
    return tile


def write(results: list[PhotoResult], summary: dict[str, Any], folder: str,
          out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``contact_sheet.png`` into ``out_dir`` (atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sheet_path = out_dir / "contact_sheet.png"
    with atomic.atomic_path(sheet_path, suffix=".png") as tmp:
        contact_sheet(results).save(tmp, format="PNG", optimize=False)
    report_path = out_dir / "report.md"
    atomic.write_text(report_path, markdown(summary, folder, sheet_path.name))
    atomic.write_json(out_dir / "summary.json", summary)
    return report_path, sheet_path
