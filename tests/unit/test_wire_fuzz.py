"""Arbitrary bytes on the wire and on the WebSocket: every message is accepted or rejected
with a counted reason; nothing raises."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wellmon.config import Config
from wellmon.dashboard.page_sockets import ClientFault
from wellmon.dashboard.server import Dashboard
from wellmon.dashboard.store import open_store
from wellmon.streamer.wire.protocol import (
    AudioChunk,
    Limits,
    Rejected,
    RejectionCounter,
    VideoFrame,
    decode_media,
    decode_score,
)

LIMITS = Limits(max_payload_bytes=1 << 16, max_clock_skew_s=3600)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats()
                           | st.text(max_size=10),
                           lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=10)


def headers() -> st.SearchStrategy[bytes]:
    """Headers that are often nearly right, so that the deeper checks are reached too."""
    near = st.fixed_dictionaries({
        "v": st.sampled_from([1, 1, 2, "1"]), "kind": st.sampled_from(["v", "a", "x"]),
        "stream": st.sampled_from(["s", "s", "", "x" * 80, "bad id"]),
        "seq": st.integers(-5, 5), "t_ns": st.sampled_from([time.time_ns(), 0, -1, 10**19]),
        "shape": st.lists(st.integers(-2, 40), max_size=4),
        "dtype": st.sampled_from(["uint8", "int16", "float64", "object"]),
        "rate": st.sampled_from([15, 16000, 0, -1, 1e9, "x"]),
        "enc": st.sampled_from(["raw", "jpeg", "png"]),
    })
    return (near.map(lambda h: json.dumps(h).encode()) | json_values.map(
        lambda v: json.dumps(v).encode()) | st.binary(max_size=64))


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=32), max_size=4), headers(), st.binary(max_size=3000))
def test_decoder_never_raises_and_counts_every_rejection(extra, header, payload) -> None:
    counter = RejectionCounter()
    for parts in ([b"v.s", header, payload], [b"a.s", header, payload], [header, payload],
                  [b"v.s", header, payload, *extra], extra):
        result = decode_media(parts, LIMITS)
        if isinstance(result, Rejected):
            counter.add(result)
        else:
            assert isinstance(result, (VideoFrame, AudioChunk))
            array = result.image if isinstance(result, VideoFrame) else result.samples
            assert array.nbytes <= LIMITS.max_payload_bytes
    assert counter.total <= 5


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=3), json_values)
def test_score_decoder_never_raises(parts, body) -> None:
    decode_score(parts)
    result = decode_score([b"s.s", json.dumps(body).encode()])
    assert isinstance(result, (dict, Rejected))


@pytest.fixture(scope="module")
def dashboard() -> Iterator[Dashboard]:
    with tempfile.TemporaryDirectory() as state:
        store = open_store(Path(state) / "checks.db")
        yield Dashboard(Config(), {"viewer": "v", "kiosk": "k", "admin": "a"}, store)
        store.close()


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200) | st.binary(max_size=200) | json_values.map(json.dumps))
def test_websocket_messages_from_a_page_never_raise(dashboard: Dashboard, message) -> None:
    faults = sum(dashboard.figures().client_faults.values())
    reply = asyncio.run(dashboard.sockets.answer(message))
    if isinstance(reply, ClientFault):  # counted, then that client is closed with the code
        assert sum(dashboard.figures().client_faults.values()) == faults + 1
        assert reply.code in (1007, 1008, 1009)
    else:
        assert json.loads(reply)["type"] == "pong"


def scores() -> st.SearchStrategy[bytes]:
    """Score messages that are often nearly right (the required keys, a valid stream), with
    any JSON, NaN or an overflowing number where the contract has a field."""
    odd = (json_values | st.just(float("nan")) | st.just(float("inf"))
           | st.integers(min_value=2**60, max_value=2**70))
    fields = {key: odd for key in ("t_last_frame", "t_published", "valence", "stress",
                                   "signals", "emotions", "quality", "latency_ms", "reasons",
                                   "drivers", "transcript", "stress_band", "v")}
    near = st.fixed_dictionaries(
        {"stream": st.just("s"), "seq": st.integers(0, 3) | odd,
         "t_start": st.floats(0, 100) | odd, "t_end": st.floats(0, 100) | odd,
         "state": st.sampled_from(["live", "stale", "lost", "other"])},
        optional=fields)
    return near.map(lambda score: json.dumps(score).encode()) | json_values.map(
        lambda v: json.dumps(v).encode()) | st.binary(max_size=64)


@settings(max_examples=500, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scores())
def test_whatever_the_score_decoder_passes_the_dashboard_takes(dashboard: Dashboard,
                                                                body: bytes) -> None:
    """A score message off the wire is kept and fanned out, or counted and dropped: the
    dashboard's intake never raises (a NaN once stopped it)."""
    figures = dashboard.figures()
    dashboard.feed.accept([b"s.s", body])
    dashboard.feed.accept([b"n.node", body])
    after = dashboard.figures()
    taken = after.scores_received - figures.scores_received
    dropped = sum(after.rejected.values()) - sum(figures.rejected.values())
    assert taken + dropped >= 1


kiosk_messages = st.fixed_dictionaries(
    {"type": st.sampled_from(["check.start", "check.cancel", "enrol", "ping", "other"])},
    optional={"person": st.text(max_size=80) | st.integers(), "consent": json_values,
              "secret": st.text(max_size=20) | json_values, "code": st.text(max_size=20)})


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200) | st.binary(max_size=200) | json_values.map(json.dumps)
       | kiosk_messages.map(json.dumps))
def test_kiosk_messages_never_raise(dashboard: Dashboard, message) -> None:
    """A kiosk's request is answered (pong, started, or an error to show) or, if it is not
    a request at all, counted and that client closed; no check starts without a live
    camera, whatever the message says."""
    faults = sum(dashboard.figures().client_faults.values())
    reply = asyncio.run(dashboard.sockets.answer(message, kiosk=True))
    if isinstance(reply, ClientFault):
        assert sum(dashboard.figures().client_faults.values()) == faults + 1
        assert reply.code in (1007, 1008, 1009)
    else:
        assert json.loads(reply)["type"] in ("pong", "error")
    assert dashboard.checks.running is None
