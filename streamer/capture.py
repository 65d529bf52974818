"""A capture process: one modality of one source, paced, timestamped, sent over ZeroMQ.

The PUB socket connects to the inference node with a small high-water mark
and ZMQ_IMMEDIATE, so that while the node is down frames are dropped instead
of queued (stale data is worse than none), and ZeroMQ reconnects by itself
when the node comes back.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import zmq

from wellmon.config import Config
from wellmon.streamer import sources
from wellmon.streamer.lifecycle import announce_ready, log
from wellmon.streamer.wire import exposure, routes
from wellmon.streamer.wire.protocol import AudioChunk, VideoFrame, encode_media
from wellmon.streamer.wire.security import Curve

STATS_EVERY_S = 30.0


def make_sender(context: zmq.Context, address: str, hwm: int, curve: Curve) -> zmq.Socket:
    sock = context.socket(zmq.PUB)
    sock.setsockopt(zmq.SNDHWM, hwm)
    sock.setsockopt(zmq.IMMEDIATE, 1)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
    routes.attach(sock, routes.Endpoint(address, bind=False), curve)
    return sock


def capture(modality: str, config: Config, stop: threading.Event,
            epoch_ns: int | None = None,
            observe: Callable[[Config, str, str, Counter], str] | None = None) -> int:
    """Read the configured source's `modality` and send it until the source ends or `stop`.
    ``observe`` (the metrics endpoint, when turned on) gets the stream, the modality and the
    counts it may read, and returns what the READY line adds."""
    cap = config.capture
    plan = sources.plan(cap.source, cap.stream)
    src = plan.video if modality == "video" else plan.audio
    role = f"capture-{modality}[{plan.stream}]"
    if src is None:
        raise sources.SourceError(f"source {cap.source!r} has no {modality}")
    sources.check_available(src)
    pacer = sources.Pacer(epoch_ns or time.time_ns(), realtime=not cap.fast)
    if modality == "video":
        items = sources.video_frames(src, cap.video_fps, cap.video_max_width,
                                     cap.video_max_height, cap.loop, pacer)
    else:
        items = sources.audio_blocks(src, cap.audio_chunk_ms, cap.loop, pacer)
    address = routes.capture_media(config)
    exposure.check(config, [address])  # metrics too, before the socket opens
    context = zmq.Context()
    sock = make_sender(context, address, config.wire.send_hwm, Curve(config))
    counts: Counter = Counter()  # sent (read by the metrics endpoint)
    last_stats = time.monotonic()
    try:
        served = observe(config, plan.stream, modality, counts) if observe else ""
        announce_ready(f"{role} from {src.describe()} to {address}{served}")
        for seq, (t_ns, array) in enumerate(items):
            if stop.is_set():
                break
            if modality == "video":
                msg: VideoFrame | AudioChunk = VideoFrame(plan.stream, seq, t_ns, array,
                                                          cap.video_fps)
            else:
                msg = AudioChunk(plan.stream, seq, t_ns, array, sources.AUDIO_RATE)
            try:
                sock.send_multipart(encode_media(msg, cap.video_encoding, cap.jpeg_quality),
                                    copy=False, flags=zmq.NOBLOCK)
                counts["sent"] += 1
            except zmq.Again:
                pass
            if time.monotonic() - last_stats > STATS_EVERY_S:
                log(role, f"{counts['sent']} messages sent")
                last_stats = time.monotonic()
        else:
            log(role, f"source ended after {counts['sent']} messages")
    finally:
        sock.close()
        context.term()
    return 0
