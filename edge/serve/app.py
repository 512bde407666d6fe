"""The HTTP side of ``edge-serve``: a Starlette app with a fixed list of routes.

Every route is listed in :func:`create_app`; there is no static-file mount and no path
parameter, so no client-chosen path ever reaches the disk (the page's three files are read
from the package once, at start).  Bad requests end as one JSON object ``{"error": ...,
"status": ...}`` with a 4xx status (:mod:`.apierror`); the server keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import platform
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from fmnist_edge.edge import photo, versions
from fmnist_edge.edge.errors import UserError
from fmnist_edge.edge.manifest import Manifest
from fmnist_edge.edge.serve import answer, uploads
from fmnist_edge.edge.serve.apierror import ApiError, http_error, server_error
from fmnist_edge.edge.serve.camera_loop import CameraLoop
from fmnist_edge.edge.serve.guard import Guard
from fmnist_edge.edge.serve.prometheus import ServeMetrics
from fmnist_edge.edge.serve.streams import Streams

#: The page's files, served from the package at fixed URLs: (URL, file, media type).
STATIC = (("/", "index.html", "text/html; charset=utf-8"),
          ("/static/app.js", "app.js", "text/javascript; charset=utf-8"),
          ("/static/style.css", "style.css", "text/css; charset=utf-8"))
#: Routes whose responses never end: counted, but kept out of the latency histogram, and
#: the only ones taking ``?token=`` (a browser cannot add a header to <img> or EventSource).
STREAMS = ("/api/stream", "/api/events")


@dataclass(frozen=True)
class Settings:
    """What the command line decides: limits, defaults and the token."""

    max_upload_bytes: int = 10 * 1024 * 1024
    timeout_s: float = 10.0
    max_streams: int = 64
    token: str | None = None
    options: answer.Options = field(default_factory=answer.Options)


class Service:
    """Everything the handlers share: model, camera, streams, metrics, settings."""

    def __init__(self, classifier: answer.Classifier, camera: CameraLoop | None,
                 settings: Settings, metrics: ServeMetrics) -> None:
        self.classifier = classifier
        self.camera = camera
        self.settings = settings
        self.metrics = metrics
        self.streams = Streams(camera, metrics, settings.max_streams)
        self.pages = {url: (_package_file(name), media) for url, name, media in STATIC}

    async def page(self, request: Request) -> Response:
        body, media = self.pages[request.url.path]
        return Response(body, media_type=media, headers={"Cache-Control": "no-cache"})

    async def info(self, request: Request) -> Response:
        model = self.classifier.model
        art, manifest = model.artifact, model.manifest
        return JSONResponse({
            "model": manifest.model,
            "recipe": _recipe(manifest),
            "classes": list(manifest.class_names),
            "artifact": {"file": art.file, "format": art.format, "precision": art.precision,
                         "bytes": art.bytes, "sha256": art.sha256},
            "runtime": model.session.backend,
            "preprocessing": {**manifest.preprocessing.to_json(),
                              "method": self.settings.options.method,
                              "pipeline_version": photo.pipeline_version(
                                  self.settings.options.method),
                              "methods": list(answer.METHODS)},
            "versions": dict(_versions()),
            "exported_with": dict(manifest.tools),
            "created": manifest.created,
            "camera": self.streams.status().to_json(),
            "limits": {"max_upload_bytes": self.settings.max_upload_bytes,
                       "timeout_s": self.settings.timeout_s,
                       "max_streams": self.settings.max_streams},
            "auth": self.settings.token is not None,
        })

    async def classify(self, request: Request) -> Response:
        """An image as the raw body or a multipart upload → the edge-classify JSON."""
        limits = self.settings
        options = uploads.options(request.query_params, limits.options,
                                  len(self.classifier.classes))
        kind = uploads.content_kind(request.headers.get("content-type", ""))
        try:
            body = await uploads.read_body(request, limits.max_upload_bytes, limits.timeout_s)
        except ClientDisconnect:
            return Response(status_code=499)  # nginx's "client closed request"; never sent
        data, name = body, request.query_params.get("name", "upload")
        if kind == "multipart":
            data, name = await uploads.form_image(request.headers, body,
                                                  limits.max_upload_bytes)
        if not data:
            raise ApiError(400, "empty body: send the image bytes (Content-Type image/* or "
                                "application/octet-stream) or a multipart field 'image'")
        try:
            record = await run_in_threadpool(self.classifier.image, data, name, options)
        except UserError as exc:
            raise ApiError(answer.status_of(exc), str(exc)) from exc
        self.metrics.answer(answer.label_of(record), answer.is_unsure(record), "upload")
        return JSONResponse(record)

    async def metrics_text(self, request: Request) -> Response:
        return PlainTextResponse(self.metrics.registry.render(),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")


def _package_file(name: str) -> bytes:
    return (resources.files("fmnist_edge.edge.serve") / "static" / name).read_bytes()


#: Distributions whose versions /api/info reports (those installed).
REPORTED = ("fmnist-edge", "numpy", "pillow", "starlette", "uvicorn", "ai-edge-litert",
            "tflite-runtime", "onnxruntime", "opencv-python-headless")


@functools.cache
def _versions() -> dict[str, str]:
    return {"python": platform.python_version(), **versions.installed_versions(REPORTED)}


def _recipe(manifest: Manifest) -> Any:
    """How the model was trained, when the manifest says (bundles from before recipes
    have no such block; the field arrives with the recipes work)."""
    recipe: Any = getattr(manifest, "recipe", None)
    return recipe.to_json() if hasattr(recipe, "to_json") else recipe


def create_app(service: Service) -> Starlette:
    """The app: the listed routes, token check and metrics around them, camera lifespan."""
    s = service
    routes = [Route(url, s.page, methods=["GET"]) for url, _, _ in STATIC]
    routes += [
        Route("/api/info", s.info, methods=["GET"]),
        Route("/api/classify", s.classify, methods=["POST"]),
        Route("/api/stream", s.streams.mjpeg, methods=["GET"]),
        Route("/api/events", s.streams.events, methods=["GET"]),
        Route("/metrics", s.metrics_text, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        s.streams.hub.bind(asyncio.get_running_loop())
        if s.camera is not None:
            s.camera.on_change = s.streams.hub.notify_threadsafe
            s.camera.start()
        try:
            yield
        finally:
            if s.camera is not None:
                await run_in_threadpool(s.camera.stop)

    guard = Middleware(Guard, token=s.settings.token,
                       public=frozenset(url for url, _, _ in STATIC),
                       known=frozenset(r.path for r in routes), streams=frozenset(STREAMS),
                       metrics=s.metrics)
    handlers: dict[Any, Any] = {HTTPException: http_error, Exception: server_error}
    return Starlette(routes=routes, lifespan=lifespan, middleware=[guard],
                     exception_handlers=handlers)
