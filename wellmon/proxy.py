"""`wellmon proxy`: the ZeroMQ XSUB/XPUB forwarder that lets several nodes share streams.

Two pairs: media (captures -> nodes) and scores (nodes -> dashboards, plus the nodes'
heartbeats). Subscriptions travel upstream through XPUB -> XSUB, so a node that subscribes
to some streams' topics only receives those. The send high-water marks are the wire's:
a slow node loses frames instead of holding them up for the others.
"""

from __future__ import annotations

import threading
from collections import Counter

import zmq

from wellmon.config import Config
from wellmon.streamer.lifecycle import announce_ready, log
from wellmon.streamer.wire import exposure, routes
from wellmon.streamer.wire.security import Curve

ROLE = "proxy"


def serve_proxy(config: Config, stop: threading.Event) -> int:
    proxy = config.proxy
    exposure.check(config, [proxy.media_in, proxy.media_out, proxy.scores_in,
                            proxy.scores_out])  # metrics too, before any socket opens
    context = zmq.Context()
    curve = Curve(config)
    pairs = []
    flow = {}  # socket -> what it receives, the metrics' label
    for name, front, back, hwm in (("media", config.proxy.media_in, config.proxy.media_out,
                                    config.wire.send_hwm),
                                   ("scores", config.proxy.scores_in, config.proxy.scores_out,
                                    config.wire.send_hwm * 16)):
        xsub, xpub = context.socket(zmq.XSUB), context.socket(zmq.XPUB)
        for sock in (xsub, xpub):
            sock.setsockopt(zmq.LINGER, 0)
        xsub.setsockopt(zmq.RCVHWM, config.wire.recv_hwm)
        xpub.setsockopt(zmq.SNDHWM, hwm)
        routes.attach(xsub, routes.Endpoint(front, bind=True), curve)
        routes.attach(xpub, routes.Endpoint(back, bind=True), curve)
        pairs.append((xsub, xpub))
        flow[xsub], flow[xpub] = name, f"{name}_subscriptions"
    poller = zmq.Poller()
    route = {}
    for xsub, xpub in pairs:
        poller.register(xsub, zmq.POLLIN)
        poller.register(xpub, zmq.POLLIN)
        route[xsub], route[xpub] = xpub, xsub  # data down, subscriptions up
    forwarded: Counter = Counter()  # by flow, read by the metrics endpoint
    try:
        served = ""
        if config.metrics.enabled:
            from wellmon import metrics

            served = metrics.start(metrics.ProxyMetrics(forwarded).registry,
                                   config.metrics, config.metrics.proxy_port)
        announce_ready(f"{ROLE} media {config.proxy.media_in} -> {config.proxy.media_out}, "
                       f"scores {config.proxy.scores_in} -> {config.proxy.scores_out}{served}")
        while not stop.is_set():
            for sock, _ in poller.poll(100):
                for _ in range(256):
                    try:
                        parts = sock.recv_multipart(flags=zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    try:
                        route[sock].send_multipart(parts, flags=zmq.NOBLOCK, copy=False)
                        forwarded[flow[sock]] += 1
                    except zmq.Again:
                        pass  # the high-water mark: this peer is slow, drop rather than wait
    finally:
        for xsub, xpub in pairs:
            xsub.close()
            xpub.close()
        curve.close()
        context.term()
        log(ROLE, f"stopped after forwarding {sum(forwarded.values())} messages")
    return 0
