"""Camera and video input for the device runner: frames in, RGB uint8 (H, W, 3) out.

Sources:

``"picamera"``
    A Raspberry Pi CSI camera through Picamera2 (``sudo apt install python3-picamera2``).
    OpenCV cannot open these: they are libcamera devices, not V4L2 webcams
    (opencv/opencv#22820).  This path follows the Picamera2 API but cannot be tested off a
    Pi (Picamera2 needs libcamera); the test suite covers it only with a stand-in module.
``"0"``, ``"1"``, ...
    A USB webcam by OpenCV device index (``pip install opencv-python-headless``).
a file path
    A video file OpenCV can read; iteration ends at its last frame.
``"auto"``
    Picamera2 if it imports and lists an attached camera, else OpenCV device 0.

Both libraries are imported only when a camera is opened, so classifying files needs
neither.  Every frame is handed out RGB-ordered whatever the library's native order, so
:func:`fmnist_edge.edge.photo.frame_to_pixels` needs no ``bgr`` flag for these frames.
:func:`annotate` and :func:`save_frame` use pillow only.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fmnist_edge.edge.atomic import atomic_path
from fmnist_edge.edge.camera_source import AUTO, PICAMERA, is_device_number, source_problem
from fmnist_edge.edge.errors import UserError, first_line

OPENCV_HINT = "pip install opencv-python-headless"
PICAMERA_HINT = "sudo apt install python3-picamera2"
#: On 64-bit Pi OS, Debian's picamera2 loads Debian's simplejpeg, built for numpy 1.x, and
#: the venv runs numpy 2 (LiteRT needs it): PyPI's simplejpeg, in this extra, is built for it.
PICAMERA_NUMPY_HINT = "pip install 'fmnist-edge[picamera]'"
#: What numpy says when a C extension built for numpy 1.x is loaded under numpy 2 (Cython's
#: check, and numpy's own import guard).
NUMPY_ABI_ERRORS = ("numpy.dtype size changed", "compiled using NumPy 1.x",
                    "multiarray failed to import")

#: Consecutive failed reads after which a live camera counts as gone (files just end).
MAX_FAILED_READS = 5


@contextlib.contextmanager
def open_camera(source: str = AUTO, size: tuple[int, int] = (640, 480)
                ) -> Iterator[Iterator[np.ndarray]]:
    """Open ``source`` ("auto", "picamera", a device index like "0", or a video file path)
    and yield an iterator of RGB uint8 (H, W, 3) frames; the device is released on exit::

        with open_camera("auto") as frames:
            for frame in frames:
                ...

    ``size`` (width, height, as camera libraries take it) is requested from live cameras
    (they may pick the nearest mode they support); video files keep their own size, and
    their iterator ends at the last frame.  Raises :class:`UserError` with an install hint
    when the needed library is missing, or when the source does not open.
    """
    source = str(source).strip()
    auto = source == AUTO
    if auto:
        source = PICAMERA if _picamera_has_camera() else "0"
    opener = picamera_frames(size) if source == PICAMERA else opencv_frames(source, size)
    with contextlib.ExitStack() as stack:
        try:
            frames = stack.enter_context(opener)
        except UserError as exc:
            if not auto:
                raise
            raise UserError(f"camera auto: no Raspberry Pi camera (Picamera2) found, and {exc}"
                            ) from exc
        yield frames


@contextlib.contextmanager
def picamera_frames(size: tuple[int, int]) -> Iterator[Iterator[np.ndarray]]:
    """A Picamera2 video stream at ``size`` in RGB888 (not testable off a Pi; see module doc).

    As in the Picamera2 examples: configure, start, ``capture_array`` per frame, then stop
    and close, here also when classification fails or the user presses Ctrl-C.
    """
    picamera2 = _import_picamera2()
    if not _list_picameras(picamera2):
        raise UserError("camera picamera: could not open (no Raspberry Pi camera attached; "
                        "check the ribbon cable and 'rpicam-hello --list-cameras')")
    picam = None
    try:
        try:
            picam = picamera2.Picamera2()
            picam.configure(picam.create_video_configuration(
                main={"size": tuple(size), "format": "RGB888"}))
            picam.start()
        except Exception as exc:  # libcamera raises RuntimeError, IndexError, ...
            raise UserError(f"camera picamera: could not open ({first_line(exc)})") from exc
        yield _picamera_reader(picam)
    finally:
        if picam is not None:
            with contextlib.suppress(Exception):
                picam.stop()
            with contextlib.suppress(Exception):
                picam.close()


def _picamera_reader(picam: Any) -> Iterator[np.ndarray]:
    """Frames as RGB, forever.  Picamera2's ``RGB888`` arrays are B, G, R in memory."""
    while True:
        try:
            frame = picam.capture_array()
        except Exception as exc:  # libcamera errors come in several types
            raise UserError(f"camera picamera: capture failed ({exc})") from exc
        yield _bgr_to_rgb(np.asarray(frame)[..., :3])


@contextlib.contextmanager
def opencv_frames(source: str, size: tuple[int, int]) -> Iterator[Iterator[np.ndarray]]:
    """A USB webcam by index or a video file by path, through ``cv2.VideoCapture``."""
    cv2 = _import("cv2", f"camera {source}: OpenCV is not installed ({OPENCV_HINT})")
    is_device = is_device_number(source)
    problem = None if is_device else source_problem(source)
    if problem is not None:
        raise UserError(f"camera {source}: could not open ({problem})")
    with _quiet_opencv(cv2):
        capture = cv2.VideoCapture(int(source) if is_device else source)
        if not capture.isOpened():
            capture.release()
            what = ("no such camera, or it is in use" if is_device
                    else "not a video format OpenCV can read")
            raise UserError(f"camera {source}: could not open ({what})")
    try:
        if is_device:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        yield _opencv_reader(capture, source, is_file=not is_device)
    finally:
        capture.release()


def _opencv_reader(capture: Any, source: str, is_file: bool) -> Iterator[np.ndarray]:
    """Frames as RGB until a file ends; UserError if a live camera stops delivering."""
    while True:
        for _ in range(1 if is_file else MAX_FAILED_READS):
            ok, frame = capture.read()
            if ok and frame is not None:
                break
        else:
            if is_file:
                return
            raise UserError(f"camera {source}: stopped delivering frames "
                            "(unplugged or in use?)")
        yield _bgr_to_rgb(frame)


def _picamera_has_camera() -> bool:
    """True if Picamera2 imports and lists at least one attached camera."""
    try:
        import picamera2
    except Exception:  # not installed, or libcamera missing underneath
        return False
    return bool(_list_picameras(picamera2))


def _list_picameras(picamera2: Any) -> list[Any]:
    """``Picamera2.global_camera_info()``, or [] if libcamera cannot be asked."""
    try:
        return list(picamera2.Picamera2.global_camera_info())
    except Exception:
        return []


def built_for_numpy_1(reason: str) -> bool:
    """Does an import error say a C extension was built for numpy 1.x (we run numpy 2)?"""
    return any(sign in reason for sign in NUMPY_ABI_ERRORS)


def _import_picamera2() -> Any:
    """Picamera2, or a one-line UserError saying why not and what to do."""
    try:
        import picamera2
    except (ImportError, ValueError) as exc:  # ValueError: Cython's "dtype size changed"
        if built_for_numpy_1(str(exc)):
            raise UserError(f"camera picamera: Picamera2 does not import ({first_line(exc)}):"
                            " a Debian module under it is built for numpy 1.x "
                            f"({PICAMERA_NUMPY_HINT})") from exc
        if isinstance(exc, ImportError):
            raise UserError("camera picamera: Picamera2 is not installed "
                            f"({PICAMERA_HINT}; Raspberry Pi OS only)") from exc
        raise
    return picamera2


def _import(module: str, missing: str) -> Any:
    """Import an optional library lazily; a missing one is a UserError with its hint."""
    try:
        return __import__(module)
    except ImportError as exc:
        raise UserError(missing) from exc


@contextlib.contextmanager
def _quiet_opencv(cv2: Any) -> Iterator[None]:
    """Silence OpenCV's own stderr warnings while opening; our UserError says it better."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        yield
        return
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(previous)


def _bgr_to_rgb(frame: np.ndarray) -> np.ndarray:
    """BGR (OpenCV, Picamera2 RGB888) → a contiguous RGB copy; grey frames become RGB."""
    if frame.ndim == 2:
        return np.ascontiguousarray(np.repeat(frame[..., None], 3, axis=2))
    return np.ascontiguousarray(frame[..., 2::-1])


# --------------------------------------------------------------------------------------------
# Output


def annotate(frame: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``frame`` (RGB uint8) with ``text`` in white on a black band, top left.

    Drawn with pillow so a Pi without OpenCV (Picamera2 only) can still save labelled frames.
    """
    img = Image.fromarray(_as_rgb(frame))
    draw = ImageDraw.Draw(img)
    font_ = font(max(12, img.height // 20))
    pad = max(2, img.height // 120)
    _, _, right, bottom = draw.textbbox((pad, pad), text, font=font_)
    draw.rectangle((0, 0, right + pad, bottom + pad), fill=(0, 0, 0))
    draw.text((pad, pad), text, fill=(255, 255, 255), font=font_)
    return np.asarray(img).copy()


def save_frame(frame: np.ndarray, path: Path) -> Path:
    """Write ``frame`` as a PNG atomically (never half a file), returning ``path``."""
    path = Path(path)
    try:
        with atomic_path(path, suffix=".png") as tmp:
            Image.fromarray(_as_rgb(frame)).save(tmp, format="PNG")
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    return path


def _as_rgb(frame: np.ndarray) -> np.ndarray:
    """Check a frame is (H, W, 3) or (H, W) uint8 and return it as contiguous RGB."""
    arr = np.asarray(frame)
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise UserError(f"frame must be (H, W, 3) or (H, W) uint8, got {arr.shape} {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return np.ascontiguousarray(arr)


@functools.lru_cache(maxsize=8)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` (the fixed bitmap font without FreeType); cached,
    since pillow parses it anew on every call and frames come many times a second."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()
