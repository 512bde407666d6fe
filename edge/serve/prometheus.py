"""Just enough of the Prometheus text format for ``/metrics``: counters, gauges, histograms.

Written by hand (about 100 lines) rather than pulling in ``prometheus_client``: the server
needs three metric types and no push gateway, and every dependency is one more wheel on the
Pi.  The output is checked against ``prometheus_client``'s own parser in the tests.
Thread-safe: the camera thread and the request handlers update the same registry.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from typing import TypeVar

Labels = tuple[tuple[str, str], ...]

#: Request latency buckets in seconds: classification takes milliseconds on a Pi.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _escape(value: str) -> str:
    """A label value as the text format wants it (backslash, quote and newline escaped)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Labels, extra: Labels = ()) -> str:
    pairs = (*labels, *extra)
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, lock: threading.Lock) -> None:
        self.name, self.help, self._lock = name, help_text, lock

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def lines(self) -> list[str]:
        raise NotImplementedError


_M = TypeVar("_M", bound=_Metric)


class Counter(_Metric):
    """A monotonically increasing count per label set."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, lock: threading.Lock) -> None:
        super().__init__(name, help_text, lock)
        self._values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, /, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(tuple(sorted(labels.items())), 0.0)

    def lines(self) -> list[str]:
        return [f"{self.name}{_labels(k)} {_number(v)}" for k, v in sorted(self._values.items())]


class Gauge(Counter):
    """A value that goes up and down (frames per second, open streams)."""

    kind = "gauge"

    def set(self, value: float, /, **labels: str) -> None:
        with self._lock:
            self._values[tuple(sorted(labels.items()))] = float(value)


class Histogram(_Metric):
    """Observations counted into cumulative ``le`` buckets, with their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, lock: threading.Lock,
                 buckets: Iterable[float] = LATENCY_BUCKETS) -> None:
        super().__init__(name, help_text, lock)
        self.buckets = (*sorted(buckets), math.inf)
        self._series: dict[Labels, list[float]] = {}  # bucket counts..., sum, count

    def observe(self, value: float, /, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._series.setdefault(key, [0.0] * (len(self.buckets) + 2))
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    series[i] += 1
            series[-2] += value
            series[-1] += 1

    def lines(self) -> list[str]:
        out = []
        for key, series in sorted(self._series.items()):
            for bound, count in zip(self.buckets, series, strict=False):
                le = (("le", _number(bound)),)
                out.append(f"{self.name}_bucket{_labels(key, le)} {_number(count)}")
            out.append(f"{self.name}_sum{_labels(key)} {_number(series[-2])}")
            out.append(f"{self.name}_count{_labels(key)} {_number(series[-1])}")
        return out


class Registry:
    """The server's metrics, rendered together in the text exposition format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metrics: list[_Metric] = []

    def counter(self, name: str, help_text: str) -> Counter:
        return self._add(Counter(name, help_text, self._lock))

    def gauge(self, name: str, help_text: str) -> Gauge:
        return self._add(Gauge(name, help_text, self._lock))

    def histogram(self, name: str, help_text: str,
                  buckets: Iterable[float] = LATENCY_BUCKETS) -> Histogram:
        return self._add(Histogram(name, help_text, self._lock, buckets))

    def _add(self, metric: _M) -> _M:
        self._metrics.append(metric)
        return metric

    def render(self) -> str:
        """All metrics, ``# HELP`` and ``# TYPE`` first, newline-terminated."""
        with self._lock:
            lines = [line for m in self._metrics for line in (*m.header(), *m.lines())]
        return "\n".join(lines) + "\n"


class ServeMetrics:
    """What ``edge-serve`` exports: requests, errors, latency, answers, unsure, camera fps."""

    def __init__(self) -> None:
        self.registry = Registry()
        reg = self.registry
        self.requests = reg.counter("fmnist_edge_http_requests_total",
                                    "HTTP requests by route and status code.")
        self.errors = reg.counter("fmnist_edge_http_errors_total",
                                  "HTTP requests answered with a 4xx or 5xx, by route and status.")
        self.latency = reg.histogram("fmnist_edge_http_request_duration_seconds",
                                     "Time to answer a request (streams excluded), by route.")
        self.answers = reg.counter("fmnist_edge_answers_total",
                                   "Top-1 answers by class and source (upload or camera).")
        self.unsure = reg.counter("fmnist_edge_unsure_total",
                                  "Answers the model was unsure about, by source.")
        self.frames = reg.counter("fmnist_edge_camera_frames_total",
                                  "Camera frames classified.")
        self.fps = reg.gauge("fmnist_edge_camera_fps",
                             "Camera frames classified per second (recent average).")
        self.camera_up = reg.gauge("fmnist_edge_camera_up",
                                   "1 while the camera delivers frames, else 0.")
        self.streams = reg.gauge("fmnist_edge_stream_clients",
                                 "Open MJPEG and event-stream connections, by kind.")

    def answer(self, label: str, unsure: bool, source: str) -> None:
        """Count one classification's answer."""
        self.answers.inc(**{"class": label, "source": source})
        if unsure:
            self.unsure.inc(source=source)
