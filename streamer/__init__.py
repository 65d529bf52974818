"""Capture: sources, pacing, the wire protocol and the ZeroMQ senders."""
