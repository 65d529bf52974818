"""The `wellmon` command: one entry point, a subcommand per role.

Settings come from config.yaml (or --config / WELLMON_CONFIG), then
WELLMON_<SECTION>_<KEY> variables, then the flags here. A bad setting or an
unusable source ends the command with status 2 and a message that names it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from wellmon import config as config_mod
from wellmon.config import Config, ConfigError
from wellmon.models.errors import ModelError
from wellmon.streamer.sources import SourceError

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wellmon",
        description="Real-time audio-visual stress and emotion monitor "
                    "(a wellness indicator, not a diagnosis).")
    parser.add_argument("--config", type=Path, default=None,
                        help="settings file (default: $WELLMON_CONFIG, else ./config.yaml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def source_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--source", help="webcam:N, mic[:NAME], a file or URL, or sample "
                                        "(capture.source)")
        p.add_argument("--stream", help="stream id (capture.stream)")
        p.add_argument("--fast", action="store_const", const=True,
                       help="do not pace file sources at real time (capture.fast)")

    run = sub.add_parser("run", help="everything on this machine: capture, node, dashboard")
    source_flags(run)
    run.add_argument("--port", type=int, help="dashboard port (dashboard.port)")
    run.add_argument("--no-browser", dest="open_browser", action="store_const", const=False,
                     help="do not open a browser (run.open_browser)")

    capture = sub.add_parser("capture", help="one capture process (one modality of a source)")
    source_flags(capture)
    capture.add_argument("--modality", choices=("video", "audio"), required=True)
    capture.add_argument("--epoch-ns", type=int, default=None,
                         help="capture time of a file's start (aligns video and audio)")

    sub.add_parser("infer", help="the inference node")
    sub.add_parser("proxy", help="the ZeroMQ proxy that lets several nodes share streams "
                                 "(wire.proxy)")
    keys = sub.add_parser("keys", help="make a CURVE key directory for wire.curve_dir")
    keys.add_argument("directory", type=Path)

    dash = sub.add_parser("dashboard", help="the web dashboard")
    dash.add_argument("--port", type=int, help="dashboard port (dashboard.port)")

    login = sub.add_parser("login", help="print a one-time sign-in link to a dashboard page",
                           description="Print a link that signs one browser in as ROLE: it "
                           "works once, within five minutes, on a dashboard that is already "
                           "running. The browser then holds a session cookie "
                           "(dashboard.session_hours); the link in its history opens nothing.")
    login.add_argument("role", choices=("viewer", "kiosk", "admin"),
                       help="viewer: the live page; kiosk: the check page; admin: the "
                            "operator page")
    login.add_argument("--url", help="the dashboard's address, e.g. https://host:8765/ "
                                     "(default: from dashboard.host, port and tls_cert)")

    replay = sub.add_parser("replay", help="score a file offline, faster than real time")
    replay.add_argument("file", help="a media file PyAV can open, or sample")
    replay.add_argument("--out", type=Path, required=True, help="JSONL output file")
    replay.add_argument("--stream", help="stream id (capture.stream)")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")

    bench = sub.add_parser("bench", help="measure the pipeline")
    bench_sub = bench.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    latency = bench_sub.add_parser("latency", help="capture-to-browser latency percentiles")
    latency.add_argument("--seconds", type=float, default=60.0)
    latency.add_argument("--source", default="sample")
    perception = bench_sub.add_parser("perception",
                                      help="face model and audio feature costs per frame")
    perception.add_argument("--frames", type=int, default=300)

    fusion = bench_sub.add_parser("fusion", help="fusion model windows per second and latency")
    fusion.add_argument("--model", type=Path, default=None,
                        help="fusion ONNX file (default: perception.fusion_model)")
    fusion.add_argument("--seconds", type=float, default=3.0,
                        help="seconds of runs per batch size")
    soak = bench_sub.add_parser("soak", help="a long run: memory growth, drops and latency "
                                             "drift with several sample streams")
    soak.add_argument("--minutes", type=float, default=30.0,
                      help="minutes measured after a 60 s warm-up")
    soak.add_argument("--streams", type=int, default=4, help="capture pairs of the sample clip")
    capacity = bench_sub.add_parser("capacity", help="real-time streams this machine carries; "
                                                     "FLOPs arithmetic for a GPU node")
    capacity.add_argument("--max-streams", type=int, default=8)
    capacity.add_argument("--seconds", type=float, default=60.0,
                          help="seconds measured per number of streams, after warm-up")
    capacity.add_argument("--gpu-tflops", type=float, default=10.0,
                          help="effective TFLOPS of the GPU in the arithmetic")
    rppg_bench = bench_sub.add_parser("rppg", help="heart rate on generated faces: wellmon's "
                                                   "methods beside a textbook POS")
    rppg_bench.add_argument("--half", choices=("report", "tune", "all"), default="report",
                            help="which half of streamer.synthetic_matrix (tune: the one the "
                                 "thresholds were chosen on)")
    rppg_bench.add_argument("--clips", type=Path, default=None,
                            help="folder for the generated clips and traces (kept between "
                                 "runs; default: ~/.cache/wellmon/rppg-matrix)")
    blinks_bench = bench_sub.add_parser("blinks", help="blink F1 within 200 ms and onset "
                                                       "error on generated faces")
    blinks_bench.add_argument("--half", choices=("report", "tune", "both"), default="report",
                              help="which half of streamer.synthetic_matrix")
    blinks_bench.add_argument("--fps", type=float, nargs="+", default=[15.0],
                              help="analysis frame rates")
    blinks_bench.add_argument("--clips", type=Path, default=None,
                              help="folder of the generated clips (shared with bench rppg; "
                                   "default: ~/.cache/wellmon/rppg-matrix)")
    dash_load = bench_sub.add_parser("dashboard", help="/healthz and live-score latency, quiet "
                                                       "and with a flood of idle sockets")
    dash_load.add_argument("--idle", type=int, default=500,
                           help="idle viewer WebSockets opened in the second period")
    dash_load.add_argument("--seconds", type=float, default=20.0,
                           help="seconds measured in each period")
    dash_load.add_argument("--warmup", type=float, default=15.0,
                           help="seconds of scores before measuring: the history each new "
                                "socket is sent grows with it (dashboard.history_s at most)")

    train = sub.add_parser("train", help="fit the fusion model on labelled clips "
                                         "(needs pip install .[train])")
    train.add_argument("data", type=Path, help="a RAVDESS, CREMA-D or IEMOCAP folder, or a "
                                               "manifest (.csv or .jsonl: file,label,...)")
    train.add_argument("--out", type=Path, required=True,
                       help="folder for fusion.onnx, fusion.pt and MODEL_CARD.md")
    train.add_argument("--kind", default="auto",
                       choices=("auto", "ravdess", "crema-d", "iemocap", "manifest"))
    train.add_argument("--epochs", type=int, default=60, help="at most this many epochs")
    train.add_argument("--patience", type=int, default=10,
                       help="stop after this many epochs in which neither the validation "
                            "UA nor the validation loss improved")
    train.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    train.add_argument("--batch", type=int, default=4, help="clips per update")
    train.add_argument("--seed", type=int, default=0, help="split and initialisation seed")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")

    export = sub.add_parser("export", help="write a fusion checkpoint (or the expert "
                                           "defaults) as ONNX (needs pip install .[train])")
    what = export.add_mutually_exclusive_group(required=True)
    what.add_argument("checkpoint", type=Path, nargs="?", help="fusion.pt from wellmon train")
    what.add_argument("--expert-defaults", action="store_true",
                      help="the shipped expert-default model (models/weights/)")
    export.add_argument("--out", type=Path, default=None,
                        help="ONNX file to write (default for --expert-defaults: the "
                             "shipped file)")

    models = sub.add_parser("models", help="the model weights")
    models_sub = models.add_subparsers(dest="models", required=True, metavar="ACTION")
    models_sub.add_parser("build", add_help=False,
                                  help="convert the source models to ONNX "
                                       "(needs pip install .[convert]); with --rppg NAME, "
                                       "a learned rPPG model of open-rppg into the data "
                                       "folder (in a throwaway build environment)")
    return parser


FLAG_KEYS = {
    "source": "capture.source", "stream": "capture.stream", "fast": "capture.fast",
    "port": "dashboard.port", "open_browser": "run.open_browser",
}


def load_config(args: argparse.Namespace) -> Config:
    flags: dict[str, Any] = {key: getattr(args, name) for name, key in FLAG_KEYS.items()
                             if getattr(args, name, None) is not None}
    path = args.config if args.config is not None else config_mod.default_path()
    return config_mod.load(path, flags=flags)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "models":  # `models build` passes its own flags on
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.rest = extra
    try:
        config = load_config(args)
        return _dispatch(args, config)
    except ConfigError as exc:
        print(f"wellmon: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (SourceError, ModelError) as exc:
        print(f"wellmon: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, config: Config) -> int:
    from wellmon.streamer.lifecycle import stop_on_signals
    from wellmon.supervisor import die_with_parent

    if args.command == "run":
        from wellmon.supervisor import run

        return run(config)
    if args.command == "replay":
        from wellmon.models.replay import replay

        report = replay(config, args.file, args.out, progress=not args.no_progress)
        print(f"wellmon: {report['windows']} windows written to {args.out} "
              f"(report: {args.out.with_suffix('.report.json')})")
        return 0
    if args.command == "bench":
        from wellmon import bench

        if args.bench == "perception":
            return bench.bench_perception(args.frames)
        if args.bench == "soak":
            return bench.bench_soak(config, args.minutes, args.streams)
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
            return bench.bench_capacity(config, args.max_streams, args.seconds, args.gpu_tflops)
        if args.bench == "fusion":
            return bench.bench_fusion(args.model or config.perception.fusion_model,
                                      args.seconds)
        return bench.bench_latency(config, seconds=args.seconds, source=args.source)
    if args.command == "train":
        return _train(args, config)
    if args.command == "export":
        return _export(args)
    if args.command == "login":
        return _login(args, config)
    if args.command == "keys":
        from wellmon.streamer.security import make_keys

        print(f"wellmon: keys in {make_keys(args.directory)}; set wire.curve_dir to it")
        return 0
    if args.command == "models":
        if any(a == "--rppg" or a.startswith("--rppg=") for a in args.rest):
            from wellmon.models.rppg_build import main as build_rppg

            return build_rppg(args.rest)
        from wellmon.models.convert import main as build_models

        return build_models(args.rest)
    die_with_parent()
    stop = stop_on_signals()
    if args.command == "capture":
        from wellmon.streamer.capture import capture

        return capture(args.modality, config, stop, epoch_ns=args.epoch_ns)
    if args.command == "infer":
        from wellmon.models.node import serve

        return serve(config, stop)
    if args.command == "proxy":
        from wellmon.proxy import serve_proxy

        return serve_proxy(config, stop)
    from wellmon.dashboard.auth import resolve_tokens
    from wellmon.dashboard.server import serve_dashboard

    return serve_dashboard(config, resolve_tokens(config.dashboard), stop)


def _train(args: argparse.Namespace, config: Config) -> int:
    from wellmon.models.fusion.datasets import DatasetError
    from wellmon.models.fusion.train import TrainSettings, train

    settings = TrainSettings(epochs=args.epochs, patience=args.patience, lr=args.lr,
                             batch=args.batch, seed=args.seed)
    try:
        metrics = train(config, args.data, args.out, args.kind, settings,
                        progress=not args.no_progress)
    except DatasetError as exc:
        print(f"wellmon: {exc}", file=sys.stderr)
        return EXIT_USAGE
    test, windows = metrics["test"], metrics["test_windows"]
    print(f"wellmon: test speakers: clip accuracy WA {test['wa']:.3f} UA {test['ua']:.3f}, "
          f"window WA {windows['wa']:.3f}; wrote {args.out / 'fusion.onnx'} and "
          f"{args.out / 'MODEL_CARD.md'}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from wellmon.models.fusion import export

    if args.expert_defaults:
        path = export.build_default(args.out or export.DEFAULT_FILE)
    else:
        if args.out is None:
            print("wellmon: export needs --out for a checkpoint", file=sys.stderr)
            return EXIT_USAGE
        try:
            net, extra = export.load_checkpoint(args.checkpoint)
        except (FileNotFoundError, ValueError) as exc:
            print(f"wellmon: {exc}", file=sys.stderr)
            return EXIT_USAGE
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
