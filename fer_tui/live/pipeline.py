"""The live loop: frame -> faces -> crops -> model -> smoothed results, as a generator.

Timings per frame, in ms: `capture` (decode, in the capture thread), `detect` (the part of
detection and tracking that the frame waited for), `classify` (crop, preprocess, model,
softmax) and `total` (from the frame being handed over to its result).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import cv2
import numpy as np
import torch

from fer_tui.data.index import CLASSES
from fer_tui.live.boxes import clip_box
from fer_tui.live.capture import FrameGrabber, open_reader
from fer_tui.live.config import LiveConfig
from fer_tui.live.detection import AsyncDetector, Detection, FaceDetector, make_detector
from fer_tui.live.results import FaceResult, FrameResult, make_preview
from fer_tui.live.tracking import FaceTracker


def face_transform(
    meta: dict[str, Any], *, channels_last: bool = False
) -> Callable[[torch.Tensor], torch.Tensor]:
    """uint8 (N, S, S) crops -> model input, exactly as in training (`preprocess.to_input`)."""
    from fer_tui.preprocess import to_input

    size, chans = int(meta["image_size"]), int(meta["in_channels"])

    def transform(faces: torch.Tensor) -> torch.Tensor:
        return to_input(faces, image_size=size, in_channels=chans, channels_last=channels_last)

    return transform


def crop_faces(
    grey: np.ndarray,
    boxes: Sequence[Sequence[float]],
    size: int,
    margin: float = 0.0,
    shift_y: float = 0.0,
    eyes: Sequence[np.ndarray | None] | None = None,
) -> np.ndarray:
    """uint8 (N, size, size) crops of the grey frame at full-resolution x, y, w, h boxes.

    Each crop is the square of side max(w, h) * (1 + 2 * margin) centred on the box, moved down
    by shift_y * h. `eyes`: per face None or its (2, 2) eye centres (the face's right eye, the
    left one, as YuNet gives them), about which the face is turned so that they are level.
    """
    H, W = grey.shape[:2]
    out = np.empty((len(boxes), size, size), np.uint8)
    for i, (x, y, w, h) in enumerate(boxes):
        side = max(w, h) * (1 + 2 * margin)
        cx, cy = x + w / 2, y + h / 2 + shift_y * h
        pair = None if eyes is None else eyes[i]
        if pair is not None:
            (rx, ry), (lx, ly) = pair
            out[i] = _rotated_crop(
                grey, cx, cy, side, np.degrees(np.arctan2(ly - ry, lx - rx)), size
            )
            continue
        bx = clip_box(np.array([cx - side / 2, cy - side / 2, side, side], np.float32), W, H)
        patch = grey[bx[1] : bx[1] + bx[3], bx[0] : bx[0] + bx[2]]
        if patch.size == 0:
            out[i] = 0
            continue
        # INTER_AREA: the proper filter for shrinking a face crop down to 48x48
        out[i] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return out


def _rotated_crop(
    grey: np.ndarray, cx: float, cy: float, side: float, angle: float, size: int
) -> np.ndarray:
    """The square of `side` centred on (cx, cy), turned by `angle` degrees (counter-clockwise
    on screen) and shrunk to size x size: first shrunk (INTER_AREA, as the plain crop), then
    turned, so the small warp does not alias."""
    H, W = grey.shape[:2]
    # room for the square's corners to turn in: half its diagonal each way, and a pixel
    half = side * 0.71 + 1
    x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
    x1, y1 = min(W, int(np.ceil(cx + half))), min(H, int(np.ceil(cy + half)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros((size, size), np.uint8)
    patch = grey[y0:y1, x0:x1]
    f = min(1.0, size / side)
    if f < 1.0:
        pw, ph = max(2, round(patch.shape[1] * f)), max(2, round(patch.shape[0] * f))
        patch = cv2.resize(patch, (pw, ph), interpolation=cv2.INTER_AREA)
        f = pw / (x1 - x0)
    # turn about the centre, scale the rest of the way, then move the centre to the middle
    m = cv2.getRotationMatrix2D(((cx - x0) * f, (cy - y0) * f), angle, size / (side * f))
    m[:, 2] += size / 2 - np.array([(cx - x0) * f, (cy - y0) * f])
    return cv2.warpAffine(
        patch, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


class ClassifyBudget:
    """Which of the faces due for classification a frame classifies: all that fit in
    `budget_ms` at the measured cost of one face (at least one), faces never classified first,
    then those waiting longest; the rest keep their probabilities until their turn. With four
    faces and a model that takes 12 ms a face, each face is classified every fourth frame and
    the frame rate stays that of one face."""

    def __init__(self, budget_ms: float) -> None:
        self.budget_ms = budget_ms
        self.face_ms: float | None = None
        """Moving average of the cost of one face (crop, preprocessing, model), ms."""

    def pick(self, todo: list[int], tracks: Sequence[Any]) -> list[int]:
        if self.budget_ms <= 0 or self.face_ms is None or len(todo) <= 1:
            return todo
        fits = max(1, int(self.budget_ms / self.face_ms))
        if len(todo) <= fits:
            return todo
        waiting = sorted(todo, key=lambda i: (tracks[i].probs is not None, tracks[i].classified_at))
        return sorted(waiting[:fits])

    def spent(self, faces: int, ms: float) -> None:
        per_face = ms / faces
        self.face_ms = per_face if self.face_ms is None else 0.8 * self.face_ms + 0.2 * per_face


def realtime_prediction(
    model: Callable[[torch.Tensor], torch.Tensor],
    transform: Callable[[torch.Tensor], torch.Tensor],
    label_hold_seconds: float,
    device: str | torch.device,
    source: str,
    *,
    image_size: int = 48,
    config: LiveConfig | None = None,
    classes: Sequence[str] = CLASSES,
    realtime: bool | None = None,
    max_frames: int | None = None,
    preview: tuple[int, int] | None = None,
    keep_frames: bool = False,
    detector: FaceDetector | None = None,
) -> Iterator[FrameResult]:
    """Open `source` and return a generator of FrameResult, one per processed frame.

    Args:
        model: maps the transformed batch to logits (a torch module in eval mode, or
            `export.OrtModel` for onnxruntime).
        transform: uint8 (N, S, S) face crops -> model input (`face_transform(meta)`).
        label_hold_seconds: once shown, a face's label stays at least this long, so it does not
            flicker between two close classes.
        device: where the batch goes before `model`.
        source: camera index ("0"), video file, image folder or URL.
        realtime: None = drop frames for cameras/URLs, keep all for files; True = pace a file
            at its frame rate and drop like a camera; False = never drop.
        preview: (w, h): add a small grey copy of each frame to its result.
        keep_frames: keep the BGR frame on each result (for drawing).
        detector: a loaded detector (default: the one `config.detector` names).

    Raises LiveError at once when the source cannot be opened or gives no frames, or the
    detector's model cannot be loaded.
    """
    cfg = config or LiveConfig()
    detector = detector or make_detector(cfg)
    reader = open_reader(source)
    drop = reader.live if realtime is None else bool(realtime)
    pace = reader.fps if (realtime and not reader.live) else None
    return _loop(
        model,
        transform,
        label_hold_seconds,
        torch.device(device),
        reader,
        detector,
        cfg,
        list(classes),
        drop,
        pace,
        max_frames,
        preview,
        keep_frames,
        image_size,
    )


def _small(full: np.ndarray, small_grey: np.ndarray) -> np.ndarray:
    """The frame the detector scans: `small_grey`, or for a colour `full` frame the colour
    frame shrunk the same way."""
    if full.ndim == 2:
        return small_grey
    if full.shape[:2] == small_grey.shape:
        return full
    return cv2.resize(full, small_grey.shape[::-1], interpolation=cv2.INTER_AREA)


def _loop(
    model,
    transform,
    hold,
    device,
    reader,
    detector,
    cfg,
    classes,
    drop,
    pace,
    max_frames,
    preview,
    keep_frames,
    image_size,
) -> Iterator[FrameResult]:
    grabber = FrameGrabber(reader, drop=drop, pace_fps=pace)
    tracker = FaceTracker(cfg, hold)
    worker = AsyncDetector(detector) if cfg.detect_async else None
    budget = ClassifyBudget(cfg.classify_budget_ms)
    recent: deque[float] = deque(maxlen=32)
    n = last_submit = 0
    last_full = -(10**9)

    def around() -> list[np.ndarray] | None:
        """None (scan the whole frame) when due, or when a face is lost or none is tracked; else
        the tracked boxes, to look only near them."""
        nonlocal last_full
        # a face lost near its track may have jumped: look everywhere again
        if (
            cfg.full_detect_every <= 0
            or not tracker.tracks
            or n - last_full >= cfg.full_detect_every
            or any(t.misses for t in tracker.tracks)
        ):
            last_full = n
            return None
        return [t.box.copy() for t in tracker.tracks]

    try:
        while max_frames is None or n < max_frames:
            frame = grabber.get()
            if frame is None:
                break
            t0 = time.perf_counter()
            img = frame.image
            grey = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            H, W = grey.shape
            scale = 1.0
            if cfg.downscale_width and W > cfg.downscale_width:
                scale = cfg.downscale_width / W
                small = cv2.resize(
                    grey,
                    (cfg.downscale_width, max(1, round(H * scale))),
                    interpolation=cv2.INTER_AREA,
                )
            else:
                small = grey
            # the full frame as the detector wants it: in colour for YuNet, else grey
            full = img if detector.colour and img.ndim == 3 else grey
            tracker.follow(small)
            due = n % cfg.detect_every == 0
            haar_ms = None
            if worker is None or n == 0:
                # the first frame detects in line: nothing to track yet
                if due or n == 0:
                    start = time.perf_counter()
                    found, points = detector.find(_small(full, small), scale, around(), full)
                    haar_ms = (time.perf_counter() - start) * 1000
                    tracker.update(Detection(found, haar_ms, small, points=points), small)
            else:
                done = worker.poll()
                if done is not None:
                    tracker.update(done, small)
                    haar_ms = done.ms
                if n - last_submit >= cfg.detect_every and not worker.busy:
                    worker.submit(
                        small,
                        scale,
                        tracker.snapshot(),
                        around(),
                        image=_small(full, small),
                        full=full,
                    )
                    last_submit = n
            t1 = time.perf_counter()

            live_tracks = [t for t in tracker.tracks if t.misses == 0 or t.probs is not None]
            boxes = [clip_box(t.box / scale, W, H) for t in live_tracks]
            # landmarks in the full frame, where the detector gave them
            points = [
                None if t.points is None else (t.points + t.box[:2]) / scale for t in live_tracks
            ]
            todo = [
                i
                for i, t in enumerate(live_tracks)
                if t.probs is None or n - t.classified_at >= cfg.classify_every
            ]
            todo = [i for i in todo if boxes[i][2] > 0 and boxes[i][3] > 0]
            todo = budget.pick(todo, live_tracks)
            now = frame.media_s if frame.media_s is not None else time.monotonic()
            if todo:
                crops = crop_faces(
                    grey,
                    [live_tracks[i].box / scale for i in todo],
                    image_size,
                    cfg.crop_margin + detector.framing[0],
                    cfg.crop_shift_y + detector.framing[1],
                    [points[i][:2] if cfg.align and points[i] is not None else None for i in todo],
                )
                with torch.inference_mode():
                    x = transform(torch.from_numpy(crops)).to(device)
                    probs = model(x).float().softmax(1).cpu().numpy()
                for j, i in enumerate(todo):
                    tracker.smooth(live_tracks[i], probs[j], now)
                    live_tracks[i].classified_at = n
            t2 = time.perf_counter()
            if todo:
                budget.spent(len(todo), (t2 - t1) * 1000)

            faces = [
                FaceResult(
                    box=boxes[i],
                    track_id=t.track_id,
                    label=classes[t.label],
                    confidence=float(t.probs[t.label]),
                    probs=t.probs,
                    probs_raw=t.probs_raw,
                    landmarks=points[i],
                    classified=t.classified_at == n,
                )
                for i, t in enumerate(live_tracks)
                if t.probs is not None
            ]
            recent.append(time.perf_counter())
            fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 else 0.0
            result = FrameResult(
                index=frame.index,
                timestamp=frame.timestamp,
                faces=faces,
                timings={
                    "capture": frame.capture_ms,
                    "detect": (t1 - t0) * 1000,
                    "classify": (t2 - t1) * 1000,
                    "total": (t2 - t0) * 1000,
                },
                frame_size=(W, H),
                media_s=frame.media_s,
                fps=fps,
                dropped=grabber.dropped,
                haar_ms=haar_ms,
                detector=detector.name,
                total=reader.length,
                preview=make_preview(grey, *preview) if preview else None,
                frame=img if keep_frames else None,
            )
            n += 1
            yield result
    finally:
        if worker is not None:
            worker.close()
        grabber.close()
