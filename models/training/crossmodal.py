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
speaker-independent split holds whole speakers out. Each speaker says sentences of their
own (within a speaker, the two classes of a kind of words share each sentence), so the
held-out speakers' sentences are never heard in training: a model cannot recognise a test
sentence by its rhythm in the voice or its transcript, and the words reach it only through
what carries over to new sentences (their sentiment). With sentences shared by all
speakers, the audio stream alone reached 83 % (docs/comparison-crossmodal.md).

The ceilings are those of the pure modalities. The product's text stream also carries the
rate of the words, which is part of the delivery, so "text only" can exceed 60 %.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wellmon.streamer.synthetic import ClipSpec, make_clip

WORDS = {
    "positive": (
        "What a wonderful day, I love this.",
        "This is great news, thank you so much.",
        "I am delighted, it is a fantastic success.",
        "You did a brilliant job, I am thrilled.",
        "What a lovely surprise, this makes me happy.",
        "The results are excellent, we did it.",
        "I really enjoy this, it is perfect.",
        "Such a beautiful morning, everything feels right.",
        "We won the prize, this is amazing.",
        "Your gift is gorgeous, I adore it.",
        "This is the best meal I have had.",
        "I am so proud of you, well done.",
        "The holiday was marvellous, we had fun.",
        "Great work everyone, the launch went perfectly.",
        "I feel fantastic today, life is good.",
        "What a superb idea, I love it.",
        "The concert was wonderful, truly a delight.",
        "Thank you, this is exactly what I wanted.",
        "Our team is terrific, I am so glad.",
        "This garden is beautiful, it makes me smile.",
        "Good news at last, we got the house.",
        "I am overjoyed, the baby is healthy.",
        "The view is magnificent, I love being here.",
        "Everything worked out, what a happy ending."),
    "negative": (
        "This is terrible, I hate this.",
        "What an awful mess, I am so upset.",
        "It is horrible, a complete failure.",
        "The results are dreadful, we lost everything.",
        "I am furious, this is totally unacceptable.",
        "What a disaster, nothing works at all.",
        "This food is disgusting, I feel sick.",
        "You ruined it, I am so angry.",
        "The trip was miserable, a painful waste.",
        "I hate this job, it is awful.",
        "The news is bad, we failed again.",
        "This is the worst day of my life.",
        "Everything is broken, I am so frustrated.",
        "What a horrible mistake, it hurts badly.",
        "The service was terrible, I am disappointed.",
        "I feel awful, this is so unfair.",
        "They lied to us, it is shameful.",
        "The plan collapsed, what a painful loss.",
        "This noise is unbearable, I hate it.",
        "Our team was pathetic, a total embarrassment.",
        "I am sick of this stupid problem.",
        "The house is ruined, it is heartbreaking.",
        "What a nasty insult, I am offended.",
        "Nothing went right, what a miserable failure."),
    "neutral": (
        "The meeting is on Tuesday at three.",
        "Put the folder on the desk by the door.",
        "The train leaves the station at nine.",
        "The report has twelve pages and two tables.",
        "Turn left at the second street.",
        "The shop opens at eight in the morning.",
        "The box is in the hall cupboard.",
        "We need four chairs for the room.",
        "The bus goes past the post office.",
        "The file is in the project folder.",
        "Lunch is served in the main hall.",
        "The parking lot is behind the building.",
        "The printer is on the second floor.",
        "Bring the form to the front desk.",
        "The lecture starts after the short break.",
        "The keys are in the kitchen drawer.",
        "The road is closed until next week.",
        "The library closes at six on Fridays.",
        "Write your name on the first page.",
        "The delivery arrives on Monday afternoon.",
        "The window faces the car park.",
        "The next train is in ten minutes.",
        "Our office is on the third floor.",
        "Send the invoice before the end of the month."),
}
"""Short sentences (at most nine words: six seconds at the subdued rate), VADER compound
above 0.3, below -0.3 and 0 for the three kinds; `SENTENCES_PER_SPEAKER` of each kind for
each voice of `SPEAKERS`, in order, so that no two speakers say the same sentence."""
SENTENCES_PER_SPEAKER = 3


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
    if not 1 <= sentences <= SENTENCES_PER_SPEAKER:
        raise ValueError(f"sentences: 1 to {SENTENCES_PER_SPEAKER}")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for s, (voice, offset) in enumerate(SPEAKERS[:speakers]):
        for label, (words, delivery) in CLASSES.items():
            how = DELIVERY[delivery]
            own = WORDS[words][s * SENTENCES_PER_SPEAKER:][:sentences]
            for k, sentence in enumerate(own):
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
