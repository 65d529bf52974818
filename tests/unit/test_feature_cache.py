"""The measured windows of training clips, kept on disk: read back exactly, and never read
when what they were measured with has changed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from wellmon.config import Config
from wellmon.models.fusion.features import FusionInput
from wellmon.models.training.feature_cache import FeatureCache


def windows(count: int, seed: int = 0) -> list[FusionInput]:
    rng = np.random.default_rng(seed)
    shapes = {"visual": (8, 9), "visual_mask": (8,), "audio": (8, 6), "audio_mask": (8,),
              "text": (8, 3), "text_mask": (8,), "physio": (4,), "physio_mask": (),
              "stress_z": (5,), "stress_mask": (5,)}
    return [FusionInput(**{name: (rng.random(shape) > 0.5 if name.endswith("mask")
                                  else rng.standard_normal(shape).astype(np.float32))
                           for name, shape in shapes.items()}) for _ in range(count)]


def assert_same(got: list[FusionInput] | None, want: list[FusionInput]) -> None:
    assert got is not None and len(got) == len(want)
    for a, b in zip(got, want):
        for field in dataclasses.fields(FusionInput):
            np.testing.assert_array_equal(getattr(a, field.name), getattr(b, field.name))


def test_windows_come_back_as_they_were_put(tmp_path: Path) -> None:
    media = tmp_path / "clip.mp4"
    media.write_bytes(b"a clip")
    cache = FeatureCache(tmp_path / "features", Config())
    assert cache.get(media) is None
    kept = windows(5)
    cache.put(media, kept)
    assert_same(FeatureCache(tmp_path / "features", Config()).get(media), kept)
    cache.put(tmp_path / "clip.mp4", [])
    assert cache.get(media) == []
    assert not list((tmp_path / "features").glob("*partial*"))


def test_another_setting_or_another_file_is_measured_again(tmp_path: Path) -> None:
    media = tmp_path / "clip.mp4"
    media.write_bytes(b"a clip")
    config = Config()
    FeatureCache(tmp_path / "features", config).put(media, windows(3))
    other = dataclasses.replace(config, node=dataclasses.replace(
        config.node, window_s=config.node.window_s * 2))
    assert FeatureCache(tmp_path / "features", other).get(media) is None
    media.write_bytes(b"another clip, same name")
    assert FeatureCache(tmp_path / "features", config).get(media) is None


def test_an_entry_that_cannot_be_read_is_a_miss(tmp_path: Path) -> None:
    media = tmp_path / "clip.mp4"
    media.write_bytes(b"a clip")
    cache = FeatureCache(tmp_path / "features", Config())
    cache.put(media, windows(2))
    (entry,) = (tmp_path / "features").glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:100])
    assert cache.get(media) is None
    cache.put(media, windows(2, seed=1))
    assert_same(cache.get(media), windows(2, seed=1))
