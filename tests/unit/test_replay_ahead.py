"""Replay's look-ahead: frames made in a thread of their own, handed over in order; a
failure there reaches the replay, and a replay that stops early stops the thread."""

from __future__ import annotations

import threading
import time

import pytest

from wellmon.models.node.replay import _ahead


def test_items_come_in_order_and_the_thread_ends_with_them() -> None:
    assert list(_ahead(iter(range(500)), depth=4)) == list(range(500))
    assert not [t for t in threading.enumerate() if t.name == "wellmon-replay-frames"]


def test_a_failure_in_the_thread_is_raised_to_the_replay() -> None:
    def frames():
        yield 1
        raise ValueError("the decoder broke at frame 2")

    got = []
    with pytest.raises(ValueError, match="frame 2"):
        for item in _ahead(frames(), depth=2):
            got.append(item)
    assert got == [1]


def test_a_replay_that_stops_early_stops_the_thread_with_its_box_full() -> None:
    ahead = _ahead(iter(range(5)), depth=3)
    assert [next(ahead), next(ahead)] == [0, 1]
    time.sleep(0.3)  # the thread has put 2, 3, 4 and waits for room to say it is done
    ahead.close()
    assert not [t for t in threading.enumerate() if t.name == "wellmon-replay-frames"]
