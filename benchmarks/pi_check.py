"""``make pi-check``: install the wheel into emulated Raspberry Pi OS roots and compare answers.

    python -m fmnist_edge.benchmarks.pi_check --roots /var/tmp/pi-roots
    python -m fmnist_edge.benchmarks.pi_check --roots /var/tmp/pi-roots --arch armhf --json
    make pi-check PI_ROOTS=/var/tmp/pi-roots        # both, report in artifacts/pi-check/

Why: the Pis people own are armv7l/armv6 (32-bit Pi OS) and aarch64, and this machine is
x86_64.  A Debian bookworm root per architecture (debootstrap, run through qemu-user) is
the closest thing to a Pi that needs no Pi:

* **armhf** (32-bit Pi OS): no runtime has a wheel there, so the README's way is Debian's
  ``python3-numpy python3-pil python3-click``, a venv with ``--system-site-packages`` and
  ``pip install --no-deps``; the numpy runtime runs the shipped ``.npz`` weights.
* **arm64** (64-bit Pi OS): the base install from PyPI's aarch64 wheels (numpy, pillow,
  click, ai-edge-litert) into a venv with ``--system-site-packages``, as the README says
  (so that Pi OS's ``python3-picamera2`` is importable; pip still installs the wheels,
  which take precedence over Debian's).

In each root the wheel built from this checkout classifies the same test PNGs as this
machine does, with the same backend, and the answers must agree image for image.  The PNGs
are 28x28 and never reach the segmenters, so each root also classifies photo-like JPEG
renders of test images (``fmnist-render``) with the default photo pipeline: on arm64 that
is segment-6 (the learned segmenter runs in LiteRT), on armhf segment-3 (the numpy runtime
cannot run the net), and this machine is run with the pipeline the root reports.
``edge-doctor`` runs there too.  Needs root, ``debootstrap``, ``qemu-user-static`` and
``binfmt-support`` (Debian packages); a new root takes 6 to 11 minutes on 2 cores, a check
2 to 3.
Exit codes: 0 all answers agree, 1 a difference or a failed step.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from fmnist_edge.edge import atomic, cli_util, dataset, photo
from fmnist_edge.edge.errors import UserError

ARCHES = ("armhf", "arm64")
#: Debian packages the README tells 32-bit Pi OS users to apt install.
DEBIAN_PACKAGES = "python3,python3-venv,python3-numpy,python3-pil,python3-click"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
QEMU_OF_ARCH = {"armhf": "qemu-arm", "arm64": "qemu-aarch64"}
#: Where the check lives inside a root.
INSIDE = Path("/opt/fmnist-check")
#: Backends compared with this machine, per architecture (auto = what the runner picks).
BACKENDS = {"armhf": ("auto", "numpy"), "arm64": ("auto", "numpy", "litert")}
#: What the automatic pick must choose in each root: x86 runs that backend for "auto", so
#: the comparison is like for like and a wrong pick shows up as a difference.
AUTO_PICK = {"armhf": "numpy", "arm64": "litert"}
#: The photo pipeline each root must report: arm64 runs the learned segmenter (LiteRT is
#: in the base install), armhf has only the numpy runtime and falls back.
EXPECTED_PIPELINE = {"armhf": photo.FALLBACK_VERSION, "arm64": photo.PIPELINE_VERSION}
#: What ``python -m venv`` puts in site-packages for installing, not for running.
VENV_TOOLING = ("pip", "setuptools", "_distutils_hack", "pkg_resources",
                "distutils-precedence.pth")
#: Which split and seed the photo-like renders come from (test: never trained on).
RENDER_SPLIT, RENDER_SEED = "test", 0
#: Every class in each ``--json`` record, so all probabilities are compared, not only top-1.
TOP_K = str(len(dataset.CLASS_NAMES))
#: Where pip here finds its CA bundle, if set (copied into the roots for pip there).
CERT_VARS = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
CA_FILE = INSIDE / "ca.pem"
CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
              "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_DEFAULT_TIMEOUT": "120",
              "PYTHONDONTWRITEBYTECODE": "1"}


def log(message: str) -> None:
    """Progress on stderr, so ``--json`` keeps stdout clean."""
    click.echo(f"pi-check: {message}", err=True)


def sh(cmd: list[str], timeout: float = 1800, env: dict[str, str] | None = None) -> str:
    """Run a command; its stdout, or one UserError line with the tail of its stderr."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        raise UserError(f"{' '.join(cmd[:6])}: exit {proc.returncode}: {' | '.join(tail)}")
    return proc.stdout


def check_tools(arches: tuple[str, ...]) -> None:
    """debootstrap, chroot and a qemu binfmt handler per architecture, or what to install."""
    if os.geteuid() != 0:
        raise UserError("pi-check needs root (debootstrap and chroot)")
    missing = [t for t in ("debootstrap", "chroot") if shutil.which(t) is None]
    if missing:
        raise UserError(f"{', '.join(missing)} not found: apt-get install debootstrap "
                        "qemu-user-static binfmt-support")
    if not (BINFMT / "status").exists():  # must be mounted before debootstrap runs
        sh(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)])
        if shutil.which("update-binfmts"):
            sh(["update-binfmts", "--enable"])
    for arch in arches:
        if not (BINFMT / QEMU_OF_ARCH[arch]).exists():
            raise UserError(f"no binfmt handler {QEMU_OF_ARCH[arch]}: apt-get install "
                            "qemu-user-static binfmt-support")


def ensure_root(roots: Path, arch: str, mirror: str) -> dict[str, Any]:
    """A Debian bookworm root for ``arch`` with Python and the Debian packages (reused)."""
    root = roots / arch
    if (root / "usr/bin/python3").exists():
        return {"root": str(root), "created_s": None}
    log(f"{arch}: debootstrap bookworm into {root} (6-11 minutes)")
    start = time.perf_counter()
    shutil.rmtree(root, ignore_errors=True)
    roots.mkdir(parents=True, exist_ok=True)
    sh(["debootstrap", "--variant=minbase", f"--arch={arch}",
        f"--include={DEBIAN_PACKAGES}", "bookworm", str(root), mirror], timeout=3600)
    return {"root": str(root), "created_s": round(time.perf_counter() - start, 1)}


def build_wheel(repo: Path, out: Path) -> Path:
    """The wheel ``pip install`` would get from PyPI, built from this checkout."""
    shutil.rmtree(repo / "build" / "lib", ignore_errors=True)  # stale modules leak into it
    sh([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out),
        str(repo)])
    (wheel,) = out.glob("fmnist_edge-*.whl")
    return wheel


def write_renders(folder: Path, count: int) -> None:
    """Photo-like JPEGs of test images, made by ``fmnist-render`` here (the roots have no
    TensorFlow-side code and need none: they only classify the files)."""
    bin_dir = Path(sys.executable).parent
    sh([str(bin_dir / "fmnist-render"), "--split", RENDER_SPLIT, "-n", str(count),
        "--seed", str(RENDER_SEED), "-o", str(folder)])


def stage(root: Path, wheel: Path, pngs: Path, renders: Path | None) -> None:
    """Fresh copy of the wheel, the PNGs, the renders and the test set inside the root (old
    venv removed)."""
    target = root / INSIDE.relative_to("/")
    shutil.rmtree(target, ignore_errors=True)
    (target / "data").mkdir(parents=True)
    shutil.copy2(wheel, target / wheel.name)
    shutil.copytree(pngs, target / "png")
    if renders is not None:
        shutil.copytree(renders, target / "renders")
    for key in ("test-images", "test-labels"):
        shutil.copy2(dataset.locate(key, download=False), target / "data")
    cert = next((os.environ[v] for v in CERT_VARS if Path(os.environ.get(v, "")).is_file()),
                None)
    if cert:  # a TLS-intercepting proxy's CA, which the root's own bundle lacks
        shutil.copy2(cert, target / CA_FILE.name)


def chroot_env(root: Path) -> dict[str, str]:
    """The environment inside a root: minimal, plus proxies and the staged CA bundle."""
    env = {**CHROOT_ENV, **{k: v for k, v in os.environ.items() if k.lower().endswith("_proxy")}}
    if (root / CA_FILE.relative_to("/")).is_file():
        env["PIP_CERT"] = str(CA_FILE)
    return env


def chroot(root: Path, *cmd: str, timeout: float = 1800) -> str:
    """Run a command inside the root (emulated by qemu-user through binfmt)."""
    return sh(["chroot", str(root), *cmd], timeout=timeout, env=chroot_env(root))


def install(root: Path, arch: str, wheel: Path) -> dict[str, Any]:
    """Install the wheel as the README says for this kind of Pi; time it, size the venv."""
    venv = INSIDE / "venv"
    start = time.perf_counter()
    # Both README routes make the venv with --system-site-packages (Pi OS ships picamera2 as
    # a Debian package); 32-bit Pi OS also takes numpy/pillow/click from Debian (--no-deps),
    # 64-bit Pi OS the base install from PyPI's aarch64 wheels.
    chroot(root, "python3", "-m", "venv", "--system-site-packages", str(venv))
    no_deps = ["--no-deps"] if arch == "armhf" else []
    chroot(root, f"{venv}/bin/pip", "install", "--quiet", *no_deps, str(INSIDE / wheel.name))
    seconds = time.perf_counter() - start
    packages = json.loads(chroot(root, f"{venv}/bin/pip", "list", "--format", "json"))
    folder = root / venv.relative_to("/")
    size = folder_bytes(folder) / 1e6
    return {"install_s": round(seconds, 1), "venv_mb": round(size, 1),
            "venv_mb_without_pip": round(size - tooling_mb(folder), 1),
            "packages": {p["name"].lower(): p["version"] for p in packages},
            "machine": chroot(root, "python3", "-c",
                              "import platform; print(platform.machine())").strip()}


def tooling_mb(venv: Path) -> float:
    """MB of what ``venv`` adds for installing (pip, setuptools and their scripts): the
    README states the edge-only install without them, since an app needs neither."""
    found = [p for p in venv.glob("lib/python3*/site-packages/*")
             if p.name.lower().startswith(VENV_TOOLING)] + list(venv.glob("bin/pip*"))
    return sum(folder_bytes(p) if p.is_dir() else p.lstat().st_size for p in found) / 1e6


def folder_bytes(folder: Path) -> int:
    """Disk use of a folder in bytes (files only, symlinks not followed)."""
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def answers(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """``edge-classify --json`` output → {file name: record} (paths differ between roots)."""
    out = sh(cmd, env=env)
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {Path(r["path"]).name: r for r in records}


def classify_args(folder: Path, backend: str, method: str = photo.DEFAULT_METHOD
                  ) -> list[str]:
    """Arguments of one edge-classify run over a folder (renders sit in class sub-folders);
    every class's probability is printed so all of them can be compared."""
    return [str(folder), "--json", "-q", "-r", "-k", TOP_K,
            *([] if backend == "auto" else ["--backend", backend]),
            "-p", method]


def probabilities(record: dict[str, Any]) -> dict[str, float]:
    """{class: probability} of one record (empty when no garment was found)."""
    return {t["class"]: t["probability"] for t in record["top_k"]}


def compare(here: dict[str, dict[str, Any]], there: dict[str, dict[str, Any]]
            ) -> dict[str, Any]:
    """Top-1 agreement (same class and same answer: "unsure" or "no garment found" on one
    side only is a difference) and the largest probability differences (of the top-1 class,
    and of any class), image by image."""
    same, max_top1, max_any = 0, 0.0, 0.0
    for name, rec in here.items():
        other = there.get(name)
        if other is None:
            continue
        mine, theirs = probabilities(rec), probabilities(other)
        same += rec["answer"] == other["answer"] and list(mine)[:1] == list(theirs)[:1]
        diffs = [abs(p - theirs.get(c, 0.0)) for c, p in mine.items()]
        max_top1 = max(max_top1, diffs[0] if diffs else 0.0)
        max_any = max([max_any, *diffs, *(p for c, p in theirs.items() if c not in mine)])
    return {"images": len(here), "answered": len(there), "same_top1": same,
            "max_top1_prob_diff": round(max_top1, 6), "max_prob_diff": round(max_any, 6),
            "agree": same == len(here) == len(there)}


def pipeline_there(root: Path) -> str:
    """``photo.pipeline_version()`` inside the root: which photo pipeline pictures get there."""
    return chroot(root, f"{INSIDE}/venv/bin/python", "-c",
                  "from fmnist_edge.edge import photo; print(photo.pipeline_version())").strip()


def check_renders(root: Path, arch: str, renders: Path, version: str) -> dict[str, Any]:
    """The renders with the default pipeline and backend there, against this machine with
    the same backend and the pipeline the root runs (segment-3 where it falls back): the
    segmenters' numpy, pillow and float32 net code is what the PNGs never exercise."""
    log(f"{arch}: classifying {len(list(renders.rglob('*.jpg')))} renders ({version})")
    there = answers(["chroot", str(root), f"{INSIDE}/venv/bin/edge-classify",
                     *classify_args(INSIDE / "renders", "auto")], env=chroot_env(root))
    method = photo.FALLBACK_VERSION if version == photo.FALLBACK_VERSION else photo.DEFAULT_METHOD
    bin_dir = Path(sys.executable).parent
    here = answers([str(bin_dir / "edge-classify"),
                    *classify_args(renders, AUTO_PICK[arch], method)])
    return {"pipeline_here": photo.pipeline_version(method), **compare(here, there)}


def check_arch(roots: Path, arch: str, wheel: Path, pngs: Path, renders: Path | None,
               mirror: str) -> dict[str, Any]:
    """One architecture: root, install, classify with each backend, renders, doctor."""
    result: dict[str, Any] = {"arch": arch, **ensure_root(roots, arch, mirror)}
    root = Path(result["root"])
    start = time.perf_counter()
    stage(root, wheel, pngs, renders)
    log(f"{arch}: installing {wheel.name} the README's way")
    result.update(install(root, arch, wheel))
    bin_dir = Path(sys.executable).parent
    result["backends"] = {}
    for backend in BACKENDS[arch]:
        log(f"{arch}: classifying {len(list(pngs.iterdir()))} PNGs, backend {backend}")
        there = answers(["chroot", str(root), f"{INSIDE}/venv/bin/edge-classify",
                         *classify_args(INSIDE / "png", backend)], env=chroot_env(root))
        same = AUTO_PICK[arch] if backend == "auto" else backend
        here = answers([str(bin_dir / "edge-classify"), *classify_args(pngs, same)])
        result["backends"][backend if backend != "auto" else f"auto={same}"] = \
            compare(here, there)
    result["pipeline_version"] = pipeline_there(root)
    if renders is not None:
        result["renders"] = check_renders(root, arch, renders, result["pipeline_version"])
    doctor_env = {**chroot_env(root), "FMNIST_DATA_DIR": str(INSIDE / "data")}
    doctor = subprocess.run(["chroot", str(root), f"{INSIDE}/venv/bin/edge-doctor",
                             "--no-camera", "--parity-images", "200"], capture_output=True,
                            text=True, timeout=1800, env=doctor_env, check=False)
    result["doctor"] = {"exit_code": doctor.returncode, "output": doctor.stdout.splitlines()}
    result["check_s"] = round(time.perf_counter() - start, 1)
    return result


@click.command(name="pi-check", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--roots", type=click.Path(path_type=Path), required=True,
              help="Folder for the Debian roots (made once, then reused; outside the repo).")
@click.option("--arch", "arches", default=",".join(ARCHES), show_default=True,
              callback=cli_util.comma_choices(ARCHES, "architecture"),
              help="Comma-separated architectures.")
@click.option("--images", type=click.IntRange(min=1, max=10_000), default=100,
              show_default=True, help="Test PNGs to classify in each root.")
@click.option("--renders", type=click.IntRange(min=0, max=10_000), default=30,
              show_default=True, help="Photo-like renders of test images to classify in "
                                      "each root with the default photo pipeline (0: none).")
@click.option("--mirror", default=DEFAULT_MIRROR, show_default=True,
              help="Debian mirror for debootstrap (the one apt uses here).")
@click.option("--repo", type=click.Path(path_type=Path, file_okay=False), default=".",
              show_default=True, help="Checkout to build the wheel from.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Also write pi-check.json to this folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def cli(roots: Path, arches: tuple[str, ...], images: int, renders: int, mirror: str,
        repo: Path, output: Path | None, as_json: bool) -> int:
    """Prove the wheel installs and answers the same on emulated armhf and arm64 Pis."""
    from fmnist_edge.edge import dataset_pngs as png_writer

    start = time.perf_counter()
    check_tools(arches)
    if output is not None:
        cli_util.check_writable(output)
    with tempfile.TemporaryDirectory(prefix="pi-check-") as tmp:
        wheel = build_wheel(repo.resolve(), Path(tmp) / "dist")
        pngs = Path(tmp) / "png"
        png_writer.write(pngs, limit=images)
        jpegs = Path(tmp) / "renders" if renders else None
        if jpegs is not None:
            write_renders(jpegs, renders)
        results = [check_arch(roots.resolve(), arch, wheel, pngs, jpegs, mirror)
                   for arch in arches]
    report = {"ok": all_ok(results), "pipeline_here": photo.pipeline_version(),
              "total_s": round(time.perf_counter() - start, 1), "results": results}
    if output is not None:
        atomic.write_json(output / "pi-check.json", report)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        for r in results:
            print_arch(r)
        click.echo(f"{'all answers agree' if report['ok'] else 'DIFFERENCES found'}; "
                   f"{report['total_s']:.0f} s in total")
    return 0 if report["ok"] else cli_util.EXIT_FAILED


def all_ok(results: list[dict[str, Any]]) -> bool:
    """Every answer agrees, every root runs the photo pipeline it should (a 64-bit Pi that
    silently fell back to segment-3 would still agree with a segment-3 run here), and every
    edge-doctor passes."""
    return all(
        all(b["agree"] for b in r["backends"].values())
        and r["pipeline_version"] == EXPECTED_PIPELINE[r["arch"]]
        and ("renders" not in r or (r["renders"]["agree"]
                                    and r["renders"]["pipeline_here"] == r["pipeline_version"]))
        and r["doctor"]["exit_code"] == 0
        for r in results)


def line(label: str, c: dict[str, Any]) -> str:
    """One comparison as a report line."""
    return (f"  {label:>11}: {c['same_top1']}/{c['images']} same top-1 as x86_64, max |Δp| "
            f"top-1 {c['max_top1_prob_diff']}, any class {c['max_prob_diff']}  "
            f"{'✓' if c['agree'] else '✗'}")


def print_arch(r: dict[str, Any]) -> None:
    """One root's results, as people read them."""
    click.echo(f"{r['arch']} ({r['machine']}): venv {r['venv_mb']} MB "
               f"({r['venv_mb_without_pip']} MB without pip/setuptools), install "
               f"{r['install_s']} s, check {r['check_s']} s"
               + (f", root made in {r['created_s']} s" if r["created_s"] else ""))
    for backend, c in r["backends"].items():
        click.echo(line(backend, c))
    expected = EXPECTED_PIPELINE[r["arch"]]
    click.echo(f"  photo pipeline {r['pipeline_version']} "
               f"{'✓' if r['pipeline_version'] == expected else f'✗ (expected {expected})'}")
    if "renders" in r:
        click.echo(line(f"renders {r['renders']['pipeline_here']}", r["renders"]))
    click.echo(f"  edge-doctor exit {r['doctor']['exit_code']}:")
    for text in r["doctor"]["output"]:
        click.echo(f"    {text}")


def main() -> None:
    """Entry point for ``python -m fmnist_edge.benchmarks.pi_check``."""
    sys.exit(cli_util.run(cli))


if __name__ == "__main__":
    main()
