"""The photo report on a tiny rendered folder with the shipped bundles: every cell filled."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmnist_edge.benchmarks import photos
from fmnist_edge.edge import shipped
from fmnist_edge.edge.cli_util import run
from fmnist_edge.train import render_cli, rendered


def test_report_has_a_row_per_recipe_pipeline_model(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     data_dir: Path) -> None:
    monkeypatch.setenv(rendered.CACHE_VAR, str(tmp_path / "cache"))
    assert run(render_cli.cli, ["-n", "10", "-o", str(tmp_path / "set")]) == 0
    out = tmp_path / "PHOTOS.md"
    # A report written before, with a write-up below the generated tables.
    out.write_text("# old tables\n" + photos.KEEP_BELOW + "\n\n## A write-up\n\nkept\n")
    code = run(photos.cli, ["--bundles", f"shipped={shipped.bundles_root()}",
                            "--photos", f"tiny={tmp_path / 'set'}", "--pipeline", "dataset",
                            "--pipeline", "segment", "-o", str(out)])
    assert code == 0
    text = out.read_text()
    assert "## tiny: 10 labelled photos, 0 none-of-the-ten" in text
    rows = [ln for ln in text.splitlines() if ln.startswith("| shipped |")]
    assert len(rows) == 2 * 2 * 2  # (results + per class) x 2 pipelines x 2 models
    timing = [ln for ln in text.splitlines() if ln.startswith("| tiny |")]
    assert len(timing) == 4 and all("–" not in ln.split("|")[4] for ln in timing)
    # Regenerating replaced the tables and kept the write-up, once, after them.
    assert "# old tables" not in text
    assert text.count(photos.KEEP_BELOW) == 1 and text.endswith("\n\n## A write-up\n\nkept\n")
    assert text.index("| tiny |") < text.index(photos.KEEP_BELOW)


def test_a_report_without_the_marker_keeps_nothing(tmp_path: Path) -> None:
    """Only text after the marker is the writer's; a file without one is all generated."""
    old = tmp_path / "PHOTOS.md"
    old.write_text("# Photos\n\n| a | b |\n")
    assert photos.kept_notes(old) == ""
    assert photos.kept_notes(tmp_path / "missing.md") == ""


def test_bad_pair_is_a_usage_error(tmp_path: Path) -> None:
    code = run(photos.cli, ["--bundles", "nonsense", "--photos", "a=b", "-o",
                            str(tmp_path / "x.md")])
    assert code == 2
