"""The camera thread: read frames, classify each, keep the latest JPEG and answer.

One background thread owns the camera (camera libraries want a single reader); HTTP
handlers only ever read :attr:`CameraLoop.latest`, so fifty viewers cost one camera read and
one classification per frame, not fifty.  A camera that disappears (video file ends, USB
webcam unplugged, Picamera2 error) changes :attr:`CameraLoop.status`; it never raises into
the server.  Live cameras are reopened every few seconds until they come back.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fmnist_edge.edge import camera
from fmnist_edge.edge.errors import UserError
from fmnist_edge.edge.serve.answer import Classifier, Options, is_unsure, label_of
from fmnist_edge.edge.serve.prometheus import ServeMetrics

#: Frames are re-encoded for the browser at most this wide (phones, Pi bandwidth).
STREAM_WIDTH = 640
JPEG_QUALITY = 80
#: Seconds between attempts to reopen a live camera that is gone or not yet plugged in.
RETRY_SECONDS = 3.0


@dataclass(frozen=True)
class Snapshot:
    """The newest classified frame: its JPEG and answer, numbered so clients see changes."""

    seq: int
    jpeg: bytes
    answer: dict[str, Any]
    at: float


@dataclass
class Status:
    """Where the camera is: ``off`` (none asked for), ``starting``, ``running``, ``ended``
    (a video file finished), ``lost`` (a live camera stopped; retrying) or ``failed``."""

    source: str | None
    state: str = "off"
    message: str = ""
    frames: int = 0
    fps: float = 0.0
    since: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "state": self.state, "message": self.message,
                "frames": self.frames, "fps": round(self.fps, 2),
                "available": self.state == "running"}


class CameraLoop:
    """Reads ``source`` in a daemon thread at most ``fps`` times a second."""

    def __init__(self, source: str, classifier: Classifier, options: Options,
                 metrics: ServeMetrics, fps: float = 10.0, loop_video: bool = False) -> None:
        self.source = source
        self.classifier = classifier
        self.options = options
        self.metrics = metrics
        self.interval = 1.0 / fps
        self.loop_video = loop_video
        self.is_file = Path(source).is_file()
        self.status = Status(source=source, state="starting")
        self.latest: Snapshot | None = None
        #: Called (from the camera thread) after every new snapshot or status change.
        self.on_change: Callable[[], None] = lambda: None
        #: Called (from the camera thread) with one line when the camera fails, is lost or
        #: ends, and when it comes back: once per change, not at every retry, so the
        #: terminal says what /api/info says without repeating it every few seconds.
        self.report: Callable[[str], None] = lambda line: None
        self._last_frame_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to finish and wait for it (it releases the camera on the way out)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _set(self, state: str, message: str = "") -> None:
        before = self.status.state
        self.status.state, self.status.message, self.status.since = state, message, time.time()
        if state != before:
            self._report(before, state, message)
        self.metrics.camera_up.set(1.0 if state == "running" else 0.0)
        if state != "running":
            self.status.fps = 0.0
            self.metrics.fps.set(0.0)
        self.on_change()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with camera.open_camera(self.source) as frames:
                    self._set("running")
                    self._read_all(frames)
            except UserError as exc:
                was_up = self.status.state in ("running", "lost")
                self._set("lost" if was_up else "failed", str(exc))
                if self.is_file:
                    return
            except Exception as exc:  # a camera library's own error: report, never crash
                self._set("failed", f"camera {self.source}: {type(exc).__name__}: {exc}")
                if self.is_file:
                    return
            else:
                if self._stop.is_set():
                    return
                if self.is_file and not (self.loop_video and self.status.frames):
                    self._set("ended", f"camera {self.source}: the video ended after "
                                       f"{self.status.frames} frames")
                    return
                if self.is_file:
                    continue
                self._set("lost", f"camera {self.source}: stopped delivering frames")
            self._stop.wait(RETRY_SECONDS)

    def _report(self, before: str, state: str, message: str) -> None:
        """One line for a change the person at the terminal should know about."""
        if state in ("failed", "lost"):
            retry = "" if self.is_file else f"retrying every {RETRY_SECONDS:g} s, "
            self.report(f"{message}; {retry}uploads still work")
        elif state == "ended":
            self.report(message)
        elif state == "running" and before in ("failed", "lost"):
            self.report(f"camera {self.source}: delivering frames again")

    def _read_all(self, frames: Iterator[np.ndarray]) -> None:
        """Classify frames until the source ends or :meth:`stop`; pace to ``fps``."""
        next_at = time.monotonic()
        for frame in frames:
            if self._stop.is_set():
                return
            self._publish(frame)
            next_at = max(next_at + self.interval, time.monotonic())
            if self._stop.wait(max(0.0, next_at - time.monotonic())):
                return

    def _publish(self, frame: np.ndarray) -> None:
        """Classify one frame and make it the latest; counters move after it is visible."""
        started = time.monotonic()
        status = self.status
        number = status.frames + 1
        answer = self.classifier.frame(frame, f"frame {number}", self.options)
        self.latest = Snapshot(seq=number, jpeg=encode_jpeg(frame), answer=answer,
                               at=time.time())
        self.metrics.frames.inc()
        self.metrics.answer(label_of(answer), is_unsure(answer), "camera")
        status.frames = number
        if self._last_frame_at is not None:
            gap = max(started - self._last_frame_at, 1e-6)
            status.fps = 1.0 / gap if status.fps == 0 else 0.8 * status.fps + 0.2 / gap
            self.metrics.fps.set(status.fps)
        self._last_frame_at = started
        self.on_change()


def encode_jpeg(frame: np.ndarray) -> bytes:
    """An RGB frame as a JPEG for the browser, scaled down to :data:`STREAM_WIDTH`."""
    img = Image.fromarray(frame)
    if img.width > STREAM_WIDTH:
        img = img.resize((STREAM_WIDTH, round(img.height * STREAM_WIDTH / img.width)),
                         Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()
