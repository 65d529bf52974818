"""The dashboard's API under ``/api/`` (docs/dashboard-api.md): the status, the kiosk's
stored checks, a person's data and secret (the operator page), and the reports of a check
or a live stream's session (HTML, dashboard/report).

Who may ask is settled before (dashboard/http_routes.py). Input it cannot use gets 400 or 404
with ``{"error": …}``, never a 500; a store that fails gets 503.
"""

from __future__ import annotations

import datetime as _dt
import http
import math
import re
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.http11 import Request, Response

from wellmon.dashboard.checks import ID_RULE, valid_person
from wellmon.dashboard.person_secrets import PersonSecrets
from wellmon.dashboard.report import Scores, render, summary_of
from wellmon.dashboard.report.html import policy
from wellmon.dashboard.responses import html_response, json_response
from wellmon.dashboard.store import STATUSES, Store, StoreError
from wellmon.streamer.lifecycle import log
from wellmon.streamer.wire.protocol import valid_stream_id

ROLE = "dashboard"
CHECK_PATH = re.compile(r"/api/checks/([0-9]{1,18})")  # fullmatch; a longer id is no check
CHECK_REPORT_PATH = re.compile(r"/api/checks/([0-9]{1,18})/report")
STREAM_REPORT_PATH = re.compile(r"/api/streams/([^/]{1,200})/report")
"""A stream's report: the page of its recent history (viewer and admin; fullmatch)."""
REPORT_REUSE_S = 5.0
"""A stream's report page is made at most once in this long (per stream, for viewers and for
admins) and given again meanwhile: making it takes ~60 ms of the dashboard's one loop for 15
minutes of history, which a page reloaded in a loop must not turn into a stall of every
live page."""
AUDIT_REPEAT_S = 60.0
PERSON_ACTIONS = {"": ("GET", "DELETE"), "enrolment": ("POST",), "secret": ("DELETE",),
                  "audit": ("GET",), "export": ("GET",)}
"""/api/persons/<person>[/<action>] -> its methods (docs/dashboard-api.md, operator)."""


class Refusal(Exception):
    """A request refused as a plain-text ``wellmon: reason`` answer, counted with the other
    refusals (the caller, dashboard/http_routes.py, does both)."""

    def __init__(self, reason: str, status: http.HTTPStatus) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class RestApi:
    """``status`` makes the answer to ``GET /api/status``."""

    def __init__(self, store: Store, secrets: PersonSecrets,
                 status: Callable[[], dict[str, Any]],
                 history: Callable[[str, bool], list[dict[str, Any]]]) -> None:
        """``history(stream, sees_private)``: the dashboard's recent score messages of a
        stream (dashboard/fanout.py)."""
        self.store = store
        self.secrets = secrets
        self.status = status
        self.history = history
        self._reports: dict[tuple[str, bool], tuple[float, Response]] = {}
        self._audited: dict[tuple[str, str | None, str], float] = {}

    def answer(self, request: Request, path: str, origin: str) -> Response:
        """The answer to a request for ``path`` under ``/api/`` from the client address
        ``origin`` (kept in the audit trail of what it reads of a person); Refusal for a
        change sent without its confirmation header."""
        try:
            return self._answer(request, path, origin)
        except StoreError as exc:
            log(ROLE, f"the check store failed {request.method} {path}: {exc}")
            return json_response(503, {"error": "the check store is not available"})

    def _audit(self, action: str, person: str | None, origin: str) -> None:
        """An audit entry for an admin's request; the same read by the same client within
        AUDIT_REPEAT_S is one entry (the operator page refreshes a running check's detail)."""
        now = time.time()
        key = (action, person, origin)
        if action == "read" and now - self._audited.get(key, -math.inf) < AUDIT_REPEAT_S:
            return
        self.store.record_audit(action, person, role="admin", origin=origin, now=now)
        self._audited = {k: t for k, t in self._audited.items() if now - t < AUDIT_REPEAT_S}
        self._audited[key] = now

    def _answer(self, request: Request, path: str, origin: str) -> Response:
        if path == "/api/status":
            return json_response(200, self.status())
        if path == "/api/checks":
            query = parse_qs(urlsplit(request.path).query)
            try:
                day = (_dt.date.fromisoformat(query["day"][0]) if query.get("day")
                       else _dt.datetime.now(_dt.timezone.utc).date())
            except ValueError:
                return json_response(400, {"error": "day must be YYYY-MM-DD"})
            person, status = _first(query, "person"), _first(query, "status")
            if status is not None and status not in STATUSES:
                return json_response(400, {"error": "status must be one of "
                                                    f"{', '.join(STATUSES)}"})
            if person is not None and not valid_person(person):
                return json_response(400, {"error": f"person: {ID_RULE}"})
            checks = self.store.list_checks(day=day, person_id=person, status=status)
            if person is not None:
                self._audit("read", person, origin)
            return json_response(200, {"checks": checks})
        if match := CHECK_REPORT_PATH.fullmatch(path):
            found = self.store.get_check(int(match[1]), with_windows=True)
            if not found:
                return json_response(404, {"error": "no such check"})
            self._audit("read", found["person_id"], origin)
            log(ROLE, "an admin opened the report of a check")
            return _report(f"kiosk check {found['id']}", found.get("windows") or [],
                           "no windows were kept for this check")
        if match := CHECK_PATH.fullmatch(path):
            found = self.store.get_check(int(match[1]), with_windows=True)
            if not found:
                return json_response(404, {"error": "no such check"})
            self._audit("read", found["person_id"], origin)
            return json_response(200, {"check": found})
        if path.startswith("/api/persons/"):
            raw, _, action = path.removeprefix("/api/persons/").partition("/")
            person = unquote(raw)  # the page sends encodeURIComponent(id); %2E is "."
            if not valid_person(person) or action not in PERSON_ACTIONS:
                return json_response(404, {"error": "no such person path"})
            if request.method not in PERSON_ACTIONS[action]:
                return json_response(405, {"error": f"{request.method} not allowed here"})
            return self._person(request, person, action, origin)
        return json_response(404, {"error": "not found"})

    def stream_report(self, stream: str, sees_private: bool) -> Response:
        """The report of what the dashboard holds of a live stream's session (its history,
        `dashboard.history_s`), from the same code as `wellmon report`."""
        if not valid_stream_id(stream):
            return json_response(404, {"error": "no such stream"})
        now = time.monotonic()
        made = self._reports.get((stream, sees_private))
        if made is not None and now - made[0] < REPORT_REUSE_S:
            return made[1]
        response = _report(f"stream {stream}", self.history(stream, sees_private),
                           "no scores of this stream here")
        self._reports = {key: kept for key, kept in self._reports.items()
                         if now - kept[0] < REPORT_REUSE_S}
        self._reports[(stream, sees_private)] = (now, response)
        return response

    def _person(self, request: Request, person: str, action: str, origin: str) -> Response:
        """A person's secret status, audit trail, export, deletion, enrolment code and
        secret reset (admin). Changes need ``X-Wellmon-Confirm`` (a header a cross-site form
        cannot send)."""
        confirm = request.headers.get("X-Wellmon-Confirm")
        if action == "audit":
            return json_response(200, {"person": person, "audit": self.store.audit_of(person)})
        if action == "export":
            exported = self.store.export_person(person)
            if exported is None:
                return json_response(404, {"error": "nothing is stored about this person"})
            self._audit("export", person, origin)
            log(ROLE, "exported a person's data at an admin's request")
            response = json_response(200, exported)
            response.headers["Content-Disposition"] = "attachment; filename=\"person.json\""
            return response
        if request.method == "GET":
            self._audit("read", person, origin)
            return json_response(200, self.store.person_status(person, time.time()))
        if action == "":
            if confirm != "delete":
                raise Refusal("delete without confirmation header",
                              http.HTTPStatus.BAD_REQUEST)
            deleted = self.store.delete_person(person, role="admin", origin=origin)
            log(ROLE, f"deleted a person's data ({deleted} checks) at an admin's request")
            return json_response(200, {"deleted_checks": deleted})
        if action == "enrolment":
            if confirm != "enrol":
                return json_response(400, {"error": "send X-Wellmon-Confirm: enrol"})
            issued = self.secrets.issue_code(person, time.time())
            log(ROLE, "issued an enrolment code at an admin's request")
            return json_response(200, issued)
        if confirm != "reset":
            return json_response(400, {"error": "send X-Wellmon-Confirm: reset"})
        was_set = self.secrets.reset(person)
        self._audit("secret_reset", person, origin)
        log(ROLE, "reset a person's secret at an admin's request")
        return json_response(200, {"reset": True, "secret_was_set": was_set})


def _report(source: str, windows: list[dict[str, Any]], none_why: str) -> Response:
    """The report page of these score messages, or 404 saying why there is none."""
    if not windows:
        return json_response(404, {"error": none_why})
    nonce = secrets.token_urlsafe(16)
    page = render([summary_of(Scores(source, sorted(windows, key=lambda w: w["t_end"])))],
                  nonce)
    return html_response(page, policy(nonce))


def _first(query: dict[str, list[str]], key: str) -> str | None:
    return query[key][0] if query.get(key) else None
