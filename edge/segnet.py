"""A learned garment segmenter: a tiny U-Net run by the device's own inference runtime.

Pipeline "segment-3" (:mod:`fmnist_edge.edge.segment`) learns the background from the
frame's border ring, so a garment filling the frame, touching the border or patterned like
its background defeats it.  This net (trained by :mod:`fmnist_edge.train.segnet` on
``(picture, mask)`` pairs of photo-like renders of training images) looks at the whole
segmentation copy at once.  It runs in LiteRT / tflite-runtime (``.tflite``) or onnxruntime
(``.onnx``), the first of them installed (in that order, whatever ``--backend`` the
classifier runs in); where none is installed or none runs the file (32-bit Pi OS: the numpy
runtime only) :func:`available` is False and the photo pipeline falls back to segment-3 by
name.

Alone it is no better than segment-3 on real photos (it cuts the stripes out of striped
T-shirts and fuses hangers and fur trims into coats, textures the renders never showed it),
but the two fail on different photos: the default pipeline ("segment-6",
:func:`fmnist_edge.edge.photo.to_views`) asks the model about both cut-outs and a third,
segment-3's colour models seeded by the net's mask (:func:`segment.refine`).

Its answer has :func:`fmnist_edge.edge.segment.find_garment`'s contract: a
:class:`~fmnist_edge.edge.segment.Garment` with ``found`` / ``none`` / ``full`` and a mask at
the copy's size, after the same clean-up (the most central large region, a second one for a
pair of shoes, holes filled, too little = none, nearly all = full).
"""

from __future__ import annotations

import sys
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from fmnist_edge.edge import runtimes, segment
from fmnist_edge.edge.errors import first_line

#: The net's input (height, width): the segmentation copy of a 3:4 portrait picture.
#: Landscape copies are transposed to portrait; other shapes are resized to it and the mask
#: resized back.
INPUT_SHAPE = (segment.SEGMENT_SIDE, segment.SEGMENT_SIDE * 3 // 4)

#: Where the model files live (package data, beside this module).
MODEL_DIR = Path(__file__).resolve().parent / "segmenter"

#: Model file per format, tried in this order (the classifier's order: LiteRT first).
FILES = {"tflite": "segnet-float32.tflite", "onnx": "segnet-float32.onnx"}

#: What the training run records beside the files (config, validation IoU, hashes).
RECORD = "segnet.json"

#: A pixel is garment when the net gives it at least this probability.
THRESHOLD = 0.5


def net_input(rgb: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) → float32 network input: each picture's channel means removed and
    its spread scaled to about 1 (a colour cast or a dim room is not a feature).  Training
    and the device both call this, so they cannot drift apart."""
    f = rgb.astype(np.float32) / np.float32(255.0)
    f = f - f.mean(axis=(1, 2), keepdims=True)
    return (f / (f.std(axis=(1, 2, 3), keepdims=True) + np.float32(0.05))).astype(np.float32)


def portrait(small: Image.Image) -> tuple[np.ndarray, bool]:
    """The copy as (96, 72, 3) uint8 pixels, and whether it was transposed (landscape)."""
    rgb = small.convert("RGB")
    turned = rgb.width > rgb.height
    if turned:
        rgb = rgb.transpose(Image.Transpose.TRANSPOSE)
    if rgb.size != INPUT_SHAPE[::-1]:
        rgb = rgb.resize(INPUT_SHAPE[::-1], Image.Resampling.BILINEAR)
    return np.asarray(rgb, np.uint8), turned


def model_path(backend: str | None = None) -> Path | None:
    """The model file a runtime here can run (or the one ``backend`` runs), or None."""
    for fmt, name in FILES.items():
        path = MODEL_DIR / name
        if not path.is_file():
            continue
        if backend is not None:
            if runtimes.FORMAT_OF_BACKEND.get(backend) == fmt:
                return path
            continue
        if any(runtimes.is_installed(b) for b in runtimes.PREFERENCE[fmt]):
            return path
    return None


def install_hint() -> str:
    """What to install so the net runs here (edge-doctor and the segment-4 refusal)."""
    return (f"{runtimes.install_hint('litert')} or {runtimes.install_hint('onnxruntime')} "
            "(64-bit OS), or pip install --no-deps tflite-runtime (32-bit Pi OS, with "
            "Debian's numpy)")


def available() -> bool:
    """True when the net can run here: its files are shipped, a runtime for one of them is
    installed, and that runtime loads and runs it (tried once per process: a runtime that
    imports but cannot run the file, a damaged install, must not fail every photo; the
    photo pipeline then uses segment-3 alone and says so)."""
    return model_path() is not None and _runs()


@lru_cache(maxsize=1)
def _runs() -> bool:
    """Load the net and run it on a grey picture; False (and one line on stderr) if it fails."""
    try:
        probabilities(Image.new("RGB", INPUT_SHAPE[::-1], (128, 128, 128)))
    except Exception as exc:  # any runtime's load or run error: fall back, never crash
        print(f"fmnist-edge: the learned segmenter cannot run here ({first_line(exc)}); "
              f"using segment-3 alone", file=sys.stderr)
        return False
    return True


#: Interpreters are not thread-safe, and ``edge-serve`` preprocesses uploads and camera
#: frames in several threads at once (only the classifier's call is serialised there).
_RUN_LOCK = threading.Lock()


@lru_cache(maxsize=4)
def _session(path: Path, backend: str | None) -> runtimes.Session:
    return runtimes.open_session(path, backend, threads=1)


def probabilities(small: Image.Image, backend: str | None = None) -> np.ndarray:
    """P(garment) per pixel of ``small`` (float32 (h, w)), from the net."""
    path = model_path(backend)
    if path is None:
        raise RuntimeError("no segmenter model this machine can run")
    pixels, turned = portrait(small)
    with _RUN_LOCK:
        prob = np.asarray(_session(path, backend).run(net_input(pixels[None])), np.float32)
    prob = prob.reshape(INPUT_SHAPE)
    if turned:
        prob = prob.T
    h, w = small.height, small.width
    if prob.shape != (h, w):
        prob = np.asarray(Image.fromarray(prob, mode="F").resize((w, h),
                                                                Image.Resampling.BILINEAR))
    return np.ascontiguousarray(prob, np.float32)


def find_garment(small: Image.Image, backend: str | None = None) -> segment.Garment:
    """Segment the garment in the small RGB copy (:func:`segment.segment_copy`) with the net."""
    h, w = small.height, small.width
    if min(h, w) < segment.MIN_SIDE:  # as segment-3: too small to tell garment from background
        return segment.Garment(np.ones((h, w), np.float32), "full")
    return garment(probabilities(small, backend))


def garment(prob: np.ndarray) -> segment.Garment:
    """The net's probabilities → a cleaned-up :class:`~segment.Garment` (the contract of
    :func:`segment.find_garment`)."""
    h, w = prob.shape
    mask = prob >= THRESHOLD
    if mask.any():
        mask = segment.fill_holes(segment.main_regions(mask, prob))
    area = float(mask.mean())
    if area >= segment.FULL_AREA:
        return segment.Garment(np.ones((h, w), np.float32), "full")
    if area < segment.MIN_AREA:
        return segment.Garment(np.zeros((h, w), np.float32), "none")
    return segment.Garment(mask.astype(np.float32), "found")
