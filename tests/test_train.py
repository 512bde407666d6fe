"""fmnist-train on real data: architectures, a short real run, determinism, outputs."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from fmnist_edge.edge.cli_util import run
from fmnist_edge.train import models
from fmnist_edge.train.cli import cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("name", "params"), [("first", 52_650), ("second", 111_146)])
def test_parameter_counts_match_the_tutorial(name: str, params: int) -> None:
    model = models.build(name)
    assert model.count_params() == params == models.EXPECTED_PARAMS[name]
    widths = [layer.units for layer in model.layers if hasattr(layer, "units")]
    assert widths == [*models.ARCHITECTURES[name], 10]
    assert model.layers[-1].activation.__name__ == "softmax"


def test_unknown_model_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        models.build("third")


def test_quick_run_learns_and_writes_everything(quick_artifacts: Path) -> None:
    import keras

    metrics = json.loads((quick_artifacts / "metrics.json").read_text())
    assert set(metrics["models"]) == {"first", "second"}
    for name in ("first", "second"):
        m = metrics["models"][name]
        assert m["test_accuracy"] >= 0.80, f"{name}: {m['test_accuracy']}"
        assert m["params"] == models.EXPECTED_PARAMS[name]
        assert len(m["history"]["val_accuracy"]) == m["epochs_run"] == 5
        assert sum(map(sum, m["confusion_matrix"])) == 10000
        model = keras.saving.load_model(quick_artifacts / f"{name}.keras")
        assert model.count_params() == m["params"]
    for png in ("samples.png", "curves.png", "confusion_first.png", "confusion_second.png"):
        raw = (quick_artifacts / "plots" / png).read_bytes()
        assert raw[:8] == PNG_MAGIC
        width, height = struct.unpack(">II", raw[16:24])
        assert width > 300 and height > 300
    assert not [p for p in quick_artifacts.rglob(".*") if ".tmp" in p.name]


def test_same_seed_gives_identical_weights(tmp_path: Path) -> None:
    import keras

    args = ["--models", "first", "--epochs", "2", "--subset", "3000", "--quiet"]
    assert run(cli, ["-o", str(tmp_path / "a"), *args]) == 0
    assert run(cli, ["-o", str(tmp_path / "b"), *args]) == 0
    assert run(cli, ["-o", str(tmp_path / "c"), *args, "--seed", "1"]) == 0
    weights = [keras.saving.load_model(tmp_path / d / "first.keras").get_weights()
               for d in ("a", "b", "c")]
    assert all(np.array_equal(x, y) for x, y in zip(weights[0], weights[1], strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(weights[0], weights[2], strict=True))


def test_early_stopping_restores_best_epoch(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--models", "first", "--epochs", "30", "--subset", "3000", "--quiet",
            "--early-stopping", "--patience", "2"]
    assert run(cli, ["-o", str(tmp_path), *args]) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())["models"]["first"]
    assert m["epochs_run"] < 30
    assert m["epochs_run"] == m["best_epoch_by_val_loss"] + 2
    said = [ln for ln in capsys.readouterr().err.splitlines() if "stopped early" in ln]
    assert said == [f"first: stopped early after epoch {m['epochs_run']} of 30; "
                    f"kept epoch {m['best_epoch_by_val_loss']} (lowest validation loss)"]
