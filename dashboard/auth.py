"""Access to the dashboard: the three roles' tokens, sign-in links and session cookies.

viewer: the live page; kiosk: runs checks and sees only its own results; admin: all of it
plus the operator page and deleting a person's data. Each role's token comes from its
environment variable, else is generated once into its own mode-0600 file.

No long-lived token ever travels in a URL. A browser signs in with a one-time link
(``?code=``, minted by ``wellmon login ROLE`` or printed by ``wellmon run``): the code is
signed with the role's token, valid once and for LOGIN_CODE_S, and only from a dashboard
that was already running when it was made; the server trades it for a session cookie
(random id, expiry, signed with the role's token, so it survives a dashboard restart and
dies when the token changes) and redirects to the bare URL. What the browser's history
keeps opens nothing. Programs send ``Authorization: Bearer TOKEN`` instead. docs/
dashboard-api.md lists the paths of each role.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from wellmon.config import ConfigError, DashboardConfig

ROLES = ("viewer", "kiosk", "admin")
TOKEN_ENVS = {"viewer": "WELLMON_TOKEN", "kiosk": "WELLMON_KIOSK_TOKEN",
              "admin": "WELLMON_ADMIN_TOKEN"}
TOKEN_ENV = TOKEN_ENVS["viewer"]
COOKIES = {role: f"wellmon_{role}" for role in ROLES}
SECURE_COOKIE_PREFIX = "__Host-"
"""Under TLS the cookies are named ``__Host-wellmon_<role>``: the browser then accepts them
only from this origin, over HTTPS, for the whole site (no Domain can widen them)."""
LOGIN_CODE_S = 300
"""A sign-in link works once, within five minutes of being made."""
PAGE_OF_ROLE = {"viewer": "", "kiosk": "kiosk", "admin": "operator"}


def resolve_token(token_file: str, environ: dict[str, str] | None = None,
                  env_name: str = TOKEN_ENV) -> str:
    """The token from ``env_name``, else from ``token_file``, created with a random token."""
    environ = os.environ if environ is None else environ
    if environ.get(env_name):
        return environ[env_name]
    path = Path(token_file).expanduser()
    try:
        token = path.read_text().strip()
        if token:
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
            return token
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def resolve_tokens(cfg: DashboardConfig, environ: dict[str, str] | None = None
                   ) -> dict[str, str]:
    """Role -> token; two roles with one token would make roles meaningless, so refuse."""
    files = {"viewer": cfg.token_file, "kiosk": cfg.kiosk_token_file,
             "admin": cfg.admin_token_file}
    tokens = {role: resolve_token(files[role], environ, TOKEN_ENVS[role]) for role in ROLES}
    if len(set(tokens.values())) != len(tokens):
        raise ConfigError("two dashboard roles have the same token: give the viewer, kiosk "
                          "and admin tokens different values")
    return tokens


def token_matches(expected: str, offered: str | None) -> bool:
    return offered is not None and hmac.compare_digest(expected.encode(), offered.encode())


def role_of(tokens: dict[str, str], offered: str | None) -> str | None:
    """The role whose token was offered, or None (constant time per role)."""
    found = None
    for role, token in tokens.items():
        if token_matches(token, offered):
            found = role
    return found


def _mac(token: str, *fields: object) -> str:
    message = "|".join(str(f) for f in fields).encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()[:32]


def login_code(role: str, token: str, now: float | None = None) -> str:
    """A one-time sign-in code for ``role``: a random nonce, when it was made, and a MAC
    under the role's token (so the CLI can make one without talking to the dashboard)."""
    made = int(time.time() if now is None else now)
    nonce = secrets.token_urlsafe(12)
    return f"{nonce}.{made}.{_mac(token, 'login', role, nonce, made)}"


def login_url(base_url: str, role: str, token: str) -> str:
    """The page of ``role`` at ``base_url`` (ending in /) with a fresh one-time code."""
    return f"{base_url}{PAGE_OF_ROLE[role]}?code={login_code(role, token)}"


class Sessions:
    """Redeems sign-in codes and verifies session cookies for one running dashboard.

    Codes made before the dashboard started are refused, so the set of redeemed nonces,
    which lives in memory, covers every code that could still be valid.
    """

    def __init__(self, tokens: dict[str, str], session_s: float,
                 started: float | None = None) -> None:
        self.tokens = tokens
        self.session_s = session_s
        self.started = int(time.time() if started is None else started)
        self._redeemed: dict[str, float] = {}  # nonce -> when it stops mattering

    def redeem(self, code: str, now: float, accept: frozenset[str] = frozenset(ROLES)
               ) -> str | None:
        """The role a valid, unused code signs in as, if it is one of ``accept`` (then the
        code is used up), or None (a code for another page is left unused)."""
        nonce, made_s, mac = (code.split(".") + ["", "", ""])[:3]
        if not made_s.isdigit() or len(made_s) > 12 or nonce in self._redeemed:
            return None
        made = int(made_s)
        if not self.started <= made <= now + 1 or now - made > LOGIN_CODE_S:
            return None
        role = _role_by_mac(self.tokens, mac, "login", nonce, made)
        if role is None or role not in accept:
            return None
        self._redeemed = {n: t for n, t in self._redeemed.items() if t > now}
        self._redeemed[nonce] = made + LOGIN_CODE_S + 1
        return role

    def issue(self, role: str, now: float) -> str:
        """A new session cookie value for ``role``: random id, expiry, MAC."""
        sid = secrets.token_urlsafe(18)
        expires = int(now + self.session_s)
        return f"{sid}.{expires}.{_mac(self.tokens[role], 'session', role, sid, expires)}"

    def valid(self, role: str, value: str, now: float) -> bool:
        """Whether ``value`` is an unexpired session cookie of ``role`` (constant time)."""
        sid, expires_s, mac = (value.split(".") + ["", "", ""])[:3]
        if not expires_s.isdigit() or len(expires_s) > 12 or int(expires_s) < now:
            return False
        return hmac.compare_digest(mac.encode(), _mac(self.tokens[role], "session", role,
                                                      sid, int(expires_s)).encode())


def _role_by_mac(tokens: dict[str, str], mac: str, *fields: object) -> str | None:
    """The role whose token made ``mac`` over ``kind, role, *rest`` (every role is tried)."""
    kind, *rest = fields
    found = None
    for role, token in tokens.items():
        if hmac.compare_digest(mac.encode(), _mac(token, kind, role, *rest).encode()):
            found = role
    return found
