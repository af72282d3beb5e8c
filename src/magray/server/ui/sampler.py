"""A small in-process history of the server's own Prometheus metrics, for the health page.

Every ``INTERVAL`` seconds (and whenever the health page is drawn) the sampler reads the
metrics registry the way a Prometheus server would, through the text exposition format, on
a worker thread (never on the event loop: the read visits every open tenant's store), and
keeps the last hour of samples in a ring buffer: total requests, recall latency (sum and
count of the histogram), records per tenant and layer, LLM tokens. Rates and means are
differences between samples, so the page needs no Prometheus server.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

INTERVAL = 10.0
WINDOW = 3600.0


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    requests: float
    recall_sum: float
    recall_count: float
    records: dict[tuple[str, str], float] = field(default_factory=dict)
    tokens: float = 0.0


def parse(text: str) -> Sample:
    """One sample from the Prometheus text exposition format."""
    from prometheus_client.parser import text_string_to_metric_families

    requests = recall_sum = recall_count = tokens = 0.0
    records: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "magray_http_requests_total":
                requests += s.value
            elif s.name == "magray_recall_duration_seconds_sum":
                recall_sum += s.value
            elif s.name == "magray_recall_duration_seconds_count":
                recall_count += s.value
            elif s.name == "magray_memory_records":
                records[(s.labels.get("tenant", ""), s.labels.get("layer", ""))] = s.value
            elif s.name == "magray_llm_tokens_total":
                tokens += s.value
    return Sample(time.time(), requests, recall_sum, recall_count, records, tokens)


@dataclass(frozen=True, slots=True)
class Point:
    """One interval between two samples, as the charts draw it."""

    at: float
    request_rate: float  # requests per second
    recall_ms: float | None  # mean recall latency in the interval
    records: dict[str, float]  # per layer, for one tenant


class Sampler:
    """The ring buffer and the task that fills it."""

    def __init__(self, read: Callable[[], bytes], *, interval: float = INTERVAL) -> None:
        self.read = read
        self.interval = interval
        self.min_gap = 0.5  # seconds: a page drawn twice at once samples once
        self.samples: deque[Sample] = deque(maxlen=int(WINDOW / interval) + 2)
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> Sample:
        s = self.current()
        self.samples.append(s)
        return s

    def ensure_running(self) -> None:
        """Start sampling in the background (once per event loop)."""
        if self._task is not None and not self._task.done():
            return
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.to_thread(self.sample)  # reading the metrics reads every tenant
            await asyncio.sleep(self.interval)

    async def view(self, tenant: str) -> tuple[list[Point], Sample]:
        """``points(tenant)`` and ``current()`` for a page, read off the event loop: the
        metrics read every open tenant's store, which may wait for its lock."""
        return await asyncio.to_thread(lambda: (self.points(tenant), self.current()))

    def points(self, tenant: str) -> list[Point]:
        """The last hour as intervals; the newest sample is taken now."""
        now = time.time()
        if not self.samples or now - self.samples[-1].at >= self.min_gap:
            self.sample()
        rows = [s for s in self.samples if now - s.at <= WINDOW]
        out: list[Point] = []
        for a, b in pairwise(rows):
            span = max(b.at - a.at, 1e-6)
            n = b.recall_count - a.recall_count
            out.append(
                Point(
                    at=b.at,
                    request_rate=max(b.requests - a.requests, 0.0) / span,
                    recall_ms=(b.recall_sum - a.recall_sum) / n * 1000 if n > 0 else None,
                    records={layer: v for (t, layer), v in b.records.items() if t == tenant},
                )
            )
        return out

    def current(self) -> Sample:
        """The counters as they are now, not kept (the charts' samples keep their spacing:
        a page drawn within ``min_gap`` of the last sample would otherwise show totals that
        miss the requests of that last half second)."""
        return parse(self.read().decode("utf-8"))
