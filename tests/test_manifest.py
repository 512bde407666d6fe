"""The bundle contract: what edge/manifest.py writes it reads back, and what it refuses.

Runs on the committed bundles (no TensorFlow), so the edge-only suite checks it too.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from fmnist_edge.edge import manifest as mf
from fmnist_edge.edge import shipped
from fmnist_edge.edge.errors import BundleError
from fmnist_edge.train.models import ARCHITECTURES


@pytest.fixture()
def bundle(tmp_path: Path) -> Path:
    """A private copy of the shipped "first" bundle (committed to the repository)."""
    dst = tmp_path / "first"
    shutil.copytree(shipped.bundles_root() / "first", dst)
    return dst


def raw_of(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / mf.MANIFEST_NAME).read_text())
    return data


def rewrite(folder: Path, raw: dict[str, Any]) -> None:
    (folder / mf.MANIFEST_NAME).write_text(json.dumps(raw))


def test_every_model_ships_a_bundle() -> None:
    """A broken package-data pattern must fail here, not turn the device suite into skips."""
    assert shipped.names() == sorted(ARCHITECTURES)


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_committed_manifest_round_trips(name: str) -> None:
    """The typed form is the whole file: only the legacy "input" block is left out."""
    folder = shipped.bundles_root() / name
    manifest = mf.load(folder)
    raw = raw_of(folder)
    raw.pop("input", None)
    assert manifest.to_json() == raw
    assert mf.parse(folder, manifest.to_json()) == manifest
    assert manifest.preprocessing.size == (28, 28)
    assert manifest.reference.predictions is not None
    assert manifest.reference.predictions.file == mf.REFERENCE_FILE
    assert all(a.file == mf.artifact_filename(name, a.precision, a.format)
               for a in manifest.artifacts.values())


def test_write_then_load_gives_the_same_manifest(bundle: Path, tmp_path: Path) -> None:
    manifest = mf.load(bundle)
    moved = dataclasses.replace(manifest, root=tmp_path / "copy")
    mf.write(moved)
    assert "input" not in raw_of(tmp_path / "copy")
    assert mf.load(tmp_path / "copy") == moved


def test_layout_helpers() -> None:
    assert mf.artifact_filename("first", "int8", "tflite") == "first-int8.tflite"
    assert mf.bundle_dir(Path("out"), "second") == Path("out/bundles/second")
    assert mf.keras_file(Path("out"), "first") == Path("out/first.keras")


def _first_artifact(raw: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = raw["artifacts"]["first-int8.tflite"]
    return entry


# Each case breaks one thing _check or the parser must refuse, and a phrase of the message.
BAD_MANIFESTS = {
    "polarity": (lambda r: r["preprocessing"].update(polarity="dark-on-light"),
                 "polarity 'dark-on-light'"),
    "size": (lambda r: r["preprocessing"].update(size=[0, 28]), "size and scale must be"),
    "scale": (lambda r: r["preprocessing"].update(scale=0), "size and scale must be"),
    "int8 without scale": (lambda r: _first_artifact(r)["input"].update(scale=0),
                           "int8 tensor without a positive scale"),
    "output count": (lambda r: _first_artifact(r)["output"].update(shape=[-1, 7]),
                     "7 outputs for 10 classes"),
    "path traversal": (lambda r: r["artifacts"].update(
        {"../evil.tflite": r["artifacts"]["first-int8.tflite"]}), "must be a plain file name"),
    "hidden file": (lambda r: r["artifacts"].update(
        {".evil.tflite": r["artifacts"]["first-int8.tflite"]}), "must be a plain file name"),
    "no classes": (lambda r: r.update(class_names=[]), "class_names is empty"),
    "artifacts list": (lambda r: r.update(artifacts=[]), "artifacts must be an object"),
    "missing key": (lambda r: r.pop("preprocessing"), "KeyError"),
    "wrong format": (lambda r: r.update(format="something-else"), "not an fmnist-edge-bundle"),
    "newer version": (lambda r: r.update(version=mf.VERSION + 1), "upgrade fmnist-edge"),
}


@pytest.mark.parametrize("case", list(BAD_MANIFESTS))
def test_bad_manifests_are_refused_in_one_line(case: str, bundle: Path) -> None:
    breaker, phrase = BAD_MANIFESTS[case]
    raw = copy.deepcopy(raw_of(bundle))
    breaker(raw)
    rewrite(bundle, raw)
    with pytest.raises(BundleError) as info:
        mf.load(bundle)
    assert phrase in str(info.value) and "\n" not in str(info.value)


def test_older_and_legacy_manifests_are_accepted(bundle: Path) -> None:
    """Version 1 with the legacy "input" block (as committed) and without it both load."""
    raw = raw_of(bundle)
    assert "input" in raw  # the committed bundles predate the writer in this module
    rewrite(bundle, {k: v for k, v in raw.items() if k != "input"})
    assert mf.load(bundle).model == "first"


def test_not_json_and_no_manifest(bundle: Path, tmp_path: Path) -> None:
    (bundle / mf.MANIFEST_NAME).write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        mf.load(bundle)
    with pytest.raises(BundleError, match="not a model bundle"):
        mf.load(tmp_path / "empty")


def test_write_refuses_what_load_would_refuse(bundle: Path, tmp_path: Path) -> None:
    manifest = mf.load(bundle)
    bad = dataclasses.replace(manifest, root=tmp_path / "bad",
                              preprocessing=dataclasses.replace(manifest.preprocessing,
                                                                polarity="upside-down"))
    with pytest.raises(BundleError, match="refusing to write"):
        mf.write(bad)
    assert not (tmp_path / "bad" / mf.MANIFEST_NAME).exists()


@pytest.mark.parametrize("name", ["../first/first-int8.tflite", "sub/first-int8.tflite"])
def test_verify_file_takes_plain_names_only(name: str, bundle: Path) -> None:
    with pytest.raises(BundleError, match="not a plain file name"):
        mf.load(bundle).check_file(name)


def test_verify_file_refuses_unlisted_missing_and_tampered_files(bundle: Path) -> None:
    manifest = mf.load(bundle)
    (bundle / "extra.bin").write_bytes(b"x")
    with pytest.raises(BundleError, match="not listed"):
        manifest.check_file("extra.bin")
    top1 = bundle / mf.REFERENCE_FILE
    data = bytearray(top1.read_bytes())
    data[-1] ^= 1
    top1.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="does not match its SHA-256"):
        manifest.reference_top1_path()
    (bundle / "first-int8.onnx").unlink()
    with pytest.raises(BundleError, match=r"listed in manifest\.json but missing"):
        manifest.check_file("first-int8.onnx")
    assert manifest.check_file("first-int8.tflite").is_file()  # the intact one passes
