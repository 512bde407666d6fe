"""What wraps every request: the bearer-token check, security headers, and request metrics.

A plain ASGI middleware (not Starlette's ``BaseHTTPMiddleware``) so streaming responses pass
through untouched and a refused request costs no body read.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fmnist_edge.edge.serve.prometheus import ServeMetrics

#: Sent with every response: no MIME sniffing, no framing, no referrer leaks, and a page
#: that may load nothing but its own files.
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
     b"script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"),
)


class Guard:
    """Refuses API calls without the token (401) and counts every request.

    ``public`` paths (the page and its files) need no token: the page then asks for it.
    Browsers cannot put a header on an ``<img>`` or ``EventSource`` request, so the
    ``streams`` routes also accept ``?token=``; nothing else does.
    """

    def __init__(self, app: ASGIApp, token: str | None, public: frozenset[str],
                 known: frozenset[str], streams: frozenset[str], metrics: ServeMetrics) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.public, self.known, self.streams = public, known, streams
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = path if path in self.known else "other"
        started = time.perf_counter()
        status = {"code": 0}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await _json(send_wrapper, 401, refusal,
                            [(b"www-authenticate", b'Bearer realm="edge-serve"')])
            else:
                await self.app(scope, receive, send_wrapper)
        finally:
            self._record(route, status["code"] or 500, time.perf_counter() - started)

    def _refusal(self, scope: Scope) -> str | None:
        """Why this request may not proceed, or None."""
        if self.token is None or scope["path"] in self.public:
            return None
        given = _bearer(scope)
        if given is None and scope["path"] in self.streams:
            given = _query_token(scope)
        if given is None:
            return "missing token: send 'Authorization: Bearer <token>' (edge-serve --token)"
        if not hmac.compare_digest(given, self.token):
            return "wrong token"
        return None

    def _record(self, route: str, code: int, seconds: float) -> None:
        labels = {"route": route, "status": str(code)}
        self.metrics.requests.inc(**labels)
        if code >= 400:
            self.metrics.errors.inc(**labels)
        if route not in self.streams:
            self.metrics.latency.observe(seconds, route=route)


def _bearer(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            return credentials.strip() if scheme.lower() == b"bearer" else b""
    return None


def _query_token(scope: Scope) -> bytes | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0].encode("utf-8") if values else None


async def _json(send: Send, status: int, error: str, headers: list[tuple[bytes, bytes]]
                ) -> None:
    body = json.dumps({"error": error, "status": status}).encode()
    head: list[Any] = [(b"content-type", b"application/json"),
                       (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})
