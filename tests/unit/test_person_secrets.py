"""Person secrets (dashboard/person_secrets.py): the hash, the rules for a PIN, the codes,
and tries in parallel against a real store never exceeding the limit."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from wellmon.dashboard import person_secrets as ps
from wellmon.dashboard.store_sqlite import SQLiteStore


def test_the_hash_is_salted_scrypt_with_its_parameters() -> None:
    one, two = ps.hash_secret("480315"), ps.hash_secret("480315")
    assert one != two  # salted
    kind, n, r, p, salt, key = one.split("$")
    assert (kind, int(n), int(r), int(p)) == ("scrypt", 2**14, 8, 1)
    assert len(bytes.fromhex(salt)) == 16 and len(bytes.fromhex(key)) == 32
    assert "480315" not in one
    assert ps.verify("480315", one) and ps.verify("480315", two)
    assert not ps.verify("480316", one)
    assert not ps.verify("480315", None)  # nothing stored: refused, after the same work
    assert not ps.verify("480315", "garbage")


def test_what_a_pin_or_badge_secret_may_be() -> None:
    assert ps.secret_problem("480315") is None
    assert ps.secret_problem("4" * 128) is None
    assert ps.secret_problem("Badge#Secret-77") is None  # a scanner's longer string
    for bad in ("12345", "", "4" * 129, "abc1234", "pin with spaces", 480315, None):
        assert ps.secret_problem(bad), bad
    for weak in ("000000", "123456", "987654", "890123", "111111111"):
        assert "easy to guess" in (ps.weak_secret_problem(weak, "worker-1") or ""), weak
    assert ps.weak_secret_problem("x4711yyy", "4711") == "The PIN must not contain your ID."
    assert ps.weak_secret_problem("480315", "7") is None  # a short ID is not searched for


def test_codes_are_twelve_random_digits_shown_in_groups() -> None:
    codes = {ps.new_code() for _ in range(50)}
    assert len(codes) == 50 and all(len(c) == 12 and c.isdigit() for c in codes)
    code = next(iter(codes))
    shown = ps.format_code(code)
    assert shown.count(" ") == 2 and ps.normalize_code(shown) == code
    assert ps.normalize_code(code[:4] + "-" + code[4:]) == code
    for bad in ("12345678901", "1234567890123", "abcd efgh ijkl", None, 12):
        assert ps.normalize_code(bad) is None


@pytest.fixture()
def secrets(tmp_path: Path):
    store = SQLiteStore(tmp_path / "w.db")
    yield ps.PersonSecrets(store)
    store.close()


def test_parallel_wrong_tries_never_exceed_the_limit(secrets) -> None:
    """Twenty tries at once (as from twenty sockets): five are checked, the rest refused for
    the lock, and the right PIN is refused too until the lock ends."""
    secrets.store.set_secret("p", ps.hash_secret("480315"), time.time())

    async def tries() -> list[ps.Outcome]:
        now = time.time()
        return await asyncio.gather(*(secrets.check("p", f"99{i:04d}", now) for i in range(20)))

    outcomes = asyncio.run(tries())
    assert not any(o.ok for o in outcomes)
    assert sum(o.sentence == ps.WRONG_SECRET for o in outcomes) <= 4
    assert all(o.locked for o in outcomes if o.sentence != ps.WRONG_SECRET)
    assert secrets.store.person_status("p", time.time())["failures"] == 5
    right = asyncio.run(secrets.check("p", "480315", time.time()))
    assert not right.ok and right.locked and "locked for 15 more minutes" in right.sentence
    assert asyncio.run(secrets.check("p", "480315", time.time() + ps.LOCK_S)).ok


def test_enrolment_uses_the_code_once_and_answers_the_same_for_unknown_ids(secrets) -> None:
    now = time.time()
    issued = secrets.issue_code("q", now)
    code = ps.normalize_code(issued["code"])
    assert issued["expires_at"] == now + ps.CODE_TTL_S
    assert secrets.store.enrolment_code("q", now) != code  # only the hash is kept
    wrong = asyncio.run(secrets.enrol("q", "000000000000", "480315", now))
    unknown = asyncio.run(secrets.enrol("nobody", code, "480315", now))
    assert wrong == unknown == ps.Outcome(False, ps.WRONG_CODE)
    assert asyncio.run(secrets.enrol("q", code, "480315", now)).ok
    assert asyncio.run(secrets.check("q", "480315", now)).ok
    assert asyncio.run(secrets.enrol("q", code, "555000", now)) == ps.Outcome(False,
                                                                              ps.WRONG_CODE)
    late = secrets.issue_code("q", now)
    expired = asyncio.run(secrets.enrol("q", ps.normalize_code(late["code"]), "555000",
                                        now + ps.CODE_TTL_S))
    assert not expired.ok
