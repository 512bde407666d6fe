"""The device path never loads TensorFlow: checked in a fresh process after a real run."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fmnist_edge.edge import bundled

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("tensorflow", "keras", "tf2onnx", "tf_keras", "onnx")

PROBE = """
import io, json, sys
from contextlib import redirect_stdout
from fmnist_edge.edge.cli import cli
from fmnist_edge.edge.cli_util import run
buf = io.StringIO()
with redirect_stdout(buf):
    code = run(cli, sys.argv[1:])
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(json.loads(%r)))
print(json.dumps({"code": code, "out": buf.getvalue(), "heavy": heavy}))
"""


def test_no_heavy_import_after_a_real_classification(tmp_path: Path) -> None:
    from PIL import Image

    from fmnist_edge.edge import dataset

    if not bundled.names():
        pytest.skip("no shipped bundle in edge/bundles (run `make bundles`)")
    img = tmp_path / "boot.png"
    Image.fromarray(dataset.load_split("test").images[0]).save(img)
    for backend in ("litert", "onnxruntime"):
        proc = subprocess.run([sys.executable, "-c", PROBE % json.dumps(HEAVY), str(img),
                               "--backend", backend], capture_output=True, text=True,
                              timeout=120)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result["code"] == 0, proc.stderr
        assert "Ankle boot" in result["out"]
        assert result["heavy"] == [], f"{backend}: edge path imported {result['heavy']}"


def test_no_module_in_edge_imports_tensorflow_at_all() -> None:
    """Static check: not even a lazy import of TensorFlow/Keras/tf2onnx inside edge/."""
    offenders = []
    for path in sorted((REPO / "edge").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names
                          if n.split(".")[0] in ("tensorflow", "keras", "tf2onnx", "tf_keras")]
    assert offenders == []
