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
from fer_tui.live.detection import AsyncDetector, Detection, FaceDetector
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
    grey: np.ndarray, boxes: Sequence[tuple[int, int, int, int]], size: int, margin: float = 0.0
) -> np.ndarray:
    """uint8 (N, size, size) crops of the grey frame at full-resolution x, y, w, h boxes."""
    H, W = grey.shape[:2]
    out = np.empty((len(boxes), size, size), np.uint8)
    for i, (x, y, w, h) in enumerate(boxes):
        m = margin * max(w, h)
        bx = clip_box(np.array([x - m, y - m, w + 2 * m, h + 2 * m], np.float32), W, H)
        patch = grey[bx[1] : bx[1] + bx[3], bx[0] : bx[0] + bx[2]]
        # INTER_AREA: the proper filter for shrinking a face crop down to 48x48
        out[i] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return out


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

    Raises LiveError at once when the source cannot be opened or gives no frames.
    """
    cfg = config or LiveConfig()
    reader = open_reader(source)
    detector = FaceDetector(cfg)
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
            tracker.follow(small)
            due = n % cfg.detect_every == 0
            haar_ms = None
            if worker is None or n == 0:
                # the first frame detects in line: nothing to track yet
                if due or n == 0:
                    start = time.perf_counter()
                    boxes = detector.detect(small, scale, around())
                    haar_ms = (time.perf_counter() - start) * 1000
                    tracker.update(Detection(boxes, haar_ms, small), small)
            else:
                done = worker.poll()
                if done is not None:
                    tracker.update(done, small)
                    haar_ms = done.ms
                if (
                    n - last_submit >= cfg.detect_every
                    and not worker.busy
                    and worker.submit(small, scale, tracker.snapshot(), around())
                ):
                    last_submit = n
            t1 = time.perf_counter()

            live_tracks = [t for t in tracker.tracks if t.misses == 0 or t.probs is not None]
            boxes = [clip_box(t.box / scale, W, H) for t in live_tracks]
            todo = [
                i
                for i, t in enumerate(live_tracks)
                if t.probs is None or n - t.classified_at >= cfg.classify_every
            ]
            todo = [i for i in todo if boxes[i][2] > 0 and boxes[i][3] > 0]
            now = frame.media_s if frame.media_s is not None else time.monotonic()
            if todo:
                crops = crop_faces(grey, [boxes[i] for i in todo], image_size, cfg.crop_margin)
                with torch.inference_mode():
                    x = transform(torch.from_numpy(crops)).to(device)
                    probs = model(x).float().softmax(1).cpu().numpy()
                for j, i in enumerate(todo):
                    tracker.smooth(live_tracks[i], probs[j], now)
                    live_tracks[i].classified_at = n
            t2 = time.perf_counter()

            faces = [
                FaceResult(
                    box=boxes[i],
                    track_id=t.track_id,
                    label=classes[t.label],
                    confidence=float(t.probs[t.label]),
                    probs=t.probs,
                    probs_raw=t.probs_raw,
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
