"""The camera thread when a live camera is unplugged and plugged back in.

No USB webcam exists here, so the camera is a stand-in that fails exactly as
:class:`fmnist_edge.edge.camera.OpenCVCamera` does when a webcam is pulled (a ``UserError``
from ``read``).  Everything else is real: the shipped model, real frames, the real thread.
(A video file ending is covered end to end in test_serve.py.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fmnist_edge.edge import camera, shipped
from fmnist_edge.edge.dataset import load_split
from fmnist_edge.edge.errors import UserError
from fmnist_edge.edge.model import EdgeModel

pytest.importorskip("starlette", reason="edge-serve needs the [serve] extra")
from servekit import frame_of, wait_for

from fmnist_edge.edge.serve import camera_loop
from fmnist_edge.edge.serve.answer import Classifier, Options
from fmnist_edge.edge.serve.prometheus import ServeMetrics


class UnpluggedAfter:
    """Opens like :func:`camera.open_camera` and delivers ``frames``, then fails like a
    pulled USB webcam (the message OpenCV's reader raises)."""

    opened = 0

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames = frames

    @contextlib.contextmanager
    def __call__(self, source: str) -> Iterator[Iterator[np.ndarray]]:
        UnpluggedAfter.opened += 1
        yield self._read(source)

    def _read(self, source: str) -> Iterator[np.ndarray]:
        yield from self.frames
        raise UserError(f"camera {source}: stopped delivering frames (unplugged or in use?)")


@pytest.fixture
def frames(data_dir: Path) -> list[np.ndarray]:
    return [frame_of(img, i) for i, img in enumerate(load_split("test").images[:3])]


@pytest.fixture
def loop(frames: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
         ) -> Iterator[camera_loop.CameraLoop]:
    monkeypatch.setattr(camera, "open_camera", UnpluggedAfter(frames))
    monkeypatch.setattr(camera_loop, "RETRY_SECONDS", 0.5)
    UnpluggedAfter.opened = 0
    model = EdgeModel.open(shipped.resolve_model_arg(None))
    metrics = ServeMetrics()
    cam = camera_loop.CameraLoop("0", Classifier(model), Options(top_k=2), metrics, fps=50)
    states: list[str] = []
    cam.on_change = lambda: states.append(cam.status.state)
    cam.states = states  # type: ignore[attr-defined]
    yield cam
    cam.stop()


def test_unplugged_camera_is_lost_then_reopened(loop: camera_loop.CameraLoop) -> None:
    loop.start()
    wait_for(lambda: UnpluggedAfter.opened >= 2 and loop.status.frames >= 6, timeout=20)
    loop.stop()  # no frame is classified after this: the counts below are final
    states = loop.states  # type: ignore[attr-defined]
    assert states[0] == "running" and "lost" in states
    assert states.index("lost") < len(states) - 1 - states[::-1].index("running")
    assert loop.latest is not None and len(loop.latest.answer["top_k"]) == 2
    assert loop.metrics.frames.value() >= 6


def test_lost_state_says_why_and_stop_ends_the_thread(loop: camera_loop.CameraLoop) -> None:
    loop.start()
    wait_for(lambda: loop.status.state == "lost", timeout=20, every=0.005)
    assert "unplugged" in loop.status.message
    assert loop.status.to_json()["available"] is False
    loop.stop()
    assert not loop._thread.is_alive()


def test_a_lost_camera_is_reported_once_per_change_not_per_retry(
        loop: camera_loop.CameraLoop) -> None:
    """edge-serve prints these lines on stderr: the loss and the return, not every retry."""
    lines: list[str] = []
    loop.report = lines.append
    loop.start()
    wait_for(lambda: UnpluggedAfter.opened >= 3, timeout=20)
    loop.stop()
    lost = [line for line in lines if "stopped delivering frames" in line]
    back = [line for line in lines if "delivering frames again" in line]
    assert len(lost) >= 2 and len(back) >= 1, lines  # lost, back, lost: once each time
    assert all("retrying every" in line and "uploads still work" in line for line in lost)
    assert len(lines) == len(lost) + len(back)

