"""Where frames and samples come from: webcams, microphones, files and URLs.

A source is named by a short spec: `webcam:N`, `mic` or `mic:NAME`, `sample`
(the bundled clip), any path or URL that PyAV opens, or two of these joined by
`+` (e.g. `webcam:0+mic`) to take video from one and audio from the other.

Readers yield `(t_ns, array)`: the capture time in ns since the epoch and
BGR uint8 frames (already scaled and subsampled to the analysis size and rate)
or 16 kHz mono int16 sample blocks. File sources are paced at real time
unless `fast`: a frame with presentation time `pts` is released at
`epoch + pts`, an audio block when its last sample is due, as a live device
would deliver it.
"""

from __future__ import annotations

import queue
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

AUDIO_RATE = 16_000
SAMPLE_CLIP = Path(__file__).parent / "sample" / "sample.mp4"
LIVE_URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "udp://", "srt://", "tcp://")
OPEN_TIMEOUT_S = 10.0


class SourceError(Exception):
    """A source cannot be opened; the message says which one and why."""


@dataclass(frozen=True)
class Source:
    kind: str  # webcam | mic | file | url
    target: str  # device index, device name, path or URL
    live: bool  # timestamps from the clock on arrival, no pacing

    def describe(self) -> str:
        return {"webcam": f"webcam {self.target}", "mic": f"microphone {self.target or ''}"}.get(
            self.kind, self.target).strip()


@dataclass(frozen=True)
class SourcePlan:
    """Which source feeds each modality of one stream."""

    stream: str
    video: Source | None
    audio: Source | None


def parse_one(spec: str) -> Source:
    spec = spec.strip()
    if spec == "sample":
        return Source("file", str(SAMPLE_CLIP), live=False)
    if spec.startswith("webcam"):
        index = spec.partition(":")[2] or "0"
        if not index.isdigit():
            raise SourceError(f"webcam source must be webcam:N with N a number, got {spec!r}")
        return Source("webcam", index, live=True)
    if spec == "mic" or spec.startswith("mic:"):
        return Source("mic", spec.partition(":")[2], live=True)
    if "://" in spec:
        return Source("url", spec, live=spec.startswith(LIVE_URL_SCHEMES))
    return Source("file", spec, live=False)


def stream_id_for(spec: str) -> str:
    """A stream id from a source spec: `sample`, `webcam0`, `mic`, or the file's stem."""
    first = spec.split("+")[0].strip()
    if first == "sample" or first.startswith(("webcam", "mic")):
        base = first.replace(":", "")
    elif "://" in first:
        base = first.split("://", 1)[1]
    else:
        base = Path(first).stem
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", base).strip("-")[:64]
    return cleaned or "stream"


def plan(spec: str, stream: str | None = None) -> SourcePlan:
    """Open nothing yet: decide which source gives video and which gives audio."""
    parts = [parse_one(p) for p in spec.split("+") if p.strip()]
    if not parts or len(parts) > 2:
        raise SourceError(f"source must be one source or two joined by '+', got {spec!r}")
    video = audio = None
    for src in parts:
        if src.kind == "webcam" or (src.kind in ("file", "url") and video is None
                                    and _has_stream(src, "video")):
            video = video or src
        if src.kind == "mic" or (src.kind in ("file", "url") and audio is None
                                 and _has_stream(src, "audio")):
            audio = audio or src
    if video is None and audio is None:
        raise SourceError(f"source {spec!r} has neither video nor audio")
    return SourcePlan(stream or stream_id_for(spec), video, audio)


def _open_container(src: Source):
    import av

    if src.kind == "file":
        path = Path(src.target)
        if not path.exists():
            raise SourceError(f"source file not found: {path}")
        if not path.is_file():
            raise SourceError(f"source is not a file: {path}")
    try:
        return av.open(src.target, timeout=OPEN_TIMEOUT_S)
    except (av.FFmpegError, OSError) as exc:
        raise SourceError(f"cannot open source {src.target}: {exc}") from None


def _has_stream(src: Source, kind: str) -> bool:
    with _open_container(src) as container:
        return bool(getattr(container.streams, kind))


class Pacer:
    """Maps a source's presentation time to capture time, sleeping to hold real time."""

    def __init__(self, epoch_ns: int, realtime: bool) -> None:
        self.epoch_ns = epoch_ns
        self.realtime = realtime

    def release(self, pts_s: float) -> int:
        """Wait until `pts_s` is due (when paced); return its capture time in ns."""
        t_ns = self.epoch_ns + int(round(pts_s * 1e9))
        if self.realtime:
            delay = (t_ns - time.time_ns()) / 1e9
            if delay > 0:
                time.sleep(delay)
        return t_ns


def fit_size(width: int, height: int, max_w: int, max_h: int) -> tuple[int, int]:
    """Scale down (never up) to fit, keeping the aspect ratio and even dimensions."""
    scale = min(1.0, max_w / width, max_h / height)
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


class FrameSubsampler:
    """Keeps frames at most at `fps`, by timestamp, so variable-rate input stays even."""

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self.next_t: float | None = None

    def keep(self, t_s: float) -> bool:
        if self.next_t is not None and t_s < self.next_t - 0.25 * self.period:
            return False
        self.next_t = max((self.next_t or t_s) + self.period, t_s + 0.5 * self.period)
        return True


def video_frames(src: Source, fps: float, max_w: int, max_h: int, loop: bool,
                 pacer: Pacer) -> Iterator[tuple[int, np.ndarray]]:
    if src.kind == "webcam":
        yield from _webcam_frames(int(src.target), fps, max_w, max_h)
        return
    container = _open_container(src)
    subsample = FrameSubsampler(fps)
    offset = 0.0
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        size = fit_size(stream.codec_context.width, stream.codec_context.height, max_w, max_h)
        start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
        duration = _duration(container)
        period = 1.0 / float(stream.average_rate or fps)
        while True:
            last: float | None = None
            for frame in container.decode(stream):
                if frame.pts is not None:
                    last = float(frame.pts * frame.time_base) - start
                else:  # some streams omit timestamps: assume the nominal frame rate
                    last = 0.0 if last is None else last + period
                pts = offset + last
                if not subsample.keep(pts):
                    continue
                image = frame.to_ndarray(format="bgr24", width=size[0], height=size[1])
                t_ns = time.time_ns() if src.live else pacer.release(pts)
                yield t_ns, image
            if not loop or src.live or duration is None:
                return
            offset += duration
            container.seek(0)


def _duration(container) -> float | None:
    return container.duration / 1e6 if container.duration else None


def audio_blocks(src: Source, chunk_ms: int, loop: bool,
                 pacer: Pacer) -> Iterator[tuple[int, np.ndarray]]:
    chunk = AUDIO_RATE * chunk_ms // 1000
    if src.kind == "mic":
        yield from _mic_blocks(src.target, chunk)
        return
    import av

    container = _open_container(src)
    offset = 0.0
    with container:
        stream = container.streams.audio[0]
        duration = _duration(container)
        while True:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)
            pending: list[np.ndarray] = []
            pending_len = 0
            sent = 0
            base: float | None = None
            frames = (f for packet_frame in container.decode(stream)
                      for f in resampler.resample(packet_frame))
            for frame in _chain(frames, resampler.resample(None)):
                if base is None:
                    base = float(frame.pts * frame.time_base) if frame.pts is not None else 0.0
                samples = frame.to_ndarray().reshape(-1)
                pending.append(samples)
                pending_len += len(samples)
                while pending_len >= chunk:
                    block = np.concatenate(pending)
                    pending, pending_len = [block[chunk:]], pending_len - chunk
                    yield _release_block(src, pacer, offset + base + sent / AUDIO_RATE,
                                         block[:chunk])
                    sent += chunk
            if pending_len:
                yield _release_block(src, pacer, offset + (base or 0.0) + sent / AUDIO_RATE,
                                     np.concatenate(pending))
            if not loop or src.live or duration is None:
                return
            offset += duration
            container.seek(0)


def _chain(*iterables):
    for it in iterables:
        yield from it


def _release_block(src: Source, pacer: Pacer, pts: float,
                   block: np.ndarray) -> tuple[int, np.ndarray]:
    if src.live:
        return time.time_ns() - len(block) * 1_000_000_000 // AUDIO_RATE, block
    pacer.release(pts + len(block) / AUDIO_RATE)
    return pacer.epoch_ns + int(round(pts * 1e9)), block


def _webcam_frames(index: int, fps: float, max_w: int,
                   max_h: int) -> Iterator[tuple[int, np.ndarray]]:
    import cv2

    device = Path(f"/dev/video{index}")
    if not device.exists():
        found = sorted(str(p) for p in Path("/dev").glob("video*"))
        raise SourceError(f"no webcam: {device} does not exist "
                          f"({'found ' + ', '.join(found) if found else 'no video devices'})")
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise SourceError(f"no webcam: cannot open {device}")
    subsample = FrameSubsampler(fps)
    try:
        while True:
            ok, image = capture.read()
            t_ns = time.time_ns()
            if not ok:
                raise SourceError(f"webcam {device} stopped delivering frames")
            if not subsample.keep(t_ns / 1e9):
                continue
            size = fit_size(image.shape[1], image.shape[0], max_w, max_h)
            if size != (image.shape[1], image.shape[0]):
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            yield t_ns, image
    finally:
        capture.release()


def _import_sounddevice():
    try:
        import sounddevice
    except OSError as exc:
        raise SourceError(f"microphone needs PortAudio ({exc}); on Debian: "
                          "apt-get install libportaudio2") from None
    return sounddevice


def _find_input_device(sd, name: str) -> int:
    inputs = [(i, d) for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0]
    if not inputs:
        raise SourceError("no microphone: sounddevice lists no input devices")
    if not name:
        default = sd.default.device[0]
        return default if default is not None and default >= 0 else inputs[0][0]
    for i, d in inputs:
        if name.lower() in d["name"].lower():
            return i
    names = ", ".join(d["name"] for _, d in inputs)
    raise SourceError(f"no microphone named {name!r}; input devices: {names}")


def _mic_blocks(name: str, chunk: int) -> Iterator[tuple[int, np.ndarray]]:
    import av

    sd = _import_sounddevice()
    device = _find_input_device(sd, name)
    rate = int(sd.query_devices(device)["default_samplerate"])
    blocks: queue.Queue[tuple[int, np.ndarray]] = queue.Queue(maxsize=100)

    def on_block(data, frames, _time, _status) -> None:
        t_ns = time.time_ns() - frames * 1_000_000_000 // rate
        try:
            blocks.put_nowait((t_ns, data[:, 0].copy()))
        except queue.Full:
            pass

    resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)
    pending = np.zeros(0, np.int16)
    t_pending: int | None = None
    with sd.InputStream(device=device, channels=1, samplerate=rate, dtype="int16",
                        blocksize=rate * chunk // AUDIO_RATE, callback=on_block):
        while True:
            t_ns, data = blocks.get()
            frame = av.AudioFrame.from_ndarray(data.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = rate
            out = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
            if t_pending is None or not len(pending):
                t_pending = t_ns
            pending = np.concatenate([pending, *out])
            while len(pending) >= chunk:
                yield t_pending, pending[:chunk]
                pending = pending[chunk:]
                t_pending += chunk * 1_000_000_000 // AUDIO_RATE


def check_available(src: Source) -> None:
    """Fail fast, with the reason, when a source cannot be opened at all."""
    if src.kind in ("file", "url"):
        _open_container(src).close()
    elif src.kind == "webcam":
        next(_webcam_frames(int(src.target), 15.0, 64, 64), None)
    elif src.kind == "mic":
        _find_input_device(_import_sounddevice(), src.target)
