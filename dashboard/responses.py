"""The dashboard's HTTP responses: the security headers every answer carries, JSON and files."""

from __future__ import annotations

import http
import json
import mimetypes
from pathlib import Path
from typing import Any

from websockets.datastructures import Headers
from websockets.http11 import Response

SECURITY_HEADERS = [
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Content-Security-Policy", "default-src 'self'; connect-src 'self'; "
                                "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; "
                                "base-uri 'none'; form-action 'self'; object-src 'none'"),
]
"""Sent with every response (HttpRoutes.process_response), refusals and the handshake
included."""


def json_response(status: int, body: Any) -> Response:
    return _response(status, json.dumps(body, allow_nan=False).encode(), "application/json")


def html_response(body: str, policy: str) -> Response:
    """A page with a Content-Security-Policy of its own (a report: its inline scripts carry
    the nonce the policy names) instead of the dashboard's."""
    headers = Headers([("Content-Type", "text/html; charset=utf-8"),
                       ("Content-Length", str(len(body.encode()))),
                       *[(k, v) for k, v in SECURITY_HEADERS if k != "Content-Security-Policy"],
                       ("Content-Security-Policy", policy)])
    return Response(200, "OK", headers, body.encode())


def file_response(path: Path) -> Response:
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type.endswith("javascript"):
        content_type += "; charset=utf-8"
    return _response(200, path.read_bytes(), content_type)


def _response(status: int, body: bytes, content_type: str) -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       *SECURITY_HEADERS])
    return Response(status, http.HTTPStatus(status).phrase, headers, body)
