"""Camera input through a real video file (OpenCV), plus frame annotation and saving.

A live USB webcam and the Raspberry Pi camera are not available here: the OpenCV device path
is checked only for its failure message, and the Picamera2 path only against a stand-in
module (it checks our wiring — BGR order, start/stop/close — not libcamera itself).  Only the
tests that decode or write video need OpenCV (the ``cv2`` fixture skips them without it); the
Picamera2, install-hint and annotation tests run on a Pi install without OpenCV too.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from PIL import Image

from fmnist_edge.edge import camera, camera_source, photo
from fmnist_edge.edge.dataset import load_split
from fmnist_edge.edge.errors import UserError

FRAME_SIZE = (640, 480)
N_FRAMES = 20


@pytest.fixture(scope="module")
def cv2() -> Any:
    """OpenCV, for the tests that read or write real video files (skipped without it)."""
    return pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def images(data_dir: Path) -> np.ndarray:
    return load_split("test").images[:N_FRAMES]


def frame_of(image: np.ndarray, index: int) -> np.ndarray:
    """An RGB frame: the garment upscaled 10x, light on a dark table, a different place each
    frame, as a camera looking down at it would see."""
    big = np.asarray(Image.fromarray(image).resize((280, 280), Image.Resampling.BICUBIC))
    frame = np.zeros((FRAME_SIZE[1], FRAME_SIZE[0], 3), np.uint8)
    top, left = 20 + (index * 7) % 160, 30 + (index * 17) % 300
    frame[top:top + 280, left:left + 280] = big[..., None]
    return frame


def write_video(cv2: Any, path: Path, frames: list[np.ndarray]) -> Path:
    """A real MJPG .avi written by OpenCV (frames given RGB, written BGR as OpenCV wants)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, FRAME_SIZE)
    assert writer.isOpened(), "OpenCV cannot write MJPG here"
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()
    return path


@pytest.fixture(scope="module")
def video(cv2: Any, images: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("video")
    return write_video(cv2, folder / "garments.avi",
                       [frame_of(img, i) for i, img in enumerate(images)])


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(np.float64).ravel(), b.astype(np.float64).ravel())[0, 1])


def test_video_file_frames_classify_like_their_sources(video: Path, images: np.ndarray) -> None:
    with camera.open_camera(str(video)) as cam:
        frames = list(cam)
    assert len(frames) == N_FRAMES
    cors, segmented = [], []
    for frame, source in zip(frames, images, strict=True):
        assert frame.shape == (FRAME_SIZE[1], FRAME_SIZE[0], 3)
        assert frame.dtype == np.uint8
        pixels = photo.frame_to_pixels(frame, "dataset")  # the exact inverse of frame_of
        assert pixels.shape == (28, 28) and pixels.dtype == np.uint8
        cors.append(corr(pixels, source))
        segmented.append(corr(photo.frame_to_pixels(frame), source))  # the default
    assert min(cors) > 0.8, cors
    assert np.mean(cors) > 0.9, cors
    # The default segment pipeline re-draws tones and drops faint, thin parts (sandal
    # straps): close, not exact.
    assert np.mean(segmented) > 0.85, segmented


def test_frames_come_out_rgb(cv2: Any, tmp_path: Path) -> None:
    red = np.zeros((FRAME_SIZE[1], FRAME_SIZE[0], 3), np.uint8)
    red[..., 0] = 230
    path = write_video(cv2, tmp_path / "red.avi", [red] * 3)
    with camera.open_camera(str(path)) as cam:
        frame = next(cam)
        assert frame[..., 0].mean() > 200 and frame[..., 2].mean() < 30
        assert frame.flags["C_CONTIGUOUS"]


def test_leaving_the_block_releases_the_video(video: Path) -> None:
    """After the with block (also one left by an exception) the capture is released: the
    frame iterator gives nothing more, although the file has frames left."""
    with camera.open_camera(str(video)) as frames:
        assert next(frames).shape[2] == 3
    assert list(frames) == []
    with pytest.raises(KeyboardInterrupt), camera.open_camera(str(video)) as frames:
        next(frames)
        raise KeyboardInterrupt
    assert list(frames) == []


@pytest.mark.parametrize("source, reason", [
    ("/no/such/video.avi", "no such video file or device"),
    ("99", "no such camera"),
])
def test_sources_that_do_not_open(cv2: Any, source: str, reason: str) -> None:
    expected = "^" + re.escape(f"camera {source}: could not open")
    with pytest.raises(UserError, match=expected) as info, camera.open_camera(source):
        pass
    assert reason in str(info.value)
    assert "\n" not in str(info.value)


def test_which_sources_are_usage_errors(tmp_path: Path) -> None:
    """The one check both CLIs make before opening anything: names, device numbers and
    existing files may be cameras; a missing path or a folder never is."""
    clip = tmp_path / "clip.avi"
    clip.write_bytes(b"RIFF")
    for source in ("auto", " picamera ", "0", "12", str(clip)):
        assert camera_source.source_problem(source) is None, source
    assert camera_source.source_problem(str(tmp_path / "nosuch.mp4")) == \
        "no such video file or device"
    assert "not a video file" in (camera_source.source_problem(str(tmp_path)) or "")
    # A character device (here /dev/null, present on every Linux) is named by its number.
    assert "name the webcam by its number" in (camera_source.source_problem("/dev/null") or "")


def test_text_file_is_not_a_video(cv2: Any, tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    path.write_text("not a video\n")
    with pytest.raises(UserError, match="^" + re.escape(f"camera {path}: could not open")), \
            camera.open_camera(str(path)):
        pass


def test_missing_opencv_gives_install_hint(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)     # makes `import cv2` raise ImportError
    clip = tmp_path / "clip.avi"
    clip.write_bytes(b"RIFF")
    with pytest.raises(UserError, match="pip install opencv-python-headless"), \
            camera.open_camera(str(clip)):
        pass


def test_missing_picamera2_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(UserError, match="sudo apt install python3-picamera2"), \
            camera.open_camera("picamera"):
        pass


@pytest.mark.skipif(Path("/dev/video0").exists(), reason="a real webcam is attached")
def test_auto_without_any_camera(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Picamera2 and no webcam: one line naming both (OpenCV's own reason, or its
    install hint where OpenCV is absent)."""
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(UserError, match=r"^camera auto: no Raspberry Pi camera") as info, \
            camera.open_camera("auto"):
        pass
    assert "camera 0: " in str(info.value) and "\n" not in str(info.value)


# ------------------------------------------------------------------------------------------
# Picamera2 wiring, against a stand-in module (the real one needs libcamera on a Pi)


class FakePicamera2:
    """Just the Picamera2 calls camera.py makes, recording them."""

    cameras: ClassVar[list[dict[str, Any]]] = [{"Model": "imx708"}]
    last: ClassVar[FakePicamera2 | None] = None

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.config: dict[str, Any] = {}
        FakePicamera2.last = self

    @staticmethod
    def global_camera_info() -> list[dict[str, Any]]:
        return FakePicamera2.cameras

    def create_video_configuration(self, main: dict[str, Any]) -> dict[str, Any]:
        return {"main": main}

    def configure(self, config: dict[str, Any]) -> None:
        self.config = config
        self.calls.append("configure")

    def start(self) -> None:
        self.calls.append("start")

    def capture_array(self) -> np.ndarray:
        w, h = self.config["main"]["size"]
        frame = np.zeros((h, w, 3), np.uint8)
        frame[..., 0] = 200                            # B in RGB888 memory order
        return frame

    def stop(self) -> None:
        self.calls.append("stop")

    def close(self) -> None:
        self.calls.append("close")


@pytest.fixture()
def fake_picamera2(monkeypatch: pytest.MonkeyPatch) -> type[FakePicamera2]:
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", module)
    monkeypatch.setattr(FakePicamera2, "cameras", [{"Model": "imx708"}])
    return FakePicamera2


def test_picamera_path_with_stand_in(fake_picamera2: type[FakePicamera2]) -> None:
    with camera.open_camera("auto", size=(320, 240)) as frames:
        frame = next(frames)
        assert fake_picamera2.last is not None
        assert fake_picamera2.last.calls == ["configure", "start"]
    fake = fake_picamera2.last
    assert fake is not None
    assert fake.config["main"] == {"size": (320, 240), "format": "RGB888"}
    assert frame.shape == (240, 320, 3)
    assert frame[..., 2].mean() == 200 and frame[..., 0].mean() == 0   # BGR → RGB
    assert fake.calls == ["configure", "start", "stop", "close"]


def test_picamera_without_attached_camera(fake_picamera2: type[FakePicamera2],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fake_picamera2, "cameras", [])
    with pytest.raises(UserError, match=r"^camera picamera: could not open"), \
            camera.open_camera("picamera"):
        pass


# ------------------------------------------------------------------------------------------
# Annotating and saving frames


def test_annotate_draws_on_a_copy(images: np.ndarray) -> None:
    frame = frame_of(images[0], 0)
    before = frame.copy()
    out = camera.annotate(frame, "Ankle boot 97.1%")
    np.testing.assert_array_equal(frame, before)      # the input is untouched
    assert out.shape == frame.shape and out.dtype == np.uint8
    changed = np.any(out != frame, axis=2)
    assert changed.sum() > 100
    ys, xs = np.nonzero(changed)
    assert ys.max() < FRAME_SIZE[1] // 4               # a label band at the top
    assert out[ys, xs].max() == 255                    # white text is there


def test_save_frame_writes_a_png_atomically(images: np.ndarray, tmp_path: Path) -> None:
    frame = camera.annotate(frame_of(images[1], 1), "Trouser")
    target = tmp_path / "out" / "frame-0001.png"
    assert camera.save_frame(frame, target) == target
    with Image.open(target) as img:
        assert img.format == "PNG"
        np.testing.assert_array_equal(np.asarray(img.convert("RGB")), frame)
    assert sorted(p.name for p in target.parent.iterdir()) == ["frame-0001.png"]
    with pytest.raises(UserError, match="frame must be"):
        camera.save_frame(frame.astype(np.float32), tmp_path / "bad.png")


def test_numpy_1_builds_are_told_apart() -> None:
    """The message picamera2 fails with on 64-bit Pi OS when Debian's simplejpeg (numpy 1.x)
    meets the venv's numpy 2 (here: simplejpeg 1.7.2's wheel under numpy 2.4.6) points to
    the [picamera] extra; a missing module does not."""
    assert camera.built_for_numpy_1("numpy.dtype size changed, may indicate binary "
                                    "incompatibility. Expected 96 from C header, got 88 "
                                    "from PyObject")
    assert camera.built_for_numpy_1("numpy.core.multiarray failed to import")
    assert not camera.built_for_numpy_1("No module named 'picamera2'")
