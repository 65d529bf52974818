"""Errors of the model layer that the command line reports without a traceback.

Kept free of heavy imports so that `wellmon` can catch them without loading onnxruntime.
"""


class ModelError(RuntimeError):
    """A model cannot be used; the message names the file and why."""
