"""A site: several dashboards on one PostgreSQL store, as real processes. A dashboard killed
during a check leaves it to a peer, which closes it when the dead one's lease runs out;
the restarted dashboard does not touch its peers' running checks."""

from __future__ import annotations

import json
import time

from tests.helpers import ADMIN_TOKEN, KIOSK_TOKEN, open_ws
from tests.system.test_kiosk import (
    CHECK_S,
    STREAM,
    kill_during_a_check,
    start_kiosk,
    until,
    wait_live,
)
from wellmon.harness import get_json, ws_url

LEASE_S = 3.0


def test_a_peer_closes_the_check_of_a_dashboard_that_died(processes, wellmon_env, postgres,
                                                          postgres_url) -> None:
    site = {**wellmon_env, "WELLMON_STORE_URL": postgres_url,
            "PGPASSFILE": str(postgres.passfile), "WELLMON_ASR_ENGINE": "off",
            "WELLMON_DASHBOARD_LEASE_S": str(LEASE_S), "WELLMON_DASHBOARD_CHECK_S": str(CHECK_S)}
    start_kiosk(processes, {**site, "WELLMON_DASHBOARD_INSTANCE": "gate-a"})
    processes.env = {**site, "WELLMON_DASHBOARD_INSTANCE": "gate-b",
                     "WELLMON_DASHBOARD_KIOSK_STREAM": "gate-b-camera"}
    processes.start("dashboard-b", "dashboard")
    office = processes.dashboard_url("dashboard-b")

    started = kill_during_a_check(processes, "worker-3")
    check_url = f"{office}api/checks/{started['check_id']}"
    assert get_json(check_url, ADMIN_TOKEN)["check"]["status"] == "running"  # gate-a's lease
    deadline = time.monotonic() + 60
    while (check := get_json(check_url, ADMIN_TOKEN)["check"])["status"] == "running":
        assert time.monotonic() < deadline, "gate-b never closed gate-a's check"
        time.sleep(0.2)
    assert check["status"] == "incomplete" and check["dashboard"] == "gate-a"
    assert check["reason"] == "interrupted: dashboard gate-a stopped during the check"
    assert check["windows"]  # what gate-a stored before it died is kept

    # gate-a again, while gate-b has a check of its own running: gate-a leaves it alone.
    processes.env = {**site, "WELLMON_DASHBOARD_INSTANCE": "gate-b",
                     "WELLMON_DASHBOARD_KIOSK_STREAM": STREAM}
    processes.kill("dashboard-b")
    processes.start("dashboard-b", "dashboard")
    with open_ws(ws_url(processes.dashboard_url("dashboard-b"), "ws/kiosk"), KIOSK_TOKEN) as ws:
        wait_live(ws)
        ws.send(json.dumps({"type": "check.start", "person": "worker-4", "consent": True}))
        theirs, _ = until(ws, "check.started")
        processes.env = {**site, "WELLMON_DASHBOARD_INSTANCE": "gate-a",
                         "WELLMON_DASHBOARD_KIOSK_STREAM": "gate-a-camera"}
        processes.start("dashboard", "dashboard")
        time.sleep(LEASE_S)  # gate-a has renewed and looked for dead peers at least once
        check = get_json(f"{processes.dashboard_url()}api/checks/{theirs['check_id']}",
                         ADMIN_TOKEN)["check"]
        assert check["status"] in ("running", "complete"), check  # not closed by gate-a
