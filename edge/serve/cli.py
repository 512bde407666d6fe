"""``edge-serve``: classify images sent over HTTP and show the camera live in a browser.

    edge-serve                                   # http://127.0.0.1:8080/, uploads only
    edge-serve --camera                          # Pi camera (Picamera2) or USB webcam 0
    edge-serve --camera clip.mp4 --loop          # a video file as the camera (demos, tests)
    edge-serve --host 0.0.0.0 --token s3cret     # reachable from a phone, with a token

Exit codes: 1 could not start (model, port), 2 usage, 130 stopped by Ctrl-C.  SIGTERM
stops it gracefully, then it ends by that signal (as uvicorn does; systemd counts it clean).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from typing import TYPE_CHECKING

import click

from fmnist_edge.edge import cli_options, cli_util, shipped
from fmnist_edge.edge.errors import UserError

if TYPE_CHECKING:
    from fmnist_edge.edge.serve.app import Service

EXAMPLES = """\b
Examples:
  edge-serve
  edge-serve --camera --host 0.0.0.0 --token "$(openssl rand -hex 16)"
  edge-serve --camera clip.mp4 --loop --port 9000
  curl -F image=@shirt.jpg http://127.0.0.1:8080/api/classify
  curl -H 'Content-Type: image/png' --data-binary @shoe.png \\
       'http://127.0.0.1:8080/api/classify?top_k=3'

\b
Routes: GET / (the page), GET /api/info, POST /api/classify, GET /api/stream (MJPEG),
GET /api/events (server-sent events), GET /metrics (Prometheus).
The token (--token or $FMNIST_EDGE_TOKEN) goes in 'Authorization: Bearer <token>'.

Exit codes: 1 could not start, 2 usage error, 130 stopped by Ctrl-C."""

TOKEN_ENV = "FMNIST_EDGE_TOKEN"
LOOPBACK = ("127.0.0.1", "::1", "localhost")
#: Hosts that make bind() listen on every interface, and the loopback address through which
#: a browser on this machine reaches each (a URL with 0.0.0.0 or [::] in it is no address).
WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


@click.command(name="edge-serve", context_settings={"help_option_names": ["-h", "--help"]},
               epilog=EXAMPLES)
@cli_options.model_options
@cli_options.camera_option
@click.option("--loop", "loop_video", is_flag=True, help="Replay a video file when it ends.")
@click.option("--fps", type=click.FloatRange(min=0.5, max=60), default=10.0, show_default=True,
              help="Frames read and classified per second, at most.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every network; use a --token then).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port (0: any free one; the URL is printed).")
@click.option("--token", envvar=TOKEN_ENV, default=None, show_envvar=True,
              help="Require 'Authorization: Bearer TOKEN' on every API call.")
@click.option("-k", "--top-k", "k", type=click.IntRange(min=1), default=3, show_default=True,
              help="Classes per answer unless a request asks (?top_k=).")
@cli_options.answer_options
@click.option("--max-upload", type=click.IntRange(min=1), default=10 * 1024 * 1024,
              show_default=True, help="Largest request body in bytes (413 above it).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds a client may take to send its request (408 after).")
@click.option("--max-streams", type=click.IntRange(min=1), default=64, show_default=True,
              help="Open MJPEG + event streams at once (503 above it).")
@click.option("--access-log", is_flag=True, help="Log every request to stderr.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the start-up line (URL, model, camera) as JSON.")
def cli(model_arg: str | None, backend: str | None, threads: int | None, camera: str | None,
        loop_video: bool, fps: float, host: str, port: int, token: str | None, k: int,
        method: str, min_confidence: float | None, max_upload: int, timeout: float,
        max_streams: int, access_log: bool, as_json: bool) -> int:
    """Serve the model over HTTP, with a live camera page for phones and browsers."""
    from fmnist_edge.edge.serve import server  # needs the [serve] extra

    if token is not None and not token.strip():
        raise click.BadParameter("must not be empty", param_hint="--token")
    settings = server.Settings(max_upload_bytes=max_upload, timeout_s=timeout,
                               max_streams=max_streams, token=token,
                               options=server.Options(top_k=k, method=method,
                                                      min_confidence=min_confidence))
    service = server.build(shipped.resolve_model_arg(model_arg), backend, threads, settings,
                           camera, fps, loop_video)
    sock = _bind(host, port)
    _announce(host, sock.getsockname()[1], service, as_json, token)
    if service.camera is not None:
        service.camera.report = _camera_news
    server.run(service, sock, timeout, access_log)
    return 0


def _bind(host: str, port: int) -> socket.socket:
    """Listen before announcing, so 'port in use' is one clear line, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY only on sockets that say so;
    # without it every response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6 and host in WILDCARDS:
        # "::" takes IPv4 clients too only where the system's default says so (Linux: yes,
        # BSD and Windows: no); say it, so "all interfaces" is true everywhere.
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = "pick another with --port" if exc.errno == 98 else "check --host"
        raise UserError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); {hint}"
                        ) from exc
    sock.listen(128)
    return sock


def _url(host: str, port: int) -> str:
    """The URL a browser on this machine opens (a wildcard host becomes its loopback)."""
    shown = WILDCARDS.get(host, host)
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def _remote_url(host: str, port: int) -> str | None:
    """For a wildcard host, the URL another device may open: by this machine's name (no
    network call; whether the name resolves there is up to the network); else None."""
    return _url(socket.gethostname(), port) if host in WILDCARDS else None


def _where(host: str, port: int) -> str:
    """Where to point a browser: one URL, or for a wildcard host both and why."""
    remote = _remote_url(host, port)
    if remote is None:
        return _url(host, port)
    return (f"listening on all interfaces, port {port}: open {_url(host, port)} here or "
            f"{remote} from another device")


def _announce(host: str, port: int, service: Service, as_json: bool, token: str | None
              ) -> None:
    """One stdout line saying where the server is; a warning if it is open to everyone."""
    from fmnist_edge.edge.serve.server import describe

    facts = {"url": _url(host, port), "all_interfaces": host in WILDCARDS,
             "remote_url": _remote_url(host, port), **describe(service)}
    if as_json:
        click.echo(json.dumps(facts))
    else:
        camera = facts["camera"] or "none"
        click.echo(f"edge-serve: {_where(host, port)}  model {facts['model']} "
                   f"({facts['artifact']}, {facts['runtime']}); camera: {camera}; "
                   "Ctrl-C to stop")
    sys.stdout.flush()
    if host not in LOOPBACK and token is None:
        where = "all interfaces" if host in WILDCARDS else host
        click.echo(f"edge-serve: warning: listening on {where} without a token: anyone on "
                   f"the network can use it (set --token or ${TOKEN_ENV})", err=True)


def _camera_news(line: str) -> None:
    """The camera failed, was lost, ended or came back: one stderr line (the camera thread
    starts after the start-up line, so this never comes before it)."""
    click.echo(f"edge-serve: {line}", err=True)


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(cli_util.run(cli))


if __name__ == "__main__":  # pragma: no cover
    main()
