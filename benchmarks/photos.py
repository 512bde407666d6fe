"""The photo report: recipes x pipelines x models on labelled photo folders, timed per stage.

    python -m fmnist_edge.benchmarks.photos \\
        --bundles tutorial=artifacts-tutorial/bundles --bundles photo=edge/bundles \\
        --photos real-photos-dev=../shared/data/real-photos-dev \\
        --photos rendered-test=rendered-test -o benchmarks/PHOTOS.md

Each folder needs a ``labels.tsv`` (``path`` and ``label`` columns; label -1 marks a photo that
is none of the ten classes).  Every photo is decoded once and preprocessed once per pipeline
on the device path (:mod:`fmnist_edge.edge.photo`); every bundle then classifies those
pixels with its preferred artifact (int8 TFLite for shipped bundles), its manifest's
temperature applied and its ``min_confidence`` used for "unsure", as on the device.
Stages are timed one photo at a time: decode, preprocess (per pipeline), inference (per model).
"""

from __future__ import annotations

import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np

from fmnist_edge.edge import atomic, cli_util, dataset, metrics, photo, tables
from fmnist_edge.edge.errors import UserError
from fmnist_edge.edge.model import EdgeModel
from fmnist_edge.train import confidence

MODELS = ("first", "second")


@dataclass
class PhotoSet:
    """A labelled folder, decoded and preprocessed by each pipeline, with stage timings."""

    name: str
    labels: np.ndarray
    pixels: dict[str, np.ndarray]  # pipeline → (N, 28, 28)
    decode_ms: np.ndarray
    preprocess_ms: dict[str, np.ndarray]


def load_set(name: str, folder: Path, pipelines: tuple[str, ...]) -> PhotoSet:
    """Decode every photo of ``labels.tsv`` once, preprocess it with every pipeline."""
    rows = read_labels(folder)
    labels = np.array([label for _, label in rows], np.int64)
    pixels = {p: np.zeros((len(rows), 28, 28), np.uint8) for p in pipelines}
    pre_ms = {p: np.zeros(len(rows)) for p in pipelines}
    dec_ms = np.zeros(len(rows))
    for i, (rel, _) in enumerate(rows):
        start = time.perf_counter()
        img = photo.open_image(folder / rel, rel)
        dec_ms[i] = (time.perf_counter() - start) * 1000
        for p in pipelines:
            start = time.perf_counter()
            pixels[p][i] = photo.to_pixels(img, p)
            pre_ms[p][i] = (time.perf_counter() - start) * 1000
    return PhotoSet(name, labels, pixels, dec_ms, pre_ms)


def read_labels(folder: Path) -> list[tuple[str, int]]:
    """``(relative path, label)`` rows of ``folder/labels.tsv``."""
    path = folder / "labels.tsv"
    if not path.is_file():
        raise UserError(f"{folder}: no labels.tsv (path<TAB>label per photo)")
    with open(path, newline="", encoding="utf-8") as fh:
        return [(r["path"], int(r["label"])) for r in csv.DictReader(fh, delimiter="\t")]


def score(model: EdgeModel, pixels: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Accuracy, per class, confidence, calibration error and "unsure" shares of one run."""
    raw = model.predict(pixels)
    cal = model.manifest.raw.get("calibration") or {}
    probs = confidence.apply_temperature(raw, float(cal.get("temperature", 1.0)))
    threshold = float(cal.get("min_confidence", 0.0))
    top = probs.max(axis=1)
    pred = probs.argmax(axis=1)
    known = labels >= 0
    right = known & (pred == labels)
    names = model.class_names
    per_class = {names[c]: metrics.agreement(pred[labels == c], labels[labels == c])
                 for c in np.unique(labels[known])}
    one_ms = []
    for i in range(min(len(pixels), 200)):  # one photo at a time, as the device runs them
        x = model.input_tensor(pixels[i:i + 1])
        t = time.perf_counter()
        model.predict_tensor(x)
        one_ms.append((time.perf_counter() - t) * 1000)
    return {
        "accuracy": metrics.agreement(pred[known], labels[known]),
        "per_class": per_class,
        "conf_right": _mean(top[right]), "conf_wrong": _mean(top[known & ~right]),
        "conf_none": _mean(top[~known]),
        "ece_raw": confidence.ece(raw[known], labels[known]),
        "ece": confidence.ece(probs[known], labels[known]),
        "min_confidence": threshold,
        "unsure_correct": _mean((top < threshold)[right]),
        "unsure_none": _mean((top < threshold)[~known]),
        "infer_ms": np.array(one_ms),
    }


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def _f(value: float) -> str:
    """Two decimals, or a dash where there was nothing to average."""
    return "–" if np.isnan(value) else f"{value:.2f}"


def _p(values: np.ndarray, q: float) -> str:
    return f"{np.percentile(values, q):.2f}"


def report(sets: list[PhotoSet], bundles: dict[str, Path], pipelines: tuple[str, ...],
           command: str) -> str:
    """The whole Markdown report."""
    lines = ["# Photos: recipes x pipelines x models", "",
             f"Generated by `{command}` (int8 bundles, one photo at a time, this machine).", ""]
    results: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    models = {(r, m): EdgeModel.open(root / m) for r, root in bundles.items() for m in MODELS
              if (root / m).is_dir()}
    for s in sets:
        for (recipe, m), model in models.items():
            for p in pipelines:
                results[(s.name, recipe, p, m)] = score(model, s.pixels[p], s.labels)
    for s in sets:
        lines += _set_section(s, models, results, pipelines)
    lines += _timing_section(sets, models, results, pipelines)
    return "\n".join(lines) + "\n"


def _set_section(s: PhotoSet, models: dict[tuple[str, str], EdgeModel],
                 results: dict[tuple[str, str, str, str], dict[str, Any]],
                 pipelines: tuple[str, ...]) -> list[str]:
    known = int((s.labels >= 0).sum())
    lines = [f"## {s.name}: {known} labelled photos, {len(s.labels) - known} none-of-the-ten",
             ""]
    cols = ["recipe", "pipeline", "model", "accuracy", "conf right / wrong / none",
            "ECE raw → calibrated", "min_conf", "unsure: correct / none"]
    rows = []
    for (recipe, m) in models:
        for p in pipelines:
            r = results[(s.name, recipe, p, m)]
            rows.append([recipe, p, m, f"{r['accuracy']:.3f}",
                         " / ".join(_f(r[k]) for k in ("conf_right", "conf_wrong", "conf_none")),
                         f"{r['ece_raw']:.3f} → {r['ece']:.3f}", f"{r['min_confidence']:.3f}",
                         f"{_f(r['unsure_correct'])} / {_f(r['unsure_none'])}"])
    lines += [tables.markdown(cols, rows, left=3), ""]
    classes = [dataset.CLASS_NAMES[c] for c in np.unique(s.labels[s.labels >= 0])]
    rows = []
    for (recipe, m) in models:
        for p in pipelines:
            r = results[(s.name, recipe, p, m)]
            rows.append([recipe, p, m, *(f"{r['per_class'][c]:.2f}" for c in classes)])
    lines += ["Per-class accuracy:", "", tables.markdown(["recipe", "pipeline", "model", *classes],
                                                        rows, left=3), ""]
    return lines


def _timing_section(sets: list[PhotoSet], models: dict[tuple[str, str], EdgeModel],
                    results: dict[tuple[str, str, str, str], dict[str, Any]],
                    pipelines: tuple[str, ...]) -> list[str]:
    rows = []
    for s in sets:
        rows.append([s.name, "decode", "", _p(s.decode_ms, 50), _p(s.decode_ms, 99)])
        for p in pipelines:
            rows.append([s.name, "preprocess", p, _p(s.preprocess_ms[p], 50),
                         _p(s.preprocess_ms[p], 99)])
        for (recipe, m) in models:
            ms = results[(s.name, recipe, pipelines[0], m)]["infer_ms"]
            rows.append([s.name, "inference", f"{recipe}/{m}", _p(ms, 50), _p(ms, 99)])
    return ["## Time per stage (ms per photo)", "",
            tables.markdown(["set", "stage", "which", "p50", "p99"], rows, left=3), ""]


def _pairs(values: tuple[str, ...], what: str) -> dict[str, Path]:
    out = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"{v!r}: expected NAME=PATH", param_hint=what)
        out[name] = Path(path)
    return out


@click.command(name="photos-report", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--bundles", "bundle_args", multiple=True, required=True,
              help="RECIPE=FOLDER holding first/ and second/ bundles (repeatable).")
@click.option("--photos", "photo_args", multiple=True, required=True,
              help="NAME=FOLDER with labels.tsv (repeatable).")
@click.option("--pipeline", "pipelines", multiple=True, type=click.Choice(photo.METHODS),
              help="Preprocessing methods to compare.  [default: every one but 'simple']")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Markdown file to write.")
def cli(bundle_args: tuple[str, ...], photo_args: tuple[str, ...], pipelines: tuple[str, ...],
        output: Path) -> None:
    """Score recipes x pipelines x models on labelled photo folders; write Markdown."""
    bundles = _pairs(bundle_args, "--bundles")
    folders = _pairs(photo_args, "--photos")
    chosen = pipelines or tuple(m for m in photo.METHODS if m != "simple")
    sets = [load_set(name, folder, chosen) for name, folder in folders.items()]
    command = "python -m fmnist_edge.benchmarks.photos " + " ".join(sys.argv[1:])
    atomic.write_text(output, report(sets, bundles, chosen, command))
    click.echo(f"wrote {output}", err=True)


def main() -> None:
    """Entry point."""
    sys.exit(cli_util.run(cli))


if __name__ == "__main__":  # pragma: no cover
    main()
