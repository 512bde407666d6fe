"""Shared fixtures: the real Fashion-MNIST files and a short real training run.

``FMNIST_DATA_DIR`` defaults to ``../shared/data/fashion-mnist`` beside the checkout (the
read-only copy CI provides); tests never write there.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "fashion-mnist"

if not os.environ.get("FMNIST_DATA_DIR") and DEFAULT_DATA.is_dir():
    os.environ["FMNIST_DATA_DIR"] = str(DEFAULT_DATA)

#: Without TensorFlow (the edge-only venv of ``make test-edge``, or a Raspberry Pi) the
#: training and export suites cannot run; everything on the device path still does.
HAVE_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None
collect_ignore = [] if HAVE_TENSORFLOW else ["test_train.py", "test_train_cli.py",
                                             "test_export.py", "test_numpy_mlp.py",
                                             "test_recipes.py", "test_improved.py"]
#: The page test drives a real browser through selenium, installed with the [dev] extra in
#: make test's main venv; the edge-only venv mirrors a Pi, which runs no browser driver.
if importlib.util.find_spec("selenium") is None:
    collect_ignore.append("test_serve_browser.py")

#: A short run that still learns: 5 epochs on 20,000 training images reaches ~0.84.
QUICK_TRAIN_ARGS = ["--epochs", "5", "--subset", "20000", "--quiet"]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding the four official IDX gz files."""
    path = Path(os.environ["FMNIST_DATA_DIR"])
    if not (path / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.fail(f"Fashion-MNIST not found in {path}; set FMNIST_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def quick_artifacts(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """Both models trained briefly (real data, real Keras) into a fresh folder."""
    if not HAVE_TENSORFLOW:
        pytest.skip("needs TensorFlow (the [train] extra): edge-only environment")
    from fmnist_edge.edge.cli_util import run
    from fmnist_edge.train.cli import cli

    out = tmp_path_factory.mktemp("artifacts")
    code = run(cli, ["-o", str(out), *QUICK_TRAIN_ARGS])
    assert code == 0, "quick training run failed"
    return out
