"""A person's secret: the PIN (or badge secret) that opens their history at the kiosk.

A kiosk check that the person proves with their secret is compared with their usual range,
shows their earlier checks and joins their baseline; a check without it is stored but
flagged (``in_baseline`` false), compared with nothing and shown alone. The secret is set at
the kiosk with a one-time enrolment code that the operator page issues.

- Secrets: a PIN of at least ``PIN_MIN_DIGITS`` digits, or a badge secret of at least
  ``BADGE_MIN_CHARS`` printable ASCII characters (a scanner can send a long one). Kept only
  as ``scrypt$N$r$p$salt$key`` (hex): ``hashlib.scrypt`` with N=2**14, r=8, p=1 (16 MiB
  and about 40 ms a try), a 16-byte random salt and a 32-byte key; compared with
  ``hmac.compare_digest``.
- Enrolment codes: ``CODE_DIGITS`` random digits (``secrets.randbelow``), shown once on the
  operator page, stored with the same scrypt, bound to one person ID, single use, valid for
  ``CODE_TTL_S``. Issuing a new code replaces the person's earlier one.
- Tries: every try (PIN or code) for an ID counts as a failure *before* it is verified and
  is cleared only by a success, so parallel sockets cannot get more than ``MAX_FAILURES``
  tries in. After ``MAX_FAILURES`` failures within ``LOCK_S`` of each other the ID is
  locked for ``LOCK_S``; the count and the lock live in the store (they hold across kiosks
  and restarts). IDs that do not exist or have no secret are counted and locked the same
  way, and their tries cost the same scrypt (against a dummy hash), so the kiosk's answers
  do not tell whether an ID exists or has a secret.
- The hashing runs in a small thread pool (``WORKERS`` threads), never in the event loop:
  a flood of tries costs at most that many cores and 16 MiB each.

docs/security.md "Person secrets" has the threat model.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from wellmon.dashboard.store import Store

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
MAXMEM = 64 * 2**20
PIN_MIN_DIGITS = 6
BADGE_MIN_CHARS = 8
SECRET_MAX_CHARS = 128
MAX_FAILURES = 5
LOCK_S = 15 * 60.0
CODE_DIGITS = 12
CODE_TTL_S = 24 * 3600.0
WORKERS = 2

PIN = re.compile(rf"[0-9]{{{PIN_MIN_DIGITS},{SECRET_MAX_CHARS}}}")
BADGE_SECRET = re.compile(rf"[\x21-\x7e]{{{BADGE_MIN_CHARS},{SECRET_MAX_CHARS}}}")

WRONG_SECRET = ("The ID and PIN do not match. Check both and try again, or continue without "
                "your PIN.")
WRONG_CODE = ("This enrolment code is not valid for this ID: it may be mistyped, already "
              "used or expired.")


def locked_sentence(until: float, now: float) -> str:
    minutes = max(1, math.ceil((until - now) / 60))
    return (f"Too many wrong tries: this ID is locked for {minutes} more "
            f"minute{'' if minutes == 1 else 's'}.")


def secret_problem(secret: object) -> str | None:
    """Why ``secret`` cannot be a PIN or badge secret, or None. Says nothing about anyone."""
    if not isinstance(secret, str):
        return "the PIN must be text"
    if PIN.fullmatch(secret) or BADGE_SECRET.fullmatch(secret):
        return None
    if secret.isdigit() or not secret:
        return f"A PIN has {PIN_MIN_DIGITS} to {SECRET_MAX_CHARS} digits."
    return (f"A PIN has at least {PIN_MIN_DIGITS} digits; a badge secret at least "
            f"{BADGE_MIN_CHARS} letters, digits or signs (no spaces).")


def weak_secret_problem(secret: str, person: str) -> str | None:
    """Why a *new* secret is too easy to guess, or None: one repeated digit, a run up or
    down (123456, 987654), or the person's own ID."""
    if secret_problem(secret):
        return secret_problem(secret)
    if secret.lower() == person.lower() or (len(person) >= 4
                                            and person.lower() in secret.lower()):
        return "The PIN must not contain your ID."
    if secret.isdigit():
        steps = {(int(b) - int(a)) % 10 for a, b in zip(secret, secret[1:])}
        if steps in ({0}, {1}, {9}):
            return "This PIN is too easy to guess: avoid repeated digits and runs like 123456."
    return None


def normalize_code(code: object) -> str | None:
    """The code's digits (spaces and dashes dropped), or None if it is not a code."""
    if not isinstance(code, str) or len(code) > 64:
        return None
    digits = re.sub(r"[\s-]", "", code)
    return digits if re.fullmatch(rf"[0-9]{{{CODE_DIGITS}}}", digits) else None


def new_code() -> str:
    return "".join(str(secrets.randbelow(10)) for _ in range(CODE_DIGITS))


def format_code(code: str) -> str:
    return " ".join(code[i:i + 4] for i in range(0, len(code), 4))


def hash_secret(secret: str) -> str:
    """``scrypt$N$r$p$salt$key``: the parameters travel with the hash, so they can grow."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(secret, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${key.hex()}"


_DUMMY = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${'00' * SALT_BYTES}${'00' * KEY_BYTES}"
"""Verified against when there is nothing to verify against: every try costs one scrypt."""


def verify(secret: str, stored: str | None) -> bool:
    """Whether ``secret`` hashes to ``stored`` (constant time); False for None, after the same
    work as a real comparison."""
    record = stored if stored is not None else _DUMMY
    try:
        kind, n, r, p, salt, key = record.split("$")
        if kind != "scrypt":
            raise ValueError(kind)
        expected = bytes.fromhex(key)
        got = _scrypt(secret, bytes.fromhex(salt), int(n), int(r), int(p), len(expected))
    except ValueError:
        got, expected = b"\x00", b"\x01"
    return hmac.compare_digest(got, expected) and stored is not None


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, maxmem=MAXMEM,
                          dklen=dklen)


@dataclass(frozen=True)
class Outcome:
    """The answer to a try: ok, or the sentence to show and whether the ID is now locked."""

    ok: bool
    sentence: str = ""
    locked: bool = False


class PersonSecrets:
    """Tries against the store's secrets and codes; the hashing off the event loop."""

    def __init__(self, store: Store, executor: ThreadPoolExecutor | None = None) -> None:
        self.store = store
        self.executor = executor or ThreadPoolExecutor(WORKERS, thread_name_prefix="scrypt")

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def _take(self, person: str, now: float) -> Outcome | None:
        """Count a try for ``person``; an Outcome when it is refused for a lock."""
        until = self.store.take_attempt(person, now, max_failures=MAX_FAILURES, lock_s=LOCK_S)
        return None if until is None else Outcome(False, locked_sentence(until, now), True)

    def _failed(self, person: str, now: float, sentence: str) -> Outcome:
        until = self.store.locked_until(person, now)
        if until is not None:
            return Outcome(False, locked_sentence(until, now), True)
        return Outcome(False, sentence)

    async def check(self, person: str, secret: str, now: float) -> Outcome:
        """Does ``secret`` open ``person``'s history? Counts the try."""
        refused = self._take(person, now)
        if refused:
            return refused
        if await self._run(verify, secret, self.store.get_secret(person)):
            self.store.clear_attempts(person)
            return Outcome(True)
        return self._failed(person, now, WRONG_SECRET)

    async def enrol(self, person: str, code: str, secret: str, now: float) -> Outcome:
        """Set ``person``'s secret with their enrolment code (used up on success). ``code``
        is normalized and ``secret`` already passed ``weak_secret_problem``."""
        refused = self._take(person, now)
        if refused:
            return refused
        stored = self.store.enrolment_code(person, now)
        if await self._run(verify, code, stored):
            new_hash = await self._run(hash_secret, secret)
            if self.store.use_enrolment_code(person, stored or "", new_hash, now):
                self.store.clear_attempts(person)
                return Outcome(True)
        return self._failed(person, now, WRONG_CODE)

    def issue_code(self, person: str, now: float) -> dict[str, Any]:
        """A new enrolment code for ``person`` (created if new); only its hash is kept. This
        runs one scrypt in the caller's thread: it is an operator's rare request."""
        code = new_code()
        expires_at = now + CODE_TTL_S
        self.store.put_enrolment_code(person, hash_secret(code), now, expires_at)
        return {"person": person, "code": format_code(code), "expires_at": expires_at}

    def reset(self, person: str) -> bool:
        """Forget ``person``'s secret, pending code, failures and lock; True if a secret was
        set."""
        return self.store.clear_secret(person)

    def facts(self) -> dict[str, Any]:
        """What the kiosk page tells people about secrets (its hello)."""
        return {"pin_min_digits": PIN_MIN_DIGITS, "badge_min_chars": BADGE_MIN_CHARS,
                "code_digits": CODE_DIGITS, "max_failures": MAX_FAILURES,
                "lock_minutes": round(LOCK_S / 60)}
