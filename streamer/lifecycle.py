"""How every wellmon process starts and stops, so that the supervisor can manage them.

A child process prints one line `READY <details>` on stdout once its sockets
are up; the supervisor waits for that line to know the start succeeded.
SIGTERM and SIGINT set a stop flag that the process's loop checks, so that it
closes its sockets and exits 0 instead of dying mid-write.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

READY_PREFIX = "READY"


def announce_ready(details: str) -> None:
    print(f"{READY_PREFIX} {details}", flush=True)


EXIT_GRACE_S = 5


def stop_on_signals(exit_grace_s: int | None = EXIT_GRACE_S) -> threading.Event:
    """An event that is set by SIGTERM or SIGINT (call from the main thread).

    The first signal also arms SIGALRM: a process whose loop is stuck in a long native call
    is ended by the kernel `exit_grace_s` later, so a stop never leaves an orphan behind.
    The supervisor passes None: it must outlive its children to reap them.
    """
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        if exit_grace_s and not stop.is_set():
            signal.alarm(exit_grace_s)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    return stop


def log(role: str, message: str) -> None:
    """One line on stderr; the supervisor prefixes and forwards it."""
    print(f"{role}: {message}", file=sys.stderr, flush=True)


def die_with(parent_pid: int) -> None:
    """Get SIGTERM when the parent dies, even by SIGKILL (Linux), so that no child of a
    wellmon process is ever orphaned; if the parent is already gone, stop now."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)
