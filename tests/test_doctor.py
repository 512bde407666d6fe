"""``edge-doctor`` run for real: real runtimes probed in child processes, the shipped
bundles hashed and run on real test images; a tampered bundle and the picamera2 venv trap
give ✗ lines with what to do."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fmnist_edge.edge import camera, cli_util, doctor, runtimes, shipped


def run_doctor(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from fmnist_edge.edge.doctor import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def report() -> dict:
    proc = run_doctor("--json", "--parity-images", "300")
    assert "Traceback" not in proc.stderr
    out = json.loads(proc.stdout)
    assert proc.returncode == (0 if out["ok"] else 1)
    return out


def by_name(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


def test_all_essential_checks_pass_here(report: dict) -> None:
    failed = [c for c in report["checks"] if c["essential"] and not c["ok"]]
    assert report["ok"] and not failed, failed


def test_runtimes_are_probed_for_real(report: dict) -> None:
    checks = by_name(report)
    import numpy as np

    assert checks["runtime numpy"]["ok"] and np.__version__ in checks["runtime numpy"]["detail"]
    for backend in ("litert", "onnxruntime", "tflite-runtime"):
        check = checks[f"runtime {backend}"]
        assert check["ok"] == runtimes.is_installed(backend), check
        if not check["ok"]:
            assert check["fix"].startswith("pip install")


def test_numpy_abi_and_platform_are_reported(report: dict) -> None:
    import platform

    checks = by_name(report)
    assert platform.machine() in checks["platform"]["detail"]
    assert "C-API" in checks["numpy"]["detail"] and "ABI" in checks["numpy"]["detail"]


def test_shipped_bundles_hashed_and_every_artifact_checked_for_parity(report: dict) -> None:
    checks = by_name(report)
    for name in shipped.names():
        assert checks[f"bundle {name}"]["ok"] and "SHA-256 ok" in checks[f"bundle {name}"]["detail"]
        parity = [c for c in report["checks"] if c["name"].startswith(f"parity {name}")]
        files = {c["detail"].split(" on ")[0] for c in parity}
        assert any(f.endswith(".npz") for f in files) and any(f.endswith(".tflite") for f in files)
        assert all(c["ok"] and "on 300 test images" in c["detail"] for c in parity)


def test_text_output_has_a_mark_on_every_line() -> None:
    proc = run_doctor("--no-camera", "--parity-images", "50")
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stderr
    assert all(ln[0] in "✓✗" for ln in lines[:-1]) and lines[-1] == "all essential checks passed"


def test_parity_images_0_says_skipped_not_set_the_data_dir(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The user chose 0: no fix to suggest (the data may well be there)."""
    assert cli_util.run(doctor.cli, ["--no-camera", "--parity-images", "0"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln[2:].startswith("parity")]
    assert len(lines) == len(shipped.names()) >= 1
    for line in lines:
        assert line.endswith(": skipped by --parity-images 0"), line
        assert "FMNIST_DATA_DIR" not in line and "→" not in line


def test_missing_test_images_still_say_how_to_get_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMNIST_DATA_DIR", str(tmp_path))
    parity = [c for c in doctor.bundle_checks(10, download=False) if c.name.startswith("parity")]
    assert parity and all("FMNIST_DATA_DIR" in c.fix and not c.essential for c in parity)


def test_tampered_bundle_is_a_failed_essential_check(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "bundles"
    shutil.copytree(shipped.bundles_root(), root)
    npz_file = next((root / "first").glob("*.npz"))
    npz_file.write_bytes(npz_file.read_bytes()[:-10])
    monkeypatch.setattr(shipped, "bundles_root", lambda: root)
    code = cli_util.run(doctor.cli, ["--no-camera", "--parity-images", "0"])
    out = capsys.readouterr().out
    assert code == 1
    (line,) = [ln for ln in out.splitlines() if ln.startswith("✗ bundle first")]
    assert "SHA-256" in line and "→" in line
    assert out.splitlines()[-1] == "some essential checks FAILED"


def test_picamera2_venv_trap_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a venv without system packages, a Debian picamera2 it cannot see is the fix."""
    if not doctor.in_venv() or doctor.sees_system_packages():
        pytest.skip("needs a venv made without --system-site-packages (as make's .venv)")
    if doctor.probe("import picamera2")[0]:
        pytest.skip("picamera2 importable here")
    debian = tmp_path / "dist-packages"
    (debian / "picamera2").mkdir(parents=True)
    monkeypatch.setattr(doctor, "DEBIAN_DIST_PACKAGES", debian)
    check = next(c for c in doctor.camera_checks() if c.name == "picamera2")
    assert not check.ok and not check.essential
    assert "cannot see it" in check.fix and "--system-site-packages" in check.fix


def test_picamera2_on_numpy_2_names_the_extra() -> None:
    """picamera2 seen but failing in Debian's simplejpeg (built for numpy 1.x) under the
    venv's numpy 2: the fix is PyPI's simplejpeg, not another venv.  The first message is
    what ``import simplejpeg`` says here, simplejpeg 1.7.2's manylinux wheel (built for
    numpy 1.x) under numpy 2.4.6, as picamera2 reports on 64-bit Pi OS; the second, numpy's
    own guard for other extensions."""
    for reason in ("numpy.dtype size changed, may indicate binary incompatibility. Expected "
                   "96 from C header, got 88 from PyObject",
                   "numpy.core.multiarray failed to import"):
        fix = doctor.picamera_fix(reason)
        assert camera.PICAMERA_NUMPY_HINT in fix and "numpy 2" in fix, reason
    assert camera.PICAMERA_NUMPY_HINT not in doctor.picamera_fix("No module named 'picamera2'")


def test_parity_allows_sampling_noise_not_a_broken_runtime() -> None:
    # export agreed on 98.65 %: 2 of 50 (96 %) is chance, 10 of 50 (80 %) is not
    assert doctor.parity_ok(0.96, 0.9865, 50)
    assert not doctor.parity_ok(0.80, 0.9865, 50)
    # on 500 images the allowance narrows: 96 % is too far below 98.65 % there
    assert doctor.parity_ok(0.975, 0.9865, 500)
    assert not doctor.parity_ok(0.96, 0.9865, 500)
    # a bundle that agreed 100 % still tolerates one odd image, not five
    assert doctor.parity_ok(0.98, 1.0, 50) and not doctor.parity_ok(0.90, 1.0, 50)


def test_the_photo_pipeline_check_says_which_pipeline_runs(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    from fmnist_edge.edge import photo, segnet

    check = doctor.pipeline_check()
    assert check.ok and photo.PIPELINE_VERSION in check.detail, check.line()
    monkeypatch.setattr(segnet, "model_path", lambda backend=None: None)
    check = doctor.pipeline_check()
    assert not check.ok and not check.essential
    assert "segment-3 alone" in check.detail and "onnxruntime" in check.fix, check.line()
