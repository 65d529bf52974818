"""Durable storage for kiosk wellness checks: who, when, the result, and the per-window series.

The dashboard server starts a check when a badge is scanned, appends the inference node's
per-window score messages while the person stands in front of the camera, then stores the
computed result. Every mutating call commits (and, with ``synchronous=FULL``, fsyncs) before
it returns, so a result the UI shows is already on disk, and a check cut short by a crash is
found as 'running' at the next start, where :meth:`Store.mark_interrupted` records it as
incomplete instead of losing it. The store only ever sees score messages: no video or audio.

Storage sits behind the small :class:`Store` protocol so that another backend (PostgreSQL)
can be added later; :class:`SQLiteStore` is the one implementation.

People's secrets (dashboard/person_secrets.py) live here too, only as scrypt hashes: the
hash of each person's PIN, their pending enrolment code's hash, and the count of wrong
tries with the lock they lead to (keyed by any ID tried, existing or not, so a lock holds
across kiosks and restarts and does not tell whether the ID exists). A check whose person
did not prove their secret is stored with ``in_baseline`` false: it never enters their
history or baseline.

The file is private: the database, its WAL and shared-memory files are created mode 0600
(an existing file is narrowed to 0600 at open) and a folder the store creates is 0700.

Times are float seconds since the epoch. ``list_checks(day=...)`` takes the day in UTC.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

STATUSES = ("running", "complete", "incomplete", "failed")
FAIL_STATUSES = ("failed", "incomplete")
INTERRUPTED = "interrupted: the dashboard stopped during the check"
BUSY_TIMEOUT_MS = 5000
DAY_S = 86400.0


class StoreError(RuntimeError):
    """Anything the store refuses or cannot do; the message says what and where."""


Migration = Callable[[sqlite3.Connection], None] | Sequence[str]

# Migration i (0-based) brings the schema from version i to i + 1. Never edit a released
# entry: databases in the field already ran it. Append a new one instead.
MIGRATIONS: list[Migration] = [
    # v1: the initial tables.
    (
        """CREATE TABLE persons (
            id TEXT PRIMARY KEY,
            created_at REAL NOT NULL
        )""",
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
    ),
    # v2: why a check failed or is incomplete; indexes for newest-first lists and retention.
    (
        "ALTER TABLE checks ADD COLUMN reason TEXT",
        "CREATE INDEX checks_started ON checks(started_at)",
        "CREATE INDEX checks_person_started ON checks(person_id, started_at)",
        "CREATE INDEX checks_status ON checks(status)",
    ),
    # v3: person secrets (scrypt hashes), enrolment codes, wrong tries and locks; checks
    # made without the person's secret are kept out of their baseline and history.
    (
        "ALTER TABLE checks ADD COLUMN in_baseline INTEGER NOT NULL DEFAULT 1",
        """CREATE TABLE person_secrets (
            person_id TEXT PRIMARY KEY REFERENCES persons(id) ON DELETE CASCADE,
            secret_hash TEXT NOT NULL,
            set_at REAL NOT NULL
        )""",
        """CREATE TABLE enrolment_codes (
            person_id TEXT PRIMARY KEY REFERENCES persons(id) ON DELETE CASCADE,
            code_hash TEXT NOT NULL,
            issued_at REAL NOT NULL,
            expires_at REAL NOT NULL
        )""",
        """CREATE TABLE secret_attempts (
            person_id TEXT PRIMARY KEY,
            failures INTEGER NOT NULL,
            last_failure_at REAL NOT NULL,
            locked_until REAL
        )""",
    ),
]


def schema_version() -> int:
    """The schema version this code writes (the number of migrations)."""
    return len(MIGRATIONS)


@runtime_checkable
class Store(Protocol):
    """What the dashboard needs from storage. Every mutating method is durable on return."""

    def start_check(self, person_id: str, *, kiosk: str, stream: str,
                    started_at: float, in_baseline: bool = True) -> int: ...

    def add_windows(self, check_id: int, windows: list[dict[str, Any]]) -> None: ...

    def finish_check(self, check_id: int, result: dict[str, Any],
                     ended_at: float) -> dict[str, Any]: ...

    def fail_check(self, check_id: int, reason: str, ended_at: float,
                   status: str = "failed") -> None: ...

    def mark_interrupted(self, reason: str = INTERRUPTED) -> int: ...

    def get_check(self, check_id: int, with_windows: bool = True) -> dict[str, Any] | None: ...

    def list_checks(self, *, day: dt.date | None = None, person_id: str | None = None,
                    status: str | None = None, limit: int = 500) -> list[dict[str, Any]]: ...

    def person_history(self, person_id: str, *, limit: int = 20,
                       before: float | None = None) -> list[dict[str, Any]]: ...

    def delete_person(self, person_id: str) -> int: ...

    def apply_retention(self, now: float) -> int: ...

    def get_secret(self, person_id: str) -> str | None: ...

    def set_secret(self, person_id: str, secret_hash: str, now: float) -> None: ...

    def clear_secret(self, person_id: str) -> bool: ...

    def put_enrolment_code(self, person_id: str, code_hash: str, now: float,
                           expires_at: float) -> None: ...

    def enrolment_code(self, person_id: str, now: float) -> str | None: ...

    def use_enrolment_code(self, person_id: str, code_hash: str, secret_hash: str,
                           now: float) -> bool: ...

    def take_attempt(self, person_id: str, now: float, *, max_failures: int,
                     lock_s: float) -> float | None: ...

    def locked_until(self, person_id: str, now: float) -> float | None: ...

    def clear_attempts(self, person_id: str) -> None: ...

    def person_status(self, person_id: str, now: float) -> dict[str, Any]: ...

    def close(self) -> None: ...


def open_store(path: str | Path, *, keep_series_days: float = 30.0) -> Store:
    """Open (creating it and its parent directories) the store at `path`; `~` is expanded."""
    path = Path(path).expanduser()
    try:
        _make_private_dirs(path.parent)
    except OSError as e:
        raise StoreError(f"cannot create the directory for the store {path}: {e}") from e
    return SQLiteStore(path, keep_series_days=keep_series_days)


class SQLiteStore:
    """The SQLite store: one file, WAL, fsync on every commit.

    One connection, used from the thread that opened it only (the dashboard server's asyncio
    thread); a call from another thread raises StoreError. Calls block for the commit's fsync,
    a few milliseconds. Other processes may read the file concurrently (WAL); only one
    dashboard should write it, since :meth:`mark_interrupted` treats every running check as
    its own. Deleted rows are overwritten (``secure_delete``) so personal data does not linger.
    """

    def __init__(self, path: str | Path, *, keep_series_days: float = 30.0) -> None:
        if not keep_series_days >= 0:
            raise StoreError(f"keep_series_days must be >= 0, not {keep_series_days!r}")
        self.path = Path(path).expanduser()
        self.keep_series_days = float(keep_series_days)
        self._db: sqlite3.Connection | None = None
        # The file and its -wal and -shm (SQLite gives them the database's mode) are born
        # 0600: the umask covers the creation, the chmod a file made earlier by others.
        umask = os.umask(0o077)
        try:
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                       isolation_level=None)
            self._db.execute("PRAGMA user_version").fetchone()  # creates the file
            for suffix in ("", "-wal", "-shm"):
                _narrow(Path(f"{self.path}{suffix}"))
        except sqlite3.Error as e:
            raise StoreError(f"cannot open the store {self.path}: {e}") from e
        except OSError as e:
            if self._db is not None:
                self._db.close()
            raise StoreError(f"cannot make the store {self.path} private: {e}") from e
        finally:
            os.umask(umask)
        try:
            self._configure()
            self._migrate()
            self.apply_retention(time.time())
        except BaseException:
            self.close()
            raise

    # -- setup ------------------------------------------------------------------------------

    def _configure(self) -> None:
        db = self._conn
        try:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            found = db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as e:
            raise StoreError(f"cannot open the store {self.path}: {e}") from e
        if found > schema_version():
            raise StoreError(
                f"the store {self.path} has schema version {found}, newer than version "
                f"{schema_version()} that this wellmon knows; upgrade wellmon to open it")
        try:
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA secure_delete = ON")
        except sqlite3.Error as e:
            raise StoreError(f"cannot configure the store {self.path}: {e}") from e
        if str(mode).lower() != "wal":
            raise StoreError(f"the store {self.path} cannot use WAL (journal_mode is {mode})")

    def _migrate(self) -> None:
        """Run each missing migration in its own transaction, bumping user_version with it."""
        target = schema_version()
        while True:
            with self._write("migrate the schema of"):
                db = self._conn
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version >= target:  # re-read inside the lock: another process may have run it
                    if version > target:
                        raise StoreError(
                            f"the store {self.path} has schema version {version}, newer than "
                            f"version {target} that this wellmon knows")
                    return
                step = MIGRATIONS[version]
                try:
                    if callable(step):
                        step(db)
                    else:
                        for sql in step:
                            db.execute(sql)
                    db.execute(f"PRAGMA user_version = {version + 1}")
                except sqlite3.Error as e:
                    raise StoreError(f"migration of the store {self.path} from version "
                                     f"{version} to {version + 1} failed: {e}") from e

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"the store {self.path} is closed")
        return self._db

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed (durable) on success, rolled back on any error."""
        db = self._conn
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise StoreError(f"cannot {what} the store {self.path}: {e}") from e
        try:
            yield db
            db.execute("COMMIT")
        except BaseException as e:
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            if isinstance(e, sqlite3.Error):
                raise StoreError(f"cannot {what} the store {self.path}: {e}") from e
            raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction, so multi-statement reads see one snapshot."""
        db = self._conn
        try:
            db.execute("BEGIN")
            try:
                yield db
            finally:
                if db.in_transaction:
                    db.execute("COMMIT")
        except sqlite3.Error as e:
            raise StoreError(f"cannot read the store {self.path}: {e}") from e

    # -- writes -----------------------------------------------------------------------------

    def start_check(self, person_id: str, *, kiosk: str, stream: str,
                    started_at: float, in_baseline: bool = True) -> int:
        """Record a new running check (and the person, if new); returns its id.

        ``in_baseline`` false: the person did not prove their secret, so the check never
        appears in their history (:meth:`person_history`) nor their baseline.
        """
        _person(person_id)
        started_at = _time(started_at, "started_at")
        with self._write("start a check in") as db:
            db.execute("INSERT OR IGNORE INTO persons (id, created_at) VALUES (?, ?)",
                       (person_id, started_at))
            cur = db.execute(
                "INSERT INTO checks (person_id, kiosk, stream, status, started_at, in_baseline) "
                "VALUES (?, ?, ?, 'running', ?, ?)",
                (person_id, str(kiosk), str(stream), started_at, 1 if in_baseline else 0))
            check_id = cur.lastrowid
        assert check_id is not None
        return check_id

    def add_windows(self, check_id: int, windows: list[dict[str, Any]]) -> None:
        """Append score windows to a running check, all or none; seq continues from the last."""
        rows = []
        for i, window in enumerate(windows):
            if not isinstance(window, dict):
                raise StoreError(f"window {i} for check {check_id} is a "
                                 f"{type(window).__name__}, not a dict")
            t_end = window.get("t_end")
            t_end = float(t_end) if _finite_number(t_end) else None
            rows.append((t_end, _dumps(window, f"window {i} for check {check_id}")))
        if not rows:
            return
        with self._write(f"add windows to check {check_id} in") as db:
            self._require_running(db, check_id, "add windows to")
            first = db.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM check_windows "
                               "WHERE check_id = ?", (check_id,)).fetchone()[0]
            db.executemany(
                "INSERT INTO check_windows (check_id, seq, t_end, window_json) VALUES (?, ?, ?, ?)",
                [(check_id, first + i, t_end, text) for i, (t_end, text) in enumerate(rows)])

    def finish_check(self, check_id: int, result: dict[str, Any],
                     ended_at: float) -> dict[str, Any]:
        """Complete a running check with its result; returns the row as stored (no windows).

        Show the user what this returns: it has been committed and read back.
        """
        if not isinstance(result, dict):
            raise StoreError(f"the result of check {check_id} must be a dict, "
                             f"not {type(result).__name__}")
        text = _dumps(result, f"the result of check {check_id}")
        ended_at = _time(ended_at, "ended_at")
        with self._write(f"finish check {check_id} in") as db:
            self._require_running(db, check_id, "finish")
            db.execute("UPDATE checks SET status = 'complete', ended_at = ?, result_json = ?, "
                       "reason = NULL WHERE id = ?", (ended_at, text, check_id))
        row = self.get_check(check_id, with_windows=False)
        assert row is not None
        return row

    def fail_check(self, check_id: int, reason: str, ended_at: float,
                   status: str = "failed") -> None:
        """End a running check without a result: 'failed' (e.g. the node stopped) or
        'incomplete' (e.g. cancelled)."""
        if status not in FAIL_STATUSES:
            raise StoreError(f"fail_check status must be one of {FAIL_STATUSES}, not {status!r}")
        ended_at = _time(ended_at, "ended_at")
        with self._write(f"end check {check_id} in") as db:
            self._require_running(db, check_id, f"mark as {status}")
            db.execute("UPDATE checks SET status = ?, ended_at = ?, reason = ? WHERE id = ?",
                       (status, ended_at, str(reason), check_id))

    def mark_interrupted(self, reason: str = INTERRUPTED) -> int:
        """At startup: every check left 'running' by a crash becomes 'incomplete'.

        Its ended_at stays NULL: when it really stopped is unknown. Returns how many.
        """
        with self._write("mark interrupted checks in") as db:
            cur = db.execute("UPDATE checks SET status = 'incomplete', reason = ? "
                             "WHERE status = 'running'", (str(reason),))
            return cur.rowcount

    def delete_person(self, person_id: str) -> int:
        """Remove a person with all their checks and windows; returns how many checks went."""
        with self._write(f"delete person {person_id!r} from") as db:
            n = db.execute("SELECT COUNT(*) FROM checks WHERE person_id = ?",
                           (person_id,)).fetchone()[0]
            db.execute("DELETE FROM persons WHERE id = ?", (person_id,))
            db.execute("DELETE FROM secret_attempts WHERE person_id = ?", (person_id,))
        self._checkpoint()
        return n

    def apply_retention(self, now: float) -> int:
        """Drop the per-window series of checks that started more than keep_series_days before
        `now`; their rows and result summaries stay. Running checks are never touched.
        Returns the number of windows deleted."""
        now = _time(now, "now")
        cutoff = now - self.keep_series_days * DAY_S
        with self._write("apply retention to") as db:
            cur = db.execute(
                "DELETE FROM check_windows WHERE check_id IN (SELECT id FROM checks "
                "WHERE started_at < ? AND status != 'running')", (cutoff,))
            n = cur.rowcount
            # Expired codes, and tries that no longer count (no lock, last one a day ago).
            db.execute("DELETE FROM enrolment_codes WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM secret_attempts WHERE last_failure_at < ? AND "
                       "(locked_until IS NULL OR locked_until <= ?)", (now - DAY_S, now))
        if n:
            self._checkpoint()
        return n

    # -- person secrets ---------------------------------------------------------------------

    def set_secret(self, person_id: str, secret_hash: str, now: float) -> None:
        """Set (or replace) a person's secret hash; the person is created if new."""
        _person(person_id)
        now = _time(now, "now")
        with self._write("set a secret in") as db:
            self._upsert_secret(db, person_id, secret_hash, now)

    def _upsert_secret(self, db: sqlite3.Connection, person_id: str, secret_hash: str,
                       now: float) -> None:
        if not isinstance(secret_hash, str) or not secret_hash:
            raise StoreError("a secret hash must be a non-empty string")
        db.execute("INSERT OR IGNORE INTO persons (id, created_at) VALUES (?, ?)",
                   (person_id, now))
        db.execute("INSERT INTO person_secrets (person_id, secret_hash, set_at) VALUES (?, ?, ?) "
                   "ON CONFLICT(person_id) DO UPDATE SET secret_hash = excluded.secret_hash, "
                   "set_at = excluded.set_at", (person_id, secret_hash, now))

    def get_secret(self, person_id: str) -> str | None:
        """The person's secret hash, or None (no such person, or no secret set)."""
        with self._read() as db:
            row = db.execute("SELECT secret_hash FROM person_secrets WHERE person_id = ?",
                             (person_id,)).fetchone()
        return row[0] if row else None

    def clear_secret(self, person_id: str) -> bool:
        """Forget the person's secret, pending enrolment code, wrong tries and lock (an
        operator's reset). True if a secret was set."""
        with self._write(f"reset the secret of {person_id!r} in") as db:
            n = db.execute("DELETE FROM person_secrets WHERE person_id = ?",
                           (person_id,)).rowcount
            db.execute("DELETE FROM enrolment_codes WHERE person_id = ?", (person_id,))
            db.execute("DELETE FROM secret_attempts WHERE person_id = ?", (person_id,))
        self._checkpoint()
        return n > 0

    def put_enrolment_code(self, person_id: str, code_hash: str, now: float,
                           expires_at: float) -> None:
        """Store the hash of a new enrolment code for the person (created if new), replacing
        any earlier code of theirs."""
        _person(person_id)
        now, expires_at = _time(now, "now"), _time(expires_at, "expires_at")
        if not isinstance(code_hash, str) or not code_hash:
            raise StoreError("a code hash must be a non-empty string")
        with self._write("issue an enrolment code in") as db:
            db.execute("INSERT OR IGNORE INTO persons (id, created_at) VALUES (?, ?)",
                       (person_id, now))
            db.execute("INSERT INTO enrolment_codes (person_id, code_hash, issued_at, expires_at) "
                       "VALUES (?, ?, ?, ?) ON CONFLICT(person_id) DO UPDATE SET "
                       "code_hash = excluded.code_hash, issued_at = excluded.issued_at, "
                       "expires_at = excluded.expires_at",
                       (person_id, code_hash, now, expires_at))

    def enrolment_code(self, person_id: str, now: float) -> str | None:
        """The hash of the person's unused, unexpired enrolment code, or None."""
        with self._read() as db:
            row = db.execute("SELECT code_hash FROM enrolment_codes WHERE person_id = ? AND "
                             "expires_at > ?", (person_id, float(now))).fetchone()
        return row[0] if row else None

    def use_enrolment_code(self, person_id: str, code_hash: str, secret_hash: str,
                           now: float) -> bool:
        """Spend the person's enrolment code whose hash is ``code_hash`` (still unexpired)
        and set their secret, in one transaction; False (nothing changed) if that code is no
        longer there: used by another kiosk meanwhile, replaced or expired."""
        now = _time(now, "now")
        with self._write("enrol a person in") as db:
            used = db.execute("DELETE FROM enrolment_codes WHERE person_id = ? AND code_hash = ? "
                              "AND expires_at > ?", (person_id, code_hash, now)).rowcount
            if used:
                self._upsert_secret(db, person_id, secret_hash, now)
        return used > 0

    def take_attempt(self, person_id: str, now: float, *, max_failures: int,
                     lock_s: float) -> float | None:
        """Count one try at the person's secret or code *as a failure* before it is checked
        (:meth:`clear_attempts` undoes it on success), so tries in parallel cannot exceed
        ``max_failures``. Returns None when the try may go ahead, else the time the ID's
        lock ends (the try is then not counted). Failures more than ``lock_s`` apart start
        the count again; the ``max_failures``-th locks the ID for ``lock_s``. Any ID string
        is counted, whether or not such a person exists."""
        now = _time(now, "now")
        with self._write("count a secret try in") as db:
            row = db.execute("SELECT failures, last_failure_at, locked_until FROM "
                             "secret_attempts WHERE person_id = ?", (person_id,)).fetchone()
            failures, last, until = row if row else (0, now, None)
            if until is not None and until > now:
                return float(until)
            if until is not None or now - last > lock_s:  # a lock that ended, or old tries
                failures = 0
            failures += 1
            until = now + lock_s if failures >= max_failures else None
            db.execute("INSERT INTO secret_attempts (person_id, failures, last_failure_at, "
                       "locked_until) VALUES (?, ?, ?, ?) ON CONFLICT(person_id) DO UPDATE SET "
                       "failures = excluded.failures, last_failure_at = excluded.last_failure_at, "
                       "locked_until = excluded.locked_until", (person_id, failures, now, until))
        return None

    def locked_until(self, person_id: str, now: float) -> float | None:
        """When the ID's lock ends, or None if it is not locked."""
        with self._read() as db:
            row = db.execute("SELECT locked_until FROM secret_attempts WHERE person_id = ? AND "
                             "locked_until > ?", (person_id, float(now))).fetchone()
        return float(row[0]) if row else None

    def clear_attempts(self, person_id: str) -> None:
        """A right secret or code: forget the ID's failures (and a lock its own try set)."""
        with self._write("clear the tries of an ID in") as db:
            db.execute("DELETE FROM secret_attempts WHERE person_id = ?", (person_id,))

    def person_status(self, person_id: str, now: float) -> dict[str, Any]:
        """What the operator sees of a person: known, checks, secret set, pending code, lock."""
        with self._read() as db:
            known = db.execute("SELECT created_at FROM persons WHERE id = ?",
                               (person_id,)).fetchone()
            checks = db.execute("SELECT COUNT(*), COALESCE(SUM(in_baseline), 0) FROM checks "
                                "WHERE person_id = ?", (person_id,)).fetchone()
            secret = db.execute("SELECT set_at FROM person_secrets WHERE person_id = ?",
                                (person_id,)).fetchone()
            code = db.execute("SELECT issued_at, expires_at FROM enrolment_codes WHERE "
                              "person_id = ? AND expires_at > ?",
                              (person_id, float(now))).fetchone()
            tries = db.execute("SELECT failures, locked_until FROM secret_attempts WHERE "
                               "person_id = ?", (person_id,)).fetchone()
        locked = tries[1] if tries and tries[1] is not None and tries[1] > now else None
        return {"person": person_id, "known": known is not None,
                "created_at": known[0] if known else None,
                "checks": checks[0], "checks_in_baseline": checks[1],
                "secret_set": secret is not None, "secret_set_at": secret[0] if secret else None,
                "code_issued_at": code[0] if code else None,
                "code_expires_at": code[1] if code else None,
                "failures": tries[0] if tries and (tries[1] is None or tries[1] > now) else 0,
                "locked_until": locked}

    def close(self) -> None:
        """Close the connection (idempotent); SQLite checkpoints and removes the WAL."""
        if self._db is not None:
            db, self._db = self._db, None
            db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads ------------------------------------------------------------------------------

    def get_check(self, check_id: int, with_windows: bool = True) -> dict[str, Any] | None:
        """The check as a dict (result parsed), with its windows ordered by seq; None if absent.

        Windows are [] once retention has dropped them.
        """
        with self._read() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM checks WHERE id = ?",
                             (check_id,)).fetchone()
            if row is None:
                return None
            check = _check_dict(row)
            if with_windows:
                check["windows"] = [json.loads(text) for (text,) in db.execute(
                    "SELECT window_json FROM check_windows WHERE check_id = ? ORDER BY seq",
                    (check_id,))]
        return check

    def list_checks(self, *, day: dt.date | None = None, person_id: str | None = None,
                    status: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        """Checks newest first, without windows; `day` is a UTC calendar day of started_at."""
        where, args = [], []
        if day is not None:
            start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp()
            where.append("started_at >= ? AND started_at < ?")
            args += [start, start + DAY_S]
        if person_id is not None:
            where.append("person_id = ?")
            args.append(person_id)
        if status is not None:
            if status not in STATUSES:
                raise StoreError(f"status must be one of {STATUSES}, not {status!r}")
            where.append("status = ?")
            args.append(status)
        sql = f"SELECT {_COLUMNS} FROM checks"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, id DESC LIMIT ?"
        with self._read() as db:
            rows = db.execute(sql, (*args, int(limit))).fetchall()
        return [_check_dict(r) for r in rows]

    def person_history(self, person_id: str, *, limit: int = 20,
                       before: float | None = None) -> list[dict[str, Any]]:
        """A person's complete checks that are in their baseline (made with their secret),
        newest first, started before `before` if given: dicts with id, kiosk, started_at,
        ended_at, result."""
        sql = ("SELECT id, kiosk, started_at, ended_at, result_json FROM checks "
               "WHERE person_id = ? AND status = 'complete' AND in_baseline = 1")
        args: list[Any] = [person_id]
        if before is not None:
            sql += " AND started_at < ?"
            args.append(float(before))
        sql += " ORDER BY started_at DESC, id DESC LIMIT ?"
        with self._read() as db:
            rows = db.execute(sql, (*args, int(limit))).fetchall()
        return [{"id": i, "kiosk": k, "started_at": s, "ended_at": e,
                 "result": json.loads(r) if r is not None else None} for i, k, s, e, r in rows]

    def pragmas(self) -> dict[str, Any]:
        """The settings in effect on this connection, for diagnostics and tests."""
        with self._read() as db:
            return {name: db.execute(f"PRAGMA {name}").fetchone()[0]
                    for name in ("journal_mode", "synchronous", "foreign_keys",
                                 "busy_timeout", "secure_delete", "user_version")}

    # -- helpers ----------------------------------------------------------------------------

    def _require_running(self, db: sqlite3.Connection, check_id: int, action: str) -> None:
        row = db.execute("SELECT status FROM checks WHERE id = ?", (check_id,)).fetchone()
        if row is None:
            raise StoreError(f"cannot {action} check {check_id}: there is no such check")
        if row[0] != "running":
            raise StoreError(f"cannot {action} check {check_id}: it is {row[0]}, not running")

    def _checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it, so deleted data leaves the WAL too.
        Best effort: a concurrent reader can keep old frames until the next checkpoint."""
        try:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error:
            pass


_COLUMNS = ("id, person_id, kiosk, stream, status, started_at, ended_at, reason, result_json, "
            "in_baseline")


def _check_dict(row: Sequence[Any]) -> dict[str, Any]:
    (check_id, person_id, kiosk, stream, status, started_at, ended_at, reason, result,
     in_baseline) = row
    return {"id": check_id, "person_id": person_id, "kiosk": kiosk, "stream": stream,
            "status": status, "started_at": started_at, "ended_at": ended_at, "reason": reason,
            "result": json.loads(result) if result is not None else None,
            "in_baseline": bool(in_baseline)}


def _person(person_id: object) -> None:
    if not isinstance(person_id, str) or not person_id:
        raise StoreError(f"person_id must be a non-empty string, not {person_id!r}")


def _make_private_dirs(folder: Path) -> None:
    """Create ``folder`` and missing parents mode 0700; an existing folder is left alone (it
    may be shared, like /tmp)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for made in reversed(missing):
        try:
            made.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(made, 0o700)  # mkdir's mode is filtered by the umask


def _narrow(path: Path) -> None:
    """Make an existing file ``path`` 0600 (best effort: a file of another user stays)."""
    try:
        if path.exists() and path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
    except OSError:
        pass


def _finite_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _time(x: object, name: str) -> float:
    if not _finite_number(x):
        raise StoreError(f"{name} must be a finite number of seconds since the epoch, not {x!r}")
    return float(x)  # type: ignore[arg-type]


def _plain(obj: Any) -> Any:
    """json default: numpy scalars and arrays (anything with .tolist()) as plain Python."""
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _dumps(obj: Any, what: str) -> str:
    """JSON text, refusing NaN and infinity (JSON has neither) with the path to the culprit."""
    try:
        return json.dumps(obj, allow_nan=False, default=_plain, separators=(",", ":"))
    except ValueError as e:
        where = _nonfinite_path(obj)
        at = f" at {where}" if where else ""
        raise StoreError(f"{what} contains NaN or infinity{at}, which JSON cannot hold; "
                         f"use None for a missing value") from e
    except (TypeError, RecursionError) as e:
        raise StoreError(f"{what} cannot be stored as JSON: {e}") from e


def _nonfinite_path(obj: Any, path: str = "") -> str | None:
    if hasattr(obj, "tolist") and callable(obj.tolist):
        obj = obj.tolist()
    if isinstance(obj, float):
        if math.isfinite(obj):
            return None
        return path or "(top level)"
    if isinstance(obj, dict):
        items: Iterator[tuple[str, Any]] = ((f"{path}.{k}" if path else str(k), v)
                                             for k, v in obj.items())
    elif isinstance(obj, list | tuple):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    for sub, value in items:
        found = _nonfinite_path(value, sub)
        if found:
            return found
    return None
