"""What ovmeet counts and times, for Prometheus (`GET /metrics`).

With `ovmeet serve --workers N`, every worker writes its figures to files in
PROMETHEUS_MULTIPROC_DIR (set by `serve` before the workers start) and `/metrics` adds them up,
so any worker answers for all of them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# Token calls take milliseconds, streams take minutes.
_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

REQUESTS = Counter("ovmeet_requests", "HTTP requests answered", ("operation", "method", "status"))
REQUEST_SECONDS = Histogram(
    "ovmeet_request_duration_seconds",
    "From the request's head to the response's last byte",
    ("operation",),
    buckets=_LATENCY,
)


@dataclass(frozen=True)
class CallMetrics:
    """How long the calls to one dependency take, and how many of them fail."""

    seconds: Histogram
    errors: Counter

    @contextmanager
    def timed(self, label: str, answers: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
        """Time the block under `label`; count an error if it raises, unless what it raises
        is one of `answers` (not found is an answer, not a failed call)."""
        started = time.perf_counter()
        try:
            yield
        except answers:
            raise
        except Exception:
            self.errors.labels(label).inc()
            raise
        finally:
            self.seconds.labels(label).observe(time.perf_counter() - started)


def _calls(dependency: str, label: str, what: str, answer: str) -> CallMetrics:
    return CallMetrics(
        Histogram(
            f"ovmeet_{dependency}_call_duration_seconds",
            f"Calls to {what}",
            (label,),
            buckets=_LATENCY,
        ),
        Counter(
            f"ovmeet_{dependency}_call_errors", f"Calls to {what} that failed ({answer})", (label,)
        ),
    )


LIVEKIT_CALLS = _calls("livekit", "method", "LiveKit", "not_found is an answer")
STORAGE_CALLS = _calls("storage", "call", "the storage", "a missing key is an answer")
BYTES_STREAMED = Counter("ovmeet_streamed_bytes", "Recording bytes sent to clients")
OPEN_STREAMS = Gauge(
    "ovmeet_open_streams", "Recording streams open now", multiprocess_mode="livesum"
)


def exposition() -> tuple[bytes, str]:
    """The text `/metrics` serves, of every worker when there are several."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def worker_stopped() -> None:
    """Drop this process's live gauges from the sum (its counters stay counted)."""
    if os.environ.get(MULTIPROCESS_DIR):
        _multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
