"""The pages' WebSockets: ``/ws`` (the live page) and ``/ws/kiosk`` (the kiosk's checks).

How many sockets each role may hold (``dashboard.max_clients_per_role``,
``dashboard.max_clients``), what a page may send, and which clients are closed: a message
that breaks the protocol closes its client with the close code that says why (1007
undecodable, 1008 not allowed, 1009 too big), and a client that stops reading is
disconnected. Each is counted in ``faults``. The live page only pings; the kiosk's requests
go to dashboard/kiosk_socket.py.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from wellmon.config import DashboardConfig
from wellmon.dashboard.fanout import Client, Hub
from wellmon.dashboard.kiosk_socket import KioskSocket
from wellmon.streamer.lifecycle import log

ROLE = "dashboard"
MAX_CLIENT_MESSAGE = 4096


class ClientFault(Exception):
    """A message from a browser that breaks the protocol: counted under ``kind`` and the
    client closed with ``code`` (1007 undecodable, 1008 not allowed, 1009 too big)."""

    def __init__(self, kind: str, code: int) -> None:
        super().__init__(kind)
        self.kind = kind
        self.code = code


class PageSockets:
    """Every open WebSocket of the pages, by role; the live pages' clients join the hub, the
    kiosk's join the kiosk socket."""

    def __init__(self, cfg: DashboardConfig, hub: Hub, kiosk: KioskSocket) -> None:
        self.cfg = cfg
        self.hub = hub
        self.kiosk = kiosk
        self.faults: Counter = Counter()  # client faults, by reason
        self.refused: Counter = Counter()  # handshakes refused after the request was let in
        self.roles: dict[ServerConnection, str] = {}  # open WebSockets -> role
        # accepted by admit(), handshake under way: (role counted, holds admin)
        self.pending_roles: weakref.WeakKeyDictionary[ServerConnection, tuple[str, bool]] = (
            weakref.WeakKeyDictionary())

    # --- admission -------------------------------------------------------------------------

    def admit(self, connection: ServerConnection, path: str, roles: set[str]) -> str | None:
        """Why a signed-in request for the socket at ``path`` is refused (too many open), or
        None: then the socket counts under its role from now on."""
        role = _socket_role(path, roles)
        if reason := self._over_capacity(role):
            return reason
        self.pending_roles[connection] = (role, "admin" in roles)
        return None

    def _open_sockets(self, role: str) -> tuple[int, int]:
        """WebSockets open now: of ``role``, and in all."""
        counts = Counter(self.roles.values())
        return counts[role], sum(counts.values())

    def _over_capacity(self, role: str) -> str | None:
        """Why one more socket of ``role`` is refused, or None."""
        cfg = self.cfg
        mine, total = self._open_sockets(role)
        if mine >= cfg.max_clients_per_role:
            return (f"too many {role} connections (dashboard.max_clients_per_role is "
                    f"{cfg.max_clients_per_role})")
        if total >= cfg.max_clients:
            return f"too many connections (dashboard.max_clients is {cfg.max_clients})"
        return None

    # --- one socket ------------------------------------------------------------------------

    async def handle(self, connection: ServerConnection) -> None:
        kiosk = urlsplit(connection.request.path).path == "/ws/kiosk"
        role, admin = self.pending_roles.pop(connection, ("admin", False))
        if reason := self._over_capacity(role):  # handshakes that raced past admit()
            self.refused[reason] += 1
            await connection.close(1013, "too many connections: try again later")
            return
        self.roles[connection] = role
        client = Client(connection, self.cfg.client_queue, sees_private=admin)
        if kiosk:
            self.kiosk.connected(client)
        else:
            for chunk in self.hub.hello(client.sees_private):
                client.offer(chunk)
            self.hub.clients.add(client)
        sender = asyncio.create_task(client.send_queued())
        try:
            async for message in connection:
                reply = await self.answer(message, client if kiosk else None, kiosk)
                if isinstance(reply, ClientFault):
                    await connection.close(reply.code, reply.kind)
                    break
                client.offer(reply)
        except ConnectionClosed as closed:
            if closed.sent is not None and closed.sent.code == 1009:
                self.faults["too_big"] += 1
        finally:
            self.roles.pop(connection, None)
            self.hub.clients.discard(client)
            self.kiosk.clients.discard(client)
            sender.cancel()
            if kiosk:
                self.kiosk.disconnected(client)  # cancels the check this socket started

    def _parse(self, message: str | bytes) -> dict[str, Any]:
        """A JSON object from a client; anything else raises a ClientFault, which closes that
        client with the close code that says why (the caller counts it)."""
        if isinstance(message, bytes):
            raise ClientFault("bad_frame", 1008)  # the protocol is JSON text
        if len(message) > MAX_CLIENT_MESSAGE:
            raise ClientFault("too_big", 1009)
        try:
            parsed = json.loads(message)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's
            raise ClientFault("bad_json", 1007) from None
        if not isinstance(parsed, dict):
            raise ClientFault("unknown_type", 1008)
        return parsed

    async def answer(self, message: str | bytes, client: Client | None = None,
                     kiosk: bool = False) -> str | ClientFault:
        """The reply to one message from a browser, or the fault (counted) for which that
        browser is closed."""
        try:
            reply = (await self.reply_to_kiosk(message, client) if kiosk
                     else self.reply_to_client(message))
        except ClientFault as fault:
            self.faults[fault.kind] += 1
            return fault
        return reply if reply is not None else ClientFault("unexpected message", 1008)

    def reply_to_client(self, message: str | bytes) -> str | None:
        """The live page only pings; anything else is a fault, counted, and closes that client."""
        parsed = self._parse(message)
        if parsed.get("type") != "ping":
            self.faults["unknown_type"] += 1
            return None
        return json.dumps({"type": "pong", "t": time.time()})

    async def reply_to_kiosk(self, message: str | bytes,
                             client: Client | None = None) -> str | None:
        """A kiosk socket's request (dashboard/kiosk_socket.py): an answer, an error the
        kiosk can show, or None (garbage: counted, and that socket is closed)."""
        return await self.kiosk.reply(self._parse(message), client)

    # --- clients that stopped reading ------------------------------------------------------

    def drop_stalled_clients(self, now: float) -> None:
        for client in [*self.hub.clients, *self.kiosk.clients]:
            reason = client.fault(now, self.cfg.drop_stalled_after_s)
            if reason is not None:
                self.faults[reason] += 1
                peer = client.connection.remote_address
                log(ROLE, f"disconnected {peer[0] if peer else 'a client'}: {reason} "
                          f"({client.buffered} bytes unread)")
                self.hub.clients.discard(client)
                self.kiosk.clients.discard(client)
                client.connection.transport.abort()


def _socket_role(path: str, roles: set[str]) -> str:
    """The role a WebSocket counts under: the page's own role when held, else admin."""
    own = "kiosk" if path == "/ws/kiosk" else "viewer"
    return own if own in roles else "admin"
