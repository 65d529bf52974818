"""The PostgreSQL store: one database that a site's dashboards share (docs/site.md).

Chosen by ``store.url: postgresql://user@host:port/database`` (or ``WELLMON_STORE_URL``).
The password never appears in the URL, the config or a message: libpq reads it from
``PGPASSWORD`` or a passfile (``PGPASSFILE``, default ``~/.pgpass``); a URL that carries one
is refused. Messages name the store by its URL, which therefore holds no secret.

Every write is one transaction, committed (``synchronous_commit`` on: the WAL is flushed)
before the call returns. Results and windows are JSONB: PostgreSQL keeps their values, not
their text (a number written as ``1e+300`` comes back as its digits, key order is its own).
The migrations have the SQLite backend's version numbers and run under an advisory lock, so
dashboards starting together cannot race. A connection that broke (the server restarted) is
opened again at the next call; the call that found it broken fails with a StoreError.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

from wellmon.dashboard import store_sqlite
from wellmon.dashboard.store import DEFAULT_OWNER, SCHEMA_VERSION, StoreError
from wellmon.dashboard.store_sql import SQLStore

URL_SCHEMES = ("postgresql", "postgres")
CONNECT_TIMEOUT_S = 5
MIGRATION_LOCK = 0x77656C6C  # pg_advisory_xact_lock key: "well"
CHANNEL = "wellmon_checks"
"""The NOTIFY channel on which a dashboard says that one of its checks changed."""
LISTEN_TURN_S = 1.0

DIALECT = (
    (r"\bid INTEGER PRIMARY KEY\b", "id BIGSERIAL PRIMARY KEY"),
    (r"\bcheck_id INTEGER\b", "check_id BIGINT"),
    (r"\b(result_json|window_json) TEXT\b", r"\1 JSONB"),
    (r"\bREAL\b", "DOUBLE PRECISION"),
)
"""SQLite's column types as PostgreSQL's: row ids as sequences, JSON as JSONB, REAL as
double precision. Everything else in the migrations is SQL both speak."""


def _to_postgres(sql: str) -> str:
    for pattern, replacement in DIALECT:
        sql = re.sub(pattern, replacement, sql)
    return sql


def _translated(steps: Sequence[object]) -> list[tuple[str, ...]]:
    """The SQLite migrations in PostgreSQL's types: one schema, one list of versions, so the
    two backends cannot drift apart. A migration written as Python (SQLite only) needs a
    PostgreSQL twin here first."""
    out = []
    for version, step in enumerate(steps):
        if callable(step):
            raise TypeError(f"SQLite migration {version + 1} is Python code: give "
                            "store_postgres.py its PostgreSQL form")
        out.append(tuple(_to_postgres(sql) for sql in step))  # type: ignore[attr-defined]
    return out


MIGRATIONS = _translated(store_sqlite.MIGRATIONS)
"""Migration i brings the schema from version i to i + 1, as dashboard/store_sqlite.py's."""
assert len(MIGRATIONS) == SCHEMA_VERSION, "store.SCHEMA_VERSION and the PostgreSQL migrations"


def is_postgres_url(location: str) -> bool:
    return urlsplit(str(location)).scheme in URL_SCHEMES


def check_url(url: str) -> str:
    """The URL if it names a PostgreSQL database without a password, else StoreError."""
    parts = urlsplit(url)
    if parts.scheme not in URL_SCHEMES:
        raise StoreError(f"store.url {url!r} is not a postgresql:// URL")
    if parts.password is not None or "password" in parse_qs(parts.query):
        raise StoreError("store.url must not contain the password: put it in PGPASSWORD or "
                         "a passfile (PGPASSFILE, default ~/.pgpass), where libpq reads it")
    if not parts.hostname or not parts.path.strip("/"):
        raise StoreError(f"store.url {url} must name a host and a database: "
                         "postgresql://user@host:5432/database")
    return url


class _Transaction:
    """A connection in a transaction, taking the shared SQL's ``?`` placeholders."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(_placeholders(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(_placeholders(sql), rows)


@functools.lru_cache(maxsize=256)
def _placeholders(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresStore(SQLStore):
    """The PostgreSQL store (module doc). One connection, used from one thread at a time."""

    lock_rows = " FOR UPDATE"

    def __init__(self, url: str, *, keep_series_days: float = 30.0,
                 owner: str = DEFAULT_OWNER) -> None:
        super().__init__(keep_series_days, owner)
        self.url = check_url(url)
        self._db = self._connect()
        try:
            self._migrate()
            self.apply_retention(time.time())
        except BaseException:
            self.close()
            raise

    def __str__(self) -> str:
        return self.url

    # -- connection -------------------------------------------------------------------------

    def _connect(self) -> Any:
        try:
            import psycopg
        except ModuleNotFoundError:
            raise StoreError(f"store.url {self.url} needs psycopg, which is not installed: "
                             "pip install 'wellmon[site]'") from None
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                   application_name="wellmon-dashboard")
        except psycopg.OperationalError as e:
            raise StoreError(_connect_error(self.url, e)) from None

    @property
    def _conn(self) -> Any:
        if self._db is None:
            raise StoreError(f"the store {self.url} is closed")
        if self._db.broken or self._db.closed:
            self._db = self._connect()
        return self._db

    def _migrate(self) -> None:
        """Each missing migration in its own transaction, under the advisory lock."""
        target = len(MIGRATIONS)
        while True:
            with self._write("migrate the schema of") as db:
                db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
                db.execute("CREATE TABLE IF NOT EXISTS wellmon_schema (version INTEGER NOT NULL)")
                row = db.execute("SELECT version FROM wellmon_schema").fetchone()
                version = row[0] if row else 0
                if version > target:
                    raise StoreError(
                        f"the store {self.url} has schema version {version}, newer than "
                        f"version {target} that this wellmon knows; upgrade wellmon to open it")
                if version == target:
                    return
                for sql in MIGRATIONS[version]:
                    db.execute(sql)
                if row:
                    db.execute("UPDATE wellmon_schema SET version = ?", (version + 1,))
                else:
                    db.execute("INSERT INTO wellmon_schema (version) VALUES (?)", (version + 1,))

    @contextmanager
    def _write(self, what: str) -> Iterator[_Transaction]:
        import psycopg

        try:
            with self._conn.transaction():
                yield _Transaction(self._db)
        except psycopg.Error as e:
            raise StoreError(f"cannot {what} the store {self.url}: {_reason(e)}") from None

    @contextmanager
    def _read(self) -> Iterator[_Transaction]:
        import psycopg

        try:
            with self._conn.transaction():
                self._db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                yield _Transaction(self._db)
        except psycopg.Error as e:
            raise StoreError(f"cannot read the store {self.url}: {_reason(e)}") from None

    def _announce(self) -> None:
        """NOTIFY the dashboards listening (`listen_for_changes`); best effort: a peer
        that misses it sees the change at its operator page's next refresh."""
        import psycopg

        try:
            self._conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self.owner))
        except (psycopg.Error, StoreError):
            pass

    def listen_for_changes(self, changed: Callable[[], None], stop: threading.Event) -> None:
        """LISTEN on a connection of its own and call ``changed`` for every other
        dashboard's NOTIFY until ``stop``; a lost connection is opened again a second
        later (a change meanwhile is seen at the next refresh)."""
        import psycopg

        while not stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True,
                                     connect_timeout=CONNECT_TIMEOUT_S) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not stop.is_set():
                        for note in conn.notifies(timeout=LISTEN_TURN_S):
                            if note.payload != self.owner:
                                changed()
            except psycopg.Error:
                stop.wait(1.0)

    def _serialise(self, db: Any, key: str) -> None:
        """Read-modify-write of one key (a person's tries): one transaction at a time."""
        db.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (key,))


def _reason(error: Exception) -> str:
    """The first line of a driver error: what went wrong, without the query's parameters."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _connect_error(url: str, error: Exception) -> str:
    text = str(error)
    if "password authentication failed" in text or "no password supplied" in text:
        return (f"the store {url} refused the password of user "
                f"{urlsplit(url).username or '(default)'}: set PGPASSWORD or the passfile "
                "(PGPASSFILE, default ~/.pgpass) to this user's password")
    if "does not exist" in text and "database" in text:
        return (f"the store {url}: the database does not exist; create it "
                "(createdb, docs/site.md)")
    return (f"cannot reach the store {url}: {_reason(error)}; is PostgreSQL running there and "
            "is store.url right?")
