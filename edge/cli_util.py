"""What every fmnist-edge command shares: one-line errors and exit codes, never tracebacks.

Exit codes: 0 success, 1 an input or check failed, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
import tempfile
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
    except MemoryError:
        click.echo(f"{prog}: error: out of memory", err=True)
        return EXIT_FAILED
    return result if isinstance(result, int) else 0


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
