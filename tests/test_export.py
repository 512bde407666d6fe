"""The export stage, end to end: real data, real converters, real device runtimes.

The quick ``first`` model is exported once per session with every precision; the tests then
inspect that bundle (copies of it when they need to damage or replace it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fmnist_edge.edge import dataset, hashing
from fmnist_edge.edge import manifest as mf
from fmnist_edge.edge.cli_util import run
from fmnist_edge.edge.errors import BundleError, UserError
from fmnist_edge.edge.manifest import artifact_filename
from fmnist_edge.edge.model import EdgeModel
from fmnist_edge.export import bundle, calibration, verify
from fmnist_edge.export.cli import cli
from fmnist_edge.train import rendered
from fmnist_edge.train.models import PIXEL_SCALE

pytestmark = pytest.mark.slow

ALL_ARTIFACTS = [artifact_filename("first", p, f) for p, f in (
    ("float32", "tflite"), ("float32", "onnx"), ("float16", "tflite"), ("dynamic", "tflite"),
    ("int8", "tflite"), ("int8", "onnx"), ("float32", "npz"), ("int8", "npz"))]
#: The runtime export verification runs each format in (the device's first choice).
VERIFY_BACKEND = {"tflite": "litert", "onnx": "onnxruntime", "npz": "numpy"}


@pytest.fixture(scope="module")
def exported(quick_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quick ``first`` model exported with all precisions; returns its bundle folder.

    ``--keep-failed`` so the bundle exists even if one artifact misses its threshold: the
    threshold tests below then say which one, instead of every test erroring.
    """
    out = tmp_path_factory.mktemp("export")
    code = run(cli, ["-a", str(quick_artifacts), "-o", str(out), "--models", "first", "--all",
                     "--keep-failed"])
    assert code in (0, 1)
    folder = out / "bundles" / "first"
    assert (folder / mf.MANIFEST_NAME).is_file()
    return folder


@pytest.fixture(scope="module")
def manifest(exported: Path) -> mf.Manifest:
    return mf.load(exported)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _copy_bundle(exported: Path, root: Path) -> Path:
    target = root / "bundles" / "first"
    shutil.copytree(exported, target)
    return target


def _cli(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """Run the console script in a fresh process, as a user would."""
    code = "from fmnist_edge.export.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)


def _assert_one_line_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, proc.stderr
    assert needle in errors[0]


# --- every format: converts, loads in its runtime, meets its thresholds -------------------


def test_bundle_lists_every_artifact(manifest: mf.Manifest) -> None:
    assert sorted(manifest.artifacts) == sorted(ALL_ARTIFACTS)


@pytest.mark.parametrize("filename", ALL_ARTIFACTS)
def test_artifact_meets_thresholds(manifest: mf.Manifest, filename: str) -> None:
    art = manifest.artifacts[filename]
    v = art.verification
    assert v["samples"] == 10_000
    assert v["backend"] == VERIFY_BACKEND[art.format]
    assert v["agreement"] >= verify.MIN_AGREEMENT[art.precision]
    if art.precision in verify.MAX_ACCURACY_DROP:
        assert v["accuracy_delta"] >= -verify.MAX_ACCURACY_DROP[art.precision]
    assert v["passed"] is True


@pytest.mark.parametrize("filename", ALL_ARTIFACTS)
def test_artifact_runs_on_device_path(exported: Path, filename: str) -> None:
    """Reopened from the published bundle, it reproduces the recorded accuracy."""
    model = EdgeModel.open(exported, artifact=filename)
    test = dataset.load_split("test")
    probs = model.predict(test.images)
    assert probs.shape == (10_000, 10) and probs.dtype == np.float32
    accuracy = float((probs.argmax(axis=1) == test.labels).mean())
    assert accuracy == model.artifact.verification["accuracy"]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=0.05)


def test_verification_flags_a_bad_artifact() -> None:
    """The comparison itself can fail: shuffled probabilities are caught."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 1000)
    probs = np.eye(10, dtype=np.float32)[labels]
    ref = verify.Reference(pixels=np.zeros((1000, 28, 28), np.uint8), labels=labels,
                           probabilities=probs)
    assert verify.compare(probs, ref, "float32", "x").passed
    assert not verify.compare(probs[::-1].copy(), ref, "int8", "x").passed
    assert verify.psnr(probs, probs) == verify.PSNR_CAP_DB


# --- format details -------------------------------------------------------------------------


def test_int8_tflite_has_int8_input_and_output(exported: Path, manifest: mf.Manifest) -> None:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(exported / "first-int8.tflite"))
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    assert inp["quantization"][0] > 0 and out["quantization"][0] > 0
    spec = manifest.artifacts["first-int8.tflite"]
    assert spec.input.dtype == "int8" and spec.input.quantized
    assert spec.input.scale == pytest.approx(inp["quantization"][0])
    assert spec.input.zero_point == inp["quantization"][1]
    assert spec.output.dtype == "int8" and spec.output.quantized
    assert spec.input.shape == (-1, 28, 28)


def test_float_tflite_has_float_io(exported: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    for precision in ("float32", "float16", "dynamic"):
        interp = Interpreter(model_path=str(exported / f"first-{precision}.tflite"))
        assert interp.get_input_details()[0]["dtype"] == np.float32
        assert interp.get_output_details()[0]["dtype"] == np.float32


@pytest.mark.parametrize("filename", ["first-float32.onnx", "first-int8.onnx"])
def test_onnx_valid_opset_and_dynamic_batch(exported: Path, filename: str) -> None:
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(exported / filename))
    onnx.checker.check_model(model, full_check=True)
    opset = {o.domain: o.version for o in model.opset_import}
    assert opset.get("", opset.get("ai.onnx", 0)) >= 17
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert not batch.HasField("dim_value") and batch.dim_param
    sess = ort.InferenceSession(str(exported / filename), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    for n in (1, 7):
        out = sess.run(None, {name: np.zeros((n, 28, 28), np.float32)})[0]
        assert out.shape == (n, 10)


def test_int8_onnx_is_qdq(exported: Path) -> None:
    import onnx

    model = onnx.load(str(exported / "first-int8.onnx"))
    ops = {node.op_type for node in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8_weights = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) >= 3  # the three Dense kernels


def test_per_channel_onnx_has_one_scale_per_output(quick_artifacts: Path, tmp_path: Path) -> None:
    import onnx

    from fmnist_edge.export.onnx import OnnxExporter

    source = bundle.load_model(quick_artifacts / "first.keras", "first")
    calib = calibration.load(50)
    target = tmp_path / "pc.onnx"
    OnnxExporter(per_channel=True).export(source.keras, "int8", calib, target)
    model = onnx.load(str(target))
    inits = {t.name: t for t in model.graph.initializer}
    scale_sizes = [int(np.prod(inits[n.input[1]].dims)) for n in model.graph.node
                   if n.op_type == "DequantizeLinear" and n.input[0] in inits
                   and inits[n.input[0]].data_type == onnx.TensorProto.INT8]
    assert 64 in scale_sizes and 32 in scale_sizes  # per output channel of each Dense
    assert not list(tmp_path.glob(".onnx-int8.*"))  # temporaries removed


# --- manifest ------------------------------------------------------------------------------


def test_manifest_contract(exported: Path, manifest: mf.Manifest, quick_artifacts: Path) -> None:
    raw = json.loads((exported / mf.MANIFEST_NAME).read_text())
    assert raw["format"] == mf.FORMAT and raw["version"] == 1 and manifest.model == "first"
    assert manifest.class_names == dataset.CLASS_NAMES
    assert "input" not in raw  # the unread legacy block is no longer written
    assert raw == manifest.to_json()  # what the exporter wrote is what the reader parses
    assert manifest.preprocessing.size == dataset.IMAGE_SHAPE
    assert manifest.preprocessing.scale == PIXEL_SCALE
    assert manifest.preprocessing.offset == 0.0
    assert manifest.preprocessing.polarity == "light-on-dark"
    assert raw["created"].endswith("Z")
    assert set(raw["tools"]) == set(bundle.TOOLS) and raw["tools"]["onnx"]
    assert manifest.recipe is not None and manifest.recipe.name == "tutorial"
    assert manifest.recipe.pipeline_version == rendered.pipeline_version()
    assert "calibration" not in raw  # the tutorial recipe fits none
    assert manifest.calibration == mf.Calibration()
    ref = raw["reference"]
    assert ref["keras_sha256"] == hashing.sha256_of(quick_artifacts / "first.keras")
    for name in [*manifest.artifacts, ref["predictions"]["file"]]:
        manifest.check_file(name)  # size and SHA-256 match
    assert {p.name for p in exported.iterdir()} == {
        *manifest.artifacts, mf.MANIFEST_NAME, mf.REFERENCE_FILE}


def test_reference_predictions(exported: Path, manifest: mf.Manifest) -> None:
    top1 = np.load(exported / mf.REFERENCE_FILE)
    assert top1.dtype == np.uint8 and top1.shape == (10_000,)
    labels = dataset.load_split("test").labels
    assert float((top1 == labels).mean()) == pytest.approx(
        manifest.reference.keras_test_accuracy, abs=1e-6)
    for art in manifest.artifacts.values():
        assert art.verification["keras_accuracy"] == pytest.approx(
            manifest.reference.keras_test_accuracy, abs=1e-6)


def test_corrupted_artifact_is_refused(exported: Path, tmp_path: Path) -> None:
    folder = _copy_bundle(exported, tmp_path)
    path = folder / "first-int8.tflite"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="SHA-256"):
        mf.load(folder).check_file(path.name)
    with pytest.raises(BundleError):
        EdgeModel.open(folder, artifact=path.name)


# --- atomicity: a failed export keeps the previous bundle --------------------------------


def test_failed_verification_keeps_old_bundle(exported: Path, quick_artifacts: Path,
                                              tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _copy_bundle(exported, tmp_path)
    before = _snapshot(folder)
    monkeypatch.setattr(verify, "passes", lambda *args: False)
    args = ["-a", str(quick_artifacts), "-o", str(tmp_path), "--models", "first", "--float32",
            "--format", "tflite"]
    assert run(cli, args) == 1
    assert _snapshot(folder) == before
    assert [p.name for p in folder.parent.iterdir()] == ["first"]  # no temporaries left
    # --keep-failed publishes it anyway, marked as failed
    assert run(cli, [*args, "--keep-failed"]) == 1
    new = mf.load(folder)
    assert list(new.artifacts) == ["first-float32.tflite"]
    assert new.artifacts["first-float32.tflite"].verification["passed"] is False


def test_corrupt_model_keeps_old_bundle(exported: Path, tmp_path: Path) -> None:
    folder = _copy_bundle(exported, tmp_path)
    before = _snapshot(folder)
    models = tmp_path / "models"
    models.mkdir()
    (models / "first.keras").write_bytes(os.urandom(5000))
    proc = _cli(["-a", str(models), "-o", str(tmp_path), "--models", "first"])
    _assert_one_line_error(proc, "not a Keras model file")
    assert proc.returncode == 1
    assert _snapshot(folder) == before


def test_json_output_is_clean(quick_artifacts: Path, tmp_path: Path,
                              capfd: pytest.CaptureFixture[str]) -> None:
    code = run(cli, ["-a", str(quick_artifacts), "-o", str(tmp_path), "--models", "first",
                     "--float32", "--format", "onnx", "--json"])
    out = capfd.readouterr().out
    result = json.loads(out)  # nothing but JSON on stdout, converter chatter included
    assert code == 0 and result["passed"] is True
    (b,) = result["bundles"]
    assert b["replaced"] and [a["file"] for a in b["artifacts"]] == ["first-float32.onnx"]
    assert (tmp_path / "bundles" / "first" / "first-float32.onnx").is_file()


# --- calibration ---------------------------------------------------------------------------


def test_calibration_is_balanced_seeded_and_from_train(monkeypatch: pytest.MonkeyPatch) -> None:
    splits: list[str] = []
    real = dataset.load_split

    def spy(split: str, download: bool = True, progress: Any = None) -> Any:
        splits.append(split)
        return real(split, download, progress)

    monkeypatch.setattr(dataset, "load_split", spy)
    a = calibration.load(300, seed=1)
    b = calibration.load(300, seed=1)
    c = calibration.load(300, seed=2)
    assert splits == ["train"] * 3
    train = real("train")
    np.testing.assert_array_equal(a.indices, b.indices)
    assert not np.array_equal(np.sort(a.indices), np.sort(c.indices))
    assert len(set(a.indices.tolist())) == 300
    np.testing.assert_array_equal(np.bincount(train.labels[a.indices], minlength=10),
                                  np.full(10, 30))
    np.testing.assert_array_equal(a.pixels, train.images[a.indices])
    x = next(a.samples())
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and 0.0 <= x.min() <= x.max() <= 1.0
    np.testing.assert_allclose(a.floats(), a.pixels.astype(np.float32) * PIXEL_SCALE)


def test_calibration_uneven_size_and_nonsense() -> None:
    labels = np.repeat(np.arange(10), 50)
    idx = calibration.balanced_indices(labels, 23, seed=0)
    counts = np.bincount(labels[idx], minlength=10)
    assert counts.sum() == 23 and counts.max() - counts.min() <= 1
    with pytest.raises(UserError):
        calibration.balanced_indices(labels, 5)
    with pytest.raises(UserError, match="no calibration data"):
        calibration.balanced_indices(labels, 600)
    with pytest.raises(UserError):
        calibration.load(0)


# --- bad input: one line on stderr, non-zero exit, no traceback, no bundle -----------------


def _save_model(path: Path, input_shape: tuple[int, ...], outputs: int) -> None:
    import keras

    model = keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                              keras.layers.Dense(outputs, activation="softmax")])
    model.save(path)


def test_model_interface_is_checked(tmp_path: Path) -> None:
    _save_model(tmp_path / "in.keras", (32, 32), 10)
    _save_model(tmp_path / "out.keras", (28, 28), 5)
    with pytest.raises(UserError, match="unexpected input shape"):
        bundle.load_model(tmp_path / "in.keras", "first")
    with pytest.raises(UserError, match="unexpected output shape"):
        bundle.load_model(tmp_path / "out.keras", "first")
    with zipfile.ZipFile(tmp_path / "zip.keras", "w") as zf:  # a zip, but no model inside
        zf.writestr("notes.txt", "hello")
    with pytest.raises(UserError, match="not a loadable Keras model"):
        bundle.load_model(tmp_path / "zip.keras", "first")


def test_cli_missing_model(tmp_path: Path) -> None:
    proc = _cli(["-a", str(tmp_path), "-o", str(tmp_path / "out")])
    _assert_one_line_error(proc, "no such model file")
    assert not (tmp_path / "out").exists()


#: Modules that take seconds to import; a mistyped path must not wait for them.
HEAVY_MODULES = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime")


def test_cli_missing_folder_fails_before_heavy_imports(tmp_path: Path) -> None:
    """A wrong ``-a`` is one line and exit 1, decided before any converter is imported."""
    code = ("import sys\nfrom fmnist_edge.edge.cli_util import run\n"
            "from fmnist_edge.export.cli import cli\n"
            "code = run(cli, sys.argv[1:])\n"
            f"print([m for m in {HEAVY_MODULES!r} if m in sys.modules])\n"
            "sys.exit(code)")
    missing = tmp_path / "nowhere"
    proc = subprocess.run([sys.executable, "-c", code, "-a", str(missing)], capture_output=True,
                          text=True, timeout=300)
    _assert_one_line_error(proc, f"{missing}: no such artifacts folder")
    assert proc.returncode == 1
    assert proc.stdout.strip() == "[]"  # none of them imported at the point of failure
    assert not missing.exists()


def test_cli_truncated_model(quick_artifacts: Path, tmp_path: Path) -> None:
    data = (quick_artifacts / "first.keras").read_bytes()
    (tmp_path / "first.keras").write_bytes(data[: len(data) // 3])
    proc = _cli(["-a", str(tmp_path), "--models", "first"])
    _assert_one_line_error(proc, "not a Keras model file")
    assert not (tmp_path / "bundles" / "first").exists()


def test_cli_wrong_input_shape(tmp_path: Path) -> None:
    _save_model(tmp_path / "first.keras", (32, 32), 10)
    proc = _cli(["-a", str(tmp_path), "--models", "first", "--float32", "--format", "tflite"])
    _assert_one_line_error(proc, "unexpected input shape")
    assert not (tmp_path / "bundles" / "first").exists()


def test_cli_unwritable_output(quick_artifacts: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = _cli(["-a", str(quick_artifacts), "-o", str(blocker)])
    _assert_one_line_error(proc, "cannot write there")
    if os.geteuid() != 0:  # root writes through permissions; the file case covers it
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        proc = _cli(["-a", str(quick_artifacts), "-o", str(locked)])
        _assert_one_line_error(proc, "cannot write there")


@pytest.mark.parametrize("size", ["0", "-5"])
def test_cli_calibration_size_nonsense(quick_artifacts: Path, tmp_path: Path, size: str) -> None:
    proc = _cli(["-a", str(quick_artifacts), "-o", str(tmp_path), "--calibration-size", size])
    _assert_one_line_error(proc, "--calibration-size")
    assert proc.returncode == 2
    assert not (tmp_path / "bundles").exists()


def test_cli_no_calibration_data(quick_artifacts: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no-data"
    empty.mkdir()
    proc = _cli(["-a", str(quick_artifacts), "-o", str(tmp_path / "out"), "--models", "first",
                 "--int8"], FMNIST_DATA_DIR=str(empty), XDG_CACHE_HOME=str(tmp_path / "cache"),
                http_proxy="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
    _assert_one_line_error(proc, "train-images")
    assert proc.returncode == 1
    assert not (tmp_path / "out" / "bundles" / "first").exists()


# --- the numpy runtime's .npz ---------------------------------------------------------------


def test_npz_is_plain_arrays_and_int8_holds_int8(exported: Path) -> None:
    """Readable with allow_pickle=False; int8 kernels really are int8 with per-channel scales."""
    from fmnist_edge.edge import npz

    with np.load(exported / "first-int8.npz", allow_pickle=False) as f:
        kernels = [f[npz.kernel_key(i)] for i in range(len(f[npz.ACTIVATIONS_KEY]))]
        scales = [f[npz.kernel_scale_key(i)] for i in range(len(kernels))]
        assert [str(a) for a in f[npz.ACTIVATIONS_KEY]] == ["relu", "relu", "softmax"]
    assert all(k.dtype == np.int8 and s.shape == (k.shape[1],) for k, s in zip(kernels, scales,
                                                                              strict=True))
    with np.load(exported / "first-float32.npz", allow_pickle=False) as f:
        assert f[npz.kernel_key(0)].dtype == np.float32 and npz.INPUT_SCALE not in f.files


def test_npz_export_is_byte_identical_and_refuses_non_mlps(quick_artifacts: Path,
                                                           tmp_path: Path) -> None:
    import keras

    from fmnist_edge.export.base import ExportError
    from fmnist_edge.export.npz import NpzExporter

    source = bundle.load_model(quick_artifacts / "first.keras", "first")
    calib = calibration.load(50)
    paths = [tmp_path / f"{i}.npz" for i in range(2)]
    for path in paths:
        NpzExporter().export(source.keras, "int8", calib, path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    conv = keras.Sequential([keras.Input((28, 28)), keras.layers.Reshape((28, 28, 1)),
                             keras.layers.Conv2D(2, 3), keras.layers.Flatten(),
                             keras.layers.Dense(10, activation="softmax")])
    with pytest.raises(ExportError, match="Flatten/Dense MLPs only, not Reshape"):
        NpzExporter().export(conv, "float32", calib, tmp_path / "conv.npz")
