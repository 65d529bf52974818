"""CURVE encryption and authentication of the ZeroMQ links, for links between hosts.

`wellmon keys DIR` makes a key directory: a server pair (`server.key`,
`server.key_secret`), a client pair (`client.key`, `client.key_secret`) and
`authorized/` with the client public keys that servers accept. Every wellmon process
given `wire.curve_dir` encrypts its ZeroMQ sockets: a socket that binds is a CURVE
server (and its process checks clients against `authorized/` through a ZAP
authenticator), a socket that connects is a client. A peer without an authorized key
gets no connection, so it receives nothing. Copy the directory to every host; give a
host only the files it needs (a capture host needs no server secret). Without
`wire.curve_dir` only loopback, ipc:// and inproc:// addresses are allowed (unless
`wire.insecure`): `streamer/wire/exposure.py`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from wellmon.config import Config, ConfigError

AUTHORIZED = "authorized"


def make_keys(directory: Path) -> Path:
    """A new key directory (refuses to overwrite existing keys)."""
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.glob("*.key_secret")):
        raise ConfigError(f"{directory} already holds keys; remove them first")
    zmq.auth.create_certificates(directory, "server")
    zmq.auth.create_certificates(directory, "client")
    (directory / AUTHORIZED).mkdir(exist_ok=True)
    shutil.copy(directory / "client.key", directory / AUTHORIZED / "client.key")
    for secret in directory.glob("*.key_secret"):
        secret.chmod(0o600)
    return directory


def _load(directory: Path, name: str, secret: bool) -> tuple[bytes, bytes | None]:
    path = directory / (f"{name}.key_secret" if secret else f"{name}.key")
    if not path.is_file():
        raise ConfigError(f"wire.curve_dir: key file not found: {path}")
    try:
        public, private = zmq.auth.load_certificate(path)
    except (ValueError, OSError) as exc:
        raise ConfigError(f"wire.curve_dir: cannot read {path}: {exc}") from None
    return public, private


class Curve:
    """Applies the configured keys to sockets; `None` curve_dir leaves links in the clear
    (which `routes.attach` allows on loopback only, reading `config`)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.directory = (Path(config.wire.curve_dir).expanduser()
                          if config.wire.curve_dir else None)
        self.authenticator: ThreadAuthenticator | None = None

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    def secure(self, sock: zmq.Socket, bind: bool) -> None:
        """Make ``sock`` a CURVE server (``bind``) or client before it binds or connects."""
        if self.directory is None:
            return
        if bind:
            public, secret = _load(self.directory, "server", secret=True)
            self._authenticate(sock.context)
            sock.curve_secretkey = secret
            sock.curve_publickey = public
            sock.curve_server = True
        else:
            server_public, _ = _load(self.directory, "server", secret=False)
            public, secret = _load(self.directory, "client", secret=True)
            sock.curve_secretkey = secret
            sock.curve_publickey = public
            sock.curve_serverkey = server_public

    def _authenticate(self, context: zmq.Context) -> None:
        """One ZAP authenticator per process: clients must hold an authorized key."""
        if self.authenticator is not None:
            return
        authorized = self.directory / AUTHORIZED
        if not authorized.is_dir():
            raise ConfigError(f"wire.curve_dir: no {authorized} directory of client keys")
        self.authenticator = ThreadAuthenticator(context)
        self.authenticator.start()
        self.authenticator.configure_curve(domain="*", location=str(authorized))

    def close(self) -> None:
        if self.authenticator is not None:
            self.authenticator.stop()
            self.authenticator = None
