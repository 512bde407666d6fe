"""``edge-classify``: classify image files or camera frames on the device, no TensorFlow.

    edge-classify shirt.jpg                      # shipped int8 model, one line per image
    edge-classify photos/ --recursive --top-k 3  # folders, globs and - (stdin) work too
    edge-classify 'shots/*.png' --json           # JSON lines: path, top_k, latency_ms, pipeline
    edge-classify --camera --frames 100          # Pi camera (Picamera2) or USB webcam
    edge-classify --camera clip.mp4 --save-frames out/
    edge-classify shirt.jpg --min-confidence 0.6 # below 0.6 the answer is "unsure"

A photo in which nothing stands out from the background answers "no garment found".

Exit codes: 0 all classified, 1 some input failed, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import click

from fmnist_edge.edge import cli_options, cli_util, inputs, photo, shipped
from fmnist_edge.edge.classify import Prediction, classify
from fmnist_edge.edge.errors import UserError
from fmnist_edge.edge.model import EdgeModel

EXAMPLES = """\b
Examples:
  edge-classify shirt.jpg
  edge-classify photos/ --recursive --top-k 3
  edge-classify 'shots/*.png' --json
  cat shoe.png | edge-classify -
  edge-classify --camera --frames 100
  edge-classify --camera clip.mp4 --save-frames annotated/
  edge-classify shirt.jpg --min-confidence 0.6
  edge-classify shirt.jpg --preprocess dataset

A photo in which nothing stands out from the background answers "no garment found"; an
answer less likely than --min-confidence answers "unsure" (JSON keeps the top-k).

Exit codes: 0 all classified, 1 some input failed, 2 usage error, 130 interrupted."""


@click.command(name="edge-classify", context_settings={"help_option_names": ["-h", "--help"]},
               epilog=EXAMPLES)
@click.argument("images", nargs=-1)
@cli_options.model_options
@click.option("-k", "--top-k", "k", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("-r", "--recursive", is_flag=True, help="Descend into sub-folders.")
@cli_options.answer_options
@cli_options.camera_option
@click.option("--frames", type=click.IntRange(min=1), default=None,
              help="Stop the camera after N frames (default: until Ctrl-C).")
@click.option("--save-frames", type=click.Path(path_type=Path), default=None,
              help="Save annotated camera frames as PNGs in this folder.")
@click.option("--quiet", "-q", is_flag=True, help="No summary line.")
def cli(images: tuple[str, ...], model_arg: str | None, backend: str | None,
        threads: int | None, k: int, as_json: bool, recursive: bool, method: str,
        min_confidence: float | None, camera: str | None, frames: int | None,
        save_frames: Path | None, quiet: bool) -> int:
    """Classify Fashion-MNIST-style images (files, folders, globs, - for stdin) or frames."""
    if camera is None and not images:
        raise click.UsageError("give at least one image, folder or pattern (or --camera)")
    if camera is not None and images:
        raise click.UsageError("--camera takes no image arguments")
    model = cli_options.check_input_shape(
        EdgeModel.open(shipped.resolve_model_arg(model_arg), backend, threads))
    k = min(k, len(model.class_names))
    if camera is not None:
        if save_frames is not None:
            cli_util.check_writable(save_frames)
        return _run_camera(model, camera, method, k, min_confidence, as_json, frames,
                           save_frames)
    return _run_files(model, images, recursive, method, k, min_confidence, as_json, quiet)


def _emit(pred: Prediction, as_json: bool, method: str) -> None:
    click.echo(json.dumps(pred.to_json(photo.pipeline_version(method))) if as_json
               else pred.line())


def _error(name: str, reason: str) -> None:
    click.echo(f"edge-classify: {name}: {reason}", err=True)


def _run_files(model: EdgeModel, args: tuple[str, ...], recursive: bool, method: str,
               k: int, min_confidence: float | None, as_json: bool, quiet: bool) -> int:
    """Classify each input in turn; a bad one is reported and the rest still run."""
    failed = 0
    done: list[Prediction] = []
    for item in inputs.expand(args, recursive):
        if isinstance(item, inputs.Issue):
            _error(item.name, item.reason)
            failed += item.fatal
            continue
        try:
            img = photo.open_image(item.source, item.name)
            pred = classify(model, photo.to_views(img, method), item.name, k, min_confidence)
        except UserError as exc:
            click.echo(f"edge-classify: {exc}", err=True)
            failed += 1
            continue
        _emit(pred, as_json, method)
        done.append(pred)
    if not quiet and len(done) + failed > 1:
        _summary(done, failed, model, method)
    return cli_util.EXIT_FAILED if failed else 0


def _summary(done: list[Prediction], failed: int, model: EdgeModel, method: str) -> None:
    """One stderr line: counts, the most common classes, median latency, what ran."""
    counts = Counter(p.answer for p in done).most_common(3)
    common = ", ".join(f"{c} {n}" for c, n in counts)
    lat = sorted(p.latency_ms for p in done if p.status != "none")
    median = f"{lat[len(lat) // 2]:.3f} ms" if lat else "n/a"
    click.echo(f"{len(done)} classified, {failed} failed; {common or 'no results'}; "
               f"median inference {median} ({model.artifact.file}, {model.session.backend}, "
               f"pipeline {photo.pipeline_version(method)})",
               err=True)


def _run_camera(model: EdgeModel, source: str, method: str, k: int,
                min_confidence: float | None, as_json: bool, limit: int | None,
                save_dir: Path | None) -> int:
    """Classify frames until Ctrl-C, the end of a video file, or ``limit`` frames."""
    from fmnist_edge.edge import camera

    count = 0
    try:
        with camera.open_camera(source) as frames:
            for frame in frames:
                count += 1
                pred = classify(model, photo.frame_to_views(frame, method), f"frame {count}", k,
                                min_confidence)
                if as_json:
                    _emit(pred, as_json, method)
                else:
                    click.echo(f"{pred.line()}  {pred.latency_ms:.2f} ms")
                if save_dir is not None:
                    camera.save_frame(camera.annotate(frame, pred.line()),
                                      save_dir / f"frame_{count:06d}.png")
                if limit is not None and count >= limit:
                    break
    except KeyboardInterrupt:
        click.echo(f"stopped after {count} frames", err=True)
    if not count:
        raise UserError(f"camera {source}: delivered no frames")
    return 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli_util.run(cli))


if __name__ == "__main__":  # pragma: no cover
    main()
