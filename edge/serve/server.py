"""Wiring for ``edge-serve``: open the model and camera, build the app, run uvicorn.

Kept apart from :mod:`.cli` so the command module imports no web framework (its ``--help``
works without the ``[serve]`` extra) and the tests can build the same service.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from fmnist_edge.edge.cli_options import check_input_shape
from fmnist_edge.edge.model import EdgeModel
from fmnist_edge.edge.serve.answer import Classifier, Options
from fmnist_edge.edge.serve.app import Service, Settings, create_app
from fmnist_edge.edge.serve.camera_loop import CameraLoop
from fmnist_edge.edge.serve.prometheus import ServeMetrics

__all__ = ["Options", "Settings", "build", "describe", "run"]

#: Seconds uvicorn waits for open streams on shutdown before closing them.
SHUTDOWN_GRACE_S = 2
#: Seconds an idle keep-alive connection stays open.
KEEP_ALIVE_S = 5


def build(model_path: Path, backend: str | None, threads: int | None, settings: Settings,
          camera: str | None, fps: float, loop_video: bool) -> Service:
    """Open the model (hash-checked) and, if asked, prepare the camera thread."""
    model = check_input_shape(EdgeModel.open(model_path, backend, threads))
    classifier = Classifier(model)
    classifier.warm_up()
    metrics = ServeMetrics()
    for source in ("upload", "camera"):
        metrics.unsure.inc(0, source=source)
    loop = None
    if camera is not None:
        loop = CameraLoop(camera, classifier, settings.options, metrics, fps, loop_video)
    return Service(classifier, loop, settings, metrics)


def describe(service: Service) -> dict[str, Any]:
    """The facts the start-up line prints."""
    model = service.classifier.model
    return {"model": model.manifest.model, "artifact": model.artifact.file,
            "runtime": model.session.backend,
            "camera": service.camera.source if service.camera is not None else None,
            "auth": service.settings.token is not None}


def run(service: Service, sock: socket.socket, timeout: float, access_log: bool) -> None:
    """Serve on an already-listening socket until Ctrl-C or SIGTERM."""
    config = uvicorn.Config(
        create_app(service), http=_with_head_deadline(timeout), loop="asyncio", lifespan="on",
        log_level="warning", access_log=access_log, server_header=False,
        timeout_keep_alive=KEEP_ALIVE_S, timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        limit_concurrency=service.settings.max_streams + 64)
    _Server(config, service).run(sockets=[sock])


class _Server(uvicorn.Server):
    """uvicorn's server, ending the never-ending streams as soon as a stop is asked for
    (otherwise shutdown waits for them, then cancels them with an error in the log)."""

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self.service = service

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.service.streams.hub.close_threadsafe()
        super().handle_exit(sig, frame)


def _with_head_deadline(seconds: float) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol, plus a deadline for each request's head.

    uvicorn times out idle keep-alive connections but not a client that connects and sends
    nothing, or half a request line: a few dozen of those would use up every connection
    slot.  Here the head (request line and headers) must arrive within ``seconds`` of the
    connection opening or of the previous response; the body has its own limit (408).
    """

    class HeadDeadline(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._waiting_for_head():
                if self._head_timer is None:
                    self._arm()
            else:
                self._disarm()

        def on_response_complete(self) -> None:
            self._disarm()  # uvicorn's own keep-alive timeout takes over while idle
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _waiting_for_head(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            self._head_timer = self.loop.call_later(seconds, self._expire)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _expire(self) -> None:
            self._head_timer = None
            if self._waiting_for_head() and not self.transport.is_closing():
                self.transport.close()

    return HeadDeadline
