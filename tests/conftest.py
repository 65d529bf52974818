"""Shared fixtures: generated clips, real wellmon processes on free loopback ports, a real
PostgreSQL server."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROLE_TOKENS, TOKEN
from wellmon.harness import Processes, loopback_env
from wellmon.postgres_server import TemporaryPostgres
from wellmon.streamer.synthetic import ClipSpec, make_clip

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
_databases = itertools.count()


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A 12 s 320×240 talking-face clip with known speech intervals."""
    path = tmp_path_factory.mktemp("clips") / "talking.mp4"
    spec = ClipSpec(duration_s=12.0, width=320, height=240, heart_rate_bpm=80.0,
                    blink_times_s=(3.0, 8.0),
                    speech=((1.0, "Hello, this is wellmon."), (7.0, "One more sentence.")),
                    preset="ultrafast")
    truth = make_clip(path, spec)
    return path, truth


@pytest.fixture()
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture()
def wellmon_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose sockets are free loopback ports and whose token is known."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WELLMON_")}
    env.update(loopback_env(TOKEN, tmp_path))
    env.update(ROLE_TOKENS)
    return env


@pytest.fixture()
def processes(wellmon_env: dict[str, str], tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(wellmon_env, tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture(scope="session")
def postgres() -> Iterator[TemporaryPostgres]:
    """One PostgreSQL server for the session, on 127.0.0.1 and a free port (Debian's
    postgresql package: `make test` installs it)."""
    server = TemporaryPostgres().start()
    yield server
    server.stop()


@pytest.fixture()
def postgres_url(postgres: TemporaryPostgres, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new empty database for this test; its password in the passfile the environment
    names, as a site keeps it."""
    monkeypatch.setenv("PGPASSFILE", str(postgres.passfile))
    return postgres.create_database(f"test_{os.getpid()}_{next(_databases)}")
