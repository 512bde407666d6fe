"""edge-classify as a user runs it: real images, the shipped bundle, real runtimes.

Covers the output formats and every bad input of the issue: each bad input gets one stderr
line naming it, the other inputs are still classified, exit 1 (2 for usage), no traceback.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmnist_edge.edge import dataset, inputs, photo, runtimes, shipped
from fmnist_edge.edge import dataset_pngs as pngs
from fmnist_edge.edge import manifest as mf

#: Backends to compare; a None entry makes the test fail rather than vanish when none is
#: installed (an empty parametrisation would be silently skipped).
BACKENDS = [b for b in ("litert", "onnxruntime", "tflite-runtime") if runtimes.is_installed(b)]


def classify(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a fresh process."""
    code = "from fmnist_edge.edge.cli import main; main()"
    proc = subprocess.run([sys.executable, "-c", code, *args], input=stdin,
                          capture_output=True, timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode,
                                       proc.stdout.decode(), proc.stderr.decode())


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve real test-set images as PNG files named index_label_class.png."""
    out = tmp_path_factory.mktemp("png")
    pngs.write(out, limit=12)
    return out


def test_one_image_one_line(images: Path) -> None:
    boot = next(images.glob("00000_9_*"))
    proc = classify(str(boot))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{boot}: Ankle boot (")
    assert proc.stderr == ""


def test_folder_accuracy_and_summary(images: Path) -> None:
    proc = classify(str(images))
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and len(lines) == 12
    correct = sum(dataset.CLASS_NAMES[pngs.label_of(Path(ln.split(": ")[0]))] ==
                  ln.split(": ")[1].rsplit(" (", 1)[0] for ln in lines)
    assert correct >= 10
    assert "12 classified, 0 failed" in proc.stderr
    assert f"pipeline {photo.pipeline_version()})" in proc.stderr


def test_json_top_k_and_probabilities(images: Path) -> None:
    proc = classify(str(images / "00001_2_Pullover.png"), "--json", "--top-k", "3",
                    "--model", "first")
    record = json.loads(proc.stdout)
    assert record["path"].endswith("00001_2_Pullover.png")
    probs = [t["probability"] for t in record["top_k"]]
    assert len(probs) == 3 and probs == sorted(probs, reverse=True)
    assert record["top_k"][0]["class"] == "Pullover"
    assert 0 < sum(probs) <= 1.01 and record["latency_ms"] > 0
    assert record["pipeline"] == photo.pipeline_version()  # segment-6, or its fallback
    preprocess = classify(str(images / "00001_2_Pullover.png"), "--json", "-p", "dataset")
    assert json.loads(preprocess.stdout)["pipeline"] == "dataset"


def test_stdin_glob_and_recursive(images: Path, tmp_path: Path) -> None:
    data = (images / "00002_1_Trouser.png").read_bytes()
    assert classify("-", stdin=data).stdout.startswith("-: Trouser (")
    globbed = classify(str(images / "0000[0-2]_*.png"), "-q")
    assert len(globbed.stdout.splitlines()) == 3
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    shutil.copy(images / "00002_1_Trouser.png", nested)
    flat = classify(str(tmp_path / "a"))  # its only image is in a sub-folder
    assert flat.stdout == "" and "add --recursive" in flat.stderr and flat.returncode == 1
    deep = classify(str(tmp_path / "a"), "--recursive")
    assert "Trouser" in deep.stdout


@pytest.mark.parametrize("kind", ["empty folder", "folder without images", "glob"])
def test_input_that_names_no_image_is_an_error_naming_it(tmp_path: Path, kind: str) -> None:
    """Nothing to do must not look like done: exit 1 and one line naming the input."""
    folder = tmp_path / "in"
    folder.mkdir()
    if kind == "folder without images":
        (folder / "notes.txt").write_text("not an image")
    arg = str(folder / "*.png") if kind == "glob" else str(folder)
    proc = classify(arg)
    assert proc.returncode == 1 and proc.stdout == ""
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith(f"edge-classify: {arg}: ")]
    assert len(errors) == 1, proc.stderr
    assert "Traceback" not in proc.stderr


def test_numpy_backend_matches_litert_on_the_shipped_model(images: Path) -> None:
    """The numpy runtime runs the shipped .npz weights and gives the same answers."""
    runs = {b: classify(str(images), "--backend", b, "--json", "-q") for b in ("numpy", "litert")
            if runtimes.is_installed(b)}
    labels = {b: [json.loads(ln)["top_k"][0]["class"] for ln in p.stdout.splitlines()]
              for b, p in runs.items()}
    assert len(labels["numpy"]) == 12
    for other in labels.values():
        assert sum(a == b for a, b in zip(labels["numpy"], other, strict=True)) >= 11


def test_numpy_backend_on_a_bundle_without_npz_is_one_line(tmp_path: Path) -> None:
    bundle = tmp_path / "first"
    shutil.copytree(shipped.bundles_root() / "first", bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    for name in [n for n in manifest["artifacts"] if n.endswith(".npz")]:
        del manifest["artifacts"][name]
        (bundle / name).unlink()
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    img = tmp_path / "x.png"
    Image.new("L", (28, 28)).save(img)
    proc = classify(str(img), "--model", str(bundle), "--backend", "numpy")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "no .npz file for --backend numpy" in proc.stderr


def test_altered_npz_is_refused_by_its_hash(tmp_path: Path) -> None:
    bundle = tmp_path / "first"
    shutil.copytree(shipped.bundles_root() / "first", bundle)
    (npz_file,) = bundle.glob("*.npz")
    data = bytearray(npz_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz_file.write_bytes(bytes(data))
    img = tmp_path / "x.png"
    Image.new("L", (28, 28)).save(img)
    proc = classify(str(img), "--model", str(npz_file))
    assert proc.returncode == 1 and "does not match its SHA-256" in proc.stderr
    npz_file.unlink()
    proc = classify(str(img), "--model", str(bundle), "--backend", "numpy")
    assert proc.returncode == 1 and "missing" in proc.stderr


@pytest.mark.parametrize("backend", BACKENDS or [None])
def test_backends_agree(images: Path, backend: str | None) -> None:
    assert backend is not None, "no inference runtime is installed"
    proc = classify(str(images), "--backend", backend, "--threads", "1", "--json")
    labels = [json.loads(ln)["top_k"][0]["class"] for ln in proc.stdout.splitlines()]
    top1_file = mf.load(shipped.bundles_root() / "second").reference_top1_path()
    assert top1_file is not None
    top1 = np.load(top1_file)
    keras_labels = [dataset.CLASS_NAMES[i] for i in top1[:12]]
    assert sum(a == b for a, b in zip(labels, keras_labels, strict=True)) >= 11


def _bomb_png(path: Path) -> None:
    """A valid PNG header claiming 100,000 x 100,000 pixels (tiny file, huge claim)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
                     chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))


def test_bad_inputs_each_get_one_line_and_the_rest_still_run(images: Path,
                                                              tmp_path: Path) -> None:
    good = images / "00000_9_Ankle-boot.png"
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "truncated.png").write_bytes(good.read_bytes()[:60])
    (tmp_path / "text.png").write_text("hello, I am not a picture\n")
    _bomb_png(tmp_path / "bomb.png")
    bad = ["missing.png", "empty.png", "truncated.png", "text.png", "bomb.png"]
    args = [str(tmp_path / b) for b in bad]
    proc = classify(str(good), *args, "-q")
    no_traceback(proc)
    assert proc.returncode == 1
    assert len(proc.stdout.splitlines()) == 1
    assert proc.stdout.startswith(f"{good}: Ankle boot (")
    err = proc.stderr.splitlines()
    assert len(err) == len(bad)
    for name, line in zip(bad, err, strict=True):
        assert name in line


def test_mixed_folder_skips_non_images_without_failing(images: Path, tmp_path: Path) -> None:
    shutil.copy(images / "00000_9_Ankle-boot.png", tmp_path)
    (tmp_path / "notes.txt").write_text("not an image")
    proc = classify(str(tmp_path))
    assert proc.returncode == 0
    assert "Ankle boot" in proc.stdout
    assert "notes.txt: skipped" in proc.stderr


def test_a_folder_takes_every_type_a_single_path_takes(images: Path, tmp_path: Path) -> None:
    """AVIF, TGA, ICO and DIB open as single paths (inputs.SAFE_FORMATS); a folder scan used
    to skip them as 'not an image file type'.  Real files, written by pillow."""
    from PIL import features

    kinds = ["tga", "ico", "dib"] + (["avif"] if features.check("avif") else [])
    assert "avif" in kinds or not inputs.image_suffixes() & {".avif"}
    picture = Image.open(images / "00000_9_Ankle-boot.png").convert("RGB").resize((112, 112))
    folder = tmp_path / "kinds"
    folder.mkdir()
    for kind in kinds:
        picture.save(folder / f"boot.{kind}")
    one = [classify(str(folder / f"boot.{kind}"), "--json") for kind in kinds]
    walked = classify(str(folder), "--json")
    no_traceback(walked)
    assert walked.returncode == 0, walked.stderr
    by_path = {json.loads(ln)["path"]: json.loads(ln)["top_k"] for ln in walked.stdout.splitlines()}
    assert sorted(by_path) == sorted(str(folder / f"boot.{kind}") for kind in kinds)
    for kind, proc in zip(kinds, one, strict=True):
        assert proc.returncode == 0, proc.stderr
        assert by_path[str(folder / f"boot.{kind}")] == json.loads(proc.stdout)["top_k"]
    assert "skipped" not in walked.stderr


def _copy_bundle(tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(shipped.bundles_root() / "first", dst)
    return dst


def test_tampered_and_truncated_models_are_refused(images: Path, tmp_path: Path) -> None:
    bundle = _copy_bundle(tmp_path)
    model = bundle / "first-int8.tflite"
    raw = bytearray(model.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    model.write_bytes(bytes(raw))
    proc = classify(str(images / "00000_9_Ankle-boot.png"), "--model", str(bundle))
    no_traceback(proc)
    assert proc.returncode == 1 and "SHA-256" in proc.stderr and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1
    model.write_bytes(bytes(raw[:1000]))
    proc = classify(str(images / "00000_9_Ankle-boot.png"), "--model", str(model))
    assert proc.returncode == 1 and "first-int8.tflite" in proc.stderr
    no_traceback(proc)


def test_not_a_bundle_and_usage_errors(images: Path, tmp_path: Path) -> None:
    proc = classify(str(images), "--model", str(tmp_path))
    assert proc.returncode == 1 and "manifest.json" in proc.stderr
    assert classify().returncode == 2
    bad_k = classify(str(images), "--top-k", "0")
    assert bad_k.returncode == 2 and len(bad_k.stderr.splitlines()) == 1
    no_traceback(bad_k)


@pytest.mark.parametrize("model", ["third", "/nonexistent/bundle"])
def test_a_model_that_names_nothing_is_a_usage_error(images: Path, model: str) -> None:
    """No such path and no shipped model of that name: exit 2 (usage), as an unknown
    --models name is for fmnist-train; a broken bundle that exists stays exit 1 (above)."""
    proc = classify(str(images / "00000_9_Ankle-boot.png"), "--model", model)
    no_traceback(proc)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "no shipped model has that name" in proc.stderr
    assert "first, second" in proc.stderr and proc.stdout == ""


def test_a_bundles_manifest_names_its_folder(images: Path) -> None:
    img = str(images / "00000_9_Ankle-boot.png")
    by_file = classify(img, "--json", "--model", str(shipped.bundles_root() / "first" /
                                                       mf.MANIFEST_NAME))
    by_name = classify(img, "--json", "--model", "first")
    assert by_file.returncode == 0, by_file.stderr
    assert json.loads(by_file.stdout)["top_k"] == json.loads(by_name.stdout)["top_k"]


@pytest.mark.parametrize("source", ["/nonexistent/clip.avi", "nosuch.mp4", "/dev/video97"])
def test_camera_that_does_not_exist_is_a_usage_error(source: str) -> None:
    """A missing video file or device path is a mistake in the command line: exit 2, as
    edge-serve says for the same --camera (one check, camera_source.source_problem)."""
    proc = classify("--camera", source, "--frames", "3")
    no_traceback(proc)
    assert proc.returncode == 2, proc.stderr
    assert f"{source}: no such video file or device" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and proc.stdout == ""


def test_camera_that_exists_but_does_not_open_stays_a_failure(tmp_path: Path) -> None:
    """A file that is there but is no video is the camera failing, not usage: exit 1."""
    pytest.importorskip("cv2")
    clip = tmp_path / "clip.avi"
    clip.write_text("not a video\n")
    proc = classify("--camera", str(clip), "--frames", "3")
    no_traceback(proc)
    assert proc.returncode == 1, proc.stderr
    assert "could not open" in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_camera_video_file_is_classified(tmp_path: Path) -> None:
    """The real OpenCV path: a video made of upscaled dataset images, classified per frame."""
    cv2 = pytest.importorskip("cv2")
    test = dataset.load_split("test")
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (224, 224))
    for i in range(5):
        big = np.array(Image.fromarray(test.images[i]).resize((224, 224), Image.NEAREST))
        writer.write(cv2.cvtColor(big, cv2.COLOR_GRAY2BGR))
    writer.release()
    out = tmp_path / "frames"
    proc = classify("--camera", str(path), "--save-frames", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(ln) for ln in proc.stdout.splitlines()]
    assert len(records) == 5
    truth = [dataset.CLASS_NAMES[i] for i in test.labels[:5]]
    assert sum(r["top_k"][0]["class"] == t for r, t in zip(records, truth, strict=True)) >= 4
    assert len(list(out.glob("*.png"))) == 5


def test_full_test_set_as_png_files_gives_the_verified_int8_accuracy(tmp_path: Path) -> None:
    """All 10,000 test images written as PNG and read back through edge-classify reproduce
    the accuracy the exporter verified for the shipped int8 model, to the last image."""
    pngs.write(tmp_path)
    proc = classify(str(tmp_path), "--model", "first", "--backend", "litert", "--json", "-q")
    assert proc.returncode == 0, proc.stderr[-500:]
    records = [json.loads(ln) for ln in proc.stdout.splitlines()]
    assert len(records) == 10_000
    names = list(dataset.CLASS_NAMES)
    correct = sum(names.index(r["top_k"][0]["class"]) == pngs.label_of(Path(r["path"]))
                  for r in records)
    manifest = mf.load(shipped.bundles_root() / "first")
    verified = manifest.artifacts["first-int8.tflite"].verification["accuracy"]
    assert correct / 10_000 == pytest.approx(verified, abs=1e-9)


def test_stdin_larger_than_the_cap_is_refused() -> None:
    """A runaway pipe is cut off at the cap, one line, exit 1, nothing decoded."""
    proc = classify("-", stdin=b"\0" * (inputs.MAX_STDIN_BYTES + 1))
    no_traceback(proc)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"edge-classify: -: stdin is larger than "
                                   f"{inputs.MAX_STDIN_BYTES // 2**20} MiB")


def test_symlink_loop_is_walked_once(images: Path, tmp_path: Path) -> None:
    folder = tmp_path / "loop"
    folder.mkdir()
    shutil.copy(next(images.glob("00000_9_*")), folder / "boot.png")
    (folder / "again").symlink_to(folder, target_is_directory=True)
    proc = classify(str(folder), "--recursive")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr  # a loop is noted, not a failure
    assert len(proc.stdout.splitlines()) == 1
    assert "symlink loop" in proc.stderr


def _wait_for_stdin_read(pid: int, limit_s: float = 60.0) -> None:
    """Until the process sleeps in a pipe read (Linux /proc), or 3 s where that is unknown."""
    wchan = Path(f"/proc/{pid}/wchan")
    deadline = time.monotonic() + limit_s
    if not wchan.exists():
        time.sleep(3)
        return
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if "pipe_read" in wchan.read_text():
                return
        time.sleep(0.05)


def test_ctrl_c_exits_130_with_one_line() -> None:
    """SIGINT while waiting on stdin: "interrupted", exit code 130, no traceback."""
    code = "from fmnist_edge.edge.cli import main; main()"
    # A shell's background job starts with SIGINT ignored, and children inherit that: give
    # the child the default handler, as an interactive terminal would.
    proc = subprocess.Popen([sys.executable, "-c", code, "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_for_stdin_read(proc.pid)  # the model loads, then the read of stdin blocks
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.strip() == "edge-classify: interrupted" and out == ""
