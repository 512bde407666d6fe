"""The device path never loads TensorFlow: checked in a fresh process after a real run.

"The device path" is ``edge/`` plus the on-device benchmark in ``benchmarks/`` (``edge-bench``
runs on the Pi too).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from fmnist_edge.edge import runtimes

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("tensorflow", "keras", "tf2onnx", "tf_keras", "onnx")
#: Every source file that runs on the device: all of edge/, and edge-bench's modules.
DEVICE_FILES = sorted([*(REPO / "edge").rglob("*.py"),
                       *(REPO / "benchmarks" / name for name in
                         ("device.py", "bench_cli.py", "timing.py", "__init__.py"))])

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

    img = tmp_path / "boot.png"
    Image.fromarray(dataset.load_split("test").images[0]).save(img)
    backends = [b for b in ("litert", "tflite-runtime", "onnxruntime")
                if runtimes.is_installed(b)]
    assert backends, "no inference runtime installed: nothing would be checked"
    for backend in backends:
        proc = subprocess.run([sys.executable, "-c", PROBE % json.dumps(HEAVY), str(img),
                               "--backend", backend], capture_output=True, text=True,
                              timeout=120)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result["code"] == 0, proc.stderr
        assert "Ankle boot" in result["out"]
        assert result["heavy"] == [], f"{backend}: edge path imported {result['heavy']}"


def _imported_names(node: ast.AST) -> list[str]:
    """Modules an AST node imports: import statements and import_module/__import__ calls."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module:
        return [node.module]
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
            return [node.args[0].value]
    return []


def test_no_device_module_imports_tensorflow_at_all() -> None:
    """Static check: not even a lazy or dynamic import of a heavy package in a device file."""
    assert len(DEVICE_FILES) > 10 and all(p.is_file() for p in DEVICE_FILES)
    offenders = [
        f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)} {name}"
        for path in DEVICE_FILES
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
        for name in _imported_names(node)
        if name.split(".")[0] in HEAVY
    ]
    assert offenders == []


def test_the_static_check_catches_a_dynamic_import() -> None:
    tree = ast.parse("import importlib\nimportlib.import_module('tensorflow').lite")
    assert any(n == "tensorflow" for node in ast.walk(tree) for n in _imported_names(node))


def test_tensorflow_interpreter_is_a_plugin_outside_edge() -> None:
    """--backend tensorflow exists, but its code lives in export/, found by entry point."""
    from importlib.metadata import entry_points

    from fmnist_edge.edge import runtimes

    (plugin,) = entry_points(group=runtimes.PLUGIN_GROUP, name="tensorflow")
    assert plugin.value.startswith("fmnist_edge.export.")
