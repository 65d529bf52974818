"""Speech-to-text in a process of its own, so that decoding never holds up the windows.

PocketSphinx keeps the GIL while it decodes (about 150 ms of CPU per second of audio, in
bursts when an utterance ends). Inside the node's loop that delayed score messages by up
to 1.4 s (`wellmon bench latency`: p99 784 ms with it, 90 ms without). The worker owns
one recognizer per stream; the node hands it audio and picks up utterances without ever
waiting. The queues between the two are local to this machine and this node (they are
not the wire protocol); a full queue drops audio, counted, rather than slowing the node.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
from typing import Any

import numpy as np

from wellmon.models.perception.asr import (
    RecognizerError,
    Utterance,
    check_vosk_model_dir,
    make_recognizer,
)
from wellmon.streamer.lifecycle import die_with

QUEUE_CHUNKS = 600  # one minute of 100 ms chunks
NICENESS = 5
"""The worker yields the CPU to the node's loop when both want it: on a busy machine a
transcript comes a little later (a window shows an utterance until 4 s after its end) rather
than every score. Measured with four streams on two cores: the worker wanted 40-60 % of a
core, in bursts when several people spoke at once, while the loop needed 90 %."""
STOP_TIMEOUT_S = 3.0


class AsrWorker:
    def __init__(self, engine: str, vosk_model: str | None) -> None:
        if vosk_model and engine in ("auto", "vosk"):
            check_vosk_model_dir(vosk_model)  # a bad path fails here, at start, by name
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked state
        self._inbox: Any = context.Queue(maxsize=QUEUE_CHUNKS)
        self._outbox: Any = context.Queue()
        self.dropped = 0
        self.error: str | None = None
        self._process = context.Process(target=_serve, name="wellmon-asr", daemon=True,
                                        args=(engine, vosk_model, self._inbox, self._outbox,
                                              os.getpid()))
        self._process.start()

    def insert(self, stream: str, t_ns: int, samples: np.ndarray) -> None:
        try:
            self._inbox.put_nowait((stream, t_ns, samples.astype(np.int16).tobytes()))
        except queue.Full:
            self.dropped += 1

    def queued(self) -> int:
        """Audio chunks waiting for the worker: growing means it is falling behind."""
        try:
            return self._inbox.qsize()
        except NotImplementedError:  # macOS has no sem_getvalue
            return 0

    def figures(self) -> dict[str, Any]:
        """What the node reports of the worker (stats and metrics): chunks it could not take,
        chunks waiting, and its error if it failed."""
        return {"dropped_chunks": self.dropped, "queued_chunks": self.queued(),
                "error": self.error}

    def results(self) -> list[tuple[str, Utterance]]:
        """Utterances (partial and final) that are ready, without waiting."""
        out = []
        while True:
            try:
                stream, item = self._outbox.get_nowait()
            except queue.Empty:
                return out
            if isinstance(item, str):
                self.error = item
            else:
                out.append((stream, item))

    def forget(self, stream: str) -> None:
        try:
            self._inbox.put_nowait((stream, None, None))
        except queue.Full:
            pass

    def close(self) -> None:
        try:
            self._inbox.put_nowait(None)
        except queue.Full:
            pass
        self._process.join(STOP_TIMEOUT_S)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def _serve(engine: str, vosk_model: str | None, inbox: Any, outbox: Any,
           parent_pid: int) -> None:
    """The worker's loop: one recognizer per stream, created on the stream's first audio."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the node decides when this stops
    die_with(parent_pid)
    os.nice(NICENESS)
    recognizers: dict[str, Any] = {}
    while (item := inbox.get()) is not None:
        stream, t_ns, data = item
        if t_ns is None:
            recognizers.pop(stream, None)
            continue
        try:
            if stream not in recognizers:
                recognizers[stream] = make_recognizer(engine, vosk_model)
            recognizer = recognizers[stream]
            recognizer.insert_audio_chunk(t_ns, np.frombuffer(data, np.int16))
            for utterance in recognizer.process_iter():
                outbox.put((stream, utterance))
        except RecognizerError as exc:
            outbox.put((stream, f"speech-to-text failed: {exc}"))
            recognizers.pop(stream, None)
