"""Prometheus metrics of each wellmon process (`metrics.enabled`), the only user of
prometheus_client.

Each process makes its metrics on its own `CollectorRegistry` and serves them with
`serve()` in a daemon thread on `metrics.host` (127.0.0.1 by default; anything beyond
loopback needs `metrics.insecure`, see streamer/wire/exposure.py); it then names the
address in its READY line (`metrics=http://HOST:PORT/metrics`). Counts that a process
keeps anyway (the node's received and rejected messages, the dashboard's faults...) are
read by a collector when Prometheus scrapes, so the hot paths do not change; only the
histograms are observed as things happen. Labels hold stage names, reasons, kinds and
stream ids: never a token or anything about a person. Per-stream series come from the
node's current streams, so a forgotten stream (`node.forget_after_s`) leaves them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

from wellmon.config import ConfigError, MetricsConfig
from wellmon.streamer.wire import exposure

PREFIX = "wellmon"
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5,
                     1.0, 2.5, 5.0, 10.0)
COUNT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
NODE_STAGES = ("capture_to_send", "send_to_node", "node_wait", "window", "capture_to_publish")
"""Per-window stages of `ScoreMessage.latency_ms`; `fusion` is one number per batch."""


def serve(registry: CollectorRegistry, host: str, port: int) -> int:
    """Serve `registry` at http://host:port/metrics in a daemon thread; the bound port."""
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(f"metrics: cannot listen on {host}:{port}: "
                          f"{exc.strerror or exc}") from None
    return int(server.server_port)


def url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics"


def start(registry: CollectorRegistry, cfg: MetricsConfig, port: int) -> str:
    """`serve()` on the configured host (refused beyond loopback unless `metrics.insecure`:
    they have no token), and the READY line's ` metrics=URL` part."""
    exposure.check_metrics(cfg)
    return f" metrics={url(cfg.host, serve(registry, cfg.host, port))}"


def _registry() -> CollectorRegistry:
    disable_created_metrics()  # no `_created` series: they double the output for nothing here
    registry = CollectorRegistry()
    ProcessCollector(namespace=PREFIX, registry=registry)  # CPU, memory, open files
    return registry


class _Scrape(Collector):
    """Metric families computed at scrape time by `collect`."""

    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterator[Metric]:
        yield from self._collect()


def _counter(name: str, help: str, value: float | Mapping[Any, float] | None = None,
             label: str | None = None) -> CounterMetricFamily:
    """A counter family: one value, or one sample per key of `value` under `label`."""
    if label is None:
        return CounterMetricFamily(f"{PREFIX}_{name}", help, value=value or 0)
    family = CounterMetricFamily(f"{PREFIX}_{name}", help, labels=[label])
    for key, count in sorted(dict(value or {}).items()):  # dict(): one atomic copy
        family.add_metric([str(key)], count)
    return family


def _gauge(name: str, help: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", help, value=value)


class NodeMetrics:
    """The inference node's: reads `node.figures()` once per scrape (what its stats message
    reports too); `step()` records what one turn of its loop did."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.registry = _registry()
        self.stage = Histogram(f"{PREFIX}_node_stage_seconds", "time of each stage of a score "
                               "window (see the score message's latency_ms)", ["stage"],
                               buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.fusion = Histogram(f"{PREFIX}_node_fusion_seconds", "time of one fusion call "
                                "(a batch of windows)", buckets=LATENCY_BUCKETS_S,
                                registry=self.registry)
        self.drained = Histogram(f"{PREFIX}_node_drained_messages", "messages taken from the "
                                 "input queue in one turn of the loop", buckets=COUNT_BUCKETS,
                                 registry=self.registry)
        self.face_batch = Histogram(f"{PREFIX}_node_face_batch_frames", "video frames per "
                                    "face-model batch", buckets=COUNT_BUCKETS,
                                    registry=self.registry)
        self.fusion_batch = Histogram(f"{PREFIX}_node_fusion_batch_windows", "windows per "
                                      "fusion call", buckets=COUNT_BUCKETS,
                                      registry=self.registry)
        provider = Info(f"{PREFIX}_node_provider", "onnxruntime execution provider in use",
                        ["component"], registry=self.registry)
        provider.labels("perception").info({"provider": node.perception.provider})
        provider.labels("fusion").info({"provider": node.fusion.provider})
        self.registry.register(_Scrape(self._collect))

    def step(self, drained: int, frames: int, scores: list[Any]) -> None:
        """One turn: messages drained (0: none waited), video frames measured as one batch,
        the score messages published."""
        if drained:
            self.drained.observe(drained)
        if frames:
            self.face_batch.observe(frames)
        fused = [s.latency_ms["fusion"] for s in scores if "fusion" in s.latency_ms]
        if fused:
            self.fusion.observe(fused[0] / 1e3)  # the same batch time on each of its windows
            self.fusion_batch.observe(len(fused))
        for score in scores:
            for stage in NODE_STAGES:
                value = score.latency_ms.get(stage)
                if value is not None:
                    self.stage.labels(stage).observe(max(0.0, value) / 1e3)

    def _collect(self) -> Iterator[Metric]:
        figures = self.node.figures()
        yield _counter("node_received_messages", "media messages accepted, by kind (video, "
                       "audio; other_shard: another node's stream, ignored)",
                       figures.received, "kind")
        yield _counter("node_late_frames", "video frames skipped unmeasured because they "
                       "waited longer than node.late_after_s (the node was behind)",
                       figures.late_frames)
        yield _counter("node_rejected_messages", "media messages dropped as malformed, by "
                       "reason", figures.rejected, "reason")
        yield _counter("node_published_scores", "score messages handed to ZeroMQ for the "
                       "dashboards", figures.published)
        if figures.asr is not None:
            yield _counter("node_asr_dropped_chunks", "audio chunks the speech-to-text "
                           "worker could not take", figures.asr["dropped_chunks"])
            yield _gauge("node_asr_queued_chunks", "audio chunks waiting for the "
                         "speech-to-text worker", figures.asr["queued_chunks"])
        yield _gauge("node_streams", "streams this node serves now", len(figures.windows))
        windows = CounterMetricFamily(f"{PREFIX}_node_stream_windows", "score windows cut "
                                      "per stream (gone when the stream is forgotten)",
                                      labels=["stream"])
        for name, count in sorted(figures.windows.items()):
            windows.add_metric([name], count)
        yield windows


class DashboardMetrics:
    """The dashboard's: `score()` per score message; its `figures()` when scraped."""

    def __init__(self, dashboard: Any) -> None:
        self.dashboard = dashboard
        self.registry = _registry()
        self.latency = Histogram(f"{PREFIX}_dashboard_publish_to_dashboard_seconds",
                                 "time from the node's publish to the dashboard's receipt",
                                 buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.registry.register(_Scrape(self._collect))

    def score(self, latency_s: float) -> None:
        self.latency.observe(max(0.0, latency_s))

    def _collect(self) -> Iterator[Metric]:
        figures = self.dashboard.figures()  # once a scrape: every family from the same counts
        yield _counter("dashboard_received_scores", "score messages received and passed on",
                       figures.scores_received)
        yield _counter("dashboard_rejected_messages", "messages from the node dropped as "
                       "malformed, by reason", figures.rejected, "reason")
        yield _counter("dashboard_client_faults", "browser messages that closed their "
                       "client, by reason", figures.client_faults, "reason")
        yield _counter("dashboard_refused_requests", "HTTP and WebSocket requests refused, "
                       "by reason", _sum_by(figures.refused, _refusal), "reason")
        yield _counter("dashboard_dropped_updates", "updates dropped from full client queues "
                       "(a slow browser loses its oldest)", figures.dropped_updates)
        yield _gauge("dashboard_clients", "connected WebSocket clients (live pages and "
                     "kiosks)", figures.live_clients + figures.kiosk_clients)
        yield _gauge("dashboard_client_queue_max", "updates waiting in the fullest client "
                     "queue", max(figures.queue_depths, default=0))
        yield _gauge("dashboard_client_queue_sum", "updates waiting in all client queues",
                     sum(figures.queue_depths))


def _refusal(reason: str) -> str:
    """A bounded label for a refusal reason (some name a method or a role)."""
    if reason.startswith("method "):
        return "method not allowed"
    if " may not open this" in reason:
        return "role may not open this"
    return reason.partition(":")[0]


def _sum_by(counts: Mapping[str, float], key: Callable[[str], str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, count in dict(counts).items():
        out[key(name)] = out.get(key(name), 0) + count
    return out


class CaptureMetrics:
    """A capture process's: reads its `counts` (`sent`) when scraped."""

    def __init__(self, stream: str, modality: str, counts: Mapping[str, int]) -> None:
        self.counts = counts
        self.registry = _registry()
        Info(f"{PREFIX}_capture", "what this capture process sends",
             registry=self.registry).info({"stream": stream, "modality": modality})
        self.registry.register(_Scrape(self._collect))

    def _collect(self) -> Iterator[Metric]:
        yield _counter("capture_sent_messages", "messages handed to ZeroMQ for the node "
                       "(its PUB socket drops, uncounted, what a down or slow node cannot "
                       "take)", dict(self.counts).get("sent", 0))


def observe_node(node: Any) -> str:
    """Serve the inference node's metrics (``metrics.node_port``); what its READY line adds.
    The CLI hands this to the node, which imports nothing of wellmon/ but its config."""
    node.metrics = NodeMetrics(node)
    return start(node.metrics.registry, node.config.metrics, node.config.metrics.node_port)


def observe_dashboard(dashboard: Any) -> str:
    """Serve the dashboard's metrics (``metrics.dashboard_port``); as `observe_node`."""
    dashboard.metrics = DashboardMetrics(dashboard)
    return start(dashboard.metrics.registry, dashboard.config.metrics,
                 dashboard.config.metrics.dashboard_port)


def observe_capture(config: Any, stream: str, modality: str, counts: Mapping[str, int]) -> str:
    """Serve a capture process's metrics (``metrics.capture_port``); as `observe_node`."""
    return start(CaptureMetrics(stream, modality, counts).registry, config.metrics,
                 config.metrics.capture_port)


class ProxyMetrics:
    """The proxy's: reads its `forwarded` counts per flow when scraped."""

    def __init__(self, forwarded: Mapping[str, int]) -> None:
        self.forwarded = forwarded
        self.registry = _registry()
        self.registry.register(_Scrape(self._collect))

    def _collect(self) -> Iterator[Metric]:
        yield _counter("proxy_forwarded_messages", "messages forwarded, by flow (media, "
                       "scores, and the subscriptions going up; a slow peer's XPUB queue "
                       "drops, uncounted, what it cannot take)", self.forwarded, "flow")
