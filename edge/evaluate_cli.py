"""``edge-evaluate``: how right is the device about a folder of labelled photos, and why not.

    edge-evaluate photos/                         # labels.tsv or class-named sub-folders
    edge-evaluate photos/ --json                  # every figure as one JSON object
    edge-evaluate photos/ -o report/              # + report.md and contact_sheet.png
    edge-evaluate photos/ --preprocess dataset    # compare photo pipelines

Exit codes: 0 evaluated, 1 a photo or the folder failed, 2 usage error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from fmnist_edge.edge import cli_options, cli_util, evaluate, labelled, shipped
from fmnist_edge.edge import evaluation_report as report
from fmnist_edge.edge.errors import UserError
from fmnist_edge.edge.model import EdgeModel

EXAMPLES = """\b
Examples:
  edge-evaluate photos/
  edge-evaluate photos/ --model first --json
  edge-evaluate photos/ -o report/
  edge-evaluate photos/ --preprocess dataset --min-confidence 0.6

\b
FOLDER holds labels.tsv (tab-separated, header row: path, label [0-9, -1 = none of the
ten] and/or class) or sub-folders named after classes (Shirt/, ankle-boot/, none/).

Exit codes: 0 evaluated, 1 a photo or the folder failed, 2 usage error."""


@click.command(name="edge-evaluate", context_settings={"help_option_names": ["-h", "--help"]},
               epilog=EXAMPLES)
@click.argument("folder", type=click.Path(path_type=Path))
@cli_options.model_options
@cli_options.answer_options
@click.option("--json", "as_json", is_flag=True, help="Print every figure as one JSON object.")
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Write report.md, contact_sheet.png and summary.json in this folder.")
def cli(folder: Path, model_arg: str | None, backend: str | None, threads: int | None,
        method: str, min_confidence: float | None, as_json: bool, out_dir: Path | None) -> int:
    """Evaluate a model on a folder of labelled photos (see FOLDER below)."""
    if out_dir is not None:
        cli_util.check_writable(out_dir)
    model = cli_options.check_input_shape(
        EdgeModel.open(shipped.resolve_model_arg(model_arg), backend, threads))
    photos = labelled.read_folder(folder, model.class_names)
    results = evaluate.run(model, photos, method, min_confidence,
                           lambda done, total: cli_util.progress(done, total,
                                                                 f"{done}/{report.photos(total)}"))
    for result in results:
        if result.error:
            click.echo(f"edge-evaluate: {result.error}", err=True)
    summary = evaluate.summarise(results, model, method, min_confidence)
    if out_dir is not None:
        md, sheet = report.write(results, summary, str(folder), out_dir)
        summary = {**summary, "report": str(md), "contact_sheet": str(sheet)}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(report.text(summary, str(folder)))
        if out_dir is not None:
            click.echo(f"\nwrote {summary['report']} and {summary['contact_sheet']}")
    if summary["labelled"] + summary["none_of_the_ten"] == 0:
        raise UserError(f"{folder}: no photo could be decoded")
    return cli_util.EXIT_FAILED if summary["failed"] else 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli_util.run(cli))


if __name__ == "__main__":  # pragma: no cover
    main()
