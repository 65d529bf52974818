"""Access tokens of the dashboard's three roles, and which role may open what.

viewer: the live page; kiosk: runs checks and sees only its own results; admin: all of it
plus the operator page and deleting a person's data. Each role's token comes from its
environment variable, else is generated once into its own mode-0600 file. docs/
dashboard-api.md lists the paths of each role.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from wellmon.config import ConfigError, DashboardConfig

ROLES = ("viewer", "kiosk", "admin")
TOKEN_ENVS = {"viewer": "WELLMON_TOKEN", "kiosk": "WELLMON_KIOSK_TOKEN",
              "admin": "WELLMON_ADMIN_TOKEN"}
TOKEN_ENV = TOKEN_ENVS["viewer"]
COOKIES = {role: f"wellmon_{role}" for role in ROLES}


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
