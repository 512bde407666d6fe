"""The photo report: recipes x pipelines x models on labelled photo folders, timed per stage.

    python -m fmnist_edge.benchmarks.photos \\
        --bundles tutorial=artifacts/bundles --bundles photo=edge/bundles \\
        --photos real-photos-dev=../shared/data/real-photos-dev \\
        --photos rendered-test=rendered-test -o benchmarks/PHOTOS.md

Every cell is one run of :func:`fmnist_edge.edge.evaluate.run` (what ``edge-evaluate`` does:
decode, photo pipeline, calibrated answer, "unsure" below the manifest's ``min_confidence``,
"no garment found" when the pipeline finds none), so the figures are the device's own.
Each bundle runs its preferred artifact (int8 TFLite for the shipped bundles).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from fmnist_edge.edge import atomic, cli_util, evaluate, labelled, photo, tables
from fmnist_edge.edge.model import EdgeModel

MODELS = ("first", "second")
Key = tuple[str, str, str, str]  # set, recipe, pipeline, model


def measure(bundles: dict[str, Path], folders: dict[str, Path], pipelines: tuple[str, ...]
            ) -> dict[Key, dict[str, Any]]:
    """``edge-evaluate``'s summary for every set x recipe x pipeline x model."""
    out: dict[Key, dict[str, Any]] = {}
    for recipe, root in bundles.items():
        for m in MODELS:
            model = EdgeModel.open(root / m)
            for name, folder in folders.items():
                photos = labelled.read_folder(folder, model.class_names)
                for p in pipelines:
                    click.echo(f"{name}: {recipe}/{m}, pipeline {p}", err=True)
                    results = evaluate.run(model, photos, p)
                    out[(name, recipe, p, m)] = evaluate.summarise(results, model, p)
    return out


#: Ends the generated tables.  What follows it in an existing report (write-ups of
#: experiments, by hand) is kept when the report is regenerated: the tables are the
#: generator's, the prose is not, and re-running the benchmark must not lose it.
KEEP_BELOW = "<!-- the tables above are generated; what follows is kept when they are -->"


def kept_notes(path: Path) -> str:
    """The hand-written part of an existing report at ``path`` (after :data:`KEEP_BELOW`),
    or "" (no file yet, or one without the marker: nothing of it is the writer's own)."""
    if not path.is_file():
        return ""
    _, marker, notes = path.read_text(encoding="utf-8").partition(KEEP_BELOW)
    return notes if marker else ""


def report(results: dict[Key, dict[str, Any]], command: str, notes: str = "") -> str:
    """The Markdown report: one section per photo set, the stage timings, then ``notes``
    (:func:`kept_notes`) after the marker."""
    sets = list(dict.fromkeys(k[0] for k in results))
    lines = ["# Photos: recipes x pipelines x models", "",
             "Every row is `edge-evaluate` on one folder with one bundle (int8 TFLite, "
             "default flags: the manifest's temperature and suggested `min_confidence`) and "
             "one photo pipeline. `segment` is the default pipeline "
             f"(`{photo.pipeline_version()}`: "
             "three segmenters' cut-outs and their mirror images, the answers combined), "
             "`segment-3` and `segment-4` one cut-out each (colour models; the learned net), "
             "`dataset` the old one. Generated on this machine (2 shared x86 cores) by:", "",
             f"    {command}", "",
             "The inputs, from a checkout:", "",
             "    fmnist-train -o artifacts-tutorial && fmnist-export -a artifacts-tutorial "
             "--int8          # tutorial bundles",
             "    fmnist-train --recipe improved -o artifacts-improved && fmnist-export "
             "-a artifacts-improved --int8   # improved bundles",
             "    make bundles                                     "
             "# photo recipe → edge/bundles (shipped)",
             "    fmnist-render --split test -n 1000 --seed 0 -o rendered-test   "
             "# renders of TEST images", ""]
    for s in sets:
        lines += _set_section(s, {k: v for k, v in results.items() if k[0] == s})
    lines += _timing_section(results)
    return "\n".join(lines) + "\n" + KEEP_BELOW + (notes or "\n")


def _set_section(name: str, results: dict[Key, dict[str, Any]]) -> list[str]:
    first = next(iter(results.values()))
    lines = [f"## {name}: {first['labelled']} labelled photos, "
             f"{first['none_of_the_ten']} none-of-the-ten", ""]
    cols = ["recipe", "pipeline", "model", "accuracy", "mean conf right / wrong / none",
            "ECE", "min_conf", "unsure: right / none-of-ten", "no garment"]
    rows = []
    for (_, recipe, p, m), r in results.items():
        conf, unsure = r["mean_confidence"], r["unsure"]
        rows.append([recipe, p, m, _f(r["accuracy"], 3),
                     " / ".join(_f(conf[k]) for k in ("right", "wrong", "none_of_the_ten")),
                     _f(r["ece"], 3), _f(r["min_confidence"], 3),
                     f"{_f(unsure['right_unsure'])} / "
                     f"{_f(unsure['none_of_the_ten_unsure_or_no_garment'])}",
                     str(unsure["labelled_no_garment"] + unsure["none_of_the_ten_no_garment"])])
    lines += [tables.markdown(cols, rows, left=3), ""]
    classes = list(first["per_class"])
    rows = [[recipe, p, m, *(_f(r["per_class"][c]["accuracy"]) for c in classes)]
            for (_, recipe, p, m), r in results.items()]
    counts = ", ".join(f"{c} {first['per_class'][c]['photos']}" for c in classes)
    lines += [f"Per-class accuracy (photos per class: {counts}):", "",
              tables.markdown(["recipe", "pipeline", "model", *classes], rows, left=3), ""]
    return lines


def _timing_section(results: dict[Key, dict[str, Any]]) -> list[str]:
    rows = []
    for (s, recipe, p, m), r in results.items():
        t = r["time_ms"]
        rows.append([s, p, f"{recipe}/{m}",
                     *(f"{_f(t[k]['p50'])} / {_f(t[k]['p99'])}"
                       for k in ("decode", "preprocess", "inference", "total"))])
    return ["## Time per stage (ms per photo, p50 / p99)", "",
            tables.markdown(["set", "pipeline", "bundle", "decode", "preprocess", "inference",
                             "total"], rows, left=3), ""]


def _f(value: float | None, digits: int = 2) -> str:
    """Rounded, or a dash where there was nothing to measure."""
    return "–" if value is None else f"{value:.{digits}f}"


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
              help="NAME=FOLDER of labelled photos, as edge-evaluate reads (repeatable).")
@click.option("--pipeline", "pipelines", multiple=True, type=click.Choice(photo.METHODS),
              help="Photo pipelines to compare.  [default: every one but simple]")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Markdown file to write.")
def cli(bundle_args: tuple[str, ...], photo_args: tuple[str, ...], pipelines: tuple[str, ...],
        output: Path) -> None:
    """Score recipes x pipelines x models on labelled photo folders; write Markdown."""
    bundles = _pairs(bundle_args, "--bundles")
    folders = _pairs(photo_args, "--photos")
    cli_util.check_writable(output.parent)
    chosen = pipelines or tuple(m for m in photo.METHODS if m != "simple")
    results = measure(bundles, folders, chosen)
    command = "python -m fmnist_edge.benchmarks.photos " + " ".join(sys.argv[1:])
    atomic.write_text(output, report(results, command, kept_notes(output)))
    click.echo(f"wrote {output}", err=True)


def main() -> None:
    """Entry point."""
    sys.exit(cli_util.run(cli))


if __name__ == "__main__":  # pragma: no cover
    main()
