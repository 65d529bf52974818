"""A throwaway PostgreSQL server in a temporary folder, for the tests and `wellmon bench store`.

Debian's `postgresql` package puts `initdb` and `pg_ctl` under /usr/lib/postgresql/N/bin,
and they refuse to run as root: as root the server runs as the `postgres` user, on a data
folder that user owns. It listens on 127.0.0.1 only, on a free port, with its socket in the
folder. A database and a user with a random password are made; the password goes to a
passfile (mode 0600), never into the URL, as a site would keep it (docs/site.md).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SEARCH = "/usr/lib/postgresql/*/bin"
START_TIMEOUT_S = 60


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server programs here; the message says how to install them."""


def server_bin() -> Path:
    """The newest installed PostgreSQL's bin folder."""
    found = sorted(Path("/").glob(SEARCH.lstrip("/")),
                   key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    for folder in reversed(found):
        if (folder / "pg_ctl").is_file() and (folder / "initdb").is_file():
            return folder
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    raise PostgresUnavailable("no PostgreSQL server programs (initdb, pg_ctl) found in "
                              f"{SEARCH} or on PATH: apt-get install postgresql")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class TemporaryPostgres:
    """Start with `start()` (or `with`), stop with `stop()`; `url` names the database. As
    root, `folder` must be one the `postgres` user can reach (the default, under /tmp)."""

    folder: Path | None = None
    database: str = "wellmon"
    user: str = "wellmon"

    def __post_init__(self) -> None:
        self._own_folder = self.folder is None
        self.folder = Path(self.folder or tempfile.mkdtemp(prefix="wellmon-pg-"))
        self.data = self.folder / "data"
        self.socket_dir = self.folder / "socket"
        self.passfile = self.folder / "pgpass"
        self.password = secrets.token_urlsafe(18)
        self.port = _free_port()
        self.bin = server_bin()
        self._run_as = "postgres" if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def env(self) -> dict[str, str]:
        """What a client needs besides the URL: the passfile."""
        return {"PGPASSFILE": str(self.passfile)}

    def _cmd(self, *argv: str) -> list[str]:
        return ["runuser", "-u", self._run_as, "--", *argv] if self._run_as else list(argv)

    def _run(self, *argv: str, env: dict[str, str] | None = None) -> None:
        done = subprocess.run(self._cmd(*argv), capture_output=True, text=True, env=env)
        if done.returncode:
            raise PostgresUnavailable(f"{Path(argv[0]).name} failed (exit {done.returncode}): "
                                      f"{(done.stderr or done.stdout).strip()[-600:]}")

    def _hand_over(self, path: Path) -> None:
        if self._run_as:
            entry = pwd.getpwnam(self._run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self) -> TemporaryPostgres:
        for folder in (self.data, self.socket_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._hand_over(folder)
        self.folder.chmod(0o755)  # the server user walks into it
        pwfile = self.folder / "initpw"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        self._hand_over(pwfile)
        try:
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user,
                      "--pwfile", str(pwfile), "-A", "scram-sha-256", "-E", "UTF8",
                      "--no-instructions")
        finally:
            pwfile.unlink()
        self.passfile.write_text(f"127.0.0.1:{self.port}:*:{self.user}:{self.password}\n")
        self.passfile.chmod(0o600)
        self.server_start()
        self.create_database(self.database)
        return self

    def create_database(self, name: str) -> str:
        """A new empty database on this server; its URL (the passfile has the password)."""
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                  self.user, name, env={**os.environ, "PGPASSWORD": self.password})
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"

    def server_start(self) -> None:
        """Start the server on its data folder (again, after `server_stop`)."""
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} "
                   f"-k {self.socket_dir} -c fsync=on")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                  str(self.data / "server.log"), "-w", "-t", str(START_TIMEOUT_S), "start")

    def server_stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clean) or ``immediate`` (as a crash: no shutdown)."""
        subprocess.run(self._cmd(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode,
                                 "-w", "stop"), capture_output=True, text=True)

    def stop(self) -> None:
        self.server_stop("fast")
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> TemporaryPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
