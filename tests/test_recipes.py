"""Training recipes: the registry, ``--recipe photo`` end to end, and what the manifest keeps.

A small real run: the photo recipe on 1,500 training images with 300 renders, exported to an
int8 TFLite bundle, whose manifest must carry the recipe, the pipeline version and the
calibration fitted in training.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmnist_edge.edge import hashing
from fmnist_edge.edge import manifest as mf
from fmnist_edge.edge.cli_util import run
from fmnist_edge.export import bundle
from fmnist_edge.export.cli import cli as export_cli
from fmnist_edge.train import confidence, photo_recipe, recipes, rendered
from fmnist_edge.train.cli import cli as train_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("photo")
    mp = pytest.MonkeyPatch()
    mp.setenv(rendered.CACHE_VAR, str(out / "cache"))
    try:
        code = run(train_cli, ["-o", str(out), "--recipe", "photo", "--models", "first",
                               "--epochs", "3", "--subset", "1500", "--renders", "300",
                               "--quiet"])
    finally:
        mp.undo()
    assert code == 0
    return out


def test_registry_defaults_and_unknown_name() -> None:
    assert recipes.DEFAULT == "tutorial" and recipes.get("tutorial").epochs == 30
    assert recipes.get("photo").renders > 0
    with pytest.raises(ValueError, match="unknown recipe"):
        recipes.get("nonsense")


def test_tutorial_is_the_default_and_is_recorded(quick_artifacts: Path) -> None:
    metrics = json.loads((quick_artifacts / "metrics.json").read_text())["models"]
    for name, m in metrics.items():
        assert m["recipe"] == "tutorial" and m["config"]["recipe"] == "tutorial"
        assert m["keras_sha256"] == hashing.sha256_of(quick_artifacts / f"{name}.keras")
        assert "calibration" not in m


def test_photo_recipe_trains_renders_and_calibrates(photo_run: Path) -> None:
    m = json.loads((photo_run / "metrics.json").read_text())["models"]["first"]
    assert m["recipe"] == "photo" and m["pipeline_version"] == rendered.pipeline_version()
    assert m["keras_sha256"] == hashing.sha256_of(photo_run / "first.keras")
    # 70 % of 1,500 originals, two views of each, plus up to 300 renders (those where the
    # pipeline found a garment); a quarter as many rendered validation images, and a view
    # of each of those validation images
    views = photo_recipe.VIEW_COPIES * 1050
    assert 1050 + views + 200 <= m["train_images"] <= 1050 + views + 300
    assert 2 * 50 <= m["photo_val_images"] <= 2 * 75
    # the teacher ran (scaled to the short run: one epoch) and its lesson is recorded
    assert m["teacher"]["epochs"] == 1 and m["teacher"]["alpha"] == photo_recipe.ALPHA
    assert m["teacher"]["params"] > 100_000  # a CNN, not one of the shipped MLPs
    assert m["test_accuracy"] > 0.5  # learnt something in 3 short epochs
    assert 1 <= m["best_epoch_by_val_accuracy"] <= 3
    cal = m["calibration"]
    assert cal["temperature"] > 0 and 0 <= cal["min_confidence"] < 1
    assert cal["unsure_correct_share"] <= confidence.MAX_UNSURE_CORRECT
    assert list((photo_run / "cache").glob("pixels-*.npz"))


def test_manifest_carries_recipe_pipeline_and_calibration(photo_run: Path,
                                                          tmp_path: Path) -> None:
    code = run(export_cli, ["-a", str(photo_run), "-o", str(tmp_path), "--models", "first",
                            "--int8", "--format", "tflite", "--keep-failed"])
    assert code in (0, 1)
    manifest = mf.load(tmp_path / "bundles" / "first")
    trained = json.loads((photo_run / "metrics.json").read_text())["models"]["first"]
    assert manifest.recipe == mf.Recipe("photo", rendered.pipeline_version())
    cal, fitted = manifest.calibration, trained["calibration"]
    assert cal.temperature == fitted["temperature"] != 1.0
    assert cal.min_confidence == fitted["min_confidence"]
    assert cal.ece == fitted["ece_photo_val_after"]
    assert cal.ece_before == fitted["ece_photo_val_before"]
    assert cal.fitted_on == bundle.CALIBRATION_FITTED_ON


def test_metrics_of_another_model_file_are_not_trusted(photo_run: Path, tmp_path: Path) -> None:
    (tmp_path / "first.keras").write_bytes((photo_run / "first.keras").read_bytes() + b"")
    record = json.loads((photo_run / "metrics.json").read_text())
    record["models"]["first"]["keras_sha256"] = "0" * 64
    (tmp_path / "metrics.json").write_text(json.dumps(record))
    digest = hashing.sha256_of(tmp_path / "first.keras")
    assert bundle.training_record(tmp_path / "first.keras", "first", digest) == {}
    assert bundle.training_blocks({}) == {}
