"""Prometheus metrics of the server, in their own registry (one per app, so tests stay apart).

Counters and histograms are updated as requests run; the gauges that describe stored data
(records and bytes per layer and tenant, index backlog, breaker state) are read at scrape
time by a collector from the tenants that are open.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from magray.runtime import Runtime


class TenantView(Protocol):
    """What the collector reads of a tenant: its name, runtime and lock."""

    name: str
    runtime: Runtime
    lock: Any


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BREAKER_VALUES = {"closed": 0.0, "half-open": 1.0, "open": 2.0}


class StoreCollector(Collector):
    """Reads records, bytes, backlog and breaker state from each open tenant at scrape time."""

    def __init__(self, tenants: Callable[[], Iterable[TenantView]]) -> None:
        self._tenants = tenants

    def collect(self) -> Iterator[Metric]:
        records = GaugeMetricFamily(
            "magray_memory_records", "Records per layer and tenant.", labels=["tenant", "layer"]
        )
        size = GaugeMetricFamily(
            "magray_memory_bytes",
            "Text and vector bytes per layer and tenant.",
            labels=["tenant", "layer"],
        )
        backlog = GaugeMetricFamily(
            "magray_index_backlog",
            "Vectors written but not yet folded into the index file.",
            labels=["tenant", "layer"],
        )
        breaker = GaugeMetricFamily(
            "magray_llm_breaker_state",
            "Circuit breaker per provider: 0 closed, 1 half-open, 2 open.",
            labels=["tenant", "provider"],
        )
        for view in self._tenants():
            tenant, rt = view.name, view.runtime
            try:
                with view.lock:
                    stats = rt.memory.stats()
            except Exception:  # a scrape never fails because one tenant cannot be read
                continue
            for layer, row in stats["layers"].items():
                records.add_metric([tenant, layer], float(row["records"]))
                size.add_metric([tenant, layer], float(row["text_bytes"] + row["vector_bytes"]))
            for layer, row in stats.get("index", {}).items():
                if isinstance(row, dict) and "backlog" in row:
                    backlog.add_metric([tenant, layer], float(row["backlog"]))
            if "router" in rt.__dict__:  # only a router that was built (no config reads here)
                try:  # from the ledger: never waits for the tenant's LLM thread
                    states = rt.router.breaker_states()
                except Exception:
                    states = []
                for name, state in states:
                    breaker.add_metric([tenant, name], BREAKER_VALUES.get(state, -1.0))
        yield from (records, size, backlog, breaker)


class Metrics:
    """Every metric the server exports."""

    def __init__(self, tenants: Callable[[], Iterable[TenantView]] | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "magray_http_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "magray_http_request_duration_seconds",
            "HTTP request latency by route, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.recall_latency = Histogram(
            "magray_recall_duration_seconds",
            "Time one memory recall takes.",
            ["tenant"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.embedded = Counter(
            "magray_embedded_texts",
            "Texts embedded (rate() gives embeddings per second).",
            registry=r,
        )
        self.llm_tokens = Counter(
            "magray_llm_tokens",
            "LLM tokens by provider and kind (prompt or completion).",
            ["provider", "kind"],
            registry=r,
        )
        self.errors = Counter(
            "magray_errors", "Error responses by error type.", ["type"], registry=r
        )
        self.in_flight = Gauge("magray_requests_in_flight", "Requests being worked on.", registry=r)
        self.queued = Gauge("magray_requests_queued", "Requests waiting for a worker.", registry=r)
        self.rejected = Counter(
            "magray_requests_rejected",
            "Requests turned away by reason (queue_full, rate_limited, too_large, url_too_long,"
            " headers_too_large).",
            ["reason"],
            registry=r,
        )
        if tenants is not None:
            self.watch(tenants)

    def watch(self, tenants: Callable[[], Iterable[TenantView]]) -> None:
        """Export the stored-data gauges of the tenants ``tenants()`` yields at scrape time."""
        self.registry.register(StoreCollector(tenants))

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class CountingEmbedder:
    """Wraps an embedder and counts the texts it embeds (``magray_embedded_texts``)."""

    def __init__(self, inner: Any, counter: Counter) -> None:
        self._inner = inner
        self._counter = counter

    @property
    def model_id(self) -> str:
        return str(self._inner.model_id)

    @property
    def dim(self) -> int:
        return int(self._inner.dim)

    def embed_documents(self, texts: Sequence[str]) -> Any:
        out = self._inner.embed_documents(texts)
        self._counter.inc(len(texts))
        return out

    def embed_queries(self, texts: Sequence[str]) -> Any:
        out = self._inner.embed_queries(texts)
        self._counter.inc(len(texts))
        return out

    def cached_queries(self, texts: Sequence[str]) -> Any:
        """The inner embedder's cached vectors of ``texts`` (counted), or None."""
        peek = getattr(self._inner, "cached_queries", None)
        out = None if peek is None else peek(texts)
        if out is not None:
            self._counter.inc(len(texts))
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
