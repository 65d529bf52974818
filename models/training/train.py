"""``wellmon train``: fit the fusion network on labelled clips the user has, and export it.

1. The dataset (RAVDESS, CREMA-D, IEMOCAP or a manifest; datasets.py) is split by speaker,
   so that no person is in two of train, validation and test.
2. Every clip goes through ``models.node.replay.windows()``: the live node's own readers,
   perception and windowing, so the model learns from exactly the features it is served.
3. The network starts at the expert defaults and is trained on each clip's windows in time
   order, the temporal context carried from window to window as it is live: cross-entropy on
   the emotion head, plus squared error on valence and arousal where labels exist. The stress
   head is not trained (no stress labels); it stays the documented expert index.
4. The epoch with the best validation unweighted accuracy is kept (per clip, then per window,
   then the lower validation loss). The learning rate halves when the validation loss stalls;
   training stops when neither the accuracy nor the loss has improved for ``patience`` epochs.
5. The ONNX file, a checkpoint for ``wellmon export``, and a model card with the test
   speakers' accuracy and a confusion matrix are written. Clip accuracy averages the
   windows' probabilities over the clip; window accuracy counts every window.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from wellmon.config import Config
from wellmon.models.fusion import spec
from wellmon.models.fusion.features import FusionInput
from wellmon.models.fusion.serving import FusionModel, neighbour_offsets
from wellmon.models.node.replay import windows
from wellmon.models.training import card
from wellmon.models.training.architectures import DEFAULT_ARCH, make_network
from wellmon.models.training.datasets import Sample, Split, detect_kind, load_dataset, speaker_split
from wellmon.models.training.export import export_onnx, save_checkpoint
from wellmon.models.training.feature_cache import FeatureCache
from wellmon.models.training.network import ExpertHeads
from wellmon.models.training.size import flops_per_window, parameters

TRAINED = "trained"
NEXT_CONTEXT = spec.OUTPUT_NAMES.index("next_context")
SEQUENCE_INPUTS = [n for n in spec.INPUT_NAMES if not n.startswith("context")]


@dataclass
class Clip:
    """One labelled clip as the node saw it: its windows in time order."""

    sample: Sample
    windows: list[FusionInput]

    @property
    def label(self) -> int:
        return spec.EMOTIONS.index(self.sample.label)


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 60
    patience: int = 10
    lr: float = 3e-3
    batch: int = 4
    seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    arch: str = DEFAULT_ARCH
    """The fusion architecture (models/training/architectures.py)."""
    threads: int = 1
    """torch threads. The network is small: a second thread gains nothing on an idle 2-core
    machine and, beside two busy processes, made each step 4x slower (its threads wait for
    each other at every operation) where one thread lost 20 %."""


def extract(samples: Sequence[Sample], config: Config, progress: bool = True,
            cache: FeatureCache | None = None) -> list[Clip]:
    """Windows of every clip through the live code path; windows with nothing in are dropped.
    With a `cache`, a clip measured before under the same settings is read back instead."""
    clips = []
    for sample in tqdm(samples, desc="features", unit="clip", disable=not progress):
        found = cache.get(sample.path) if cache else None
        if found is None:
            # speech-to-text inline: a process per clip would cost more than it saves on
            # short clips (the windows are the same either way)
            found = [x for _, x in windows(config, str(sample.path), transcriber=False)
                     if any(x.present.values())]
            if cache:
                cache.put(sample.path, found)
        if found:
            clips.append(Clip(sample, found))
    return clips


def _batch_steps(clips: Sequence[Clip]) -> tuple[list[dict[str, torch.Tensor]], torch.Tensor]:
    """Per time step, the inputs of every clip (padded with all-masked windows) and validity."""
    longest = max(len(c.windows) for c in clips)
    empty = _empty_like(clips[0].windows[0])
    steps, valid = [], torch.zeros(longest, len(clips), dtype=torch.bool)
    for t in range(longest):
        rows = [c.windows[t] if t < len(c.windows) else empty for c in clips]
        valid[t] = torch.tensor([t < len(c.windows) for c in clips])
        steps.append({name: torch.from_numpy(np.stack([getattr(r, name) for r in rows]))
                      for name in SEQUENCE_INPUTS})
    return steps, valid


def _empty_like(x: FusionInput) -> FusionInput:
    return FusionInput(**{f.name: np.zeros_like(getattr(x, f.name))
                          for f in dataclasses.fields(FusionInput)})


def run_clips(net: ExpertHeads, clips: Sequence[Clip]
              ) -> tuple[list[torch.Tensor], list[tuple[torch.Tensor, ...]], torch.Tensor]:
    """Per clip, the emotion log-probabilities of every window ``[windows, 7]``, context
    carried from window to window (for a network that is not causal: the windows around
    each, as `FusionModel.run_recording` builds them); also every step's outputs and which
    clips each step belongs to."""
    steps, valid = _batch_steps(clips)
    context = torch.zeros(len(clips), net.k_past, net.dim)
    context_mask = torch.zeros(len(clips), net.k_past, dtype=torch.bool)
    per_step = []
    if net.causal:
        for inputs, ok in zip(steps, valid):
            out = net(**inputs, context=context, context_mask=context_mask, log_emotion=True)
            keep = ok[:, None, None]
            context = torch.where(keep, out[NEXT_CONTEXT], context)
            context_mask = torch.where(ok[:, None], out[NEXT_CONTEXT + 1], context_mask)
            per_step.append(out)
    else:
        own = torch.stack([net(**inputs, context=context, context_mask=context_mask)
                           [NEXT_CONTEXT][:, -1] for inputs in steps])  # [T, clips, dim]
        for t, inputs in enumerate(steps):
            around, around_mask = _around(net, own, valid, t)
            per_step.append(net(**inputs, context=around, context_mask=around_mask,
                                log_emotion=True))
    return [torch.stack([per_step[t][0][i] for t in range(len(c.windows))])
            for i, c in enumerate(clips)], per_step, valid


def _around(net: ExpertHeads, own: torch.Tensor, valid: torch.Tensor, t: int
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Step ``t``'s context for a network that is not causal: the vectors ``own`` ``[T, B,
    dim]`` of the `context_before` windows before it and of those after it."""
    slots, masks = [], []
    for offset in neighbour_offsets(net.k_past, net.context_before):
        i = t + offset
        inside = 0 <= i < len(own)
        slots.append(own[i] if inside else torch.zeros_like(own[0]))
        masks.append(valid[i] if inside else torch.zeros_like(valid[0]))
    return torch.stack(slots, dim=1), torch.stack(masks, dim=1)


def only(clips: Sequence[Clip], keep: tuple[str, ...] | None) -> list[Clip]:
    """The clips with every input but `keep` masked (values zeroed, masks false)."""
    if keep is None:
        return list(clips)
    masked = {"visual", "audio", "text", "physio", "stress_z"} - set(keep)

    def window(x: FusionInput) -> FusionInput:
        changes = {}
        for name in masked:
            mask = f"{name}_mask" if name != "stress_z" else "stress_mask"
            changes[name] = np.zeros_like(getattr(x, name))
            changes[mask] = np.zeros_like(getattr(x, mask))
        return dataclasses.replace(x, **changes)

    return [Clip(c.sample, [window(x) for x in c.windows]) for c in clips]


def _objective(net: ExpertHeads, clips: Sequence[Clip]) -> torch.Tensor:
    """What training minimises: the loss of the whole network, or for score-level fusion
    the mean loss of each classifier on its own inputs (`ExpertHeads.alone`)."""
    if not net.alone:
        return _loss(net, clips)
    return torch.stack([_loss(net, only(clips, keep)) for keep in net.alone]).mean()


def _weigh(net: ExpertHeads, val: Sequence[Clip]) -> None:
    """Score-level fusion's weights from each classifier's validation accuracy (per clip,
    unweighted: every class counts the same)."""
    if net.alone:
        accuracy = {}
        for keep in net.alone:
            clips = only(val, keep)
            clip_report, _ = reports(clips, *predict(net, clips))
            accuracy[keep] = clip_report["ua"] or 0.0
        net.weigh(accuracy)


def _loss(net: ExpertHeads, clips: Sequence[Clip],
          run: tuple[list[torch.Tensor], list[tuple[torch.Tensor, ...]], torch.Tensor]
          | None = None) -> torch.Tensor:
    """Mean per-window loss of the clips (``run``: their ``run_clips`` output, if at hand)."""
    emotions, per_step, _ = run or run_clips(net, clips)
    labels = torch.tensor([c.label for c in clips])
    total, count = torch.zeros(()), 0
    for i, log_probs in enumerate(emotions):
        total = total - log_probs[:, labels[i]].sum()
        count += len(log_probs)
    for head in ("valence", "arousal"):
        index = spec.OUTPUT_NAMES.index(head)
        for i, clip in enumerate(clips):
            target = getattr(clip.sample, head)
            if target is not None:
                pred = torch.stack([per_step[t][index][i] for t in range(len(clip.windows))])
                total = total + ((pred - target) ** 2).sum()
    return total / max(1, count)


def predict(net: ExpertHeads, clips: Sequence[Clip]) -> tuple[list[int], list[list[int]]]:
    """Clip predictions (mean window probability) and every window's prediction."""
    per_clip, per_window, _ = evaluate(net, clips)
    return per_clip, per_window


def evaluate(net: ExpertHeads, clips: Sequence[Clip]
             ) -> tuple[list[int], list[list[int]], float]:
    """:func:`predict`'s predictions and the training loss on the same clips, in one pass."""
    net.eval()
    with torch.no_grad():
        run = run_clips(net, clips)
        loss = float(_objective(net, clips) if net.alone else _loss(net, clips, run))
    return ([int(p.exp().mean(0).argmax()) for p in run[0]],
            [p.argmax(1).tolist() for p in run[0]], loss)


def predict_onnx(path: Path, clips: Sequence[Clip]) -> tuple[list[int], list[list[int]]]:
    """The same predictions through onnxruntime, as the node would make them."""
    model = FusionModel(path)
    per_clip, per_window = [], []
    for clip in clips:
        probs = np.array([list(o.emotions.values())
                          for o in model.run_recording(clip.windows)])
        per_clip.append(int(probs.mean(0).argmax()))
        per_window.append(probs.argmax(1).tolist())
    return per_clip, per_window


def reports(clips: Sequence[Clip], per_clip: Sequence[int], per_window: Sequence[Sequence[int]]
            ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Clip-level and window-level accuracy reports (card.accuracy_report)."""
    clip_report = card.accuracy_report([c.label for c in clips], list(per_clip), spec.EMOTIONS)
    truth = [c.label for c in clips for _ in c.windows]
    flat = [p for preds in per_window for p in preds]
    return clip_report, card.accuracy_report(truth, flat, spec.EMOTIONS)


def fit(train: Sequence[Clip], val: Sequence[Clip], settings: TrainSettings,
        progress: bool = True) -> tuple[ExpertHeads, dict[str, Any]]:
    """Adam from the expert defaults; keeps the epoch with the best validation UA.

    UA over a handful of validation clips is coarse: it stays flat for many epochs while the
    network is still learning (at chance until the first class separates, at two of three
    classes until the last pair does), and where such a plateau ends moves with the smallest
    change in the inputs or in the order of float additions. Stopping on UA alone therefore
    stopped some runs on a plateau, before the network had learned the data. The validation
    loss, which keeps falling across such plateaus, breaks ties between epochs of equal UA and
    keeps patience from running out while it still improves; it also halves the learning rate
    when it stalls, so that the last epochs settle instead of jumping between minima.
    """
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    random.seed(settings.seed)
    net = make_network(settings.arch)
    optimiser = torch.optim.Adam(_parameter_groups(net, settings.lr), lr=settings.lr)
    schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimiser, factor=LR_DECAY, patience=LR_DECAY_PATIENCE)
    order = list(train)
    best_state, best = copy.deepcopy(net.state_dict()), (-1.0, -float("inf"), -float("inf"))
    best_epoch, history = 0, []
    best_loss, improved_epoch = float("inf"), 0
    bar = tqdm(range(1, settings.epochs + 1), desc="training", unit="epoch",
               disable=not progress)
    for epoch in bar:
        net.train()
        random.shuffle(order)
        losses = []
        for k in range(0, len(order), settings.batch):
            optimiser.zero_grad()
            loss = _objective(net, order[k:k + settings.batch])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            optimiser.step()
            losses.append(float(loss.detach()))
        _weigh(net, val)
        per_clip, per_window, val_loss = evaluate(net, val)
        clip_report, window_report = reports(val, per_clip, per_window)
        score = (clip_report["ua"] or 0.0, window_report["ua"] or 0.0, -val_loss)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "val_loss": val_loss,
                        "val_ua": clip_report["ua"], "val_window_ua": window_report["ua"]})
        bar.set_postfix(loss=f"{np.mean(losses):.3f}", val_ua=f"{score[0]:.3f}")
        schedule.step(val_loss)
        if score > best:
            best, best_epoch, best_state = score, epoch, copy.deepcopy(net.state_dict())
            improved_epoch = epoch
        if val_loss < best_loss:
            best_loss, improved_epoch = val_loss, epoch
        if epoch - improved_epoch >= settings.patience:
            break
    net.load_state_dict(best_state)
    net.eval()
    return net, {"epochs_run": len(history), "best_epoch": best_epoch, "history": history}


LR_DECAY = 0.5
"""Factor of the learning rate (every group) when the validation loss has stalled ..."""
LR_DECAY_PATIENCE = 3
"""... for this many epochs (torch's ReduceLROnPlateau)."""

PRIOR_LR = 0.05
"""Learning rate of the expert prior's scale and the emotion biases. The prior's
log-probabilities span up to 27 nats (the expression model is very sure of itself), so
when the data says the face is not the evidence (a corpus's actors, a generated set's single
face), these few scalars must move far; at the network's rate they would take thousands of
steps."""


def _parameter_groups(net: ExpertHeads, lr: float) -> list[dict[str, Any]]:
    fast = [net.emotion_prior_scale, net.emotion.bias]
    ids = {id(p) for p in fast}
    return [{"params": [p for p in net.parameters() if id(p) not in ids], "lr": lr},
            {"params": fast, "lr": max(lr, PRIOR_LR)}]


def train(config: Config, data: Path, out_dir: Path, kind: str = "auto",
          settings: TrainSettings = TrainSettings(), progress: bool = True,
          features: Path | None = None) -> dict[str, Any]:
    """The whole of ``wellmon train``; returns the test metrics written to the card.
    `features`: a folder keeping the clips' measured windows between runs."""
    kind = detect_kind(data) if kind == "auto" else kind
    samples = load_dataset(data, kind)
    split = speaker_split(samples, settings.val_fraction, settings.test_fraction, settings.seed)
    cache = FeatureCache(features, config) if features else None
    parts = {name: extract(split.part(name), config, progress, cache)
             for name in ("train", "val", "test")}
    for name, clips in parts.items():
        if not clips:
            raise ValueError(f"no usable windows in the {name} part of {data}: every clip "
                             "there was empty or unreadable")
    net, history = fit(parts["train"], parts["val"], settings, progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "fusion.onnx"
    card_path = out_dir / "MODEL_CARD.md"
    export_onnx(net, onnx_path, TRAINED, {"wellmon.model_card": card_path.name,
                                          "wellmon.trained_on": f"{kind}:{data}",
                                          "wellmon.arch": net.arch})
    save_checkpoint(net, out_dir / "fusion.pt", {"data": str(data), "kind": kind})
    metrics = {}
    for name in ("val", "test"):
        per_clip, per_window = predict_onnx(onnx_path, parts[name])
        metrics[name], metrics[f"{name}_windows"] = reports(parts[name], per_clip, per_window)
    torch_clip, torch_window = predict(net, parts["test"])
    onnx_matches = (torch_clip, torch_window) == predict_onnx(onnx_path, parts["test"])
    card.confusion_png(np.array(metrics["test"]["confusion"]), spec.EMOTIONS,
                       out_dir / "confusion.png", "test speakers, per clip")
    card.write_model_card(
        card_path, model_file=onnx_path.name,
        data=_data_summary(data, kind, parts), split=_split_summary(split, parts, settings),
        metrics=metrics, training={
            **dataclasses.asdict(settings), "epochs_run": history["epochs_run"],
            "parameters": parameters(net), "flops_per_window": flops_per_window(net),
            "best_epoch": history["best_epoch"], "history": "history.json",
            "optimiser": "Adam", "lr_schedule": f"x{LR_DECAY} after {LR_DECAY_PATIENCE} epochs "
            "without a lower validation loss", "loss": "cross-entropy (+ squared error on "
            "valence and arousal where labelled)", "start": "the expert defaults",
            "onnx_matches_torch_on_test": onnx_matches},
        confusion_png_name="confusion.png")
    (out_dir / "history.json").write_text(json.dumps(history["history"], indent=1) + "\n")
    return metrics


def _data_summary(data: Path, kind: str, parts: dict[str, list[Clip]]) -> dict[str, Any]:
    clips = [c for part in parts.values() for c in part]
    return {"kind": kind, "root": str(data), "samples": len(clips),
            "windows": sum(len(c.windows) for c in clips),
            "samples_per_class": dict(Counter(c.sample.label for c in clips)),
            "windows_per_class": dict(Counter(c.sample.label for c in clips
                                              for _ in c.windows))}


def _split_summary(split: Split, parts: dict[str, list[Clip]], settings: TrainSettings
                   ) -> dict[str, Any]:
    summary: dict[str, Any] = split.summary()
    for name, clips in parts.items():
        summary[name]["windows"] = sum(len(c.windows) for c in clips)
        summary[name]["usable_samples"] = len(clips)
    summary["seed"] = settings.seed
    summary["rule"] = "speaker-independent: no speaker in two parts"
    return summary
