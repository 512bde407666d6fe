"""Load benchmark of ``edge-serve``: what HTTP costs next to classifying in one process.

    python -m fmnist_edge.benchmarks.serve_load                    # 4 clients x 1,000
    python -m fmnist_edge.benchmarks.serve_load -o benchmarks/SERVE.md --json

Starts a real ``edge-serve`` (shipped model, no camera) on a free port.  ``--clients``
threads, each on its own keep-alive connection, POST real Fashion-MNIST test images (PNG
bytes) to ``/api/classify``; every answer is checked (status 200, top-1 class parsed).  The
server's peak RSS (``VmHWM``) is read after the first quarter of the requests (1,000 with
the defaults) and after all of them (4,000): the growth shows whether anything leaks.  The
same images are classified in this process the way ``edge-classify`` does
(``open_image`` → ``to_views`` → ``classify``), one after another, for the baseline;
the two alternate in rounds, so the ratio is fair on a shared machine.

Exit codes: 0 done (any error count or leak is in the report), 1 the server would not start.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
from PIL import Image

from fmnist_edge.edge import atomic, cli_util, dataset, photo, shipped, tables
from fmnist_edge.edge.classify import classify
from fmnist_edge.edge.errors import UserError
from fmnist_edge.edge.model import EdgeModel

#: The issue's bound on peak-RSS growth between 1,000 and 4,000 requests.
MAX_GROWTH_MB = 10.0


def pngs(count: int) -> tuple[list[bytes], np.ndarray]:
    """The first ``count`` test images as PNG files' bytes, and their labels."""
    split = dataset.load_split("test")
    out = []
    for image in split.images[:count]:
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out, split.labels[:count]


def start_server(model: str | None) -> tuple[subprocess.Popen[str], str, int]:
    """``edge-serve --port 0 --json``: the process, its host and port."""
    cmd = [sys.executable, "-m", "fmnist_edge.edge.serve.cli", "--port", "0", "--json",
           "--max-streams", "8"]
    if model:
        cmd += ["--model", model]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        err = proc.stderr.read() if proc.stderr else ""
        raise UserError(f"edge-serve did not start: {err.strip()}")
    url = json.loads(line)["url"]
    host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    return proc, host, int(port)


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MB, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise UserError("no VmHWM in /proc (Linux only)")


class Client(threading.Thread):
    """One keep-alive connection sending ``count`` images, starting at ``offset``."""

    def __init__(self, host: str, port: int, images: list[bytes], offset: int,
                 count: int) -> None:
        super().__init__(daemon=True)
        self.host, self.port = host, port
        self.images, self.offset, self.count = images, offset, count
        self.latencies: list[float] = []
        self.answers: list[str] = []
        self.errors: list[str] = []

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            for i in range(self.offset, self.offset + self.count):
                self._one(conn, i)
        finally:
            conn.close()

    def _one(self, conn: http.client.HTTPConnection, i: int) -> None:
        body = self.images[i % len(self.images)]
        start = time.perf_counter()
        try:
            conn.request("POST", "/api/classify", body=body,
                         headers={"Content-Type": "image/png"})
            res = conn.getresponse()
            data = res.read()
        except (OSError, http.client.HTTPException) as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
            self.answers.append("")  # keeps answers[j] paired with image j
            conn.close()
            return
        self.latencies.append((time.perf_counter() - start) * 1000.0)
        if res.status != 200:
            self.errors.append(f"HTTP {res.status}: {data[:200]!r}")
            self.answers.append("")
            return
        self.answers.append(json.loads(data)["top_k"][0]["class"])


def http_phase(host: str, port: int, images: list[bytes], clients: int, per_client: int,
               offset: int) -> dict[str, Any]:
    """``clients`` threads x ``per_client`` requests at once; wall time and answers."""
    threads = [Client(host, port, images, offset + c * per_client, per_client)
               for c in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {"wall_s": wall, "latencies": [x for t in threads for x in t.latencies],
            "errors": [e for t in threads for e in t.errors],
            "answers": [(t.offset, t.answers) for t in threads]}


def in_process(model: EdgeModel, images: list[bytes], count: int) -> dict[str, Any]:
    """``edge-classify``'s path, one image after another in this process."""
    latencies = []
    start = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        img = photo.open_image(images[i % len(images)], f"{i}.png")
        classify(model, photo.to_views(img), f"{i}.png", 3)
        latencies.append((time.perf_counter() - t0) * 1000.0)
    return {"wall_s": time.perf_counter() - start, "latencies": latencies}


#: HTTP and in-process work alternate in this many rounds, so a burst of load from
#: elsewhere on the machine hits both sides alike.
ROUNDS = 4


def run(model_arg: str | None, clients: int, requests: int, log: Any) -> dict[str, Any]:
    """The whole benchmark; returns every figure of the report.

    Round r sends ``requests / ROUNDS`` per client over HTTP, then classifies as many
    images in this process.  Peak RSS is read after round 1 (1,000 requests with the
    defaults) and after the last (4,000).
    """
    images, labels = pngs(1000)
    classes = list(dataset.CLASS_NAMES)
    model = EdgeModel.open(shipped.resolve_model_arg(model_arg))
    in_process(model, images, 50)  # warm up, as the server does before listening
    per_round = [requests // ROUNDS + (r < requests % ROUNDS) for r in range(ROUNDS)]
    phases, locals_, rss = [], [], []
    proc, host, port = start_server(model_arg)
    try:
        log(f"{clients} clients x {requests} requests to {host}:{port}, alternating with "
            f"the same images in this process, {ROUNDS} rounds")
        sent = 0
        for count in per_round:
            phases.append(http_phase(host, port, images, clients, count, sent))
            rss.append(peak_rss_mb(proc.pid))
            locals_.append(in_process(model, images, count * clients))
            sent += count * clients
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    total = requests * clients
    lat = np.array([x for ph in phases for x in ph["latencies"]])
    errors = [e for ph in phases for e in ph["errors"]]
    answers = [(off + j, c) for ph in phases for off, cs in ph["answers"]
               for j, c in enumerate(cs)]
    right = sum(c == classes[labels[i % len(labels)]] for i, c in answers)
    local_lat = np.array([x for loc in locals_ for x in loc["latencies"]])
    http_rps = total / sum(ph["wall_s"] for ph in phases)
    local_rps = total / sum(loc["wall_s"] for loc in locals_)
    return {
        "clients": clients, "requests_per_client": requests, "total": total,
        "rounds": ROUNDS,
        "http": {"requests_per_s": http_rps, "p50_ms": float(np.percentile(lat, 50)),
                 "p99_ms": float(np.percentile(lat, 99)), "errors": len(errors),
                 "first_errors": errors[:5], "accuracy": right / max(len(answers), 1)},
        "server_peak_rss_mb": {"after_first": rss[0], "after_all": rss[-1],
                               "first_count": per_round[0] * clients,
                               "growth": rss[-1] - rss[0],
                               "within_bound": rss[-1] - rss[0] <= MAX_GROWTH_MB},
        "in_process": {"requests_per_s": local_rps,
                       "p50_ms": float(np.percentile(local_lat, 50)),
                       "p99_ms": float(np.percentile(local_lat, 99))},
        "http_vs_in_process": http_rps / local_rps,
        "model": {"file": model.artifact.file, "runtime": model.session.backend},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                   f"{platform.python_version()}",
    }


def markdown(r: dict[str, Any]) -> str:
    """The report's table and notes."""
    h, p, rss = r["http"], r["in_process"], r["server_peak_rss_mb"]
    rows = [
        [f"edge-serve, {r['clients']} clients over HTTP", f"{h['requests_per_s']:.0f}",
         f"{h['p50_ms']:.2f}", f"{h['p99_ms']:.2f}", str(h["errors"])],
        ["edge-classify's path, one process", f"{p['requests_per_s']:.0f}",
         f"{p['p50_ms']:.2f}", f"{p['p99_ms']:.2f}", "0"],
    ]
    table = tables.markdown(["", "images/s", "p50 ms", "p99 ms", "errors"], rows)
    verdict = "within" if rss["within_bound"] else "OVER"
    return "\n".join([
        f"{r['total']:,} `POST /api/classify` of real Fashion-MNIST test PNGs "
        f"({r['clients']} concurrent keep-alive clients x {r['requests_per_client']:,}), "
        f"{r['model']['file']} on {r['model']['runtime']}; {r['machine']}.  HTTP and "
        f"in-process runs alternate in {r['rounds']} rounds.", "",
        table, "",
        f"- HTTP costs: edge-serve answers **{r['http_vs_in_process']:.2f}x** the images per "
        f"second of classifying the same PNGs in one process.",
        f"- Server peak RSS: {rss['after_first']:.1f} MB after {rss['first_count']:,} "
        f"requests, {rss['after_all']:.1f} MB after {r['total']:,}: growth "
        f"{rss['growth']:+.1f} MB ({verdict} the {MAX_GROWTH_MB:g} MB bound).",
        f"- Top-1 answers over HTTP matching the true label: {h['accuracy']:.4f}.",
        "- Latency is per request as the client sees it (send to last byte); the in-process "
        "figure is decode + preprocess + model for one image.  The clients run on the same "
        "machine as the server and share its CPUs.",
        "", "Reproduce: `python -m fmnist_edge.benchmarks.serve_load` (`-o FILE` writes this "
        "report, `--json` prints every figure).",
    ]) + "\n"


@click.command(name="serve-load", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-m", "--model", "model_arg", default=None, help="Model for both sides.")
@click.option("--clients", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--requests", type=click.IntRange(min=8), default=1000, show_default=True,
              help="Requests per client.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Also write the Markdown report here.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def cli(model_arg: str | None, clients: int, requests: int, output: Path | None,
        as_json: bool) -> int:
    """Load-test edge-serve and compare with classifying in one process."""
    result = run(model_arg, clients, requests,
                 lambda msg: click.echo(f"serve-load: {msg}", err=True))
    report = markdown(result)
    if output is not None:
        atomic.write_text(output, "# edge-serve load benchmark\n\n" + report)
    click.echo(json.dumps(result, indent=2) if as_json else report)
    return 0


def main() -> None:
    """Module entry point."""
    sys.exit(cli_util.run(cli))


if __name__ == "__main__":
    main()
