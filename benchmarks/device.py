"""On-device benchmarks of a bundle's artifacts, without TensorFlow (runs on the Pi).

For every artifact x installed runtime x thread count this measures what LiteRT's
``benchmark_model`` and ``onnxruntime_perf_test`` report (file size, initialisation, first
inference, warm-up average, warm latency percentiles, throughput, peak memory) and adds
accuracy parity on the 10,000 official test images, through :class:`EdgeModel`, the same
code path ``edge-classify`` uses.

**Peak memory**: each measurement runs in a fresh ``python -m fmnist_edge.benchmarks.device``
subprocess
(``sys.executable``) that prints one JSON object.  A process's RSS high-water mark never
goes down, so measuring artifacts one after another in one process would credit every
artifact with the largest one's peak; a fresh process per job gives each its own figure
(the interpreter, numpy and the runtime included, as on the device).

Timing uses seeded random 28x28 images: a dense MLP's cost does not depend on pixel
values, and the test set is then loaded only after the memory figure is taken, so it does
not inflate it.  Parity uses the real test set.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmnist_edge.benchmarks.timing import timed_calls
from fmnist_edge.edge import dataset, metrics, runtimes
from fmnist_edge.edge import manifest as mf
from fmnist_edge.edge.errors import DataError, UserError
from fmnist_edge.edge.versions import installed_versions

#: Runtime distributions a benchmark report names (read from metadata, never imported).
RUNTIME_DISTS = ("ai-edge-litert", "tflite-runtime", "onnxruntime")

#: Seconds one job may take before it is declared hung.
JOB_TIMEOUT = 900


@dataclass(frozen=True)
class BenchSettings:
    """How hard to measure; ``edge-bench``'s option defaults are these, in
    ``benchmark_model``'s spirit (the thread default is :func:`default_threads`)."""

    runs: int = 500
    warmup: int = 50
    batch: int = 256
    threads: tuple[int, ...] = (1,)


@dataclass(frozen=True)
class Measurement:
    """One measurement: one artifact of one bundle, in one runtime, with N threads."""

    bundle: str
    model: str
    artifact: str
    format: str
    precision: str
    backend: str
    threads: int
    parity: bool
    runs: int
    warmup: int
    batch: int


def default_threads() -> tuple[int, ...]:
    """``1`` plus the CPU count when there is more than one core."""
    cores = os.cpu_count() or 1
    return (1, cores) if cores > 1 else (1,)


def plan_measurements(bundles: list[Path], settings: BenchSettings, parity: bool
                      ) -> tuple[list[Measurement], list[str]]:
    """Every measurement to run, and notes on what is skipped; hash-checks every listed
    file first.

    Checking before measuring means a tampered bundle fails in one line at once rather
    than after minutes of benchmarks.
    """
    jobs: list[Measurement] = []
    notes: list[str] = []
    for folder in bundles:
        if not folder.is_dir():
            raise UserError(f"{folder}: no such bundle folder")
        manifest = mf.load(folder)
        for name in manifest.artifacts:
            manifest.check_file(name)
        if parity:
            manifest.reference_top1_path()
        jobs.extend(_bundle_jobs(manifest, settings, parity, notes))
    return jobs, notes


def _bundle_jobs(manifest: mf.Manifest, settings: BenchSettings, parity: bool,
                 notes: list[str]) -> list[Measurement]:
    """Measurements of one bundle; parity runs once per artifact x runtime (it ignores
    threads)."""
    jobs = []
    for art in manifest.artifacts.values():
        backends = [b for b in runtimes.PREFERENCE.get(art.format, ())
                    if runtimes.is_installed(b)]
        if not backends:
            wanted = " or ".join(runtimes.PREFERENCE.get(art.format, ("?",)))
            notes.append(f"{manifest.model}/{art.file}: skipped, no runtime installed "
                         f"for .{art.format} ({wanted})")
        for backend in backends:
            for i, threads in enumerate(settings.threads):
                jobs.append(Measurement(bundle=str(manifest.root), model=manifest.model,
                                artifact=art.file, format=art.format,
                                precision=art.precision, backend=backend, threads=threads,
                                parity=parity and i == 0, runs=settings.runs,
                                warmup=settings.warmup, batch=settings.batch))
    return jobs


def data_note(progress: dataset.Progress | None = None) -> str | None:
    """``None`` when the official test set can be read (or fetched), else why not."""
    try:
        dataset.locate("test-images", progress=progress)
        dataset.locate("test-labels", progress=progress)
    except DataError as exc:
        return f"accuracy parity skipped: no test data ({exc})"
    return None


# ---------------------------------------------------------------------------- subprocess


def run_job(job: Measurement) -> dict[str, Any]:
    """Measure one job in a fresh interpreter; its one stdout line is the JSON result."""
    cmd = [sys.executable, "-m", "fmnist_edge.benchmarks.device", json.dumps(asdict(job))]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=JOB_TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired:
        return _failed(job, f"timed out after {JOB_TIMEOUT} s")
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        err = proc.stderr.strip().splitlines()
        return _failed(job, err[-1] if err else f"worker exit code {proc.returncode}")
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except json.JSONDecodeError:
        return _failed(job, "worker printed no JSON result")
    return result


def _failed(job: Measurement, reason: str) -> dict[str, Any]:
    return {**_identity(job), "error": reason}


def _identity(job: Measurement) -> dict[str, Any]:
    return {"model": job.model, "bundle": job.bundle, "artifact": job.artifact,
            "format": job.format, "precision": job.precision, "runtime": job.backend,
            "threads": job.threads}


# ---------------------------------------------------------------------------- the worker


def measure(job: Measurement) -> dict[str, Any]:
    """Everything for one job, in this process (meant to be a fresh one)."""
    from fmnist_edge.edge.model import EdgeModel

    rss_base = peak_rss_mb()
    t0 = time.perf_counter()
    model = EdgeModel.open(Path(job.bundle), job.backend, job.threads, artifact=job.artifact)
    load_ms = (time.perf_counter() - t0) * 1e3
    rss_init = peak_rss_mb()
    pixels = np.random.default_rng(0).integers(0, 256, (max(job.batch, 64), *dataset.IMAGE_SHAPE),
                                               dtype=np.uint8)
    singles = [model.input_tensor(pixels[i:i + 1]) for i in range(64)]
    t0 = time.perf_counter()
    model.predict_tensor(singles[0])
    first_ms = (time.perf_counter() - t0) * 1e3
    warm = _timed_calls(model, singles, job.warmup)
    samples = _timed_calls(model, singles, job.runs)
    batch_ips = _batch_throughput(model, model.input_tensor(pixels[:job.batch]), job.runs)
    result: dict[str, Any] = {
        **_identity(job), "bytes": model.artifact.bytes, "load_ms": load_ms,
        "first_inference_ms": first_ms,
        "warmup_mean_ms": float(np.mean(warm)) if warm else None,
        "latency_ms": latency_stats(samples),
        "throughput": {"batch_1": 1e3 / float(np.mean(samples)),
                       f"batch_{job.batch}": batch_ips, "batch": job.batch},
        "memory_mb": {"baseline": rss_base, "after_load": rss_init, "peak": peak_rss_mb(),
                      "method": "VmHWM of a fresh process per job"},
        "samples_ms": [round(s, 5) for s in samples],
    }
    if job.parity:
        result["parity"] = parity(model)
    return result


def _timed_calls(model: Any, singles: list[np.ndarray], n: int) -> list[float]:
    """Milliseconds of ``n`` single-image ``predict_tensor`` calls, cycling the images."""
    cycle = iter(singles * (n // len(singles) + 1))
    return timed_calls(lambda: model.predict_tensor(next(cycle)), n)


def _batch_throughput(model: Any, x: np.ndarray, runs: int) -> float:
    """Images per second at batch ``len(x)``; one untimed call first (tensor resize)."""
    model.predict_tensor(x)
    repeats = max(3, min(50, runs // 10))
    return repeats * len(x) / (sum(timed_calls(lambda: model.predict_tensor(x), repeats)) / 1e3)


def latency_stats(samples: list[float]) -> dict[str, float]:
    """min, percentiles, max, mean and std (ms) of the warm single-image latencies."""
    a = np.asarray(samples, dtype=np.float64)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"runs": len(a), "min": float(a.min()), "p50": float(p50), "p90": float(p90),
            "p99": float(p99), "max": float(a.max()), "mean": float(a.mean()),
            "std": float(a.std())}


def parity(model: Any) -> dict[str, Any]:
    """Accuracy, per-class accuracy, confusion matrix and agreement with the Keras reference.

    The reference top-1 file is hash-checked before use, so agreement is never computed
    against a tampered file.
    """
    test = dataset.load_split("test", download=False)
    pred = model.predict(test.images).argmax(axis=1)
    labels = test.labels.astype(np.int64)
    confusion = metrics.confusion_matrix(labels, pred, len(model.class_names))
    per_class = metrics.per_class_accuracy(confusion)
    out: dict[str, Any] = {
        "images": len(labels), "accuracy": metrics.accuracy(pred, labels),
        "per_class_accuracy": {n: float(a) for n, a in zip(model.class_names, per_class,
                                                           strict=True)},
        "confusion": confusion.tolist(), "agreement": None, "keras_accuracy": None,
    }
    top1_file = model.manifest.reference_top1_path()
    if top1_file is not None:
        out["agreement"] = metrics.agreement(np.load(top1_file), pred)
    out["keras_accuracy"] = model.manifest.reference.keras_test_accuracy
    return out


def peak_rss_mb() -> float:
    """This process's resident-memory high-water mark in MB (VmHWM, else getrusage)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


# ---------------------------------------------------------------------------- machine


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on: enough to tell a Pi 4 from a Pi 5 or a laptop."""
    info: dict[str, Any] = {
        "platform": platform.platform(), "machine": platform.machine(),
        "cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
        "numpy": np.__version__, "runtimes": installed_versions(RUNTIME_DISTS),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    board = Path("/proc/device-tree/model")
    if board.is_file():
        info["board"] = board.read_bytes().rstrip(b"\0").decode(errors="replace")
    return info


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (x86 and Arm spell it differently)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.processor() or platform.machine()
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in text.splitlines():
            if line.split(":")[0].strip() == key and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def worker_main(argv: list[str]) -> int:
    """``python -m fmnist_edge.benchmarks.device '<measurement json>'``: print one JSON line."""
    try:
        job = Measurement(**json.loads(argv[0]))
        print(json.dumps(measure(job)))
    except (UserError, OSError, ValueError, TypeError, IndexError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
