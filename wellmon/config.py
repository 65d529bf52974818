"""Settings: one typed schema, loaded from YAML, then environment, then flags.

The schema below is the single source of defaults and limits; `config.yaml` at
the repository root documents every key and is tested to equal these
defaults. Any mistake in a file or a variable is a `ConfigError` that names
the key and what was expected, so that a typo never silently does nothing.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ENV_PREFIX = "WELLMON_"


class ConfigError(ValueError):
    """A setting is missing, unknown, of the wrong type or out of range."""


def _setting(default: Any, help: str, *, lo: float | None = None, hi: float | None = None,
             choices: tuple[str, ...] | None = None, nullable: bool = False) -> Any:
    meta = {"help": help, "lo": lo, "hi": hi, "choices": choices, "nullable": nullable}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class CaptureConfig:
    source: str = _setting("sample", "webcam:N, mic, mic:NAME, a file path or URL, or sample")
    stream: str | None = _setting(None, "stream id; derived from the source when null",
                                  nullable=True)
    fast: bool = _setting(False, "do not pace file sources at real time")
    loop: bool = _setting(True, "start file sources again at their end")
    video_fps: float = _setting(15.0, "analysis frame rate", lo=1, hi=120)
    video_max_width: int = _setting(640, "frames larger than this are scaled down", lo=32, hi=7680)
    video_max_height: int = _setting(480, "frames larger than this are scaled down",
                                     lo=32, hi=4320)
    video_encoding: str = _setting("raw", "frame payload on the wire", choices=("raw", "jpeg"))
    jpeg_quality: int = _setting(85, "JPEG quality when video_encoding is jpeg", lo=10, hi=100)
    audio_chunk_ms: int = _setting(100, "length of one audio message", lo=10, hi=1000)


@dataclass(frozen=True)
class WireConfig:
    send_hwm: int = _setting(8, "messages a sender queues before dropping", lo=1, hi=100000)
    recv_hwm: int = _setting(64, "messages a receiver queues before dropping", lo=1, hi=100000)
    max_payload_bytes: int = _setting(32 * 1024 * 1024, "larger payloads are dropped",
                                      lo=1024, hi=1 << 31)
    max_clock_skew_s: float = _setting(86400.0, "capture times further than this from the "
                                       "receiver's clock are dropped", lo=1, hi=10 * 365 * 86400)
    proxy: bool = _setting(False, "route through `wellmon proxy` (several nodes): captures, "
                           "nodes and dashboards connect to the proxy's addresses")
    curve_dir: str | None = _setting(None, "key directory from `wellmon keys`: encrypt and "
                                     "authenticate every ZeroMQ link (null: in the clear)",
                                     nullable=True)
    insecure: bool = _setting(False, "allow ZeroMQ addresses beyond loopback without "
                              "curve_dir (warned at every start); false: refuse to start")


@dataclass(frozen=True)
class NodeConfig:
    input: str = _setting("tcp://127.0.0.1:5555", "ZeroMQ address the node binds for capture")
    output: str = _setting("tcp://127.0.0.1:5556", "ZeroMQ address the node binds for scores")
    window_s: float = _setting(4.0, "analysis window length", lo=0.5, hi=120)
    hop_s: float = _setting(0.5, "time between windows", lo=0.05, hi=60)
    stale_after_s: float = _setting(1.5, "a modality with no data for this long is stale",
                                    lo=0.1, hi=3600)
    lost_after_s: float = _setting(5.0, "a modality with no data for this long is lost",
                                   lo=0.2, hi=3600)
    forget_after_s: float = _setting(600.0, "a lost stream stops being reported after this",
                                     lo=1, hi=86400)
    late_after_s: float = _setting(1.0, "a video frame queued this much longer than its "
                                   "stream's quickest is skipped unmeasured, and a window "
                                   "whose data is this old when it is ready is stale",
                                   lo=0.05, hi=3600)
    name: str = _setting("node", "this node's name in its statistics")
    shard: str | None = _setting(None, "k/N: serve the streams that rendezvous hashing gives "
                                 "node k of N (null: every stream)", nullable=True)
    streams: str | None = _setting(None, "comma-separated stream ids this node serves, "
                                   "subscribed by topic (null: every stream)", nullable=True)


@dataclass(frozen=True)
class PerceptionConfig:
    face: bool = _setting(True, "run the face models (detection, landmarks, expression)")
    providers: str = _setting("auto", "onnxruntime execution providers",
                              choices=("auto", "cpu", "cuda"))
    threads: int = _setting(0, "onnxruntime threads per model (0: onnxruntime decides)",
                            lo=0, hi=256)
    detect_every: int = _setting(10, "run the face detector every N frames, track between",
                                 lo=1, hi=10000)
    min_face_score: float = _setting(0.5, "face detections below this score are ignored",
                                     lo=0.01, hi=1.0)
    pulse_window_s: float = _setting(20.0, "seconds of skin colour behind a heart rate",
                                     lo=10, hi=120)
    pulse_snr_margin_db: float = _setting(0.0, "dB added to each rPPG method's calibrated "
                                          "quality threshold", lo=-10, hi=30)
    stress_baseline_s: float = _setting(60.0, "seconds at a session's start that set the "
                                        "stress baseline", lo=1, hi=3600)
    fusion_model: str | None = _setting(None, "fusion ONNX file written by wellmon train; "
                                        "null: the shipped expert defaults", nullable=True)
    rppg_model: str | None = _setting(None, "learned rPPG beside the classic one: a model name "
                                      "(facephys, built by `wellmon models build --rppg "
                                      "facephys`) or an .onnx path; null: off", nullable=True)


@dataclass(frozen=True)
class AsrConfig:
    engine: str = _setting("auto", "speech-to-text: auto (vosk when vosk_model is set, else "
                           "pocketsphinx), vosk, pocketsphinx or off",
                           choices=("auto", "vosk", "pocketsphinx", "off"))
    vosk_model: str | None = _setting(None, "directory of an unpacked Vosk model", nullable=True)


@dataclass(frozen=True)
class DashboardConfig:
    host: str = _setting("127.0.0.1", "address the page and WebSocket listen on")
    port: int = _setting(8765, "port of the page and WebSocket (0 picks a free one)",
                         lo=0, hi=65535)
    token_file: str = _setting("~/.local/state/wellmon/token",
                               "where the generated access token is kept (mode 0600)")
    history_s: float = _setting(300.0, "seconds of scores a new client receives", lo=0, hi=86400)
    client_queue: int = _setting(256, "updates queued per client before old ones are dropped",
                                 lo=1, hi=100000)
    drop_stalled_after_s: float = _setting(30.0, "a client that has read nothing for this "
                                           "long while data waits for it is disconnected",
                                           lo=1, hi=86400)
    max_clients: int = _setting(200, "WebSocket connections open at once, all roles; one "
                                "more is refused with 503", lo=1, hi=100000)
    max_clients_per_role: int = _setting(100, "WebSocket connections open at once per role "
                                         "(viewer, kiosk, admin)", lo=1, hi=100000)
    session_hours: float = _setting(12.0, "hours a browser stays signed in after its page last "
                                    "loaded or renewed the session", lo=0.01, hi=8760)
    kiosk_token_file: str = _setting("~/.local/state/wellmon/kiosk-token",
                                     "the kiosk role's generated token (mode 0600)")
    admin_token_file: str = _setting("~/.local/state/wellmon/admin-token",
                                     "the admin role's generated token (mode 0600)")
    tls_cert: str | None = _setting(None, "PEM certificate for HTTPS/WSS (with tls_key)",
                                    nullable=True)
    tls_key: str | None = _setting(None, "PEM private key for HTTPS/WSS (with tls_cert)",
                                   nullable=True)
    insecure: bool = _setting(False, "allow a host beyond loopback over plain HTTP (warned "
                              "at every start); false: refuse to start")
    store: str = _setting("~/.local/state/wellmon/checks.db",
                          "SQLite file of the kiosk's checks (unless store.url is set)")
    instance: str | None = _setting(None, "this dashboard's name in a site's shared store, "
                                    "one per dashboard; null: the host's name",
                                    nullable=True)
    lease_s: float = _setting(10.0, "seconds a dashboard that stopped renewing its lease "
                              "keeps its running checks before another closes them",
                              lo=2, hi=3600)
    retention_days: float = _setting(30.0, "days the per-window series of a check are kept; "
                                     "its summary stays", lo=0, hi=36500)
    kiosk_name: str = _setting("kiosk", "name of this kiosk in stored checks")
    kiosk_stream: str | None = _setting(None, "the kiosk camera's stream id (null: the only "
                                        "stream, or the first one seen)", nullable=True)
    check_s: float = _setting(45.0, "length of a kiosk check in seconds", lo=5, hi=600)


@dataclass(frozen=True)
class RunConfig:
    parts: str = _setting("capture,node,dashboard", "which processes `wellmon run` starts on "
                          "this host: capture, node, dashboard, comma-separated")
    open_browser: bool = _setting(True, "open the page in a browser when a display exists")
    restart_children: bool = _setting(True, "restart a child process that dies after start")
    start_timeout_s: float = _setting(60.0, "a child not ready after this has failed to start",
                                      lo=1, hi=3600)


@dataclass(frozen=True)
class ProxyConfig:
    media_in: str = _setting("tcp://127.0.0.1:5560", "XSUB the captures publish to")
    media_out: str = _setting("tcp://127.0.0.1:5561", "XPUB the nodes subscribe to")
    scores_in: str = _setting("tcp://127.0.0.1:5562", "XSUB the nodes publish scores to")
    scores_out: str = _setting("tcp://127.0.0.1:5563", "XPUB the dashboards subscribe to")


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = _setting(False, "serve Prometheus metrics on each process")
    host: str = _setting("127.0.0.1", "address the metrics endpoints listen on")
    node_port: int = _setting(9101, "the inference node's metrics port (0 picks a free one)",
                              lo=0, hi=65535)
    dashboard_port: int = _setting(9102, "the dashboard's metrics port (0 picks a free one)",
                                   lo=0, hi=65535)
    capture_port: int = _setting(0, "each capture process's metrics port (0 picks a free one, "
                                 "printed in its READY line)", lo=0, hi=65535)
    proxy_port: int = _setting(9103, "the proxy's metrics port (0 picks a free one)",
                               lo=0, hi=65535)
    insecure: bool = _setting(False, "allow a host beyond loopback, where anyone who "
                              "reaches the endpoints reads them (warned at every start); "
                              "false: refuse to start")


@dataclass(frozen=True)
class StoreConfig:
    url: str | None = _setting(None, "PostgreSQL database a site's dashboards share: "
                               "postgresql://user@host:5432/database (the password from "
                               "PGPASSWORD or a passfile, never here); null: the SQLite file "
                               "dashboard.store", nullable=True)


@dataclass(frozen=True)
class Config:
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    wire: WireConfig = field(default_factory=WireConfig)
    node: NodeConfig = field(default_factory=NodeConfig)
    perception: PerceptionConfig = field(default_factory=PerceptionConfig)
    asr: AsrConfig = field(default_factory=AsrConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    run: RunConfig = field(default_factory=RunConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    store: StoreConfig = field(default_factory=StoreConfig)

    def replace(self, overrides: dict[str, Any]) -> Config:
        """A copy with dotted keys (`section.key`) set, each value validated."""
        return _apply(self, overrides, origin="override")

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)


def _sections() -> dict[str, type]:
    return {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _coerce(key: str, f: dataclasses.Field, value: Any, from_text: bool) -> Any:
    """Check one value against its schema entry. Text from the environment is parsed as
    YAML for numbers and booleans, and taken as written for text settings."""
    meta = f.metadata
    if from_text and isinstance(value, str):
        if f.type in ("str", "str | None"):  # taken as written: YAML would read off as false
            value = None if meta["nullable"] and value.strip() in ("", "null", "~") else value
        else:
            try:
                value = yaml.safe_load(value) if value.strip() else value
            except yaml.YAMLError:
                pass
    if value is None:
        if meta["nullable"]:
            return None
        raise ConfigError(f"{key}: expected {_describe(f)}, got null")
    kind = f.type
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected {_describe(f)}, got {value!r}")
        if not math.isfinite(value) or (kind == "int" and not float(value).is_integer()):
            raise ConfigError(f"{key}: expected {_describe(f)}, got {value!r}")
        value = int(value) if kind == "int" else float(value)
        if (meta["lo"] is not None and value < meta["lo"]) or (
                meta["hi"] is not None and value > meta["hi"]):
            raise ConfigError(f"{key}: expected {_describe(f)}, got {value!r}")
        return value
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: expected {_describe(f)}, got {value!r}")
    if meta["choices"] and value not in meta["choices"]:
        raise ConfigError(f"{key}: expected {_describe(f)}, got {value!r}")
    return value


def _describe(f: dataclasses.Field) -> str:
    meta = f.metadata
    kind = {"bool": "true or false", "int": "a whole number", "float": "a number"}.get(
        f.type, "a non-empty string")
    if meta["choices"]:
        kind = "one of " + ", ".join(meta["choices"])
    if meta["lo"] is not None:
        kind += f" from {meta['lo']:g} to {meta['hi']:g}"
    if meta["nullable"]:
        kind += " or null"
    return kind


def _apply(config: Config, overrides: dict[str, Any], origin: str,
           from_text: bool = False) -> Config:
    """``config`` with one layer of ``overrides``; any error names the layer (``origin``:
    the file's path, environment, command line) before the key."""
    try:
        return _apply_layer(config, overrides, from_text)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None


def _apply_layer(config: Config, overrides: dict[str, Any], from_text: bool) -> Config:
    sections = _sections()
    changed: dict[str, dict[str, Any]] = {}
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        if section not in sections:
            raise ConfigError(f"unknown section '{section}'" + _suggest(section, list(sections)))
        fields = {f.name: f for f in dataclasses.fields(sections[section])}
        if key not in fields:
            raise ConfigError(f"unknown key '{dotted}'" + _suggest(key, list(fields)))
        changed.setdefault(section, {})[key] = _coerce(dotted, fields[key], value, from_text)
    new = {name: dataclasses.replace(getattr(config, name), **changed.get(name, {}))
           for name in sections}
    result = Config(**new)
    _check_consistency(result)
    return result


# Names `wellmon models build --rppg` builds (models/tools/rppg_build.py SPECS; a test keeps them
# equal without importing the model layer here).
RPPG_MODELS = ("facephys",)


RUN_PARTS = ("node", "dashboard", "capture")
"""What `wellmon run` can start (``run.parts``), in the order it starts them: receivers first."""


def run_parts(config: Config) -> tuple[str, ...]:
    """The parts ``run.parts`` names, in start order."""
    named = {p.strip() for p in config.run.parts.split(",")}
    return tuple(p for p in RUN_PARTS if p in named)


def _check_consistency(config: Config) -> None:
    rppg_model = config.perception.rppg_model
    if rppg_model is not None and rppg_model not in RPPG_MODELS and not (
            rppg_model.endswith(".onnx") and len(rppg_model) > 5):
        raise ConfigError(f"perception.rppg_model: expected null, a model name "
                          f"({', '.join(RPPG_MODELS)}) or the path of an .onnx file, "
                          f"got {rppg_model!r}")
    parts = [p.strip() for p in config.run.parts.split(",")]
    if not all(parts) or set(parts) - set(RUN_PARTS) or len(set(parts)) != len(parts):
        raise ConfigError(f"run.parts: expected one or more of {', '.join(RUN_PARTS)}, "
                          f"comma-separated, got {config.run.parts!r}")
    node = config.node
    if node.hop_s > node.window_s:
        raise ConfigError(f"node.hop_s: expected at most node.window_s ({node.window_s:g}), "
                          f"got {node.hop_s:g}")
    if node.lost_after_s <= node.stale_after_s:
        raise ConfigError(f"node.lost_after_s: expected more than node.stale_after_s "
                          f"({node.stale_after_s:g}), got {node.lost_after_s:g}")


def _flatten_file(data: Any, path: Path) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    flat: dict[str, Any] = {}
    sections = _sections()
    for section, values in data.items():
        if not isinstance(section, str) or section not in sections:
            raise ConfigError(f"{path}: unknown section '{section}'"
                              + _suggest(str(section), list(sections)))
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: {section}: expected a mapping of keys, "
                              f"got {type(values).__name__}")
        for key, value in values.items():
            flat[f"{section}.{key}"] = value
    return flat


def env_overrides(environ: dict[str, str] | os._Environ) -> dict[str, str]:
    """`WELLMON_SECTION_KEY=value` for every setting, e.g. WELLMON_DASHBOARD_PORT=9000."""
    out: dict[str, str] = {}
    for section, cls in _sections().items():
        prefix = f"{ENV_PREFIX}{section}_".upper()
        keys = {f.name.upper(): f.name for f in dataclasses.fields(cls)}
        for name, value in environ.items():
            if not name.startswith(prefix):
                continue
            key = name[len(prefix):]
            if key not in keys:
                raise ConfigError(f"environment: unknown variable {name}" + _suggest(
                    key, list(keys)).replace("'", "'" + prefix, 1))
            out[f"{section}.{keys[key]}"] = value
    return out


def env_name(dotted: str) -> str:
    return (ENV_PREFIX + dotted.replace(".", "_")).upper()


def load(path: str | Path | None = None, environ: dict[str, str] | None = None,
         flags: dict[str, Any] | None = None) -> Config:
    """Defaults, then the YAML file (if any), then WELLMON_* variables, then flags."""
    environ = os.environ if environ is None else environ
    config = Config()
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(_yaml_error(path, exc)) from None
        config = _apply(config, _flatten_file(data, path), origin=str(path))
    env = env_overrides(environ)
    if env:
        config = _apply(config, env, origin="environment", from_text=True)
    if flags:
        config = _apply(config, {k: v for k, v in flags.items() if v is not None},
                        origin="command line")
    return config


def _yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    """PyYAML's error in one line, with the file's name where PyYAML says <unicode string>."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f"{path}: not valid YAML: {' '.join(str(exc).split())}"
    where = f"{path}, line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}"
    context = ""
    if exc.context and exc.context_mark is not None:
        context = f" ({exc.context}, from line {exc.context_mark.line + 1})"
    return f"{where}: not valid YAML: {exc.problem}{context}"


def example() -> str:
    """The commented settings template: the repository's config.yaml, shipped in the
    package as wellmon/config.example.yaml (`wellmon config --example`)."""
    return (importlib.resources.files("wellmon") / "config.example.yaml").read_text()


def default_path(environ: dict[str, str] | None = None) -> Path | None:
    """WELLMON_CONFIG, else ./config.yaml when present, else none (built-in defaults)."""
    environ = os.environ if environ is None else environ
    if environ.get("WELLMON_CONFIG"):
        return Path(environ["WELLMON_CONFIG"])
    local = Path("config.yaml")
    return local if local.is_file() else None


def dump(config: Config, path: Path) -> None:
    """Write the effective settings, e.g. for child processes to read back."""
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def schema() -> list[tuple[str, Any, str]]:
    """(dotted key, default, help) for every setting, in order; used to check config.yaml."""
    rows = []
    for section, cls in _sections().items():
        for f in dataclasses.fields(cls):
            rows.append((f"{section}.{f.name}", f.default, f.metadata["help"]))
    return rows
