"""Refusals as JSON: every 4xx/5xx the server sends is ``{"error": "...", "status": N}``.

One line a person can act on, never a traceback or an HTML error page, also for the
router's own 404 and 405.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response


class ApiError(HTTPException):
    """A request the server refuses, with the status and one line saying what to do."""


async def http_error(request: Request, exc: Exception) -> Response:
    """Any HTTPException (ours, or the router's 404/405) as the JSON error object."""
    assert isinstance(exc, HTTPException)
    detail = exc.detail
    if exc.status_code == 404 and not isinstance(exc, ApiError):
        detail = f"no route {request.url.path!r}: see GET /api/info and the README"
    elif exc.status_code == 405 and not isinstance(exc, ApiError):
        detail = f"{request.method} is not allowed on {request.url.path}"
    return JSONResponse({"error": detail, "status": exc.status_code},
                        status_code=exc.status_code, headers=exc.headers)


async def server_error(request: Request, exc: Exception) -> Response:
    """A bug: a JSON 500 for the client; the traceback goes to the server's log only."""
    return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the server log",
                         "status": 500}, status_code=500)
