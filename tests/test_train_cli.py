"""fmnist-train as a user runs it: help, bad options and bad data give one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def fmnist_train(*args: str, env: dict[str, str] | None = None
                 ) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a fresh process."""
    code = "from fmnist_edge.train.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The error must be a single stderr line and never a traceback."""
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_help_lists_options() -> None:
    proc = fmnist_train("--help")
    assert proc.returncode == 0
    for flag in ("--epochs", "--batch-size", "--models", "--seed", "--subset",
                 "--early-stopping", "--output"):
        assert flag in proc.stdout


@pytest.mark.parametrize(("args", "needle"), [
    (["--epochs", "-3"], "--epochs"),
    (["--models", "third"], "unknown model third"),
    (["--batch-size", "zero"], "--batch-size"),
    (["--no-such-flag"], "no-such-flag"),
    (["--recipe", "photo", "--early-stopping"], "--early-stopping is for the tutorial recipe"),
])
def test_nonsense_options_are_usage_errors(args: list[str], needle: str, tmp_path: Path) -> None:
    proc = fmnist_train("-o", str(tmp_path / "out"), *args)
    assert proc.returncode == 2
    assert needle in one_line_error(proc)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_missing_data_folder(tmp_path: Path) -> None:
    env = {"FMNIST_DATA_DIR": str(tmp_path / "missing"), "XDG_CACHE_HOME": str(tmp_path / "c"),
           "FMNIST_NO_DOWNLOAD": "1"}
    proc = fmnist_train("-o", str(tmp_path / "out"), "--epochs", "1", env=env)
    assert proc.returncode == 1
    line = one_line_error(proc)
    assert "not found" in line and "FMNIST_DATA_DIR" in line
    assert not list((tmp_path / "out").glob("*.keras"))


def test_corrupted_data_file_is_named(tmp_path: Path, data_dir: Path) -> None:
    for f in data_dir.glob("*.gz"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    victim = tmp_path / "train-labels-idx1-ubyte.gz"
    victim.write_bytes(victim.read_bytes()[:-10] + b"\x00" * 10)
    proc = fmnist_train("-o", str(tmp_path / "out"), "--epochs", "1",
                        env={"FMNIST_DATA_DIR": str(tmp_path)})
    assert proc.returncode == 1
    assert "train-labels-idx1-ubyte.gz" in one_line_error(proc)


def test_unwritable_output_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = fmnist_train("-o", str(blocker / "out"), "--epochs", "1")
    assert proc.returncode == 1
    assert "cannot write" in one_line_error(proc)
    assert blocker.read_text() == "not a folder"
