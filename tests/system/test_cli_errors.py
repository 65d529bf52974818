"""Every mistake a user makes with `wellmon` ends in one line on stderr and exit status 2.

A table: each row is a mistake (the command, what to lay out first: files, folders, a port
held by a real listening socket) and a regular expression the one stderr line must match.
Each row runs the real command in a subprocess in a temporary folder. The checks after
the table cover what is not an error: help, --version, --config after the command, the
devices list, the config template, and that a failed replay leaves its output as it was.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from wellmon import cli
from wellmon import config as config_mod

ROOT = Path(__file__).resolve().parents[2]
PORT = "{port}"
"""Stands, in a row's command, environment and expected line, for a port that a real
listening socket holds while the row runs."""

# torch must stay installed for the training tests, so a row that needs it missing runs
# wellmon behind an import hook that refuses to find it: the one stand-in in this file.
WITHOUT_TORCH = """
import runpy, sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoTorch())
sys.argv = ["wellmon", *sys.argv[1:]]
runpy.run_module("wellmon", run_name="__main__", alter_sys=True)
"""


@dataclass(frozen=True)
class Mistake:
    name: str
    argv: tuple[str, ...]
    line: str  # regular expression for the one line on stderr
    files: dict[str, str | None] = field(default_factory=dict)  # None: a folder
    env: dict[str, str] = field(default_factory=dict)
    without_torch: bool = False
    status: int = 2


CONFIG_ERROR = "^wellmon: config error: "
MISTAKES = [
    # 1. replay: its input, and an --out that cannot be a file
    Mistake("replay-input-missing", ("replay", "nope.mp4", "--out", "keep.jsonl"),
            r"^wellmon: source file not found: nope\.mp4$", files={"keep.jsonl": "kept\n"}),
    Mistake("replay-input-not-media", ("replay", "notes.mp4", "--out", "keep.jsonl"),
            r"^wellmon: cannot open source notes\.mp4: ", files={"notes.mp4": "not a video"}),
    Mistake("replay-out-is-a-folder", ("replay", "sample", "--out", "scores.jsonl"),
            r"^wellmon: cannot write scores\.jsonl: it is a folder",
            files={"scores.jsonl": None}),
    Mistake("replay-out-a-folder-is-a-file", ("replay", "sample", "--out", "scores"),
            r"^wellmon: --out scores: not a folder \(give a folder, or a \.jsonl file for "
            r"one input\)$", files={"scores": "a file"}),
    Mistake("replay-several-files-into-one", ("replay", "sample", "sample", "--out",
                                              "keep.jsonl"),
            r"^wellmon: --out keep\.jsonl: 2 inputs need a folder, not one JSONL file$",
            files={"keep.jsonl": "kept\n"}),
    Mistake("replay-one-stream-for-two-files", ("replay", "sample", "sample", "--out", "o",
                                                "--stream", "s"),
            r"^wellmon: replay: --stream names one stream; it cannot be given with 2 files$"),
    Mistake("replay-jobs-below-one", ("replay", "sample", "--out", "o", "--jobs", "0"),
            r"^wellmon: replay: argument --jobs: 0 is less than 1 "
            r"\(see wellmon replay --help\)$"),
    Mistake("replay-baseline-not-a-time", ("replay", "sample", "--out", "keep.jsonl",
                                           "--baseline", "first:soon"),
            r"^wellmon: --baseline first:soon: expected first:SECONDS with a positive "
            r"number, e\.g\. first:60s$", files={"keep.jsonl": "kept\n"}),
    Mistake("replay-baseline-file-missing", ("replay", "sample", "--out", "keep.jsonl",
                                             "--baseline", "mine.json"),
            r"^wellmon: --baseline mine\.json: expected whole, first:SECONDS or a baseline "
            r"file, and there is no file mine\.json$", files={"keep.jsonl": "kept\n"}),
    Mistake("replay-baseline-file-unreadable", ("replay", "sample", "--out", "keep.jsonl",
                                                "--baseline", "mine.json"),
            r"^wellmon: cannot read baseline mine\.json: ",
            files={"keep.jsonl": "kept\n", "mine.json": "{not json"}),
    Mistake("report-input-missing", ("report", "nope.jsonl", "--out", "keep.html"),
            r"^wellmon: nope\.jsonl: no such file$", files={"keep.html": "kept\n"}),
    Mistake("report-input-empty", ("report", "empty.jsonl", "--out", "keep.html"),
            r"^wellmon: empty\.jsonl: no score messages in the file$",
            files={"keep.html": "kept\n", "empty.jsonl": ""}),
    Mistake("report-input-not-scores", ("report", "notes.jsonl", "--out", "keep.html"),
            r"^wellmon: notes\.jsonl: no score messages in the file \(2 lines skipped: "
            r"line 1: not JSON, or a number that is not finite\)$",
            files={"keep.html": "kept\n", "notes.jsonl": "hello\n{\"seq\": 1}\n"}),
    Mistake("replay-out-under-a-file", ("replay", "sample", "--out", "notes/x.jsonl"),
            r"^wellmon: cannot write notes/x\.jsonl: .*notes is not a folder$",
            files={"notes": "a file"}),
    Mistake("replay-without-out", ("replay", "sample"),
            r"^wellmon: replay: the following arguments are required: --out"),
    # 2. a port that something else holds, named with the setting (and flag) that moves it
    Mistake("run-dashboard-port-taken", ("run", "--port", PORT),
            rf"{CONFIG_ERROR}already in use: 127\.0\.0\.1:{PORT} "
            r"\(dashboard\.port, flag --port\); stop what holds it"),
    Mistake("dashboard-port-taken", ("dashboard", "--port", PORT),
            rf"{CONFIG_ERROR}already in use: 127\.0\.0\.1:{PORT} "
            r"\(dashboard\.port, flag --port\)"),
    Mistake("run-node-input-taken", ("run",),
            rf"{CONFIG_ERROR}already in use: tcp://127\.0\.0\.1:{PORT} \(node\.input\)",
            env={"WELLMON_NODE_INPUT": f"tcp://127.0.0.1:{PORT}"}),
    Mistake("infer-node-output-taken", ("infer",),
            rf"{CONFIG_ERROR}already in use: tcp://127\.0\.0\.1:{PORT} \(node\.output\)",
            env={"WELLMON_NODE_OUTPUT": f"tcp://127.0.0.1:{PORT}"}),
    Mistake("proxy-media-in-taken", ("proxy",),
            rf"{CONFIG_ERROR}already in use: tcp://127\.0\.0\.1:{PORT} \(proxy\.media_in\)",
            env={"WELLMON_PROXY_MEDIA_IN": f"tcp://127.0.0.1:{PORT}"}),
    Mistake("run-child-refuses-a-setting", ("run",),
            r"^wellmon: dashboard failed to start: config error: dashboard\.tls_cert and "
            r"dashboard\.tls_key go together", env={"WELLMON_DASHBOARD_TLS_CERT": "cert.pem"}),
    # 3. the training extra
    Mistake("train-without-torch", ("train", "clips", "--out", "model"),
            r"^wellmon: train needs torch, which is not installed: pip install "
            r"'wellmon\[train\]' \(CPU-only machine: first pip install 'torch==[^']+' "
            r"--index-url https://download\.pytorch\.org/whl/cpu\)$",
            files={"clips": None}, without_torch=True),
    Mistake("export-without-torch", ("export", "--expert-defaults", "--out", "x.onnx"),
            r"^wellmon: export needs torch, .*pip install 'wellmon\[train\]'.*"
            r"--index-url https://download\.pytorch\.org/whl/cpu", without_torch=True),
    Mistake("train-unknown-architecture", ("train", "clips", "--out", "o", "--arch", "bimha2"),
            r"^wellmon: train: argument --arch: invalid choice: 'bimha2' \(choose from "
            r"'gaam-corect', 'mmmla', 'mm-b', 'sc-lstm', 'bc-lstm', 'bimha', 'late'\)",
            files={"clips": None}),
    Mistake("bench-fusion-unknown-architecture", ("bench", "fusion", "--arch", "mm-b,bimha2"),
            r"^wellmon: bench fusion: --arch: unknown bimha2: expected all or some of "
            r"gaam-corect, mmmla, mm-b, sc-lstm, bc-lstm, bimha, late$"),
    Mistake("bench-fusion-architecture-without-torch", ("bench", "fusion", "--arch", "mm-b"),
            r"^wellmon: bench fusion --arch needs torch, .*pip install 'wellmon\[train\]'",
            without_torch=True),
    Mistake("compare-test-fraction-too-large", ("compare", "d.csv", "--out", "o",
                                                "--test-fraction", "0.7"),
            r"^wellmon: compare: argument --test-fraction: 0\.7 is not between 0 and 0\.5 "
            r"\(see wellmon compare --help\)$"),
    Mistake("store-folder-impossible", ("dashboard",),
            r"^wellmon: cannot create the directory for the store /proc/nope/x\.db: ",
            env={"WELLMON_DASHBOARD_STORE": "/proc/nope/x.db"}),
    Mistake("store-unreachable", ("dashboard",),
            r"^wellmon: cannot reach the store postgresql://wellmon@127\.0\.0\.1:1/site: "
            r".*; is PostgreSQL running there and is store\.url right\?$",
            env={"WELLMON_STORE_URL": "postgresql://wellmon@127.0.0.1:1/site"}),
    Mistake("store-url-with-password", ("dashboard",),
            r"^wellmon: store\.url must not contain the password: put it in PGPASSWORD or a "
            r"passfile \(PGPASSFILE, default ~/\.pgpass\), where libpq reads it$",
            env={"WELLMON_STORE_URL": "postgresql://wellmon:hunter2@127.0.0.1:1/site"}),
    Mistake("datasets-too-many-speakers", ("datasets", "make", "crossmodal", "d",
                                           "--speakers", "9"),
            r"^wellmon: datasets make: speakers: 1 to 8$"),
    Mistake("train-threads-below-one", ("train", "clips", "--out", "model", "--threads", "0"),
            r"^wellmon: train: argument --threads: 0 is less than 1 "
            r"\(see wellmon train --help\)$"),
    # 4. flags and commands
    Mistake("unknown-flag", ("--frobnicate",),
            r"^wellmon: unrecognized arguments: --frobnicate \(see wellmon --help\)$"),
    Mistake("unknown-flag-after-command", ("run", "--frobnicate"),
            r"^wellmon: run: unrecognized arguments: --frobnicate \(see wellmon run --help\)$"),
    Mistake("unknown-command", ("frobnicate",),
            r"^wellmon: argument COMMAND: invalid choice: 'frobnicate'"),
    Mistake("flag-value-of-the-wrong-type", ("run", "--port", "high"),
            r"^wellmon: run: argument --port: invalid int value: 'high'"),
    Mistake("command-missing-its-action", ("bench",),
            r"^wellmon: bench: the following arguments are required: BENCHMARK"),
    # 6. the settings file
    Mistake("config-yaml-syntax", ("--config", "bad.yaml", "login", "viewer"),
            rf"{CONFIG_ERROR}bad\.yaml, line 3, column 1: not valid YAML: expected ',' or "
            r"'\]'", files={"bad.yaml": "dashboard:\n  port: [8765\n"}),
    Mistake("config-yaml-syntax-in-the-default-file", ("login", "viewer"),
            rf"{CONFIG_ERROR}config\.yaml, line 2, column 1: not valid YAML: ",
            files={"config.yaml": "capture:\n\tsource: sample\n"}),
    Mistake("config-wrong-type", ("--config", "bad.yaml", "login", "viewer"),
            rf"{CONFIG_ERROR}bad\.yaml: dashboard\.port: expected a whole number from 0 to "
            r"65535, got 'high'$", files={"bad.yaml": "dashboard:\n  port: high\n"}),
    Mistake("config-unknown-key", ("login", "viewer", "--config", "bad.yaml"),
            rf"{CONFIG_ERROR}bad\.yaml: unknown key 'dashboard\.prot' \(did you mean 'port'\?\)",
            files={"bad.yaml": "dashboard:\n  prot: 1\n"}),
    Mistake("run-unknown-part", ("run", "--parts", "capture,gpu"),
            rf"{CONFIG_ERROR}command line: run\.parts: expected one or more of node, "
            r"dashboard, capture, comma-separated, got 'capture,gpu'$"),
    Mistake("config-missing-given-by-flag", ("--config", "nope.yaml", "login", "viewer"),
            rf"{CONFIG_ERROR}config file not found: nope\.yaml$"),
    Mistake("config-missing-given-after-the-command", ("login", "viewer", "--config",
                                                       "nope.yaml"),
            rf"{CONFIG_ERROR}config file not found: nope\.yaml$"),
    Mistake("config-missing-given-by-environment", ("login", "viewer"),
            rf"{CONFIG_ERROR}config file not found: nope\.yaml$",
            env={"WELLMON_CONFIG": "nope.yaml"}),
    # 7. the template is never written over a file
    Mistake("config-example-over-a-file", ("config", "--example", "mine.yaml"),
            r"^wellmon: mine\.yaml already exists; not overwritten",
            files={"mine.yaml": "mine\n"}),
    Mistake("config-example-into-a-folder", ("config", "--example", "settings"),
            r"^wellmon: cannot write settings: it is a folder", files={"settings": None}),
]


@pytest.fixture()
def held_port() -> Iterator[int]:
    """A loopback port held by a real listening socket for the length of a test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def wellmon(argv: tuple[str, ...] | list[str], cwd: Path, env: dict[str, str],
            without_torch: bool = False) -> subprocess.CompletedProcess:
    prefix = ["-c", WITHOUT_TORCH] if without_torch else ["-m", "wellmon"]
    return subprocess.run([sys.executable, *prefix, *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=180)


@pytest.fixture()
def home_env(wellmon_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The tests' loopback environment with a HOME of its own (no file of the user's is
    read or written)."""
    home = tmp_path / "home"
    home.mkdir()
    return {**wellmon_env, "HOME": str(home)}


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.name for m in MISTAKES])
def test_a_mistake_is_one_line_naming_it(mistake: Mistake, tmp_path: Path, held_port: int,
                                         home_env: dict[str, str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    for name, content in mistake.files.items():
        if content is None:
            (work / name).mkdir()
        else:
            (work / name).write_text(content)
    port = str(held_port)
    env = {**home_env, **{k: v.replace(PORT, port) for k, v in mistake.env.items()}}
    argv = [arg.replace(PORT, port) for arg in mistake.argv]
    result = wellmon(argv, work, env, mistake.without_torch)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == mistake.status, result
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    assert re.search(mistake.line.replace(PORT, port), lines[0]), lines[0]


@pytest.mark.parametrize("bad_input", ["nope.mp4", "notes.mp4"])
def test_a_failed_replay_leaves_an_existing_output_as_it_was(
        bad_input: str, tmp_path: Path, home_env: dict[str, str]) -> None:
    (tmp_path / "notes.mp4").write_text("not a video")
    kept = {"keep.jsonl": os.urandom(164 * 1024), "keep.report.json": b'{"windows": 1}\n'}
    for name, content in kept.items():
        (tmp_path / name).write_bytes(content)
    before = sorted(os.listdir(tmp_path))
    result = wellmon(["replay", bad_input, "--out", "keep.jsonl"], tmp_path, home_env)
    assert result.returncode == 2
    assert sorted(os.listdir(tmp_path)) == before  # no temporary file left behind
    for name, content in kept.items():
        assert (tmp_path / name).read_bytes() == content


def test_a_successful_replay_replaces_the_output_keeping_its_mode(
        clip: tuple[Path, dict], tmp_path: Path, home_env: dict[str, str]) -> None:
    out = tmp_path / "keep.jsonl"
    out.write_text("old\n")
    out.chmod(0o640)
    result = wellmon(["replay", str(clip[0]), "--out", "keep.jsonl", "--no-progress"],
                     tmp_path, home_env)
    assert result.returncode == 0, result.stderr
    assert out.read_text().startswith("{") and (out.stat().st_mode & 0o777) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["home", "keep.jsonl", "keep.report.csv",
                                            "keep.report.html", "keep.report.json"]


def test_wellmon_alone_prints_the_help(tmp_path: Path, home_env: dict[str, str]) -> None:
    result = wellmon([], tmp_path, home_env)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("usage: wellmon") and "devices" in result.stdout


def test_version_comes_from_the_package_metadata(tmp_path: Path,
                                                 home_env: dict[str, str]) -> None:
    result = wellmon(["--version"], tmp_path, home_env)
    assert result.returncode == 0
    assert result.stdout == f"wellmon {importlib.metadata.version('wellmon')}\n"
    assert result.stdout == "wellmon 0.1.0\n"


@pytest.mark.parametrize("where", ["before", "after"])
def test_config_is_read_before_or_after_the_command(where: str, tmp_path: Path,
                                                    home_env: dict[str, str]) -> None:
    (tmp_path / "mine.yaml").write_text("dashboard:\n  port: 9999\n")
    env = {k: v for k, v in home_env.items() if k != "WELLMON_DASHBOARD_PORT"}
    flag = ["--config", "mine.yaml"]
    argv = [*flag, "login", "viewer"] if where == "before" else ["login", "viewer", *flag]
    result = wellmon(argv, tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("http://127.0.0.1:9999/?code=")


def test_devices_lists_what_is_there_or_says_none(tmp_path: Path,
                                                  home_env: dict[str, str]) -> None:
    result = wellmon(["devices"], tmp_path, home_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Cameras")
    assert "Microphones" in result.stdout and "webcam:0+mic" in result.stdout


def test_config_example_is_the_commented_config_yaml(tmp_path: Path,
                                                     home_env: dict[str, str]) -> None:
    template = (ROOT / "config.yaml").read_text()
    printed = wellmon(["config", "--example"], tmp_path, home_env)
    assert printed.returncode == 0 and printed.stdout == template
    assert isinstance(yaml.safe_load(printed.stdout), dict)
    written = wellmon(["config", "--example", "new/settings.yaml"], tmp_path, home_env)
    assert written.returncode == 0, written.stderr
    path = tmp_path / "new" / "settings.yaml"
    assert path.read_text() == template
    assert config_mod.load(path, environ={}) == config_mod.Config()


def _commands(parser: argparse.ArgumentParser,
              path: str = "wellmon") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _commands(child, f"{path} {name}")


def test_every_command_and_option_has_a_help_line() -> None:
    commands = dict(_commands(cli._parser()))
    assert {"wellmon devices", "wellmon config", "wellmon bench capacity"} <= set(commands)
    for path, parser in commands.items():
        assert parser.description, f"{path}: no description"
        for action in parser._actions:
            assert action.help, f"{path} {action.option_strings or action.dest}: no help"


def test_internal_flags_are_hidden_but_work(tmp_path: Path, home_env: dict[str, str]) -> None:
    shown = wellmon(["capture", "--help"], tmp_path, home_env)
    assert shown.returncode == 0 and "--epoch-ns" not in shown.stdout
    used = wellmon(["capture", "--modality", "video", "--source", "nope.mp4", "--epoch-ns",
                    "0"], tmp_path, home_env)
    assert used.returncode == 2
    assert used.stderr == "wellmon: source file not found: nope.mp4\n"
