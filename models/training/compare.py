"""`wellmon compare DATA --arch all --out DIR`: every architecture, and the default one fed a
single modality, trained on the same speaker-independent split with the same seed, then
measured on the same held-out speakers through onnxruntime, as the node would run them.

Each run's result is written as it finishes (DIR/runs/NAME/result.json) and a finished run
is not redone, so a comparison that stopped goes on where it was. The features of every clip
are measured once for all runs and kept (DIR/features, a `FeatureCache`), so a resumed
comparison does not measure them again. The report is DIR/comparison.md and
.json, and a bar chart, DIR/comparison.png.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from wellmon.config import Config
from wellmon.models.fusion import spec
from wellmon.models.fusion.serving import FusionModel
from wellmon.models.training.architectures import DEFAULT_ARCH
from wellmon.models.training.datasets import detect_kind, load_dataset, speaker_split
from wellmon.models.training.export import export_onnx
from wellmon.models.training.feature_cache import FeatureCache
from wellmon.models.training.size import flops_per_window, parameters
from wellmon.models.training.train import (
    Clip,
    TrainSettings,
    extract,
    fit,
    only,
    predict_onnx,
    reports,
)

ABLATIONS: dict[str, tuple[str, ...]] = {
    "audio only": ("audio",), "text only": ("text",), "visual only": ("visual",),
    "physiology only": ("physio",)}
"""A unimodal run keeps these inputs and masks every other one, the stress z-scores too
(they mix face, voice and pulse)."""
LATENCY_REPEATS = 50


@dataclasses.dataclass(frozen=True)
class Run:
    name: str
    arch: str
    keep: tuple[str, ...] | None = None  # None: every modality

    @property
    def folder(self) -> str:
        return self.name.replace(" ", "-")


def plan(archs: Sequence[str]) -> list[Run]:
    """The runs of a comparison: each architecture with every modality, then the default
    architecture on each modality alone."""
    return [Run(a, a) for a in archs] + [Run(f"{DEFAULT_ARCH}, {name}", DEFAULT_ARCH, keep)
                                         for name, keep in ABLATIONS.items()]


def compare(config: Config, data: Path, out: Path, archs: Sequence[str],
            settings: TrainSettings, progress: bool = True,
            say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the comparison (module doc) and write its report; return the report's data."""
    kind = detect_kind(data)
    samples = load_dataset(data, kind)
    split = speaker_split(samples, settings.val_fraction, settings.test_fraction, settings.seed)
    started = time.monotonic()
    cache = FeatureCache(out / "features", config)
    parts = {name: extract(split.part(name), config, progress, cache)
             for name in ("train", "val", "test")}
    say(f"compare: features of {sum(len(p) for p in parts.values())} clips in "
        f"{time.monotonic() - started:.0f} s; test speakers: "
        + ", ".join(sorted({c.sample.speaker for c in parts['test']})))
    results = []
    for run in plan(archs):
        folder = out / "runs" / run.folder
        done = folder / "result.json"
        if done.is_file():
            say(f"compare: {run.name}: done before, kept")
            results.append(json.loads(done.read_text()))
            continue
        started = time.monotonic()
        net, history = fit(only(parts["train"], run.keep), only(parts["val"], run.keep),
                           dataclasses.replace(settings, arch=run.arch), progress)
        folder.mkdir(parents=True, exist_ok=True)
        model = export_onnx(net, folder / "fusion.onnx", "trained", {"wellmon.arch": run.arch})
        test = only(parts["test"], run.keep)
        clip_report, window_report = reports(test, *predict_onnx(model, test))
        result = {"name": run.name, "arch": run.arch, "modalities": list(run.keep or ()),
                  "parameters": parameters(net), "flops_per_window": flops_per_window(net),
                  "epochs_run": history["epochs_run"],
                  "train_s": round(time.monotonic() - started, 1),
                  "clip": clip_report, "window": window_report,
                  "latency_ms": latency(model, test)}
        done.write_text(json.dumps(result, indent=1) + "\n")
        say(f"compare: {run.name}: clip UA {clip_report['ua']:.3f}, window UA "
            f"{window_report['ua']:.3f} ({result['train_s']:.0f} s)")
        results.append(result)
    summary = {"data": str(data), "kind": kind, "seed": settings.seed,
               "test_speakers": sorted({c.sample.speaker for c in parts["test"]}),
               "clips": {name: len(p) for name, p in parts.items()}, "runs": results}
    (out / "comparison.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out / "comparison.md").write_text(markdown(summary))
    bar_chart(results, out / "comparison.png")
    return summary


def latency(model_path: Path, clips: Sequence[Clip]) -> dict[str, float]:
    """Median CPU milliseconds per window through onnxruntime, at batch 1 and 16."""
    model = FusionModel(model_path, threads=1)
    windows = [x for c in clips for x in c.windows]
    out = {}
    for batch in (1, 16):
        items = [(model.new_context(), windows[i % len(windows)]) for i in range(batch)]
        times = []
        for _ in range(LATENCY_REPEATS):
            started = time.perf_counter()
            model.run(items)
            times.append((time.perf_counter() - started) * 1e3 / batch)
        out[f"batch_{batch}"] = round(float(np.median(times)), 3)
    return out


def markdown(summary: dict[str, Any]) -> str:
    lines = [f"# Fusion architectures compared on {summary['data']}", "",
             f"Speaker-independent split (seed {summary['seed']}): {summary['clips']['train']} "
             f"training, {summary['clips']['val']} validation and {summary['clips']['test']} "
             f"test clips; test speakers {', '.join(summary['test_speakers'])}, never seen in "
             "training. Measured through onnxruntime, as the node runs the models.", "",
             "| run | clip WA | clip UA | window WA | window UA | parameters | FLOPs/window "
             "| ms/window batch 1 | batch 16 |", "|---|---|---|---|---|---|---|---|---|"]
    for r in summary["runs"]:
        lines.append(f"| {r['name']} | {_pct(r['clip']['wa'])} | {_pct(r['clip']['ua'])} | "
                     f"{_pct(r['window']['wa'])} | {_pct(r['window']['ua'])} | "
                     f"{r['parameters']:,} | {r['flops_per_window']:,} | "
                     f"{r['latency_ms']['batch_1']:.2f} | "
                     f"{r['latency_ms']['batch_16']:.2f} |")
    labels = [label for label in spec.EMOTIONS
              if any(r["clip"]["per_class"][label]["count"] for r in summary["runs"])]
    lines += ["", "Per-class recall (clips):", "",
              "| run | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for r in summary["runs"]:
        lines.append(f"| {r['name']} | " + " | ".join(
            _pct(r["clip"]["per_class"][label]["recall"]) for label in labels) + " |")
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def bar_chart(results: Sequence[dict[str, Any]], path: Path) -> None:
    """Clip and window UA per run as horizontal bars (OpenCV: no plotting library)."""
    row, left, width = 34, 300, 420
    image = np.full((row * len(results) + 70, left + width + 80, 3), 255, np.uint8)
    cv2.putText(image, "unweighted accuracy on held-out speakers: clips (dark), windows",
                (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (30, 30, 30), 1, cv2.LINE_AA)
    for i, r in enumerate(results):
        y = 50 + i * row
        cv2.putText(image, r["name"][:38], (10, y + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (30, 30, 30), 1, cv2.LINE_AA)
        for k, (key, colour) in enumerate((("clip", (128, 90, 61)), ("window", (201, 170, 140)))):
            value = r[key]["ua"] or 0.0
            cv2.rectangle(image, (left, y + k * 12), (left + int(width * value), y + k * 12 + 10),
                          colour, -1)
            cv2.putText(image, f"{100 * value:.0f}%", (left + int(width * value) + 4,
                        y + k * 12 + 10), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (30, 30, 30), 1,
                        cv2.LINE_AA)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"cannot write {path}")
