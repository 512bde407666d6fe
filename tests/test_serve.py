"""edge-serve as a user runs it: a real server process, real HTTP, real images and video.

Every bad request of issue 10 is sent for real and must get its 4xx with a JSON error naming
the problem (or be closed cleanly), after which the server must still answer.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import servekit
from PIL import Image
from servekit import Server, running, wait_for

from fmnist_edge.edge import photo
from fmnist_edge.edge.dataset import load_split

# Both test venvs of `make test` install [serve]; elsewhere these tests have nothing to run.
pytest.importorskip("starlette", reason="edge-serve needs the [serve] extra")

N_IMAGES = 20
UPLOAD_LIMIT = 200_000
TOKEN = "test-token-1234"


@pytest.fixture(scope="module")
def test_set(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    split = load_split("test")
    return split.images[:N_IMAGES], split.labels[:N_IMAGES]


def png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """No camera, a small upload limit and a short body timeout (to test both quickly)."""
    with running(["--max-upload", str(UPLOAD_LIMIT), "--timeout", "1"]) as srv:
        yield srv


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory, test_set: tuple[np.ndarray, np.ndarray]
          ) -> Path:
    pytest.importorskip("cv2", reason="a video camera needs the [camera] extra")
    return servekit.write_video(tmp_path_factory.mktemp("video") / "garments.avi", test_set[0])


@pytest.fixture(scope="module")
def camera_server(video: Path) -> Iterator[Server]:
    with running(["--camera", str(video), "--loop", "--fps", "20"]) as srv:
        yield srv


def metric(server: Server, name: str, **labels: str) -> float:
    """One sample of /metrics, parsed by prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    status, _, body = server.request("GET", "/metrics", headers=server.auth)
    assert status == 200
    total = 0.0
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def classify(server: Server, data: bytes, path: str = "/api/classify",
             content_type: str = "image/png") -> tuple[int, dict]:
    return server.json("POST", path, data, {"Content-Type": content_type, **server.auth})


def multipart(fields: list[tuple[str, str, bytes]], boundary: str = "b0undary") -> bytes:
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
             f"filename=\"{filename}\"\r\nContent-Type: image/png\r\n\r\n".encode() + data
             + b"\r\n" for name, filename, data in fields]
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


# ------------------------------------------------------------------------------------------
# The routes


def test_info_names_model_classes_runtime_and_no_camera(server: Server) -> None:
    from fmnist_edge.edge import manifest, photo, shipped

    status, info = server.json("GET", "/api/info")
    bundle = manifest.load(shipped.bundles_root() / shipped.DEFAULT_MODEL)
    assert status == 200
    assert info["model"] == bundle.model
    assert info["classes"] == list(bundle.class_names)
    assert info["runtime"] in ("litert", "tflite-runtime", "onnxruntime")
    assert info["artifact"]["file"] in bundle.artifacts
    assert info["preprocessing"]["scale"] == bundle.preprocessing.scale
    assert info["preprocessing"]["method"] == photo.DEFAULT_METHOD
    assert info["preprocessing"]["pipeline_version"] == photo.pipeline_version()
    assert info["versions"]["fmnist-edge"] and info["versions"]["starlette"]
    assert info["camera"]["state"] == "off" and info["camera"]["available"] is False
    assert info["limits"]["max_upload_bytes"] == UPLOAD_LIMIT
    assert info["auth"] is False


def edge_classify_json(file: Path, server: Server, *options: str) -> dict:
    """What `edge-classify FILE --json OPTIONS` prints, on the server's runtime."""
    cli = subprocess.run([sys.executable, "-m", "fmnist_edge.edge.cli", str(file), "--json",
                          *options, "--backend", server.facts["runtime"]],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    return json.loads(cli.stdout)


def test_classify_answers_what_edge_classify_json_prints(server: Server, tmp_path: Path,
                                                         test_set: tuple) -> None:
    """Same image, same object as `edge-classify --json`, plus per-stage timings."""
    file = tmp_path / "boot.png"
    file.write_bytes(png(test_set[0][0]))
    expected = edge_classify_json(file, server, "--top-k", "3")
    status, got = classify(server, file.read_bytes(), f"/api/classify?top_k=3&name={file}")
    assert status == 200
    assert set(got) == set(expected) | {"timings_ms"}
    assert got["path"] == expected["path"]
    assert got["top_k"] == expected["top_k"]
    assert got["top_k"][0]["class"] == "Ankle boot"
    assert got["pipeline"] == expected["pipeline"] == photo.pipeline_version()
    timings = got["timings_ms"]
    assert set(timings) == {"decode", "preprocess", "inference", "total"}
    assert 0 < timings["inference"] <= timings["total"]


def test_raw_and_multipart_uploads_classify_real_test_images(server: Server,
                                                             test_set: tuple) -> None:
    images, labels = test_set
    classes = server.json("GET", "/api/info")[1]["classes"]
    right = 0
    before = metric(server, "fmnist_edge_http_requests_total", route="/api/classify",
                    status="200")
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        if i % 2:
            status, got = classify(server, png(image), "/api/classify?top_k=2")
        else:
            body = multipart([("image", f"img{i}.png", png(image))])
            status, got = classify(server, body, "/api/classify?top_k=2",
                                   "multipart/form-data; boundary=b0undary")
            assert got["path"] == f"img{i}.png"
        assert status == 200, got
        assert len(got["top_k"]) == 2
        right += got["top_k"][0]["class"] == classes[label]
    assert right >= 0.8 * len(images), f"{right}/{len(images)} right"
    after = metric(server, "fmnist_edge_http_requests_total", route="/api/classify",
                   status="200")
    assert after - before == len(images)


def test_page_and_its_files_are_served_from_the_package(server: Server) -> None:
    status, headers, body = server.request("GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'src="/static/app.js"' in body and b"viewport" in body
    assert "default-src 'self'" in headers["content-security-policy"]
    for path, media in (("/static/app.js", "text/javascript"), ("/static/style.css", "text/css")):
        status, headers, body = server.request("GET", path)
        assert status == 200 and headers["content-type"].startswith(media) and body


def test_metrics_are_valid_prometheus_text(server: Server, test_set: tuple) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    classify(server, png(test_set[0][1]))  # a Pullover
    status, headers, body = server.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert families["fmnist_edge_http_request_duration_seconds"].type == "histogram"
    assert families["fmnist_edge_http_requests"].type == "counter"
    assert metric(server, "fmnist_edge_answers_total", source="upload", **{"class": "Pullover"}
                  ) >= 1
    assert "fmnist_edge_unsure" in families and "fmnist_edge_camera_fps" in families
    count = metric(server, "fmnist_edge_http_request_duration_seconds_count",
                   route="/api/classify")
    inf = metric(server, "fmnist_edge_http_request_duration_seconds_bucket",
                 route="/api/classify", le="+Inf")
    assert count == inf > 0


# ------------------------------------------------------------------------------------------
# Bad input: the right 4xx, a JSON error naming the problem, and the server keeps serving


def _bomb() -> bytes:
    """A real decompression bomb: 8200x8200 black pixels (67 Mpx, 67 MB decoded), ~70 KB."""
    buf = io.BytesIO()
    Image.new("L", (8200, 8200)).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


BAD_BODIES = [
    ("empty body", b"", "image/png", 400, "empty"),
    ("not an image", b"hello, I am text" * 10, "image/png", 415, "not an image"),
    ("truncated png", b"TRUNCATED", "image/png", 422, "truncated"),
    ("wrong content type json", b'{"image": 1}', "application/json", 415, "Content-Type"),
    ("wrong content type form", b"a=1", "application/x-www-form-urlencoded", 415,
     "Content-Type"),
    ("multipart without a file", b"--b0undary\r\nContent-Disposition: form-data; name=\"x\""
     b"\r\n\r\n1\r\n--b0undary--\r\n", "multipart/form-data; boundary=b0undary", 400,
     "no file"),
    ("multipart with two files", b"TWO", "multipart/form-data; boundary=b0undary", 400,
     "multipart"),
    ("multipart without boundary", b"x", "multipart/form-data", 400, "multipart"),
]


@pytest.mark.parametrize(("what", "body", "content_type", "status", "says"), BAD_BODIES,
                         ids=[b[0] for b in BAD_BODIES])
def test_bad_bodies_get_a_4xx_naming_the_problem(server: Server, test_set: tuple, what: str,
                                                 body: bytes, content_type: str, status: int,
                                                 says: str) -> None:
    good = png(test_set[0][0])
    if body == b"TRUNCATED":
        body = good[: len(good) // 2]
    if body == b"TWO":
        body = multipart([("image", "a.png", good), ("other", "b.png", good)])
    got_status, got = classify(server, body, content_type=content_type)
    assert got_status == status, got
    assert got["status"] == status and says.lower() in got["error"].lower(), got
    assert server.alive()


def test_decompression_bomb_is_refused_from_its_header(server: Server) -> None:
    bomb = _bomb()
    assert len(bomb) < UPLOAD_LIMIT  # small on the wire: only the header gives it away
    status, got = classify(server, bomb)
    assert status == 413 and "too large" in got["error"] and "8200x8200" in got["error"]
    assert server.alive()


def test_body_over_the_limit_is_refused(server: Server) -> None:
    """Declared too large (refused before reading) and chunked too large (while reading)."""
    big = b"\x89PNG" + bytes(UPLOAD_LIMIT + 10)
    status, got = classify(server, big)
    assert status == 413 and "too large" in got["error"] and str(UPLOAD_LIMIT) in got["error"]
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"POST /api/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = bytes(50_000)
        with contextlib.suppress(OSError):  # the server may close before we finish
            for _ in range(6):
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        reply = _read_reply(sock)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"too large" in reply
    assert server.alive()


def _read_reply(sock: socket.socket) -> bytes:
    data = b""
    sock.settimeout(10)
    try:
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def test_min_confidence_makes_the_same_unsure_answer_as_edge_classify(
        server: Server, tmp_path: Path, test_set: tuple) -> None:
    """?min_confidence=1 (nothing is that sure) → "unsure", as `--min-confidence 1` prints."""
    file = tmp_path / "boot.png"
    file.write_bytes(png(test_set[0][0]))
    expected = edge_classify_json(file, server, "--min-confidence", "1")
    status, got = classify(server, file.read_bytes(),
                           f"/api/classify?min_confidence=1&name={file}")
    assert status == 200 and expected["status"] == "unsure"
    assert got["status"] == expected["status"] and got["answer"] == expected["answer"]
    status, sure = classify(server, file.read_bytes(), "/api/classify?min_confidence=0")
    assert status == 200 and sure["status"] != "unsure"


@pytest.mark.parametrize(("query", "says"), [
    ("top_k=0", "top_k"), ("top_k=abc", "top_k"), ("top_k=11", "top_k"),
    ("top_k=%C2%B2", "top_k"),  # "²": str.isdigit() says yes, int() says no
    ("preprocess=magic", "preprocess"), ("topk=3", "unknown parameter"),
    ("min_confidence=1.5", "min_confidence"), ("min_confidence=x", "min_confidence"),
])
def test_bad_options_are_refused(server: Server, test_set: tuple, query: str, says: str) -> None:
    status, got = classify(server, png(test_set[0][0]), f"/api/classify?{query}")
    assert status == 400 and says in got["error"], got


def test_only_the_listed_routes_exist(server: Server) -> None:
    for method, path, status in (("GET", "/etc/passwd", 404), ("GET", "/static/../app.py", 404),
                                 ("GET", "/static/cli.py", 404), ("GET", "/api/classify", 405),
                                 ("DELETE", "/api/info", 405), ("POST", "/", 405)):
        got_status, got = server.json(method, path)
        assert got_status == status and got["status"] == status, (path, got)
    status, got = server.json("GET", "/api/stream")
    assert status == 404 and "no camera" in got["error"]


def test_slow_upload_times_out_with_408(server: Server) -> None:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"POST /api/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                     b"Content-Length: 1000\r\n\r\n" + bytes(10))
        reply = _read_reply(sock)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b"too slow" in reply
    assert server.alive()


@pytest.mark.parametrize("sent", [b"", b"GET /api/info HTTP/1.1\r\nHost: x\r\n"],
                         ids=["nothing", "half a head"])
def test_silent_clients_are_closed_after_the_timeout(server: Server, sent: bytes) -> None:
    """A connection that never completes its request head cannot hold a slot forever."""
    with socket.create_connection((server.host, server.port), timeout=15) as sock:
        sock.sendall(sent)
        start = time.monotonic()
        assert sock.recv(100) == b""  # closed by the server, not timed out here
        assert time.monotonic() - start < 10
    assert server.alive()


def test_client_disconnecting_mid_upload_leaves_the_server_serving(server: Server) -> None:
    for _ in range(5):
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            sock.sendall(b"POST /api/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                         b"Content-Length: 100000\r\n\r\n" + bytes(5000))
    wait_for(lambda: metric(server, "fmnist_edge_http_requests_total", route="/api/classify",
                            status="499") >= 5, timeout=10)
    assert server.alive()


def test_token_is_required_on_every_api_call(test_set: tuple) -> None:
    """From the environment variable; header everywhere, ?token= only on the streams."""
    with running([], env={"FMNIST_EDGE_TOKEN": TOKEN}) as srv:
        assert srv.facts["auth"] is True
        for path in ("/api/info", "/metrics", "/api/events", "/api/stream", "/nope"):
            status, headers, body = srv.request("GET", path)
            assert status == 401 and headers["www-authenticate"].startswith("Bearer"), path
            assert "missing token" in json.loads(body)["error"]
        status, got = srv.json("GET", "/api/info", headers={"Authorization": "Bearer nope"})
        assert status == 401 and got["error"] == "wrong token"
        status, got = srv.json("GET", "/api/info", headers={"Authorization": f"Basic {TOKEN}"})
        assert status == 401
        status, got = srv.json("POST", f"/api/classify?token={TOKEN}", png(test_set[0][0]),
                               {"Content-Type": "image/png"})
        assert status == 401  # a query token only for <img>/EventSource, never for uploads
        srv.auth = {"Authorization": f"Bearer {TOKEN}"}
        status, got = classify(srv, png(test_set[0][0]))
        assert status == 200 and got["top_k"][0]["class"] == "Ankle boot"
        assert srv.request("GET", "/")[0] == 200  # the page itself asks for the token
        status, _, _ = srv.request("GET", f"/api/stream?token={TOKEN}")
        assert status == 404  # authorised; there is just no camera
        assert metric(srv, "fmnist_edge_http_requests_total", route="/api/info",
                      status="401") == 3


# ------------------------------------------------------------------------------------------
# Camera: MJPEG, server-sent events, many viewers, and a camera that goes away


def read_parts(stream: io.BufferedReader, count: int) -> list[bytes]:
    """The first ``count`` JPEG parts of a multipart/x-mixed-replace stream: a part ends
    where the next boundary starts (the server sends no Content-Length, see streams.py)."""
    assert stream.readline().strip() == b"--frame"
    delimiter, buf, parts = b"\r\n--frame\r\n", b"", []
    while len(parts) < count:
        chunk = stream.read1(65536)
        if not chunk:
            raise EOFError("stream ended")
        buf += chunk
        while delimiter in buf and len(parts) < count:
            part, buf = buf.split(delimiter, 1)
            head, _, body = part.partition(b"\r\n\r\n")
            assert head.lower() == b"content-type: image/jpeg", head
            parts.append(body)
    return parts


def open_stream(server: Server, path: str = "/api/stream") -> tuple[socket.socket,
                                                                     io.BufferedReader, bytes]:
    sock = socket.create_connection((server.host, server.port), timeout=30)
    # HTTP/1.0: the body arrives as sent (no chunked framing to undo)
    sock.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    reader = sock.makefile("rb")
    status = reader.readline()
    while reader.readline().strip():
        pass
    return sock, reader, status


def events(server: Server, count: int) -> list[tuple[str, dict]]:
    sock, reader, status = open_stream(server, "/api/events")
    assert b" 200 " in status, status
    out: list[tuple[str, dict]] = []
    name = ""
    with sock, reader:
        while len(out) < count:
            line = reader.readline().decode()
            if line.startswith("event: "):
                name = line[7:].strip()
            elif line.startswith("data: "):
                out.append((name, json.loads(line[6:])))
    return out


def test_camera_answers_are_pushed_and_right(camera_server: Server, test_set: tuple) -> None:
    _, labels = test_set
    classes = camera_server.json("GET", "/api/info")[1]["classes"]
    got = events(camera_server, 31)
    # The stream opens with the camera's state: "starting" if it is still opening (a busy
    # machine), then "running", which always comes before the first answer.
    assert got[0][0] == "status" and got[0][1]["state"] in ("starting", "running")
    first = next(i for i, (name, _) in enumerate(got) if name == "answer")
    assert [d["state"] for n, d in got[:first] if n == "status"][-1] == "running"
    answers = [data for name, data in got if name == "answer"]
    assert len(answers) >= 25
    seqs = [a["seq"] for a in answers]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    right = sum(a["top_k"][0]["class"] == classes[labels[(int(a["path"].split()[-1]) - 1)
                                                         % N_IMAGES]] for a in answers)
    assert right >= 0.7 * len(answers), f"{right}/{len(answers)}"
    assert {"top_k", "latency_ms", "timings_ms", "path"} <= set(answers[0])


def test_mjpeg_stream_sends_decodable_frames(camera_server: Server) -> None:
    sock, reader, status = open_stream(camera_server)
    with sock, reader:
        assert b" 200 " in status, status
        frames = [Image.open(io.BytesIO(part)) for part in read_parts(reader, 3)]
    for frame in frames:
        frame.load()
        assert frame.format == "JPEG" and frame.size == servekit.FRAME_SIZE
    info = camera_server.json("GET", "/api/info")[1]["camera"]
    assert info["state"] == "running" and info["frames"] >= 3 and info["fps"] > 0


def test_fifty_viewers_at_once_then_all_gone(camera_server: Server) -> None:
    barrier = threading.Barrier(50)
    results: list[object] = []

    def viewer() -> None:
        barrier.wait()
        try:
            sock, reader, status = open_stream(camera_server)
            with sock, reader:
                results.append((status, len(read_parts(reader, 1)[0])))
        except Exception as exc:  # recorded, and the assertion below shows it
            results.append(exc)

    threads = [threading.Thread(target=viewer) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ok = [r for r in results if isinstance(r, tuple) and b" 200 " in r[0] and r[1] > 1000]
    assert len(ok) == 50, [r for r in results if r not in ok][:3]
    wait_for(lambda: metric(camera_server, "fmnist_edge_stream_clients", kind="mjpeg") == 0,
             timeout=15)
    assert camera_server.alive()


def test_clients_leaving_mid_stream_are_cleaned_up(camera_server: Server) -> None:
    for path in ("/api/stream", "/api/events") * 3:
        sock, reader, _ = open_stream(camera_server, path)
        reader.read(100)
        sock.close()
        reader.close()
    wait_for(lambda: metric(camera_server, "fmnist_edge_stream_clients") == 0, timeout=15)
    assert metric(camera_server, "fmnist_edge_camera_frames_total") > 0
    assert camera_server.alive()


def test_too_many_streams_get_503(video: Path) -> None:
    with running(["--camera", str(video), "--loop", "--max-streams", "2"]) as srv:
        held = [open_stream(srv) for _ in range(2)]
        time.sleep(0.5)
        status, headers, body = srv.request("GET", "/api/stream")
        for sock, reader, _ in held:
            sock.close()
            reader.close()
        assert status == 503 and "too many open streams" in json.loads(body)["error"]
        assert headers["retry-after"] == "5"


def test_video_ending_is_reported_not_a_crash(tmp_path: Path, test_set: tuple) -> None:
    pytest.importorskip("cv2")
    video = servekit.write_video(tmp_path / "short.avi", test_set[0][:5])
    with running(["--camera", str(video), "--fps", "50"]) as srv:
        camera = wait_for(lambda: (c := srv.json("GET", "/api/info")[1]["camera"])["state"]
                          == "ended" and c)
        assert camera["frames"] == 5 and "ended" in camera["message"]
        assert camera["available"] is False
        assert srv.request("GET", "/api/stream", timeout=10)[0] == 503  # no frame will come
        assert classify(srv, png(test_set[0][0]))[0] == 200  # uploads still work
        assert events(srv, 1)[0][1]["state"] == "ended"


def test_a_broken_camera_is_reported_once_the_stream_is_a_503_uploads_work(
        tmp_path: Path, test_set: tuple) -> None:
    """A camera that cannot open is in /api/info and one stderr line (the same reason), and
    /api/stream answers a JSON 503 at once instead of a 200 stream with no frame in it;
    uploads still work."""
    pytest.importorskip("cv2")
    fake = tmp_path / "notes.txt"
    fake.write_text("this is not a video")
    with running(["--camera", str(fake)]) as srv:
        camera = wait_for(lambda: (c := srv.json("GET", "/api/info")[1]["camera"])["state"]
                          == "failed" and c)
        assert "could not open" in camera["message"]
        said = wait_for(lambda: [line for line in srv.stderr if "notes.txt" in line])
        started = time.monotonic()
        status, headers, body = srv.request("GET", "/api/stream", timeout=10)
        assert time.monotonic() - started < 5
        assert status == 503 and headers["content-type"] == "application/json"
        assert camera["message"] in json.loads(body)["error"]
        assert "retry-after" not in headers  # a file that is not a video will not recover
        assert events(srv, 1)[0][1]["state"] == "failed"  # the page still learns why
        assert classify(srv, png(test_set[0][0]))[0] == 200
        time.sleep(0.5)
    assert len(said) == 1 and camera["message"] in said[0], said
    assert sum("notes.txt" in line for line in srv.stderr) == 1, srv.stderr


# ------------------------------------------------------------------------------------------
# The command line


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fmnist_edge.edge.serve.cli", *args],
                          capture_output=True, text=True, timeout=60)


def test_help_has_examples() -> None:
    proc = _cli("--help")
    assert proc.returncode == 0
    assert "Examples:" in proc.stdout and "curl -F image=@" in proc.stdout


@pytest.mark.parametrize(("args", "code", "says"), [
    (["--camera", "no-such-clip.mp4"], 2, "no-such-clip.mp4: no such video file or device"),
    (["--camera", "/dev/video97"], 2, "/dev/video97: no such video file or device"),
    (["--token", " "], 2, "must not be empty"),
    (["--model", "no-such-bundle"], 2, "no such model bundle"),
])
def test_bad_command_lines_fail_in_one_line(args: list[str], code: int, says: str) -> None:
    proc = _cli(*args)
    assert proc.returncode == code, proc.stderr
    assert says in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_port_in_use_is_one_line(server: Server) -> None:
    proc = _cli("--port", str(server.port))
    assert proc.returncode == 1
    assert "cannot listen" in proc.stderr and "--port" in proc.stderr
    assert "Traceback" not in proc.stderr


def _ipv6_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize(("host", "here"), [
    ("0.0.0.0", "127.0.0.1"),
    pytest.param("::", "[::1]", marks=pytest.mark.skipif(not _ipv6_works(),
                                                         reason="no IPv6 here")),
])
def test_a_wildcard_host_prints_urls_that_open(host: str, here: str) -> None:
    """--host 0.0.0.0 / ::: the printed URL is one a browser here can open (not the wildcard
    itself), the line says every interface listens and names this machine for other devices;
    the URL a user copies from that line answers, and so does any other address of ours."""
    with running(["--host", host], as_json=False) as srv:
        line, port = srv.facts["line"], srv.port
        assert f"listening on all interfaces, port {port}: open http://{here}:{port}/ here or " \
               f"http://{socket.gethostname()}:{port}/ from another device" in line, line
        assert srv.url == f"http://{here}:{port}/" and srv.alive()
        other = _non_loopback_ipv4()
        if other is not None:  # also reached on another interface (IPv4 too for "::")
            conn = http.client.HTTPConnection(other, port, timeout=10)
            conn.request("GET", "/api/info")
            assert conn.getresponse().status == 200
            conn.close()


def test_a_specific_host_prints_that_host() -> None:
    with running(["--host", "127.0.0.1"], as_json=False) as srv:
        assert srv.facts["line"].startswith(f"edge-serve: http://127.0.0.1:{srv.port}/  model ")
        assert "all interfaces" not in srv.facts["line"] and srv.alive()
    with running(["--host", "0.0.0.0"]) as srv:  # --json: the same facts, as fields
        assert srv.facts["all_interfaces"] is True and srv.url.startswith("http://127.0.0.1:")
        assert srv.facts["remote_url"] == f"http://{socket.gethostname()}:{srv.port}/"


def _non_loopback_ipv4() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing), or None."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never reached
            address = str(probe.getsockname()[0])
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_listening_socket_is_tcp_so_responses_are_not_delayed() -> None:
    """asyncio turns Nagle off only on sockets created as IPPROTO_TCP; with proto 0 every
    keep-alive response waited ~40 ms for a delayed ACK (found by the load benchmark)."""
    from fmnist_edge.edge.serve.cli import _bind

    sock = _bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
