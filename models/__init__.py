"""The model layer: perception, the stress index, fusion serving, the node, training and
conversion tools."""

from pathlib import Path

WEIGHTS = Path(__file__).resolve().parent / "weights"
"""The shipped ONNX weights (models/weights/WEIGHTS.md says where each comes from)."""
