"""Perception, fusion and the inference node (onnxruntime at run time)."""
