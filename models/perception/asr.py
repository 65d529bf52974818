"""Speech-to-text behind one streaming interface, for the transcript and its sentiment.

`Recognizer` is what the node sees: `insert_audio_chunk(t_ns, samples)` with the
capture time of each chunk's first sample, then `process_iter()`, which decodes
what has arrived and returns the new results (and `flush()` at the end of a
stream, which finishes the utterance still open). A result is an `Utterance`: partial
ones (`final=False`) while someone speaks, each replacing the one before, then one
final one when the speech segment ends. Times are capture times in ns, mapped
from the recognizer's sample count through the chunks' own time stamps, so they
stay right across dropped or late chunks.

Backends:

* `PocketsphinxRecognizer`: CMU PocketSphinx 5 with the en-us acoustic model,
  language model and CMU dictionary that the `pocketsphinx` wheel ships, so it
  works offline out of the box. Its `Endpointer` (WebRTC-style voice activity
  detection over 30 ms frames, a 0.3 s decision window) cuts the stream into
  speech segments; each segment is one utterance of the `Decoder`, with word
  segments (frame times, posterior probability as confidence) when it ends. Its
  accuracy on natural speech is low (it is a 2015-era continuous-density model);
  prefer Vosk when you can.
* `VoskRecognizer(model_dir)`: Kaldi through Vosk, with word times and
  confidences (`SetWords`) and partial results. Vosk models are not on PyPI for
  English: download one from https://alphacephei.com/vosk/models (for example
  `vosk-model-small-en-us-0.15`, 40 MB, Apache-2.0), unpack it, and set
  `asr.vosk_model` (or `WELLMON_ASR_VOSK_MODEL`) to the unpacked directory, the one
  that contains `am/` and `conf/`. `vosk.Model(lang=...)` would try to download a
  model at run time, which fails offline, so only a directory is accepted.

`make_recognizer(engine, vosk_model)` picks one: "auto" is Vosk when a model
directory is configured and PocketSphinx otherwise, "off" is no recognizer.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from wellmon.streamer.wire.protocol import NS

SAMPLE_RATE = 16_000
ENGINES = ("auto", "vosk", "pocketsphinx", "off")
CLOCK_KEEP_S = 600.0      # how far back sample counts can still be mapped to capture time
MAX_UTTERANCE_S = 20.0    # a longer stretch of speech is finalised in pieces
PARTIAL_EVERY_S = 0.3     # at most this often a new partial result per recognizer

Word = tuple[str, int, int, float | None]  # word, t_start_ns, t_end_ns, confidence


class RecognizerError(RuntimeError):
    """A recognizer cannot be set up (missing model, bad configuration)."""


@dataclass(frozen=True)
class Utterance:
    """One recognised stretch of speech; a partial one is replaced by the next result."""

    text: str
    final: bool
    t_start_ns: int
    t_end_ns: int
    words: list[Word] = field(default_factory=list)


class Recognizer(Protocol):
    def insert_audio_chunk(self, t_ns: int, samples: np.ndarray) -> None:
        """Queue 16 kHz mono samples (int16, or float in [-1, 1]); t_ns is the first one's time."""

    def process_iter(self) -> list[Utterance]:
        """Decode what is queued; return the new partial and final results in order."""

    def flush(self) -> list[Utterance]:
        """End of the stream (a file ends, a session stops): finish the open utterance."""


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Mono int16 from int16 or float samples."""
    x = np.asarray(samples).reshape(-1)
    if x.dtype == np.int16:
        return x
    if np.issubdtype(x.dtype, np.integer):
        return np.clip(x, -32768, 32767).astype(np.int16)
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)


class SampleClock:
    """Maps a recognizer's sample count to capture time, chunk by chunk.

    Each chunk's first sample is anchored to its own time stamp, so gaps and
    jitter between chunks do not accumulate into the word times.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        self.rate = sample_rate
        self.count = 0
        self._starts: list[int] = []
        self._times: list[int] = []

    def add(self, t_ns: int, n_samples: int) -> None:
        self._starts.append(self.count)
        self._times.append(int(t_ns))
        self.count += n_samples
        keep = int(CLOCK_KEEP_S * self.rate)
        if len(self._starts) > 64 and self._starts[0] < self.count - keep:
            cut = bisect.bisect_left(self._starts, self.count - keep)
            del self._starts[:cut], self._times[:cut]

    def ns(self, sample: float) -> int:
        """Capture time of a (possibly fractional) sample index."""
        if not self._starts:
            return 0
        i = max(0, bisect.bisect_right(self._starts, sample) - 1)
        return self._times[i] + int(round((sample - self._starts[i]) * NS / self.rate))

    def ns_at_seconds(self, seconds: float) -> int:
        return self.ns(seconds * self.rate)


# ---------------------------------------------------------------------- PocketSphinx

_FILLER = re.compile(r"^(<.*>|\[.*\]|\+\+.*\+\+)$")
_ALTERNATE = re.compile(r"\(\d+\)$")


class PocketsphinxRecognizer:
    """PocketSphinx 5 with its shipped en-us model, segmented by its Endpointer."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, *, vad_mode: int = 0,
                 window_s: float = 0.3, ratio: float = 0.9,
                 decoder_options: dict[str, Any] | None = None) -> None:
        try:
            from pocketsphinx import Decoder, Endpointer
        except ImportError as e:
            raise RecognizerError("pocketsphinx is not installed (pip install pocketsphinx)"
                                  ) from e
        # Decoder defaults are the wheel's en-us model, LM and dictionary. The
        # second "flat" pass costs ~10 % of the time for no measured gain here. Capping
        # the active HMMs a frame (maxhmmpf) saved 20-30 % of the CPU but raised the
        # mean word error rate of tests/unit/test_asr_sentiment.py's sentences from 0.29 to
        # 0.35 (3000) and 0.48 (2000): not worth it.
        options: dict[str, Any] = {"samprate": sample_rate, "loglevel": "FATAL",
                                   "fwdflat": False}
        options.update(decoder_options or {})
        self._new_endpointer = lambda: Endpointer(window=window_s, ratio=ratio,
                                                  vad_mode=vad_mode, sample_rate=sample_rate)
        try:
            self._decoder = Decoder(**options)
            self._endpointer = self._new_endpointer()
        except (RuntimeError, ValueError) as e:
            raise RecognizerError(f"pocketsphinx could not start: {e}") from e
        self.rate = sample_rate
        self._frame_rate = int(self._decoder.config["frate"])
        self._frame_bytes = self._endpointer.frame_bytes
        self._clock = SampleClock(sample_rate)
        self._pending = bytearray()
        self._fed = 0                       # samples given to the endpointer(s)
        self._ep_origin = 0                 # sample index where the current endpointer began
        self._utt_start: int | None = None  # sample index where the decoder's utterance began
        self._utt_samples = 0
        self._last_partial = ""
        self._last_partial_at = 0
        # The first utterance is decoded with the model's initial cepstral mean, not
        # this channel's; it is kept and decoded again once the mean has adapted.
        self._first_audio: list[bytes] | None = []

    def insert_audio_chunk(self, t_ns: int, samples: np.ndarray) -> None:
        x = to_int16(samples)
        self._clock.add(t_ns, x.size)
        self._pending += x.tobytes()

    def process_iter(self) -> list[Utterance]:
        out: list[Utterance] = []
        fb = self._frame_bytes
        n = len(self._pending) // fb
        for i in range(n):
            frame = bytes(self._pending[i * fb:(i + 1) * fb])
            was_in_speech = self._endpointer.in_speech
            speech = self._endpointer.process(frame)
            self._fed += fb // 2
            if speech is None:
                continue
            if not was_in_speech or self._utt_start is None:
                self._start(self._ep_origin
                            + int(round(self._endpointer.speech_start * self.rate)))
            self._decoder.process_raw(speech, False, False)
            if self._first_audio is not None:
                self._first_audio.append(speech)
            self._utt_samples += len(speech) // 2
            if not self._endpointer.in_speech:
                out.extend(self._finish())
            elif self._utt_samples >= MAX_UTTERANCE_S * self.rate:
                out.extend(self._finish())
                self._start(self._fed)
        del self._pending[:n * fb]
        if self._utt_start is not None and self._fed - self._last_partial_at >= (
                PARTIAL_EVERY_S * self.rate):
            self._last_partial_at = self._fed
            partial = self._result(final=False)
            if partial is not None and partial.text != self._last_partial:
                self._last_partial = partial.text
                out.append(partial)
        return out

    def flush(self) -> list[Utterance]:
        """End of the stream: decode what is queued and finish the open utterance."""
        out = self.process_iter()
        rest = bytes(self._pending)
        self._pending.clear()
        if self._endpointer.in_speech:
            # end_stream() needs at least one sample: pad the remainder with silence.
            speech = self._endpointer.end_stream(rest or bytes(2))
            if speech is not None and self._utt_start is not None:
                self._decoder.process_raw(speech, False, False)
                self._utt_samples += len(speech) // 2
        self._fed += len(rest) // 2
        if self._utt_start is not None:
            out.extend(self._finish())
        self._endpointer = self._new_endpointer()
        self._ep_origin = self._fed
        return out

    def _start(self, start_sample: int) -> None:
        self._decoder.start_utt()
        self._utt_start = start_sample
        self._utt_samples = 0
        self._last_partial = ""
        self._last_partial_at = self._fed

    def _finish(self) -> list[Utterance]:
        self._decoder.end_utt()
        if self._first_audio is not None:
            audio, self._first_audio = b"".join(self._first_audio), None
            self._decoder.start_utt()
            self._decoder.process_raw(audio, False, False)
            self._decoder.end_utt()
        result = self._result(final=True)
        self._utt_start = None
        return [result] if result is not None and result.text else []

    def _result(self, final: bool) -> Utterance | None:
        hyp = self._decoder.hyp()
        if hyp is None or self._utt_start is None:
            return None
        start = self._utt_start
        per_frame = self.rate / self._frame_rate
        words: list[Word] = []
        for seg in self._decoder.seg():
            word = _ALTERNATE.sub("", seg.word)
            if _FILLER.match(word):
                continue
            conf = min(1.0, max(0.0, float(seg.prob))) if final else None
            words.append((word, self._clock.ns(start + seg.start_frame * per_frame),
                          self._clock.ns(start + (seg.end_frame + 1) * per_frame), conf))
        text = " ".join(w[0] for w in words) if words else hyp.hypstr.strip()
        end = start + self._utt_samples
        return Utterance(text, final, self._clock.ns(start), self._clock.ns(end), words)


# ---------------------------------------------------------------------- Vosk

def check_vosk_model_dir(model_dir: str | Path) -> Path:
    """The model directory as a Path, or a RecognizerError that names it and says why."""
    path = Path(model_dir).expanduser()
    hint = ("set asr.vosk_model to an unpacked model from https://alphacephei.com/vosk/models, "
            "e.g. vosk-model-small-en-us-0.15 (no English Vosk model can be installed from "
            "PyPI)")
    if not path.exists():
        raise RecognizerError(f"Vosk model directory {path} does not exist: {hint}")
    if not path.is_dir():
        raise RecognizerError(f"Vosk model path {path} is not a directory: {hint}")
    if not ((path / "am" / "final.mdl").is_file() or (path / "final.mdl").is_file()):
        raise RecognizerError(f"{path} is not a Vosk model directory (no am/final.mdl): {hint}")
    return path


class VoskRecognizer:
    """Kaldi through Vosk, from a model directory (see the module docstring)."""

    def __init__(self, model_dir: str | Path, sample_rate: int = SAMPLE_RATE) -> None:
        path = check_vosk_model_dir(model_dir)
        try:
            import vosk
        except ImportError as e:
            raise RecognizerError("vosk is not installed (pip install vosk)") from e
        vosk.SetLogLevel(-1)
        try:
            model = vosk.Model(str(path))
        except Exception as e:  # vosk raises a bare Exception on a broken model
            raise RecognizerError(f"Vosk could not load the model in {path}: {e}") from e
        self._rec = vosk.KaldiRecognizer(model, sample_rate)
        self._rec.SetWords(True)
        if hasattr(self._rec, "SetPartialWords"):
            self._rec.SetPartialWords(True)
        self.rate = sample_rate
        self._clock = SampleClock(sample_rate)
        self._chunks: list[bytes] = []
        self._last_partial = ""

    def insert_audio_chunk(self, t_ns: int, samples: np.ndarray) -> None:
        x = to_int16(samples)
        self._clock.add(t_ns, x.size)
        self._chunks.append(x.tobytes())

    def process_iter(self) -> list[Utterance]:
        out: list[Utterance] = []
        chunks, self._chunks = self._chunks, []
        for data in chunks:
            if self._rec.AcceptWaveform(data):
                final = self._utterance(json.loads(self._rec.Result()), final=True)
                self._last_partial = ""
                if final is not None:
                    out.append(final)
        if chunks:
            partial = self._utterance(json.loads(self._rec.PartialResult()), final=False)
            if partial is not None and partial.text != self._last_partial:
                self._last_partial = partial.text
                out.append(partial)
        return out

    def flush(self) -> list[Utterance]:
        """End of the stream: decode what is queued and finish the open utterance."""
        out = [u for u in self.process_iter() if u.final]
        final = self._utterance(json.loads(self._rec.FinalResult()), final=True)
        self._last_partial = ""
        return out + ([final] if final is not None else [])

    def _utterance(self, result: dict[str, Any], final: bool) -> Utterance | None:
        text = str(result.get("text" if final else "partial", "")).strip()
        if not text:
            return None
        words: list[Word] = [
            (str(w["word"]), self._clock.ns_at_seconds(float(w["start"])),
             self._clock.ns_at_seconds(float(w["end"])),
             float(w["conf"]) if final and "conf" in w else None)
            for w in result.get("result" if final else "partial_result", [])]
        if words:
            return Utterance(text, final, words[0][1], words[-1][2], words)
        now = self._clock.ns(self._clock.count)
        return Utterance(text, final, now, now, [])


def make_recognizer(engine: str, vosk_model: str | None) -> Recognizer | None:
    """The recognizer the configuration asks for, or None when speech-to-text is off."""
    if engine not in ENGINES:
        raise RecognizerError(f"unknown speech-to-text engine {engine!r}: expected one of "
                              + ", ".join(ENGINES))
    if engine == "off":
        return None
    if engine == "vosk" and not vosk_model:
        raise RecognizerError("asr.engine is vosk but asr.vosk_model is not set: point it at an "
                              "unpacked model from https://alphacephei.com/vosk/models")
    if engine == "vosk" or (engine == "auto" and vosk_model):
        assert vosk_model is not None
        return VoskRecognizer(vosk_model)
    return PocketsphinxRecognizer()
