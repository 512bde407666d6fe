"""Reading an upload safely: the body within its size and time limits, the image out of it.

The size limit is enforced twice: from ``Content-Length`` before reading anything, and
while reading (a chunked body has no length).  The time limit covers the whole body, so a
client trickling bytes cannot hold a connection open.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import anyio
from starlette.datastructures import Headers, QueryParams, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from fmnist_edge.edge import photo
from fmnist_edge.edge.serve import answer
from fmnist_edge.edge.serve.apierror import ApiError

#: Query parameters ``POST /api/classify`` understands; any other is refused (typos).
PARAMETERS = ("top_k", "preprocess", "min_confidence", "name")


def content_kind(header: str) -> str:
    """``raw`` or ``multipart`` from a Content-Type; anything else is refused (415).

    No Content-Type counts as raw bytes (``requests.post(url, data=...)`` sends none).
    """
    media = header.split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        return "multipart"
    if not media or media.startswith("image/") or media == "application/octet-stream":
        return "raw"
    raise ApiError(415, f"unsupported Content-Type {media!r}: send image/* or "
                        "application/octet-stream bytes, or multipart/form-data with a "
                        "field 'image'")


def options(params: QueryParams, default: answer.Options, classes: int) -> answer.Options:
    """``?top_k=``, ``?preprocess=`` and ``?min_confidence=`` checked, defaults from the
    command line."""
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise ApiError(400, f"unknown parameter {unknown[0]!r} (known: {', '.join(PARAMETERS)})")
    top_k = params.get("top_k", str(default.top_k))
    if not (top_k.isascii() and top_k.isdigit()) or not 1 <= int(top_k) <= classes:
        raise ApiError(400, f"top_k must be a whole number from 1 to {classes}, got {top_k!r}")
    method = params.get("preprocess", default.method)
    if method not in answer.METHODS:
        raise ApiError(400, f"preprocess must be one of {', '.join(answer.METHODS)}, "
                            f"got {method!r}")
    reason = photo.refusal(method)
    if reason is not None:
        raise ApiError(400, reason)
    return answer.Options(top_k=int(top_k), method=method,
                          min_confidence=_min_confidence(params, default.min_confidence))


def _min_confidence(params: QueryParams, default: float | None) -> float | None:
    """``?min_confidence=`` as a probability from 0 to 1 (400 otherwise)."""
    text = params.get("min_confidence")
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ApiError(400, f"min_confidence must be a number from 0 to 1, got {text!r}")
    return value


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The whole body: 413 past ``limit`` bytes, 408 if it takes over ``timeout`` seconds.

    Raises :class:`starlette.requests.ClientDisconnect` if the client goes away.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"body too large ({int(declared)} bytes; the limit is {limit})")
    chunks, size = [], 0
    try:
        with anyio.fail_after(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, f"body too large (over the limit of {limit} bytes)")
                chunks.append(chunk)
    except TimeoutError as exc:
        raise ApiError(408, f"upload too slow: the body did not arrive within {timeout:g} s",
                       headers={"Connection": "close"}) from exc
    return b"".join(chunks)


async def form_image(headers: Headers, body: bytes, limit: int) -> tuple[bytes, str]:
    """The one file of a multipart upload (field ``image``, else the first file) and its
    file name."""
    async def once() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(headers, once(), max_files=1, max_fields=8, max_part_size=limit)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(400, f"bad multipart upload: {exc.message}") from exc
    try:
        named = form.get("image")
        files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        upload = named if isinstance(named, UploadFile) else (files[0] if files else None)
        if upload is None:
            raise ApiError(400, "multipart upload has no file: send the image as field "
                                "'image' (curl -F image=@photo.jpg)")
        return await upload.read(), upload.filename or "upload"
    finally:
        await form.close()
