"""The wire protocol between capture, the inference node and the dashboard.

Media messages are ZeroMQ multipart `[topic, header, payload]`:

* topic: `v.<stream>` (video) or `a.<stream>` (audio), so that a subscriber can
  select streams by prefix;
* header: a small JSON map, versioned (`v`), with the stream id, a sequence
  number, the capture time in ns since the epoch, the send time, the array's
  shape and dtype, its rate (frames or samples per second) and its encoding;
* payload: the raw array bytes (or a JPEG), sent and received without copies.

Score messages are `[b"s.<stream>", json]`. Nothing on the wire is pickled.
Every received message is validated; a bad one becomes a `Rejected` with a
reason that the receiver counts, and is never raised.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wellmon.streamer.wire.score import shape_problem

VERSION = 1
VIDEO, AUDIO, SCORE = "v", "a", "s"
ALLOWED_DTYPES = {"uint8": np.uint8, "int16": np.int16, "float32": np.float32}
ENCODINGS = ("raw", "jpeg")
MAX_HEADER_BYTES = 4096
MAX_SCORE_BYTES = 1 << 20
MAX_STREAM_ID = 64
NS = 1_000_000_000
"""Nanoseconds a second: times on the wire and in the node are integer nanoseconds of the
capture clock; they become seconds only where a message or an estimator speaks seconds."""


@dataclass
class VideoFrame:
    """One analysed frame: BGR pixels, uint8, (height, width, 3)."""

    stream: str
    seq: int
    t_capture_ns: int
    image: np.ndarray
    fps: float
    t_sent_ns: int = 0
    t_received_ns: int = 0


@dataclass
class AudioChunk:
    """Consecutive mono int16 samples; t_capture_ns is the time of the first one."""

    stream: str
    seq: int
    t_capture_ns: int
    samples: np.ndarray
    sample_rate: int
    t_sent_ns: int = 0
    t_received_ns: int = 0

    @property
    def duration_ns(self) -> int:
        return int(len(self.samples) * 1_000_000_000 // self.sample_rate)


Media = VideoFrame | AudioChunk


@dataclass
class Rejected:
    """A message that failed validation; `reason` is a short fixed label for counting."""

    reason: str
    detail: str = ""


@dataclass(frozen=True)
class Limits:
    """What a receiver accepts (from the `wire` settings)."""

    max_payload_bytes: int
    max_clock_skew_s: float


@dataclass
class RejectionCounter:
    """Counts dropped messages by reason; the receiver reports these, never raises."""

    counts: Counter = field(default_factory=Counter)

    def add(self, rejected: Rejected) -> None:
        self.counts[rejected.reason] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def valid_stream_id(stream: str) -> bool:
    return (0 < len(stream) <= MAX_STREAM_ID
            and all(c.isalnum() or c in "-_" for c in stream) and stream.isascii())


def encode_media(msg: Media, encoding: str = "raw", jpeg_quality: int = 85) -> list[Any]:
    """Multipart parts for a frame or chunk; the payload is the array's own buffer."""
    if isinstance(msg, VideoFrame):
        kind, array, rate = VIDEO, msg.image, msg.fps
    else:
        kind, array, rate = AUDIO, msg.samples, msg.sample_rate
    payload: Any = np.ascontiguousarray(array)
    if encoding == "jpeg" and kind == VIDEO:
        import cv2

        ok, buf = cv2.imencode(".jpg", payload, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        if not ok:
            raise ValueError("JPEG encoding failed")
        payload = buf
    else:
        encoding = "raw"
    header = {
        "v": VERSION, "kind": kind, "stream": msg.stream, "seq": msg.seq,
        "t_ns": msg.t_capture_ns, "t_sent_ns": time.time_ns(),
        "shape": list(array.shape), "dtype": str(array.dtype), "rate": rate, "enc": encoding,
    }
    topic = f"{kind}.{msg.stream}".encode()
    return [topic, json.dumps(header, separators=(",", ":")).encode(), memoryview(payload)]


def _buffer(part: Any) -> memoryview:
    """A zmq.Frame (zero-copy receive) or bytes, seen as a memoryview."""
    buf = getattr(part, "buffer", None)
    return buf if buf is not None else memoryview(part)


def decode_media(parts: list[Any], limits: Limits, now_ns: int | None = None) -> Media | Rejected:
    """Validate and decode one multipart media message. Never raises for bad input."""
    if len(parts) != 3:
        return Rejected("part_count", f"{len(parts)} parts, expected 3")
    topic, header_raw, payload_part = (_buffer(p) for p in parts)
    if len(header_raw) > MAX_HEADER_BYTES:
        return Rejected("header_too_large", f"{len(header_raw)} bytes")
    try:
        header = json.loads(bytes(header_raw))
    except (ValueError, UnicodeDecodeError):
        return Rejected("bad_header", "header is not JSON")
    if not isinstance(header, dict):
        return Rejected("bad_header", "header is not a map")
    if header.get("v") != VERSION:
        return Rejected("bad_version", f"version {header.get('v')!r}, expected {VERSION}")
    try:
        kind, stream = header["kind"], header["stream"]
        seq, t_ns, t_sent_ns = header["seq"], header["t_ns"], header.get("t_sent_ns", 0)
        shape, dtype_name, rate = header["shape"], header["dtype"], header["rate"]
        encoding = header.get("enc", "raw")
    except KeyError as exc:
        return Rejected("bad_header", f"missing {exc.args[0]}")
    if kind not in (VIDEO, AUDIO) or not isinstance(stream, str) or not valid_stream_id(stream):
        return Rejected("bad_header", "kind or stream")
    try:
        topic_text = bytes(topic).decode()
    except UnicodeDecodeError:
        return Rejected("bad_topic", "topic is not text")
    if topic_text != f"{kind}.{stream}":
        return Rejected("bad_topic", f"topic {topic_text!r} does not match header")
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (seq, t_ns, t_sent_ns)):
        return Rejected("bad_header", "seq and times must be integers")
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 < rate <= 400_000:
        return Rejected("bad_header", f"rate {rate!r}")
    if dtype_name not in ALLOWED_DTYPES:
        return Rejected("bad_dtype", f"dtype {dtype_name!r}")
    if encoding not in ENCODINGS:
        return Rejected("bad_encoding", f"encoding {encoding!r}")
    expected_ndim = 3 if kind == VIDEO else 1
    if (not isinstance(shape, list) or len(shape) != expected_ndim
            or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)
            or (kind == VIDEO and shape[2] != 3)):
        return Rejected("bad_shape", f"shape {shape!r}")
    if len(payload_part) > limits.max_payload_bytes:
        return Rejected("payload_too_large", f"{len(payload_part)} bytes")
    dtype = np.dtype(ALLOWED_DTYPES[dtype_name])
    expected_bytes = int(np.prod(shape)) * dtype.itemsize
    if expected_bytes > limits.max_payload_bytes:
        return Rejected("payload_too_large", f"shape {shape} is {expected_bytes} bytes")
    now_ns = time.time_ns() if now_ns is None else now_ns
    if t_ns <= 0 or abs(t_ns - now_ns) > limits.max_clock_skew_s * 1e9:
        return Rejected("bad_timestamp", f"capture time {t_ns} ns")
    if encoding == "jpeg":
        array = _decode_jpeg(payload_part, shape, dtype)
        if array is None:
            return Rejected("bad_payload", "JPEG does not decode to the header's shape")
    else:
        if len(payload_part) != expected_bytes:
            return Rejected("size_mismatch",
                            f"shape {shape} × {dtype.itemsize} B != {len(payload_part)} B")
        array = np.frombuffer(payload_part, dtype=dtype).reshape(shape)
    common = dict(stream=stream, seq=seq, t_capture_ns=t_ns, t_sent_ns=t_sent_ns,
                  t_received_ns=now_ns)
    if kind == VIDEO:
        if dtype != np.uint8:
            return Rejected("bad_dtype", "video must be uint8")
        return VideoFrame(image=array, fps=float(rate), **common)
    if dtype != np.int16:
        return Rejected("bad_dtype", "audio must be int16")
    if not float(rate).is_integer():
        return Rejected("bad_header", f"sample rate {rate!r}")
    return AudioChunk(samples=array, sample_rate=int(rate), **common)


def _decode_jpeg(payload: memoryview, shape: list[int], dtype: np.dtype) -> np.ndarray | None:
    import cv2

    if dtype != np.uint8:
        return None
    image = cv2.imdecode(np.frombuffer(payload, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or list(image.shape) != shape:
        return None
    return image


def encode_score(score: dict[str, Any]) -> list[bytes]:
    """A score message (see models.score) as `[b"s.<stream>", json]`."""
    return [f"{SCORE}.{score['stream']}".encode(),
            json.dumps(score, separators=(",", ":"), allow_nan=False).encode()]


REQUIRED_SCORE_KEYS = ("stream", "seq", "t_start", "t_end", "state")


def decode_score(parts: list[Any]) -> dict[str, Any] | Rejected:
    """Validate a score message enough for the dashboard to route and show it."""
    if len(parts) != 2:
        return Rejected("part_count", f"{len(parts)} parts, expected 2")
    topic, body = (bytes(_buffer(p)) for p in parts)
    if len(body) > MAX_SCORE_BYTES:
        return Rejected("payload_too_large", f"{len(body)} bytes")
    score = loads_finite(body)
    if isinstance(score, Rejected):
        return score
    if not isinstance(score, dict) or any(k not in score for k in REQUIRED_SCORE_KEYS):
        return Rejected("bad_score", "missing required keys")
    stream = score["stream"]
    if not isinstance(stream, str) or not valid_stream_id(stream):
        return Rejected("bad_score", "stream id")
    if topic != f"{SCORE}.{stream}".encode():
        return Rejected("bad_topic", "topic does not match stream")
    problem = shape_problem(score)
    if problem is not None:
        return Rejected("bad_score", f"{problem} has the wrong type")
    return score


def loads_finite(body: bytes) -> Any:
    """JSON from the wire, or a `Rejected` when it is not JSON or holds a number that is
    not finite (NaN, Infinity, or one too large for a float), which the dashboard could
    neither compute with nor pass on."""
    try:
        return json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return Rejected("bad_json", "not JSON, or a number that is not finite")


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not np.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value
