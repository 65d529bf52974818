"""A generated benchmark on which fusion must matter: what is said AND how it is said.

Seed 000's sarcasm example made measurable. Each clip is espeak-ng speech over the sample
portrait (the face and the pulse are the same in every clip: the visual and physiological
inputs carry nothing). A class is a combination of the words and the delivery:

| class   | words    | delivery                               |
|---------|----------|----------------------------------------|
| happy   | positive | aroused: high pitch, fast, loud        |
| disgust | positive | subdued: low pitch, slow, quiet (sarcasm: positive words, flat and low) |
| angry   | negative | aroused                                |
| sad     | negative | subdued                                |
| neutral | neutral  | plain: middle pitch, rate and loudness |

(Sarcasm has no label of its own in the emotion head's seven; "disgust", the contempt of
"oh, great", is the nearest.) By construction neither modality alone can tell the classes
apart: the words put happy and disgust together and angry and sad together, the voice puts
happy and angry together and disgust and sad together. With equal classes, text alone
(perfectly heard) and voice alone (perfectly measured) each reach at most 60 % (neutral
right, the other four classes at chance within their pair); both together can reach 100 %.
The words reach a model only through the real speech-to-text path, as live, so the text
ceiling here is lower still (PocketSphinx on espeak-ng: word error rate about 0.2).

Speakers are espeak-ng voices, each with its own pitch offset; `wellmon train`'s
speaker-independent split holds whole speakers out.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wellmon.streamer.synthetic import ClipSpec, make_clip

WORDS = {
    "positive": ("What a wonderful day, I love this.",
                 "This is great news, thank you so much.",
                 "I am delighted, it is a fantastic success."),
    "negative": ("This is terrible, I hate this.",
                 "What an awful mess, I am so upset.",
                 "It is horrible, a complete failure."),
    "neutral": ("The meeting is on Tuesday at three.",
                "Please put the folder on the desk.",
                "The train leaves the station at nine."),
}
"""Short sentences (at most nine words: six seconds at the subdued rate)."""


@dataclass(frozen=True)
class Delivery:
    pitch: int  # espeak-ng -p, before the speaker's offset
    wpm: int
    gain: float


DELIVERY = {"aroused": Delivery(80, 195, 1.0), "subdued": Delivery(15, 110, 0.35),
            "plain": Delivery(50, 150, 0.7)}
CLASSES = {"happy": ("positive", "aroused"), "disgust": ("positive", "subdued"),
           "angry": ("negative", "aroused"), "sad": ("negative", "subdued"),
           "neutral": ("neutral", "plain")}
"""label -> (words, delivery)."""
SPEAKERS = (("en-us", 0), ("en-gb", -8), ("en-gb-scotland", 6), ("en-029", -4),
            ("en-gb-x-rp", 8), ("en-gb-x-gbclan", -6), ("en-us-nyc", 3), ("en-gb-x-gbcwmd", -3))
"""espeak-ng voice and its pitch offset (a speaker's own register)."""
TEXT_CEILING = VOICE_CEILING = 0.6
"""Accuracy of a perfect single modality on equal classes (module doc)."""


def make_crossmodal(out: Path, speakers: int = len(SPEAKERS), sentences: int = 2,
                    seconds: float = 7.0, progress: Callable[[str], None] | None = None
                    ) -> Path:
    """Write the clips and `manifest.csv` (file, label, speaker) into `out`; return the
    manifest. `speakers` voices x `sentences` sentences per word group x 5 classes."""
    if not 1 <= speakers <= len(SPEAKERS):
        raise ValueError(f"speakers: 1 to {len(SPEAKERS)}")
    if not 1 <= sentences <= len(WORDS["neutral"]):
        raise ValueError(f"sentences: 1 to {len(WORDS['neutral'])}")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for s, (voice, offset) in enumerate(SPEAKERS[:speakers]):
        for label, (words, delivery) in CLASSES.items():
            how = DELIVERY[delivery]
            for k, sentence in enumerate(WORDS[words][:sentences]):
                name = f"{voice}_{label}_{k}.mp4"
                make_clip(out / name, ClipSpec(
                    duration_s=seconds, fps=15, width=320, height=240, heart_rate_bpm=72.0,
                    blink_times_s=(2.0,), speech=((0.2, sentence),), speech_voice=voice,
                    speech_pitch=max(0, min(99, how.pitch + offset)), speech_wpm=how.wpm,
                    speech_gain=how.gain, preset="ultrafast", seed=1000 * s + k))
                rows.append({"file": name, "label": label, "speaker": voice})
                if progress:
                    progress(name)
    manifest = out / "manifest.csv"
    with manifest.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "label", "speaker"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest
