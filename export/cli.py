"""``fmnist-export``: trained Keras models → verified, quantised TFLite/ONNX/numpy bundles.

    fmnist-export                                  # ./artifacts/{first,second}.keras, all
    fmnist-export --int8                           # int8 TFLite, ONNX and .npz only
    fmnist-export --float16 --dynamic --format tflite --models first
    fmnist-export -a /tmp/full -o /tmp/out --all --per-channel --json

Bundles go to ``<output>/bundles/<model>/``.  Every artifact is verified on the full test
set through the device runtime; if any misses its threshold the exit code is 1 and the
previous bundle stays in place (unless ``--keep-failed``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from fmnist_edge.edge import cli_util
from fmnist_edge.edge import manifest as mf
from fmnist_edge.export import bundle
from fmnist_edge.export.base import PRECISIONS
from fmnist_edge.export.calibration import DEFAULT_SIZE
from fmnist_edge.train.models import ARCHITECTURES

FORMATS = ("tflite", "onnx", "npz")


@click.command(name="fmnist-export", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-a", "--artifacts", "artifacts", type=click.Path(path_type=Path),
              default=mf.DEFAULT_ARTIFACTS, show_default=True,
              help="Folder holding the trained <model>.keras files.")
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), default=None,
              help="Bundles go to <output>/bundles/<model>/.  [default: the artifacts folder]")
@click.option("--models", "names", default=",".join(ARCHITECTURES), show_default=True,
              callback=cli_util.comma_choices(ARCHITECTURES),
              help=f"Comma-separated models to export ({', '.join(ARCHITECTURES)}).")
@click.option("--float32", "float32", is_flag=True, help="Export float32 (TFLite, ONNX, .npz).")
@click.option("--float16", "float16", is_flag=True, help="Export float16 weights (TFLite).")
@click.option("--dynamic", "dynamic", is_flag=True, help="Export dynamic-range int8 (TFLite).")
@click.option("--int8", "int8", is_flag=True,
              help="Export full-integer int8 (TFLite int8 in/out, ONNX static QDQ, "
                   ".npz for numpy).")
@click.option("--all", "all_", is_flag=True, help="All precisions (the default with none).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Only this format (npz: weights for the numpy runtime).  [default: all]")
@click.option("--calibration-size", type=click.IntRange(min=10), default=DEFAULT_SIZE,
              show_default=True, help="Training images (class-balanced) that calibrate int8.")
@click.option("--per-channel", is_flag=True, help="Per-channel int8 weight scales in ONNX.")
@click.option("--keep-failed", is_flag=True,
              help="Replace the bundle even if an artifact fails verification.")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON, not a table.")
def cli(artifacts: Path, output: Path | None, names: tuple[str, ...], float32: bool, float16: bool,
        dynamic: bool, int8: bool, all_: bool, fmt: str | None, calibration_size: int,
        per_channel: bool, keep_failed: bool, as_json: bool) -> int:
    """Export, verify and bundle the trained Fashion-MNIST models for the device."""
    chosen = {"float32": float32, "float16": float16, "dynamic": dynamic, "int8": int8}
    precisions = _precisions(chosen, all_)
    formats = (fmt,) if fmt else FORMATS
    sources = {name: mf.keras_file(artifacts, name) for name in names}
    for path in sources.values():  # cheap checks first: the exporters import onnx(runtime)
        bundle.check_model_file(path)
    steps = bundle.export_steps(bundle.make_exporters(formats, per_channel), precisions)
    if not steps:
        raise click.UsageError(f"nothing to export: {'/'.join(formats)} has no "
                               f"{'/'.join(precisions)} precision")
    output = output if output is not None else artifacts
    cli_util.check_writable(output / mf.BUNDLES_DIR)  # creates it: only once all is known good
    reports = _export(sources, steps, calibration_size, keep_failed, output)
    if as_json:
        click.echo(json.dumps({"passed": all(r.passed for r in reports),
                               "bundles": [r.to_json() for r in reports]}, indent=2))
    else:
        _print_table(reports)
    return 0 if all(r.passed for r in reports) else cli_util.EXIT_FAILED


def _export(sources: dict[str, Path], steps: list[bundle.ExportStep], calibration_size: int,
            keep_failed: bool, output: Path) -> list[bundle.BundleReport]:
    """Data first, then every model loaded and checked, then the long work per model."""
    from fmnist_edge.edge import dataset
    from fmnist_edge.export import calibration

    calib = calibration.load(calibration_size, progress=cli_util.progress)
    test = dataset.load_split("test", progress=cli_util.progress)
    models = [bundle.load_model(path, name) for name, path in sources.items()]
    reports = []
    for source in models:
        ref = bundle.reference(source, test.images, test.labels, calib.preprocessing)
        reports.append(bundle.build(source, steps, calib, ref, output, keep_failed))
    return reports


def _print_table(reports: list[bundle.BundleReport]) -> None:
    """The verification table, then one line per bundle on what happened to it."""
    from fmnist_edge.export.verify import table

    click.echo(table([row for r in reports for row in r.rows]))
    for r in reports:
        sizes = {row["file"]: row["bytes"] for row in r.rows}
        ratio = ""
        f32 = mf.artifact_filename(r.model, "float32", "tflite")
        i8 = mf.artifact_filename(r.model, "int8", "tflite")
        if f32 in sizes and i8 in sizes:
            ratio = f"; int8 TFLite is {100 * sizes[i8] / sizes[f32]:.0f}% of float32"
        kept = " (previous bundle kept)" if r.folder.exists() else ""
        status = "written" if r.replaced else f"NOT written{kept}"
        verdict = "all checks passed" if r.passed else "verification FAILED"
        click.echo(f"{r.model}: {verdict}; {r.folder} {status}{ratio}")


def _precisions(chosen: dict[str, bool], all_: bool) -> tuple[str, ...]:
    """The flags that were given, in canonical order; none (or --all) means every one."""
    picked = tuple(p for p in PRECISIONS if chosen[p])
    return PRECISIONS if all_ or not picked else picked


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli_util.run(cli))


if __name__ == "__main__":  # pragma: no cover
    main()
