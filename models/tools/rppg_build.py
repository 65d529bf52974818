"""`wellmon models build --rppg facephys`: a learned rPPG model from the user's open-rppg.

open-rppg (PyPI, MIT code, by Kegang Wang) ships pretrained rPPG weights in its wheel;
its README says they are "subject to the license terms specified in their original
publications" and names no publication for FacePhys, so this project never ships,
vendors or commits them. This command converts them on the user's machine, into the
user's data folder (``data_dir()``, ``~/.local/share/wellmon`` by default):

1. A throwaway virtual environment is made (a temporary folder, or ``--env DIR`` to keep
   and reuse one) with pinned JAX, Keras 3, jax2onnx and open-rppg (``--no-deps``: its
   OpenCV, onnxruntime, av and heartpy are not needed to read the weights). Nothing is
   installed into wellmon's own environment: open-rppg's ``onnxruntime`` and
   ``opencv_python`` would replace wellmon's ``onnxruntime-gpu`` and
   ``opencv-python-headless`` (same module names).
2. Inside it, this same file runs as a script (``--inside``): it builds FacePhys from
   open-rppg's own source (``rppg/models_code/FacePhys.py``) with the dtype policy
   float32 (open-rppg sets ``mixed_float16`` globally and hard-codes it in two Conv2D
   layers of ``SSConv``; both are switched to float32 in the copy of the source that is
   run, since float16 graphs fail in onnxruntime's CPU kernels), loads
   ``FacePhys.rlap.weights.h5`` and exports FacePhys's *streaming* step (one frame in,
   recurrent state in and out, as ``rppg.Model`` calls it) with jax2onnx, opset 18.
   Keras' own ``model.export(format="onnx")`` exports ``call``, the whole-clip chunk
   form, which uses complex arithmetic; the step form is real-valued.
3. Parity is checked in the build: 240 frames through the JAX step and the ONNX graph
   (onnxruntime), and the same frames through open-rppg's original mixed_float16 model.
   The figures go into the ONNX metadata and the printed report.

The graph: inputs ``frame`` [N,36,36,3] float32 RGB 0..255 (the face crop, see
models/perception/rppg_learned.py), ``dt`` [1] seconds since the previous frame (open-rppg always
feeds 1/30 after resampling to 30 frames/s), ``reset`` [N] (1: start from the model's
initial state, whatever ``state_in_*`` holds), ``state_in_0..K``; outputs ``bvp`` [N] (one
pulse sample per frame) and ``state_out_0..K`` (feed back as ``state_in_*``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

OPEN_RPPG_VERSION = "0.1.1"
OPSET = 18
COMMAND = "wellmon models build --rppg facephys"
# The build environment's packages, exactly (pip freeze of one that worked, Python 3.11).
BUILD_REQUIREMENTS = ("jax==0.10.2", "jaxlib==0.10.2", "keras==3.15.1", "einops==0.8.2",
                      "h5py==3.16.0", "onnx==1.23.2", "jax2onnx==0.17.1")
BUILD_CONSTRAINTS = """\
absl-py==2.5.1
aiofiles==25.1.0
anyio==4.16.0
chex==0.1.92
click==8.5.1
dataclasses-json==0.6.7
dm_pix==0.4.5
einops==0.8.2
equinox==0.13.8
etils==1.15.0
filelock==4.3.2
flatbuffers==25.12.19
flax==0.12.8
fsspec==2026.9.0
h11==0.16.0
h5py==3.16.0
hf-xet==1.8.0
httpcore2==2.16.2
httpx2==2.16.2
huggingface_hub==2.4.0
humanize==4.17.0
idna==3.20
jax==0.10.2
jax2onnx==0.17.1
jaxlib==0.10.2
jaxtyping==0.3.11
keras==3.15.1
markdown-it-py==4.3.0
marshmallow==3.26.2
mdurl==0.1.2
ml_dtypes==0.7.0
mpmath==1.3.0
msgpack==1.2.4
mypy_extensions==1.2.0
namex==0.1.0
netron==9.3.3
numpy==2.4.6
onnx==1.23.2
onnx-ir==1.1.0
onnxruntime==1.32.0
opt_einsum==3.4.0
optax==0.2.8
optree==0.20.0
orbax-checkpoint==0.11.36
orbax-export==0.0.8
packaging==26.4
protobuf==7.36.2
psutil==7.2.2
Pygments==2.21.0
PyYAML==6.0.4
rich==15.0.0
scipy==1.17.1
simplejson==4.3.0
sympy==1.14.0
tensorstore==0.1.86
toolz==1.2.0
tqdm==4.70.1
treescope==0.1.10
truststore==0.10.5
typing-inspect==0.9.0
typing_extensions==4.16.0
uvloop==0.23.0
wadler_lindig==0.1.8
zipp==4.1.2
"""


@dataclass(frozen=True)
class LearnedSpec:
    """One open-rppg model that can be built."""

    name: str  # wellmon's name (the --rppg value)
    source: str  # open-rppg's model name
    weights: str  # file in the rppg package
    code: str  # file in the rppg package that defines the network
    input_size: int  # crop side in pixels
    fps: float  # frame rate the model was trained at
    trained_on: str
    license: str


FACEPHYS = LearnedSpec(
    name="facephys", source="FacePhys.rlap", weights="weights/FacePhys.rlap.weights.h5",
    code="models_code/FacePhys.py", input_size=36, fps=30.0,
    trained_on="rLAP (the '.rlap' suffix: open-rppg's README says the suffixes .rlap and "
               ".pure 'indicate different training protocols/weights'); no accuracy is "
               "claimed here beyond what wellmon measures on its own synthetic clips",
    license="code: MIT (open-rppg LICENSE); weights: open-rppg's LICENSE and README say "
            "pretrained models 'are the intellectual property of their respective authors "
            "and are subject to the license terms specified in their original "
            "publications'; its model table names no publication for FacePhys (the "
            "closest, ME by the same authors, is Wang et al., arXiv:2504.01774, 2025). No "
            "licence grants redistribution: converted on the user's machine, never "
            "shipped or committed")
SPECS = {FACEPHYS.name: FACEPHYS}


def data_dir(environ: dict[str, str] | None = None) -> Path:
    """wellmon's data folder: $XDG_DATA_HOME/wellmon, else ~/.local/share/wellmon."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "wellmon"


def default_path(name: str, environ: dict[str, str] | None = None) -> Path:
    """Where `wellmon models build --rppg NAME` writes its ONNX file."""
    return data_dir(environ) / "models" / f"rppg-{name}.onnx"


# ----------------------------------------------------------------------------- outside


def _run(cmd: list[str], quiet: bool) -> None:
    if not quiet:
        print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL if quiet else None)


def make_env(env: Path, open_rppg: str, quiet: bool = False) -> Path:
    """A venv at env with the pinned build packages and open-rppg; its python."""
    python = env / "bin" / "python"
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(env)], quiet)
    check = subprocess.run([str(python), "-c", "import jax2onnx, keras, rppg"],
                           capture_output=True)
    if check.returncode == 0:
        return python
    constraints = env / "constraints.txt"
    constraints.write_text(BUILD_CONSTRAINTS)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check",
           "--no-input"] + (["--quiet"] if quiet else [])
    _run(pip + ["-c", str(constraints), *BUILD_REQUIREMENTS], quiet)
    _run(pip + ["--no-deps", open_rppg], quiet)
    return python


def build(name: str, out: Path, env: Path | None = None, open_rppg: str | None = None,
          quiet: bool = False) -> dict:
    """Make the build environment, convert inside it, return the report (also in
    ``out.with_suffix('.json')``)."""
    spec = SPECS[name]
    open_rppg = open_rppg or f"open-rppg=={OPEN_RPPG_VERSION}"
    out = Path(out).expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tmp = None
    if env is None:
        tmp = Path(tempfile.mkdtemp(prefix="rppg-build-", dir=out.parent))
        env = tmp / "venv"
    try:
        python = make_env(Path(env).expanduser().resolve(), open_rppg, quiet)
        env_s = time.perf_counter() - started
        partial = out.with_name(out.name + ".part")
        # -I: isolated, so that this file's folder (models/, which has an rppg.py) is not
        # on sys.path ahead of open-rppg's `rppg` package
        _run([str(python), "-I", str(Path(__file__).resolve()), "--inside", spec.name,
              "--out", str(partial)], quiet)
        report = json.loads(partial.with_suffix(".json").read_text())
        partial.with_suffix(".json").unlink()
        partial.replace(out)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    report.update(env_seconds=round(env_s, 1),
                  total_seconds=round(time.perf_counter() - started, 1),
                  onnx=str(out), bytes=out.stat().st_size,
                  sha256=hashlib.sha256(out.read_bytes()).hexdigest())
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="wellmon models build --rppg",
        description="Convert a learned rPPG model of open-rppg to ONNX in a throwaway build "
                    "environment (open-rppg, JAX, Keras, jax2onnx: ~1.1 GB, removed after).")
    parser.add_argument("--rppg", required=True, choices=sorted(SPECS),
                        help="which model (open-rppg's FacePhys.rlap)")
    parser.add_argument("--out", type=Path, default=None,
                        help="ONNX file to write (default: "
                             f"{default_path('NAME')}; set perception.rppg_model to it "
                             "or to the name)")
    parser.add_argument("--env", type=Path, default=None,
                        help="keep the build environment in this folder and reuse it "
                             "(default: a temporary folder, removed after)")
    parser.add_argument("--open-rppg", default=None,
                        help=f"what pip installs as open-rppg (default "
                             f"open-rppg=={OPEN_RPPG_VERSION}; or a downloaded wheel)")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    out = args.out or default_path(args.rppg)
    try:
        report = build(args.rppg, out, args.env, args.open_rppg, args.quiet)
    except subprocess.CalledProcessError as exc:
        print(f"wellmon models build --rppg: {' '.join(map(str, exc.cmd[:4]))}... failed "
              f"with status {exc.returncode} (see above)", file=sys.stderr)
        return 2
    print(f"wrote {report['onnx']} ({report['bytes']} bytes, sha256 {report['sha256']}) "
          f"in {report['total_seconds']:.0f} s; ONNX vs JAX float32 max abs diff "
          f"{report['parity_max_abs_diff']:.1e}; vs open-rppg's mixed_float16 model: "
          f"correlation {report['original_correlation']:.4f}")
    return 0


# ----------------------------------------------------------------------------- inside


def _inside(name: str, out: Path) -> None:  # pragma: no cover - runs in the build venv
    """Build, export and check the model (runs in the build environment)."""
    os.environ["KERAS_BACKEND"] = "jax"
    import importlib.metadata
    import importlib.util
    import logging

    import jax
    import jax.numpy as jnp
    import keras
    import numpy as np
    import onnx
    import onnxruntime as ort
    from jax2onnx import to_onnx

    logging.getLogger("onnx_ir").setLevel(logging.ERROR)  # one line per untyped shape value

    spec = SPECS[name]
    found = importlib.util.find_spec("rppg")  # not imported: its __init__ wants cv2, av...
    if found is None or found.origin is None:
        raise SystemExit("open-rppg is not installed in the build environment")
    pkg = Path(found.origin).parent
    source = (pkg / spec.code).read_text()
    weights = pkg / spec.weights
    version = importlib.metadata.version("open-rppg")
    t0 = time.perf_counter()

    def load(policy: str):
        keras.mixed_precision.set_global_policy(policy)
        code = source if policy != "float32" else source.replace(
            "dtype='mixed_float16'", "dtype='float32'")
        module = type(sys)(f"facephys_{policy}")
        exec(compile(code, str(pkg / spec.code), "exec"), module.__dict__)
        model = module.FacePhys([2] * 4, [32] * 4)  # as rppg.models.load_FacePhys
        shape = (1, 1, spec.input_size, spec.input_size, 3)
        model.build(shape)
        model.load_weights(str(weights))
        return model, model.init_state(shape)

    patched = source.count("dtype='mixed_float16'")
    model, state = load("float32")
    leaves0, tree = jax.tree_util.tree_flatten(state)
    leaves0 = [np.asarray(v, np.float32) for v in leaves0]
    if any(v.shape[0] != 1 for v in leaves0):
        raise SystemExit("unexpected state layout: batch is not the first axis")
    built_s = time.perf_counter() - t0

    def step(frame, dt, reset, *leaves):
        fresh = [jnp.where(reset.reshape((-1,) + (1,) * (v.ndim - 1)) > 0.5, c, v)
                 for c, v in zip(leaves0, leaves)]
        st = jax.tree_util.tree_unflatten(tree, fresh)
        y, new = model.step(frame[:, None] / 255.0, st, dt=dt.reshape(()))
        return (jnp.reshape(y, (-1,)), *jax.tree_util.tree_leaves(new))

    size = spec.input_size
    inputs = [("N", size, size, 3), jax.ShapeDtypeStruct((1,), jnp.float32), ("N",)]
    inputs += [("N", *v.shape[1:]) for v in leaves0]
    in_names = ["frame", "dt", "reset"] + [f"state_in_{i}" for i in range(len(leaves0))]
    out_names = ["bvp"] + [f"state_out_{i}" for i in range(len(leaves0))]
    t1 = time.perf_counter()
    proto = to_onnx(step, inputs, model_name=f"wellmon_rppg_{name}", opset=OPSET,
                    input_names=in_names, output_names=out_names)
    export_s = time.perf_counter() - t1

    # Parity: a moving, pulsing, noisy crop; 240 frames at 30 frames/s; a batch of 2 whose
    # second row starts from a reset at frame 120.
    rng = np.random.default_rng(0)
    base = rng.uniform(70, 190, (1, size, size, 3)).astype(np.float32)
    frames = []
    for i in range(240):
        pulse = 1.5 * np.sin(2 * np.pi * 1.2 * i / spec.fps) * np.array([0.3, 0.8, 0.5])
        shift = np.roll(base, int(round(2 * np.sin(i / 25))), axis=2)
        frames.append(np.clip(shift + pulse + rng.normal(0, 1.5, base.shape), 0, 255)
                      .astype(np.float32))
    dt = np.array([1.0 / spec.fps], np.float32)
    jstep = jax.jit(step)
    path_tmp = out.with_suffix(".tmp.onnx")
    onnx.save(proto, str(path_tmp))
    sess = ort.InferenceSession(str(path_tmp), providers=["CPUExecutionProvider"])
    zeros = [np.zeros((2, *v.shape[1:]), np.float32) for v in leaves0]
    sj, so = list(zeros), list(zeros)
    yj, yo = [], []
    for i, f in enumerate(frames):
        x = np.concatenate([f, f])
        reset = np.array([float(i == 0), float(i in (0, 120))], np.float32)
        r = jstep(x, dt, reset, *sj)
        yj.append(np.asarray(r[0]))
        sj = [np.asarray(v) for v in r[1:]]
        r = sess.run(None, dict(zip(in_names, [x, dt, reset, *so])))
        yo.append(r[0])
        so = r[1:]
    yj, yo = np.array(yj), np.array(yo)
    diff = float(np.abs(yj - yo).max())
    # open-rppg's own model (mixed_float16 policy, source as shipped), as rppg.Model runs it
    orig, ostate = load("mixed_float16")

    @jax.jit
    def call(x, s):
        y, s = orig.step(x[None] / 255.0, s, dt=1.0 / spec.fps)
        return y[0], s

    yr = []
    for f in frames:
        y, ostate = call(f.astype(np.uint8), ostate)
        yr.append(float(np.asarray(y).reshape(-1)[0]))
    yr = np.array(yr)
    corr = float(np.corrcoef(yr[30:], yo[30:, 0])[0, 1])
    orig_diff = float(np.abs(yr - yo[:, 0]).max())
    path_tmp.unlink()
    meta = {
        "source_package": "open-rppg", "source_version": version,
        "source_model": spec.source, "source_file": spec.weights,
        "source_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "license": spec.license, "trained_on": spec.trained_on,
        "wellmon.kind": "rppg-step", "wellmon.name": spec.name,
        "input_size": str(size), "fps": str(spec.fps),
        "preprocessing": "RGB face crop resized to 36x36 (cv2 INTER_AREA), float32 0..255; "
                         "frames resampled to 30/s by repeating the latest (open-rppg's "
                         "update_face_resized); dt = 1/30",
        "conversion": f"FacePhys.step exported with jax2onnx (opset {OPSET}), dtype policy "
                      f"float32 ({patched} Conv2D layers switched from mixed_float16), "
                      "initial state embedded (reset input)",
        "parity_max_abs_diff": f"{diff:.3g}",
        "original_correlation": f"{corr:.5f}",
        "command": COMMAND,
    }
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))
    report = {**meta, "parity_max_abs_diff": diff, "original_correlation": corr,
              "original_max_abs_diff": orig_diff, "bvp_scale": float(np.abs(yo).max()),
              "model_build_seconds": round(built_s, 1), "export_seconds": round(export_s, 1),
              "state_tensors": len(leaves0),
              "state_floats": int(sum(v.size for v in leaves0))}
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--inside":
        inside = argparse.ArgumentParser()
        inside.add_argument("--inside", required=True, choices=sorted(SPECS))
        inside.add_argument("--out", type=Path, required=True)
        a = inside.parse_args()
        _inside(a.inside, a.out)
        sys.exit(0)
    sys.exit(main())
