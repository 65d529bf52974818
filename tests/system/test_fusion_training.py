"""`wellmon train` end to end on a labelled set generated here, and `wellmon export`.

No labelled emotion corpus is reachable, so the test makes one whose classes differ in real
signal properties: each class is a voice pitch and a pulse rate, spoken by six espeak-ng
voices (the "speakers" of the speaker-independent split). The clips go through the same
perception code as live; the network must learn pitch from the audio features.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: training needs it")

from wellmon.models.fusion import spec  # noqa: E402
from wellmon.models.fusion.serving import FusionModel  # noqa: E402
from wellmon.streamer.synthetic import ClipSpec, make_clip  # noqa: E402

CLASSES = {"sad": (5, 58.0), "neutral": (50, 75.0), "fear": (95, 110.0)}
"""label -> (espeak-ng pitch 0-99, pulse bpm)."""
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbclan")
SENTENCES = ("The quick brown fox jumps over the lazy dog near the river bank today.",
             "We are checking that the model hears the pitch of every single voice here.")


@pytest.fixture(scope="module")
def labelled_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("labelled")
    rows = []
    for label, (pitch, bpm) in CLASSES.items():
        for v, voice in enumerate(VOICES):
            for k, sentence in enumerate(SENTENCES):
                name = f"{voice}_{label}_{k}.mp4"
                make_clip(root / name, ClipSpec(
                    duration_s=6.0, fps=15, width=320, height=240, heart_rate_bpm=bpm,
                    blink_times_s=(2.0,), speech=((0.2, sentence),), speech_voice=voice,
                    speech_pitch=pitch, preset="ultrafast", seed=100 * v + k))
                rows.append({"file": name, "label": label, "speaker": voice})
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "label", "speaker"])
        writer.writeheader()
        writer.writerows(rows)
    return root / "manifest.csv"


def test_train_learns_the_classes_and_the_onnx_reproduces_it(labelled_set: Path,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "model"
    env_config = tmp_path / "config.yaml"
    env_config.write_text("asr:\n  engine: 'off'\n")
    done = subprocess.run(
        [sys.executable, "-m", "wellmon", "--config", str(env_config), "train",
         str(labelled_set), "--out", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    card = json.loads((out / "MODEL_CARD.json").read_text())
    test = card["metrics"]["test"]
    windows = card["metrics"]["test_windows"]
    print(f"test speakers {card['split']['test']['speakers']}: clip WA {test['wa']:.3f} "
          f"UA {test['ua']:.3f}; window WA {windows['wa']:.3f}")
    assert test["wa"] >= 0.95 and windows["wa"] >= 0.95
    # the card's figures are onnxruntime's; torch predicts the same for every test window
    assert card["training"]["onnx_matches_torch_on_test"] is True
    assert card["data"]["kind"] == "manifest"
    assert set(card["split"]["test"]["speakers"]).isdisjoint(card["split"]["train"]["speakers"])
    assert (out / "confusion.png").stat().st_size > 1000
    assert "wellness indicator, not a diagnosis" in (out / "MODEL_CARD.md").read_text()

    model = FusionModel(out / "fusion.onnx")
    assert model.kind == "trained"

    # `wellmon export` turns the checkpoint into the same model again.
    again = tmp_path / "again.onnx"
    done = subprocess.run([sys.executable, "-m", "wellmon", "export", str(out / "fusion.pt"),
                           "--out", str(again)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    from wellmon.models.training.network import example_inputs

    inputs = {n: t.numpy() for n, t in zip(spec.INPUT_NAMES, example_inputs(4, seed=1))}
    for a, b in zip(model.session.run(None, inputs),
                    FusionModel(again).session.run(None, inputs)):
        np.testing.assert_allclose(a, b, atol=1e-5)
