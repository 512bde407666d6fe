"""What every fmnist-edge command shares: one-line errors and exit codes, never tracebacks.

Exit codes: 0 success, 1 an input or check failed, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import click

from fmnist_edge.edge.errors import UserError

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def run(command: click.Command, args: list[str] | None = None) -> int:
    """Run a click command; turn every expected failure into one stderr line and a code."""
    prog = command.name or Path(sys.argv[0]).name
    try:
        result = command.main(args=args, prog_name=prog, standalone_mode=False)
    except click.UsageError as exc:
        hint = f"try '{prog} --help'"
        click.echo(f"{prog}: error: {exc.format_message()} ({hint})", err=True)
        return EXIT_USAGE
    except click.Abort:
        click.echo(f"{prog}: interrupted", err=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo(f"{prog}: interrupted", err=True)
        return EXIT_INTERRUPTED
    except UserError as exc:
        click.echo(f"{prog}: error: {exc}", err=True)
        return exc.exit_code
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"{prog}: error: {where}{exc.strerror or exc}", err=True)
        return EXIT_FAILED
    except ImportError as exc:  # an optional part (TensorFlow, matplotlib, cv2) is missing
        missing = exc.name or str(exc)
        click.echo(f"{prog}: error: {missing} is not installed; {_extra_hint(prog)}", err=True)
        return EXIT_FAILED
    except MemoryError:
        click.echo(f"{prog}: error: out of memory", err=True)
        return EXIT_FAILED
    return result if isinstance(result, int) else 0


def _extra_hint(prog: str) -> str:
    """Which extra brings what a command needs."""
    extra = {"fmnist-train": "train", "fmnist-export": "export",
             "fmnist-compare": "export", "edge-serve": "serve"}.get(prog, "all")
    return f"pip install 'fmnist-edge[{extra}]'"


def progress(done: float, total: float, label: str, log_steps: bool = False) -> None:
    """One progress bar for every command, on stderr.

    On a terminal it is redrawn in place and ends with a newline when ``done == total``.
    In a log (not a terminal) it prints only the final line, or one line per call with
    ``log_steps`` (for a few long steps, such as benchmark jobs).
    """
    finished = done >= total
    interactive = sys.stderr.isatty()
    if not interactive and not (finished or log_steps):
        return
    width = 24
    filled = int(width * min(done / total, 1.0)) if total else width
    line = f"[{'#' * filled}{'.' * (width - filled)}] {label}"
    if interactive:
        click.echo(f"\r{line:<79}", err=True, nl=finished)
    else:
        click.echo(line, err=True)


def comma_choices(allowed: Iterable[str], what: str = "model"
                  ) -> Callable[..., tuple[str, ...]]:
    """A click callback: ``"first,second"`` → ``("first", "second")``, each one checked."""
    choices = tuple(allowed)

    def parse(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
        bad = [n for n in names if n not in choices]
        if bad or not names:
            raise click.BadParameter(f"unknown {what} {', '.join(bad) or '(none)'}; choose from "
                                     f"{', '.join(choices)}", ctx, param)
        return names

    return parse


def check_writable(folder: Path) -> None:
    """Fail fast, before any long work, if ``folder`` cannot be created or written."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"{folder}: cannot write there ({exc.strerror or exc})") from exc
