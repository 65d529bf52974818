"""The `wellmon` command: one entry point, a subcommand per role.

Settings come from config.yaml (or --config / WELLMON_CONFIG), then
WELLMON_<SECTION>_<KEY> variables, then the flags here. Every mistake of the
user (a bad flag, setting, source, file or port) ends the command with one line
on stderr and exit status 2 (`wellmon.errors.fail`); docs/cli.md lists them.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from wellmon import config as config_mod
from wellmon.config import Config, ConfigError
from wellmon.dashboard.store import StoreError
from wellmon.errors import UsageError, fail
from wellmon.models.errors import ModelError
from wellmon.models.node.outputs import OutputError
from wellmon.streamer.sources import SourceError

USER_ERRORS = (UsageError, SourceError, ModelError, OutputError, StoreError)
TRAIN_PACKAGES = ("torch", "onnx")
"""What `pip install 'wellmon[train]'` brings for `train` and `export`."""
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
ARCH_NAMES = ("gaam-corect", "mmmla", "mm-b", "sc-lstm", "bc-lstm", "bimha", "late")
"""models/training/architectures.py's ARCHITECTURES, named here so that the command's help
needs no torch (tests/unit/test_fusion_architectures.py keeps the two equal)."""


class _Parser(argparse.ArgumentParser):
    """argparse whose mistakes are one line naming the culprit, not a usage block."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("wellmon").strip()
        raise UsageError(f"{command + ': ' if command else ''}{message} "
                         f"(see {self.prog} --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="wellmon",
        description="Real-time audio-visual stress and emotion monitor "
                    "(a wellness indicator, not a diagnosis).",
        epilog="Exit status: 0 done, 2 a mistake in the command or a setting (one line on "
               "stderr), anything else a bug. More in docs/cli.md.")
    parser.add_argument("--config", type=Path, default=None,
                        help="settings file (default: $WELLMON_CONFIG, else ./config.yaml); "
                             "also accepted after the command")
    parser.add_argument("--version", action="version",
                        version=f"wellmon {importlib.metadata.version('wellmon')}")
    # After a command, --config must not reset the one given before it: SUPPRESS sets the
    # attribute only when the flag is there.
    common = _Parser(add_help=False)
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS,
                        help="settings file (default: $WELLMON_CONFIG, else ./config.yaml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                help="what to do (wellmon COMMAND --help: its options)")

    def command(group: argparse._SubParsersAction, name: str, summary: str,
                **kwargs: Any) -> argparse.ArgumentParser:
        kwargs.setdefault("description", summary[0].upper() + summary[1:] + ".")
        parsed = group.add_parser(name, help=summary, parents=[common], **kwargs)
        parsed.set_defaults(parser=parsed)  # the innermost command's, to name it in errors
        return parsed

    def source_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--source", help="webcam:N, mic[:NAME], a file or URL, or sample; two "
                                        "joined by +, e.g. webcam:0+mic (capture.source; "
                                        "see wellmon devices)")
        p.add_argument("--stream", help="stream id (capture.stream)")
        p.add_argument("--fast", action="store_const", const=True,
                       help="do not pace file sources at real time (capture.fast)")

    run = command(sub, "run", "everything on this machine: capture, node, dashboard")
    source_flags(run)
    run.add_argument("--port", type=int, help="dashboard port (dashboard.port)")
    run.add_argument("--no-browser", dest="open_browser", action="store_const", const=False,
                     help="do not open a browser (run.open_browser)")
    run.add_argument("--parts", help="start only these, comma-separated: capture, node, "
                                     "dashboard (run.parts; e.g. captures on one host, "
                                     "node,dashboard on another)")

    capture = command(sub, "capture", "one capture process (one modality of a source)")
    source_flags(capture)
    capture.add_argument("--modality", choices=("video", "audio"), required=True,
                         help="which half of the source this process sends")
    capture.add_argument("--epoch-ns", type=int, default=None,
                         help=argparse.SUPPRESS)  # set by `wellmon run`: aligns video, audio

    command(sub, "infer", "the inference node: scores windows of the captures' streams "
                          "(node.input, node.output)")
    command(sub, "proxy", "the ZeroMQ proxy that lets several nodes share streams "
                          "(wire.proxy)")
    keys = command(sub, "keys", "make a CURVE key directory for wire.curve_dir")
    keys.add_argument("directory", type=Path, help="folder to create the keys in")

    dash = command(sub, "dashboard", "the web dashboard: live page, kiosk and operator pages "
                                     "(dashboard.*)")
    dash.add_argument("--port", type=int, help="dashboard port (dashboard.port)")

    person = command(sub, "person", "a person's data in the check store")
    person_sub = person.add_subparsers(dest="person_action", required=True, metavar="ACTION",
                                       help="what to do with the data")
    person_export = command(person_sub, "export", "write everything stored about a person as "
                                                  "JSON (recorded in their audit trail)")
    person_export.add_argument("id", help="the person's ID, as typed or scanned at the kiosk")
    person_export.add_argument("--out", type=Path, default=None,
                               help="file to write (mode 0600); default: standard output")

    login = command(sub, "login", "print a one-time sign-in link to a dashboard page",
                    description="Print a link that signs one browser in as ROLE: it works "
                    "once, within five minutes, on a dashboard that is already running. The "
                    "browser then holds a session cookie (dashboard.session_hours); the link "
                    "in its history opens nothing.")
    login.add_argument("role", choices=("viewer", "kiosk", "admin"),
                       help="viewer: the live page; kiosk: the check page; admin: the "
                            "operator page")
    login.add_argument("--url", help="the dashboard's address, e.g. https://host:8765/ "
                                     "(default: from dashboard.host, port and tls_cert)")

    replay = command(sub, "replay", "score recordings offline, faster than real time",
                     description="Score one or more recordings as the live node would, as "
                     "fast as the machine allows, and write each one's report beside its "
                     "scores (docs/reports.md).")
    replay.add_argument("files", nargs="+", metavar="FILE",
                        help="media files PyAV can open, or sample")
    replay.add_argument("--out", type=Path, required=True,
                        help="a folder for NAME.jsonl and NAME.report.html per file, or, for "
                             "one file, the JSONL file itself (x.jsonl); files are replaced "
                             "only when a run succeeds")
    replay.add_argument("--jobs", type=_at_least_one, default=None,
                        help="files scored at once, each in a process of its own (default: "
                             "the number of CPUs)")
    replay.add_argument("--baseline", default="whole",
                        help="the stress index's usual levels: whole (the whole recording, "
                             "default), first:SECONDS (as live, e.g. first:60s) or a stored "
                             "baseline file")
    replay.add_argument("--no-report", action="store_true",
                        help="the scores only, no report beside them")
    replay.add_argument("--stream", help="stream id (capture.stream; one file only)")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")

    report = command(sub, "report", "a readable report of score files (HTML, JSON, CSV)",
                     description="Write one self-contained HTML page (and its JSON summary "
                     "and per-window CSV beside it) from the score messages of a replay or a "
                     "session; several files add a table comparing their emotional arcs.")
    report.add_argument("files", nargs="+", metavar="SCORES.jsonl", type=Path,
                        help="score messages, one JSON object a line (replay's output, or a "
                             "session's history)")
    report.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    report.add_argument("--stream", help="the stream to report on, when a file holds several")

    command(sub, "devices", "list cameras and microphones with their --source")
    config = command(sub, "config", "the settings file: its commented template")
    config.add_argument("--example", nargs="?", const="-", required=True, metavar="PATH",
                        help="print the commented template of every setting, or write it to "
                             "PATH (never over an existing file)")

    bench = command(sub, "bench", "measure the pipeline")
    bench_sub = bench.add_subparsers(dest="bench", required=True, metavar="BENCHMARK",
                                      help="what to measure")
    latency = command(bench_sub, "latency", "capture-to-browser latency percentiles")
    latency.add_argument("--seconds", type=float, default=60.0,
                         help="seconds measured after a 5 s warm-up")
    latency.add_argument("--source", default="sample", help="source to measure with")
    command(bench_sub, "arcs", "how often a report's arc shape is named right, by swing and "
                               "noise (generated valence series)")
    bench_replay = command(bench_sub, "replay", "seconds of media scored per second, the "
                                                "sample clip, with and without speech-to-text")
    bench_replay.add_argument("--runs", type=_at_least_one, default=3,
                              help="runs per case (the median is printed)")
    perception = command(bench_sub, "perception",
                         "face model and audio feature costs per frame")
    perception.add_argument("--frames", type=int, default=300,
                            help="frames of the sample clip to time")

    fusion = command(bench_sub, "fusion", "fusion model windows per second and latency")
    fusion_what = fusion.add_mutually_exclusive_group()
    fusion_what.add_argument("--model", type=Path, default=None,
                             help="fusion ONNX file (default: perception.fusion_model)")
    fusion_what.add_argument("--arch", default=None,
                             help="instead of a file: a fresh network of these architectures "
                                  "(all, or a comma-separated list of " + ", ".join(ARCH_NAMES)
                                  + "), with parameters and FLOPs (needs pip install "
                                    "'wellmon[train]')")
    fusion.add_argument("--seconds", type=float, default=3.0,
                        help="seconds of runs per batch size")
    store_bench = command(bench_sub, "store", "kiosks writing checks to the store: "
                                              "acknowledgement latency, commits/s, lost and "
                                              "duplicated windows, SQLite and PostgreSQL")
    store_bench.add_argument("--kiosks", type=_at_least_one, default=1000,
                             help="simulated kiosks, each with one 45 s check")
    store_bench.add_argument("--dashboards", type=_at_least_one, default=4,
                             help="dashboards (connections) the kiosks are shared among")
    store_bench.add_argument("--check-s", type=float, default=45.0,
                             help="length of each check")
    store_bench.add_argument("--json", action="store_true",
                             help="one JSON line per backend")
    soak = command(bench_sub, "soak", "a long run: memory growth, drops and latency drift "
                                      "with several sample streams")
    soak.add_argument("--minutes", type=float, default=30.0,
                      help="minutes measured after a 60 s warm-up")
    soak.add_argument("--streams", type=int, default=4, help="capture pairs of the sample clip")
    capacity = command(bench_sub, "capacity", "real-time streams this machine carries; FLOPs "
                                              "arithmetic for a GPU node")
    capacity.add_argument("--max-streams", type=int, default=8,
                          help="the most streams tried")
    capacity.add_argument("--seconds", type=float, default=60.0,
                          help="seconds measured per number of streams, after warm-up")
    capacity.add_argument("--gpu-tflops", type=float, default=10.0,
                          help="effective TFLOPS of the GPU in the arithmetic")
    rppg_bench = command(bench_sub, "rppg", "heart rate on generated faces: wellmon's methods "
                                            "beside a textbook POS")
    rppg_bench.add_argument("--half", choices=("report", "tune", "all"), default="report",
                            help="which half of streamer.synthetic_matrix (tune: the one the "
                                 "thresholds were chosen on)")
    rppg_bench.add_argument("--clips", type=Path, default=None,
                            help="folder for the generated clips and traces (kept between "
                                 "runs; default: ~/.cache/wellmon/rppg-matrix)")
    blinks_bench = command(bench_sub, "blinks", "blink F1 within 200 ms and onset error on "
                                                "generated faces")
    blinks_bench.add_argument("--half", choices=("report", "tune", "both"), default="report",
                              help="which half of streamer.synthetic_matrix")
    blinks_bench.add_argument("--fps", type=float, nargs="+", default=[15.0],
                              help="analysis frame rates")
    blinks_bench.add_argument("--clips", type=Path, default=None,
                              help="folder of the generated clips (shared with bench rppg; "
                                   "default: ~/.cache/wellmon/rppg-matrix)")
    dash_load = command(bench_sub, "dashboard", "/healthz and live-score latency, quiet and "
                                                "with a flood of idle sockets")
    dash_load.add_argument("--idle", type=int, default=500,
                           help="idle viewer WebSockets opened in the second period")
    dash_load.add_argument("--seconds", type=float, default=20.0,
                           help="seconds measured in each period")
    dash_load.add_argument("--warmup", type=float, default=15.0,
                           help="seconds of scores before measuring: the history each new "
                                "socket is sent grows with it (dashboard.history_s at most)")

    datasets = command(sub, "datasets", "generate labelled clips for training and comparing "
                                        "fusion models")
    datasets_sub = datasets.add_subparsers(dest="action", required=True, metavar="ACTION",
                                           help="what to do")
    make = command(datasets_sub, "make", "write a generated dataset: clips and manifest.csv")
    make.add_argument("kind", choices=("crossmodal",),
                      help="crossmodal: what is said and how it is said decide the class "
                           "together (docs/fusion.md)")
    make.add_argument("directory", type=Path, help="where the clips and manifest.csv go")
    make.add_argument("--speakers", type=_at_least_one, default=8,
                      help="espeak-ng voices, each a speaker of the split (1 to 8)")
    make.add_argument("--sentences", type=_at_least_one, default=2,
                      help="sentences per kind of words (1 to 3)")

    train = command(sub, "train", "fit the fusion model on labelled clips (needs "
                                  "pip install 'wellmon[train]')")
    train.add_argument("data", type=Path, help="a RAVDESS, CREMA-D or IEMOCAP folder, or a "
                                               "manifest (.csv or .jsonl: file,label,...)")
    train.add_argument("--out", type=Path, required=True,
                       help="folder for fusion.onnx, fusion.pt and MODEL_CARD.md")
    train.add_argument("--kind", default="auto",
                       choices=("auto", "ravdess", "crema-d", "iemocap", "manifest"),
                       help="the data's layout (auto: recognised from its files)")
    train.add_argument("--epochs", type=int, default=60, help="at most this many epochs")
    train.add_argument("--patience", type=int, default=10,
                       help="stop after this many epochs in which neither the validation "
                            "UA nor the validation loss improved")
    train.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    train.add_argument("--batch", type=int, default=4, help="clips per update")
    train.add_argument("--seed", type=int, default=0, help="split and initialisation seed")
    train.add_argument("--arch", default=ARCH_NAMES[0], choices=ARCH_NAMES,
                       help="the fusion architecture (docs/fusion.md#architectures)")
    train.add_argument("--threads", type=_at_least_one, default=1,
                       help="torch threads (default 1: the network is small, and more threads "
                            "only slow it on a busy machine)")
    train.add_argument("--features", type=Path, default=None, metavar="DIR",
                       help="keep the clips' measured windows in DIR and reuse them in later "
                            "runs (another --arch, other settings) instead of measuring again")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")

    comparison = command(sub, "compare", "train every fusion architecture and the unimodal "
                                         "ablations on one split, and compare them (needs "
                                         "pip install 'wellmon[train]')")
    comparison.add_argument("data", type=Path, help="labelled clips, as for wellmon train")
    comparison.add_argument("--out", type=Path, required=True,
                            help="folder for comparison.md, .json, .png and each run (a run "
                                 "already there is kept, not redone)")
    comparison.add_argument("--arch", default="all",
                            help="all, or a comma-separated list of " + ", ".join(ARCH_NAMES))
    comparison.add_argument("--epochs", type=_at_least_one, default=60,
                            help="at most this many epochs a run")
    comparison.add_argument("--patience", type=_at_least_one, default=10,
                            help="epochs without improvement before a run stops")
    comparison.add_argument("--seed", type=int, default=0, help="split and initialisation seed")
    comparison.add_argument("--test-fraction", type=_fraction, default=0.15,
                            help="share of the clips (whole speakers) held out for the test")
    comparison.add_argument("--threads", type=_at_least_one, default=1, help="torch threads")
    comparison.add_argument("--no-progress", action="store_true", help="no progress bars")

    export = command(sub, "export", "write a fusion checkpoint (or the expert defaults) as "
                                    "ONNX (needs pip install 'wellmon[train]')")
    what = export.add_mutually_exclusive_group(required=True)
    what.add_argument("checkpoint", type=Path, nargs="?", help="fusion.pt from wellmon train")
    what.add_argument("--expert-defaults", action="store_true",
                      help="the shipped expert-default model (models/weights/)")
    export.add_argument("--arch", default=None, choices=ARCH_NAMES,
                        help="the architecture the checkpoint must be (default: whichever it "
                             "is)")
    export.add_argument("--out", type=Path, default=None,
                        help="ONNX file to write (default for --expert-defaults: the "
                             "shipped file)")

    models = command(sub, "models", "the model weights")
    models_sub = models.add_subparsers(dest="models", required=True, metavar="ACTION",
                                        help="what to do with them")
    command(models_sub, "build", "convert the source models to ONNX (needs pip install "
                                 "'wellmon[convert]'); with --rppg NAME, a learned rPPG model "
                                 "of open-rppg into the data folder (in a throwaway build "
                                 "environment)", add_help=False)
    return parser


FLAG_KEYS = {
    "source": "capture.source", "stream": "capture.stream", "fast": "capture.fast",
    "port": "dashboard.port", "open_browser": "run.open_browser", "parts": "run.parts",
}


def load_config(args: argparse.Namespace) -> Config:
    flags: dict[str, Any] = {key: getattr(args, name) for name, key in FLAG_KEYS.items()
                             if getattr(args, name, None) is not None}
    path = args.config if args.config is not None else config_mod.default_path()
    return config_mod.load(path, flags=flags)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and args.command != "models":  # `models build` passes its own flags on
            getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
        if args.command is None:
            parser.print_help()
            return 0
        args.rest = extra
        # These two read no setting: a broken config.yaml must not stop them (`config
        # --example` is how one starts a new file).
        if args.command == "devices":
            from wellmon.devices import report

            return report()
        if args.command == "config":
            return _config_example(args.example)
        return _dispatch(args, load_config(args))
    except ConfigError as exc:
        return fail(f"config error: {exc}")
    except USER_ERRORS as exc:
        return fail(exc)
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, config: Config) -> int:
    from wellmon.streamer.lifecycle import stop_on_signals
    from wellmon.supervisor import die_with_parent

    if args.command == "run":
        from wellmon.supervisor import run

        return run(config)
    if args.command == "replay":
        return _replay(args, config)
    if args.command == "report":
        return _report(args)
    if args.command == "bench":
        from wellmon.benchmarks import pipeline as bench

        if args.bench == "perception":
            return bench.bench_perception(args.frames)
        if args.bench == "arcs":
            from wellmon.benchmarks.arcs import bench_arcs

            return bench_arcs()
        if args.bench == "replay":
            from wellmon.benchmarks.replay import bench_replay

            return bench_replay(config, runs=args.runs)
        if args.bench == "soak":
            from wellmon.benchmarks.soak import bench_soak

            return bench_soak(config, minutes=args.minutes, streams=args.streams)
        if args.bench == "rppg":
            from wellmon.benchmarks.rppg import bench_rppg, default_clips_dir

            return bench_rppg(args.half, args.clips or default_clips_dir())
        if args.bench == "blinks":
            from wellmon.benchmarks import blinks
            from wellmon.benchmarks.rppg import default_clips_dir

            return blinks.main(["--half", args.half, "--dir",
                                str(args.clips or default_clips_dir()), "--fps",
                                *(format(f, "g") for f in args.fps)])
        if args.bench == "dashboard":
            from wellmon.benchmarks.dashboard_load import bench_dashboard

            return bench_dashboard(config, args.idle, args.seconds, args.warmup)
        if args.bench == "capacity":
            from wellmon.benchmarks.capacity import bench_capacity

            return bench_capacity(config, max_streams=args.max_streams, seconds=args.seconds,
                                  gpu_tflops=args.gpu_tflops)
        if args.bench == "fusion":
            return _bench_fusion(args, config)
        if args.bench == "store":
            from wellmon.benchmarks.store import bench_store

            return bench_store(config, args.kiosks, args.dashboards, args.check_s, args.json)
        return bench.bench_latency(config, seconds=args.seconds, source=args.source)
    if args.command == "datasets":
        from wellmon.models.training.crossmodal import make_crossmodal

        try:
            manifest = make_crossmodal(args.directory, args.speakers, args.sentences)
        except ValueError as exc:
            raise UsageError(f"datasets make: {exc}") from None
        print(f"wellmon: {args.kind} dataset written: {manifest} (train on it with "
              f"wellmon train {manifest} --out DIR)")
        return 0
    if args.command == "compare":
        with _train_extra("compare"):
            return _compare(args, config)
    if args.command == "train":
        with _train_extra("train"):
            return _train(args, config)
    if args.command == "export":
        with _train_extra("export"):
            return _export(args)
    if args.command == "login":
        return _login(args, config)
    if args.command == "person":
        return _export_person(args, config)
    if args.command == "keys":
        from wellmon.streamer.wire.security import make_keys

        print(f"wellmon: keys in {make_keys(args.directory)}; set wire.curve_dir to it")
        return 0
    if args.command == "models":
        if any(a == "--rppg" or a.startswith("--rppg=") for a in args.rest):
            from wellmon.models.tools.rppg_build import main as build_rppg

            return build_rppg(args.rest)
        from wellmon.models.tools.convert import main as build_models

        return build_models(args.rest)
    die_with_parent()
    stop = stop_on_signals()
    metrics = _metrics(config)
    if args.command == "capture":
        from wellmon.streamer.capture import capture

        return capture(args.modality, config, stop, epoch_ns=args.epoch_ns,
                       observe=metrics and metrics.observe_capture)
    if args.command == "infer":
        from wellmon.models.node.service import serve

        return serve(config, stop, observe=metrics and metrics.observe_node)
    if args.command == "proxy":
        from wellmon.proxy import serve_proxy

        return serve_proxy(config, stop)
    from wellmon.dashboard.auth import resolve_tokens
    from wellmon.dashboard.server import serve_dashboard

    return serve_dashboard(config, resolve_tokens(config.dashboard), stop,
                           observe=metrics and metrics.observe_dashboard)


def _metrics(config: Config) -> Any:
    """wellmon.metrics when ``metrics.enabled`` (prometheus_client loads only then), else
    None: the processes take their endpoint from here rather than import it."""
    if not config.metrics.enabled:
        return None
    from wellmon import metrics

    return metrics


@contextmanager
def _train_extra(command: str) -> Iterator[None]:
    """A missing package of the `train` extra as the line that installs it."""
    try:
        yield
    except ModuleNotFoundError as exc:
        package = (exc.name or "").partition(".")[0]
        if package not in TRAIN_PACKAGES:
            raise
        cpu = ""
        if package == "torch":
            cpu = (f" (CPU-only machine: first pip install '{_pinned('torch', 'train')}' "
                   f"--index-url {CPU_TORCH_INDEX})")
        raise UsageError(f"{command} needs {package}, which is not installed: "
                         f"pip install 'wellmon[train]'{cpu}") from None


def _pinned(package: str, extra: str) -> str:
    """``package`` as ``extra`` pins it in wellmon's metadata (e.g. torch==2.13.0), so that
    the CPU build installed first is the version the extra then accepts."""
    for requirement in importlib.metadata.requires("wellmon") or []:
        spec, _, marker = requirement.partition(";")
        if re.search(rf"extra\s*==\s*['\"]{extra}['\"]", marker) and re.match(
                rf"{package}\s*[=<>!~]", spec.strip()):
            return spec.strip().replace(" ", "")
    return package


def _config_example(path: str) -> int:
    """Print the commented settings template, or write it to ``path`` (never over a file)."""
    from wellmon.models.node.outputs import output_file

    text = config_mod.example()
    if path == "-":
        sys.stdout.write(text)
        return 0
    with output_file(Path(path), overwrite=False) as sink:
        sink.write(text)
    print(f"wellmon: wrote {path}; use it with --config {path} (or name it config.yaml in "
          f"the folder you run wellmon from)")
    return 0


def _replay(args: argparse.Namespace, config: Config) -> int:
    """Score the files, then write each one's report beside its scores."""
    from wellmon.dashboard.report import report_paths, write_report
    from wellmon.models.node.replay import default_jobs, parse_baseline, replay_many

    if args.stream and len(args.files) > 1:
        raise UsageError("replay: --stream names one stream; it cannot be given with "
                         f"{len(args.files)} files")
    baseline = parse_baseline(args.baseline)
    done = replay_many(config, args.files, args.out, args.jobs or default_jobs(), baseline,
                       progress=not args.no_progress)
    for scores, windows in done:
        line = f"wellmon: {windows} windows written to {scores}"
        if windows and not args.no_report:
            page = scores.with_suffix(".report.html")
            write_report([scores], page, baseline=baseline.describe())
            paths = report_paths(page)
            line += f" (report: {page}; summary {paths['json'].name}, table {paths['csv'].name})"
        print(line)
    return 0


def _report(args: argparse.Namespace) -> int:
    from wellmon.dashboard.report import ReportError, report_paths, write_report

    try:
        summaries = write_report(args.files, args.out, stream=args.stream)
    except ReportError as exc:
        return fail(exc)
    paths = report_paths(args.out)
    print(f"wellmon: report of {len(summaries)} recording{'s' if len(summaries) > 1 else ''} "
          f"written to {args.out} (summary {paths['json']}, table {paths['csv']})")
    for summary in summaries:
        for line in summary["skipped_lines"][:5]:
            print(f"wellmon: {summary['source']}: skipped {line}", file=sys.stderr)
    return 0


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def _bench_fusion(args: argparse.Namespace, config: Config) -> int:
    from wellmon.benchmarks.pipeline import bench_fusion

    if args.arch is None:
        return bench_fusion(args.model or config.perception.fusion_model, args.seconds)
    with _train_extra("bench fusion --arch"):
        from wellmon.models.training.architectures import arch_names

        try:
            archs = arch_names(args.arch)
        except ValueError as exc:
            raise UsageError(f"bench fusion: {exc}") from None
        return bench_fusion(None, args.seconds, archs)


def _export_person(args: argparse.Namespace, config: Config) -> int:
    """`wellmon person export ID`: from the configured store, as the operator page's button
    does; the export is in the person's audit trail as the command line's."""
    import getpass
    import json
    import os
    import socket
    import time

    from wellmon.dashboard.store import open_store

    location = config.store.url or config.dashboard.store
    store = open_store(location, keep_series_days=config.dashboard.retention_days,
                       owner=config.dashboard.instance or socket.gethostname())
    try:
        exported = store.export_person(args.id)
        if exported is None:
            raise UsageError(f"person export: nothing is stored about {args.id!r} in "
                             f"{store}")
        store.record_audit("export", args.id, role="cli",  # before the data leaves
                           origin=f"{getpass.getuser()}@{socket.gethostname()}", now=time.time())
        text = json.dumps(exported, indent=1, ensure_ascii=False) + "\n"
        if args.out is None:
            sys.stdout.write(text)
        else:
            try:
                fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                os.chmod(args.out, 0o600)
            except OSError as e:
                raise UsageError(f"person export: cannot write {args.out}: "
                                 f"{e.strerror or e}") from None
    finally:
        store.close()
    if args.out is not None:
        print(f"wellmon: wrote everything stored about {args.id} to {args.out}",
              file=sys.stderr)
    return 0


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 0.5:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 0.5")
    return value


def _train(args: argparse.Namespace, config: Config) -> int:
    from wellmon.models.training.datasets import DatasetError
    from wellmon.models.training.train import TrainSettings, train

    settings = TrainSettings(epochs=args.epochs, patience=args.patience, lr=args.lr,
                             batch=args.batch, seed=args.seed, threads=args.threads,
                             arch=args.arch)
    try:
        metrics = train(config, args.data, args.out, args.kind, settings,
                        progress=not args.no_progress, features=args.features)
    except DatasetError as exc:
        raise UsageError(str(exc)) from None
    test, windows = metrics["test"], metrics["test_windows"]
    print(f"wellmon: test speakers: clip accuracy WA {test['wa']:.3f} UA {test['ua']:.3f}, "
          f"window WA {windows['wa']:.3f}; wrote {args.out / 'fusion.onnx'} and "
          f"{args.out / 'MODEL_CARD.md'}")
    return 0


def _compare(args: argparse.Namespace, config: Config) -> int:
    from wellmon.models.training.architectures import arch_names
    from wellmon.models.training.compare import compare
    from wellmon.models.training.datasets import DatasetError
    from wellmon.models.training.train import TrainSettings

    try:
        archs = arch_names(args.arch)
    except ValueError as exc:
        raise UsageError(f"compare: {exc}") from None
    settings = TrainSettings(epochs=args.epochs, patience=args.patience, seed=args.seed,
                             threads=args.threads, test_fraction=args.test_fraction)
    try:
        compare(config, args.data, args.out, archs, settings, progress=not args.no_progress)
    except DatasetError as exc:
        raise UsageError(str(exc)) from None
    print(f"wellmon: comparison written to {args.out / 'comparison.md'} (and .json, .png)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from wellmon.models.training import export

    if args.expert_defaults:
        path = export.build_default(args.out or export.DEFAULT_FILE)
    else:
        if args.out is None:
            raise UsageError("export needs --out for a checkpoint")
        try:
            net, extra = export.load_checkpoint(args.checkpoint, args.arch)
        except (FileNotFoundError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        path = export.export_onnx(net, args.out, "trained",
                                  {"wellmon.trained_on": f"{extra.get('kind')}:"
                                                         f"{extra.get('data')}"})
    print(f"wellmon: wrote {path}")
    return 0


def _login(args: argparse.Namespace, config: Config) -> int:
    """A sign-in link for ``args.role``, made with the role's token where the dashboard
    reads it (environment or token file), so no request to the dashboard is needed."""
    from wellmon.dashboard.auth import login_url, resolve_tokens

    cfg = config.dashboard
    base = args.url
    if base is None:
        if cfg.port == 0:
            raise ConfigError("dashboard.port is 0 (a free port is picked at start): give "
                              "--url with the address the dashboard printed")
        host = "127.0.0.1" if cfg.host in ("0.0.0.0", "", "::") else cfg.host
        host = f"[{host}]" if ":" in host else host
        base = f"{'https' if cfg.tls_cert else 'http'}://{host}:{cfg.port}/"
    if not base.endswith("/"):
        base += "/"
    print(login_url(base, args.role, resolve_tokens(cfg)[args.role]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
