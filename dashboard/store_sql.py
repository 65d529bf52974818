"""The store's logic in the SQL that SQLite and PostgreSQL both speak: one place for what a
check, a window, a secret or a try means, so that the two backends cannot drift apart.

A backend (dashboard/store_sqlite.py, dashboard/store_postgres.py) opens its connection,
runs its migrations and gives `_write` and `_read`: transactions whose ``execute`` takes
``?`` placeholders and returns a cursor (``fetchone``, ``fetchall``, ``rowcount``). Result and
window JSON goes in as text; a backend with a JSON column type (PostgreSQL's JSONB) may hand
it back parsed, which `_json_value` accepts.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Self

from wellmon.dashboard.store import (
    AUDIT_ACTIONS,
    DAY_S,
    FAIL_STATUSES,
    INTERRUPTED,
    STATUSES,
    StoreError,
    _dumps,
    _finite_number,
    _person,
    _time,
)


class SQLStore:
    """Every `Store` method, on a backend's transactions (module doc)."""

    keep_series_days: float
    _db: Any
    owner: str
    """The dashboard this store writes for: its checks carry it, its lease is renewed."""
    lock_rows = ""
    """Appended to a SELECT whose row the transaction then changes (PostgreSQL: FOR UPDATE;
    SQLite's write transactions hold the whole database already)."""

    def __init__(self, keep_series_days: float, owner: str) -> None:
        """The settings both backends take; the backend then opens ``_db``."""
        if not keep_series_days >= 0:
            raise StoreError(f"keep_series_days must be >= 0, not {keep_series_days!r}")
        self.keep_series_days = float(keep_series_days)
        self.owner = str(owner)
        self._db = None

    def _write(self, what: str) -> AbstractContextManager[Any]:
        """One write transaction: durable on success, rolled back on any error, a backend's
        error raised as StoreError saying what could not be done."""
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Any]:
        """One read transaction, so multi-statement reads see one snapshot."""
        raise NotImplementedError

    def _after_delete(self) -> None:
        """Personal data was deleted: make sure no copy lingers where the backend can help."""

    def close(self) -> None:
        """Close the connection (idempotent; SQLite then checkpoints and removes its WAL)."""
        if self._db is not None:
            db, self._db = self._db, None
            db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    on_checks_changed: Callable[[], None] | None = None
    """Called after a check started, ended or was deleted through this store (the
    dashboard's operator pages refresh)."""

    def _checks_changed(self) -> None:
        """A check changed: tell this dashboard, and the others through the backend."""
        self._announce()
        if self.on_checks_changed is not None:
            self.on_checks_changed()

    def _announce(self) -> None:
        """Tell the other dashboards on this store that a check changed (PostgreSQL:
        NOTIFY); nothing where only one dashboard writes (SQLite)."""

    def listen_for_changes(self, changed: Callable[[], None], stop: threading.Event) -> None:
        """Call ``changed`` whenever another dashboard changes a check, until ``stop``; run
        in a thread of its own. Nothing to hear where only one dashboard writes."""

    def _serialise(self, db: Any, key: str) -> None:
        """Make read-modify-writes of ``key`` in this transaction wait for each other (a
        no-op where write transactions are already one at a time)."""

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
            _add_person(db, person_id, started_at)
            (check_id,) = db.execute(
                "INSERT INTO checks (person_id, kiosk, stream, status, started_at, in_baseline, "
                "owner) VALUES (?, ?, ?, 'running', ?, ?, ?) RETURNING id",
                (person_id, str(kiosk), str(stream), started_at, 1 if in_baseline else 0,
                 self.owner)).fetchone()
        self._checks_changed()
        return int(check_id)

    def add_windows(self, check_id: int, windows: list[dict[str, Any]]) -> None:
        """Append score windows to a running check, all or none; seq continues from the last."""
        self.add_windows_of({check_id: windows})

    def add_windows_of(self, windows_by_check: dict[int, list[dict[str, Any]]]) -> None:
        """Append windows to several running checks in one transaction, all or none: the
        windows that arrive together from many kiosks cost one commit (group commit)."""
        rows = []
        for check_id, windows in windows_by_check.items():
            for i, window in enumerate(windows):
                if not isinstance(window, dict):
                    raise StoreError(f"window {i} for check {check_id} is a "
                                     f"{type(window).__name__}, not a dict")
                t_end = window.get("t_end")
                t_end = float(t_end) if _finite_number(t_end) else None
                rows.append((check_id, i, t_end,
                             _dumps(window, f"window {i} for check {check_id}")))
        if not rows:
            return
        checks = sorted({check_id for check_id, *_ in rows})  # one lock order: no deadlock
        what = (f"add windows to check {checks[0]} in" if len(checks) == 1
                else f"add windows to {len(checks)} checks in")
        with self._write(what) as db:
            first = {}
            for check_id in checks:
                self._require_running(db, check_id, "add windows to")
                first[check_id] = db.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM "
                                             "check_windows WHERE check_id = ?",
                                             (check_id,)).fetchone()[0]
            db.executemany(
                "INSERT INTO check_windows (check_id, seq, t_end, window_json) VALUES (?, ?, ?, ?)",
                [(check_id, first[check_id] + i, t_end, text)
                 for check_id, i, t_end, text in rows])

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
        self._checks_changed()
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
        self._checks_changed()

    def mark_interrupted(self, reason: str = INTERRUPTED) -> int:
        """At startup: every check this dashboard (`owner`) left 'running' when it stopped
        becomes 'incomplete', and so do running checks of no owner (stored before owners
        were). Other dashboards' running checks are theirs (`close_abandoned`).

        Its ended_at stays NULL: when it really stopped is unknown. Returns how many.
        """
        with self._write("mark interrupted checks in") as db:
            cur = db.execute("UPDATE checks SET status = 'incomplete', reason = ? "
                             "WHERE status = 'running' AND (owner = ? OR owner IS NULL)",
                             (str(reason), self.owner))
        if cur.rowcount:
            self._checks_changed()
        return cur.rowcount

    def renew_lease(self, now: float, lease_s: float, kiosk_stream: str | None = None) -> None:
        """This dashboard is alive until ``now + lease_s``; renew well before that.
        ``kiosk_stream``: its kiosk's camera, private on every dashboard of the store."""
        now = _time(now, "now")
        with self._write("renew the lease in") as db:
            db.execute("INSERT INTO dashboard_leases (owner, lease_until, kiosk_stream) "
                       "VALUES (?, ?, ?) ON CONFLICT (owner) DO UPDATE SET "
                       "lease_until = excluded.lease_until, kiosk_stream = excluded.kiosk_stream",
                       (self.owner, now + float(lease_s), kiosk_stream))

    def kiosk_streams(self) -> set[str]:
        """The kiosk cameras of the dashboards holding a lease on this store (the dead
        ones' too, until a peer closes them): streams no viewer may see, wherever they are
        heard."""
        with self._read() as db:
            rows = db.execute("SELECT kiosk_stream FROM dashboard_leases "
                              "WHERE kiosk_stream IS NOT NULL").fetchall()
        return {stream for (stream,) in rows}

    def close_abandoned(self, now: float) -> dict[str, int]:
        """The running checks of dashboards whose lease ran out before ``now`` (they died or
        lost the database) become 'incomplete', saying which dashboard stopped; their leases
        are dropped. Returns how many checks, by dashboard."""
        now = _time(now, "now")
        closed: dict[str, int] = {}
        with self._write("close abandoned checks in") as db:
            expired = [owner for (owner,) in db.execute(
                f"SELECT owner FROM dashboard_leases WHERE lease_until < ? AND owner != ? "
                f"ORDER BY owner{self.lock_rows}", (now, self.owner)).fetchall()]
            for owner in expired:
                closed[owner] = db.execute(
                    "UPDATE checks SET status = 'incomplete', reason = ? "
                    "WHERE status = 'running' AND owner = ?",
                    (f"interrupted: dashboard {owner} stopped during the check",
                     owner)).rowcount
                db.execute("DELETE FROM dashboard_leases WHERE owner = ?", (owner,))
        closed = {owner: n for owner, n in closed.items() if n}
        if closed:
            self._checks_changed()
        return closed

    def delete_person(self, person_id: str, *, role: str = "admin", origin: str | None = None,
                      now: float | None = None) -> int:
        """Remove a person with all their checks and windows; returns how many checks went.
        Their entries in the audit trail lose their ID, and one entry, without it, says that
        a deletion happened, who asked and when."""
        now = _time(time.time() if now is None else now, "now")
        with self._write(f"delete person {person_id!r} from") as db:
            n = db.execute("SELECT COUNT(*) FROM checks WHERE person_id = ?",
                           (person_id,)).fetchone()[0]
            db.execute("DELETE FROM persons WHERE id = ?", (person_id,))
            db.execute("DELETE FROM secret_attempts WHERE person_id = ?", (person_id,))
            db.execute("UPDATE audit SET person_id = NULL WHERE person_id = ?", (person_id,))
            _audit(db, "delete", None, role, origin, now)
        self._after_delete()
        self._checks_changed()
        return int(n)

    def record_audit(self, action: str, person_id: str | None, *, role: str,
                     origin: str | None, now: float) -> None:
        """One entry of the audit trail (`store.AUDIT_ACTIONS`)."""
        with self._write("record an audit entry in") as db:
            _audit(db, action, person_id, role, origin, _time(now, "now"))

    def audit_of(self, person_id: str | None, limit: int = 200) -> list[dict[str, Any]]:
        """The audit trail of a person's data, newest first; None: the entries that name no
        one (deletions, and the entries of people since deleted)."""
        which = "person_id IS NULL" if person_id is None else "person_id = ?"
        with self._read() as db:
            rows = db.execute(f"SELECT at, action, role, origin FROM audit WHERE {which} "
                              "ORDER BY at DESC, id DESC LIMIT ?",
                              (*(() if person_id is None else (person_id,)),
                               int(limit))).fetchall()
        return [{"at": at, "action": action, "role": role, "origin": origin}
                for at, action, role, origin in rows]

    def export_person(self, person_id: str) -> dict[str, Any] | None:
        """Everything stored about a person, or None if nothing is: their record, every
        check with its windows, whether a secret and a code are set (never their hashes,
        which are credentials), their wrong tries, and the audit trail of their data."""
        with self._read() as db:
            known = db.execute("SELECT created_at FROM persons WHERE id = ?",
                               (person_id,)).fetchone()
            ids = [i for (i,) in db.execute("SELECT id FROM checks WHERE person_id = ? "
                                            "ORDER BY started_at, id", (person_id,))]
        if known is None:
            return None
        status = self.person_status(person_id, time.time())
        return {"person": person_id, "created_at": known[0],
                "secret": {"set": status["secret_set"], "set_at": status["secret_set_at"]},
                "enrolment_code": {"issued_at": status["code_issued_at"],
                                   "expires_at": status["code_expires_at"]},
                "wrong_tries": {"failures": status["failures"],
                                "locked_until": status["locked_until"]},
                "checks": [self.get_check(i) for i in ids],
                "audit": self.audit_of(person_id, limit=1_000_000)}

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
            self._after_delete()
        return n

    # -- person secrets ---------------------------------------------------------------------

    def set_secret(self, person_id: str, secret_hash: str, now: float) -> None:
        """Set (or replace) a person's secret hash; the person is created if new."""
        _person(person_id)
        now = _time(now, "now")
        with self._write("set a secret in") as db:
            self._upsert_secret(db, person_id, secret_hash, now)

    def _upsert_secret(self, db: Any, person_id: str, secret_hash: str,
                       now: float) -> None:
        if not isinstance(secret_hash, str) or not secret_hash:
            raise StoreError("a secret hash must be a non-empty string")
        _add_person(db, person_id, now)
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
        self._after_delete()
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
            _add_person(db, person_id, now)
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
            self._serialise(db, person_id)
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
                "checks": int(checks[0]), "checks_in_baseline": int(checks[1]),
                "secret_set": secret is not None, "secret_set_at": secret[0] if secret else None,
                "code_issued_at": code[0] if code else None,
                "code_expires_at": code[1] if code else None,
                "failures": tries[0] if tries and (tries[1] is None or tries[1] > now) else 0,
                "locked_until": locked}

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
                check["windows"] = [_json_value(value) for (value,) in db.execute(
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
                 "result": _json_value(r)} for i, k, s, e, r in rows]

    # -- helpers ----------------------------------------------------------------------------

    def _require_running(self, db: Any, check_id: int, action: str) -> None:
        row = db.execute(f"SELECT status FROM checks WHERE id = ?{self.lock_rows}",
                         (check_id,)).fetchone()
        if row is None:
            raise StoreError(f"cannot {action} check {check_id}: there is no such check")
        if row[0] != "running":
            raise StoreError(f"cannot {action} check {check_id}: it is {row[0]}, not running")


_COLUMNS = ("id, person_id, kiosk, stream, status, started_at, ended_at, reason, result_json, "
            "in_baseline, owner")


def _audit(db: Any, action: str, person_id: str | None, role: str, origin: str | None,
           now: float) -> None:
    if action not in AUDIT_ACTIONS:
        raise StoreError(f"audit action must be one of {AUDIT_ACTIONS}, not {action!r}")
    db.execute("INSERT INTO audit (at, action, person_id, role, origin) VALUES (?, ?, ?, ?, ?)",
               (now, action, person_id, str(role), None if origin is None else str(origin)))


def _add_person(db: Any, person_id: str, now: float) -> None:
    db.execute("INSERT INTO persons (id, created_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
               (person_id, now))


def _json_value(value: Any) -> Any:
    """A JSON column's value as Python: text parsed (SQLite), parsed values as they are."""
    return json.loads(value) if isinstance(value, str) else value


def _check_dict(row: Sequence[Any]) -> dict[str, Any]:
    (check_id, person_id, kiosk, stream, status, started_at, ended_at, reason, result,
     in_baseline, owner) = row
    return {"id": check_id, "person_id": person_id, "kiosk": kiosk, "stream": stream,
            "status": status, "started_at": started_at, "ended_at": ended_at, "reason": reason,
            "result": _json_value(result), "in_baseline": bool(in_baseline), "dashboard": owner}
