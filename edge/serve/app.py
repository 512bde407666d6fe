"""The HTTP side of ``edge-serve``: a Starlette app with a fixed list of routes.

Every route is listed in :func:`create_app`; there is no static-file mount and no path
parameter, so no client-chosen path ever reaches the disk (the page's three files are read
from the package once, at start).  Bad requests end as one JSON object ``{"error": ...,
"status": ...}`` with a 4xx status; the server keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import platform
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata, resources
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from fmnist_edge.edge.errors import UserError
from fmnist_edge.edge.serve import answer
from fmnist_edge.edge.serve.camera_loop import CameraLoop, Snapshot, Status
from fmnist_edge.edge.serve.guard import Guard
from fmnist_edge.edge.serve.prometheus import ServeMetrics

#: The page's files, served from the package at fixed URLs: (URL, file, media type).
STATIC = (("/", "index.html", "text/html; charset=utf-8"),
          ("/static/app.js", "app.js", "text/javascript; charset=utf-8"),
          ("/static/style.css", "style.css", "text/css; charset=utf-8"))
#: Routes whose responses never end: counted, but kept out of the latency histogram.
STREAMS = ("/api/stream", "/api/events")
#: Seconds between keep-alive comments on the event stream (proxies drop idle ones).
KEEPALIVE_SECONDS = 15.0
BOUNDARY = "frame"


@dataclass(frozen=True)
class Settings:
    """What the command line decides: limits, defaults and the token."""

    max_upload_bytes: int = 10 * 1024 * 1024
    timeout_s: float = 10.0
    max_streams: int = 64
    token: str | None = None
    options: answer.Options = field(default_factory=answer.Options)


class ApiError(HTTPException):
    """A request the server refuses, with the status and one line saying what to do."""


class Hub:
    """Wakes every stream handler when the camera thread has something new.

    The camera thread calls :meth:`notify` through ``call_soon_threadsafe``; each waiter
    holds the event current when it started waiting, so none misses a change.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.streams = 0
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


class Service:
    """Everything the handlers share: model, camera, metrics, settings."""

    def __init__(self, classifier: answer.Classifier, camera: CameraLoop | None,
                 settings: Settings, metrics: ServeMetrics) -> None:
        self.classifier = classifier
        self.camera = camera
        self.settings = settings
        self.metrics = metrics
        self.hub = Hub()
        self.pages = {url: (_package_file(name), media) for url, name, media in STATIC}

    def camera_status(self) -> Status:
        return self.camera.status if self.camera is not None else Status(
            source=None, state="off", message="no camera: start edge-serve with --camera")

    # ---------------------------------------------------------------------------------
    # Routes

    async def page(self, request: Request) -> Response:
        body, media = self.pages[request.url.path]
        return Response(body, media_type=media, headers={"Cache-Control": "no-cache"})

    async def info(self, request: Request) -> Response:
        model = self.classifier.model
        art, manifest = model.artifact, model.manifest
        return JSONResponse({
            "model": manifest.model,
            "recipe": manifest.raw.get("recipe"),
            "classes": list(manifest.class_names),
            "artifact": {"file": art.file, "format": art.format, "precision": art.precision,
                         "bytes": art.bytes, "sha256": art.sha256},
            "runtime": model.session.backend,
            "input": manifest.raw.get("input"),
            "preprocessing": {**manifest.raw.get("preprocessing", {}),
                              "method": self.settings.options.method,
                              "methods": list(answer.METHODS)},
            "versions": dict(_versions()),
            "exported_with": manifest.raw.get("tools", {}),
            "camera": self.camera_status().to_json(),
            "limits": {"max_upload_bytes": self.settings.max_upload_bytes,
                       "timeout_s": self.settings.timeout_s,
                       "max_streams": self.settings.max_streams},
            "auth": self.settings.token is not None,
        })

    async def classify(self, request: Request) -> Response:
        options = self._options(request)
        kind = _content_kind(request.headers.get("content-type", ""))
        try:
            body = await self._read_body(request)
        except ClientDisconnect:
            return Response(status_code=499)  # nginx's "client closed request"; never sent
        data, name = body, request.query_params.get("name", "upload")
        if kind == "multipart":
            data, name = await self._form_image(request.headers, body)
        if not data:
            raise ApiError(400, "empty body: send the image bytes (Content-Type image/* or "
                                "application/octet-stream) or a multipart field 'image'")
        try:
            record = await run_in_threadpool(self.classifier.image, data, name, options)
        except UserError as exc:
            raise ApiError(answer.status_of(exc), str(exc)) from exc
        self.metrics.answer(answer.label_of(record), answer.is_unsure(record), "upload")
        return JSONResponse(record)

    async def stream(self, request: Request) -> Response:
        """MJPEG: one JPEG part per classified frame until the camera stops or the client
        goes."""
        if self.camera is None:
            raise ApiError(404, "no camera: start edge-serve with --camera to stream")
        self._open_stream()
        return StreamingResponse(self._mjpeg(request), headers=_NO_STORE,
                                 media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}")

    async def events(self, request: Request) -> Response:
        """Server-sent events: ``status`` on connect and on every camera change, ``answer``
        for every classified frame."""
        self._open_stream()
        return StreamingResponse(self._sse(request), media_type="text/event-stream",
                                 headers={**_NO_STORE, "X-Accel-Buffering": "no"})

    async def metrics_text(self, request: Request) -> Response:
        return PlainTextResponse(self.metrics.registry.render(),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    # ---------------------------------------------------------------------------------
    # Helpers

    def _options(self, request: Request) -> answer.Options:
        """``?top_k=`` and ``?preprocess=`` (``?name=`` names a raw upload); others refused."""
        params = request.query_params
        unknown = sorted(set(params) - {"top_k", "preprocess", "name"})
        if unknown:
            raise ApiError(400, f"unknown parameter {unknown[0]!r} (known: top_k, preprocess,"
                                " name)")
        default = self.settings.options
        top_k = params.get("top_k", str(default.top_k))
        if not top_k.isdigit() or not 1 <= int(top_k) <= len(self.classifier.classes):
            raise ApiError(400, f"top_k must be a whole number from 1 to "
                                f"{len(self.classifier.classes)}, got {top_k!r}")
        method = params.get("preprocess", default.method)
        if method not in answer.METHODS:
            raise ApiError(400, f"preprocess must be one of {', '.join(answer.METHODS)}, "
                                f"got {method!r}")
        return answer.Options(top_k=int(top_k), method=method)

    async def _read_body(self, request: Request) -> bytes:
        """The whole body, refused early (413) past the limit and (408) when too slow."""
        limit = self.settings.max_upload_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"body too large ({int(declared)} bytes; the limit is {limit})")
        chunks, size = [], 0
        try:
            with anyio.fail_after(self.settings.timeout_s):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise ApiError(413, f"body too large (over the limit of {limit} bytes)")
                    chunks.append(chunk)
        except TimeoutError as exc:
            raise ApiError(408, f"upload too slow: the body did not arrive within "
                                f"{self.settings.timeout_s:g} s",
                           headers={"Connection": "close"}) from exc
        return b"".join(chunks)

    async def _form_image(self, headers: Headers, body: bytes) -> tuple[bytes, str]:
        """The one file of a multipart upload (field ``image``, else the first file)."""
        async def once() -> AsyncGenerator[bytes, None]:
            yield body

        parser = MultiPartParser(headers, once(), max_files=1, max_fields=8,
                                 max_part_size=self.settings.max_upload_bytes)
        try:
            form = await parser.parse()
        except MultiPartException as exc:
            raise ApiError(400, f"bad multipart upload: {exc.message}") from exc
        files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        chosen = form.get("image") if isinstance(form.get("image"), UploadFile) else None
        upload = chosen or (files[0] if files else None)
        if not isinstance(upload, UploadFile):
            raise ApiError(400, "multipart upload has no file: send the image as field "
                                "'image' (curl -F image=@photo.jpg)")
        try:
            return await upload.read(), upload.filename or "upload"
        finally:
            await form.close()

    def _open_stream(self) -> None:
        if self.hub.streams >= self.settings.max_streams:
            raise ApiError(503, f"too many open streams ({self.settings.max_streams}); "
                                "close one or raise --max-streams",
                           headers={"Retry-After": "5"})

    @contextlib.contextmanager
    def _counted(self, kind: str) -> Any:
        self.hub.streams += 1
        self.metrics.streams.inc(1, kind=kind)
        try:
            yield
        finally:
            self.hub.streams -= 1
            self.metrics.streams.inc(-1, kind=kind)

    async def _should_end(self, request: Request) -> bool:
        """Wait for news (at most a second); True if the client left or the server stops."""
        if not self.hub.closing:
            await self.hub.wait(1.0)
        return self.hub.closing or await request.is_disconnected()

    async def _mjpeg(self, request: Request) -> AsyncIterator[bytes]:
        with self._counted("mjpeg"):
            sent = -1
            while True:
                snap = self.camera.latest if self.camera is not None else None
                if snap is not None and snap.seq != sent:
                    sent = snap.seq
                    yield _mjpeg_part(snap)
                    continue
                if self.camera_status().state not in ("starting", "running"):
                    return  # the camera is gone; the page shows why (/api/events)
                if await self._should_end(request):
                    return

    async def _sse(self, request: Request) -> AsyncIterator[str]:
        with self._counted("events"):
            seen_status: dict[str, Any] | None = None
            sent = self.camera.latest.seq if self.camera and self.camera.latest else -1
            quiet_since = time.monotonic()
            while True:
                status = self.camera_status().to_json()
                status.pop("frames"), status.pop("fps")
                if status != seen_status:
                    seen_status = status
                    yield _event("status", self.camera_status().to_json())
                snap = self.camera.latest if self.camera is not None else None
                if snap is not None and snap.seq != sent:
                    sent = snap.seq
                    quiet_since = time.monotonic()
                    yield _event("answer", {"seq": snap.seq, "at": snap.at, **snap.answer})
                    continue
                if time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
                    quiet_since = time.monotonic()
                    yield ": keep-alive\n\n"
                if await self._should_end(request):
                    return


_NO_STORE = {"Cache-Control": "no-store"}


def _mjpeg_part(snap: Snapshot) -> bytes:
    head = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
            f"Content-Length: {len(snap.jpeg)}\r\n\r\n").encode()
    return head + snap.jpeg + b"\r\n"


def _event(name: str, data: Mapping[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _content_kind(header: str) -> str:
    """``raw`` or ``multipart`` from a Content-Type; anything else is refused (415)."""
    media = header.split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        return "multipart"
    if not media or media.startswith("image/") or media == "application/octet-stream":
        return "raw"
    raise ApiError(415, f"unsupported Content-Type {media!r}: send image/* or "
                        "application/octet-stream bytes, or multipart/form-data with a "
                        "field 'image'")


def _package_file(name: str) -> bytes:
    return (resources.files("fmnist_edge.edge.serve") / "static" / name).read_bytes()


@functools.cache
def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("fmnist-edge", "numpy", "pillow", "starlette", "uvicorn", "ai-edge-litert",
                 "tflite-runtime", "onnxruntime", "opencv-python-headless"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail
    if exc.status_code == 404 and not isinstance(exc, ApiError):
        detail = f"no route {request.url.path!r}: see GET /api/info and the README"
    elif exc.status_code == 405 and not isinstance(exc, ApiError):
        detail = f"{request.method} is not allowed on {request.url.path}"
    return JSONResponse({"error": detail, "status": exc.status_code},
                        status_code=exc.status_code, headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the server log",
                         "status": 500}, status_code=500)


def create_app(service: Service) -> Starlette:
    """The app: the listed routes, token check and metrics around them, camera lifespan."""
    s = service
    routes = [Route(url, s.page, methods=["GET"]) for url, _, _ in STATIC]
    routes += [
        Route("/api/info", s.info, methods=["GET"]),
        Route("/api/classify", s.classify, methods=["POST"]),
        Route("/api/stream", s.stream, methods=["GET"]),
        Route("/api/events", s.events, methods=["GET"]),
        Route("/metrics", s.metrics_text, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        s.hub.bind(asyncio.get_running_loop())
        if s.camera is not None:
            s.camera.on_change = s.hub.notify_threadsafe
            s.camera.start()
        try:
            yield
        finally:
            if s.camera is not None:
                await run_in_threadpool(s.camera.stop)

    public = frozenset(url for url, _, _ in STATIC)
    known = frozenset(r.path for r in routes)
    return Starlette(
        routes=routes, lifespan=lifespan,
        middleware=[Middleware(Guard, token=s.settings.token, public=public, known=known,
                               streams=frozenset(STREAMS), metrics=s.metrics)],
        exception_handlers={HTTPException: _http_error, Exception: _server_error})
