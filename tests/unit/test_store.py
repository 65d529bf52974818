"""The kiosk session store: round trips, durability settings, crashes mid-write, migrations,
retention and deletion, person secrets and their tries, and the file's privacy."""

from __future__ import annotations

import datetime as dt
import inspect
import json
import math
import os
import random
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wellmon.dashboard import store_postgres
from wellmon.dashboard import store_sqlite as store_mod
from wellmon.dashboard.store import INTERRUPTED, Store, StoreError, open_store, schema_version
from wellmon.dashboard.store_sqlite import MIGRATIONS, SQLiteStore

REPO = Path(__file__).resolve().parents[2]
UTC = dt.timezone.utc
DAY = 86400.0

# The v1 schema exactly as released. Kept here by hand (not read from MIGRATIONS) so that the
# migration tests start from what databases in the field really contain.
V1_SQL = [
    "CREATE TABLE persons (id TEXT PRIMARY KEY, created_at REAL NOT NULL)",
    """CREATE TABLE checks (
        id INTEGER PRIMARY KEY,
        person_id TEXT NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
        kiosk TEXT NOT NULL,
        stream TEXT NOT NULL,
        status TEXT NOT NULL
            CHECK (status IN ('running', 'complete', 'incomplete', 'failed')),
        started_at REAL NOT NULL,
        ended_at REAL,
        result_json TEXT
    )""",
    """CREATE TABLE check_windows (
        check_id INTEGER NOT NULL REFERENCES checks(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        t_end REAL,
        window_json TEXT NOT NULL,
        PRIMARY KEY (check_id, seq)
    )""",
    "CREATE INDEX checks_person ON checks(person_id)",
]
# The v2 step exactly as released.
V2_SQL = [
    "ALTER TABLE checks ADD COLUMN reason TEXT",
    "CREATE INDEX checks_started ON checks(started_at)",
    "CREATE INDEX checks_person_started ON checks(person_id, started_at)",
    "CREATE INDEX checks_status ON checks(status)",
]


# -- payloads (also copied verbatim into the crash test's child process) ----------------------

def window_for(check_id: int, seq: int) -> dict:
    """A score message like the inference node's, deterministic in (check, seq)."""
    t_end = 1000.0 + check_id * 100 + seq * 0.5
    return {"stream": "cam0", "seq": seq, "t_start": t_end - 4.0, "t_end": t_end,
            "state": "ok", "stress": None if seq % 7 == 3 else (check_id * 13 + seq) % 101,
            "emotions": {"neutral": 0.5, "happy": round(0.01 * (seq % 50), 2)},
            "signals": {"heart_rate": 60.0 + seq % 30, "hrv_rmssd": 42.5, "blink_rate": 0.3,
                        "f0_mean": None},
            "quality": {"face": 0.9, "voice": 0.0}, "reasons": ["no speech"] * (seq % 2)}


def batch_for(check_id: int, batch: int, size: int) -> list[dict]:
    return [window_for(check_id, batch * size + i) for i in range(size)]


def result_for(check_id: int) -> dict:
    return {"stress": {"mean": check_id % 100, "p90": None}, "windows_used": check_id * 3,
            "summary": f"check {check_id}", "flags": ["low light"] if check_id % 2 else []}


# -- fixtures -----------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    """Each backend in turn: the contract tests run on both, so they cannot drift apart."""
    location = (request.getfixturevalue("postgres_url") if request.param == "postgres"
                else tmp_path / "wellmon.db")
    s = open_store(location)
    yield s
    s.close()


def ts(year: int, month: int, day: int, h: int = 0, m: int = 0, s: float = 0.0) -> float:
    return dt.datetime(year, month, day, h, m, tzinfo=UTC).timestamp() + s


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


# -- round trip ---------------------------------------------------------------------------------

def test_round_trip_start_windows_finish(store: SQLiteStore) -> None:
    t0 = ts(2026, 3, 14, 8)
    cid = store.start_check("badge-17", kiosk="gate-2", stream="cam0", started_at=t0)
    first = [window_for(cid, seq) for seq in range(4)]
    second = [window_for(cid, seq) for seq in range(4, 7)]
    store.add_windows(cid, first)
    store.add_windows(cid, [])
    store.add_windows(cid, second)
    running = store.get_check(cid)
    assert running is not None and running["status"] == "running"
    assert running["result"] is None and running["windows"] == first + second

    shown = store.finish_check(cid, result_for(cid), ended_at=t0 + 45)
    assert shown == {"id": cid, "person_id": "badge-17", "kiosk": "gate-2", "stream": "cam0",
                     "status": "complete", "started_at": t0, "ended_at": t0 + 45,
                     "reason": None, "result": result_for(cid), "in_baseline": True,
                     "dashboard": "dashboard"}
    stored = store.get_check(cid)
    assert stored == {**shown, "windows": first + second}
    assert [w["seq"] for w in stored["windows"]] == list(range(7))
    assert store.get_check(cid, with_windows=False) == shown
    assert store.get_check(cid + 1000) is None


def test_store_satisfies_the_protocol(tmp_path: Path) -> None:
    s = open_store(tmp_path / "w.db")
    try:
        assert isinstance(s, Store) and isinstance(s, SQLiteStore)
    finally:
        s.close()


def test_list_checks_filters_by_utc_day_person_and_status(store: SQLiteStore) -> None:
    late = ts(2026, 3, 14, 23, 59, 59.5)
    midnight = ts(2026, 3, 15)
    early = ts(2026, 3, 14)
    a = store.start_check("alice", kiosk="k", stream="s", started_at=early)
    b = store.start_check("bob", kiosk="k", stream="s", started_at=late)
    c = store.start_check("alice", kiosk="k", stream="s", started_at=midnight)
    store.finish_check(a, {"n": 1}, early + 45)
    store.fail_check(b, "node stopped", late + 10)

    def ids(**kw: Any) -> list[int]:
        return [r["id"] for r in store.list_checks(**kw)]

    assert ids() == [c, b, a]
    assert ids(day=dt.date(2026, 3, 14)) == [b, a]
    assert ids(day=dt.date(2026, 3, 15)) == [c]
    assert ids(day=dt.date(2026, 3, 13)) == []
    assert ids(person_id="alice") == [c, a]
    assert ids(status="running") == [c]
    assert ids(status="failed") == [b]
    assert ids(person_id="alice", status="complete", day=dt.date(2026, 3, 14)) == [a]
    assert ids(limit=2) == [c, b]
    rows = store.list_checks(person_id="alice", status="complete")
    assert rows[0]["result"] == {"n": 1} and "windows" not in rows[0]
    with pytest.raises(StoreError, match="status must be one of"):
        store.list_checks(status="done")


def test_person_history_is_complete_checks_newest_first(store: SQLiteStore) -> None:
    t = ts(2026, 1, 5, 7)
    done = []
    for i in range(4):
        cid = store.start_check("p1", kiosk="k", stream="s", started_at=t + i * DAY)
        if i == 2:
            store.fail_check(cid, "cancelled", t + i * DAY + 5, status="incomplete")
        else:
            store.finish_check(cid, {"i": i}, t + i * DAY + 45)
            done.append(cid)
    store.start_check("p1", kiosk="k", stream="s", started_at=t + 9 * DAY)  # still running
    other = store.start_check("p2", kiosk="k", stream="s", started_at=t + 5 * DAY)
    store.finish_check(other, {"i": 99}, t + 5 * DAY + 45)

    history = store.person_history("p1")
    assert [h["id"] for h in history] == done[::-1]
    assert [h["result"]["i"] for h in history] == [3, 1, 0]
    assert history[0]["started_at"] == t + 3 * DAY and history[0]["ended_at"] == t + 3 * DAY + 45
    assert [h["id"] for h in store.person_history("p1", limit=1)] == [done[-1]]
    assert [h["id"] for h in store.person_history("p1", before=t + 3 * DAY)] == done[1::-1]
    assert store.person_history("nobody") == []


# -- state rules and refusals -----------------------------------------------------------------

def test_only_running_checks_accept_windows_and_endings(store: SQLiteStore) -> None:
    cid = store.start_check("p", kiosk="k", stream="s", started_at=100.0)
    store.add_windows(cid, batch_for(cid, 0, 2))
    store.finish_check(cid, {"ok": True}, 145.0)
    with pytest.raises(StoreError, match=f"check {cid}: it is complete, not running"):
        store.add_windows(cid, batch_for(cid, 1, 2))
    with pytest.raises(StoreError, match="not running"):
        store.finish_check(cid, {"ok": False}, 150.0)
    with pytest.raises(StoreError, match="not running"):
        store.fail_check(cid, "late", 150.0)
    after = store.get_check(cid)
    assert after is not None
    assert after["result"] == {"ok": True} and after["windows"] == batch_for(cid, 0, 2)
    with pytest.raises(StoreError, match="no such check"):
        store.add_windows(cid + 1, [window_for(0, 0)])


def test_fail_check_records_status_and_reason(store: SQLiteStore) -> None:
    a = store.start_check("p", kiosk="k", stream="s", started_at=10.0)
    b = store.start_check("p", kiosk="k", stream="s", started_at=20.0)
    store.fail_check(a, "the inference node stopped", 30.0)
    store.fail_check(b, "cancelled by the user", 31.0, status="incomplete")
    got_a, got_b = store.get_check(a), store.get_check(b)
    assert got_a is not None and got_b is not None
    assert (got_a["status"], got_a["reason"], got_a["ended_at"]) == (
        "failed", "the inference node stopped", 30.0)
    assert (got_b["status"], got_b["reason"]) == ("incomplete", "cancelled by the user")
    c = store.start_check("p", kiosk="k", stream="s", started_at=40.0)
    with pytest.raises(StoreError, match="status must be one of"):
        store.fail_check(c, "x", 50.0, status="complete")
    assert store.get_check(c)["status"] == "running"  # type: ignore[index]


def test_nan_is_refused_clearly_and_nothing_is_written(store: SQLiteStore) -> None:
    cid = store.start_check("p", kiosk="k", stream="s", started_at=1.0)
    bad_window = {**window_for(cid, 1), "signals": {"hrv_rmssd": float("nan")}}
    with pytest.raises(StoreError, match=r"window 1 .*NaN or infinity at signals\.hrv_rmssd"):
        store.add_windows(cid, [window_for(cid, 0), bad_window])
    assert store.get_check(cid)["windows"] == []  # type: ignore[index]
    with pytest.raises(StoreError, match=r"result of check .* at stress\.values\[1\]"):
        store.finish_check(cid, {"stress": {"values": [1.0, math.inf]}}, 2.0)
    assert store.get_check(cid)["status"] == "running"  # type: ignore[index]
    with pytest.raises(StoreError, match="cannot be stored as JSON"):
        store.finish_check(cid, {"when": dt.date(2026, 1, 1)}, 2.0)
    with pytest.raises(StoreError, match="started_at must be a finite number"):
        store.start_check("p", kiosk="k", stream="s", started_at=float("nan"))
    with pytest.raises(StoreError, match="person_id must be a non-empty string"):
        store.start_check("", kiosk="k", stream="s", started_at=1.0)
    shown = store.finish_check(cid, {"stress": {"values": [1.0, None]}}, 2.0)
    assert shown["result"] == {"stress": {"values": [1.0, None]}}


def test_numpy_values_are_stored_as_plain_json(store: SQLiteStore) -> None:
    cid = store.start_check("p", kiosk="k", stream="s", started_at=1.0)
    shown = store.finish_check(
        cid, {"mean": np.float32(0.5), "n": np.int64(7), "series": np.array([1, 2])}, 2.0)
    assert shown["result"] == {"mean": 0.5, "n": 7, "series": [1, 2]}
    other = store.start_check("p", kiosk="k", stream="s", started_at=3.0)
    with pytest.raises(StoreError, match="NaN or infinity at mean"):
        store.finish_check(other, {"mean": np.float64("nan")}, 4.0)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)


def same_json(got: Any, sent: Any) -> bool:
    """`got` is `sent` as stored: equal, but for NUL characters, which every backend turns
    into U+FFFD (PostgreSQL's JSONB cannot hold them), and numbers, which JSONB keeps by
    value (1e+300 comes back as its digits: the same number)."""
    if isinstance(sent, str):
        return got == sent.replace("\x00", "\ufffd")
    if isinstance(sent, bool) or sent is None:
        return got is sent
    if isinstance(sent, int | float):
        return isinstance(got, int | float) and not isinstance(got, bool) and (
            got == sent or float(got) == float(sent))
    if isinstance(sent, list):
        return isinstance(got, list) and len(got) == len(sent) and all(
            same_json(g, x) for g, x in zip(got, sent))
    return isinstance(got, dict) and len(got) == len(sent) and all(
        same_json(got.get(k.replace("\x00", "\ufffd")), v) for k, v in sent.items())


def test_any_json_result_round_trips(store: SQLiteStore) -> None:
    @settings(max_examples=40, deadline=None)
    @given(result=st.dictionaries(st.text(max_size=8), _json, max_size=5))
    def check(result: dict) -> None:
        cid = store.start_check("p", kiosk="k", stream="s", started_at=1.0)
        assert same_json(store.finish_check(cid, result, 2.0)["result"], result)
        assert same_json(store.get_check(cid)["result"], result)  # type: ignore[index]

    check()


def test_closed_store_and_other_threads_are_refused(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "w.db")
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            s.list_checks()
        except BaseException as e:  # noqa: BLE001 - collected for the assertion below
            errors.append(e)

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert len(errors) == 1 and isinstance(errors[0], StoreError)
    s.close()
    s.close()
    with pytest.raises(StoreError, match="is closed"):
        s.start_check("p", kiosk="k", stream="s", started_at=1.0)


# -- durability settings and interruption -------------------------------------------------------

def test_wal_and_synchronous_full_are_in_effect(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    s = SQLiteStore(path)
    try:
        p = s.pragmas()
        assert p["journal_mode"] == "wal"
        assert p["synchronous"] == 2  # FULL: fsync on every commit
        assert p["foreign_keys"] == 1
        assert p["busy_timeout"] > 0
        assert p["secure_delete"] == 1
        assert p["user_version"] == schema_version() == len(MIGRATIONS)
        with raw(path) as other:  # WAL is a property of the file, seen by any connection
            assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        s.close()


def test_check_left_running_by_a_crash_becomes_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    now = time.time()
    s = SQLiteStore(path)
    done = s.start_check("p1", kiosk="k", stream="s", started_at=now - 100)
    s.finish_check(done, {"ok": 1}, now - 55)
    left = s.start_check("p2", kiosk="k", stream="s", started_at=now - 20)
    s.add_windows(left, batch_for(left, 0, 5))
    s.close()  # the dashboard stops without finishing `left`

    s = SQLiteStore(path)
    try:
        assert s.get_check(left)["status"] == "running"  # type: ignore[index]
        assert s.mark_interrupted() == 1
        got = s.get_check(left)
        assert got is not None
        assert (got["status"], got["reason"], got["ended_at"]) == ("incomplete", INTERRUPTED,
                                                                  None)
        assert got["windows"] == batch_for(left, 0, 5)
        assert s.get_check(done)["status"] == "complete"  # type: ignore[index]
        assert s.mark_interrupted() == 0
        again = s.start_check("p3", kiosk="k", stream="s", started_at=now)
        assert s.mark_interrupted("power cut") == 1
        assert s.get_check(again)["reason"] == "power cut"  # type: ignore[index]
    finally:
        s.close()


# -- crash at any point of a write -------------------------------------------------------------

BATCHES, BATCH_SIZE = 3, 30

CHILD = """
import sys, time
sys.path.insert(0, {repo!r})
from wellmon.dashboard.store_sqlite import SQLiteStore

BATCHES, BATCH_SIZE = {batches}, {size}
{payloads}

store = SQLiteStore(sys.argv[1])
def ack(line):
    sys.stdout.write(line + "\\n")
    sys.stdout.flush()
ack("READY")
i = 0
while True:  # until killed; a closed pipe (the parent gone) ends it too
    cid = store.start_check("person-%d" % (i % 3), kiosk="k1", stream="cam0",
                            started_at=time.time())
    ack("ACK start %d" % cid)
    for b in range(BATCHES):
        store.add_windows(cid, batch_for(cid, b, BATCH_SIZE))
        ack("ACK windows %d %d" % (cid, b))
    store.finish_check(cid, result_for(cid), time.time())
    ack("ACK finish %d" % cid)
    i += 1
"""

ACK = re.compile(r"ACK (start|windows|finish) (\d+)(?: (\d+))?")


def _run_and_kill(script: Path, db: Path, wait_acks: int | None, delay: float,
                  stderr_path: Path) -> list[str]:
    """Run the writer, SIGKILL it after `wait_acks` acknowledgements (None: without waiting
    for it to open the store) and `delay` s more; return every line it printed."""
    with open(stderr_path, "w") as err:
        proc = subprocess.Popen([sys.executable, str(script), str(db)], stdout=subprocess.PIPE,
                                stderr=err, text=True, cwd=REPO)
    lines: list[str] = []
    try:
        if wait_acks is not None:
            for _ in range(wait_acks + 1):  # + READY
                line = proc.stdout.readline()  # type: ignore[union-attr]
                assert line, f"writer ended early: {stderr_path.read_text()}"
                lines.append(line.rstrip("\n"))
        if delay:
            time.sleep(delay)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        rest = proc.stdout.read()  # type: ignore[union-attr]
        proc.wait()
    if wait_acks is not None:
        assert proc.returncode == -signal.SIGKILL, stderr_path.read_text()
    # A line cut by the kill is not an acknowledgement: keep whole lines only.
    return lines + [ln for ln in rest.split("\n")[:-1]]


def _verify_after_crash(db: Path, lines: list[str]) -> None:
    started: list[int] = []
    batches: dict[int, int] = {}
    finished: set[int] = set()
    for line in lines:
        if line == "READY":
            continue
        m = ACK.fullmatch(line)
        assert m, f"unexpected output {line!r}"
        kind, cid = m[1], int(m[2])
        if kind == "start":
            started.append(cid)
        elif kind == "windows":
            assert int(m[3]) == batches.get(cid, 0)
            batches[cid] = int(m[3]) + 1
        else:
            finished.add(cid)

    if db.exists():
        with raw(db) as con:
            assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert con.execute("PRAGMA foreign_key_check").fetchall() == []

    s = SQLiteStore(db)
    try:
        in_db = {r["id"]: r for r in s.list_checks(limit=10_000)}
        # Nothing acknowledged is missing; at most one more check (committed, not yet acked).
        assert set(started) <= set(in_db)
        last = max(started, default=0)
        assert set(in_db) - set(started) <= {last + 1}
        for cid in in_db:
            check = s.get_check(cid)
            assert check is not None
            full = [w for b in range(BATCHES) for w in batch_for(cid, b, BATCH_SIZE)]
            if cid in finished:
                assert check["status"] == "complete"
                assert check["result"] == result_for(cid)
                assert check["windows"] == full
                continue
            # Not acknowledged as finished: only the newest check can be in this state.
            assert cid == max(in_db)
            acked = batches.get(cid, 0)
            n = len(check["windows"])
            assert n % BATCH_SIZE == 0, "a batch of windows was written partly"
            assert acked <= n // BATCH_SIZE <= acked + 1
            assert check["windows"] == full[:n]
            if check["status"] == "complete":  # finish committed, killed before its ACK
                assert check["result"] == result_for(cid) and n == len(full)
            else:
                assert check["status"] == "running" and check["result"] is None
        running = [cid for cid, r in in_db.items() if r["status"] == "running"]
        assert len(running) <= 1
        assert s.mark_interrupted() == len(running)
        for cid in in_db:
            check = s.get_check(cid, with_windows=False)
            assert check is not None
            if cid in running:
                assert (check["status"], check["reason"]) == ("incomplete", INTERRUPTED)
            else:
                assert check["status"] == "complete"
    finally:
        s.close()


def test_sigkill_at_any_point_of_a_write_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """A process crash (SIGKILL) at ~20 points: before the store is open, between and during
    start/add/finish commits. What was acknowledged survives, the file stays consistent and
    the unfinished check is found running. (Power loss is the job of synchronous=FULL,
    checked above.)"""
    payloads = "\n".join(textwrap.dedent(inspect.getsource(f))
                         for f in (window_for, batch_for, result_for))
    script = tmp_path / "writer.py"
    script.write_text(CHILD.format(repo=str(REPO), batches=BATCHES, size=BATCH_SIZE,
                                   payloads=payloads))
    rng = random.Random(20260509)
    points: list[tuple[int | None, float]] = [(None, 0.0), (None, rng.uniform(0.1, 0.3))]
    for k in [*range(0, 11), 13, 16, 19, 23, 27, 32, 38]:
        points.append((k, rng.choice([0.0, 0.0, rng.uniform(0.0, 0.004)])))
    for i, (k, delay) in enumerate(points):
        db = tmp_path / f"crash-{i}.db"
        lines = _run_and_kill(script, db, k, delay, tmp_path / f"crash-{i}.err")
        if k is not None:
            assert len(lines) >= k + 1
        _verify_after_crash(db, lines)


# -- migrations --------------------------------------------------------------------------------

def _make_v1(path: Path) -> None:
    with raw(path) as con:
        for sql in V1_SQL:
            con.execute(sql)
        con.execute("PRAGMA user_version = 1")
        con.execute("INSERT INTO persons VALUES ('old-badge', 5.0)")
        con.execute("INSERT INTO checks (id, person_id, kiosk, stream, status, started_at, "
                    "ended_at, result_json) VALUES (1, 'old-badge', 'k0', 'cam0', 'complete', "
                    "10.0, 55.0, '{\"stress\": 31}')")
        con.execute("INSERT INTO check_windows VALUES (1, 0, 12.0, '{\"seq\": 0}')")
    con.close()


def _schema(con: sqlite3.Connection) -> list[tuple[str, str]]:
    rows = con.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
    return [(name, "".join(sql.split())) for name, sql in rows]


def test_released_v1_migration_is_unchanged(tmp_path: Path) -> None:
    by_hand, by_code = raw(tmp_path / "a.db"), raw(tmp_path / "b.db")
    for sql in V1_SQL:
        by_hand.execute(sql)
    step = MIGRATIONS[0]
    assert not callable(step)
    for sql in step:
        by_code.execute(sql)
    assert _schema(by_hand) == _schema(by_code)
    by_hand.close()
    by_code.close()


def test_v1_database_is_migrated_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _make_v1(path)
    s = SQLiteStore(path, keep_series_days=math.inf)
    try:
        assert s.pragmas()["user_version"] == schema_version() >= 2
        old = s.get_check(1)
        assert old == {"id": 1, "person_id": "old-badge", "kiosk": "k0", "stream": "cam0",
                       "status": "complete", "started_at": 10.0, "ended_at": 55.0,
                       "reason": None, "result": {"stress": 31}, "windows": [{"seq": 0}],
                       "in_baseline": True, "dashboard": None}  # run before owners were
        new = s.start_check("old-badge", kiosk="k0", stream="cam0", started_at=100.0)
        s.fail_check(new, "node stopped", 120.0)  # uses the v2 `reason` column
        assert s.get_check(new)["reason"] == "node stopped"  # type: ignore[index]
        assert [h["id"] for h in s.person_history("old-badge")] == [1]
    finally:
        s.close()
    with raw(path) as con:
        indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"checks_started", "checks_person_started"} <= indexes


def test_released_v2_migration_is_unchanged() -> None:
    step = MIGRATIONS[1]
    assert not callable(step)
    assert ["".join(sql.split()) for sql in step] == ["".join(sql.split()) for sql in V2_SQL]


def test_v2_database_is_migrated_and_its_checks_stay_in_the_baseline(tmp_path: Path) -> None:
    """A v2 store (as released) gains the secrets tables; its checks, made before secrets
    existed, stay in their person's baseline."""
    path = tmp_path / "v2.db"
    _make_v1(path)
    with raw(path) as con:
        for sql in V2_SQL:
            con.execute(sql)
        con.execute("PRAGMA user_version = 2")
        con.execute("UPDATE checks SET reason = 'none' WHERE id = 1")
    con.close()
    s = SQLiteStore(path, keep_series_days=math.inf)
    try:
        assert s.pragmas()["user_version"] == schema_version() >= 3
        assert s.get_check(1)["in_baseline"] is True  # type: ignore[index]
        assert [h["id"] for h in s.person_history("old-badge")] == [1]
        assert s.get_secret("old-badge") is None
        s.set_secret("old-badge", "scrypt$x", 100.0)
        assert s.get_secret("old-badge") == "scrypt$x"
    finally:
        s.close()
    with raw(path) as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"person_secrets", "enrolment_codes", "secret_attempts"} <= tables


def test_each_migration_is_one_transaction(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.db"
    SQLiteStore(path).close()
    broken = ("CREATE TABLE extra (x)", "SELECT * FROM no_such_table")
    monkeypatch.setattr(store_mod, "MIGRATIONS", [*MIGRATIONS, broken])
    v = len(MIGRATIONS)
    with pytest.raises(StoreError, match=f"from version {v} to {v + 1} failed"):
        SQLiteStore(path)
    with raw(path) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == v
        assert con.execute("SELECT name FROM sqlite_master WHERE name='extra'").fetchall() == []

    calls: list[int] = []

    def add_note(con: sqlite3.Connection) -> None:
        calls.append(1)
        con.execute("ALTER TABLE checks ADD COLUMN note TEXT")

    monkeypatch.setattr(store_mod, "MIGRATIONS", [*MIGRATIONS, add_note])
    SQLiteStore(path).close()
    SQLiteStore(path).close()
    assert calls == [1]
    with raw(path) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == v + 1
        assert "note" in [r[1] for r in con.execute("PRAGMA table_info(checks)")]


def test_newer_schema_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    SQLiteStore(path).close()
    newer = schema_version() + 3
    with raw(path) as con:
        con.execute(f"PRAGMA user_version = {newer}")
    with pytest.raises(StoreError, match=f"schema version {newer}.*version {schema_version()}"):
        SQLiteStore(path)
    with raw(path) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == newer


# -- retention and deletion --------------------------------------------------------------------

def test_retention_drops_old_windows_but_keeps_summaries(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    now = time.time()
    s = SQLiteStore(path, keep_series_days=30)
    old = s.start_check("p", kiosk="k", stream="s", started_at=now - 40 * DAY)
    edge = s.start_check("p", kiosk="k", stream="s", started_at=now - 30 * DAY)
    recent = s.start_check("p", kiosk="k", stream="s", started_at=now - DAY)
    stale_running = s.start_check("q", kiosk="k", stream="s", started_at=now - 50 * DAY)
    for cid in (old, edge, recent, stale_running):
        s.add_windows(cid, batch_for(cid, 0, 4))
    for cid in (old, edge, recent):
        s.finish_check(cid, result_for(cid), now)

    assert s.apply_retention(now) == 4
    assert s.apply_retention(now) == 0
    got = s.get_check(old)
    assert got is not None
    assert got["windows"] == [] and got["result"] == result_for(old)
    assert got["status"] == "complete"
    for cid in (edge, recent, stale_running):
        assert s.get_check(cid)["windows"] == batch_for(cid, 0, 4)  # type: ignore[index]
    s.close()

    # Retention also runs when the store opens.
    SQLiteStore(path, keep_series_days=math.inf).close()
    s = SQLiteStore(path, keep_series_days=10)
    try:
        assert s.get_check(edge)["windows"] == []  # type: ignore[index]
        assert s.get_check(recent)["windows"] == batch_for(recent, 0, 4)  # type: ignore[index]
        assert s.get_check(edge)["result"] == result_for(edge)  # type: ignore[index]
    finally:
        s.close()
    with pytest.raises(StoreError, match="keep_series_days"):
        SQLiteStore(path, keep_series_days=-1)


def test_delete_person_cascades_and_leaves_no_trace(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    s = SQLiteStore(path)
    marker = "SECRET-BADGE-4711"
    a1 = s.start_check(marker, kiosk="k", stream="s", started_at=1.0)
    s.add_windows(a1, [{**window_for(a1, 0), "note": marker}] * 20)
    s.finish_check(a1, {"who": marker}, 2.0)
    a2 = s.start_check(marker, kiosk="k", stream="s", started_at=3.0)
    b = s.start_check("someone-else", kiosk="k", stream="s", started_at=4.0)
    s.add_windows(b, batch_for(b, 0, 3))

    assert s.delete_person(marker) == 2
    assert s.get_check(a1) is None and s.get_check(a2) is None
    assert s.list_checks(person_id=marker) == [] and s.person_history(marker) == []
    assert s.get_check(b)["windows"] == batch_for(b, 0, 3)  # type: ignore[index]
    assert s.delete_person("nobody") == 0
    s.close()
    with raw(path) as con:
        assert con.execute("SELECT COUNT(*) FROM check_windows WHERE check_id IN (?, ?)",
                           (a1, a2)).fetchone()[0] == 0
        assert [r[0] for r in con.execute("SELECT id FROM persons")] == ["someone-else"]
    con.close()
    for f in tmp_path.glob("w.db*"):  # overwritten, not just unlinked from the b-tree
        assert marker.encode() not in f.read_bytes(), f.name


# -- paths -------------------------------------------------------------------------------------

def test_unusable_paths_raise_store_error_naming_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    target = blocker / "sub" / "wellmon.db"
    with pytest.raises(StoreError, match=re.escape(str(target))):
        open_store(target)
    with pytest.raises(StoreError, match=re.escape(str(blocker / "wellmon.db"))):
        SQLiteStore(blocker / "wellmon.db")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not an SQLite database, just some bytes" * 100)
    with pytest.raises(StoreError, match=re.escape(str(garbage))):
        SQLiteStore(garbage)


def test_open_store_expands_home_and_creates_parents(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    s = open_store("~/deep/er/wellmon.db")
    try:
        cid = s.start_check("p", kiosk="k", stream="s", started_at=1.0)
        assert s.get_check(cid) is not None
    finally:
        s.close()
    assert (tmp_path / "deep" / "er" / "wellmon.db").is_file()


# -- person secrets ------------------------------------------------------------------------------

def test_checks_without_the_secret_stay_out_of_history_and_baseline(store: SQLiteStore) -> None:
    t = ts(2026, 2, 1, 7)
    proven = store.start_check("p", kiosk="k", stream="s", started_at=t)
    store.finish_check(proven, {"i": 1}, t + 45)
    anonymous = store.start_check("p", kiosk="k", stream="s", started_at=t + DAY,
                                  in_baseline=False)
    shown = store.finish_check(anonymous, {"i": 2}, t + DAY + 45)
    assert shown["in_baseline"] is False  # stored, and what was shown is on disk
    assert [h["id"] for h in store.person_history("p")] == [proven]
    assert [c["in_baseline"] for c in store.list_checks(person_id="p")] == [False, True]
    assert store.person_status("p", t + 2 * DAY)["checks"] == 2
    assert store.person_status("p", t + 2 * DAY)["checks_in_baseline"] == 1


def test_secrets_and_codes_round_trip(store: SQLiteStore) -> None:
    assert store.get_secret("q") is None
    store.set_secret("q", "scrypt$one", 10.0)  # creates the person
    store.set_secret("q", "scrypt$two", 11.0)
    assert store.get_secret("q") == "scrypt$two"
    status = store.person_status("q", 12.0)
    assert status["known"] and status["secret_set"] and status["secret_set_at"] == 11.0

    store.put_enrolment_code("r", "scrypt$c1", 100.0, 200.0)
    store.put_enrolment_code("r", "scrypt$c2", 101.0, 201.0)  # replaces c1
    assert store.enrolment_code("r", 150.0) == "scrypt$c2"
    assert store.enrolment_code("r", 201.0) is None  # expired
    assert not store.use_enrolment_code("r", "scrypt$c1", "scrypt$pin", 150.0)
    assert not store.use_enrolment_code("r", "scrypt$c2", "scrypt$pin", 201.5)
    assert store.get_secret("r") is None
    assert store.use_enrolment_code("r", "scrypt$c2", "scrypt$pin", 150.0)
    assert store.get_secret("r") == "scrypt$pin"
    assert not store.use_enrolment_code("r", "scrypt$c2", "scrypt$other", 150.0)  # once
    assert store.enrolment_code("r", 150.0) is None

    store.put_enrolment_code("r", "scrypt$c3", 300.0, 400.0)
    assert store.clear_secret("r") is True
    assert store.get_secret("r") is None and store.enrolment_code("r", 301.0) is None
    assert store.clear_secret("r") is False
    with pytest.raises(StoreError, match="non-empty"):
        store.set_secret("r", "", 1.0)
    with pytest.raises(StoreError, match="person_id"):
        store.put_enrolment_code("", "h", 1.0, 2.0)


def test_tries_are_counted_before_they_are_checked_and_lock(store: SQLiteStore) -> None:
    lock = 900.0

    def take(person: str, now: float) -> float | None:
        return store.take_attempt(person, now, max_failures=5, lock_s=lock)

    assert [take("x", 1000.0 + i) for i in range(4)] == [None] * 4
    assert store.locked_until("x", 1004.0) is None
    assert take("x", 1004.0) is None  # the fifth try goes ahead, and locks until it is judged
    assert store.locked_until("x", 1005.0) == 1004.0 + lock
    assert take("x", 1005.0) == 1004.0 + lock  # refused, not counted
    assert store.person_status("x", 1005.0)["failures"] == 5  # any ID is counted, known or not
    assert store.person_status("x", 1005.0)["known"] is False
    assert take("x", 1004.0 + lock) is None  # the lock ended: counting starts again
    assert store.person_status("x", 1004.0 + lock)["failures"] == 1

    assert take("y", 0.0) is None and take("y", 1.0) is None
    store.clear_attempts("y")  # a right try clears the count
    assert store.person_status("y", 2.0)["failures"] == 0
    for i in range(4):
        take("z", i * 1000.0)  # failures more than lock_s apart never add up
    assert store.person_status("z", 3000.0)["failures"] == 1


def test_the_lock_holds_across_a_reopen_and_retention_prunes_old_tries(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    now = time.time()
    s = SQLiteStore(path)
    for _ in range(5):
        s.take_attempt("locked-1", now, max_failures=5, lock_s=900)
    s.take_attempt("old-try", now - 2 * DAY, max_failures=5, lock_s=900)
    s.put_enrolment_code("late", "h", now - 2 * DAY, now - DAY)
    s.close()
    s = SQLiteStore(path)  # retention runs at open
    try:
        assert s.locked_until("locked-1", now + 1) == now + 900
    finally:
        s.close()
    with raw(path) as con:
        assert [r[0] for r in con.execute("SELECT person_id FROM secret_attempts")] == [
            "locked-1"]
        assert con.execute("SELECT COUNT(*) FROM enrolment_codes").fetchone()[0] == 0
    con.close()


def test_delete_person_removes_their_secret_code_and_tries(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    s = SQLiteStore(path)
    marker = "SECRET-HASH-0815"
    s.set_secret("gone", f"scrypt${marker}", 1.0)
    s.put_enrolment_code("gone", f"scrypt$code-{marker}", 1.0, time.time() + DAY)
    s.take_attempt("gone", time.time(), max_failures=5, lock_s=900)
    s.delete_person("gone")
    assert s.get_secret("gone") is None and s.enrolment_code("gone", 2.0) is None
    assert s.person_status("gone", time.time()) == {
        "person": "gone", "known": False, "created_at": None, "checks": 0,
        "checks_in_baseline": 0, "secret_set": False, "secret_set_at": None,
        "code_issued_at": None, "code_expires_at": None, "failures": 0, "locked_until": None}
    s.close()
    for f in tmp_path.glob("w.db*"):
        assert marker.encode() not in f.read_bytes(), f.name


# -- file modes ----------------------------------------------------------------------------------

def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_store_its_wal_and_shm_are_0600_and_a_new_folder_0700(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a permissive umask, as on most systems
    try:
        s = open_store(tmp_path / "new" / "deeper" / "checks.db")
        s.start_check("p", kiosk="k", stream="s", started_at=1.0)  # the WAL has data
        for name in ("checks.db", "checks.db-wal", "checks.db-shm"):
            assert _mode(tmp_path / "new" / "deeper" / name) == 0o600, name
        s.close()
        assert _mode(tmp_path / "new") == _mode(tmp_path / "new" / "deeper") == 0o700

        shared = tmp_path / "shared"
        shared.mkdir(mode=0o755)
        os.chmod(shared, 0o755)
        loose = shared / "checks.db"
        SQLiteStore(loose).close()
        os.chmod(loose, 0o644)  # made by an older wellmon
        s = SQLiteStore(loose)
        s.start_check("p", kiosk="k", stream="s", started_at=1.0)
        assert _mode(loose) == _mode(Path(f"{loose}-wal")) == 0o600
        s.close()
        assert _mode(shared) == 0o755
    finally:
        os.umask(old)


def test_a_dashboard_closes_its_own_and_its_dead_peers_checks_only(store: SQLiteStore) -> None:
    """Several dashboards on one database: at its start a dashboard marks only the checks it
    left running; a peer's running check stays running while the peer renews its lease and
    is closed, naming the peer, by whichever dashboard sees the lease run out."""
    location = (store.url if isinstance(store, store_postgres.PostgresStore)
                else store.path)  # type: ignore[union-attr]
    gate_b = open_store(location, owner="gate-b")
    try:
        store.renew_lease(100.0, 10.0)
        gate_b.renew_lease(100.0, 10.0, kiosk_stream="gate-b-camera")
        assert store.kiosk_streams() == {"gate-b-camera"}  # private on every dashboard
        mine = store.start_check("p1", kiosk="a", stream="s", started_at=100.0)
        theirs = gate_b.start_check("p2", kiosk="b", stream="s", started_at=100.0)
        assert store.get_check(theirs)["dashboard"] == "gate-b"  # type: ignore[index]
        assert store.mark_interrupted() == 1  # this dashboard restarted: its own check only
        assert store.get_check(mine)["status"] == "incomplete"  # type: ignore[index]
        assert store.get_check(theirs)["status"] == "running"  # type: ignore[index]
        assert store.close_abandoned(105.0) == {}  # gate-b's lease runs until 110
        gate_b.renew_lease(108.0, 10.0)
        assert store.close_abandoned(115.0) == {}
        assert store.close_abandoned(118.5) == {"gate-b": 1}
        closed = store.get_check(theirs)
        assert closed["status"] == "incomplete"  # type: ignore[index]
        assert closed["reason"] == ("interrupted: dashboard gate-b stopped during the "  # type: ignore[index]
                                    "check")
        assert gate_b.close_abandoned(119.0) == {}  # nothing left of its own to close
    finally:
        gate_b.close()


def test_windows_of_many_checks_go_in_one_transaction_all_or_none(store: SQLiteStore) -> None:
    a = store.start_check("p1", kiosk="a", stream="s1", started_at=1.0)
    b = store.start_check("p2", kiosk="b", stream="s2", started_at=1.0)
    store.add_windows(a, [window_for(a, 0)])
    store.add_windows_of({a: [window_for(a, 1)], b: [window_for(b, 0), window_for(b, 1)]})
    assert store.get_check(a)["windows"] == [window_for(a, 0), window_for(a, 1)]  # type: ignore[index]
    assert store.get_check(b)["windows"] == [window_for(b, 0), window_for(b, 1)]  # type: ignore[index]
    store.finish_check(b, result_for(b), 2.0)
    with pytest.raises(StoreError, match=rf"cannot add windows to check {b}: it is complete"):
        store.add_windows_of({a: [window_for(a, 2)], b: [window_for(b, 2)]})
    assert len(store.get_check(a)["windows"]) == 2  # type: ignore[index]  # none of it


def test_the_audit_trail_and_the_export_of_a_person(store: SQLiteStore) -> None:
    """Reads, exports and resets are kept per person; the export holds everything stored
    about them but the hashes of their secrets; deleting them strips their ID from the
    trail and leaves one entry saying a deletion happened."""
    cid = store.start_check("worker-1", kiosk="gate-a", stream="cam0", started_at=100.0)
    store.add_windows(cid, [window_for(cid, 0)])
    store.finish_check(cid, result_for(cid), ended_at=145.0)
    store.set_secret("worker-1", "scrypt$hash-of-the-pin", 90.0)
    store.record_audit("history", "worker-1", role="kiosk", origin="gate-a", now=145.0)
    store.record_audit("read", "worker-1", role="admin", origin="10.0.0.7", now=200.0)
    store.record_audit("read", "worker-2", role="admin", origin="10.0.0.7", now=201.0)
    with pytest.raises(StoreError, match="audit action must be one of"):
        store.record_audit("peek", "worker-1", role="admin", origin=None, now=202.0)
    assert store.audit_of("worker-1") == [
        {"at": 200.0, "action": "read", "role": "admin", "origin": "10.0.0.7"},
        {"at": 145.0, "action": "history", "role": "kiosk", "origin": "gate-a"}]

    exported = store.export_person("worker-1")
    assert exported is not None and exported["person"] == "worker-1"
    assert [c["id"] for c in exported["checks"]] == [cid]
    assert exported["checks"][0]["windows"] == [window_for(cid, 0)]
    assert exported["secret"] == {"set": True, "set_at": 90.0}
    assert "scrypt$hash-of-the-pin" not in json.dumps(exported)
    assert len(exported["audit"]) == 2
    assert store.export_person("nobody") is None

    assert store.delete_person("worker-1", role="admin", origin="10.0.0.9", now=300.0) == 1
    assert store.audit_of("worker-1") == [] and store.export_person("worker-1") is None
    nameless = store.audit_of(None)
    assert nameless[0] == {"at": 300.0, "action": "delete", "role": "admin",
                           "origin": "10.0.0.9"}
    assert [e["action"] for e in nameless[1:]] == ["read", "history"]  # worker-1's, unnamed
    assert len(store.audit_of("worker-2")) == 1  # another person's trail is untouched
