"""The kiosk's WebSocket protocol (``/ws/kiosk``): who may steer which check, and who hears it.

docs/dashboard-api.md has the messages. The rules:

- A check belongs to the socket that started it (its *owner*). ``check.started``,
  ``check.progress``, ``check.result`` and ``check.failed`` go to the owner only; every other
  kiosk socket hears nothing of that person, only ``kiosk.preview`` (framing hints, and
  ``busy`` with no face data while someone else's check runs).
- ``check.cancel`` is obeyed only from the owner. The owner closing its socket cancels.
- ``check.start`` may carry the person's ``secret`` (PIN); ``enrol`` sets it with the
  operator's one-time code. Both count tries and answer wrong ones with one generic sentence
  whether or not the ID exists (dashboard/person_secrets.py). Each socket's messages are
  answered in order, one at a time, so one socket has at most one try in flight.

dashboard/page_sockets.py hands each parsed message here; the dashboard delivers what the
checks emit through :meth:`KioskSocket.deliver`. The socket counts its own figures: the
requests it refused or did not know (``faults``) and the updates dropped from a kiosk's
full queue (``dropped_updates``).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any, Protocol

from wellmon.dashboard.checks import (
    ID_RULE,
    STORE_UNAVAILABLE,
    CheckError,
    KioskChecks,
    valid_person,
)
from wellmon.dashboard.person_secrets import (
    PersonSecrets,
    normalize_code,
    secret_problem,
    weak_secret_problem,
)
from wellmon.dashboard.store import StoreError
from wellmon.streamer.lifecycle import log

ROLE = "dashboard"
CHECK_MESSAGES = ("check.started", "check.progress", "check.result", "check.failed")


class Client(Protocol):
    def offer(self, text: str) -> bool: ...


class KioskSocket:
    def __init__(self, checks: KioskChecks, secrets: PersonSecrets,
                 retention_days: float) -> None:
        self.checks = checks
        self.secrets = secrets
        self.retention_days = retention_days
        self.clients: set[Any] = set()
        self.owner: Any = None
        self.faults: Counter = Counter()  # client faults, by reason
        self.dropped_updates = 0  # over all kiosk sockets ever

    def hello(self) -> str:
        message = self.checks.hello(self.retention_days)
        message["secrets"] = self.secrets.facts()
        return json.dumps(message)

    def connected(self, client: Client) -> None:
        self.clients.add(client)
        client.offer(self.hello())

    def disconnected(self, client: Client) -> None:
        """The socket is gone; if it owned the running check, that check is cancelled."""
        self.clients.discard(client)
        if self.owner is client:
            self.owner = None
            if self.checks.running is not None:
                self.checks.cancel(time.time(), "the kiosk disconnected during the check")

    # --- from the page -----------------------------------------------------------------

    async def reply(self, parsed: dict[str, Any], client: Client | None) -> str | None:
        """The answer to one message from ``client``; None (counted) closes that socket. A
        store that cannot be reached is said to the kiosk, which may try again."""
        try:
            return await self._reply(parsed, client)
        except StoreError as exc:
            log(ROLE, f"the check store failed a kiosk request: {exc}")
            self.faults["store_unavailable"] += 1
            return _error(STORE_UNAVAILABLE, "store")

    async def _reply(self, parsed: dict[str, Any], client: Client | None) -> str | None:
        kind = parsed.get("type")
        if kind == "ping":
            return _pong()
        if kind == "check.start":
            return await self._start(parsed, client)
        if kind == "enrol":
            return await self._enrol(parsed)
        if kind == "check.cancel":
            return self._cancel(client)
        self.faults["unknown_type"] += 1
        return None

    def _refused(self, exc: CheckError, fault: str = "check_refused") -> str:
        self.faults[fault] += 1
        return _error(str(exc), exc.code)

    async def _start(self, parsed: dict[str, Any], client: Client | None) -> str:
        try:
            person, secret = self.checks.request(parsed)
            if secret is not None and (problem := secret_problem(secret)):
                raise CheckError(problem, "secret")
            self.checks.ready()  # before the try is counted: a busy kiosk costs no try
        except CheckError as exc:
            return self._refused(exc)
        personal = False
        if secret is not None:
            outcome = await self.secrets.check(person, secret, time.time())
            if not outcome.ok:
                log(ROLE, "refused a kiosk PIN" + (": the ID is now locked" if outcome.locked
                                                   else ""))
                self.faults["secret_refused"] += 1
                return _error(outcome.sentence, "locked" if outcome.locked else "secret")
            personal = True
        try:  # the kiosk may have got busy while the secret was checked
            started = self.checks.start(person, time.time(), personal=personal)
        except CheckError as exc:
            return self._refused(exc)
        self.owner = client
        return json.dumps(started)

    async def _enrol(self, parsed: dict[str, Any]) -> str:
        person, secret = parsed.get("person"), parsed.get("secret")
        code = normalize_code(parsed.get("code"))
        try:
            if not valid_person(person):
                raise CheckError(ID_RULE)
            assert isinstance(person, str)
            if code is None:
                raise CheckError("An enrolment code has 12 digits.", "enrol")
            if problem := weak_secret_problem(secret, person):  # type: ignore[arg-type]
                raise CheckError(problem, "new_secret")
        except CheckError as exc:
            return self._refused(exc, "enrol_refused")
        assert isinstance(secret, str)
        outcome = await self.secrets.enrol(person, code, secret, time.time())
        if not outcome.ok:
            log(ROLE, "refused a kiosk enrolment code" + (": the ID is now locked"
                                                          if outcome.locked else ""))
            self.faults["enrol_refused"] += 1
            return _error(outcome.sentence, "locked" if outcome.locked else "enrol")
        log(ROLE, "a person set their PIN at the kiosk with an enrolment code")
        return json.dumps({"type": "enrolled", "person": person})

    def _cancel(self, client: Client | None) -> str:
        if self.checks.running is None:
            return _pong()  # nothing to cancel (a late click): not an error
        if client is None or client is not self.owner:
            self.faults["cancel_refused"] += 1
            return _error("Only the screen that started this check can cancel it.", "busy")
        self.deliver(self.checks.cancel(time.time()))
        return _pong()

    # --- to the pages ------------------------------------------------------------------

    def deliver(self, messages: list[dict[str, Any]]) -> None:
        """Check messages to the owner only; previews to the kiosk's other sockets (all of
        them when no check runs); anything else to nobody."""
        owner = self.owner
        for message in messages:
            kind = message.get("type")
            if kind in CHECK_MESSAGES:
                targets = [owner] if owner is not None and owner in self.clients else []
            elif kind == "kiosk.preview":  # "busy" ones exist only while a check runs
                targets = [c for c in self.clients if not (message.get("busy") and c is owner)]
            else:
                targets = []
            text = json.dumps(message, allow_nan=False)
            for client in targets:
                self.dropped_updates += client.offer(text)
        if self.checks.running is None:
            self.owner = None


def _pong() -> str:
    return json.dumps({"type": "pong", "t": time.time()})


def _error(reason: str, code: str) -> str:
    return json.dumps({"type": "error", "reason": reason, "code": code})
