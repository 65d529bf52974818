"""The model card written next to a trained fusion ONNX file (Markdown for people, JSON for tools).

A model trained on the user's own recordings is only as trustworthy as the evidence shipped
with it, so ``wellmon train`` records what data it saw, how speakers were split, how it did on
held-out speakers (per class, not just overall) and what was never measured.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

PART_ORDER = ("train", "val", "test")
PART_NAMES = {"train": "train", "val": "validation", "test": "test",
              "val_windows": "validation, per window", "test_windows": "test, per window"}


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """Counts ``[true, predicted]`` (rows are the true class), shape ``(n_classes, n_classes)``."""
    true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if true.shape != pred.shape:
        raise ValueError(f"y_true has {true.size} labels but y_pred has {pred.size}")
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    for name, values in (("y_true", true), ("y_pred", pred)):
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            raise ValueError(f"{name} has class indices outside 0..{n_classes - 1}")
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (true, pred), 1)
    return matrix


def accuracy_report(y_true: Sequence[int], y_pred: Sequence[int],
                    labels: Sequence[str]) -> dict:
    """Overall and per-class accuracy as reported in speech-emotion papers.

    * per-class accuracy = recall of that class: correct / number of samples whose true class
      it is (None when the class does not occur in ``y_true``);
    * WA (weighted accuracy) = overall accuracy, correct / all samples: large classes dominate;
    * UA (unweighted accuracy) = mean per-class recall over the classes that occur in
      ``y_true``: every class counts the same, so a model that always says "neutral" scores
      badly even on a neutral-heavy test set.

    Returns ``{"n", "correct", "wa", "ua", "per_class": {label: {"count", "correct",
    "recall"}}, "confusion": [[...]], "labels": [...]}``; WA and UA are None with no samples.
    """
    labels = [str(label) for label in labels]
    matrix = confusion_matrix(y_true, y_pred, len(labels))
    counts = matrix.sum(axis=1)
    correct = np.diag(matrix)
    n = int(counts.sum())
    present = counts > 0
    recalls = [float(correct[i] / counts[i]) if present[i] else None for i in range(len(labels))]
    return {
        "n": n,
        "correct": int(correct.sum()),
        "wa": float(correct.sum() / n) if n else None,
        "ua": float(np.mean([r for r in recalls if r is not None])) if present.any() else None,
        "per_class": {
            label: {"count": int(counts[i]), "correct": int(correct[i]), "recall": recalls[i]}
            for i, label in enumerate(labels)
        },
        "labels": labels,
        "confusion": matrix.tolist(),
    }


# ------------------------------------------------------------------------------- the image

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK = (40, 40, 40)
_WHITE = (255, 255, 255)
_EMPTY_ROW = (225, 225, 225)
_LOW = np.array([255.0, 255.0, 255.0])  # BGR white for 0
_HIGH = np.array([120.0, 50.0, 10.0])  # BGR dark blue for 1


def _text_size(text: str, scale: float, thickness: int = 1) -> tuple[int, int, int]:
    (w, h), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    return w, h, baseline


def _put(img: np.ndarray, text: str, x: int, y: int, scale: float,
         color: tuple[int, int, int] = _INK, thickness: int = 1) -> None:
    """Text with its top-left corner at (x, y) (cv2 anchors at the baseline)."""
    _, h, _ = _text_size(text, scale, thickness)
    cv2.putText(img, text, (x, y + h), _FONT, scale, color, thickness, cv2.LINE_AA)


def _put_centered(img: np.ndarray, text: str, cx: float, cy: float, scale: float,
                  color: tuple[int, int, int] = _INK, thickness: int = 1) -> None:
    w, h, _ = _text_size(text, scale, thickness)
    cv2.putText(img, text, (int(round(cx - w / 2)), int(round(cy + h / 2))), _FONT, scale,
                color, thickness, cv2.LINE_AA)


def _vertical_text(text: str, scale: float, thickness: int = 1) -> np.ndarray:
    """``text`` rendered on white and turned to read bottom-to-top."""
    w, h, base = _text_size(text, scale, thickness)
    tile = np.full((h + base + 4, w + 4, 3), 255, np.uint8)
    cv2.putText(tile, text, (2, h + 2), _FONT, scale, _INK, thickness, cv2.LINE_AA)
    return cv2.rotate(tile, cv2.ROTATE_90_COUNTERCLOCKWISE)


def _paste(img: np.ndarray, tile: np.ndarray, x: int, y: int) -> None:
    h, w = tile.shape[:2]
    img[y:y + h, x:x + w] = np.minimum(img[y:y + h, x:x + w], tile)


def confusion_png(matrix: np.ndarray, labels: Sequence[str], path: Path, title: str) -> None:
    """Draw ``matrix`` (rows true, columns predicted) as a PNG with OpenCV only.

    Cells are shaded by the row-normalised value (the share of that true class predicted as
    each class, so the diagonal reads as per-class recall) and show the count and that share.
    Rows with no samples are grey. Raises OSError when the file cannot be written.
    """
    matrix = np.asarray(matrix)
    n = len(labels)
    if matrix.ndim != 2 or matrix.shape != (n, n) or n == 0:
        raise ValueError(f"matrix of shape {matrix.shape} does not fit {n} labels")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"confusion matrix image {path} must end in .png")
    names = [str(label) for label in labels]
    label_scale, cell_scale, small_scale, title_scale = 0.5, 0.5, 0.38, 0.65

    cell = max(56, max(_text_size(str(int(v)), cell_scale)[0] for v in matrix.flat) + 12)
    pad = 14
    axis_tile = _vertical_text("true", label_scale, 1)
    row_label_w = max(_text_size(name, label_scale)[0] for name in names)
    col_tiles = [_vertical_text(name, label_scale) for name in names]
    col_label_h = max(tile.shape[0] for tile in col_tiles)
    _, title_h, title_base = _text_size(title, title_scale, 2)
    note = "shade: share of the true class (row-normalised)"
    _, note_h, _ = _text_size(note, small_scale)
    _, pred_h, _ = _text_size("predicted", label_scale)

    grid_x = pad + axis_tile.shape[1] + 8 + row_label_w + 8
    grid_y = pad + title_h + title_base + 6 + note_h + 12
    grid = n * cell
    width = max(grid_x + grid + pad, pad * 2 + _text_size(title, title_scale, 2)[0],
                pad * 2 + _text_size(note, small_scale)[0])
    height = grid_y + grid + 6 + col_label_h + 8 + pred_h + pad
    img = np.full((height, width, 3), 255, np.uint8)

    _put(img, title, pad, pad, title_scale, _INK, 2)
    _put(img, note, pad, pad + title_h + title_base + 6, small_scale, (90, 90, 90))

    totals = matrix.sum(axis=1)
    for i in range(n):
        for j in range(n):
            x0, y0 = grid_x + j * cell, grid_y + i * cell
            if totals[i] > 0:
                share = float(matrix[i, j]) / float(totals[i])
                color = tuple(int(c) for c in _LOW + (_HIGH - _LOW) * share)
            else:
                share, color = math.nan, _EMPTY_ROW
            cv2.rectangle(img, (x0, y0), (x0 + cell - 1, y0 + cell - 1), color, cv2.FILLED)
            ink = _WHITE if share > 0.5 else _INK
            _put_centered(img, str(int(matrix[i, j])), x0 + cell / 2, y0 + cell * 0.4,
                          cell_scale, ink, 1)
            if not math.isnan(share):
                _put_centered(img, f"{share:.0%}", x0 + cell / 2, y0 + cell * 0.75,
                              small_scale, ink, 1)
    for k in range(n + 1):  # grid lines
        cv2.line(img, (grid_x + k * cell, grid_y), (grid_x + k * cell, grid_y + grid),
                 (160, 160, 160), 1)
        cv2.line(img, (grid_x, grid_y + k * cell), (grid_x + grid, grid_y + k * cell),
                 (160, 160, 160), 1)
    for i, name in enumerate(names):  # row labels, right-aligned next to the grid
        w, h, _ = _text_size(name, label_scale)
        _put(img, name, grid_x - 8 - w, int(grid_y + i * cell + cell / 2 - h / 2), label_scale)
    for j, tile in enumerate(col_tiles):  # column labels under the grid, bottom-to-top
        x = int(grid_x + j * cell + cell / 2 - tile.shape[1] / 2)
        _paste(img, tile, x, grid_y + grid + 6)
    _put_centered(img, "predicted", grid_x + grid / 2,
                  grid_y + grid + 6 + col_label_h + 8 + pred_h / 2, label_scale)
    _paste(img, axis_tile, pad, int(grid_y + grid / 2 - axis_tile.shape[0] / 2))

    try:
        ok = cv2.imwrite(str(path), img)
    except cv2.error as err:
        raise OSError(f"could not write confusion matrix image {path}: {err}") from None
    if not ok:
        raise OSError(f"could not write confusion matrix image {path} (does {path.parent} "
                      f"exist and is it writable?)")


# ------------------------------------------------------------------------------ the card

LIMITATIONS = (
    "This model was trained and evaluated only on the data named above. Its accuracy on "
    "other people, cameras, microphones, rooms, languages and recording conditions has not "
    "been measured and may be much lower. Acted corpora show emotions more clearly than "
    "everyday life. The output is a wellness indicator, not a diagnosis: do not use it to make "
    "decisions about anyone's health, employment, education or legal situation."
)


def _jsonable(value: object) -> object:
    """Plain JSON types: numpy scalars/arrays, paths and sets converted; NaN/inf become null."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return [_jsonable(v) for v in sorted(value, key=str)]
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def _cell(value: object) -> str:
    """A value for a Markdown table cell."""
    if value is None:
        return "–"
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, (list, tuple, set)):
        text = ", ".join(str(v) for v in (sorted(value, key=str) if isinstance(value, set)
                                          else value)) or "–"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _pct(value: object) -> str:
    return "–" if not isinstance(value, (int, float)) else f"{100.0 * float(value):.1f} %"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_cell(v) if not isinstance(v, str) else v.replace("|", "\\|")
                              for v in row) + " |" for row in rows]
    return out


def _class_counts(data: Mapping) -> tuple[list[str], dict[str, dict[str, object]]]:
    """Per-class sample/window counts from ``data`` (``samples_per_class``, ...)."""
    columns = [key for key in ("samples_per_class", "windows_per_class") if key in data]
    labels: list[str] = []
    for key in columns:
        labels += [k for k in data[key] if k not in labels]
    return labels, {key: dict(data[key]) for key in columns}


def _data_section(data: Mapping) -> list[str]:
    lines = ["## Data", ""]
    known = {"kind": "dataset kind", "root": "location", "samples": "samples",
             "windows": "windows"}
    rows = [[name, data[key]] for key, name in known.items() if key in data]
    rows += [[key, value] for key, value in data.items()
             if key not in known and key not in ("samples_per_class", "windows_per_class")]
    lines += _table(["field", "value"], rows) if rows else []
    labels, counts = _class_counts(data)
    if labels:
        header = ["class"] + [key.split("_")[0] for key in counts]
        lines += ["", "Per class:", ""]
        lines += _table(header, [[label] + [counts[key].get(label, 0) for key in counts]
                                 for label in labels])
    return lines + [""]


def _split_section(split: Mapping) -> list[str]:
    lines = ["## Split", "",
             "Speaker-independent: no speaker appears in more than one part, so validation and "
             "test measure performance on people the model never saw.", ""]
    parts = [p for p in PART_ORDER if isinstance(split.get(p), Mapping)]
    if parts:
        windows = any("windows" in split[part] for part in parts)
        rows = []
        for part in parts:
            info = split[part]
            speakers = info.get("speakers", [])
            rows.append([PART_NAMES[part], len(speakers), info.get("samples")]
                        + ([info.get("windows")] if windows else []) + [speakers])
        header = ["part", "speakers", "samples"] + (["windows"] if windows else [])
        lines += _table(header + ["speaker ids"], rows)
        with_classes = [part for part in parts if isinstance(split[part].get("per_class"), Mapping)]
        if with_classes:
            labels: list[str] = []
            for part in with_classes:
                labels += [k for k in split[part]["per_class"] if k not in labels]
            lines += ["", "Samples per class and part:", ""]
            lines += _table(["class"] + [PART_NAMES[part] for part in with_classes],
                            [[label] + [split[part]["per_class"].get(label, 0)
                                        for part in with_classes] for label in labels])
    extra = [[key, value] for key, value in split.items() if key not in parts]
    if extra:
        lines += [""] + _table(["field", "value"], extra)
    return lines + [""]


def _metrics_section(metrics: Mapping, confusion_png_name: str) -> list[str]:
    lines = ["## Results", "",
             "WA (weighted accuracy) is the share of all samples classified correctly; UA "
             "(unweighted accuracy) is the mean of the per-class recalls over classes present, "
             "so every class counts the same. Per-class accuracy is that class's recall.", ""]
    parts = [p for p in ("val", "test") if p in metrics]
    parts += [p for p in metrics if p not in parts and isinstance(metrics[p], Mapping)]
    if parts:
        lines += _table(["part", "samples", "WA", "UA"],
                        [[PART_NAMES.get(p, p), metrics[p].get("n"), _pct(metrics[p].get("wa")),
                          _pct(metrics[p].get("ua"))] for p in parts])
        labels: list[str] = []
        for p in parts:
            labels += [k for k in metrics[p].get("per_class", {}) if k not in labels]
        if labels:
            header = ["class"]
            for p in parts:
                header += [f"{PART_NAMES.get(p, p)} n", f"{PART_NAMES.get(p, p)} accuracy"]
            rows = []
            for label in labels:
                row: list[object] = [label]
                for p in parts:
                    entry = metrics[p].get("per_class", {}).get(label, {})
                    row += [entry.get("count", 0), _pct(entry.get("recall"))]
                rows.append(row)
            lines += ["", "Per class (accuracy = recall):", ""] + _table(header, rows)
    lines += ["", "### Confusion matrix", "",
              f"![Confusion matrix: rows are the true class, columns the prediction]"
              f"({confusion_png_name})", ""]
    return lines


def _training_section(training: Mapping) -> list[str]:
    names = {"epochs": "epochs (maximum)", "best_epoch": "early stopping: best epoch",
             "early_stopping_epoch": "early stopping: best epoch", "patience": "patience",
             "lr": "learning rate", "batch_size": "batch size", "seed": "seed"}
    rows = [[names.get(key, key), value] for key, value in training.items()]
    return ["## Training", ""] + (_table(["setting", "value"], rows) if rows else []) + [""]


def write_model_card(path: Path, *, model_file: str, data: dict, split: dict, metrics: dict,
                     training: dict, confusion_png_name: str) -> None:
    """Write the Markdown card at ``path`` and the same information as JSON beside it.

    Expected shapes (extra keys are listed as they are):

    * ``data``: ``kind``, ``root``, ``samples``, ``windows``, ``samples_per_class`` and
      ``windows_per_class`` (``{label: count}``);
    * ``split``: ``train``/``val``/``test`` each ``{"speakers": [...], "samples": n,
      "windows": n}`` (``datasets.Split.summary()`` gives this), plus e.g. ``seed``;
    * ``metrics``: ``val`` and ``test`` as returned by :func:`accuracy_report`;
    * ``training``: ``epochs``, ``best_epoch`` (early stopping), ``lr``, ``seed``, ...
    """
    path = Path(path)
    json_path = path.with_suffix(".json")
    if json_path == path:
        raise ValueError(f"model card {path} must not end in .json (the JSON copy goes there)")
    created = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    kind = data.get("kind", "unknown data")
    root = data.get("root", "")
    lines = [
        f"# Model card: wellmon fusion network (`{model_file}`)", "",
        "## What it is", "",
        "The wellmon fusion network (ONNX): from one window of face, voice, transcript and "
        "physiology features plus the last few windows it estimates emotion probabilities over "
        "the seven classes below, valence, arousal and a stress index. It was trained with "
        "`wellmon train` on the labelled data described here; the results below are for the "
        "emotion head on held-out speakers. Its output is a wellness indicator, not a "
        "diagnosis, and it is not a medical device.", "",
        f"- model file: `{model_file}`",
        f"- created: {created}",
        f"- trained on: {_cell(kind)} {('(' + _cell(root) + ')') if root else ''}".rstrip(),
        "",
    ]
    lines += _data_section(data)
    lines += _split_section(split)
    lines += _metrics_section(metrics, confusion_png_name)
    lines += _training_section(training)
    trained_on = f"{kind} at {root}" if root else str(kind)
    lines += ["## Limitations", "", f"Trained on: {_cell(trained_on)}. {LIMITATIONS}", ""]
    record = {
        "model": "wellmon fusion network",
        "model_file": model_file,
        "created": created,
        "intended_use": "wellness indicator, not a diagnosis",
        "data": data,
        "split": split,
        "metrics": metrics,
        "training": training,
        "confusion_png": confusion_png_name,
        "limitations": LIMITATIONS,
    }
    text = json.dumps(_jsonable(record), indent=2, allow_nan=False, ensure_ascii=False)
    path.write_text("\n".join(lines), encoding="utf-8")
    json_path.write_text(text + "\n", encoding="utf-8")


__all__ = ["accuracy_report", "confusion_matrix", "confusion_png", "write_model_card"]
