"""Listening addresses that something else already holds, named by the setting that moves them.

A second `wellmon run`, or any program on `dashboard.port`, used to end in a child's
traceback. `wellmon run` now looks at its listeners before it spawns anything
(`check_free`), and the places that bind (`routes.attach`, the dashboard server) turn a
failure into the same one-line `ConfigError` (`cannot_listen`), for the moment between the
look and the bind, and for the processes started on their own.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from wellmon.config import ConfigError

DASHBOARD_PORT = "dashboard.port, flag --port"
"""The dashboard's port as a message names it: `wellmon run` and `wellmon dashboard` both
take --port."""


@dataclass(frozen=True)
class Listener:
    """A TCP port a wellmon process listens on, as the user configured it."""

    setting: str  # what moves it, e.g. "dashboard.port, flag --port"
    shown: str  # the address as the user wrote it, e.g. tcp://127.0.0.1:5555
    host: str  # "" for every interface
    port: int


def tcp_listener(setting: str, host: str, port: int) -> Listener:
    shown_host = f"[{host}]" if ":" in host else host
    return Listener(setting, f"{shown_host or '*'}:{port}", host, port)


def zmq_listener(setting: str, address: str) -> Listener | None:
    """The TCP port a ZeroMQ bind address takes; None when it is not TCP (ipc:// is left
    alone: a probe would unlink a live socket file) or its port is picked at bind time."""
    scheme, _, rest = address.partition("://")
    host, _, port = rest.rpartition(":")
    if scheme != "tcp" or not port.isdigit() or int(port) == 0:
        return None
    host = host.strip("[]")
    return Listener(setting, address, "" if host == "*" else host, int(port))


def _taken(listener: Listener) -> bool:
    """Whether binding the listener's port now fails because something holds it. The probe
    binds as asyncio and ZeroMQ do (SO_REUSEADDR), so a port in TIME_WAIT counts as free;
    a host that does not resolve is left for the real bind to report."""
    try:
        infos = socket.getaddrinfo(listener.host or None, listener.port,
                                   type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return False
    for family, kind, proto, _name, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
    return False


def _in_use(taken: list[tuple[str, str]]) -> ConfigError:
    """One line for (address, setting) pairs that something else holds."""
    listed = ", ".join(f"{shown} ({setting})" for shown, setting in taken)
    return ConfigError(f"already in use: {listed}; stop what holds "
                       f"{'it' if len(taken) == 1 else 'them'} (another wellmon?) or "
                       f"change {'that setting' if len(taken) == 1 else 'those settings'}")


def check_free(listeners: Iterable[Listener | None]) -> None:
    """Refuse, in one line naming each address and its setting, listeners already taken."""
    taken = [(item.shown, item.setting) for item in listeners
             if item is not None and _taken(item)]
    if taken:
        raise _in_use(taken)


def cannot_listen(setting: str, shown: str, error_number: int | None,
                  reason: str) -> ConfigError:
    """The one-line error for a failed bind of address ``shown``, which ``setting`` moves."""
    if error_number == errno.EADDRINUSE:
        return _in_use([(shown, setting)])
    return ConfigError(f"cannot listen on {shown} ({setting}): {reason}")
