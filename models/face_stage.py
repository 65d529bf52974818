"""The face models in a thread of their own, one batch at a time, beside the node's loop.

The face models are half of what the node's loop does (py-spy at four streams: the loop
98 % busy, 45 % of it inside onnxruntime). onnxruntime releases the GIL while a model
runs, so while they work on one batch the loop can measure the previous batch's frames
and cut and fuse its windows. The loop hands over a batch only when the thread is idle:
frames that cannot be taken yet wait in ZeroMQ's queue, where the windower's lateness rule
sheds them if they wait too long, instead of piling up in memory here.
"""

from __future__ import annotations

import itertools
import queue
import threading
from dataclasses import dataclass

import zmq

from models.face import Face
from models.perception import Perception
from streamer.protocol import VideoFrame

_names = itertools.count()
STOP_TIMEOUT_S = 5.0


@dataclass
class FaceBatch:
    """Frames that arrived at `heard_ns` and what the face models saw in each."""

    frames: list[VideoFrame]
    heard_ns: int
    faces: list[Face | None] | None = None
    error: BaseException | None = None


class FaceStage:
    """`submit()` a batch when not `busy`; `take()` it back once `ready` is readable.

    `ready` is a ZeroMQ socket so that the loop can wait for a finished batch and for new
    messages in one poll.
    """

    def __init__(self, perception: Perception, context: zmq.Context) -> None:
        self._perception = perception
        self._todo: queue.Queue[FaceBatch | None] = queue.Queue()
        self._batch: FaceBatch | None = None  # submitted and not yet taken back
        address = f"inproc://wellmon-face-stage-{next(_names)}"
        self.ready = context.socket(zmq.PAIR)
        self.ready.bind(address)
        self._done = context.socket(zmq.PAIR)  # used by the thread only
        self._done.connect(address)
        self._thread = threading.Thread(target=self._run, name="face-models", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self._batch is not None

    def submit(self, frames: list[VideoFrame], heard_ns: int) -> None:
        if self._batch is not None:
            raise RuntimeError("the face stage takes one batch at a time")
        self._batch = FaceBatch(frames, heard_ns)
        self._todo.put(self._batch)

    def take(self) -> FaceBatch | None:
        """The submitted batch with its faces once the models are done, else None. An error
        in the models is raised here, in the loop, as if they had run in it."""
        try:
            self.ready.recv(zmq.NOBLOCK)
        except zmq.Again:
            return None
        batch, self._batch = self._batch, None
        if batch is None:
            return None
        if batch.error is not None:
            raise batch.error
        return batch

    def close(self) -> None:
        self._todo.put(None)
        self._thread.join(timeout=STOP_TIMEOUT_S)
        if not self._thread.is_alive():  # else a model is stuck; the thread dies with us
            self._done.close()
        self.ready.close()

    def _run(self) -> None:
        while (batch := self._todo.get()) is not None:
            try:
                batch.faces = self._perception.find_faces(batch.frames)
            except Exception as exc:  # handed to the loop, which fails as it did inline
                batch.error = exc
            self._done.send(b"")
