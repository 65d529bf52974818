"""The PostgreSQL store against a real server: what only it has (the URL and its password,
migrations under a lock, reconnecting after a restart). The behaviour both backends share
is tested on both in test_store.py."""

from __future__ import annotations

import os
import threading

import psycopg
import pytest

from wellmon.dashboard import store_postgres, store_sqlite
from wellmon.dashboard.store import SCHEMA_VERSION, Store, StoreError, open_store
from wellmon.dashboard.store_postgres import PostgresStore
from wellmon.postgres_server import TemporaryPostgres


def test_both_backends_have_the_same_migration_versions() -> None:
    assert len(store_postgres.MIGRATIONS) == len(store_sqlite.MIGRATIONS) == SCHEMA_VERSION


def test_a_postgresql_url_opens_the_postgresql_store(postgres_url: str) -> None:
    with open_store(postgres_url) as s:
        assert isinstance(s, PostgresStore) and isinstance(s, Store)
        with psycopg.connect(postgres_url) as db:
            assert db.execute("SELECT version FROM wellmon_schema").fetchall() == [
                (SCHEMA_VERSION,)]
            types = dict(db.execute("SELECT column_name, data_type FROM "
                                    "information_schema.columns WHERE column_name IN "
                                    "('result_json', 'window_json')").fetchall())
            assert types == {"result_json": "jsonb", "window_json": "jsonb"}


def test_dashboards_starting_together_migrate_once(postgres_url: str) -> None:
    opened: list[PostgresStore] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            opened.append(PostgresStore(postgres_url))
        except BaseException as e:  # noqa: BLE001 - collected for the assertion below
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(opened) == 4
    cid = opened[0].start_check("p", kiosk="k", stream="s", started_at=1.0)
    assert opened[3].get_check(cid)["status"] == "running"  # type: ignore[index]
    for s in opened:
        s.close()


def test_a_newer_schema_is_refused_naming_both_versions(postgres_url: str) -> None:
    PostgresStore(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("UPDATE wellmon_schema SET version = %s", (SCHEMA_VERSION + 2,))
    with pytest.raises(StoreError, match=rf"^the store {postgres_url} has schema version "
                                         rf"{SCHEMA_VERSION + 2}, newer than version "
                                         rf"{SCHEMA_VERSION} that this wellmon knows; "
                                         "upgrade wellmon"):
        PostgresStore(postgres_url)


def test_the_password_is_never_in_the_url(postgres: TemporaryPostgres) -> None:
    with_password = postgres.url.replace("wellmon@", f"wellmon:{postgres.password}@")
    with pytest.raises(StoreError) as refused:
        open_store(with_password)
    assert str(refused.value).startswith("store.url must not contain the password: put it "
                                         "in PGPASSWORD or a passfile")
    assert postgres.password not in str(refused.value)
    with pytest.raises(StoreError, match="must not contain the password"):
        open_store(postgres.url + "?password=x")


def test_a_wrong_password_and_an_unreachable_server_are_one_line(
        postgres: TemporaryPostgres, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = tmp_path / "pgpass"
    wrong.write_text(f"127.0.0.1:{postgres.port}:*:wellmon:not-the-password\n")
    wrong.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(wrong))
    with pytest.raises(StoreError) as refused:
        open_store(postgres.url)
    assert str(refused.value) == (
        f"the store {postgres.url} refused the password of user wellmon: set PGPASSWORD or "
        "the passfile (PGPASSFILE, default ~/.pgpass) to this user's password")
    closed = f"postgresql://wellmon@127.0.0.1:{_closed_port()}/wellmon"
    with pytest.raises(StoreError) as unreachable:
        open_store(closed)
    message = str(unreachable.value)
    assert message.startswith(f"cannot reach the store {closed}: ")
    assert message.endswith("is PostgreSQL running there and is store.url right?")
    assert "\n" not in message


def test_the_store_reconnects_after_the_server_restarts(tmp_path) -> None:
    """A hard stop (as a crash) between two writes: the call that finds the connection
    broken fails with a StoreError, the next one reconnects; nothing committed is lost."""
    with TemporaryPostgres() as server:
        os.environ["PGPASSFILE"] = str(server.passfile)
        try:
            s = PostgresStore(server.url)
            cid = s.start_check("p", kiosk="k", stream="s", started_at=1.0)
            s.add_windows(cid, [{"t_end": 1.0}])
            server.server_stop("immediate")
            server.server_start()
            try:
                s.add_windows(cid, [{"t_end": 1.5}])
            except StoreError as e:
                assert str(e).startswith(f"cannot add windows to check {cid} in the store "
                                         f"{server.url}: ")
            s.add_windows(cid, [{"t_end": 2.0}])
            windows = [w["t_end"] for w in s.get_check(cid)["windows"]]  # type: ignore[index]
            assert windows in ([1.0, 2.0], [1.0, 1.5, 2.0])
            s.close()
        finally:
            del os.environ["PGPASSFILE"]


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
