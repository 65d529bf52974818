"""The wire protocol: round trips over real sockets, and every kind of bad message dropped."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import zmq

from wellmon.streamer.wire.protocol import (
    AudioChunk,
    Limits,
    Rejected,
    VideoFrame,
    decode_media,
    decode_score,
    encode_media,
    encode_score,
)
from wellmon.streamer.wire.score import ScoreMessage

LIMITS = Limits(max_payload_bytes=1 << 20, max_clock_skew_s=3600)


def _frame(t_ns: int | None = None, shape=(48, 64, 3)) -> VideoFrame:
    y, x = np.mgrid[: shape[0], : shape[1]]
    image = np.stack([x * 3, y * 4, (x + y) * 2], axis=-1).astype(np.uint8)  # smooth, like a scene
    return VideoFrame("cam-1", 7, t_ns or time.time_ns(), image, 15.0)


def _pair(context: zmq.Context) -> tuple[zmq.Socket, zmq.Socket]:
    pull = context.socket(zmq.PULL)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    push = context.socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{port}")
    return push, pull


@pytest.mark.parametrize("encoding", ["raw", "jpeg"])
def test_video_round_trip_over_tcp(encoding: str) -> None:
    context = zmq.Context()
    push, pull = _pair(context)
    sent = _frame()
    push.send_multipart(encode_media(sent, encoding), copy=False)
    got = decode_media(pull.recv_multipart(copy=False), LIMITS)
    assert isinstance(got, VideoFrame)
    assert (got.stream, got.seq, got.t_capture_ns, got.fps) == ("cam-1", 7, sent.t_capture_ns, 15)
    assert got.image.shape == sent.image.shape
    if encoding == "raw":
        assert np.array_equal(got.image, sent.image)
    else:
        assert np.mean(np.abs(got.image.astype(int) - sent.image)) < 4
    assert got.t_sent_ns >= sent.t_capture_ns
    context.destroy(linger=0)


def test_audio_round_trip_is_exact_and_zero_copy() -> None:
    context = zmq.Context()
    push, pull = _pair(context)
    samples = (np.sin(np.arange(1600) / 5) * 10000).astype(np.int16)
    push.send_multipart(encode_media(AudioChunk("mic", 3, time.time_ns(), samples, 16000)),
                        copy=False)
    parts = pull.recv_multipart(copy=False)
    got = decode_media(parts, LIMITS)
    assert isinstance(got, AudioChunk)
    assert got.sample_rate == 16000 and got.duration_ns == 100_000_000
    assert np.array_equal(got.samples, samples)
    assert not got.samples.flags.owndata  # a view on the received ZeroMQ frame, not a copy
    context.destroy(linger=0)


def _good_parts() -> list[bytes]:
    return [bytes(p) for p in encode_media(_frame())]


def _with_header(**changes) -> list[bytes]:
    topic, header, payload = _good_parts()
    fields = json.loads(header)
    fields.update(changes)
    return [topic, json.dumps(fields).encode(), payload]


MALFORMED = {
    "part_count": lambda: _good_parts()[:2],
    "bad_header": lambda: [_good_parts()[0], b"{not json", _good_parts()[2]],
    "bad_version": lambda: _with_header(v=99),
    "bad_dtype": lambda: _with_header(dtype="float64"),
    "size_mismatch": lambda: _good_parts()[:2] + [_good_parts()[2][:-1]],
    "payload_too_large": lambda: _with_header(shape=[2048, 2048, 3]),
    "bad_timestamp": lambda: _with_header(t_ns=1),
    "bad_shape": lambda: _with_header(shape=[48, -64, 3]),
    "bad_topic": lambda: [b"v.other"] + _good_parts()[1:],
}


@pytest.mark.parametrize("reason", sorted(MALFORMED))
def test_each_malformed_message_is_rejected_with_its_reason(reason: str) -> None:
    result = decode_media(MALFORMED[reason](), LIMITS)
    assert isinstance(result, Rejected)
    assert result.reason == reason


def test_absurd_future_timestamp_and_oversized_payload_are_rejected() -> None:
    year_2200 = int(7.3e18)
    assert decode_media(_with_header(t_ns=year_2200), LIMITS).reason == "bad_timestamp"
    big = _good_parts()[:2] + [b"\0" * ((1 << 20) + 1)]
    assert decode_media(big, LIMITS).reason == "payload_too_large"


def test_score_messages_round_trip_and_bad_ones_are_rejected() -> None:
    score = {"stream": "s1", "seq": 1, "t_start": 0.0, "t_end": 4.0, "state": "live"}
    assert decode_score(encode_score(score)) == score
    assert decode_score([b"s.s1", b"nope"]).reason == "bad_json"
    assert decode_score([b"s.s1", b"{}"]).reason == "bad_score"
    assert decode_score([b"s.s2", json.dumps(score).encode()]).reason == "bad_topic"
    assert decode_score([b"s.s1"]).reason == "part_count"


@pytest.mark.parametrize(("body", "reason"), [
    ('"t_end": NaN', "bad_json"), ('"t_end": Infinity', "bad_json"),
    ('"t_end": 1e400', "bad_json"), ('"t_end": "4"', "bad_score"),
    ('"t_end": 4.0, "t_published": "now"', "bad_score"),
    ('"t_end": 4.0, "quality": [1]', "bad_score"),
    ('"t_end": 4.0, "quality": {"face": {"present": "all"}}', "bad_score"),
    ('"t_end": 4.0, "signals": {"heart_rate": "72"}', "bad_score"),
    ('"t_end": 4.0, "seq": 1e300', "bad_score"),
])
def test_a_score_with_a_field_of_the_wrong_type_or_not_finite_is_refused(body, reason) -> None:
    """What the dashboard computes with is checked at the edge: a NaN or a string time once
    stopped the dashboard's intake."""
    text = '{"stream": "s1", "seq": 1, "t_start": 0.0, "state": "live", ' + body + "}"
    assert decode_score([b"s.s1", text.encode()]).reason == reason


def test_a_score_the_node_writes_passes_the_check() -> None:
    score = ScoreMessage(
        stream="s1", seq=3, t_start=0.0, t_end=4.0, state="live",
        signals={"heart_rate": 71.5, "blink_times": [1.2, 3.4], "sentiment": None},
        quality={"video": {"present": True, "state": "live", "coverage": 1.0, "age_s": 0.1,
                           "gaps": 0, "late": 0, "lag_s": 0.02},
                 "face": {"present": 0.98, "confidence": None}},
        latency_ms={"window": 3.2}, t_published=1e9, emotions={"happy": 0.9},
        stress=52.0, stress_band=[48.0, 55.0], drivers=[{"input": "heart_rate"}],
        transcript=[{"text": "hi", "final": True}], reasons={"stress": "why"})
    assert decode_score(encode_score(score.to_dict())) == score.to_dict()


def test_a_running_node_counts_and_drops_bad_messages_and_keeps_scoring(processes) -> None:
    """Every kind of malformed message, sent to a real `wellmon infer`, is counted by
    reason in the node's published stats, and valid frames before and after are scored."""
    processes.env["WELLMON_WIRE_MAX_PAYLOAD_BYTES"] = str(1 << 20)
    processes.env["WELLMON_WIRE_MAX_CLOCK_SKEW_S"] = "3600"
    processes.start("node", "infer")
    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    pub.connect(processes.env["WELLMON_NODE_INPUT"])
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(processes.env["WELLMON_NODE_OUTPUT"])
    seq = iter(range(10_000))

    def send_valid_until_scored() -> dict:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            frame = _frame()
            frame.seq = next(seq)
            pub.send_multipart(encode_media(frame), copy=False)
            if sub.poll(70):
                topic, body = sub.recv_multipart()
                if topic == b"s.cam-1":
                    return json.loads(body)
        raise AssertionError("the node published no score for valid frames")

    first = send_valid_until_scored()
    assert first["stream"] == "cam-1" and first["state"] == "live"
    for make in MALFORMED.values():
        pub.send_multipart(make())
    after = send_valid_until_scored()
    assert after["t_end"] > first["t_end"]
    deadline = time.monotonic() + 30
    stats: dict = {}
    while time.monotonic() < deadline and len(stats.get("rejected", {})) < len(MALFORMED):
        if sub.poll(200):
            topic, body = sub.recv_multipart()
            if topic == b"n.node":
                stats = json.loads(body)
    assert stats["rejected"] == {reason: 1 for reason in MALFORMED}
    assert processes.procs["node"].poll() is None
    context.destroy(linger=0)
