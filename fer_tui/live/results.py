"""What the pipeline gives per frame, and the JSON record `fer-tui live` writes of it."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from fer_tui.data.index import CLASSES


@dataclass
class FaceResult:
    box: tuple[int, int, int, int]
    """x, y, w, h in pixels of the full frame."""
    track_id: int
    label: str
    """The label shown: the smoothed argmax, held for `label_hold_seconds` once shown."""
    confidence: float
    """Smoothed probability of `label`."""
    probs: np.ndarray
    """(7,) smoothed probabilities, CLASSES order."""
    probs_raw: np.ndarray
    """(7,) this frame's probabilities (the last classification when it was skipped)."""
    landmarks: np.ndarray | None = None
    """(5, 2) x, y in pixels of the full frame: the face's right eye, left eye, nose tip, right
    and left mouth corner (YuNet); None for Haar."""
    classified: bool = True
    """Whether this frame classified the face; False: it kept the probabilities of an earlier
    frame (`classify_every`, or `classify_budget_ms` with more faces than fit in a frame)."""


@dataclass
class FrameResult:
    index: int
    timestamp: float
    """Unix time at which the frame was captured."""
    faces: list[FaceResult]
    timings: dict[str, float]
    """Stage costs of this frame, ms: capture, detect, classify, total."""
    frame_size: tuple[int, int] = (0, 0)
    """Width, height of the frame."""
    media_s: float | None = None
    """Position in a video file, seconds; None for live sources."""
    fps: float = 0.0
    """Frames delivered per second over the last second or so."""
    dropped: int = 0
    """Frames the capture thread dropped so far (live sources only)."""
    total: int | None = None
    """Frames in the source when known (video files, image folders), for progress bars."""
    haar_ms: float | None = None
    """Cost of the detection (Haar or YuNet) whose faces this frame took in (it may have run
    in the background thread during earlier frames); None when no detection finished."""
    detector: str = ""
    """The face detector: "haar" or "yunet"."""
    preview: dict[str, Any] | None = None
    """A small grey copy of the frame when asked for: {"w", "h", "data": base64 of w*h bytes}."""
    frame: np.ndarray | None = field(default=None, repr=False)
    """The BGR frame itself when asked for (the OpenCV window draws on it)."""


def to_record(result: FrameResult, classes: Sequence[str] = CLASSES) -> dict[str, Any]:
    """The JSON-ready record written per frame by `fer-tui live`."""
    rec: dict[str, Any] = {
        "v": 1,
        "frame": result.index,
        "timestamp": round(result.timestamp, 4),
        "media_s": None if result.media_s is None else round(result.media_s, 4),
        "frame_size": list(result.frame_size),
        "fps": round(result.fps, 2),
        "dropped": result.dropped,
        "haar_ms": None if result.haar_ms is None else round(result.haar_ms, 3),
        "detector": result.detector,
        "faces": [
            {
                "track_id": f.track_id,
                "box": [int(v) for v in f.box],
                "label": f.label,
                "confidence": round(float(f.confidence), 6),
                "probs": {c: round(float(p), 6) for c, p in zip(classes, f.probs, strict=True)},
                "probs_raw": {
                    c: round(float(p), 6) for c, p in zip(classes, f.probs_raw, strict=True)
                },
                "landmarks": None
                if f.landmarks is None
                else [[round(float(x), 1), round(float(y), 1)] for x, y in f.landmarks],
                "classified": f.classified,
            }
            for f in result.faces
        ],
        "timings_ms": {k: round(v, 3) for k, v in result.timings.items()},
    }
    if result.preview is not None:
        rec["preview"] = result.preview
    return rec


def make_preview(grey: np.ndarray, width: int, height: int) -> dict[str, Any]:
    """The frame shrunk to fit in width x height, aspect kept, as base64 uint8 bytes."""
    h, w = grey.shape[:2]
    scale = min(width / w, height / h)
    pw, ph = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(grey, (pw, ph), interpolation=cv2.INTER_AREA)
    return {"w": pw, "h": ph, "data": base64.b64encode(small.tobytes()).decode("ascii")}
