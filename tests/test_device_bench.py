"""``edge-bench`` on a freshly exported bundle: real data, real runtimes, no timing asserts.

Each test checks something that can fail: statistics in order, run counts honoured,
accuracy equal to one computed here independently, every installed artifact x runtime
present, reports written, and one-line errors with the documented exit codes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fmnist_edge.benchmarks import bench_cli
from fmnist_edge.edge import cli_util, dataset, runtimes, shipped
from fmnist_edge.edge import manifest as mf
from fmnist_edge.edge.model import EdgeModel

RUNS = 40
FAST = ["--runs", str(RUNS), "--warmup", "5", "--batch", "32", "--threads", "1"]


@pytest.fixture(scope="module")
def bundle(quick_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quick-trained ``first`` model exported with every precision and format."""
    from fmnist_edge.export.cli import cli as export_cli

    out = tmp_path_factory.mktemp("bench-export")
    code = cli_util.run(export_cli, ["-a", str(quick_artifacts), "-o", str(out),
                                     "--models", "first", "--all", "--keep-failed", "--json"])
    path = out / "bundles" / "first"
    assert (path / mf.MANIFEST_NAME).is_file(), f"export failed (exit {code})"
    return path


@pytest.fixture()
def shipped_bundle(tmp_path: Path) -> Path:
    """A copy of the shipped int8 ``first`` bundle: what a Pi has, no TensorFlow needed, so
    the checks below that need no float artifact run in the edge-only suite too."""
    dst = tmp_path / "first"
    shutil.copytree(shipped.bundles_root() / "first", dst)
    return dst


@pytest.fixture(scope="module")
def report(bundle: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[dict[str, Any], Path, str]:
    """One full edge-bench run with --json and -o: (stdout JSON, output folder, stderr)."""
    out = tmp_path_factory.mktemp("bench-report")
    proc = subprocess.run([sys.executable, "-m", "fmnist_edge.benchmarks.bench_cli", str(bundle),
                           *FAST, "--json", "-o", str(out)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), out, proc.stderr


def test_every_installed_artifact_and_runtime_is_measured(report: Any, bundle: Path) -> None:
    data, _, _ = report
    manifest = mf.load(bundle)
    expected = {(name, b) for name, art in manifest.artifacts.items()
                for b in runtimes.PREFERENCE[art.format] if runtimes.is_installed(b)}
    got = {(r["artifact"], r["runtime"]) for r in data["results"]}
    assert got == expected
    assert len(expected) >= 4  # float32/int8 in both formats at least


def test_latency_statistics_are_ordered_and_complete(report: Any) -> None:
    data, _, _ = report
    for r in data["results"]:
        lat = r["latency_ms"]
        assert lat["runs"] == RUNS
        assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert lat["min"] <= lat["mean"] <= lat["max"] and lat["std"] >= 0
        assert r["throughput"]["batch_1"] > 0 and r["throughput"]["batch_32"] > 0
        assert r["bytes"] == (Path(r["bundle"]) / r["artifact"]).stat().st_size
        assert 0 < r["memory_mb"]["baseline"] <= r["memory_mb"]["peak"]


def test_accuracy_matches_an_independent_computation(report: Any, bundle: Path) -> None:
    """Accuracy and agreement recomputed here, in this process, from the raw files."""
    data, _, _ = report
    test = dataset.load_split("test")
    reference = np.load(bundle / "reference_top1.npy")
    for r in data["results"]:
        par = r["parity"]
        model = EdgeModel.open(bundle, r["runtime"], artifact=r["artifact"])
        pred = model.predict(test.images).argmax(axis=1)
        assert par["images"] == len(test.labels) == 10_000
        assert par["accuracy"] == pytest.approx(float(np.mean(pred == test.labels)), abs=1e-9)
        assert 0.0 <= par["agreement"] <= 1.0
        assert par["agreement"] == pytest.approx(float(np.mean(pred == reference)), abs=1e-9)
        confusion = np.asarray(par["confusion"])
        assert confusion.sum() == 10_000
        assert np.trace(confusion) / 10_000 == pytest.approx(par["accuracy"])


def test_float32_onnx_accuracy_matches_raw_onnxruntime(report: Any, bundle: Path) -> None:
    """Outside EdgeModel entirely: onnxruntime on x / 255 must give the same accuracy."""
    ort = pytest.importorskip("onnxruntime")
    data, _, _ = report
    result = next(r for r in data["results"] if r["artifact"] == "first-float32.onnx")
    sess = ort.InferenceSession(str(bundle / "first-float32.onnx"),
                                providers=["CPUExecutionProvider"])
    test = dataset.load_split("test")
    x = test.images.astype(np.float32) / 255.0
    probs = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert result["parity"]["accuracy"] == pytest.approx(
        float(np.mean(probs.argmax(axis=1) == test.labels)), abs=1e-9)


def test_markdown_json_and_plots_are_written(report: Any) -> None:
    data, out, _ = report
    text = (out / "benchmark.md").read_text()
    assert "CPU:" in text and "| model | artifact | runtime |" in text
    for r in data["results"]:
        assert r["artifact"] in text
    on_disk = json.loads((out / "benchmark.json").read_text())
    assert on_disk["results"] == data["results"]
    assert on_disk["machine"]["cores"] >= 1
    for png in ("latency.png", "accuracy_vs_size.png", "confusion.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob(".*.tmp*")), "temporary files left behind"


def test_runtime_not_installed_is_skipped_with_a_note(
        shipped_bundle: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    code = cli_util.run(bench_cli.cli, [str(shipped_bundle), *FAST, "--runs", "5", "--no-parity",
                                        "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "first-int8.onnx: skipped, no runtime installed for .onnx" in captured.err
    results = json.loads(captured.out)["results"]
    assert results and all(r["format"] != "onnx" for r in results)
    assert any("skipped" in n for n in json.loads(captured.out)["notes"])


def test_no_test_data_skips_parity_but_measures_latency(
        shipped_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FMNIST_DATA_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("FMNIST_NO_DOWNLOAD", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code = cli_util.run(bench_cli.cli, [str(shipped_bundle), *FAST, "--runs", "5", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "accuracy parity skipped: no test data" in captured.err
    data = json.loads(captured.out)
    assert data["settings"]["parity"] is False
    assert data["results"] and all("parity" not in r for r in data["results"])
    assert all(r["latency_ms"]["runs"] == 5 for r in data["results"])


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def test_tampered_bundle_fails_in_one_line(shipped_bundle: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    copy = shipped_bundle
    data = bytearray((copy / "first-int8.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "first-int8.tflite").write_bytes(bytes(data))
    assert cli_util.run(bench_cli.cli, [str(copy), *FAST]) == 1
    line = _one_line_error(capsys)
    assert "first-int8.tflite" in line and "SHA-256" in line


def test_missing_bundle_folder_is_a_usage_error_in_one_line(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A bundle argument that names nothing is a usage error (exit 2), as in edge-classify."""
    assert cli_util.run(bench_cli.cli, [str(tmp_path / "absent"), *FAST]) == 2
    assert "no such model bundle or file" in _one_line_error(capsys)


@pytest.mark.parametrize("args", [["--runs", "0"], ["--threads", "x"], ["--threads", "0"],
                                  ["--batch", "-1"]])
def test_nonsense_counts_are_usage_errors(shipped_bundle: Path, args: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_util.run(bench_cli.cli, [str(shipped_bundle), *args]) == 2
    assert "edge-bench: error:" in _one_line_error(capsys)


def test_bench_modules_do_not_import_tensorflow() -> None:
    """edge-bench runs on the Pi: importing it must not pull TensorFlow or Keras in."""
    code = ("import sys, fmnist_edge.benchmarks.device, fmnist_edge.benchmarks.bench_cli\n"
            "bad = [m for m in ('tensorflow', 'keras', 'tf2onnx') if m in sys.modules]\n"
            "sys.exit(f'imported {bad}' if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr


def test_shipped_bundle_on_the_device_path(tmp_path: Path) -> None:
    """What a Pi runs after ``pip install``: ``edge-bench first`` (the shipped bundle, by
    name), no TensorFlow needed; its parity figures equal what the exporter verified."""
    proc = subprocess.run([sys.executable, "-m", "fmnist_edge.benchmarks.bench_cli", "first",
                           *FAST, "--json"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["results"]
    manifest = mf.load(shipped.bundles_root() / "first")
    assert {r["artifact"] for r in results} <= set(manifest.artifacts)
    checked = 0
    for r in results:
        assert r["latency_ms"]["runs"] == RUNS
        verified = manifest.artifacts[r["artifact"]].verification
        if r["runtime"] == verified["backend"]:
            assert r["parity"]["accuracy"] == verified["accuracy"]
            assert r["parity"]["agreement"] == pytest.approx(verified["agreement"])
            checked += 1
    assert checked >= 1


def test_no_argument_benches_every_shipped_model_and_a_file_names_one_artifact() -> None:
    assert len(shipped.names()) >= 2, "no shipped bundles (make bundles)"
    tiny = ["--runs", "3", "--warmup", "0", "--batch", "4", "--threads", "1", "--no-parity",
            "--json"]
    every = subprocess.run([sys.executable, "-m", "fmnist_edge.benchmarks.bench_cli", *tiny],
                           capture_output=True, text=True, check=False)
    assert every.returncode == 0, every.stderr
    assert {r["model"] for r in json.loads(every.stdout)["results"]} == set(shipped.names())
    npz_file = next((shipped.bundles_root() / "first").glob("*.npz"))
    one = subprocess.run([sys.executable, "-m", "fmnist_edge.benchmarks.bench_cli", str(npz_file),
                          *tiny], capture_output=True, text=True, check=False)
    assert one.returncode == 0, one.stderr
    assert [(r["artifact"], r["runtime"]) for r in json.loads(one.stdout)["results"]] == \
        [(npz_file.name, "numpy")]
