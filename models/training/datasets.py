"""Labelled corpora for ``wellmon train``: RAVDESS, CREMA-D, IEMOCAP and plain manifests.

The loaders only read file names and annotation text; they never decode media, so they are
cheap and can be tested on trees of empty files. Every corpus is mapped onto the seven classes
of the fusion model's emotion head (``models.perception.face.EMOTIONS``, the FER-2013 order):

* RAVDESS ``calm`` becomes ``neutral``: calm is a low-arousal neutral delivery and the head has
  no class for it (dropping it would throw away a sixth of the corpus).
* IEMOCAP ``exc`` (excited) becomes ``happy``, as is usual in IEMOCAP emotion papers (the two
  are hard to tell apart and ``hap`` alone is small); ``xxx`` (no annotator agreement),
  ``fru`` (frustrated) and ``oth`` (other) have no class and are skipped.

Mistakes in the data raise :class:`DatasetError` naming the file (and line and column) and the
problem, because a silently mislabelled corpus trains a silently wrong model.

The model must be judged on people it has never heard or seen, so :func:`speaker_split` keeps
every speaker in exactly one of train, validation and test.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wellmon.models.perception.face import EMOTIONS

log = logging.getLogger("wellmon.models.training.datasets")

KINDS = ("auto", "ravdess", "crema-d", "iemocap", "manifest")

# Corpus codes and common spellings accepted in manifests (besides the EMOTIONS themselves).
LABEL_ALIASES: dict[str, str] = {
    "calm": "neutral",  # RAVDESS: no calm class in the head
    "fearful": "fear",
    "surprised": "surprise",
    "ang": "angry",
    "dis": "disgust",
    "fea": "fear",
    "hap": "happy",
    "exc": "happy",  # IEMOCAP excited
    "sad": "sad",
    "sur": "surprise",
    "neu": "neutral",
}


@dataclass(frozen=True)
class Sample:
    """One labelled recording: a media file, its emotion class and who is speaking."""

    path: Path
    label: str  # one of EMOTIONS
    speaker: str
    valence: float | None = None  # [-1, 1] when known
    arousal: float | None = None  # [-1, 1] when known


class DatasetError(ValueError):
    """The data on disk is not what the loader expects; the message names file and problem."""


def normalise_label(raw: str) -> str | None:
    """Map a label or corpus alias onto EMOTIONS; None when it is not one of them."""
    key = raw.strip().lower()
    if key in EMOTIONS:
        return key
    return LABEL_ALIASES.get(key)


def _walk(root: Path) -> Iterator[Path]:
    """Files under ``root`` in a stable order, skipping hidden ones (macOS ``._`` forks, .git)."""
    for path in sorted(root.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if path.is_file():
            yield path


def _require_dir(root: Path, corpus: str) -> Path:
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{corpus} root {root} does not exist")
    if not root.is_dir():
        raise DatasetError(f"{corpus} root {root} is not a directory")
    return root


# ---------------------------------------------------------------------------------- RAVDESS

RAVDESS_EXTENSIONS = (".mp4", ".wav")
# Any 7 dash-separated numbers: a name in this shape is meant to be RAVDESS, so bad codes
# in it are errors rather than unrelated files.
_RAVDESS_LIKE = re.compile(r"^\d+(?:-\d+){6}$")
RAVDESS_EMOTIONS = {
    "01": "neutral",
    "02": "neutral",  # calm
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fear",  # fearful
    "07": "disgust",
    "08": "surprise",  # surprised
}
# (field name, allowed codes) for the seven fields, in file-name order.
_RAVDESS_FIELDS: tuple[tuple[str, tuple[int, int]], ...] = (
    ("modality", (1, 3)),
    ("vocal channel", (1, 2)),
    ("emotion", (1, 8)),
    ("intensity", (1, 2)),
    ("statement", (1, 2)),
    ("repetition", (1, 2)),
    ("actor", (1, 24)),
)


def _is_ravdess_name(path: Path) -> bool:
    return path.suffix.lower() in RAVDESS_EXTENSIONS and bool(_RAVDESS_LIKE.match(path.stem))


def _parse_ravdess(path: Path) -> tuple[str, str, str]:
    """(modality, label, speaker) from a RAVDESS file name, or DatasetError."""
    codes = path.stem.split("-")
    for code, (field, (lo, hi)) in zip(codes, _RAVDESS_FIELDS):
        if len(code) != 2 or not lo <= int(code) <= hi:
            raise DatasetError(
                f"RAVDESS file name {path.name} ({path.parent}): {field} code {code} is not "
                f"{lo:02d}-{hi:02d}")
    return codes[0], RAVDESS_EMOTIONS[codes[2]], f"actor_{codes[6]}"


def load_ravdess(root: Path) -> list[Sample]:
    """Every RAVDESS recording under ``root`` (recursively), one modality only.

    Full audio-visual files (modality 01) are used when the tree has any, else audio-only
    (03); video-only (02, no sound) only when there is nothing else. Mixing modalities would
    count each performance twice. ``calm`` is labelled ``neutral``. Files not named like
    RAVDESS are ignored; a RAVDESS-shaped name with bad codes raises :class:`DatasetError`.
    """
    root = _require_dir(root, "RAVDESS")
    by_modality: dict[str, list[Sample]] = defaultdict(list)
    seen: set[str] = set()
    for path in _walk(root):
        if not _is_ravdess_name(path):
            continue
        modality, label, speaker = _parse_ravdess(path)
        if path.name in seen:  # the same clip extracted twice
            continue
        seen.add(path.name)
        by_modality[modality].append(Sample(path, label, speaker))
    for modality in ("01", "03", "02"):
        if by_modality[modality]:
            return by_modality[modality]
    raise DatasetError(f"no RAVDESS files (MM-VV-EE-II-SS-RR-AA.mp4/.wav) found under {root}")


# ---------------------------------------------------------------------------------- CREMA-D

CREMA_D_EXTENSIONS = (".mp4", ".flv", ".wav")  # preference order: video with sound first
_CREMA_D_LIKE = re.compile(r"^\d+_[A-Za-z]+_[A-Za-z]+_[A-Za-z]+$")
CREMA_D_EMOTIONS = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
CREMA_D_LEVELS = ("LO", "MD", "HI", "XX")
CREMA_D_SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS",
                     "TSI", "WSI")


def _is_crema_d_name(path: Path) -> bool:
    return path.suffix.lower() in CREMA_D_EXTENSIONS and bool(_CREMA_D_LIKE.match(path.stem))


def _parse_crema_d(path: Path) -> tuple[str, str]:
    """(label, speaker) from a CREMA-D file name, or DatasetError."""
    actor, sentence, emotion, level = path.stem.split("_")
    where = f"CREMA-D file name {path.name} ({path.parent})"
    if len(actor) != 4:
        raise DatasetError(f"{where}: actor id {actor} is not 4 digits")
    if sentence not in CREMA_D_SENTENCES:
        raise DatasetError(f"{where}: sentence {sentence} is not one of "
                           f"{', '.join(CREMA_D_SENTENCES)}")
    if emotion not in CREMA_D_EMOTIONS:
        raise DatasetError(f"{where}: emotion {emotion} is not one of "
                           f"{', '.join(CREMA_D_EMOTIONS)}")
    if level not in CREMA_D_LEVELS:
        raise DatasetError(f"{where}: level {level} is not one of {', '.join(CREMA_D_LEVELS)}")
    return CREMA_D_EMOTIONS[emotion], f"actor_{actor}"


def load_crema_d(root: Path) -> list[Sample]:
    """Every CREMA-D clip under ``root`` (recursively), one file per clip.

    The distribution has the same clip as ``AudioWAV/<stem>.wav`` and ``VideoFlash/<stem>.flv``
    (some copies are converted to .mp4); the video file (which carries the sound too) is used
    when present, so each clip counts once.
    """
    root = _require_dir(root, "CREMA-D")
    best: dict[str, tuple[int, Path, str, str]] = {}
    for path in _walk(root):
        if not _is_crema_d_name(path):
            continue
        label, speaker = _parse_crema_d(path)
        rank = CREMA_D_EXTENSIONS.index(path.suffix.lower())
        if path.stem not in best or rank < best[path.stem][0]:
            best[path.stem] = (rank, path, label, speaker)
    if not best:
        raise DatasetError(f"no CREMA-D files (1001_DFA_ANG_XX.wav/.flv/.mp4) found under {root}")
    return [Sample(path, label, speaker) for _, path, label, speaker in
            sorted(best.values(), key=lambda item: str(item[1]))]


# ---------------------------------------------------------------------------------- IEMOCAP

IEMOCAP_EMOTIONS = {
    "ang": "angry",
    "dis": "disgust",
    "fea": "fear",
    "hap": "happy",
    "exc": "happy",  # excited, merged as in most IEMOCAP papers
    "sad": "sad",
    "sur": "surprise",
    "neu": "neutral",
}
IEMOCAP_SKIPPED = ("xxx", "fru", "oth")  # no agreement, frustrated, other: no class
_SESSION_DIR = re.compile(r"^Session\d+$")
_IEMOCAP_LINE = re.compile(
    r"^\[\s*(?P<start>[\d.]+)\s*-\s*(?P<end>[\d.]+)\s*\]\s+(?P<utt>\S+)\s+(?P<emo>\S+)\s+"
    r"\[\s*(?P<val>[-\d.]+)\s*,\s*(?P<act>[-\d.]+)\s*,\s*(?P<dom>[-\d.]+)\s*\]\s*$")
_IEMOCAP_UTTERANCE = re.compile(r"^(?P<session>Ses\d+)[FM]_.*_(?P<gender>[FM])\d+$")


def _iemocap_scale(value: float) -> float:
    """IEMOCAP's 1-5 annotator scale to [-1, 1]; clipped, averaged ratings can stray."""
    return float(min(1.0, max(-1.0, (value - 3.0) / 2.0)))


def _session_dirs(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.is_dir() and _SESSION_DIR.match(p.name)),
                  key=lambda p: int(p.name[len("Session"):]))


def load_iemocap(root: Path) -> list[Sample]:
    """Every labelled IEMOCAP utterance with a wav file, from ``Session*/dialog/EmoEvaluation``.

    Labels follow the module docstring (``exc`` -> happy; ``xxx``/``fru``/``oth`` skipped).
    Valence and arousal (IEMOCAP's "activation") go from the 1-5 scale to [-1, 1] by
    ``(x - 3) / 2``. The speaker is session plus the utterance's speaker letter
    (``Ses01F_impro01_M003`` -> ``Ses01_M``): in each session one woman and one man act both
    roles of every dialogue, so the dialogue's letter is not the speaker. Utterances whose
    ``sentences/wav/<dialog>/<utterance>.wav`` is missing are skipped and logged.
    """
    root = _require_dir(root, "IEMOCAP")
    sessions = _session_dirs(root)
    if not sessions:
        raise DatasetError(f"IEMOCAP root {root} has no Session1..Session5 directories")
    samples: list[Sample] = []
    missing = 0
    skipped: Counter[str] = Counter()
    for session in sessions:
        eval_dir = session / "dialog" / "EmoEvaluation"
        if not eval_dir.is_dir():
            log.warning("IEMOCAP %s has no dialog/EmoEvaluation directory; skipped", session)
            continue
        for txt in sorted(eval_dir.glob("*.txt")):
            if txt.name.startswith("."):
                continue
            wav_dir = session / "sentences" / "wav" / txt.stem
            for lineno, line in enumerate(txt.read_text(errors="replace").splitlines(), 1):
                if not line.startswith("["):
                    continue  # header, blank lines and per-annotator detail lines
                sample = _iemocap_sample(txt, lineno, line, wav_dir, skipped)
                if sample is None:
                    continue
                if not sample.path.is_file():
                    missing += 1
                    continue
                samples.append(sample)
    if missing:
        log.warning("IEMOCAP %s: skipped %d labelled utterance(s) without a wav file",
                    root, missing)
    if skipped:
        log.info("IEMOCAP %s: skipped utterances without a class: %s", root,
                 ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())))
    if not samples:
        raise DatasetError(
            f"IEMOCAP root {root}: no usable utterances (labelled with a known emotion and with "
            f"a wav under Session*/sentences/wav/<dialog>/); {missing} labelled without a wav")
    return samples


def _iemocap_sample(txt: Path, lineno: int, line: str, wav_dir: Path,
                    skipped: Counter[str]) -> Sample | None:
    """One EmoEvaluation summary line as a Sample (None when its label has no class)."""
    where = f"IEMOCAP {txt} line {lineno}"
    match = _IEMOCAP_LINE.match(line.strip())
    if match is None:
        raise DatasetError(f"{where}: expected '[start - end]\\tutterance\\temotion\\t"
                           f"[valence, activation, dominance]', got {line.strip()!r}")
    emo = match["emo"].lower()
    if emo in IEMOCAP_SKIPPED:
        skipped[emo] += 1
        return None
    if emo not in IEMOCAP_EMOTIONS:
        raise DatasetError(f"{where}: emotion {match['emo']} is not one of "
                           f"{', '.join([*IEMOCAP_EMOTIONS, *IEMOCAP_SKIPPED])}")
    utt = match["utt"]
    who = _IEMOCAP_UTTERANCE.match(utt)
    if who is None:
        raise DatasetError(f"{where}: utterance id {utt} is not like Ses01F_impro01_F000")
    try:
        valence, arousal = float(match["val"]), float(match["act"])
    except ValueError as err:
        raise DatasetError(f"{where}: valence/activation are not numbers: {err}") from None
    return Sample(wav_dir / f"{utt}.wav", IEMOCAP_EMOTIONS[emo],
                  f"{who['session']}_{who['gender']}",
                  _iemocap_scale(valence), _iemocap_scale(arousal))


# --------------------------------------------------------------------------------- manifest

MANIFEST_CSV = (".csv",)
MANIFEST_JSONL = (".jsonl", ".json-lines", ".ndjson")


def load_manifest(path: Path) -> list[Sample]:
    """Samples listed in a CSV (with header) or JSON-lines manifest.

    Columns/keys: ``file`` (relative to the manifest's folder unless absolute), ``label`` (an
    emotion or alias such as calm, fearful, ang, hap, exc), optional ``valence`` and
    ``arousal`` in [-1, 1] and ``speaker`` (default: the file's parent directory name).
    Errors name the manifest, line and column.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"manifest {path} does not exist or is not a file")
    suffix = path.suffix.lower()
    if suffix in MANIFEST_CSV:
        rows = _csv_rows(path)
    elif suffix in MANIFEST_JSONL:
        rows = _jsonl_rows(path)
    else:
        raise DatasetError(f"manifest {path}: unknown extension {path.suffix or '(none)'}; use "
                           f"{', '.join(MANIFEST_CSV + MANIFEST_JSONL)}")
    samples = [_manifest_sample(path, lineno, row) for lineno, row in rows]
    if not samples:
        raise DatasetError(f"manifest {path} lists no samples")
    return samples


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise DatasetError(f"manifest {path} is empty (expected a header line)")
        columns = [name.strip().lower() for name in header]
        for required in ("file", "label"):
            if required not in columns:
                raise DatasetError(f"manifest {path} line 1: missing column '{required}' "
                                   f"(header: {', '.join(columns)})")
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(columns):
                raise DatasetError(f"manifest {path} line {reader.line_num}: {len(row)} values "
                                   f"for {len(columns)} columns")
            yield reader.line_num, dict(zip(columns, row))


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    with path.open(encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DatasetError(f"manifest {path} line {lineno}: not JSON: {err.msg}") from None
            if not isinstance(row, dict):
                raise DatasetError(f"manifest {path} line {lineno}: expected a JSON object, got "
                                   f"{type(row).__name__}")
            yield lineno, {str(k).strip().lower(): v for k, v in row.items()}


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _manifest_sample(manifest: Path, lineno: int, row: dict[str, object]) -> Sample:
    where = f"manifest {manifest} line {lineno}"
    for required in ("file", "label"):
        if not _present(row.get(required)):
            raise DatasetError(f"{where}, column '{required}': missing value")
    label = normalise_label(str(row["label"]))
    if label is None:
        allowed = ", ".join([*EMOTIONS, *LABEL_ALIASES])
        raise DatasetError(f"{where}, column 'label': unknown label {row['label']!r}; allowed: "
                           f"{allowed}")
    file = Path(str(row["file"]).strip()).expanduser()
    if not file.is_absolute():
        file = manifest.parent / file
    if not file.is_file():
        raise DatasetError(f"{where}, column 'file': {file} does not exist")
    dims: dict[str, float | None] = {}
    for column in ("valence", "arousal"):
        value = row.get(column)
        if not _present(value):
            dims[column] = None
            continue
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise DatasetError(f"{where}, column '{column}': {value!r} is not a number") from None
        if not -1.0 <= number <= 1.0:  # also rejects NaN
            raise DatasetError(f"{where}, column '{column}': {value!r} is out of range [-1, 1]")
        dims[column] = number
    speaker = str(row["speaker"]).strip() if _present(row.get("speaker")) else file.parent.name
    return Sample(file, label, speaker, dims["valence"], dims["arousal"])


# --------------------------------------------------------------------------------- dispatch


def _count_names(root: Path) -> tuple[int, int]:
    """How many files under ``root`` are named like RAVDESS and like CREMA-D."""
    ravdess = crema = 0
    for path in _walk(root):
        ravdess += _is_ravdess_name(path)
        crema += _is_crema_d_name(path)
    return ravdess, crema


def detect_kind(path: Path) -> str:
    """Which layout ``path`` is: manifest, iemocap, ravdess or crema-d."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset path {path} does not exist")
    if path.is_file():
        return "manifest"
    if _session_dirs(path):
        return "iemocap"
    ravdess, crema = _count_names(path)
    if ravdess or crema:
        return "ravdess" if ravdess >= crema else "crema-d"
    raise DatasetError(
        f"dataset directory {path}: no known layout found; tried IEMOCAP (Session1..5 "
        f"directories), RAVDESS (MM-VV-EE-II-SS-RR-AA.mp4/.wav files) and CREMA-D "
        f"(1001_DFA_ANG_XX.wav/.flv/.mp4 files); a CSV/JSONL manifest file also works")


def load_dataset(path: Path, kind: str = "auto") -> list[Sample]:
    """Load ``path`` as ``kind`` (one of KINDS); ``auto`` recognises the layout."""
    normalised = kind.strip().lower().replace("_", "-")
    if normalised == "cremad":
        normalised = "crema-d"
    if normalised not in KINDS:
        raise DatasetError(f"unknown dataset kind {kind!r}; use one of {', '.join(KINDS)}")
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset path {path} does not exist")
    if normalised == "auto":
        normalised = detect_kind(path)
    if normalised == "manifest":
        return load_manifest(path)
    if not path.is_dir():
        raise DatasetError(f"{normalised} dataset path {path} is not a directory")
    loader = {"ravdess": load_ravdess, "crema-d": load_crema_d, "iemocap": load_iemocap}
    return loader[normalised](path)


# ------------------------------------------------------------------------------------ split

PARTS = ("train", "val", "test")
_SPLIT_ATTEMPTS = 32


@dataclass
class Split:
    """A speaker-independent partition: no speaker appears in two parts."""

    train: list[Sample]
    val: list[Sample]
    test: list[Sample]

    def part(self, name: str) -> list[Sample]:
        if name not in PARTS:
            raise KeyError(name)
        return getattr(self, name)

    @property
    def speakers(self) -> dict[str, set[str]]:
        """The speakers of each part, keyed train/val/test."""
        return {name: {s.speaker for s in self.part(name)} for name in PARTS}

    def summary(self) -> dict[str, dict[str, object]]:
        """Speakers, sample count and per-class counts of each part (for the model card)."""
        out: dict[str, dict[str, object]] = {}
        for name in PARTS:
            samples = self.part(name)
            counts = Counter(s.label for s in samples)
            out[name] = {
                "speakers": sorted({s.speaker for s in samples}),
                "samples": len(samples),
                "per_class": {label: counts.get(label, 0) for label in EMOTIONS},
            }
        return out


def speaker_split(samples: Sequence[Sample], val_fraction: float = 0.15,
                  test_fraction: float = 0.15, seed: int = 0) -> Split:
    """Split whole speakers into train/val/test, aiming at the fractions in samples.

    Deterministic for a seed and independent of the input order. Several shuffles of the
    speakers (derived from ``seed``) are packed greedily; the one that keeps the most classes
    in train and lands closest to the fractions wins. Every part gets at least one speaker,
    so at least three speakers are needed.
    """
    for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {fraction}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must be < 1, got "
                         f"{val_fraction + test_fraction}")
    by_speaker: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_speaker[sample.speaker].append(sample)
    speakers = sorted(by_speaker)
    if len(speakers) < 3:
        raise DatasetError(
            f"a speaker-independent split needs at least 3 speakers (one each for train, "
            f"validation and test); the data has {len(speakers)}: {', '.join(speakers) or '-'}")
    sizes = {s: len(by_speaker[s]) for s in speakers}
    labels = {s: {x.label for x in by_speaker[s]} for s in speakers}
    all_labels = set().union(*labels.values())
    total = sum(sizes.values())
    targets = np.array([1.0 - val_fraction - test_fraction, val_fraction, test_fraction]) * total

    best: tuple[tuple[int, float], list[list[str]]] | None = None
    for attempt in range(_SPLIT_ATTEMPTS):
        order = list(speakers)
        np.random.default_rng([seed, attempt]).shuffle(order)
        parts = _pack(order, sizes, targets)
        counts = np.array([sum(sizes[s] for s in part) for part in parts], dtype=float)
        train_labels = set().union(*(labels[s] for s in parts[0]))
        score = (len(all_labels - train_labels), float(np.abs(counts - targets).sum()))
        if best is None or score < best[0]:
            best = (score, parts)
    assert best is not None
    if best[0][0]:
        log.warning("speaker split: no speaker assignment keeps every class in train")
    assignment = {s: i for i, part in enumerate(best[1]) for s in part}
    out: list[list[Sample]] = [[], [], []]
    for sample in samples:
        out[assignment[sample.speaker]].append(sample)
    return Split(*out)


def _pack(order: Iterable[str], sizes: dict[str, int], targets: np.ndarray) -> list[list[str]]:
    """Greedy: each speaker goes to the part furthest below its target; then fill empty parts."""
    parts: list[list[str]] = [[], [], []]
    counts = np.zeros(3)
    for speaker in order:
        k = int(np.argmax(targets - counts))
        parts[k].append(speaker)
        counts[k] += sizes[speaker]
    while any(not part for part in parts):
        empty = next(i for i, part in enumerate(parts) if not part)
        # Take the smallest speaker from the part most above its target that can spare one.
        donors = [i for i, part in enumerate(parts) if len(part) > 1]
        donor = max(donors, key=lambda i: counts[i] - targets[i])
        speaker = min(parts[donor], key=lambda s: (sizes[s], s))
        parts[donor].remove(speaker)
        parts[empty].append(speaker)
        counts[donor] -= sizes[speaker]
        counts[empty] += sizes[speaker]
    return parts


__all__ = [
    "EMOTIONS",
    "KINDS",
    "LABEL_ALIASES",
    "DatasetError",
    "Sample",
    "Split",
    "detect_kind",
    "load_crema_d",
    "load_dataset",
    "load_iemocap",
    "load_manifest",
    "load_ravdess",
    "normalise_label",
    "speaker_split",
]
