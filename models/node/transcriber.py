"""Speech-to-text of a recording in a process of its own, running ahead of the video.

Replay spends most of its time on the video; decoding speech inline made it wait for
PocketSphinx too (about 0.15 s of CPU per second of audio, in bursts). The transcriber
reads the file's audio itself (the same reader, chunk size and timestamps as replay's) and
decodes it on the other core. For every chunk it reports what the recognizer returned
right after that chunk, so replay hands each stream the utterances at the same point as
decoding inline would (`heard_after(seq)`): the output is the same, only sooner.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
from typing import Any

from wellmon.config import AsrConfig
from wellmon.models.errors import ModelError
from wellmon.models.perception.asr import RecognizerError, Utterance, make_recognizer
from wellmon.streamer import sources
from wellmon.streamer.lifecycle import die_with

POLL_S = 1.0
BACKLOG_CHUNKS = 3000
"""How far (in chunks: five minutes of 100 ms) the transcriber may run ahead of replay:
memory stays bounded on a long recording."""


class Transcriber:
    """The utterances of one file's audio, decoded in a worker process."""

    def __init__(self, path: str, asr: AsrConfig, chunk_ms: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._results: Any = context.Queue(maxsize=BACKLOG_CHUNKS)
        self._process = context.Process(
            target=_transcribe, name="wellmon-transcribe", daemon=True,
            args=(path, asr.engine, asr.vosk_model, chunk_ms, self._results, os.getpid()))
        self._process.start()
        self._next = 0

    def heard_after(self, seq: int) -> list[Utterance]:
        """What the recognizer returned after audio chunks up to `seq` (in order; each chunk
        is asked for once, the next seq after the last one asked), waiting if the worker has
        not got that far."""
        out: list[Utterance] = []
        while self._next <= seq:
            try:
                item = self._results.get(timeout=POLL_S)
            except queue.Empty:
                if not self._process.is_alive():
                    raise ModelError("speech-to-text worker stopped unexpectedly "
                                     f"(exit status {self._process.exitcode})") from None
                continue
            if isinstance(item, str):
                raise ModelError(f"speech-to-text failed: {item}")
            got, utterances = item
            if got != self._next:
                raise ModelError(f"speech-to-text worker out of step: chunk {got}, "
                                 f"expected {self._next}")
            out += utterances
            self._next += 1
        return out

    def close(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join()


def _transcribe(path: str, engine: str, vosk_model: str | None, chunk_ms: int,
                results: Any, parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # replay decides when this stops
    die_with(parent_pid)
    try:
        recognizer = make_recognizer(engine, vosk_model)
        plan = sources.plan(path)
        if recognizer is None or plan.audio is None:
            return
        blocks = sources.audio_blocks(plan.audio, chunk_ms, loop=False,
                                      pacer=sources.Pacer(epoch_ns=0, realtime=False))
        for seq, (t_ns, samples) in enumerate(blocks):
            recognizer.insert_audio_chunk(t_ns, samples)
            results.put((seq, recognizer.process_iter()))
    except (RecognizerError, sources.SourceError) as exc:
        results.put(str(exc))
