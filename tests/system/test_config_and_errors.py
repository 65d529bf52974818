"""Mistakes a user makes get exit status 2 and a message naming what is wrong."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from wellmon import config as config_mod

ROOT = Path(__file__).resolve().parents[2]


def wellmon(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wellmon", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def test_config_yaml_documents_every_setting_with_its_default() -> None:
    text = (ROOT / "config.yaml").read_text()
    assert config_mod.load(ROOT / "config.yaml", environ={}) == config_mod.Config()
    lines = text.splitlines()
    for dotted, _default, _help in config_mod.schema():
        key = dotted.split(".")[1]
        index = next(i for i, line in enumerate(lines) if re.match(rf"\s+{key}:", line))
        assert lines[index - 1].strip().startswith("#"), f"{dotted}: no comment in config.yaml"


@pytest.mark.parametrize("content, named", [
    ("capture:\n  sorce: sample\n", "capture.sorce"),
    ("capture:\n  video_fps: fast\n", "capture.video_fps"),
    ("node:\n  hop_s: -1\n", "node.hop_s"),
    ("dashbord:\n  port: 1\n", "dashbord"),
    ("dashboard:\n  port: 70000\n", "dashboard.port"),
    ("capture: [1, 2]\n", "capture"),
])
def test_a_bad_config_file_exits_2_naming_the_key(tmp_path, wellmon_env, content, named) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    result = wellmon("--config", str(bad), "infer", env=wellmon_env)
    assert result.returncode == 2
    assert named in result.stderr
    assert "Traceback" not in result.stderr


def test_a_wrong_type_names_the_expected_type(tmp_path, wellmon_env) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("capture:\n  fast: maybe\n")
    result = wellmon("--config", str(bad), "run", env=wellmon_env)
    assert result.returncode == 2
    assert "capture.fast: expected true or false, got 'maybe'" in result.stderr


def test_a_bad_environment_variable_exits_2_naming_it(wellmon_env) -> None:
    result = wellmon("infer", env={**wellmon_env, "WELLMON_NODE_WINDOW_S": "long"})
    assert result.returncode == 2 and "node.window_s" in result.stderr
    result = wellmon("infer", env={**wellmon_env, "WELLMON_NODE_WINDOWS": "4"})
    assert result.returncode == 2 and "WELLMON_NODE_WINDOWS" in result.stderr


def test_a_missing_config_file_is_named(wellmon_env) -> None:
    result = wellmon("--config", "/nonexistent/wellmon.yaml", "infer", env=wellmon_env)
    assert result.returncode == 2
    assert "config file not found: /nonexistent/wellmon.yaml" in result.stderr


@pytest.mark.parametrize("command", [("run", "--source"), ("replay", "--out", "x.jsonl"),
                                     ("capture", "--modality", "video", "--source")])
def test_an_unreadable_source_path_exits_2_naming_the_path(wellmon_env, command) -> None:
    missing = "/nonexistent/clip.mp4"
    args = [*command[:1], missing, *command[1:]] if command[0] == "replay" else [*command, missing]
    result = wellmon(*args, env=wellmon_env)
    assert result.returncode == 2
    assert f"source file not found: {missing}" in result.stderr


def test_a_file_that_is_not_media_exits_2_naming_it(tmp_path, wellmon_env) -> None:
    junk = tmp_path / "notes.mp4"
    junk.write_text("this is not a video")
    result = wellmon("run", "--source", str(junk), env=wellmon_env)
    assert result.returncode == 2
    assert f"cannot open source {junk}" in result.stderr


def test_no_webcam_gives_a_clear_error(wellmon_env) -> None:
    result = wellmon("run", "--source", "webcam:7", env=wellmon_env)
    assert result.returncode == 2
    assert "no webcam: /dev/video7" in result.stderr


def test_no_microphone_gives_a_clear_error(wellmon_env) -> None:
    result = wellmon("run", "--source", "mic", env=wellmon_env)
    assert result.returncode == 2
    assert "no microphone" in result.stderr or "PortAudio" in result.stderr


def test_environment_text_is_taken_as_written_for_text_settings() -> None:
    config = config_mod.load(None, environ={"WELLMON_ASR_ENGINE": "off",
                                            "WELLMON_CAPTURE_STREAM": "null",
                                            "WELLMON_NODE_HOP_S": "0.25",
                                            "WELLMON_CAPTURE_FAST": "true"})
    assert config.asr.engine == "off"  # YAML would have read it as false
    assert config.capture.stream is None and config.node.hop_s == 0.25 and config.capture.fast


def test_a_missing_fusion_model_is_named(wellmon_env) -> None:
    env = {**wellmon_env, "WELLMON_PERCEPTION_FUSION_MODEL": "/nonexistent/fusion.onnx"}
    result = wellmon("infer", env=env)
    assert result.returncode == 2
    assert "model file not found: /nonexistent/fusion.onnx" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_fusion_model_with_other_inputs_is_named_with_the_mismatch(wellmon_env) -> None:
    other = ROOT / "models/weights/emotion_minixception.onnx"
    result = wellmon("infer", env={**wellmon_env, "WELLMON_PERCEPTION_FUSION_MODEL": str(other)})
    assert result.returncode == 2
    assert f"model {other} has inputs" in result.stderr and "expected" in result.stderr
