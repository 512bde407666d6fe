"""The edge runner side by side with the tutorial's Keras way and a plain numpy MLP.

Everything is measured in one process run so the ratios are fair on a noisy machine:

* **warm latency**: single-image inference, interleaved rounds (each round times every
  contender in turn, the order rotating), so drift hits all of them alike:
  the edge runner (:meth:`EdgeModel.predict_tensor`, prepared tensor in, probabilities out)
  for int8/float32 TFLite and ONNX; Keras ``model.predict(x[None])`` and ``model(x)``;
  the same weights as a numpy forward pass (:mod:`fmnist_edge.benchmarks.numpy_mlp`).
* **cold start**: ``edge-classify img.png`` as a fresh process against the tutorial's way
  as a fresh process (import TensorFlow, load the ``.keras`` file, predict the same PNG),
  alternating; wall time from spawn to exit and the child's own peak RSS from ``wait4``.
* **install size** (optional, downloads): an edge-only venv's site-packages.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fmnist_edge.benchmarks import device
from fmnist_edge.benchmarks.numpy_mlp import NumpyMLP
from fmnist_edge.benchmarks.timing import timed_calls
from fmnist_edge.edge import dataset, preprocess, runtimes
from fmnist_edge.edge import manifest as mf
from fmnist_edge.edge.errors import UserError
from fmnist_edge.edge.model import EdgeModel
from fmnist_edge.edge.shipped import DEFAULT_MODEL
from fmnist_edge.edge.versions import installed_versions
from fmnist_edge.train.models import ARCHITECTURES

#: Edge artifacts raced against Keras and numpy, as (precision, format).
EDGE_ARTIFACTS = (("int8", "tflite"), ("float32", "tflite"), ("int8", "onnx"),
                  ("float32", "onnx"))
#: What the edge-only install contains (the base dependencies of pyproject.toml).
EDGE_PACKAGES = ("numpy", "pillow", "click", "ai-edge-litert")
TARGET_VS_NUMPY = 2.0
TARGET_COLD_SPEEDUP = 8.0
TARGET_COLD_MEMORY = 0.25

#: The tutorial's way as a fresh process: import TensorFlow, load, predict one PNG.
TUTORIAL_SNIPPET = """
import sys
import numpy as np
from PIL import Image
import tensorflow as tf
model = tf.keras.models.load_model(sys.argv[1])
x = np.asarray(Image.open(sys.argv[2]).convert("L"), dtype=np.float32) / 255.0
print(int(model.predict(x[None], verbose=0).argmax()))
"""


@dataclass(frozen=True)
class CompareSettings:
    """How many samples; ``fmnist-compare``'s option defaults are these, chosen to keep a
    full run to a few minutes on two cores."""

    models: tuple[str, ...] = tuple(ARCHITECTURES)
    rounds: int = 5
    calls: int = 200
    cold_rounds: int = 5
    cold_model: str = DEFAULT_MODEL
    install_size: bool = False


Log = Callable[[str], None]


def check_inputs(artifacts: Path, settings: CompareSettings) -> None:
    """Every bundle and .keras file this run needs, checked before TensorFlow is imported."""
    needed = dict.fromkeys((*settings.models, settings.cold_model))
    for name in needed:
        keras_file = mf.keras_file(artifacts, name)
        if not keras_file.is_file():
            raise UserError(f"{keras_file}: no such trained model (run fmnist-train)")
        bundle_dir = mf.bundle_dir(artifacts, name)
        if not (bundle_dir / mf.MANIFEST_NAME).is_file():
            raise UserError(f"{bundle_dir}: no bundle (run fmnist-export -a {artifacts})")


def run(artifacts: Path, settings: CompareSettings, log: Log,
        progress: dataset.Progress | None = None) -> dict[str, Any]:
    """All comparisons; the result is what compare.json holds."""
    check_inputs(artifacts, settings)
    test = dataset.load_split("test", progress=progress)
    log("importing TensorFlow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from fmnist_edge.export.bundle import load_model  # checks the file, one-line errors

    result: dict[str, Any] = {"machine": _machine(), "settings": asdict(settings),
                              "warm": {}}
    for name in settings.models:
        log(f"{name}: warm single-image latency, {settings.rounds} interleaved rounds")
        model = load_model(mf.keras_file(artifacts, name), name).keras
        result["warm"][name] = warm_latency(mf.bundle_dir(artifacts, name), model,
                                            test.images[:1], settings)
    log(f"cold start: {settings.cold_rounds} alternating rounds of fresh processes")
    result["cold"] = cold_start(artifacts, settings.cold_model, test.images[0],
                                int(test.labels[0]), settings.cold_rounds)
    if settings.install_size:
        log("install size: creating a throwaway edge-only venv (pip, may download)")
        result["install"] = install_size()
    return result


def _machine() -> dict[str, Any]:
    info = device.machine_info()
    info["runtimes"].update(installed_versions(("tensorflow", "tensorflow-cpu", "keras")))
    return info


# ---------------------------------------------------------------------------- warm


def contenders(bundle_dir: Path, keras_model: Any, pixels: np.ndarray
               ) -> tuple[dict[str, Callable[[], Any]], dict[str, np.ndarray]]:
    """Zero-argument callables, one per way of classifying ``pixels`` (1, 28, 28) uint8.

    Each is also run once here; its probabilities are returned so the caller can check
    that every contender computes the same thing before timing it.
    """
    manifest = mf.load(bundle_dir)
    x = preprocess.pixels_to_float(pixels, manifest.preprocessing)
    fns: dict[str, Callable[[], Any]] = {}
    for precision, fmt in EDGE_ARTIFACTS:
        file = mf.artifact_filename(manifest.model, precision, fmt)
        if file not in manifest.artifacts or not any(
                runtimes.is_installed(b) for b in runtimes.PREFERENCE[fmt]):
            continue
        edge = EdgeModel.open(bundle_dir, threads=1, artifact=file)
        fns[f"edge {precision} {fmt}"] = _edge_call(edge, edge.input_tensor(pixels))
    mlp = NumpyMLP.from_keras(keras_model)
    fns["numpy"] = lambda: mlp(x)
    fns["keras call"] = lambda: np.asarray(keras_model(x, training=False))
    fns["keras predict"] = lambda: keras_model.predict(x, verbose=0)
    return fns, {name: np.asarray(fn(), dtype=np.float32)[0] for name, fn in fns.items()}


def _edge_call(model: EdgeModel, x: np.ndarray) -> Callable[[], np.ndarray]:
    return lambda: model.predict_tensor(x)


def warm_latency(bundle_dir: Path, keras_model: Any, pixels: np.ndarray,
                 settings: CompareSettings) -> dict[str, Any]:
    """Per-contender p50/p90/mean over interleaved rounds, plus the ratios that matter."""
    fns, outputs = contenders(bundle_dir, keras_model, pixels)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for name in names:  # warm-up: graph tracing, allocations, caches
        timed_calls(fns[name], 10)
    for r in range(settings.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            n = max(5, settings.calls // 10) if name == "keras predict" else settings.calls
            samples[name] += timed_calls(fns[name], n)
    ref = outputs["keras predict"]
    stats = {name: {"calls": len(s), "p50_ms": float(np.percentile(s, 50)),
                    "p90_ms": float(np.percentile(s, 90)), "mean_ms": float(np.mean(s)),
                    "top1": int(outputs[name].argmax()),
                    "max_abs_diff_vs_keras": float(np.abs(outputs[name] - ref).max())}
             for name, s in samples.items()}
    return {"contenders": stats, "ratios": ratios(stats)}


def ratios(stats: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """For each edge contender: p50 / numpy p50, and Keras p50s / its p50."""
    numpy_p50 = stats["numpy"]["p50_ms"]
    out = {}
    for name, s in stats.items():
        if not name.startswith("edge"):
            continue
        out[name] = {"vs_numpy": s["p50_ms"] / numpy_p50,
                     "keras_predict_over_edge": stats["keras predict"]["p50_ms"] / s["p50_ms"],
                     "keras_call_over_edge": stats["keras call"]["p50_ms"] / s["p50_ms"]}
    return out


# ---------------------------------------------------------------------------- cold


def cold_start(artifacts: Path, model: str, pixels: np.ndarray, label: int,
               rounds: int) -> dict[str, Any]:
    """Fresh-process wall time and peak RSS: edge-classify vs import-TensorFlow-and-predict."""
    with tempfile.TemporaryDirectory(prefix="fmnist-compare-") as tmp:
        png = Path(tmp) / "image.png"
        Image.fromarray(pixels, mode="L").save(png)
        commands = {"edge-classify": [*_edge_classify(), str(png), "--model",
                                      str(mf.bundle_dir(artifacts, model)), "--json"],
                    "tutorial (TensorFlow)": [sys.executable, "-c", TUTORIAL_SNIPPET,
                                              str(mf.keras_file(artifacts, model)), str(png)]}
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in commands}
        order = list(commands)
        for r in range(rounds):
            for name in order if r % 2 == 0 else order[::-1]:
                runs[name].append(run_child(commands[name]))
    out: dict[str, Any] = {"model": model, "rounds": rounds, "true_class": label,
                           "commands": {k: _shown(v) for k, v in commands.items()}}
    for name, rs in runs.items():
        out[name] = {"wall_s_median": statistics.median(r["wall_s"] for r in rs),
                     "peak_rss_mb_median": statistics.median(r["peak_rss_mb"] for r in rs),
                     "wall_s": [r["wall_s"] for r in rs],
                     "peak_rss_mb": [r["peak_rss_mb"] for r in rs],
                     "answer": _answer(rs[-1]["stdout"])}
    edge, tf = out["edge-classify"], out["tutorial (TensorFlow)"]
    out["speedup"] = tf["wall_s_median"] / edge["wall_s_median"]
    out["memory_ratio"] = edge["peak_rss_mb_median"] / tf["peak_rss_mb_median"]
    return out


def _edge_classify() -> list[str]:
    """The installed console script beside this interpreter, else ``python -m``."""
    script = Path(sys.executable).parent / "edge-classify"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "fmnist_edge.edge.cli"]


def _shown(cmd: list[str]) -> str:
    """A command for the report, with the long inline script abbreviated."""
    return " ".join("'<tutorial snippet>'" if "\n" in c else c for c in cmd)


def _answer(stdout: str) -> str:
    """The predicted class name from either child's output."""
    text = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    if text.startswith("{"):
        return str(json.loads(text)["top_k"][0]["class"])
    return dataset.CLASS_NAMES[int(text)] if text.isdigit() else text


#: Runs one command and reports its wall time and its own peak RSS (``wait4``), as JSON.
_LAUNCHER = """
import json, os, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=sys.stdout, stderr=sys.stderr)
_, status, usage = os.wait4(proc.pid, 0)
wall = time.perf_counter() - t0
kb = usage.ru_maxrss / 1024 if sys.platform == "darwin" else usage.ru_maxrss
sys.stderr.write("@@" + json.dumps({"wall_s": wall, "rss_kb": kb,
                                    "code": os.waitstatus_to_exitcode(status)}) + "\\n")
"""


def run_child(cmd: list[str]) -> dict[str, Any]:
    """Wall time and the child's own peak RSS, measured by a tiny launcher process.

    Measuring from this (large, TensorFlow-loaded) process would be wrong on Linux: a
    child's ``ru_maxrss`` starts at its parent's high-water mark at fork and survives
    exec, and ``RUSAGE_CHILDREN`` is a maximum over all children ever waited for.  The
    launcher is a fresh small interpreter, so its child's figure is the child's own.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, *cmd], capture_output=True,
                          text=True, env=env, check=False)
    marks = [ln for ln in proc.stderr.splitlines() if ln.startswith("@@")]
    if not marks:
        raise UserError(f"{_shown(cmd)}: launcher failed ({_last(proc.stderr)})")
    stats = json.loads(marks[-1][2:])
    if stats["code"] != 0:
        raise UserError(f"{_shown(cmd)}: exit code {stats['code']} ({_last(proc.stderr)})")
    return {"wall_s": stats["wall_s"], "peak_rss_mb": stats["rss_kb"] / 1024,
            "stdout": proc.stdout}


def _last(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if not ln.startswith("@@")]
    return lines[-1] if lines else "no output"


# ---------------------------------------------------------------------------- install


def install_size() -> dict[str, Any]:
    """site-packages MB of a throwaway venv with only the edge dependencies installed."""
    with tempfile.TemporaryDirectory(prefix="fmnist-edge-venv-") as tmp:
        venv = Path(tmp) / "venv"
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], check=False,
                              capture_output=True, text=True)
        sites = sorted((venv / "lib").glob("python*/site-packages"))
        if made.returncode != 0 or not sites:
            tail = (made.stderr.strip().splitlines() or ["no site-packages"])[-1]
            raise UserError(f"cannot create a venv to measure the install ({tail}); "
                            "on Debian: sudo apt install python3-venv")
        site = sites[0]
        empty = folder_mb(site)
        pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                              "--disable-pip-version-check", *EDGE_PACKAGES],
                             capture_output=True, text=True, check=False)
        if pip.returncode != 0:
            tail = (pip.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise UserError(f"edge-only install failed: {tail}")
        total = folder_mb(site)
        versions = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
            capture_output=True, text=True, check=False).stdout or "[]"
    tf = tensorflow_size_mb()
    return {"packages": list(EDGE_PACKAGES), "site_packages_mb": total,
            "without_pip_mb": total - empty,
            "pi_aarch64": {py: pi_install_mb(py) for py in PI_PYTHONS},
            "installed": {p["name"]: p["version"] for p in json.loads(versions)},
            "tensorflow_stack_mb": tf,
            "tensorflow_over_edge": tf / (total - empty) if tf else None}


#: CPython versions of 64-bit Raspberry Pi OS: Debian 12 (bookworm) and Debian 13 (trixie).
PI_PYTHONS = ("3.11", "3.13")
#: manylinux tags an aarch64 Pi with glibc 2.36+ accepts (pip takes the exact list given).
PI_PLATFORMS = tuple(f"manylinux_2_{v}_aarch64" for v in (17, 24, 27, 28, 31, 34, 35, 36))


def pi_install_mb(python: str) -> float | None:
    """MB the edge dependencies take on a 64-bit Raspberry Pi, from the aarch64 wheels.

    ``pip install --target --platform`` unpacks the very wheels a Pi would get (and
    byte-compiles them, as an install on the Pi does), so the device's footprint is
    measured here without a Pi.  None if pip cannot resolve them.
    """
    with tempfile.TemporaryDirectory(prefix="fmnist-edge-pi-") as tmp:
        platforms = [a for tag in PI_PLATFORMS for a in ("--platform", tag)]
        pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                              "--disable-pip-version-check", "--target", tmp,
                              "--only-binary=:all:", "--python-version", python,
                              "--implementation", "cp", *platforms, *EDGE_PACKAGES],
                             capture_output=True, text=True, check=False)
        return folder_mb(Path(tmp)) if pip.returncode == 0 else None


def folder_mb(folder: Path) -> float:
    """Bytes of every file under ``folder``, in MB (symlinks not followed)."""
    return sum(p.stat().st_size for p in folder.rglob("*")
               if p.is_file() and not p.is_symlink()) / 2**20


def tensorflow_size_mb() -> float | None:
    """Installed size of TensorFlow and everything it requires, from this venv's metadata."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pragma: no cover - packaging ships with pip
        return None
    root = next((d for d in ("tensorflow-cpu", "tensorflow") if _has_dist(d)), None)
    if root is None:
        return None
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen or not _has_dist(name):
            continue
        seen.add(name)
        for spec in metadata.requires(name) or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return sum(_dist_bytes(n) for n in seen) / 2**20


def _has_dist(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def _dist_bytes(name: str) -> int:
    files = metadata.distribution(name).files or []
    return sum(f.size or 0 for f in files)
