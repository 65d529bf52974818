"""wellmon: a real-time audio-visual stress and emotion monitor (a wellness indicator)."""

__version__ = "0.1.0"
