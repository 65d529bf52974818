"""Training-corpus loaders, the speaker-independent split and the model card.

The loaders read names and annotation text only, so the trees here are empty files.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from wellmon.models.perception.face import EMOTIONS
from wellmon.models.training.card import (
    accuracy_report,
    confusion_matrix,
    confusion_png,
    write_model_card,
)
from wellmon.models.training.datasets import (
    DatasetError,
    Sample,
    load_crema_d,
    load_dataset,
    load_iemocap,
    load_manifest,
    load_ravdess,
    speaker_split,
)


def _touch(root: Path, *names: str) -> list[Path]:
    paths = []
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------- RAVDESS


def test_ravdess_labels_speakers_and_full_av_preferred(tmp_path: Path) -> None:
    _touch(tmp_path,
           "Actor_01/01-01-02-01-01-01-01.mp4",  # calm -> neutral
           "Actor_01/01-01-06-02-01-01-01.mp4",  # fearful -> fear
           "Actor_02/01-02-08-01-02-02-02.mp4",  # song, surprised -> surprise
           "Actor_02/01-01-05-01-01-01-02.mp4",  # angry
           "Audio/Actor_01/03-01-03-01-01-01-01.wav",  # audio-only: not used, AV exists
           "Video/02-01-04-01-01-01-01.mp4",  # video-only: not used
           "README.txt", "Actor_01/notes-01.wav", "Actor_01/1-2-3.wav")  # unrelated
    samples = load_ravdess(tmp_path)
    got = {(s.path.name, s.label, s.speaker) for s in samples}
    assert got == {
        ("01-01-02-01-01-01-01.mp4", "neutral", "actor_01"),
        ("01-01-06-02-01-01-01.mp4", "fear", "actor_01"),
        ("01-02-08-01-02-02-02.mp4", "surprise", "actor_02"),
        ("01-01-05-01-01-01-02.mp4", "angry", "actor_02"),
    }
    assert all(s.valence is None and s.arousal is None for s in samples)
    assert all(s.label in EMOTIONS for s in samples)


def test_ravdess_falls_back_to_audio_only_then_video_only(tmp_path: Path) -> None:
    _touch(tmp_path, "a/03-01-07-01-01-01-24.wav", "a/03-01-01-01-01-01-23.wav",
           "a/02-01-03-01-01-01-23.mp4")
    samples = load_ravdess(tmp_path)
    assert sorted((s.label, s.speaker) for s in samples) == [
        ("disgust", "actor_24"), ("neutral", "actor_23")]
    only_video = tmp_path / "v"
    _touch(only_video, "02-01-03-01-01-01-05.mp4")
    assert [(s.label, s.speaker) for s in load_ravdess(only_video)] == [("happy", "actor_05")]


@pytest.mark.parametrize(("name", "expected"), [
    ("03-01-09-01-01-01-01.wav", "emotion code 09 is not 01-08"),
    ("04-01-01-01-01-01-01.wav", "modality code 04 is not 01-03"),
    ("03-01-01-01-01-01-25.wav", "actor code 25 is not 01-24"),
    ("03-01-01-3-01-01-01.wav", "intensity code 3 is not 01-02"),
])
def test_ravdess_bad_codes_name_the_file(tmp_path: Path, name: str, expected: str) -> None:
    _touch(tmp_path, "01-01-01-01-01-01-01.mp4", f"sub/{name}")
    with pytest.raises(DatasetError) as err:
        load_ravdess(tmp_path)
    assert name in str(err.value) and expected in str(err.value)


def test_ravdess_empty_tree_is_an_error(tmp_path: Path) -> None:
    _touch(tmp_path, "readme.md")
    with pytest.raises(DatasetError, match="no RAVDESS files"):
        load_ravdess(tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        load_ravdess(tmp_path / "missing")


# ---------------------------------------------------------------------------------- CREMA-D


def test_crema_d_prefers_video_and_maps_labels(tmp_path: Path) -> None:
    _touch(tmp_path,
           "AudioWAV/1001_DFA_ANG_XX.wav", "VideoFlash/1001_DFA_ANG_XX.flv",
           "AudioWAV/1002_IEO_HAP_HI.wav",
           "AudioWAV/1003_TIE_NEU_XX.wav", "VideoMP4/1003_TIE_NEU_XX.mp4",
           "VideoFlash/1003_TIE_NEU_XX.flv",
           "AudioWAV/1091_WSI_DIS_LO.wav", "AudioWAV/1091_WSI_FEA_MD.wav",
           "AudioWAV/1091_WSI_SAD_MD.wav", "notes_about_it.txt")
    samples = load_crema_d(tmp_path)
    got = {s.path.relative_to(tmp_path).as_posix(): (s.label, s.speaker) for s in samples}
    assert got == {
        "VideoFlash/1001_DFA_ANG_XX.flv": ("angry", "actor_1001"),
        "AudioWAV/1002_IEO_HAP_HI.wav": ("happy", "actor_1002"),
        "VideoMP4/1003_TIE_NEU_XX.mp4": ("neutral", "actor_1003"),
        "AudioWAV/1091_WSI_DIS_LO.wav": ("disgust", "actor_1091"),
        "AudioWAV/1091_WSI_FEA_MD.wav": ("fear", "actor_1091"),
        "AudioWAV/1091_WSI_SAD_MD.wav": ("sad", "actor_1091"),
    }


@pytest.mark.parametrize(("name", "expected"), [
    ("1001_DFA_XYZ_XX.wav", "emotion XYZ"),
    ("1001_DFA_ANG_ZZ.wav", "level ZZ"),
    ("1001_QQQ_ANG_XX.wav", "sentence QQQ"),
])
def test_crema_d_bad_codes_name_the_file(tmp_path: Path, name: str, expected: str) -> None:
    _touch(tmp_path, "1002_IEO_HAP_HI.wav", name)
    with pytest.raises(DatasetError) as err:
        load_crema_d(tmp_path)
    assert name in str(err.value) and expected in str(err.value)


# ---------------------------------------------------------------------------------- IEMOCAP

EVAL_1 = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]
C-E2:\tNeutral;\t()
A-E3:\tval 3; act 2; dom  2;\t()

[10.0000 - 11.0000]\tSes01F_impro01_M001\texc\t[4.0000, 5.0000, 3.0000]

[12.0000 - 13.0000]\tSes01F_impro01_F002\txxx\t[3.0000, 3.0000, 3.0000]

[14.0000 - 15.0000]\tSes01F_impro01_M003\tang\t[1.5000, 4.5000, 4.0000]

[16.0000 - 17.0000]\tSes01F_impro01_F004\tsad\t[2.0000, 2.0000, 2.0000]

[18.0000 - 19.0000]\tSes01F_impro01_F005\tfru\t[2.0000, 3.5000, 3.0000]
"""
EVAL_2 = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[1.0000 - 2.0000]\tSes02M_script01_1_F000\thap\t[5.0000, 3.0000, 3.0000]
"""


def _iemocap(root: Path) -> Path:
    ev1 = root / "Session1/dialog/EmoEvaluation"
    ev1.mkdir(parents=True)
    (ev1 / "Ses01F_impro01.txt").write_text(EVAL_1)
    (ev1 / "Categorical").mkdir()  # other annotation formats live in subdirectories
    (ev1 / "Categorical" / "Ses01F_impro01_e2_cat.txt").write_text("[not a summary line\n")
    (ev1 / "._Ses01F_impro01.txt").write_bytes(b"\x00\x05\x16\x07 mac fork")
    ev2 = root / "Session2/dialog/EmoEvaluation"
    ev2.mkdir(parents=True)
    (ev2 / "Ses02M_script01_1.txt").write_text(EVAL_2)
    _touch(root,
           "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav",
           "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M001.wav",
           "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F002.wav",
           "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M003.wav",
           # F004 (sad) has no wav
           "Session2/sentences/wav/Ses02M_script01_1/Ses02M_script01_1_F000.wav")
    return root


def test_iemocap_labels_speakers_and_dimensions(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    root = _iemocap(tmp_path)
    with caplog.at_level(logging.INFO, logger="wellmon.models.training.datasets"):
        samples = load_iemocap(root)
    by_name = {s.path.stem: s for s in samples}
    assert set(by_name) == {"Ses01F_impro01_F000", "Ses01F_impro01_M001",
                            "Ses01F_impro01_M003", "Ses02M_script01_1_F000"}
    f000 = by_name["Ses01F_impro01_F000"]
    assert (f000.label, f000.speaker, f000.valence, f000.arousal) == (
        "neutral", "Ses01_F", -0.25, -0.25)
    assert f000.path == (root / "Session1/sentences/wav/Ses01F_impro01/"
                         "Ses01F_impro01_F000.wav")
    m001 = by_name["Ses01F_impro01_M001"]
    assert (m001.label, m001.speaker, m001.valence, m001.arousal) == ("happy", "Ses01_M", 0.5, 1.0)
    m003 = by_name["Ses01F_impro01_M003"]
    assert (m003.label, m003.speaker, m003.valence, m003.arousal) == (
        "angry", "Ses01_M", -0.75, 0.75)
    f_ses2 = by_name["Ses02M_script01_1_F000"]
    assert (f_ses2.label, f_ses2.speaker, f_ses2.valence) == ("happy", "Ses02_F", 1.0)
    assert "skipped 1 labelled utterance(s) without a wav" in caplog.text


def test_iemocap_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no Session1..Session5"):
        load_iemocap(tmp_path)
    ev = tmp_path / "Session1/dialog/EmoEvaluation"
    ev.mkdir(parents=True)
    (ev / "Ses01F_impro01.txt").write_text(EVAL_1)
    with pytest.raises(DatasetError, match="no usable utterances"):
        load_iemocap(tmp_path)  # labels but no wav at all
    (ev / "Ses01F_impro01.txt").write_text(
        EVAL_1 + "\n[20.0 - 21.0]\tSes01F_impro01_F006\tbored\t[3.0, 3.0, 3.0]\n")
    with pytest.raises(DatasetError) as err:
        load_iemocap(tmp_path)
    line = EVAL_1.count("\n") + 2  # after EVAL_1's lines and one blank line
    assert f"Ses01F_impro01.txt line {line}:" in str(err.value) and "bored" in str(err.value)


# --------------------------------------------------------------------------------- manifest


def test_manifest_csv_aliases_defaults_and_relative_paths(tmp_path: Path) -> None:
    _touch(tmp_path, "clips/alice/a.mp4", "clips/bob/b.wav", "clips/bob/c.wav")
    absolute = _touch(tmp_path, "elsewhere/d.wav")[0]
    manifest = tmp_path / "train.csv"
    manifest.write_text(
        "file,label,valence,arousal,speaker\n"
        "clips/alice/a.mp4,calm,0.5,-0.25,\n"
        "clips/bob/b.wav,FEARFUL,,,bob_b\n"
        "\n"
        f"{absolute},hap,-1,1,dee\n"
        "clips/bob/c.wav, surprised ,,,\n")
    samples = load_manifest(manifest)
    assert samples == [
        Sample(tmp_path / "clips/alice/a.mp4", "neutral", "alice", 0.5, -0.25),
        Sample(tmp_path / "clips/bob/b.wav", "fear", "bob_b"),
        Sample(absolute, "happy", "dee", -1.0, 1.0),
        Sample(tmp_path / "clips/bob/c.wav", "surprise", "bob"),
    ]


def test_manifest_jsonl(tmp_path: Path) -> None:
    _touch(tmp_path, "x/a.wav", "y/b.wav")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"file": "x/a.wav", "label": "exc", "valence": 0.2}\n\n'
                        '{"file": "y/b.wav", "label": "sad", "arousal": "-0.5", '
                        '"speaker": "s2"}\n')
    assert load_manifest(manifest) == [
        Sample(tmp_path / "x/a.wav", "happy", "x", 0.2, None),
        Sample(tmp_path / "y/b.wav", "sad", "s2", None, -0.5),
    ]


@pytest.mark.parametrize(("body", "line", "column", "problem"), [
    ("file,label\na.wav,happy\na.wav,bored\n", 3, "label", "unknown label 'bored'"),
    ("file,label,valence\na.wav,happy,1.5\n", 2, "valence", "out of range"),
    ("file,label,arousal\na.wav,happy,high\n", 2, "arousal", "not a number"),
    ("file,label\na.wav,happy\nmissing.wav,sad\n", 3, "file", "does not exist"),
    ("file,label\n,happy\n", 2, "file", "missing value"),
    ("file,emotion\na.wav,happy\n", 1, "label", "missing column"),
])
def test_manifest_csv_errors_name_line_and_column(tmp_path: Path, body: str, line: int,
                                                  column: str, problem: str) -> None:
    _touch(tmp_path, "a.wav")
    manifest = tmp_path / "data.csv"
    manifest.write_text(body)
    with pytest.raises(DatasetError) as err:
        load_manifest(manifest)
    message = str(err.value)
    assert str(manifest) in message and f"line {line}" in message
    assert f"'{column}'" in message and problem in message
    if "unknown label" in problem:
        assert all(emotion in message for emotion in EMOTIONS)


def test_manifest_jsonl_errors(tmp_path: Path) -> None:
    _touch(tmp_path, "a.wav")
    manifest = tmp_path / "data.jsonl"
    manifest.write_text('{"file": "a.wav", "label": "sad"}\n{"file": "a.wav"}\n')
    with pytest.raises(DatasetError, match=r"data\.jsonl line 2, column 'label': missing"):
        load_manifest(manifest)
    manifest.write_text('{"file": "a.wav", "label": "sad", "valence": -2}\n')
    with pytest.raises(DatasetError, match=r"line 1, column 'valence'.*out of range"):
        load_manifest(manifest)
    manifest.write_text('{"file": "a.wav", "label": "sad"}\nnot json\n')
    with pytest.raises(DatasetError, match="line 2: not JSON"):
        load_manifest(manifest)
    other = tmp_path / "data.txt"
    other.write_text("file,label\n")
    with pytest.raises(DatasetError, match="unknown extension"):
        load_manifest(other)


# --------------------------------------------------------------------------------- dispatch


def test_load_dataset_detects_each_layout(tmp_path: Path) -> None:
    ravdess = tmp_path / "ravdess"
    _touch(ravdess, "Actor_03/03-01-04-01-01-01-03.wav")
    crema = tmp_path / "crema"
    _touch(crema, "AudioWAV/1005_ITS_SAD_XX.wav")
    iemocap = _iemocap(tmp_path / "iemocap")
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,label\nravdess/Actor_03/03-01-04-01-01-01-03.wav,angry\n")

    assert [(s.label, s.speaker) for s in load_dataset(ravdess)] == [("sad", "actor_03")]
    assert [(s.label, s.speaker) for s in load_dataset(crema)] == [("sad", "actor_1005")]
    assert len(load_dataset(iemocap)) == 4
    assert [(s.label, s.speaker) for s in load_dataset(manifest)] == [("angry", "Actor_03")]
    # An explicit kind overrides detection.
    assert [s.label for s in load_dataset(ravdess, kind="ravdess")] == ["sad"]
    assert [s.label for s in load_dataset(crema, kind="crema-d")] == ["sad"]
    with pytest.raises(DatasetError, match="no CREMA-D files"):
        load_dataset(ravdess, kind="crema-d")


def test_load_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as err:
        load_dataset(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value) and "does not exist" in str(err.value)
    _touch(tmp_path, "clip.wav", "other/song.mp4")
    with pytest.raises(DatasetError) as err:
        load_dataset(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message
    assert "IEMOCAP" in message and "RAVDESS" in message and "CREMA-D" in message
    with pytest.raises(DatasetError, match="unknown dataset kind"):
        load_dataset(tmp_path, kind="voxceleb")


# ------------------------------------------------------------------------------------ split


def _corpus(n_speakers: int, per_speaker: int, seed: int = 0) -> list[Sample]:
    rng = np.random.default_rng(seed)
    samples = []
    for k in range(n_speakers):
        for i in range(per_speaker):
            label = EMOTIONS[int(rng.integers(0, len(EMOTIONS)))]
            samples.append(Sample(Path(f"s{k}/{i}.wav"), label, f"spk{k:02d}"))
    return samples


def _assert_partition(samples: list[Sample], split) -> None:
    speakers = split.speakers
    assert not speakers["train"] & speakers["val"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["val"] & speakers["test"]
    assert all(speakers[part] for part in ("train", "val", "test"))
    assert Counter(split.train + split.val + split.test) == Counter(samples)


def test_speaker_split_is_disjoint_proportional_and_deterministic() -> None:
    samples = _corpus(20, 10)
    split = speaker_split(samples, seed=3)
    _assert_partition(samples, split)
    assert abs(len(split.val) - 30) <= 10 and abs(len(split.test) - 30) <= 10
    again = speaker_split(samples, seed=3)
    assert (again.train, again.val, again.test) == (split.train, split.val, split.test)
    # The input order does not matter, only the seed.
    shuffled = speaker_split(samples[::-1], seed=3)
    assert shuffled.speakers == split.speakers
    assert {frozenset(speaker_split(samples, seed=s).speakers["test"]) for s in range(6)} != {
        frozenset(split.speakers["test"])}
    summary = split.summary()
    assert summary["val"]["samples"] == len(split.val)
    assert summary["test"]["speakers"] == sorted(split.speakers["test"])


def test_speaker_split_three_speakers_and_uneven_sizes() -> None:
    samples = _corpus(1, 50) + [Sample(Path(f"b{i}"), "sad", "b") for i in range(5)] + [
        Sample(Path("c0"), "happy", "c")]
    split = speaker_split(samples)
    _assert_partition(samples, split)
    assert split.speakers["train"] == {"spk00"}  # the big speaker is 70 % of the data


def test_speaker_split_gives_every_part_a_speaker_even_with_small_fractions() -> None:
    # Greedy packing alone puts everything in train here; each part still needs a speaker.
    samples = [Sample(Path(f"{k}/{i}"), "sad", f"spk{k}") for k in range(3) for i in range(10)]
    samples.append(Sample(Path("tiny/0"), "happy", "tiny"))
    for seed in range(3):
        split = speaker_split(samples, val_fraction=0.05, test_fraction=0.05, seed=seed)
        _assert_partition(samples, split)


def test_speaker_split_keeps_a_rare_class_in_train() -> None:
    samples = [s for s in _corpus(10, 20) if s.label != "disgust"]
    samples += [Sample(Path("rare/0.wav"), "disgust", "rare")]
    for seed in range(5):
        split = speaker_split(samples, seed=seed)
        _assert_partition(samples, split)
        assert "rare" in split.speakers["train"]


def test_speaker_split_needs_three_speakers() -> None:
    samples = _corpus(2, 5)
    with pytest.raises(DatasetError, match="at least 3 speakers"):
        speaker_split(samples)
    with pytest.raises(ValueError, match="val_fraction"):
        speaker_split(_corpus(5, 2), val_fraction=0.0)
    with pytest.raises(ValueError, match="< 1"):
        speaker_split(_corpus(5, 2), val_fraction=0.5, test_fraction=0.5)


# ------------------------------------------------------------------------------------- card

LABELS = ("a", "b", "c", "d")
Y_TRUE = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
Y_PRED = [0, 0, 0, 1, 1, 0, 2, 2, 1, 2]


def test_confusion_matrix_and_wa_ua_by_hand() -> None:
    matrix = confusion_matrix(Y_TRUE, Y_PRED, 4)
    assert matrix.tolist() == [[3, 1, 0, 0], [1, 1, 0, 0], [0, 1, 3, 0], [0, 0, 0, 0]]
    report = accuracy_report(Y_TRUE, Y_PRED, LABELS)
    assert report["n"] == 10 and report["correct"] == 7
    assert report["wa"] == pytest.approx(0.7)
    # Mean of 3/4, 1/2, 3/4 over the classes present (d never occurs): not 0.7, not 0.5.
    assert report["ua"] == pytest.approx(2 / 3)
    assert report["per_class"]["a"] == {"count": 4, "correct": 3, "recall": 0.75}
    assert report["per_class"]["b"]["recall"] == pytest.approx(0.5)
    assert report["per_class"]["d"] == {"count": 0, "correct": 0, "recall": None}
    empty = accuracy_report([], [], LABELS)
    assert empty["wa"] is None and empty["ua"] is None
    with pytest.raises(ValueError):
        confusion_matrix([0, 4], [0, 1], 4)
    with pytest.raises(ValueError):
        confusion_matrix([0, 1], [0], 4)


def test_confusion_png_is_readable(tmp_path: Path) -> None:
    matrix = confusion_matrix(Y_TRUE * 3, Y_PRED * 3, 4)
    path = tmp_path / "confusion.png"
    confusion_png(matrix, LABELS, path, "test set")
    img = cv2.imread(str(path))
    assert img is not None and img.shape[0] > 100 and img.shape[1] > 100
    assert float(img.std()) > 10
    # Shaded cells: bluish pixels (blue well above red) exist for the heavy diagonal.
    bluish = (img[..., 0].astype(int) - img[..., 2].astype(int)) > 60
    assert bluish.sum() > 500
    # Seven long class names still fit.
    big = tmp_path / "big.png"
    confusion_png(np.eye(7, dtype=int) * 12, EMOTIONS, big, "Confusion (validation)")
    assert cv2.imread(str(big)).shape[1] >= 7 * 40
    with pytest.raises(OSError, match="could not write"):
        confusion_png(matrix, LABELS, tmp_path / "no" / "dir" / "c.png", "x")
    with pytest.raises(ValueError):
        confusion_png(matrix, LABELS[:3], tmp_path / "c.png", "x")


def test_write_model_card_md_and_json(tmp_path: Path) -> None:
    val = accuracy_report(Y_TRUE, Y_PRED, LABELS)
    test = accuracy_report([0, 1, 2], [0, 1, 1], LABELS)
    card = tmp_path / "MODEL_CARD.md"
    write_model_card(
        card, model_file="fusion.onnx",
        data={"kind": "ravdess", "root": "/data/ravdess", "samples": np.int64(13),
              "samples_per_class": {"a": 5, "b": 3, "c": 5, "d": 0}},
        split={"train": {"speakers": ["actor_01", "actor_02"], "samples": 20},
               "val": {"speakers": ["actor_03"], "samples": 10},
               "test": {"speakers": ["actor_04"], "samples": 3}, "seed": 0},
        metrics={"val": val, "test": test},
        training={"epochs": 40, "best_epoch": 17, "lr": 3e-4, "seed": 0,
                  "final_loss": float("nan")},
        confusion_png_name="confusion_test.png")
    md = card.read_text()
    for needle in ("fusion.onnx", "not a diagnosis", "WA", "UA", "70.0 %", "66.7 %",
                   "actor_03", "actor_04", "confusion_test.png", "ravdess", "/data/ravdess",
                   "learning rate", "0.0003", "17", "not been measured"):
        assert needle in md, needle
    record = json.loads((tmp_path / "MODEL_CARD.json").read_text())
    assert record["model_file"] == "fusion.onnx"
    assert record["metrics"]["val"]["wa"] == pytest.approx(0.7)
    assert record["metrics"]["test"]["ua"] == pytest.approx(2 / 3)
    assert record["metrics"]["val"]["per_class"]["d"]["recall"] is None
    assert record["split"]["test"]["speakers"] == ["actor_04"]
    assert record["data"]["samples"] == 13
    assert record["training"]["final_loss"] is None  # NaN is not JSON
    assert record["confusion_png"] == "confusion_test.png"


def test_the_crossmodal_benchmark_needs_both_what_is_said_and_how(tmp_path) -> None:
    """Its classes: words alone and voice alone each leave two pairs; together they are
    unique. The clips and manifest load as a dataset `wellmon train` takes."""
    from wellmon.models.training.crossmodal import (
        CLASSES,
        SENTENCES_PER_SPEAKER,
        SPEAKERS,
        TEXT_CEILING,
        WORDS,
        make_crossmodal,
    )

    assert len(set(CLASSES.values())) == len(CLASSES)  # (words, delivery) decides the class
    for sentences in WORDS.values():  # no sentence said by two speakers
        assert len(set(sentences)) == len(sentences) == len(SPEAKERS) * SENTENCES_PER_SPEAKER
    for part in (0, 1):  # either modality alone: neutral plus two pairs
        groups = sorted(sum(1 for c in CLASSES.values() if c[part] == v)
                        for v in {c[part] for c in CLASSES.values()})
        assert groups == [1, 2, 2]
        assert (1 + 2 * 0.5 * 2) / len(CLASSES) == TEXT_CEILING
    manifest = make_crossmodal(tmp_path / "xm", speakers=2, sentences=1, seconds=7.0)
    samples = load_dataset(manifest)
    assert sorted(s.label for s in samples) == sorted(list(CLASSES) * 2)
    assert {s.speaker for s in samples} == {"en-us", "en-gb"}
    assert all(s.path.is_file() and s.path.stat().st_size > 10_000 for s in samples)
