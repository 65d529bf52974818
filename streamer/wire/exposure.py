"""What may listen or link beyond this host, and on what terms.

On loopback (127.0.0.0/8, ::1, localhost) and on ipc:// and inproc:// every process of
this host is trusted: that is the one-machine default. Beyond it a ZeroMQ link in the
clear lets anyone who can reach the port inject a stream or read every score, the
dashboard over plain HTTP sends its tokens in clear text, and the metrics have no token
at all. So a process refuses to start with such a setting (a `ConfigError`: one line and
exit status 2) unless the section's `insecure: true` says it is meant, and then it logs a
warning at every start. The rules:

- a ZeroMQ address (bound or connected) beyond loopback needs `wire.curve_dir`, or
  `wire.insecure: true`;
- `dashboard.host` beyond loopback needs `dashboard.tls_cert` and `tls_key` (HTTPS: its
  tokens are its authentication), or `dashboard.insecure: true`;
- `metrics.host` beyond loopback needs `metrics.insecure: true` even so: the endpoints
  have no authentication to protect, so TLS alone would not keep anyone out.

Every bind and connect passes `check_wire` (in `routes.attach`), every metrics listener
`check_metrics` (in `wellmon.metrics.start`); processes also call `check` before slow
start-up work, and `wellmon run` before it spawns anything, so the refusal comes first.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from wellmon.config import Config, ConfigError, DashboardConfig, MetricsConfig
from wellmon.streamer.lifecycle import log

LOCAL_TRANSPORTS = ("ipc://", "inproc://")
WIRE_SETTINGS = ("node.input", "node.output", "proxy.media_in", "proxy.media_out",
                 "proxy.scores_in", "proxy.scores_out")
"""The settings that hold ZeroMQ addresses, to name the one a refusal is about."""
KEYS_HINT = "make keys with `wellmon keys DIR` and set wire.curve_dir: DIR"

_warned: set[str] = set()
"""Warnings given by this process: one per exposure per start, however many sockets."""


def loopback_host(host: str) -> bool:
    """A host part that only this machine reaches: 127.0.0.0/8, ::1 or localhost (no DNS:
    any other name, `*`, 0.0.0.0 or an interface name may reach the network)."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def beyond_loopback(address: str) -> bool:
    """Whether a ZeroMQ address (`tcp://host:port`, `ipc://...`, ...) reaches past this host.

    Every host part counts, so a connect with a source address (`tcp://src;dst:port`) is
    local only when both are; transports other than tcp, ipc and inproc count as network.
    """
    if address.startswith(LOCAL_TRANSPORTS):
        return False
    scheme, sep, rest = address.partition("://")
    if not sep or scheme not in ("tcp", "ws", "wss"):
        return True
    for part in rest.split(";"):
        hostport = part.split("/", 1)[0]
        host = hostport.rpartition(":")[0] if ":" in hostport else hostport
        if not loopback_host(host):
            return True
    return False


def _refuse_or_warn(key: str, problem: str, remedy: str, insecure: str, allowed: bool,
                    warn: bool) -> None:
    """The common ending: a one-line refusal, or (opted in by the setting ``insecure``) one
    warning per process and exposure ``key``."""
    if not allowed:
        raise ConfigError(f"{problem}: {remedy}, or set {insecure}: true to accept it")
    if warn and key not in _warned:
        _warned.add(key)
        log("wellmon", f"warning: starting because {insecure} is true, although {problem}; "
                       f"to fix: {remedy}")


def wire_setting(config: Config, address: str) -> str:
    """The settings that hold ``address`` (to name them in a message)."""
    names = [name for name in WIRE_SETTINGS
             if getattr(getattr(config, name.split(".")[0]), name.split(".")[1]) == address]
    return "/".join(names) or "a ZeroMQ address"


def check_wire(config: Config, address: str, warn: bool = True) -> None:
    """Refuse (or, with `wire.insecure`, warn about) a ZeroMQ link beyond loopback in the
    clear: anyone who reaches it could inject a stream or read every score."""
    if config.wire.curve_dir or not beyond_loopback(address):
        return
    _refuse_or_warn(f"wire {address}",
                    f"{wire_setting(config, address)} is {address}, beyond loopback, and "
                    f"wire.curve_dir is null (anyone who reaches it could inject streams "
                    f"and read every score)", KEYS_HINT, "wire.insecure", config.wire.insecure,
                    warn)


def check_dashboard(cfg: DashboardConfig, warn: bool = True) -> None:
    """Refuse (or, with `dashboard.insecure`, warn about) plain HTTP beyond loopback: the
    tokens and people's scores would cross the network in clear text."""
    if (cfg.tls_cert and cfg.tls_key) or loopback_host(cfg.host):
        return
    _refuse_or_warn(f"dashboard {cfg.host}",
                    f"dashboard.host is {cfg.host}, beyond loopback, without "
                    f"dashboard.tls_cert and tls_key (tokens and scores would cross the "
                    f"network in clear text)",
                    "set dashboard.tls_cert and dashboard.tls_key (HTTPS), or keep host "
                    "127.0.0.1", "dashboard.insecure", cfg.insecure, warn)


def check_metrics(cfg: MetricsConfig, warn: bool = True) -> None:
    """Refuse (or, with `metrics.insecure`, warn about) metrics beyond loopback: they have
    no token, so anyone who reaches them reads them (stream ids included)."""
    if not cfg.enabled or loopback_host(cfg.host):
        return
    _refuse_or_warn(f"metrics {cfg.host}",
                    f"metrics.host is {cfg.host}, beyond loopback (the metrics have no "
                    f"token: anyone who reaches them reads them)",
                    "keep metrics.host 127.0.0.1 (scrape through a tunnel or a local "
                    "Prometheus)", "metrics.insecure", cfg.insecure, warn)


def check(config: Config, addresses: Iterable[str] = (), dashboard: bool = False,
          warn: bool = True) -> None:
    """All the rules a process (or `wellmon run`, for its children) is subject to: its
    ZeroMQ ``addresses``, the dashboard's listener if it serves one, and its metrics."""
    for address in addresses:
        check_wire(config, address, warn)
    if dashboard:
        check_dashboard(config.dashboard, warn)
    check_metrics(config.metrics, warn)
