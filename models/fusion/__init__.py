"""Fusion model building blocks (trained in PyTorch, exported to ONNX for run time)."""
