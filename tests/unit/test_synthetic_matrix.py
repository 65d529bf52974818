"""The varied synthetic clips (streamer.synthetic's appearance fields) and their matrix.

What a user of the data relies on: the defaults still make the bundled sample; each new
factor changes the pixels where it should and nowhere else (skin tone only on skin, glasses
do not pulse, blinks show through every lid/glasses/tone combination, the truth boxes follow
the face when it is scaled or stretched, heavy motion is as fast and as large as the truth
says); the matrix is balanced, split into halves that each cover every level, stably named;
build() caches. Pixel checks use render_frames (noise-free frames exactly as make_clip draws
them before sensor noise and encoding), so they are exact and fast; only build() encodes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from wellmon.streamer import synthetic, synthetic_matrix
from wellmon.streamer.synthetic import (
    EYELIDS,
    GENERATOR_VERSION,
    SKIN_TONES,
    ClipSpec,
    ground_truth,
    pulse_at,
    render_frames,
    to_json,
)
from wellmon.streamer.synthetic_matrix import FACTORS, HALVES, Case, build, cases

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "streamer" / "sample"
# Small, static, clean clips: every pixel difference is caused by the factor under test.
SMALL = dict(duration_s=4.0, width=320, height=240, speech=(), blink_times_s=(1.0,),
             heart_rate_bpm=None, motion_px=0.0, lighting_drift=0.0, noise_std=0.0)
OPEN_T, CLOSED_T = 0.5, 1.0 + 0.4 * 0.2  # before the blink; lids fully closed


def spec(**kw: object) -> ClipSpec:
    return ClipSpec(**{**SMALL, **kw})


def frame(sp: ClipSpec, t: float) -> np.ndarray:
    return render_frames(sp, [t], gain=False)[0].astype(np.float64)


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114])


def box_mask(shape: tuple[int, ...], boxes: list[list[int]], grow: int = 0) -> np.ndarray:
    m = np.zeros(shape[:2], bool)
    for x, y, w, h in boxes:
        m[max(y - grow, 0):y + h + grow, max(x - grow, 0):x + w + grow] = True
    return m


def extremes_of_pulse(sp: ClipSpec) -> tuple[float, float]:
    """Instants of the blood-volume maximum (skin darkest) and minimum in the first 2 s."""
    ts = np.arange(0.0, 2.0, 1 / 600)
    p = pulse_at(sp, ts)
    return float(ts[np.argmax(p)]), float(ts[np.argmin(p)])


# ----------------------------------------------------------------------------- defaults


def test_defaults_reproduce_the_sample_ground_truth() -> None:
    truth = json.loads(to_json(ground_truth(ClipSpec())))
    sample = json.loads((SAMPLE_DIR / "sample.json").read_text())
    assert truth["generator_version"] == GENERATOR_VERSION
    for key in sample:
        if key not in ("file", "file_sha256"):
            assert truth[key] == sample[key], key
    assert set(truth) == set(sample)
    assert truth["glasses_boxes"] == []


def test_defaults_reproduce_the_sample_pixels() -> None:
    """Noise-free default frames match the bundled mp4 up to its noise and coding (std 1.5,
    crf 18), an open-eye frame and a closed-eye one; with glasses they clearly do not."""
    wanted = {0: None, 43: None}  # 43 / 30 s: the first blink (1.35 s) fully closed
    with av.open(str(SAMPLE_DIR / "sample.mp4")) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in wanted:
                wanted[i] = f.to_ndarray(format="rgb24").astype(np.float64)
            if i >= max(wanted):
                break

    def worst_block(a: np.ndarray, b: np.ndarray) -> float:
        d = np.abs(a - b).mean(axis=2)
        return float(d.reshape(30, 16, 40, 16).mean(axis=(1, 3)).max())

    for i, decoded in wanted.items():
        assert decoded is not None
        t = i / 30.0
        assert worst_block(decoded, render_frames(ClipSpec(), [t])[0]) < 5.0
        assert worst_block(decoded, render_frames(ClipSpec(glasses="thin"), [t])[0]) > 15.0


# ----------------------------------------------------------------------------- skin tone


def test_skin_tone_changes_skin_only_and_orders_luma() -> None:
    base_spec = spec()
    truth = ground_truth(base_spec)
    fx, fy, fw, fh = truth["face_box"]
    rx, ry, rw, rh = truth["skin_roi"]
    base = frame(base_spec, OPEN_T)
    roi_luma = {}
    for tone in SKIN_TONES:
        f = frame(spec(skin_tone=tone), OPEN_T)
        changed = np.abs(f - base).max(axis=2) > 0
        roi_luma[tone] = luma(f[ry:ry + rh, rx:rx + rw]).mean()
        if tone == "original":
            assert not changed.any()
            continue
        # Only in and around the face (face, ears, neck): never the background, suit, flag.
        ys, xs = np.nonzero(changed)
        assert xs.min() >= fx - 0.2 * fw and xs.max() <= fx + 1.2 * fw, tone
        assert ys.min() >= fy - 0.1 * fh and ys.max() <= fy + 1.6 * fh, tone
        assert changed[ry:ry + rh, rx:rx + rw].mean() > 0.9, tone  # the skin ROI is skin
        # The eye openings (whites, irises) stay as they are (their edge pixels mix in lid).
        for x, y, w, h in truth["eye_boxes"]:
            cx, cy = x + w // 2, y + h // 2
            assert np.abs(f - base)[cy - 1:cy + 2, cx - 3:cx + 4].max() <= 2, tone
    order = ["dark", "brown", "tan", "original", "light"]
    assert all(roi_luma[a] < roi_luma[b] for a, b in itertools.pairwise(order)), roi_luma
    assert roi_luma["dark"] < 0.45 * roi_luma["original"]
    assert 45 < roi_luma["dark"] < 90  # dark, still not black
    f_orig = frame(spec(), OPEN_T)[ry:ry + rh, rx:rx + rw].reshape(-1, 3).mean(axis=0)
    f_ruddy = frame(spec(skin_tone="ruddy"), OPEN_T)[ry:ry + rh, rx:rx + rw]
    f_ruddy = f_ruddy.reshape(-1, 3).mean(axis=0)
    assert f_ruddy[0] / f_ruddy[1] > 1.15 * f_orig[0] / f_orig[1]  # redder
    for tone in SKIN_TONES:  # all still skin-like: R > G > B
        r, g, b = frame(spec(skin_tone=tone), OPEN_T)[ry:ry + rh, rx:rx + rw].reshape(
            -1, 3).mean(axis=0)
        assert r > g > b, tone


@pytest.mark.parametrize("tone", ["original", "dark", "light"])
def test_pulse_amplitude_is_absolute_green_after_the_tone(tone: str) -> None:
    sp = spec(skin_tone=tone, heart_rate_bpm=60.0, pulse_amplitude=4.0)
    t_max, t_min = extremes_of_pulse(sp)
    truth = ground_truth(sp)
    rx, ry, rw, rh = truth["skin_roi"]
    diff = frame(sp, t_min) - frame(sp, t_max)  # skin is darkest at the blood-volume maximum
    assert np.median(diff[ry:ry + rh, rx:rx + rw, 1]) == pytest.approx(4.0, abs=0.51)
    assert np.median(diff[ry:ry + rh, rx:rx + rw, 0]) < np.median(diff[ry:ry + rh, rx:rx + rw, 1])
    fx, fy, fw, fh = truth["face_box"]  # the pulsing skin ends at the chin, below the box
    outside = ~box_mask(diff.shape, [[fx, fy, fw, int(fh * 1.25)]], grow=4)
    assert not diff[outside].any()


# ----------------------------------------------------------------------------- glasses


@pytest.mark.parametrize("style", ["thin", "thick"])
def test_glasses_rims_do_not_pulse_but_skin_under_lenses_does(style: str) -> None:
    kw = dict(width=640, height=480, heart_rate_bpm=60.0, pulse_amplitude=4.0)
    with_g, without = spec(glasses=style, **kw), spec(**kw)
    t_max, t_min = extremes_of_pulse(with_g)
    # On the photograph (where the glasses are drawn): opaque rim pixels are constant.
    scene = synthetic._Scene(with_g)
    (gy, gx), keep, _ = scene.glasses
    win = np.s_[gy:gy + keep.shape[0], gx:gx + keep.shape[1]]
    src_diff = np.abs(scene.source(t_min)[win] - scene.source(t_max)[win]).max(axis=2)
    opaque = keep[..., 0] == 0
    skin = synthetic._toned_photo("original")[1][win] > 0.5
    assert (opaque & skin).sum() > 50, "the test needs rim pixels over pulsing skin"
    assert not src_diff[opaque].any(), "rims must not pulse"
    assert (src_diff[~opaque & (keep[..., 0] > 0.5) & skin] > 2.0).mean() > 0.9  # lenses
    # In the frame: rim-coloured pixels over pulsing skin keep at most a trace of the pulse
    # (anti-aliased edges mix in a little skin, as a camera pixel would).
    g_max, g_min = frame(with_g, t_max), frame(with_g, t_min)
    n_max, n_min = frame(without, t_max), frame(without, t_min)
    rim_colour = {"thin": (52, 52, 58), "thick": (22, 19, 19)}[style]
    rim = (np.abs(g_max - rim_colour).max(axis=2) <= 3) & (np.abs(g_max - n_max).max(axis=2) > 30)
    skin_pulse = (n_min - n_max)[..., 1]
    on_skin = rim & (skin_pulse >= 3)
    assert on_skin.sum() > 10
    assert (g_min - g_max)[..., 1][on_skin].mean() < 0.25 * skin_pulse[on_skin].mean()
    if style == "thick":  # wide enough for a solid core: exactly constant there
        core = cv2.erode(rim.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        assert (core & (skin_pulse >= 3)).sum() > 20
        assert not np.abs(g_min - g_max)[core].any()
    # Lenses are tinted, not opaque: the skin under them still pulses.
    change = np.abs(g_max - n_max).max(axis=2)
    lens = (change > 0) & (change < 30) & (skin_pulse >= 3)  # tinted, not rim (or its edge)
    assert lens.sum() > 100
    lens_pulse = (g_min - g_max)[..., 1][lens]
    assert np.median(lens_pulse) >= 3 and (lens_pulse >= 1).mean() > 0.9  # tint, glare dim it
    # The rims are where the truth says the glasses are, and the eyes are behind the lenses.
    truth = ground_truth(with_g)
    boxes = truth["glasses_boxes"]
    assert len(boxes) == 2
    dark = luma(n_max) - luma(g_max) > 60  # rims and their anti-aliased edges
    ys, xs = np.nonzero(dark)
    in_lens_box = box_mask(rim.shape, boxes, grow=3)[ys, xs]
    in_bridge_or_temple = ((xs < boxes[0][0]) | (xs >= boxes[1][0] + boxes[1][2])
                           | ((xs >= boxes[0][0] + boxes[0][2]) & (xs < boxes[1][0])))
    assert (in_lens_box | in_bridge_or_temple).all()
    for x, y, w, h in boxes:
        assert dark[y:y + h, x:x + w].sum() > 100
    for (ex, ey, ew, eh), (gx_, gy_, gw, gh) in zip(truth["eye_boxes"], boxes):
        assert gx_ <= ex and ex + ew <= gx_ + gw and gy_ <= ey and ey + eh <= gy_ + gh


# ----------------------------------------------------------------------------- blinks


def test_blinks_show_for_every_tone_glasses_and_eyelid() -> None:
    """Every combination: the eye boxes change a lot when the lids close, nothing else
    changes, and open eyes do not depend on the eyelid texture."""
    scales = itertools.cycle([(1.0, 1.0), (0.65, 0.88), (1.3, 1.12)])
    for tone, glasses in itertools.product(SKIN_TONES, [None, "thin", "thick"]):
        scale, aspect = next(scales)
        opened = None
        closed_by_lid = {}
        for lid in EYELIDS:
            sp = spec(skin_tone=tone, glasses=glasses, eyelid=lid, face_scale=scale,
                      face_aspect=aspect)
            truth = ground_truth(sp)
            o, c = frame(sp, OPEN_T), frame(sp, CLOSED_T)
            if opened is None:
                opened = o
            assert np.array_equal(o, opened), (tone, glasses, lid)
            d = np.abs(o - c)
            for x, y, w, h in truth["eye_boxes"]:
                assert d[y:y + h, x:x + w].mean() > 6.0, (tone, glasses, lid)
            assert not d[~box_mask(d.shape, truth["eye_boxes"], grow=2)].any()
            closed_by_lid[lid] = c
        for a, b in itertools.combinations(EYELIDS, 2):  # the textures differ
            assert np.abs(closed_by_lid[a] - closed_by_lid[b]).max() > 4, (tone, a, b)


def test_dark_eyelid_is_darker_and_pale_lighter_than_mirror() -> None:
    sp = spec()
    boxes = ground_truth(sp)["eye_boxes"]
    means = {}
    for lid in EYELIDS:
        c = frame(dataclasses.replace(sp, eyelid=lid), CLOSED_T)
        means[lid] = np.mean([luma(c[y:y + h, x:x + w]).mean() for x, y, w, h in boxes])
    assert means["dark"] < means["mirror"] - 15
    assert means["pale"] > means["mirror"] + 5


# ----------------------------------------------------------------------------- geometry


@pytest.mark.parametrize(("scale", "aspect"), [(0.65, 0.88), (1.0, 1.0), (1.3, 1.12),
                                               (1.3, 0.88)])
def test_face_scale_and_aspect_move_the_truth_with_the_face(scale: float, aspect: float) -> None:
    sp = spec(width=640, height=480, face_scale=scale, face_aspect=aspect)
    truth = ground_truth(sp)
    x, y, w, h = truth["face_box"]
    assert h == pytest.approx(480 / 3 * scale, abs=2)
    assert w == pytest.approx(480 / 3 * scale * aspect, abs=2)
    # An off-the-shelf detector finds the face where the truth says.
    grey = cv2.cvtColor(render_frames(sp, [0.0])[0], cv2.COLOR_RGB2GRAY)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    faces = cascade.detectMultiScale(grey, 1.1, 5, minSize=(40, 40))
    assert len(faces) >= 1

    def iou(a: list[int], b: list[int]) -> float:
        ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
        iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
        return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)

    assert max(iou([int(v) for v in f], truth["face_box"]) for f in faces) > 0.55
    # Where the pixels of the eyes and the skin are, the truth boxes are.
    o, c = frame(sp, OPEN_T), frame(sp, CLOSED_T)
    ys, xs = np.nonzero(np.abs(o - c).max(axis=2) > 0)
    eyes = truth["eye_boxes"]
    assert xs.min() >= eyes[0][0] and xs.max() < eyes[1][0] + eyes[1][2]
    assert ys.min() >= min(e[1] for e in eyes) and ys.max() < max(e[1] + e[3] for e in eyes)
    rx, ry, rw, rh = truth["skin_roi"]
    toned = np.abs(frame(dataclasses.replace(sp, skin_tone="dark"), OPEN_T) - o).max(axis=2) > 0
    assert toned[ry:ry + rh, rx:rx + rw].mean() > 0.9
    ys, xs = np.nonzero(toned)
    assert abs((xs.min() + xs.max()) / 2 - (x + w / 2)) < 0.1 * w  # centred on the face box


def test_heavy_motion_is_in_band_large_and_where_the_truth_says() -> None:
    sp = spec(width=640, height=480, duration_s=10.0, motion_px=20.0, motion_hz_max=1.5,
              seed=3)
    truth = ground_truth(sp)
    motion = truth["motion"]
    freqs = [f for k in ("dx", "dy", "angle") for _, f, _ in motion[k]]
    assert max(freqs) > 0.7 and max(freqs) <= 1.5  # inside the heart-rate band
    assert sum(f > 0.25 for f in freqs) >= 6
    ts = np.arange(int(sp.duration_s * sp.fps)) / sp.fps

    def track(comps: list[list[float]], t: np.ndarray) -> np.ndarray:
        return sum(a * (np.sin(2 * np.pi * f * t + p) - math.sin(p)) for a, f, p in comps)

    for k, peak in (("dx", 20.0), ("dy", 20.0), ("angle", 2.0)):
        assert np.abs(track(motion[k], ts)).max() == pytest.approx(peak, rel=1e-6)
    # The face moves as the model says: the pivot (face centre) goes to pivot + (dx, dy).
    i = int(np.argmax(np.abs(track(motion["dx"], ts)) + np.abs(track(motion["dy"], ts))))
    t = float(ts[i])
    dx, dy = float(track(motion["dx"], np.array(t))), float(track(motion["dy"], np.array(t)))
    assert math.hypot(dx, dy) > 15
    f0, f1 = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in render_frames(sp, [0.0, t]))
    px, py = (int(round(v)) for v in motion["pivot"])
    tpl = f0[py - 30:py + 30, px - 30:px + 30]
    res = cv2.matchTemplate(f1, tpl, cv2.TM_CCOEFF_NORMED)
    _, _, _, (mx, my) = cv2.minMaxLoc(res)
    assert abs(mx + 30 - px - dx) <= 1.5 and abs(my + 30 - py - dy) <= 1.5
    # The default motion stays slow, far below the heart-rate band.
    slow = ground_truth(spec(duration_s=10.0, motion_px=3.0))["motion"]
    assert max(f for k in ("dx", "dy", "angle") for _, f, _ in slow[k]) <= 0.25


# ----------------------------------------------------------------------------- matrix


def test_matrix_cases_follow_the_brief() -> None:
    all_cases = cases()
    main = [c for c in all_cases if c.factors["pulse"] == "present"]
    controls = [c for c in all_cases if c.factors["pulse"] == "none"]
    assert len(main) == 48 and len(controls) == 16
    assert len({c.name for c in all_cases}) == len(all_cases)
    for c in all_cases:
        s = c.spec
        assert (s.duration_s, s.width, s.height, s.fps, s.crf, s.speech) == (
            40.0, 640, 480, 30.0, 20, ())
        assert 8 <= len(s.blink_times_s) <= 12
        bt = sorted(s.blink_times_s)
        assert all(b - a >= 1.5 for a, b in itertools.pairwise(bt))
        assert bt[0] >= 0 and bt[-1] + s.blink_duration_s <= s.duration_s
        assert s.noise_std in (1.5, 2.0, 3.0)
        assert 0.02 <= s.lighting_drift <= 0.05
        assert (s.motion_px, s.motion_hz_max) == synthetic_matrix.MOTION[c.factors["motion"]]
        assert s.skin_tone == c.factors["skin_tone"] and s.eyelid == c.factors["eyelid"]
        assert (s.glasses or "none") == c.factors["glasses"]
        assert (s.face_scale, s.face_aspect) == (c.factors["face_scale"],
                                                 c.factors["face_aspect"])
        if c in controls:
            assert s.heart_rate_bpm is None
        else:
            lo, hi = synthetic_matrix.HR_BANDS[c.factors["hr_band"]]
            assert 50 <= s.heart_rate_bpm <= 135 and lo <= s.heart_rate_bpm <= hi
            assert s.pulse_amplitude == c.factors["pulse_amplitude"]
    assert len({c.spec.seed for c in all_cases}) == len(all_cases)


def test_each_half_covers_every_level_of_every_factor() -> None:
    for half in HALVES:
        chosen = cases(half)
        assert all(c.half == half for c in chosen)
        main = [c for c in chosen if c.factors["pulse"] == "present"]
        assert len(main) == 24
        for factor, levels in FACTORS.items():
            seen = {c.factors[factor] for c in main}
            assert seen == set(levels), (half, factor)
            counts = [sum(c.factors[factor] == v for c in main) for v in levels]
            assert max(counts) - min(counts) <= 0, (half, factor, counts)  # balanced
        control_motion = {c.factors["motion"] for c in chosen if c.factors["pulse"] == "none"}
        assert control_motion == set(synthetic_matrix.MOTION)
    assert {c.name for c in cases("tune")} | {c.name for c in cases("report")} == {
        c.name for c in cases()}
    with pytest.raises(ValueError):
        cases("train")


def test_pairs_differ_only_in_seed_heart_rate_and_blinks() -> None:
    by_pair: dict[int, list[Case]] = {}
    for c in cases():
        by_pair.setdefault(c.factors["pair"], []).append(c)
    assert all(len(v) == 2 for v in by_pair.values())
    for a, b in by_pair.values():
        assert {a.half, b.half} == set(HALVES)
        assert a.factors == b.factors
        da, db = dataclasses.asdict(a.spec), dataclasses.asdict(b.spec)
        differ = {k for k in da if da[k] != db[k]}
        assert differ <= {"seed", "heart_rate_bpm", "blink_times_s"} and "seed" in differ


def test_matrix_names_are_stable() -> None:
    """Names, halves and specs are part of the benchmark's record: changing any of them
    must be deliberate (update these values and say so in the commit)."""
    named = {c.name: c for c in cases()}
    assert named["r01-a2.0-dark-thin-still"].half == "report"
    assert named["r07-a0.5-tan-thick-still"].spec.heart_rate_bpm == 70.2
    assert named["r45-a1.0-tan-thick-heavy"].factors["eyelid"] == "mirror"
    assert named["n05-brown-thin-heavy"].half == "tune"
    listing = [f"{c.name} {c.half}" for c in cases()]
    # The first 54 as they were before the controls n07-n16 were added (2026-12-03).
    assert hashlib.sha256("\n".join(listing[:54]).encode()).hexdigest() == (
        "a95d74b3214642719b50aa12c24f3bb34665a0f224d8ef75e7ccdd6a7d7be5a8")
    assert hashlib.sha256("\n".join(listing).encode()).hexdigest() == (
        "11a6ee67bf1032f48601857824f890c277e009007a91aceb9759045deffbb315")
    # Independent of call order and caching.
    assert [c.name for c in cases("tune")] == [c.name for c in cases() if c.half == "tune"]


def test_cli_lists_and_rejects_unknown_cases(capsys: pytest.CaptureFixture[str]) -> None:
    assert synthetic_matrix.main(["--list", "--half", "report"]) == 0
    out = capsys.readouterr().out
    assert all(c.name in out for c in cases("report"))
    assert not any(c.name in out for c in cases("tune"))
    with pytest.raises(SystemExit):
        synthetic_matrix.main(["/tmp/unused", "--only", "no-such-case"])


# ----------------------------------------------------------------------------- build


def _tiny(case: Case, **changes: object) -> Case:
    """A case shrunk to a 1.5 s 160x120 clip (fast to encode), same name and factors."""
    blinks = tuple(t for t in case.spec.blink_times_s if t + 0.2 <= 1.5)
    sp = dataclasses.replace(case.spec, duration_s=1.5, width=160, height=120,
                             blink_times_s=blinks or (0.5,), preset="ultrafast", **changes)
    return dataclasses.replace(case, spec=sp)


def test_build_caches_by_spec_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = [_tiny(c) for c in cases()[:1] + cases()[-1:]]  # a pulse case and a control
    first = build(tmp_path, chosen, workers=2)  # worker processes
    assert [c.name for c, _, _ in first] == [c.name for c in chosen]
    stamps = {}
    for c, path, truth in first:
        assert path == tmp_path / f"{c.name}.mp4" and path.is_file()
        assert truth["file"] == path.name and truth["case"]["half"] == c.half
        assert truth["spec_sha256"] == synthetic_matrix.spec_sha256(c.spec)
        assert json.loads((tmp_path / f"{c.name}.json").read_text()) == truth
        stamps[c.name] = (path.stat().st_mtime_ns, (tmp_path / f"{c.name}.json").stat().st_mtime_ns)
    assert not list(tmp_path.glob(".*tmp*"))

    made: list[str] = []
    real_make = synthetic_matrix.make_clip

    def counting(path: Path, spec: ClipSpec) -> dict:
        made.append(path.name)
        return real_make(path, spec)

    monkeypatch.setattr(synthetic_matrix, "make_clip", counting)
    again = build(tmp_path, chosen, workers=1)
    assert made == []
    assert [t for _, _, t in again] == [t for _, _, t in first]
    for c, path, _ in again:
        assert (path.stat().st_mtime_ns,
                (tmp_path / f"{c.name}.json").stat().st_mtime_ns) == stamps[c.name]
    # A changed spec under the same name is remade; the other clip is not.
    changed = [_tiny(cases()[0], noise_std=2.5), chosen[1]]
    third = build(tmp_path, changed, workers=1)
    assert len(made) == 1 and cases()[0].name in made[0]
    assert third[0][2]["spec"]["noise_std"] == 2.5
    assert third[1][2] == first[1][2]
    # A clip whose json is missing (interrupted run) is remade too.
    (tmp_path / f"{chosen[1].name}.json").unlink()
    build(tmp_path, changed, workers=1)
    assert len(made) == 2
