"""Saying "I don't know": "no garment found", "unsure" below a threshold, and the manifest's
calibration block (temperature and suggested threshold), through the real edge-classify."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmnist_edge.edge import dataset_pngs as pngs
from fmnist_edge.edge import manifest, preprocess, shipped
from fmnist_edge.edge.errors import BundleError


def classify(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from fmnist_edge.edge.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("png")
    pngs.write(out, limit=6)
    return out


def with_calibration(tmp_path: Path, block: object) -> Path:
    """A copy of the shipped first bundle whose manifest carries ``block``."""
    dst = tmp_path / "bundle"
    shutil.copytree(shipped.bundles_root() / "first", dst)
    path = dst / manifest.MANIFEST_NAME
    raw = json.loads(path.read_text())
    raw["calibration"] = block
    path.write_text(json.dumps(raw))
    return dst


def test_empty_wall_is_no_garment_found(tmp_path: Path) -> None:
    ramp = np.linspace(120, 220, 640, dtype=np.float32)[None, :, None] * np.ones((480, 1, 3))
    wall = tmp_path / "wall.jpg"
    Image.fromarray(ramp.astype(np.uint8)).save(wall, quality=90)
    text = classify(str(wall))
    assert text.returncode == 0 and text.stdout.strip() == f"{wall}: no garment found"
    record = json.loads(classify(str(wall), "--json").stdout)
    assert record["answer"] == "no garment found" and record["status"] == "none"
    assert record["top_k"] == []


def test_min_confidence_makes_unsure_and_keeps_top_k(images: Path) -> None:
    png = next(images.glob("00000_9_*"))
    sure = json.loads(classify(str(png), "--json").stdout)
    assert sure["status"] == "ok" and sure["answer"] == "Ankle boot"
    proc = classify(str(png), "--json", "--top-k", "2", "--min-confidence", "1")
    record = json.loads(proc.stdout)
    assert record["answer"] == "unsure" and record["status"] == "unsure"
    assert record["top_k"][0]["class"] == "Ankle boot" and len(record["top_k"]) == 2
    text = classify(str(png), "--min-confidence", "1").stdout
    assert text.startswith(f"{png}: unsure: Ankle boot (")
    bad = classify(str(png), "--min-confidence", "1.5")
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1


def test_manifest_calibration_is_applied(images: Path, tmp_path: Path) -> None:
    png = str(next(images.glob("00001_*")))
    plain = json.loads(classify(png, "--json", "-m", "first").stdout)
    bundle = with_calibration(tmp_path, {"temperature": 3.0, "min_confidence": 0.999,
                                         "ece": 0.05, "fitted_on": "validation split"})
    calibrated = json.loads(classify(png, "--json", "-m", str(bundle)).stdout)
    # Same ranking, softer probability, and the manifest's threshold is the default.
    assert calibrated["top_k"][0]["class"] == plain["top_k"][0]["class"]
    assert calibrated["top_k"][0]["probability"] < plain["top_k"][0]["probability"]
    assert calibrated["status"] == "unsure"
    overridden = json.loads(classify(png, "--json", "-m", str(bundle),
                                     "--min-confidence", "0").stdout)
    assert overridden["status"] == "ok"


def test_bad_calibration_is_one_line(images: Path, tmp_path: Path) -> None:
    bundle = with_calibration(tmp_path, {"temperature": -1})
    proc = classify(str(next(images.glob("*.png"))), "-m", str(bundle))
    assert proc.returncode == 1 and "temperature must be positive" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr


def test_calibration_round_trips_and_defaults_to_none(tmp_path: Path) -> None:
    cal = manifest.Calibration(temperature=1.7, min_confidence=0.6, ece=0.04, ece_before=0.1,
                               fitted_on="validation split")
    assert manifest.Calibration.from_json(cal.to_json()) == cal
    assert manifest.Calibration.from_json(None) == manifest.Calibration()
    assert manifest.load(shipped.bundles_root() / "first").calibration.temperature == 1.0
    with pytest.raises((ValueError, TypeError)):
        manifest.Calibration.from_json({"min_confidence": 2})
    bundle = with_calibration(tmp_path, "hot")
    with pytest.raises(BundleError, match="malformed manifest"):
        manifest.load(bundle)


def test_temperature_scaling_is_softmax_of_scaled_logits() -> None:
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0]], np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    for t in (0.5, 1.0, 2.5):
        expected = np.exp(logits / t) / np.exp(logits / t).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(preprocess.calibrate(probs, t), expected, rtol=1e-5)


def test_manifest_writes_and_reads_calibration(tmp_path: Path) -> None:
    shipped_manifest = manifest.load(shipped.bundles_root() / "first")
    assert "calibration" not in shipped_manifest.to_json()  # none: not written at all
    cal = manifest.Calibration(temperature=1.3, min_confidence=0.5, ece=0.02)
    manifest.write(replace(shipped_manifest, root=tmp_path, calibration=cal))
    assert manifest.load(tmp_path).calibration == cal
    with pytest.raises(BundleError, match="refusing to write"):
        manifest.write(replace(shipped_manifest, root=tmp_path,
                               calibration=manifest.Calibration(temperature=0)))
