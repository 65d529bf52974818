"""The SQLite store: one file beside the dashboard, the embedded default for a single kiosk.

WAL and ``synchronous=FULL``: every commit is fsynced before the call returns. The file is
private: the database, its WAL and shared-memory files are created mode 0600 (an existing
file is narrowed to 0600 at open) and a folder the store creates is 0700. Deleted rows are
overwritten (``secure_delete``) and the WAL checkpointed, so personal data does not linger.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from wellmon.dashboard.store import BUSY_TIMEOUT_MS, DEFAULT_OWNER, SCHEMA_VERSION, StoreError
from wellmon.dashboard.store_sql import SQLStore

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
    # v4: which dashboard runs each check, and each dashboard's lease (with its kiosk's
    # stream), so that several dashboards on one database close only their own and their
    # dead peers' checks, and all keep every kiosk's stream from their viewers.
    (
        "ALTER TABLE checks ADD COLUMN owner TEXT",
        """CREATE TABLE dashboard_leases (
            owner TEXT PRIMARY KEY,
            lease_until REAL NOT NULL,
            kiosk_stream TEXT
        )""",
        "CREATE INDEX checks_owner_running ON checks(owner) WHERE status = 'running'",
    ),
    # v5: the audit trail: who read, exported, deleted or reset a person's data, and when.
    (
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            action TEXT NOT NULL,
            person_id TEXT,
            role TEXT NOT NULL,
            origin TEXT
        )""",
        "CREATE INDEX audit_person ON audit(person_id, at)",
    ),
]
assert len(MIGRATIONS) == SCHEMA_VERSION, "store.SCHEMA_VERSION and the SQLite migrations"


class SQLiteStore(SQLStore):
    """The SQLite store: one file, WAL, fsync on every commit.

    One connection, used from the thread that opened it only (the dashboard server's asyncio
    thread); a call from another thread raises StoreError. Calls block for the commit's fsync,
    a few milliseconds. Other processes may read the file concurrently (WAL); only one
    dashboard should write it, since :meth:`mark_interrupted` treats every running check as
    its own (a site with several dashboards uses PostgreSQL). Deleted rows are overwritten
    (``secure_delete``) so personal data does not linger.
    """

    def __init__(self, path: str | Path, *, keep_series_days: float = 30.0,
                 owner: str = DEFAULT_OWNER) -> None:
        super().__init__(keep_series_days, owner)
        self.path = Path(path).expanduser()
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
        if found > len(MIGRATIONS):
            raise StoreError(
                f"the store {self.path} has schema version {found}, newer than version "
                f"{len(MIGRATIONS)} that this wellmon knows; upgrade wellmon to open it")
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
        target = len(MIGRATIONS)
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

    def __str__(self) -> str:
        return str(self.path)

    def pragmas(self) -> dict[str, Any]:
        """The settings in effect on this connection, for diagnostics and tests."""
        with self._read() as db:
            return {name: db.execute(f"PRAGMA {name}").fetchone()[0]
                    for name in ("journal_mode", "synchronous", "foreign_keys",
                                 "busy_timeout", "secure_delete", "user_version")}

    def _after_delete(self) -> None:
        """Copy the WAL into the database and truncate it, so deleted data leaves the WAL too.
        Best effort: a concurrent reader can keep old frames until the next checkpoint."""
        try:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error:
            pass


def make_private_dirs(folder: Path) -> None:
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
