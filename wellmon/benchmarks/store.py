"""`wellmon bench store --kiosks N`: a site's kiosks writing their checks to the store, SQLite
and PostgreSQL side by side in one run.

Each simulated kiosk starts a check, sends one window every 0.5 s for the check's length
(45 s) and finishes it; the kiosks' phases are spread over the half second, as real ones
are. The kiosks are shared out among several dashboards, each with its own connection
(its own thread); a dashboard writes the windows that are due together in one transaction
(`Store.add_windows_of`: group commit). A window's acknowledgement latency runs from the
moment it was due to its commit's return. Afterwards every check is read back: a window
acknowledged but not in the database is lost, a window stored twice is duplicated.

PostgreSQL is the configured store (``store.url``), or, when none is configured, a
throwaway server started for the run. The bench's people are deleted afterwards.
"""

from __future__ import annotations

import json
import random
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wellmon.config import Config
from wellmon.dashboard.store import Store, StoreError, open_store
from wellmon.errors import UsageError

WINDOW_S = 0.5


@dataclass
class Figures:
    backend: str
    kiosks: int
    p50_ms: float
    p99_ms: float
    commits_per_s: float
    lost: int
    duplicated: int
    errors: int


@dataclass(eq=False)
class Kiosk:
    person: str
    phase_s: float
    check_id: int | None = None
    sent: int = 0
    acknowledged: set[int] = field(default_factory=set)


@dataclass
class DashboardRun:
    latencies_s: list[float] = field(default_factory=list)
    commits: int = 0
    errors: int = 0
    failure: BaseException | None = None


def bench_store(config: Config, kiosks: int, dashboards: int, check_s: float,
                as_json: bool) -> int:
    if not check_s >= WINDOW_S:
        raise UsageError(f"bench store: --check-s must be at least {WINDOW_S:g} (one window)")
    run = secrets.token_hex(3)
    results = []
    with tempfile.TemporaryDirectory() as folder, _postgres(config) as (url, where):
        backends = [("sqlite", str(Path(folder) / "bench.db"), "a file in a temporary folder"),
                    ("postgresql", url, where)]
        for name, location, described in backends:
            if not as_json:
                print(f"bench store: {name} ({described}): {kiosks} kiosks over {dashboards} "
                      f"dashboards, a window every {WINDOW_S:g} s for {check_s:g} s ...",
                      flush=True)
            results.append(_run(name, location, kiosks, dashboards, check_s, f"{run}-{name}"))
    for figures in results:
        if as_json:
            print(json.dumps(asdict(figures)))
        else:
            print(f"  {figures.backend:10s} acknowledged p50 {figures.p50_ms:7.1f} ms  p99 "
                  f"{figures.p99_ms:7.1f} ms  {figures.commits_per_s:7.0f} commits/s  "
                  f"lost {figures.lost}  duplicated {figures.duplicated}  "
                  f"errors {figures.errors}")
    return 0


@contextmanager
def _postgres(config: Config) -> Iterator[tuple[str, str]]:
    """The configured PostgreSQL store, else a throwaway server for the run."""
    if config.store.url:
        yield config.store.url, "the configured store.url"
        return
    import os

    from wellmon.postgres_server import TemporaryPostgres

    with TemporaryPostgres() as server:
        before = os.environ.get("PGPASSFILE")
        os.environ["PGPASSFILE"] = str(server.passfile)
        try:
            yield server.url, "a throwaway server on this machine, fsync on"
        finally:
            if before is None:
                os.environ.pop("PGPASSFILE", None)
            else:
                os.environ["PGPASSFILE"] = before


def _run(backend: str, location: str, kiosks: int, dashboards: int, check_s: float,
         run: str) -> Figures:
    rng = random.Random(0)
    everyone = [Kiosk(f"bench-{run}-{k}", rng.uniform(0, WINDOW_S)) for k in range(kiosks)]
    shares = [everyone[d::dashboards] for d in range(dashboards)]
    runs = [DashboardRun() for _ in shares]
    windows = int(check_s / WINDOW_S)
    open_store(location, owner=f"bench-{run}").close()  # migrations once, before the clock
    start = time.monotonic() + 1.0
    threads = [threading.Thread(target=_failure_kept, args=(location, f"bench-{run}-{d}",
                                                            share, stats, start, windows))
               for d, (share, stats) in enumerate(zip(shares, runs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - start
    failed = next((r.failure for r in runs if r.failure is not None), None)
    if failed is not None:
        raise RuntimeError(f"bench store: a dashboard thread failed on {backend}: "
                           f"{failed!r}") from failed
    lost, duplicated = _count_back(location, everyone)
    latencies = np.array([x for r in runs for x in r.latencies_s]) * 1e3
    p50, p99 = (np.percentile(latencies, [50, 99]) if latencies.size else (np.nan, np.nan))
    return Figures(backend, kiosks, round(float(p50), 1), round(float(p99), 1),
                   round(sum(r.commits for r in runs) / took, 1), lost, duplicated,
                   sum(r.errors for r in runs))


def _failure_kept(location: str, owner: str, kiosks: list[Kiosk], stats: DashboardRun,
                  start: float, windows: int) -> None:
    try:
        _dashboard(location, owner, kiosks, stats, start, windows)
    except BaseException as e:  # noqa: BLE001 - reported by _run after the join
        stats.failure = e


def _dashboard(location: str, owner: str, kiosks: list[Kiosk], stats: DashboardRun,
               start: float, windows: int) -> None:
    """One dashboard's connection: start each kiosk's check at its phase, then write every
    window as it falls due, all those due together in one commit, then finish them."""
    store = open_store(location, owner=owner)
    try:
        pending = sorted(kiosks, key=lambda k: k.phase_s)
        for kiosk in pending:
            _sleep_until(start + kiosk.phase_s)
            _, kiosk.check_id = _commit(stats, lambda k=kiosk: store.start_check(
                k.person, kiosk="bench", stream=k.person, started_at=time.time()))
        while any(k.sent < windows for k in kiosks if k.check_id is not None):
            now = time.monotonic()
            due = {k: int((now - start - k.phase_s) / WINDOW_S) for k in kiosks}
            batch = {k: list(range(k.sent, min(due[k], windows))) for k in kiosks
                     if k.check_id is not None and k.sent < min(due[k], windows)}
            if batch:
                _write(store, stats, batch, start)
            else:
                _sleep_until(min(start + k.phase_s + (k.sent + 1) * WINDOW_S for k in kiosks
                                 if k.check_id is not None and k.sent < windows))
        for kiosk in kiosks:
            if kiosk.check_id is not None:
                _commit(stats, lambda k=kiosk: store.finish_check(
                    k.check_id, {"bench": True, "windows": k.sent}, time.time()))
    finally:
        store.close()


def _write(store: Store, stats: DashboardRun, batch: dict[Kiosk, list[int]],
           start: float) -> None:
    windows = {k.check_id: [{"seq": seq, "t_end": seq * WINDOW_S, "stress": 50.0,
                             "emotions": {"neutral": 0.7, "happy": 0.3},
                             "signals": {"heart_rate": 70.0, "blink_rate": 0.3}}
                            for seq in seqs] for k, seqs in batch.items()}
    written, _ = _commit(stats, lambda: store.add_windows_of(windows))
    acked = time.monotonic()
    if not written:
        return  # not acknowledged: tried again at the next turn
    for kiosk, seqs in batch.items():
        kiosk.acknowledged.update(seqs)
        kiosk.sent = seqs[-1] + 1
        stats.latencies_s += [acked - (start + kiosk.phase_s + (seq + 1) * WINDOW_S)
                              for seq in seqs]


def _commit(stats: DashboardRun, call: Callable[[], Any]) -> tuple[bool, Any]:
    """Whether the call committed, and what it returned; a StoreError is counted."""
    try:
        result = call()
    except StoreError:
        stats.errors += 1
        return False, None
    stats.commits += 1
    return True, result


def _count_back(location: str, kiosks: list[Kiosk]) -> tuple[int, int]:
    """Windows acknowledged but absent, and windows stored more than once; then the bench's
    people are deleted."""
    lost = duplicated = 0
    store = open_store(location, owner="bench-count")
    try:
        for kiosk in kiosks:
            if kiosk.check_id is not None:
                check = store.get_check(kiosk.check_id) or {"windows": []}
                seqs = [w["seq"] for w in check["windows"]]
                duplicated += len(seqs) - len(set(seqs))
                lost += len(kiosk.acknowledged - set(seqs))
            store.delete_person(kiosk.person)
    finally:
        store.close()
    return lost, duplicated


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)
