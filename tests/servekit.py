"""Helpers for the edge-serve tests: a real server process, a real client, a real video.

The server is started exactly as a user starts it (``python -m fmnist_edge.edge.serve.cli``,
the module behind the ``edge-serve`` script) on a free port (``--port 0``; it prints its URL
as JSON on the first line), and stopped with SIGTERM like a service manager would.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

FRAME_SIZE = (640, 480)


@dataclass
class Server:
    """A running ``edge-serve`` process."""

    proc: subprocess.Popen[str]
    url: str
    facts: dict[str, Any]
    stderr: list[str] = field(default_factory=list)
    #: Headers every API call of a test carries (the bearer token, when the server has one).
    auth: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 80)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 30.0
                ) -> tuple[int, dict[str, str], bytes]:
        """One request on a fresh connection: (status, lower-cased headers, body)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            res = conn.getresponse()
            return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        status, _, data = self.request(method, path, body, headers)
        return status, json.loads(data)

    def alive(self) -> bool:
        """The server still answers (what every bad-input test checks afterwards)."""
        status, info = self.json("GET", "/api/info", headers=self.auth)
        return status == 200 and "classes" in info


def start(args: list[str], env: dict[str, str] | None = None, timeout: float = 60.0,
          as_json: bool = True) -> Server:
    """Start ``edge-serve --port 0 --json ARGS`` and wait for its URL line.

    Without ``as_json`` the start-up line is the text a user reads: ``facts`` is then
    ``{"line": ...}`` and the server's URL the first one in that line, as a user would open.
    """
    json_flag = ["--json"] if as_json else []
    cmd = [sys.executable, "-m", "fmnist_edge.edge.serve.cli", "--port", "0", *json_flag, *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    first: list[str] = []
    waiter = threading.Thread(target=lambda: first.append(proc.stdout.readline()),  # type: ignore[union-attr]
                              daemon=True)
    waiter.start()
    waiter.join(timeout)
    if not first or not first[0].strip():
        proc.kill()
        proc.wait()
        raise AssertionError(f"edge-serve did not start: {''.join(lines)}")
    if as_json:
        facts = json.loads(first[0])
        return Server(proc, facts["url"], facts, lines)
    url = re.search(r"http://\S+/", first[0])
    assert url is not None, first[0]
    return Server(proc, url.group(0), {"line": first[0].strip()}, lines)


def stop(server: Server) -> int:
    """SIGTERM, as systemd would; the exit code.

    uvicorn shuts down gracefully, then re-raises the signal it caught, so a clean stop
    ends with ``-SIGTERM``, which systemd also counts as a clean stop.
    """
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(15)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
    return int(server.proc.returncode)


@contextlib.contextmanager
def running(args: list[str], env: dict[str, str] | None = None, as_json: bool = True
            ) -> Iterator[Server]:
    server = start(args, env, as_json=as_json)
    try:
        yield server
    finally:
        code = stop(server)
        log = "".join(server.stderr)
        assert "Traceback" not in log, log
        assert code == -signal.SIGTERM, f"edge-serve exited {code}: {log}"


def frame_of(image: np.ndarray, index: int) -> np.ndarray:
    """An RGB frame: the garment upscaled 10x, light on a dark table, moving frame to frame."""
    big = np.asarray(Image.fromarray(image).resize((280, 280), Image.Resampling.BICUBIC))
    frame = np.zeros((FRAME_SIZE[1], FRAME_SIZE[0], 3), np.uint8)
    top, left = 20 + (index * 7) % 160, 30 + (index * 17) % 300
    frame[top:top + 280, left:left + 280] = big[..., None]
    return frame


def write_video(path: Path, images: np.ndarray) -> Path:
    """A real MJPG .avi written by OpenCV, one Fashion-MNIST test image per frame."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, FRAME_SIZE)
    assert writer.isOpened(), "OpenCV cannot write MJPG here"
    for i, image in enumerate(images):
        writer.write(np.ascontiguousarray(frame_of(image, i)[..., ::-1]))
    writer.release()
    return path


def wait_for(predicate: Any, timeout: float = 20.0, every: float = 0.1) -> Any:
    """Poll until ``predicate()`` is truthy; its value, or AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")
