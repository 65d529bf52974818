"""How a user's mistake ends a `wellmon` command: one line on stderr and exit status 2.

Status 2 means "change what you typed or configured"; any other non-zero status is a bug
(or a child that crashed). Errors of the other layers (`ConfigError`, `SourceError`,
`ModelError`, `DatasetError`) end the same way: `wellmon.cli.main` passes them all to
`fail`.
"""

from __future__ import annotations

import sys

EXIT_USAGE = 2


class UsageError(Exception):
    """A mistake in the command line or in a file it names; the message says which."""


def fail(message: object) -> int:
    """Print ``message`` as the single line `wellmon: ...` on stderr; return EXIT_USAGE.

    Line breaks inside the message (a library's multi-line text) are folded, so that a
    script reading stderr always gets exactly one line.
    """
    print(f"wellmon: {' '.join(str(message).split())}", file=sys.stderr, flush=True)
    return EXIT_USAGE
