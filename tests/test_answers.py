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

from fmnist_edge.edge import classify as answers
from fmnist_edge.edge import dataset_pngs as pngs
from fmnist_edge.edge import manifest, preprocess, shipped
from fmnist_edge.edge.errors import BundleError
from fmnist_edge.edge.model import EdgeModel


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
    shipped_cal = manifest.load(shipped.bundles_root() / "first").calibration
    assert shipped_cal.temperature > 0 and shipped_cal.min_confidence is not None  # photo recipe
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
    shipped_manifest = replace(manifest.load(shipped.bundles_root() / "first"),
                               calibration=manifest.Calibration())
    assert "calibration" not in shipped_manifest.to_json()  # none: not written at all
    cal = manifest.Calibration(temperature=1.3, min_confidence=0.5, ece=0.02)
    manifest.write(replace(shipped_manifest, root=tmp_path, calibration=cal))
    assert manifest.load(tmp_path).calibration == cal
    with pytest.raises(BundleError, match="refusing to write"):
        manifest.write(replace(shipped_manifest, root=tmp_path,
                               calibration=manifest.Calibration(temperature=0)))


# ------------------------------------------------------------------------------------------
# The number printed beside "unsure" sits on the verdict's side of the threshold


def _shown_top(line: str) -> float:
    """The top class's probability as a text line prints it: ``... Shirt (0.536), ...``."""
    return float(line.split(" (", 1)[1].split(")", 1)[0])


def _probs(top: float, n: int = 10) -> np.ndarray:
    """A probability vector whose most likely class (the first) has ``top``."""
    rest = np.full(n - 1, (1.0 - top) / (n - 1))
    return np.concatenate([[top], rest])


@pytest.fixture(scope="module")
def second() -> EdgeModel:
    return EdgeModel.open(shipped.bundles_root() / "second")


def test_shown_confidence_sides_with_the_verdict_at_the_shipped_threshold(
        second: EdgeModel) -> None:
    """Around the second bundle's own threshold (0.544), every printed number is below it
    for an unsure answer and at or above it for a sure one; far from it, two decimals."""
    threshold = second.manifest.calibration.min_confidence
    assert threshold is not None
    for offset in (-0.009, -0.004, -0.0006, -0.0001, -1e-9, 0.0, 1e-9, 0.0001, 0.0004,
                   0.0049, 0.009):
        pred = answers.answer("x", _probs(threshold + offset), second, 2, 0.0)
        shown = _shown_top(pred.line())
        assert pred.threshold == threshold
        assert (shown < threshold) == (pred.status == "unsure"), (offset, pred.line())
    sure = answers.answer("x", _probs(threshold + 0.0004), second, 1, 0.0)
    assert sure.status == "ok" and sure.line() == "x: T-shirt/top (0.544)"  # was (0.54)
    far = answers.answer("x", _probs(0.912), second, 1, 0.0)
    assert far.line() == "x: T-shirt/top (0.91)"


def test_shown_confidence_under_a_given_threshold(second: EdgeModel) -> None:
    """The issue's case: 0.536 under --min-confidence 0.54 printed "unsure (... 0.54)"."""
    unsure = answers.answer("x", _probs(0.536), second, 1, 0.0, min_confidence=0.54)
    assert unsure.status == "unsure" and unsure.line() == "x: unsure: T-shirt/top (0.536)"
    sure = answers.answer("x", _probs(0.541), second, 1, 0.0, min_confidence=0.54)
    assert sure.status == "ok" and sure.line() == "x: T-shirt/top (0.54)"
    assert answers.shown_probability(0.5399999999999999, 0.54) == "0.5399999999999999"
    assert answers.shown_probability(0.536, None) == "0.54"  # no threshold: two decimals
    assert answers.shown_threshold(0.544) == "0.544"


def test_edge_classify_prints_the_side_it_decided(images: Path) -> None:
    """Through the real command: a threshold put where two decimals would cross it (at the
    rounded value when it rounds up, between it and the probability when it rounds down)."""
    for png in sorted(images.glob("*.png")):
        top = json.loads(classify(str(png), "--json").stdout)["top_k"][0]["probability"]
        if abs(round(top, 2) - top) > 1e-5:
            break
    else:
        pytest.fail("every image's probability is a two-decimal number")
    rounded = round(top, 2)
    threshold = rounded if rounded > top else (rounded + top) / 2
    line = classify(str(png), "--min-confidence", repr(threshold)).stdout.strip()
    unsure = ": unsure: " in line
    assert unsure == (top < threshold), line
    assert (_shown_top(line) < threshold) == unsure, (threshold, line)


def test_edge_evaluate_shows_the_threshold_it_uses(images: Path, tmp_path: Path) -> None:
    """The report's header names the threshold as the manifest gives it (0.544, not 0.54)."""
    folder = tmp_path / "photos"
    shutil.copytree(images, folder)
    rows = [f"{p.name}\t{pngs.label_of(p)}" for p in sorted(folder.glob("*.png"))]
    (folder / "labels.tsv").write_text("path\tlabel\n" + "\n".join(rows) + "\n")
    code = "from fmnist_edge.edge.evaluate_cli import main; main()"
    proc = subprocess.run([sys.executable, "-c", code, str(folder), "-m", "second"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    threshold = manifest.load(shipped.bundles_root() / "second").calibration.min_confidence
    assert f"; unsure below {threshold!r}" in proc.stdout.splitlines()[0]
