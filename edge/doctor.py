"""``edge-doctor``: what works on this device, what does not, and what to do about it.

    edge-doctor                 # one line per check, ✓ or ✗ with the fix
    edge-doctor --json          # the same as one JSON object
    edge-doctor --no-camera     # skip the camera probe (a few seconds on a Pi)

Why: on a Raspberry Pi most failures are the install, not the model: a runtime with no wheel
for this CPU, a tflite-runtime built against numpy 1 under numpy 2, a venv made without
``--system-site-packages`` that cannot see Debian's picamera2.  Every runtime and camera is
probed in a child process with a time limit, so one that crashes (illegal instruction on an
armv6) or hangs becomes a ✗ line instead of killing the doctor.

Exit codes: 0 every essential check passed, 1 one failed (camera checks are optional).
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
import sys
import sysconfig
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click

from fmnist_edge.edge import cli_util, runtimes, shipped
from fmnist_edge.edge import manifest as mf
from fmnist_edge.edge.errors import UserError

EXAMPLES = """\b
Examples:
  edge-doctor
  edge-doctor --json | jq '.checks[] | select(.ok | not)'
  edge-doctor --no-camera --parity-images 200

Exit codes: 0 all essential checks passed, 1 one failed."""

#: Seconds a runtime import or camera probe may take in its child process (a Pi Zero is slow).
PROBE_TIMEOUT_S = 60.0
#: How many standard deviations of a sample's disagreement count (binomial, at the
#: export-time rate) the parity check allows, plus one image: a small sample of a bundle
#: that agreed 98.7 % at export may disagree on 2 of 50 images by chance, a broken runtime
#: disagrees on far more.
PARITY_SIGMAS = 3.0
#: Where Debian installs python3-picamera2 (invisible to a venv without system packages).
DEBIAN_DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")

#: Imports a runtime and prints its version: run in a child, so a crash stays there.
_IMPORT_PROBE = """
import importlib, sys
name, sub = sys.argv[1], sys.argv[2]
mod = importlib.import_module(name)
if sub:
    importlib.import_module(sub)
print(getattr(mod, "__version__", "?"))
"""
#: Lists Pi cameras (libcamera) and the USB cameras OpenCV can open, as JSON.
_CAMERA_PROBE = """
import glob, json, os
out = {"picamera": None, "opencv": None}
try:
    from picamera2 import Picamera2
    out["picamera"] = [c.get("Model", "?") for c in Picamera2.global_camera_info()]
except Exception as exc:
    out["picamera_error"] = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
try:
    import cv2
    cv2.setLogLevel(0) if hasattr(cv2, "setLogLevel") else None
    found = []
    for dev in sorted(glob.glob("/dev/video*"))[:8]:
        index = int(dev[len("/dev/video"):]) if dev[len("/dev/video"):].isdigit() else None
        if index is None:
            continue
        cap = cv2.VideoCapture(index)
        if cap.isOpened():
            found.append(index)
        cap.release()
    out["opencv"] = found
except Exception as exc:
    out["opencv_error"] = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
print(json.dumps(out))
"""
#: Module to import per runtime: the part that loads the native library, not just the package.
RUNTIME_PROBES: dict[str, tuple[str, str]] = {
    "litert": ("ai_edge_litert", "ai_edge_litert.interpreter"),
    "tflite-runtime": ("tflite_runtime", "tflite_runtime.interpreter"),
    "onnxruntime": ("onnxruntime", ""),
    "numpy": ("numpy", ""),
}


@dataclass
class Check:
    """One line of the report."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    essential: bool = True

    def line(self) -> str:
        """``✓ name: detail`` or ``✗ name: detail → fix``."""
        mark = "✓" if self.ok else "✗"
        optional = "" if self.essential or self.ok else " (optional)"
        fix = f"  → {self.fix}" if self.fix and not self.ok else ""
        return f"{mark} {self.name}{optional}: {self.detail}{fix}"


def probe(code: str, *args: str, timeout: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """Run ``code`` in a fresh interpreter; (succeeded, last stdout line or error line)."""
    try:
        proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return False, f"no answer within {timeout:.0f} s"
    if proc.returncode == 0:
        lines = proc.stdout.strip().splitlines()
        return True, lines[-1] if lines else ""
    if proc.returncode < 0:
        return False, f"crashed (signal {-proc.returncode}; no build for this CPU?)"
    errors = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return False, errors[-1].strip() if errors else f"exit code {proc.returncode}"


# ---------------------------------------------------------------------------- checks


def system_checks() -> list[Check]:
    """Platform, Python, numpy (version, ABI, where it comes from), pillow, click."""
    import numpy as np
    from PIL import __version__ as pillow_version

    py = sys.version_info
    soabi = sysconfig.get_config_var("SOABI") or sys.implementation.cache_tag
    return [
        Check("platform", True, f"{platform.system()} {platform.release()}, machine "
              f"{platform.machine()}, {platform.architecture()[0]}"),
        Check("python", py >= (3, 10), f"{platform.python_implementation()} "
              f"{platform.python_version()} ({soabi}) at {sys.executable}",
              "install Python 3.10 or newer"),
        Check("numpy", True, f"{np.__version__}, C-API {_numpy_abi()}, from {_origin(np)}"),
        Check("pillow", True, f"{pillow_version}"),
        Check("click", True, f"{_version('click')}"),
        venv_check(),
    ]


def _numpy_abi() -> str:
    """numpy's C-API version: extension modules built for another one fail to import."""
    import importlib

    import numpy as np

    try:
        mu = importlib.import_module("numpy._core._multiarray_umath")  # numpy >= 2
    except ImportError:
        mu = importlib.import_module("numpy.core._multiarray_umath")
    api = getattr(mu, "_get_ndarray_c_version", lambda: None)()
    major = np.__version__.split(".")[0]
    return f"0x{api:x} (numpy {major}.x ABI)" if isinstance(api, int) else f"numpy {major}.x ABI"


def _origin(module: Any) -> str:
    path = Path(str(getattr(module, "__file__", ""))).parent.parent
    return "Debian package" if "dist-packages" in str(path) else str(path)


def _version(dist: str) -> str:
    import importlib.metadata  # only here: scanning distributions is slow on a Pi

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def in_venv() -> bool:
    """True inside a virtual environment."""
    return sys.prefix != sys.base_prefix


def sees_system_packages() -> bool:
    """True if this interpreter can import Debian's packages (system Python, or a venv
    made with ``--system-site-packages``)."""
    if not in_venv():
        return True
    cfg = Path(sys.prefix) / "pyvenv.cfg"
    text = cfg.read_text(encoding="utf-8", errors="replace") if cfg.is_file() else ""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "include-system-site-packages":
            return value.strip().lower() == "true"
    return False


def venv_check() -> Check:
    """The picamera2 trap: Debian's python3-picamera2 is invisible to an isolated venv."""
    if not in_venv():
        return Check("environment", True, "system Python (sees Debian's packages)")
    if sees_system_packages():
        return Check("environment", True, f"venv {sys.prefix} with --system-site-packages")
    return Check("environment", True, f"venv {sys.prefix} without --system-site-packages "
                 "(cannot see Debian's python3-picamera2 or python3-numpy)")


def runtime_checks() -> list[Check]:
    """Each runtime imported for real in a child process: version, or the one-line reason."""
    checks = []
    for backend, (module, sub) in RUNTIME_PROBES.items():
        ok, said = probe(_IMPORT_PROBE, module, sub)
        detail = f"{said} imports" if ok else (
            "not installed" if "No module named" in said else f"fails to import: {said}")
        fix = runtimes.install_hint(backend)
        if not ok and "numpy" in said.lower() and backend == "tflite-runtime":
            fix = "tflite-runtime 2.14 needs numpy < 2: pip install 'numpy<2', or use LiteRT"
        checks.append(Check(f"runtime {backend}", ok, detail, fix, essential=False))
    return checks


def pipeline_check() -> Check:
    """Which photo pipeline camera pictures get here.  The default needs a runtime that runs
    the learned segmenter (edge/segmenter/); without one pictures get segment-3, colour
    models alone (benchmarks/PHOTOS.md: 2-4 points lower on real photos, 6 on renders).
    Not essential: the device still answers."""
    from fmnist_edge.edge import photo, segnet

    path = segnet.model_path()
    fix = f"{segnet.install_hint()} for pipeline {photo.PIPELINE_VERSION}"
    if path is None:
        return Check("photo pipeline", False, "segment-3 alone: no runtime here can run the "
                     "learned segmenter", fix, essential=False)
    if not segnet.available():
        return Check("photo pipeline", False, f"segment-3 alone: the learned segmenter "
                     f"({path.name}) fails to run", f"reinstall its runtime: {fix}",
                     essential=False)
    return Check("photo pipeline", True,
                 f"{photo.pipeline_version()} (learned segmenter {path.name} runs)")


def picamera_fix(reason: str) -> str:
    """What to do when picamera2 does not import, from why it did not.

    Three causes seen on Pis: the venv cannot see Debian's package (made without
    ``--system-site-packages``); the package is not installed; or it is seen but one of its
    Debian-built C extensions (simplejpeg) is built for numpy 1.x and this venv runs numpy 2.
    """
    from fmnist_edge.edge import camera  # pillow's drawing code: only when a fix is needed

    if camera.built_for_numpy_1(reason):
        return (f"{camera.PICAMERA_NUMPY_HINT}: Debian's simplejpeg is built for numpy 1.x "
                "and this venv has numpy 2; PyPI's simplejpeg is built for it")
    if not sees_system_packages() and (DEBIAN_DIST_PACKAGES / "picamera2").is_dir():
        return ("Debian's python3-picamera2 is installed but this venv cannot see it: "
                f"python3 -m venv --system-site-packages {sys.prefix}")
    return ("sudo apt install python3-picamera2 (Raspberry Pi OS), in a venv made with "
            "--system-site-packages")


def camera_checks() -> list[Check]:
    """Is picamera2 importable (and if not, is it the venv trap), which cameras open."""
    ok, said = probe(_CAMERA_PROBE)
    found: dict[str, Any] = json.loads(said) if ok and said.startswith("{") else {}
    pis, usb = found.get("picamera"), found.get("opencv")
    checks = []
    if pis is None:
        reason = found.get("picamera_error", said if not ok else "not importable")
        fix = picamera_fix(reason)
        checks.append(Check("picamera2", False, f"not importable ({reason})", fix,
                            essential=False))
    else:
        checks.append(Check("picamera2", bool(pis), f"cameras: {', '.join(pis)}" if pis
                            else "imports, but libcamera lists no camera",
                            "check the ribbon cable; rpicam-hello --list-cameras",
                            essential=False))
    if usb is None:
        checks.append(Check("USB cameras", False, "OpenCV not importable "
                            f"({found.get('opencv_error', 'probe failed')})",
                            "pip install 'fmnist-edge[camera]'", essential=False))
    else:
        checks.append(Check("USB cameras", bool(usb), "open: " + ", ".join(
            f"/dev/video{i}" for i in usb) if usb else "none opens",
            "plug one in; is it in use by another program?", essential=False))
    return checks


def bundle_checks(parity_images: int, download: bool) -> list[Check]:
    """Each shipped bundle: every file's SHA-256, the runtime picked, a quick parity run."""
    from fmnist_edge.edge import dataset
    from fmnist_edge.edge.model import EdgeModel

    test, test_error = None, ""
    if parity_images:
        try:
            test = dataset.load_split("test", download=download)
        except UserError as exc:
            test_error = str(exc)
    checks = []
    for name in shipped.names():
        folder = shipped.bundles_root() / name
        try:
            manifest = mf.load(folder)
            for file in manifest.artifacts:
                manifest.check_file(file)
            hashes = ", ".join(f"{a.file} {a.sha256[:12]}" for a in manifest.artifacts.values())
        except UserError as exc:
            checks.append(Check(f"bundle {name}", False, str(exc),
                                "pip install --force-reinstall fmnist-edge"))
            continue
        checks.append(Check(f"bundle {name}", True, f"SHA-256 ok: {hashes}"))
        try:  # what edge-classify picks here by itself
            picked = EdgeModel.open(folder)
            checks.append(Check(f"pick {name}", True, f"edge-classify -m {name} runs "
                                f"{picked.artifact.file} on {picked.session.backend}"))
        except UserError as exc:
            checks.append(Check(f"pick {name}", False, str(exc), "install a runtime (above)"))
        if test is None:
            checks.append(_parity_not_run(name, test_error))
            continue
        for art in manifest.artifacts.values():  # every file a runtime here can run
            if not any(runtimes.is_installed(b) for b in runtimes.PREFERENCE.get(art.format, ())):
                continue
            try:
                model = EdgeModel.open(folder, artifact=art.file)
                checks.append(parity_check(model, test.images[:parity_images]))
            except UserError as exc:  # e.g. a runtime that is installed but broken
                checks.append(Check(f"parity {name}", False, f"{art.file}: {exc}",
                                    "see the runtime lines above"))
    if not checks:
        checks.append(Check("bundles", False, f"none shipped in {shipped.bundles_root()}",
                            "pip install --force-reinstall fmnist-edge"))
    return checks


def _parity_not_run(name: str, data_error: str) -> Check:
    """Why there is no parity figure: the user's --parity-images 0 needs no fix; missing
    test images do (``data_error``, the loader's own line)."""
    if not data_error:
        return Check(f"parity {name}", False, "skipped by --parity-images 0", essential=False)
    return Check(f"parity {name}", False, f"not run ({data_error})",
                 "set FMNIST_DATA_DIR to the Fashion-MNIST files, or edge-doctor --download",
                 essential=False)


def parity_check(model: Any, pixels: Any) -> Check:
    """Top-1 agreement with the bundle's stored Keras predictions on the first test images."""
    import numpy as np

    manifest = model.manifest
    top1_file = manifest.reference_top1_path()
    if top1_file is None:
        return Check(f"parity {manifest.model}", False, f"{model.artifact.file}: the bundle "
                     "has no reference predictions", "re-export it with fmnist-export")
    reference = np.load(top1_file)
    agree = float(np.mean(model.predict(pixels).argmax(axis=1) == reference[:len(pixels)]))
    expected = float(model.artifact.verification.get("agreement", 1.0))
    ok = parity_ok(agree, expected, len(pixels))
    return Check(f"parity {manifest.model}", ok,
                 f"{model.artifact.file} on {model.session.backend}: {agree:.1%} agreement "
                 f"with Keras on {len(pixels)} test images (export: {expected:.1%})",
                 "a runtime computes differently here: try another --backend and report it")


def parity_ok(agree: float, expected: float, images: int) -> bool:
    """Is ``agree`` on ``images`` test images what an export-time agreement of ``expected``
    makes likely?  Disagreements may exceed their expected count by :data:`PARITY_SIGMAS`
    binomial standard deviations plus one image."""
    rate = 1.0 - expected
    allowed = images * rate + PARITY_SIGMAS * math.sqrt(images * rate * (1 - rate)) + 1
    return (1.0 - agree) * images <= allowed + 1e-9


def run_checks(camera: bool, parity_images: int, download: bool) -> list[Check]:
    """Every check, in the order a user reads them."""
    checks = system_checks() + runtime_checks()
    usable = [c for c in checks if c.name.startswith("runtime ") and c.ok]
    if not usable:
        checks.append(Check("runtimes", False, "none imports", "pip install ai-edge-litert "
                            "(64-bit), or apt install python3-numpy for the numpy runtime"))
    checks.append(pipeline_check())
    checks += bundle_checks(parity_images, download)
    if camera:
        checks += camera_checks()
    return checks


@click.command(name="edge-doctor", context_settings={"help_option_names": ["-h", "--help"]},
               epilog=EXAMPLES)
@click.option("--camera/--no-camera", default=True, show_default=True,
              help="Probe picamera2 and USB cameras.")
@click.option("--parity-images", type=click.IntRange(min=0, max=10_000), default=500,
              show_default=True, help="Test images for the parity check (0 skips it).")
@click.option("--download", is_flag=True,
              help="Fetch the Fashion-MNIST test set (4.4 MB) if it is not found locally.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def cli(camera: bool, parity_images: int, download: bool, as_json: bool) -> int:
    """Check this device: Python, numpy, runtimes, cameras, shipped models, parity."""
    checks = run_checks(camera, parity_images, download)
    ok = all(c.ok for c in checks if c.essential)
    if as_json:
        click.echo(json.dumps({"ok": ok, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        for check in checks:
            click.echo(check.line())
        click.echo("all essential checks passed" if ok else "some essential checks FAILED")
    return 0 if ok else cli_util.EXIT_FAILED


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli_util.run(cli))


if __name__ == "__main__":  # pragma: no cover
    main()
