"""`wellmon devices`: the cameras and microphones here, each with the `--source` that opens it.

Cameras are read from the kernel on Linux (/dev/video*, asking each node whether it
captures video, which opens no stream and cannot hang); elsewhere OpenCV's indices 0-9 are
tried, each in a thread given a few seconds. Microphones are sounddevice's input devices.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import struct
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from wellmon.streamer import sources

VIDIOC_QUERYCAP = 0x80685600  # _IOR('V', 0, struct v4l2_capability), 104 bytes
V4L2_CAP_VIDEO_CAPTURE = 0x00000001
V4L2_CAP_VIDEO_CAPTURE_MPLANE = 0x00001000
V4L2_CAP_DEVICE_CAPS = 0x80000000
OPENCV_INDICES = range(10)
OPENCV_PROBE_S = 3.0


@dataclass(frozen=True)
class Device:
    source: str  # the --source value that opens it
    description: str


def cameras() -> list[Device]:
    if sys.platform.startswith("linux"):
        return _v4l2_cameras()
    return _opencv_cameras()


def _v4l2_cameras() -> list[Device]:
    """Every /dev/videoN that captures video (a webcam also has metadata nodes, skipped);
    `webcam:N` opens /dev/videoN (OpenCV's V4L2 index is N)."""
    found = []
    nodes = [p for p in Path("/dev").glob("video*") if p.name[5:].isdigit()]
    for node in sorted(nodes, key=lambda p: int(p.name[5:])):
        try:
            descriptor = os.open(node, os.O_RDONLY | os.O_NONBLOCK)
        except PermissionError:
            found.append(Device(f"webcam:{node.name[5:]}", f"{node}: no permission to open "
                                                           f"it (join the video group)"))
            continue
        except OSError:
            continue
        try:
            info = fcntl.ioctl(descriptor, VIDIOC_QUERYCAP, bytes(104))
        except OSError:
            continue  # not a V4L2 device
        finally:
            os.close(descriptor)
        card = info[16:48].split(b"\0", 1)[0].decode(errors="replace")
        capabilities, device_caps = struct.unpack_from("<II", info, 84)
        caps = device_caps if capabilities & V4L2_CAP_DEVICE_CAPS else capabilities
        if caps & (V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_VIDEO_CAPTURE_MPLANE):
            found.append(Device(f"webcam:{node.name[5:]}", f"{node}: {card}"))
    return found


def _opencv_cameras() -> list[Device]:
    """OpenCV indices that open; a probe that does not answer in time is left behind (its
    thread is a daemon), so a stuck driver cannot hang the command."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # no warning per missing index
    import cv2

    def probe(index: int, opened: list[int]) -> None:
        capture = cv2.VideoCapture(index)
        if capture.isOpened():
            opened.append(index)
        capture.release()

    found = []
    for index in OPENCV_INDICES:
        opened: list[int] = []
        thread = threading.Thread(target=probe, args=(index, opened), daemon=True)
        thread.start()
        thread.join(OPENCV_PROBE_S)
        if opened:
            found.append(Device(f"webcam:{index}", f"camera {index} (OpenCV)"))
    return found


def microphones() -> list[Device]:
    """sounddevice's input devices; a SourceError when PortAudio is missing or fails."""
    sd = sources._import_sounddevice()  # the check `--source mic` makes, same message
    try:
        devices = list(enumerate(sd.query_devices()))
        default = sd.default.device[0]
    except sd.PortAudioError as exc:
        raise sources.SourceError(f"cannot list microphones: PortAudio: {exc}") from None
    found = []
    for index, device in devices:
        if device["max_input_channels"] <= 0:
            continue
        name = device["name"]
        details = (f"{device['max_input_channels']} channels, "
                   f"{device['default_samplerate']:g} Hz{', default' if index == default else ''}")
        if sources._find_input_device(sd, name) != index:  # `mic:NAME` matches a part
            details += "; an earlier device's name contains this one: use plain mic or " \
                       "make it the default"
        found.append(Device(shlex.quote(f"mic:{name}"), details))
    return found


def report() -> int:
    """Print both lists (cameras first, so they show even when PortAudio is missing)."""
    found = cameras()
    print("Cameras:" if found else "Cameras: none found")
    for device in found:
        print(f"  --source {device.source:<12} {device.description}")
    sys.stdout.flush()
    found = microphones()
    print("Microphones:" if found else "Microphones: none found")
    for device in found:
        print(f"  --source {device.source:<12} {device.description}")
    print("Plain --source mic takes the default input; join video and audio with +, "
          "e.g. --source webcam:0+mic")
    return 0
