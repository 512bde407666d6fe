"""EdgeModel: which artifact and runtime a bundle resolves to, and the fallbacks.

On the committed "first" bundle (int8 TFLite and int8 ONNX).  A machine without a TFLite
runtime is made by hiding the runtime modules (``sys.modules[name] = None`` makes
``find_spec`` report them absent, exactly as on a machine where they are not installed).
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from fmnist_edge.edge import manifest as mf
from fmnist_edge.edge import runtimes, shipped
from fmnist_edge.edge.errors import BundleError, UserError
from fmnist_edge.edge.model import EdgeModel

TFLITE_MODULES = ("ai_edge_litert", "tflite_runtime")


@pytest.fixture()
def bundle(tmp_path: Path) -> Path:
    dst = tmp_path / "first"
    shutil.copytree(shipped.bundles_root() / "first", dst)
    return dst


def hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def mark_failed(bundle: Path, *files: str) -> None:
    """Record a failed export verification for ``files`` (what --keep-failed leaves)."""
    manifest = mf.load(bundle)
    arts = {n: dataclasses.replace(a, verification={**a.verification, "passed": False})
            if n in files else a for n, a in manifest.artifacts.items()}
    mf.write(dataclasses.replace(manifest, artifacts=arts))


def test_default_is_int8_tflite_in_the_preferred_runtime(bundle: Path) -> None:
    model = EdgeModel.open(bundle)
    assert model.artifact.file == "first-int8.tflite"
    tflite = [b for b in runtimes.PREFERENCE["tflite"] if runtimes.is_installed(b)]
    assert tflite, "no TFLite runtime installed"
    assert model.session.backend == tflite[0]
    probs = model.predict(np.zeros((3, 28, 28), np.uint8))
    assert probs.shape == (3, 10) and np.allclose(probs.sum(axis=1), 1.0, atol=0.02)


def test_a_named_backend_picks_its_format(bundle: Path) -> None:
    model = EdgeModel.open(bundle, backend="onnxruntime")
    assert (model.artifact.file, model.session.backend) == ("first-int8.onnx", "onnxruntime")


def test_without_a_tflite_runtime_the_onnx_file_is_used(bundle: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, *TFLITE_MODULES)
    model = EdgeModel.open(bundle)
    assert (model.artifact.file, model.session.backend) == ("first-int8.onnx", "onnxruntime")


def test_verified_artifacts_win_over_failed_ones(bundle: Path) -> None:
    mark_failed(bundle, "first-int8.tflite")
    assert EdgeModel.open(bundle).artifact.file == "first-int8.onnx"
    mark_failed(bundle, "first-int8.tflite", "first-int8.onnx")
    assert EdgeModel.open(bundle).artifact.file == "first-int8.tflite"  # failed, but runs


def test_nothing_runnable_is_one_clear_error(bundle: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, *TFLITE_MODULES, "onnxruntime")
    with pytest.raises(BundleError, match="no artifact this machine can run") as info:
        EdgeModel.open(bundle)
    assert "installed runtimes: none" in str(info.value)


def test_a_model_file_path_and_a_wrong_backend(bundle: Path) -> None:
    assert EdgeModel.open(bundle / "first-int8.onnx").session.backend == "onnxruntime"
    with pytest.raises(UserError, match=r"cannot run \.tflite models"):
        EdgeModel.open(bundle / "first-int8.tflite", backend="onnxruntime")
    with pytest.raises(BundleError, match="not in"):
        EdgeModel.open(bundle, artifact="first-float32.tflite")
