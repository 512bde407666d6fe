"""The two never-ending responses: MJPEG frames and server-sent answers.

The camera thread publishes into :class:`CameraLoop.latest`; :class:`Hub` wakes every
stream handler when it does, and each handler sends the newest snapshot it has not sent
yet (a slow viewer skips frames instead of queueing them, so memory stays flat).  A handler
also wakes once a second to notice a client that left, and ends at once when the server
is asked to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from fmnist_edge.edge.serve.apierror import ApiError
from fmnist_edge.edge.serve.camera_loop import RETRY_SECONDS, CameraLoop, Snapshot, Status
from fmnist_edge.edge.serve.prometheus import ServeMetrics

BOUNDARY = "frame"
#: Seconds between keep-alive comments on the event stream (proxies drop idle ones).
KEEPALIVE_SECONDS = 15.0
NO_STORE = {"Cache-Control": "no-store"}
#: Seconds a stream request waits for a camera that is still opening before answering.
STARTUP_WAIT_SECONDS = 10.0
NO_CAMERA = Status(source=None, state="off",
                   message="no camera: start edge-serve with --camera")


class Hub:
    """Wakes every stream handler when the camera thread has something new.

    The camera thread calls :meth:`notify_threadsafe`; each waiter holds the event current
    when it started waiting, so none misses a change.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        #: Set when the server is asked to stop: streams end so shutdown need not wait.
        self.closing = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def notify_threadsafe(self) -> None:
        if self.loop is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop closing during shutdown
                self.loop.call_soon_threadsafe(self._notify)

    def close_threadsafe(self) -> None:
        """End every stream (called from the stop-signal handler)."""
        self.closing = True
        self.notify_threadsafe()

    def _notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        """Until the next change, or ``timeout`` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)


class Streams:
    """``GET /api/stream`` and ``GET /api/events``, at most ``max_streams`` open at once."""

    def __init__(self, camera: CameraLoop | None, metrics: ServeMetrics,
                 max_streams: int) -> None:
        self.camera = camera
        self.metrics = metrics
        self.max_streams = max_streams
        self.hub = Hub()
        self.open = 0

    def status(self) -> Status:
        return self.camera.status if self.camera is not None else NO_CAMERA

    def latest(self) -> Snapshot | None:
        return self.camera.latest if self.camera is not None else None

    async def mjpeg(self, request: Request) -> Response:
        """MJPEG: one JPEG part per classified frame until the camera stops or the client
        goes."""
        if self.camera is None:
            raise ApiError(404, "no camera: start edge-serve with --camera to stream")
        await self._wait_while_starting()
        self._check_camera_up(self.camera)
        self._admit()
        return StreamingResponse(self._frames(request), headers=NO_STORE,
                                 media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}")

    async def events(self, request: Request) -> Response:
        """Server-sent events: ``status`` on connect and on every camera change, ``answer``
        for every classified frame."""
        self._admit()
        return StreamingResponse(self._events(request), media_type="text/event-stream",
                                 headers={**NO_STORE, "X-Accel-Buffering": "no"})

    async def _wait_while_starting(self) -> None:
        """Give a camera that is still opening a few seconds to deliver or fail, so the
        answer below is about the camera, not about how soon the page asked."""
        deadline = time.monotonic() + STARTUP_WAIT_SECONDS
        while (self.status().state == "starting" and self.latest() is None
               and not self.hub.closing and time.monotonic() < deadline):
            await self.hub.wait(min(1.0, deadline - time.monotonic()))

    def _check_camera_up(self, camera: CameraLoop) -> None:
        """A failed, lost or ended camera is a JSON 503 saying why, not a 200 stream with no
        frame in it (a live camera is retried: Retry-After; a video file is not)."""
        status = camera.status
        if status.state in ("starting", "running"):
            return
        retry = {} if camera.is_file else {"Retry-After": f"{RETRY_SECONDS:.0f}"}
        raise ApiError(503, f"no live frames: {status.message}", headers=retry)

    def _admit(self) -> None:
        if self.open >= self.max_streams:
            raise ApiError(503, f"too many open streams ({self.max_streams}); close one or "
                                "raise --max-streams", headers={"Retry-After": "5"})

    @contextlib.contextmanager
    def _counted(self, kind: str) -> Iterator[None]:
        self.open += 1
        self.metrics.streams.inc(1, kind=kind)
        try:
            yield
        finally:
            self.open -= 1
            self.metrics.streams.inc(-1, kind=kind)

    async def _should_end(self, request: Request) -> bool:
        """Wait for news (at most a second); True if the client left or the server stops."""
        if not self.hub.closing:
            await self.hub.wait(1.0)
        return self.hub.closing or await request.is_disconnected()

    async def _frames(self, request: Request) -> AsyncIterator[bytes]:
        with self._counted("mjpeg"):
            yield _NEXT_PART[2:]  # the stream opens with the first part's boundary and head
            sent = -1
            while True:
                snap = self.latest()
                if snap is not None and snap.seq != sent:
                    sent = snap.seq
                    yield _mjpeg_part(snap)
                    continue
                if self.status().state not in ("starting", "running"):
                    return  # the camera is gone; the page shows why (/api/events)
                if await self._should_end(request):
                    return

    async def _events(self, request: Request) -> AsyncIterator[str]:
        with self._counted("events"):
            shown: dict[str, Any] | None = None
            snap = self.latest()
            sent = snap.seq if snap is not None else -1
            quiet_since = time.monotonic()
            while True:
                status = self.status().to_json()
                if _state_of(status) != shown:
                    shown = _state_of(status)
                    yield _event("status", status)
                snap = self.latest()
                if snap is not None and snap.seq != sent:
                    sent, quiet_since = snap.seq, time.monotonic()
                    yield _event("answer", {"seq": snap.seq, "at": snap.at, **snap.answer})
                    continue
                if time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
                    quiet_since = time.monotonic()
                    yield ": keep-alive\n\n"
                if await self._should_end(request):
                    return


def _state_of(status: dict[str, Any]) -> dict[str, Any]:
    """A status without its counters: a ``status`` event is sent when this changes."""
    return {k: v for k, v in status.items() if k not in ("frames", "fps")}


#: Ends a frame and opens the next part at once.  Browsers show a part only once the next
#: part's head has arrived, so sending it with the frame (rather than with the next one)
#: keeps the picture in step with the answer pushed over /api/events.  The head therefore
#: has no Content-Length (optional in multipart: the boundary delimits the part).
_NEXT_PART = f"\r\n--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n\r\n".encode()


def _mjpeg_part(snap: Snapshot) -> bytes:
    """One frame, then the boundary and head of the next part."""
    return snap.jpeg + _NEXT_PART


def _event(name: str, data: Mapping[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
