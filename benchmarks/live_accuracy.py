"""Live accuracy: labelled faces rendered into frames, through the pipeline `fer-tui live` runs.

    python3 benchmarks/live_accuracy.py --data ~/fer-data [--split test|holdout] [--faces 300]
        [--conditions size,rotation,...] [--detector haar] [--model PATH] [--json OUT.json]
        [--set KEY=VALUE ...] [--sweep KEY=V1,V2 ...]
    python3 benchmarks/live_accuracy.py --smoke      # synthetic faces, a few frames (CI)

Each condition renders `--faces` FER-2013 faces (the same faces in every condition: 48x48,
upscaled to the condition's size and blended into the frame with a soft edge) into 640x480 grey
frames, writes them to a folder, and runs that folder through `realtime_prediction` (the capture
thread, the detector, the crop, the preprocessing and the model of `fer-tui live`) with tracking
and smoothing off, so every frame stands alone: detection on every frame, in line, over the whole
frame, no moving average, no label hold, no track surviving a frame without its face.

Per condition: the share of faces found (a detected box whose centre lies in the face's true box
and which contains the true box's centre), the accuracy over all faces (a missed face counts as
wrong), the accuracy over the faces found, the same model's accuracy on the same 48x48 faces
handed to it directly (`predict_proba`), the ratio of the end-to-end accuracy to that, the boxes
per frame that are no face, frames per second and the latency (detection + classification) p50
and p95 of frames that each run a full detection. A last line times the live defaults
themselves (tracking, detection every few frames in the background) on a face moving slowly.

The reported figures use test faces; anything tuned with `--sweep` is tuned on `--split holdout`
(the 5% of train that a run with a holdout never trains on).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

# as `fer-tui live` does (see commands/live.py), before torch loads OpenMP
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_tui.backends import load_model, pick_backend  # noqa: E402
from fer_tui.checkpoints import find_checkpoint  # noqa: E402
from fer_tui.live.config import DETECTORS, LiveConfig  # noqa: E402
from fer_tui.live.detection import make_detector  # noqa: E402
from fer_tui.live.pipeline import face_transform, realtime_prediction  # noqa: E402
from fer_tui.models import predict_proba  # noqa: E402

FRAME_W, FRAME_H = 640, 480
PHOTOS = ("coffee", "chelsea", "rocket", "coins", "brick", "gravel")
"""scikit-image's sample photos without a human face in them, grey, as backgrounds."""
DEFAULT_MODEL = find_checkpoint(Path(__file__).resolve().parents[1] / "checkpoints")
"""The live view's default model (what `fer-tui live` runs without --checkpoint)."""


@dataclass(frozen=True)
class Condition:
    """How the faces of one condition are rendered into their frames."""

    size: int = 192
    """Side of the pasted face, pixels (the 48x48 face upscaled)."""
    background: str = "grey"
    """grey: flat 128; photo: one of PHOTOS, a random 640x480 cut."""
    angle: float = 0.0
    """In-plane rotation of the face, degrees (counter-clockwise)."""
    light: str = ""
    """dark, bright, low-contrast, gamma-2 or gamma-0.5, applied to the whole frame."""
    blur: float = 0.0
    """Gaussian blur of the whole frame, sigma in pixels."""
    noise: float = 0.0
    """Gaussian sensor noise, standard deviation in grey levels."""
    jpeg: int = 0
    """Write the frame as a JPEG of this quality (0: lossless)."""
    per_frame: int = 1
    """Faces per frame (2, 4, 6: one in each cell of a 2x1, 2x2, 3x2 grid)."""
    edge: float = -1.0
    """>= 0: the face touches a random side of the frame, with this share of it outside."""


CONDITIONS: dict[str, Condition] = {
    **{f"size-{s}": Condition(size=s) for s in (64, 96, 144, 192, 288)},
    "photo-96": Condition(size=96, background="photo"),
    "photo-192": Condition(background="photo"),
    **{f"rot{a:+d}": Condition(angle=float(a)) for a in (-30, -15, 15, 30)},
    **{
        light: Condition(background="photo", light=light)
        for light in ("dark", "bright", "low-contrast", "gamma-2", "gamma-0.5")
    },
    "blur-2": Condition(background="photo", blur=2.0),
    "blur-4": Condition(background="photo", blur=4.0),
    "noise-10": Condition(background="photo", noise=10.0),
    "jpeg-30": Condition(background="photo", jpeg=30),
    "jpeg-10": Condition(background="photo", jpeg=10),
    **{f"faces-{n}": Condition(size=144, background="photo", per_frame=n) for n in (1, 2, 4, 6)},
    "edge": Condition(background="photo", edge=0.0),
    "edge-cut": Condition(background="photo", edge=0.25),
}
GROUPS: dict[str, list[str]] = {
    "size": [f"size-{s}" for s in (64, 96, 144, 192, 288)],
    "background": ["size-192", "photo-192", "photo-96"],
    "rotation": ["size-192", "rot-30", "rot-15", "rot+15", "rot+30"],
    "light": ["photo-192", "dark", "bright", "low-contrast", "gamma-2", "gamma-0.5"],
    "quality": ["photo-192", "blur-2", "blur-4", "noise-10", "jpeg-30", "jpeg-10"],
    "faces": ["faces-1", "faces-2", "faces-4", "faces-6"],
    "edge": ["photo-192", "edge", "edge-cut"],
    "tune": ["size-96", "size-192", "photo-192", "rot-30", "rot+30"],
    "smoke": ["size-192", "rot+15", "faces-2"],
}


def pick_conditions(spec: str) -> list[str]:
    """Condition and group names, comma-separated ("all" = every condition), in order, once."""
    names: list[str] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if part == "all":
            found = list(CONDITIONS)
        elif part in GROUPS:
            found = GROUPS[part]
        elif part in CONDITIONS:
            found = [part]
        else:
            choices = ", ".join([*GROUPS, *CONDITIONS])
            raise SystemExit(f"unknown condition '{part}': use all or some of {choices}")
        names += [n for n in found if n not in names]
    return names


# --- rendering ----------------------------------------------------------------------------------


def soft_mask(side: int, feather: float, pad: int = 0) -> np.ndarray:
    """(side + 2 pad)^2 float32 alpha: 1 over the face, falling to 0 over `feather` of its side
    inside its edges (0 = a hard square), or over the `pad` around it."""
    full = side + 2 * pad
    if feather <= 0 and pad == 0:
        return np.ones((full, full), np.float32)
    idx = np.arange(full) + 0.5
    dist = np.minimum(idx, full - idx)  # to the patch's edge
    ramp = dist / pad if pad else dist / (feather * side)
    ramp = np.clip(ramp, 0.0, 1.0).astype(np.float32)
    return np.minimum(ramp[:, None], ramp[None, :])


def backgrounds() -> list[np.ndarray]:
    """The PHOTOS as grey uint8 images at least 640x480."""
    import skimage.data

    out = []
    for name in PHOTOS:
        img = getattr(skimage.data, name)()
        if img.ndim == 3:
            img = cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2GRAY)
        scale = max(FRAME_W / img.shape[1], FRAME_H / img.shape[0])
        if scale > 1:
            size = (round(img.shape[1] * scale) + 1, round(img.shape[0] * scale) + 1)
            img = cv2.resize(img, size, interpolation=cv2.INTER_CUBIC)
        out.append(img)
    return out


def background(cond: Condition, photos: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    if cond.background == "grey":
        return np.full((FRAME_H, FRAME_W), 128, np.float32)
    photo = photos[rng.integers(len(photos))]
    y = rng.integers(photo.shape[0] - FRAME_H + 1)
    x = rng.integers(photo.shape[1] - FRAME_W + 1)
    return photo[y : y + FRAME_H, x : x + FRAME_W].astype(np.float32)


def paste(
    frame: np.ndarray,
    face: np.ndarray,
    cx: float,
    cy: float,
    side: int,
    angle: float,
    feather: float,
    pad: float = 0.0,
) -> None:
    """Blend the 48x48 `face`, upscaled to `side` and rotated by `angle`, centred at cx, cy.

    `pad` > 0 extends the face by its own mirror image by that share of its side on every side,
    fading out over it: a rough head and hair around the tight crop, for the detector's sake.
    """
    up = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    margin = round(pad * side)
    if margin:
        up = cv2.copyMakeBorder(up, margin, margin, margin, margin, cv2.BORDER_REFLECT_101)
    alpha = soft_mask(side, feather, margin)
    full = side + 2 * margin
    # the patch's canvas holds the rotated square whole
    canvas = int(np.ceil(full * 1.5)) | 1
    M = cv2.getRotationMatrix2D((full / 2, full / 2), angle, 1.0)
    M[:, 2] += (canvas - full) / 2
    up = cv2.warpAffine(up, M, (canvas, canvas), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(alpha, M, (canvas, canvas), flags=cv2.INTER_LINEAR)
    x0, y0 = round(cx - canvas / 2), round(cy - canvas / 2)
    fx0, fy0 = max(0, x0), max(0, y0)
    fx1, fy1 = min(frame.shape[1], x0 + canvas), min(frame.shape[0], y0 + canvas)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    a = alpha[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    p = up[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    region = frame[fy0:fy1, fx0:fx1]
    region[:] = a * p + (1 - a) * region


def place(cond: Condition, slot: int, rng: np.random.Generator) -> tuple[float, float]:
    """Centre of the `slot`-th face of a frame."""
    s = cond.size
    if cond.edge >= 0:
        side = rng.integers(4)
        off = s / 2 - cond.edge * s  # centre's distance from the side it touches
        along_x = rng.uniform(s / 2, FRAME_W - s / 2)
        along_y = rng.uniform(s / 2, FRAME_H - s / 2)
        return [
            (off, along_y),
            (FRAME_W - off, along_y),
            (along_x, off),
            (along_x, FRAME_H - off),
        ][side]
    cols, rows = {1: (1, 1), 2: (2, 1), 3: (3, 1), 4: (2, 2)}.get(cond.per_frame, (3, 2))
    cw, ch = FRAME_W / cols, FRAME_H / rows
    col, row = slot % cols, slot // cols
    # anywhere in its cell (the whole frame for one face) with the face inside the frame
    lo_x, hi_x = col * cw + s / 2, (col + 1) * cw - s / 2
    lo_y, hi_y = row * ch + s / 2, (row + 1) * ch - s / 2
    cx = rng.uniform(lo_x, hi_x) if hi_x > lo_x else (col + 0.5) * cw
    cy = rng.uniform(lo_y, hi_y) if hi_y > lo_y else (row + 0.5) * ch
    return cx, cy


def finish(frame: np.ndarray, cond: Condition, rng: np.random.Generator) -> np.ndarray:
    """Lighting, blur and noise of the whole frame, as a camera would add them; uint8."""
    f = frame
    if cond.light == "dark":
        f = f * 0.3
    elif cond.light == "bright":
        f = 255 - (255 - f) * 0.35
    elif cond.light == "low-contrast":
        f = 128 + (f - 128) * 0.3
    elif cond.light.startswith("gamma-"):
        f = 255 * (np.clip(f, 0, 255) / 255) ** float(cond.light[6:])
    elif cond.light:
        raise ValueError(f"unknown lighting {cond.light}")
    if cond.blur > 0:
        f = cv2.GaussianBlur(f, (0, 0), cond.blur)
    if cond.noise > 0:
        f = f + rng.normal(0, cond.noise, f.shape)
    return np.clip(np.round(f), 0, 255).astype(np.uint8)


@dataclass
class Rendered:
    folder: Path
    truths: list[list[tuple[np.ndarray, int]]]
    """Per frame: (true box x, y, w, h clipped to the frame, face row)."""


def render(
    name: str,
    cond: Condition,
    faces: np.ndarray,
    out: Path,
    photos: list[np.ndarray],
    feather: float,
    pad: float,
    seed: int,
) -> Rendered:
    """Every face of `faces` into frames under out/name, in frames of `cond.per_frame`."""
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, sum(name.encode())])
    truths = []
    for i, start in enumerate(range(0, len(faces), cond.per_frame)):
        frame = background(cond, photos, rng)
        truth = []
        for slot, row in enumerate(range(start, min(start + cond.per_frame, len(faces)))):
            cx, cy = place(cond, slot, rng)
            paste(frame, faces[row], cx, cy, cond.size, cond.angle, feather, pad)
            x0, y0 = max(0.0, cx - cond.size / 2), max(0.0, cy - cond.size / 2)
            x1, y1 = min(FRAME_W, cx + cond.size / 2), min(FRAME_H, cy + cond.size / 2)
            truth.append((np.array([x0, y0, x1 - x0, y1 - y0], np.float32), row))
        img = finish(frame, cond, rng)
        if cond.jpeg:
            cv2.imwrite(str(folder / f"{i:06d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, cond.jpeg])
        else:
            cv2.imwrite(str(folder / f"{i:06d}.bmp"), img)
        truths.append(truth)
    return Rendered(folder, truths)


# --- measuring ----------------------------------------------------------------------------------


def independent(cfg: LiveConfig) -> LiveConfig:
    """`cfg` with tracking and smoothing off: each frame is detected, cropped and classified on
    its own, so a face of one frame cannot leak into the next."""
    return replace(
        cfg,
        detect_every=1,
        full_detect_every=0,
        detect_async=False,
        ema_alpha=1.0,
        max_misses=0,
        classify_every=1,
        classify_budget_ms=0.0,
    )


def contains(box: Sequence[float], x: float, y: float) -> bool:
    return box[0] <= x <= box[0] + box[2] and box[1] <= y <= box[1] + box[3]


def matches(det: Sequence[float], true: np.ndarray) -> bool:
    """A detection finds a face when each box contains the other's centre."""
    return contains(true, det[0] + det[2] / 2, det[1] + det[3] / 2) and contains(
        det, true[0] + true[2] / 2, true[1] + true[3] / 2
    )


def measure(
    rendered: Rendered,
    labels: np.ndarray,
    direct: np.ndarray,
    model: Any,
    transform: Any,
    device: torch.device,
    meta: dict[str, Any],
    cfg: LiveConfig,
) -> dict[str, Any]:
    """Run the rendered frames through the live pipeline and score them."""
    n_faces = sum(len(t) for t in rendered.truths)
    found = right = extra = 0
    rows_seen: list[int] = []
    latency: list[float] = []
    detect: list[float] = []
    stamps: list[float] = []
    geometry: list[tuple[float, float, float, float]] = []
    gen = realtime_prediction(
        model,
        transform,
        0.0,
        device,
        str(rendered.folder),
        image_size=int(meta["image_size"]),
        config=independent(cfg),
        classes=meta["classes"],
        realtime=False,
        detector=make_detector(independent(cfg)),
    )
    cpu0 = time.process_time()
    try:
        for result in gen:
            stamps.append(time.perf_counter())
            latency.append(result.timings["total"])
            detect.append(result.timings["detect"])
            used: set[int] = set()
            for box, row in rendered.truths[result.index]:
                best, best_area = None, 0.0
                for j, f in enumerate(result.faces):
                    if j not in used and matches(f.box, box):
                        # of two boxes on one face, the one closest in size
                        area = min(f.box[2] * f.box[3], box[2] * box[3]) / max(
                            f.box[2] * f.box[3], box[2] * box[3], 1e-9
                        )
                        if area > best_area:
                            best, best_area = j, area
                if best is None:
                    continue
                used.add(best)
                face = result.faces[best]
                found += 1
                rows_seen.append(row)
                side = max(box[2], box[3], 1e-9)
                x, y, w, h = face.box
                geometry.append(
                    (
                        (x + w / 2 - box[0] - box[2] / 2) / side,
                        (y + h / 2 - box[1] - box[3] / 2) / side,
                        w / side,
                        h / side,
                    )
                )
                right += int(np.argmax(face.probs_raw)) == int(labels[row])
            extra += len(result.faces) - len(used)
    finally:
        gen.close()
    cpu = time.process_time() - cpu0
    frames = len(rendered.truths)
    seen = len(stamps)
    fps = (seen - 1) / (stamps[-1] - stamps[0]) if seen > 1 and stamps[-1] > stamps[0] else 0.0
    rows = sorted({r for t in rendered.truths for _, r in t})
    direct_acc = float(np.mean(direct[rows] == labels[rows])) if rows else float("nan")
    all_acc = right / n_faces if n_faces else float("nan")
    return {
        "frames": frames,
        "faces": n_faces,
        "found": found / n_faces if n_faces else float("nan"),
        "acc_all": all_acc,
        "acc_found": right / found if found else float("nan"),
        "acc_direct": direct_acc,
        "acc_direct_found": float(np.mean(direct[rows_seen] == labels[rows_seen]))
        if rows_seen
        else float("nan"),
        "ratio": all_acc / direct_acc if direct_acc else float("nan"),
        "extra_per_frame": extra / max(frames, 1),
        # where the detector's boxes sit on the faces (medians, in face sides): the crop framing
        # that gives the model the faces as FER-2013 framed them follows from these
        **{
            key: float(np.median([g[k] for g in geometry])) if geometry else float("nan")
            for k, key in enumerate(("box_dx", "box_dy", "box_w", "box_h"))
        },
        "fps": fps,
        "latency_p50_ms": float(np.percentile(latency, 50)) if latency else float("nan"),
        "latency_p95_ms": float(np.percentile(latency, 95)) if latency else float("nan"),
        "detect_ms": float(np.mean(detect)) if detect else float("nan"),
        "cpu_ms": 1000 * cpu / max(len(stamps), 1),
    }


def live_mode(
    face: np.ndarray,
    out: Path,
    photos: list[np.ndarray],
    model: Any,
    transform: Any,
    device: torch.device,
    meta: dict[str, Any],
    cfg: LiveConfig,
    frames: int,
    feather: float,
) -> dict[str, Any]:
    """Frames per second and latency of `cfg` as it is (tracking, detection every few frames in
    the background) on one 192 px face on a photo, moving 2 px a frame."""
    folder = out / "live-mode"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    base = background(Condition(background="photo"), photos, rng)
    for i in range(frames):
        frame = base.copy()
        paste(frame, face, 120 + (2 * i) % 400, 240, 192, 0.0, feather)
        cv2.imwrite(str(folder / f"{i:06d}.bmp"), finish(frame, Condition(), rng))
    gen = realtime_prediction(
        model,
        transform,
        0.5,
        device,
        str(folder),
        image_size=int(meta["image_size"]),
        config=cfg,
        classes=meta["classes"],
        realtime=False,
        detector=make_detector(cfg),
    )
    stamps, latency, with_face = [], [], 0
    cpu0 = time.process_time()
    try:
        for result in gen:
            stamps.append(time.perf_counter())
            latency.append(result.timings["total"])
            with_face += bool(result.faces)
    finally:
        gen.close()
    cpu = time.process_time() - cpu0
    warm = min(10, len(stamps) // 4)
    stamps, latency = stamps[warm:], latency[warm:]
    fps = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    return {
        "frames": frames,
        "with_face": with_face,
        "fps": fps,
        "cpu_ms": 1000 * cpu / max(frames, 1),
        "latency_p50_ms": float(np.percentile(latency, 50)) if latency else float("nan"),
        "latency_p95_ms": float(np.percentile(latency, 95)) if latency else float("nan"),
    }


# --- faces --------------------------------------------------------------------------------------


def holdout_cut(labels: np.ndarray) -> np.ndarray:
    """Rows of train that runs with a holdout never train on (the 5% cut every run shares)."""
    from fer_tui.data.holdout import holdout_rows

    return holdout_rows(labels, 0.05, None)[1]


def real_faces(data: str | None, split: str) -> tuple[np.ndarray, np.ndarray]:
    from fer_tui.data.load import load_dataset

    ds = load_dataset(data)
    if split == "test":
        test = ds.splits["test"]
        return test.images, test.labels
    train = ds.splits["train"]
    rows = holdout_cut(train.labels)
    return train.images[rows], train.labels[rows]


def synthetic_faces(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` 48x48 faces for the smoke run: the face of scikit-image's astronaut photo, cut the
    way the Haar cascade frames it, shifted, scaled and brightened a little, with random labels
    (no dataset needed; the labels mean nothing, the fields and the detection do)."""
    from skimage.data import astronaut

    from fer_tui.live.detection import CASCADE

    grey = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2GRAY)
    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, CASCADE))
    boxes = cascade.detectMultiScale(grey, 1.1, 5, minSize=(60, 60))
    x, y, w, h = max(boxes, key=lambda b: b[2] * b[3]) if len(boxes) else (170, 60, 110, 110)
    rng = np.random.default_rng(seed)
    faces = np.empty((n, 48, 48), np.uint8)
    for i in range(n):
        dx, dy = rng.integers(-4, 5, 2)
        grow = rng.uniform(-0.05, 0.05) * w
        x0, y0 = int(x + dx - grow / 2), int(y + dy - grow / 2)
        side = int(w + grow)
        crop = grey[max(0, y0) : y0 + side, max(0, x0) : x0 + side].astype(np.float32)
        crop = crop * rng.uniform(0.85, 1.15)
        faces[i] = cv2.resize(np.clip(crop, 0, 255).astype(np.uint8), (48, 48), cv2.INTER_AREA)
    return faces, rng.integers(0, 7, n)


# --- the command --------------------------------------------------------------------------------


def parse_value(cfg: LiveConfig, key: str, text: str) -> Any:
    types = {f.name: type(getattr(cfg, f.name)) for f in fields(cfg)}
    if key not in types:
        raise SystemExit(f"LiveConfig has no field '{key}' (fields: {', '.join(types)})")
    kind = types[key]
    if kind is bool:
        return text.lower() in ("1", "true", "yes", "on")
    return kind(text)


def configs(base: LiveConfig, sweeps: list[str]) -> list[LiveConfig]:
    """Every combination of the `KEY=V1,V2,...` sweeps applied to `base`."""
    axes = []
    for spec in sweeps:
        key, _, values = spec.partition("=")
        axes.append([(key, parse_value(base, key, v)) for v in values.split(",")])
    return [replace(base, **dict(combo)) for combo in itertools.product(*axes)] or [base]


def changed(cfg: LiveConfig, base: LiveConfig) -> str:
    diff = [
        f"{f.name}={getattr(cfg, f.name)}"
        for f in fields(cfg)
        if getattr(cfg, f.name) != getattr(base, f.name)
    ]
    return " ".join(diff) or "defaults"


def pct(v: float) -> str:
    return "   -" if v != v else f"{100 * v:5.1f}"


COLUMNS = (
    ("condition", None),
    ("faces", "faces"),
    ("found %", "found"),
    ("acc all %", "acc_all"),
    ("acc found %", "acc_found"),
    ("direct %", "acc_direct"),
    ("direct found %", "acc_direct_found"),
    ("all / direct", "ratio"),
    ("extra / frame", "extra_per_frame"),
    ("box w / face", "box_w"),
    ("box h / face", "box_h"),
    ("box dy / face", "box_dy"),
    ("fps", "fps"),
    ("cpu ms / frame", "cpu_ms"),
    ("p50 ms", "latency_p50_ms"),
    ("p95 ms", "latency_p95_ms"),
)


def cell(key: str, value: Any) -> str:
    if key == "faces":
        return str(value)
    if value != value:  # NaN: nothing to measure (no face found)
        return "-"
    if key in ("found", "acc_all", "acc_found", "acc_direct", "acc_direct_found"):
        return f"{100 * value:.1f}"
    if key in ("ratio", "extra_per_frame", "box_w", "box_h", "box_dy"):
        return f"{value:.2f}"
    return f"{value:.1f}"


def print_table(rows: dict[str, dict[str, Any]]) -> None:
    """A Markdown table: readable in a terminal, and pasted as it is into the docs."""
    print("| " + " | ".join(h for h, _ in COLUMNS) + " |")
    print("|---" + "|---:" * (len(COLUMNS) - 1) + "|")
    for name, r in rows.items():
        cells = [name] + [cell(k, r[k]) for _, k in COLUMNS[1:] if k is not None]
        print("| " + " | ".join(cells) + " |")


def summary(rows: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Means over the conditions (each condition weighs the same)."""
    keys = ("found", "acc_all", "acc_found", "ratio", "fps", "cpu_ms")
    return {k: float(np.nanmean([r[k] for r in rows.values()])) for k in keys}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, load {load:.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="FER-2013 folder/archive (default: as fer-tui)")
    ap.add_argument("--split", choices=("test", "holdout"), default="test")
    ap.add_argument("--faces", type=int, default=None, help="faces per condition (300; smoke 4)")
    ap.add_argument("--conditions", default="all", help="names or groups, comma-separated")
    ap.add_argument(
        "--detector", choices=DETECTORS, default=None, help="default: LiveConfig's default"
    )
    ap.add_argument("--model", type=Path, default=None, help="default: the live default model")
    ap.add_argument("--backend", default="auto", help="auto, torch or onnxruntime")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--feather", type=float, default=0.0, help="soft edge inside the face, share of its side"
    )
    ap.add_argument(
        "--pad", type=float, default=0.25, help="mirror the face around itself, share of its side"
    )
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2")
    ap.add_argument(
        "--live-frames", type=int, default=None, help="live-mode timing (150; smoke 12; 0: none)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--smoke", action="store_true", help="synthetic faces, a few frames")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    if args.smoke:
        n_faces, live_frames = args.faces or 4, 12 if args.live_frames is None else args.live_frames
        faces, labels = synthetic_faces(n_faces, args.seed)
        if args.conditions == "all":
            args.conditions = "smoke"
        source = "synthetic"
    else:
        n_faces, live_frames = args.faces or 300, args.live_frames
        live_frames = 150 if live_frames is None else live_frames
        faces, labels = real_faces(args.data, args.split)
        source = f"FER-2013 {args.split}"
    order = np.random.default_rng(args.seed).permutation(len(faces))[:n_faces]
    faces, labels = faces[order], labels[order]
    names = pick_conditions(args.conditions)

    base = LiveConfig()
    for spec in args.set:
        key, _, value = spec.partition("=")
        base = replace(base, **{key: parse_value(base, key, value)})
    if args.detector is not None:
        base = replace(base, detector=args.detector)

    ckpt = args.model or DEFAULT_MODEL
    if ckpt is None:
        sys.exit("live_accuracy: no shipped model in checkpoints/; pass --model PATH")
    backend = pick_backend(args.backend, "cpu", ckpt)
    model, meta, device = load_model(
        ckpt, backend=backend, device="cpu", threads=args.threads, channels_last=True
    )
    transform = face_transform(meta, channels_last=backend == "torch")
    direct = predict_proba(model, meta, faces, device=device).argmax(1)
    print(
        f"{source}: {len(faces)} faces per condition, direct accuracy "
        f"{100 * np.mean(direct == labels):.1f}%; {ckpt.name} ({backend}, {args.threads} "
        f"threads); {machine()}",
        file=sys.stderr,
    )

    photos = backgrounds()
    report: dict[str, Any] = {
        "source": source,
        "split": args.split if not args.smoke else "synthetic",
        "faces_per_condition": len(faces),
        "model": str(ckpt),
        "backend": backend,
        "machine": machine(),
        "feather": args.feather,
        "pad": args.pad,
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="fer-live-acc-") as tmp:
        out = Path(tmp)
        rendered = {
            n: render(n, CONDITIONS[n], faces, out, photos, args.feather, args.pad, args.seed)
            for n in names
        }
        for cfg in configs(base, args.sweep):
            rows = {
                n: measure(r, labels, direct, model, transform, device, meta, cfg)
                for n, r in rendered.items()
            }
            live = (
                live_mode(
                    faces[0],
                    out,
                    photos,
                    model,
                    transform,
                    device,
                    meta,
                    cfg,
                    live_frames,
                    args.feather,
                )
                if live_frames
                else None
            )
            print(f"\nconfig: {changed(cfg, LiveConfig())}")
            print_table(rows)
            mean = summary(rows)
            print(
                f"mean over conditions: found {pct(mean['found'])}%, acc {pct(mean['acc_all'])}%, "
                f"ratio {mean['ratio']:.3f}, fps {mean['fps']:.1f}, "
                f"cpu {mean['cpu_ms']:.1f} ms/frame "
                "(every frame detected)"
            )
            if live is not None:
                print(
                    f"live mode (tracking as configured): {live['fps']:.1f} fps, "
                    f"{live['cpu_ms']:.1f} cpu ms/frame, latency p50 "
                    f"{live['latency_p50_ms']:.1f} ms, p95 {live['latency_p95_ms']:.1f} ms, "
                    f"{live['with_face']}/{live['frames']} frames with a face"
                )
            report["runs"].append(
                {"config": asdict(cfg), "conditions": rows, "mean": mean, "live_mode": live}
            )
            sys.stdout.flush()
            if args.json:  # after every config: a long sweep that is stopped keeps what it did
                Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
