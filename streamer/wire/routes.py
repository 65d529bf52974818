"""Where each process's sockets go: straight to the one node, or through `wellmon proxy`.

Without the proxy (one node, the default) the node binds `node.input` and `node.output`
and the captures and the dashboard connect to them. With `wire.proxy` every process
connects to the proxy's addresses instead, so that nodes can come and go: captures
publish to `proxy.media_in`, nodes subscribe to `proxy.media_out` and publish to
`proxy.scores_in`, and dashboards (and nodes, for each other's heartbeats) subscribe
to `proxy.scores_out`.
"""

from __future__ import annotations

from dataclasses import dataclass

import zmq

from wellmon.config import Config, ConfigError
from wellmon.streamer.wire import exposure, ports
from wellmon.streamer.wire.security import Curve


@dataclass(frozen=True)
class Endpoint:
    address: str
    bind: bool


def attach(sock: zmq.Socket, endpoint: Endpoint, curve: Curve) -> None:
    """Bind or connect ``sock``, as a CURVE server or client when keys are configured.

    Every wellmon socket goes through here, so this is where an address beyond loopback
    without keys is refused (or, opted in, warned about): `exposure.check_wire`, and where a
    failed bind or connect becomes a one-line error naming the setting.
    """
    exposure.check_wire(curve.config, endpoint.address)
    curve.secure(sock, endpoint.bind)
    try:
        if endpoint.bind:
            sock.bind(endpoint.address)
        else:
            sock.connect(endpoint.address)
    except zmq.ZMQError as exc:
        setting = exposure.wire_setting(curve.config, endpoint.address)
        if endpoint.bind:
            raise ports.cannot_listen(setting, endpoint.address, exc.errno,
                                      exc.strerror) from None
        raise ConfigError(f"cannot connect to {endpoint.address} ({setting}): "
                          f"{exc.strerror}") from None


def capture_media(config: Config) -> str:
    """Where a capture connects its PUB socket."""
    return config.proxy.media_in if config.wire.proxy else config.node.input


def node_media(config: Config) -> Endpoint:
    if config.wire.proxy:
        return Endpoint(config.proxy.media_out, bind=False)
    return Endpoint(config.node.input, bind=True)


def node_scores(config: Config) -> Endpoint:
    if config.wire.proxy:
        return Endpoint(config.proxy.scores_in, bind=False)
    return Endpoint(config.node.output, bind=True)


def dashboard_scores(config: Config) -> str:
    """Where a dashboard connects its SUB socket."""
    return config.proxy.scores_out if config.wire.proxy else config.node.output


def node_peers(config: Config) -> str | None:
    """Where a sharded node hears the other nodes' heartbeats (None: no peers)."""
    return config.proxy.scores_out if config.wire.proxy else None


def addresses(config: Config) -> list[str]:
    """Every address the captures, nodes and dashboards of this config bind or connect."""
    found = [capture_media(config), node_media(config).address,
             node_scores(config).address, dashboard_scores(config), node_peers(config)]
    return list(dict.fromkeys(a for a in found if a))
