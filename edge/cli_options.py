"""Options every device command spells the same way: which model, which runtime, which photo
pipeline, when to say "unsure".

``edge-classify``, ``edge-evaluate`` and ``edge-serve`` take them from here, so a model is named
one way everywhere and a new runtime or pipeline shows up in every command at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

from fmnist_edge.edge import camera_source, photo, runtimes, shipped
from fmnist_edge.edge.errors import UserError
from fmnist_edge.edge.model import EdgeModel

F = TypeVar("F", bound=Callable[..., object])


def model_options(command: F) -> F:
    """``-m/--model`` (a shipped name, a bundle folder or a model file), ``-b/--backend`` and
    ``-t/--threads``, passed as ``model_arg``, ``backend`` and ``threads``."""
    for option in reversed((
        click.option("-m", "--model", "model_arg", default=None,
                     help=f"Bundle folder, model file in one, or a shipped bundle name "
                          f"(default: {shipped.DEFAULT_MODEL})."),
        click.option("-b", "--backend", type=click.Choice(sorted(runtimes.MODULES)),
                     default=None,
                     help="Runtime to use (default: best installed for the model file)."),
        click.option("-t", "--threads", type=click.IntRange(min=1), default=None,
                     help="Threads for the runtime."),
    )):
        command = option(command)
    return command


def answer_options(command: F) -> F:
    """``-p/--preprocess`` and ``--min-confidence``, passed as ``method`` and
    ``min_confidence``."""
    for option in reversed((
        click.option("-p", "--preprocess", "method", type=click.Choice(photo.METHODS),
                     default=photo.DEFAULT_METHOD, show_default=True, callback=_runnable,
                     help="segment: cut the garment out of a real photo with every "
                          "segmenter that runs here and combine the answers; segment-3 / "
                          "segment-4: one "
                          "segmenter alone (colour models / the learned net); dataset: "
                          "Fashion-MNIST's own conversion (product shots on plain "
                          "backgrounds); simple: the tutorial's resize and invert."),
        click.option("--min-confidence", type=click.FloatRange(0.0, 1.0), default=None,
                     help="Answer 'unsure' below this probability (default: the model's "
                          "suggested threshold from its manifest, if any; 0 never says "
                          "unsure)."),
    )):
        command = option(command)
    return command


def _runnable(ctx: click.Context, param: click.Parameter, method: str) -> str:
    """A pipeline asked for by name that cannot run here is a usage error, before any model
    is opened (:func:`photo.refusal`)."""
    reason = photo.refusal(method)
    if reason is not None:
        raise click.BadParameter(reason, ctx, param)
    return method


def camera_option(command: F) -> F:
    """``--camera [SOURCE]``, passed as ``camera`` (None without it, "auto" alone).

    A source that cannot name a camera (a missing video file or device path) is a usage
    error, exit 2, before any model is opened (:func:`camera_source.source_problem`); a
    camera that exists but fails to open or stops is the command's own failure.
    """
    return click.option(
        "--camera", "camera", is_flag=False, flag_value=camera_source.AUTO, default=None,
        callback=_camera_exists,
        help=f"Classify live frames: {camera_source.AUTO!r}, {camera_source.PICAMERA!r}, a "
             "device number or a video file.")(command)


def _camera_exists(ctx: click.Context, param: click.Parameter, source: str | None
                   ) -> str | None:
    problem = None if source is None else camera_source.source_problem(source)
    if problem is not None:
        raise click.BadParameter(f"{source}: {problem} (or use "
                                 f"{', '.join(map(repr, camera_source.NAMED_SOURCES))} "
                                 "or a device number)", ctx, param)
    return source


def check_input_shape(model: EdgeModel) -> EdgeModel:
    """Refuse a bundle whose network wants another image size than the photo pipeline makes
    (one line, exit 1), rather than a runtime error on the first image."""
    expected = model.manifest.preprocessing.size
    if expected != photo.SHAPE:
        raise UserError(f"{model.manifest.root}: the model expects {expected} images; "
                        f"this runner makes {photo.SHAPE}")
    return model
