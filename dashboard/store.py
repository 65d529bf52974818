"""Durable storage for kiosk wellness checks: who, when, the result, and the per-window series.

The dashboard server starts a check when a badge is scanned, appends the inference node's
per-window score messages while the person stands in front of the camera, then stores the
computed result. Every mutating call commits durably before it returns (SQLite fsyncs with
``synchronous=FULL``, PostgreSQL flushes its WAL), so a result the UI shows is already on
disk, and a check cut short by a crash is found as 'running' at the next start, where
:meth:`Store.mark_interrupted` records it as incomplete instead of losing it. The store
only ever sees score messages: no video or audio.

Storage sits behind the small :class:`Store` protocol, with two backends that share their
logic (dashboard/store_sql.py): the SQLite file beside a single dashboard
(dashboard/store_sqlite.py, the default) and a site's PostgreSQL database that several
dashboards share (dashboard/store_postgres.py, chosen by ``store.url``). Each check carries
the dashboard that runs it (its ``owner``, ``dashboard.instance``), and each dashboard keeps
a lease: at its start a dashboard closes only the checks it left running, and the checks
of a dashboard whose lease ran out are closed by a peer (:meth:`Store.close_abandoned`).

People's secrets (dashboard/person_secrets.py) live here too, only as scrypt hashes: the
hash of each person's PIN, their pending enrolment code's hash, and the count of wrong
tries with the lock they lead to (keyed by any ID tried, existing or not, so a lock holds
across kiosks and restarts and does not tell whether the ID exists). A check whose person
did not prove their secret is stored with ``in_baseline`` false: it never enters their
history or baseline.

Times are float seconds since the epoch. ``list_checks(day=...)`` takes the day in UTC.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

STATUSES = ("running", "complete", "incomplete", "failed")
FAIL_STATUSES = ("failed", "incomplete")
INTERRUPTED = "interrupted: the dashboard stopped during the check"
BUSY_TIMEOUT_MS = 5000
DAY_S = 86400.0
DEFAULT_OWNER = "dashboard"
AUDIT_ACTIONS = ("history", "read", "export", "delete", "secret_reset")
"""What the audit trail records about a person's data: their history shown at a kiosk, a
read by an operator, an export, the deletion, a secret reset."""


class StoreError(RuntimeError):
    """Anything the store refuses or cannot do; the message says what and where."""


SCHEMA_VERSION = 5
"""The schema version this code writes. Each backend has its migration list with the same
numbers (dashboard/store_sqlite.py, dashboard/store_postgres.py); migration i brings a
database from version i to i + 1."""


def schema_version() -> int:
    """The schema version this code writes."""
    return SCHEMA_VERSION


@runtime_checkable
class Store(Protocol):
    """What the dashboard needs from storage. Every mutating method is durable on return."""

    def start_check(self, person_id: str, *, kiosk: str, stream: str,
                    started_at: float, in_baseline: bool = True) -> int: ...

    def add_windows(self, check_id: int, windows: list[dict[str, Any]]) -> None: ...

    def add_windows_of(self, windows_by_check: dict[int, list[dict[str, Any]]]) -> None: ...

    def finish_check(self, check_id: int, result: dict[str, Any],
                     ended_at: float) -> dict[str, Any]: ...

    def fail_check(self, check_id: int, reason: str, ended_at: float,
                   status: str = "failed") -> None: ...

    def mark_interrupted(self, reason: str = INTERRUPTED) -> int: ...

    def renew_lease(self, now: float, lease_s: float,
                    kiosk_stream: str | None = None) -> None: ...

    def kiosk_streams(self) -> set[str]: ...

    def close_abandoned(self, now: float) -> dict[str, int]: ...

    def get_check(self, check_id: int, with_windows: bool = True) -> dict[str, Any] | None: ...

    def list_checks(self, *, day: dt.date | None = None, person_id: str | None = None,
                    status: str | None = None, limit: int = 500) -> list[dict[str, Any]]: ...

    def person_history(self, person_id: str, *, limit: int = 20,
                       before: float | None = None) -> list[dict[str, Any]]: ...

    def delete_person(self, person_id: str, *, role: str = "admin", origin: str | None = None,
                      now: float | None = None) -> int: ...

    def record_audit(self, action: str, person_id: str | None, *, role: str,
                     origin: str | None, now: float) -> None: ...

    def audit_of(self, person_id: str | None, limit: int = 200) -> list[dict[str, Any]]: ...

    def export_person(self, person_id: str) -> dict[str, Any] | None: ...

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

    on_checks_changed: Callable[[], None] | None

    def listen_for_changes(self, changed: Callable[[], None],
                           stop: threading.Event) -> None: ...

    def close(self) -> None: ...


def open_store(location: str | Path, *, keep_series_days: float = 30.0,
               owner: str = DEFAULT_OWNER) -> Store:
    """Open the store at `location`: a ``postgresql://`` URL (dashboard/store_postgres.py),
    else an SQLite file, created with its parent directories; `~` is expanded. `owner`
    names the dashboard writing through it (`dashboard.instance`)."""
    from wellmon.dashboard.store_postgres import PostgresStore, is_postgres_url

    if is_postgres_url(str(location)):
        return PostgresStore(str(location), keep_series_days=keep_series_days, owner=owner)
    from wellmon.dashboard.store_sqlite import SQLiteStore, make_private_dirs

    path = Path(location).expanduser()
    try:
        make_private_dirs(path.parent)
    except OSError as e:
        raise StoreError(f"cannot create the directory for the store {path}: {e}") from e
    return SQLiteStore(path, keep_series_days=keep_series_days, owner=owner)


def _person(person_id: object) -> None:
    if not isinstance(person_id, str) or not person_id:
        raise StoreError(f"person_id must be a non-empty string, not {person_id!r}")


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
    """JSON text, refusing NaN and infinity (JSON has neither) with the path to the culprit.
    A NUL character in a string (which PostgreSQL's JSONB cannot hold) becomes U+FFFD, the
    replacement character, on every backend alike."""
    try:
        text = json.dumps(obj, allow_nan=False, default=_plain, separators=(",", ":"))
        if "\\u0000" in text:
            text = json.dumps(_without_nul(obj), allow_nan=False, default=_plain,
                              separators=(",", ":"))
    except ValueError as e:
        where = _nonfinite_path(obj)
        at = f" at {where}" if where else ""
        raise StoreError(f"{what} contains NaN or infinity{at}, which JSON cannot hold; "
                         f"use None for a missing value") from e
    except (TypeError, RecursionError) as e:
        raise StoreError(f"{what} cannot be stored as JSON: {e}") from e
    return text


def _without_nul(obj: Any) -> Any:
    if hasattr(obj, "tolist") and callable(obj.tolist):
        obj = obj.tolist()
    if isinstance(obj, str):
        return obj.replace("\x00", "\ufffd")
    if isinstance(obj, dict):
        return {_without_nul(k) if isinstance(k, str) else k: _without_nul(v)
                for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_without_nul(v) for v in obj]
    return obj


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
