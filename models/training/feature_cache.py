"""The fusion inputs of labelled clips, kept on disk so that training another architecture
on the same clips (`wellmon train --features DIR`, every run of `wellmon compare`) does not
measure every clip again: on a two-core machine that is most of a run's time.

A clip's entry is one ``.npz`` file named by a digest of what its windows depend on: the
media file (path, size, modification time), the configuration sections that shape the
measurement (capture, node, perception, asr) and the source of the code that measures
(perception and its weights, windowing, stress, fusion features, the media
readers). Change any of them and
the entry is simply not found, so a stale feature is never read; old entries are left for
the user to delete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zipfile
from functools import cache
from pathlib import Path

import numpy as np

from wellmon.config import Config
from wellmon.models.fusion.features import FusionInput

PACKAGE = Path(__file__).resolve().parents[2]
MEASURING_CODE = ("models/perception", "models/node", "models/stress", "models/fusion",
                  "models/weights/weights.json", "streamer/sources.py")
"""What a clip's windows are computed by (the code and which model weights), relative to
the package root."""
FIELDS = [f.name for f in dataclasses.fields(FusionInput)]


@cache
def _code_digest() -> str:
    digest = hashlib.sha256()
    for part in MEASURING_CODE:
        root = PACKAGE / part
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            digest.update(str(path.relative_to(PACKAGE)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


class FeatureCache:
    """Windows of clips by media file, for one configuration (module doc)."""

    def __init__(self, folder: Path, config: Config) -> None:
        self.folder = folder
        sections = {name: dataclasses.asdict(getattr(config, name))
                    for name in ("capture", "node", "perception", "asr")}
        self._setting = json.dumps(sections, sort_keys=True, default=str) + _code_digest()

    def _entry(self, media: Path) -> Path:
        stat = media.stat()
        key = f"{media.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self._setting}"
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"

    def get(self, media: Path) -> list[FusionInput] | None:
        """The windows measured before, or None (never measured, measured otherwise, or an
        entry that cannot be read: the clip is then measured again and the entry rewritten)."""
        entry = self._entry(media)
        if not entry.is_file():
            return None
        try:
            with np.load(entry) as data:
                count = int(data["windows"])
                return [FusionInput(**{name: data[name][i] for name in FIELDS})
                        for i in range(count)]
        except (OSError, ValueError, KeyError, IndexError, zipfile.BadZipFile):
            return None

    def put(self, media: Path, windows: list[FusionInput]) -> None:
        """Keep these windows of `media` (written whole, then renamed: never half a file)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        entry = self._entry(media)
        arrays = {name: np.stack([getattr(x, name) for x in windows]) if windows
                  else np.zeros(0) for name in FIELDS}
        partial = entry.with_name(f"{entry.stem}.{os.getpid()}.partial.npz")
        np.savez(partial, windows=len(windows), **arrays)
        partial.replace(entry)
