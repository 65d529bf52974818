"""Output files that appear whole or not at all.

`wellmon replay --out keep.jsonl` once emptied an existing keep.jsonl when its input could
not be opened: it truncated the output first. `output_file` writes a temporary file beside
the output instead (the same folder, so the rename is atomic) and renames it over the
output only when the block succeeds; a failure removes it and leaves the output as it was.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


class OutputError(ValueError):
    """An output path that cannot be written; the message names it and why."""



def _target(path: Path, overwrite: bool) -> Path:
    """The file that ``path`` names, symlinks followed (the file they point to is the one
    the user means), refused when it is a folder or, without ``overwrite``, exists."""
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder (give a file path)")
    if not overwrite and (path.exists() or path.is_symlink()):
        raise _exists(path)
    return path.resolve()


def _exists(path: Path) -> OutputError:
    return OutputError(f"{path} already exists; not overwritten (remove it or give another "
                      f"path)")


@contextmanager
def output_file(path: Path, overwrite: bool = True) -> Iterator[TextIO]:
    """A text file to write that becomes ``path`` only if the block raises nothing.

    Missing folders are made. An existing file keeps its permission bits. A ``path`` that
    is not a regular file (/dev/stdout, a FIFO) is written directly: replacing it would
    destroy it, and there is nothing to keep whole.
    """
    target = _target(path, overwrite)
    if target.exists() and not target.is_file():
        with _reported(path):
            sink = target.open("w")
        with sink:
            yield sink
        return
    temporary = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
    with _reported(path):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError as exc:
            raise OutputError(f"cannot write {path}: {exc.filename} is not a folder") from None
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "w") as sink:
            yield sink
        with _reported(path):
            if target.exists():
                os.chmod(temporary, stat.S_IMODE(target.stat().st_mode))
            if overwrite:
                os.replace(temporary, target)
            else:  # link fails on an existing name, where a rename would replace it
                try:
                    os.link(temporary, target)
                except FileExistsError:
                    raise _exists(path) from None
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def _reported(path: Path) -> Iterator[None]:
    """An OSError of the file system (a missing permission, a file where a folder should
    be) as the one-line OutputError naming ``path``."""
    try:
        yield
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
