"""Atomic folder swaps: an interrupted swap is repaired, a failed build changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmnist_edge.edge import atomic


def test_a_swap_that_died_midway_is_restored_on_the_next_run(tmp_path: Path) -> None:
    """A crash between the two renames leaves only ``.<name>.old``; the next call puts it
    back before anything else, so even a failing next build finds the old bundle."""
    target = tmp_path / "first"
    parked = tmp_path / ".first.old"
    parked.mkdir()
    (parked / "manifest.json").write_text("old")
    with pytest.raises(RuntimeError), atomic.atomic_dir(target) as tmp:
        (tmp / "manifest.json").write_text("new")
        raise RuntimeError("build failed")
    assert (target / "manifest.json").read_text() == "old"
    assert not parked.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first"]  # no temporaries left


def test_a_successful_swap_replaces_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "first"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    with atomic.atomic_dir(target) as tmp:
        (tmp / "manifest.json").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["manifest.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first"]


def test_an_old_folder_beside_a_live_one_is_not_restored(tmp_path: Path) -> None:
    """Only a missing target is repaired: a leftover .old never overwrites a live bundle."""
    target = tmp_path / "first"
    target.mkdir()
    (target / "manifest.json").write_text("live")
    (tmp_path / ".first.old").mkdir()
    with pytest.raises(KeyboardInterrupt), atomic.atomic_dir(target):
        raise KeyboardInterrupt
    assert (target / "manifest.json").read_text() == "live"
