"""The live pipeline: capture -> face detection -> classification -> smoothing -> results.

    source --(capture thread)--> frame --grey, 320 wide--> Haar cascade (every N frames, in its
    own thread) --> tracker (template matching between detections) --> crops, 48x48 uint8
    --> `to_input` (the training preprocessing) --> model, all faces of a frame in one batch
    --> per-track EMA of probabilities + label hold --> FrameResult

`realtime_prediction(model, transform, label_hold_seconds, device, source)` has the paper's
shape and is what `fer-tui live` and the Live screen (through that command) call. It opens the
source at once, so a bad camera or video fails before the first frame, and returns a generator
of `FrameResult`.

Capture policy: cameras and URLs hand on only the newest frame (a slow model drops frames
instead of building latency); video files and image folders give every frame, in order, unless
`realtime=True`, which paces a file at its own frame rate and drops like a camera (the
benchmark uses that to stand in for a webcam).

Timings per frame, in ms: `capture` (decode, in the capture thread), `detect` (the part of
detection and tracking that the frame waited for), `classify` (crop, preprocess, model,
softmax) and `total` (from the frame being handed over to its result).
"""

from __future__ import annotations

import base64
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import tomllib
import torch

from fer_tui.data.index import CLASSES
from fer_tui.errors import ConfigError, LiveError

CASCADE = "haarcascade_frontalface_default.xml"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm")


@dataclass(frozen=True)
class LiveConfig:
    """Detection, tracking and smoothing parameters (`--live-config FILE.toml` overrides them)."""

    downscale_width: int = 320
    """Detection runs on the grey frame resized to this width, pixels (0 = full resolution)."""
    scale_factor: float = 1.1
    """Haar pyramid step; larger is faster and misses more faces."""
    min_neighbors: int = 5
    """Haar detections that must overlap to count as a face; larger = fewer false faces."""
    min_size: int = 48
    """Smallest face searched for, pixels of the full frame."""
    detect_every: int = 5
    """Run the detector every N frames and track faces by template matching in between."""
    full_detect_every: int = 30
    """Scan the whole frame for new faces every N frames (and whenever no face is tracked);
    the detections in between look only around the faces already tracked, which costs a few
    per cent of a full scan (0 = always scan the whole frame)."""
    detect_async: bool = True
    """Detect in a background thread so a frame never waits for the cascade."""
    max_faces: int = 10
    """Faces classified per frame at most (the largest ones)."""
    match_iou: float = 0.3
    """Overlap above which a detection continues an existing track."""
    max_misses: int = 2
    """Detection rounds a track survives without being re-detected."""
    ema_alpha: float = 0.5
    """Weight of the newest frame in the per-face moving average of probabilities (1 = none)."""
    classify_every: int = 1
    """Classify a tracked face every N frames; in between it keeps its smoothed probabilities."""
    crop_margin: float = 0.0
    """Grow the detected box by this fraction of its side before cropping."""


def load_live_config(path: str | os.PathLike[str] | None) -> LiveConfig:
    """A LiveConfig from a flat TOML file of the fields above (None -> the defaults)."""
    if path is None:
        return LiveConfig()
    from fer_tui.config import build_table  # the run configs' checker: unknown keys, types

    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no live config at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    cfg = build_table(LiveConfig, raw.get("live", raw), path.name)
    _validate(cfg, path.name)
    return cfg


def _validate(cfg: LiveConfig, where: str) -> None:
    checks = [
        (cfg.scale_factor > 1.0, "scale_factor", "must be > 1"),
        (cfg.min_neighbors >= 0, "min_neighbors", "must be >= 0"),
        (cfg.min_size >= 1, "min_size", "must be >= 1"),
        (cfg.detect_every >= 1, "detect_every", "must be >= 1"),
        (cfg.full_detect_every >= 0, "full_detect_every", "must be >= 0 (0 = always)"),
        (cfg.classify_every >= 1, "classify_every", "must be >= 1"),
        (cfg.max_faces >= 1, "max_faces", "must be >= 1"),
        (0.0 < cfg.ema_alpha <= 1.0, "ema_alpha", "must be in (0, 1]"),
        (
            cfg.downscale_width == 0 or cfg.downscale_width >= 64,
            "downscale_width",
            "must be 0 (full resolution) or >= 64",
        ),
    ]
    for ok, key, what in checks:
        if not ok:
            raise ConfigError(f"{where}: {key} {what}")


# --------------------------------------------------------------------------- results


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
    """Cost of the Haar detection whose faces this frame took in (it may have run in the
    background thread during earlier frames); None when no detection finished."""
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


# --------------------------------------------------------------------------- sources


@dataclass
class Frame:
    index: int
    image: np.ndarray
    timestamp: float
    media_s: float | None
    capture_ms: float


class _VideoReader:
    def __init__(self, cap: cv2.VideoCapture, *, live: bool, name: str) -> None:
        self.cap, self.live, self.name = cap, live, name
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 1.0 <= fps <= 240.0 else 30.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if not live else 0
        self.length: int | None = count if count > 0 else None
        self._first: np.ndarray | None = None

    def prime(self) -> None:
        """Read the first frame now, so 'opens but gives no frames' fails early."""
        ok, img = self.cap.read()
        if not ok or img is None:
            self.cap.release()
            if self.live:
                raise LiveError(
                    f"{self.name} opened but gives no frames: is another program "
                    f"using it, or is it a virtual device with nothing attached?"
                )
            raise LiveError(
                f"cannot read any frame of {self.name}: the file is corrupt or in "
                f"a codec OpenCV cannot decode (try converting it to MJPG .avi or "
                f"H.264 .mp4 with ffmpeg)"
            )
        self._first = img

    def read(self) -> np.ndarray | None:
        if self._first is not None:
            img, self._first = self._first, None
            return img
        # a camera unplugged mid-stream fails every read; a few retries ride out a glitch
        for _ in range(3 if self.live else 1):
            ok, img = self.cap.read()
            if ok and img is not None:
                return img
            if self.live:
                time.sleep(0.01)
        return None

    def close(self) -> None:
        self.cap.release()


class _FolderReader:
    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.live = False
        self.fps = 30.0
        self.length: int | None = len(paths)
        self.name = str(paths[0].parent) if paths else ""
        self._i = 0
        self.unreadable: list[Path] = []

    def prime(self) -> None:
        pass

    def read(self) -> np.ndarray | None:
        while self._i < len(self.paths):
            path = self.paths[self._i]
            self._i += 1
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is not None:
                return img
            self.unreadable.append(path)
        return None

    def close(self) -> None:
        pass


def _open_capture(target: int | str) -> cv2.VideoCapture:
    # a failed open makes OpenCV log a page of backend errors; our LiveError says it in a line
    logging = cv2.utils.logging
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        return cv2.VideoCapture(target)
    finally:
        logging.setLogLevel(level)


def open_reader(source: str) -> _VideoReader | _FolderReader:
    """A camera index, video file, image folder or URL, opened and checked."""
    source = str(source).strip()
    if source.isdigit():
        index = int(source)
        cap = _open_capture(index)
        if not cap.isOpened():
            cap.release()
            raise LiveError(
                f"no camera at index {index}: check that a webcam is plugged in and "
                f"allowed (try --source 0, or a video file)"
            )
        reader = _VideoReader(cap, live=True, name=f"camera {index}")
    elif "://" in source:
        cap = _open_capture(source)
        if not cap.isOpened():
            cap.release()
            raise LiveError(
                f"cannot open stream {source}: check the URL, the network and the credentials"
            )
        reader = _VideoReader(cap, live=True, name=f"stream {source}")
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise LiveError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
            folder = _FolderReader(images)
            return folder
        if not path.exists():
            raise LiveError(
                f"no such video, folder or camera: {source} (use a camera index "
                f"like 0, a video file, a folder of images or an rtsp:// URL)"
            )
        cap = _open_capture(str(path))
        if not cap.isOpened():
            cap.release()
            raise LiveError(
                f"cannot open {path} as a video: not a video file, or a codec OpenCV cannot decode"
            )
        reader = _VideoReader(cap, live=False, name=str(path))
    reader.prime()
    return reader


class FrameGrabber:
    """Reads frames in its own thread.

    drop=True keeps only the newest frame (live sources); drop=False queues every frame, in
    order, with back-pressure (files). pace_fps releases frames at that rate (a file standing
    in for a camera).
    """

    def __init__(
        self, reader: Any, *, drop: bool, pace_fps: float | None = None, queue_size: int = 4
    ) -> None:
        self.reader, self.drop, self.pace_fps = reader, drop, pace_fps
        self.dropped = 0
        self._q: queue.Queue[Frame | None] = queue.Queue(maxsize=queue_size)
        self._latest: Frame | None = None
        self._ended = False
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fer-capture", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        index, t0 = 0, time.perf_counter()
        try:
            while not self._stop.is_set():
                if self.pace_fps:
                    wait = t0 + index / self.pace_fps - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                start = time.perf_counter()
                img = self.reader.read()
                if img is None:
                    break
                media = None if self.reader.live else index / self.reader.fps
                frame = Frame(index, img, time.time(), media, (time.perf_counter() - start) * 1000)
                index += 1
                if self.drop:
                    with self._cond:
                        if self._latest is not None:
                            self.dropped += 1
                        self._latest = frame
                        self._cond.notify()
                else:
                    while not self._stop.is_set():
                        try:
                            self._q.put(frame, timeout=0.1)
                            break
                        except queue.Full:
                            continue
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify()
            if not self.drop and not self._stop.is_set():  # after close() nobody reads
                try:
                    self._q.put(None, timeout=1.0)
                except queue.Full:
                    pass

    def get(self) -> Frame | None:
        """The next frame (newest one when dropping), or None at the end of the stream."""
        if not self.drop:
            while True:
                try:
                    return self._q.get(timeout=0.1)
                except queue.Empty:
                    if not self._thread.is_alive() and self._q.empty():
                        return None
        with self._cond:
            while self._latest is None and not self._ended:
                self._cond.wait(0.1)
            frame, self._latest = self._latest, None
            return frame

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.reader.close()


# --------------------------------------------------------------------------- detection


class FaceDetector:
    """OpenCV's frontal-face Haar cascade (the paper's detector) on a downscaled grey frame."""

    def __init__(self, cfg: LiveConfig) -> None:
        self.cfg = cfg
        path = os.path.join(cv2.data.haarcascades, CASCADE)
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise LiveError(
                f"cannot load the Haar cascade {path}: reinstall opencv-python "
                f"(the -headless and 5.x builds may lack it)"
            )

    def detect(
        self, small: np.ndarray, scale: float, around: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        """Face boxes (K, 4) as x, y, w, h in the coordinates of `small`, largest first.

        `around`: boxes of faces already tracked; look only near them, for faces of about their
        size, instead of scanning the whole frame (None).
        """
        if around is None:
            min_side = max(12, round(self.cfg.min_size * scale))
            found = [self._cascade(small, min_side)]
        else:
            found = [self._near(small, box) for box in around]
        boxes = np.concatenate(found) if found else np.zeros((0, 4), np.float32)
        order = np.argsort(-(boxes[:, 2] * boxes[:, 3]))
        kept: list[np.ndarray] = []
        for box in boxes[order]:  # two regions may overlap and see the same face twice
            if all(iou(box, k) < 0.5 for k in kept):
                kept.append(box)
        return np.asarray(kept, np.float32).reshape(-1, 4)[: self.cfg.max_faces]

    def _cascade(self, grey: np.ndarray, min_side: int, max_side: int = 0) -> np.ndarray:
        boxes = self.cascade.detectMultiScale(
            grey,
            scaleFactor=self.cfg.scale_factor,
            minNeighbors=self.cfg.min_neighbors,
            minSize=(min_side, min_side),
            maxSize=(max_side, max_side),
        )
        return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)

    def _near(self, small: np.ndarray, box: np.ndarray) -> np.ndarray:
        """The cascade on the region around a tracked face: the box grown by half its side on
        every side, for faces from 0.6x to 1.6x its size."""
        side = float(max(box[2], box[3]))
        x, y, w, h = _clip(
            np.array(
                [box[0] - side / 2, box[1] - side / 2, box[2] + side, box[3] + side], np.float32
            ),
            small.shape[1],
            small.shape[0],
        )
        if w < 24 or h < 24:
            return np.zeros((0, 4), np.float32)
        found = self._cascade(
            small[y : y + h, x : x + w], max(12, round(0.6 * side)), min(w, h, round(1.6 * side))
        )
        found[:, :2] += (x, y)
        return found


@dataclass
class Detection:
    """A finished detection: boxes in the small frame it ran on, and what it needs to merge."""

    boxes: np.ndarray
    ms: float
    frame: np.ndarray
    """The small grey frame the cascade saw (templates of new faces are cut from it)."""
    since: dict[int, np.ndarray] | None = None
    """Track boxes at that frame; None when the detection is of the current frame."""


class _AsyncDetector:
    """Runs `FaceDetector.detect` in a background thread, one request at a time."""

    def __init__(self, detector: FaceDetector) -> None:
        self.detector = detector
        self._req: queue.Queue[tuple[np.ndarray, float, dict, Any] | None] = queue.Queue(maxsize=1)
        self._res: queue.Queue[Detection] = queue.Queue()
        self.busy = False
        self._thread = threading.Thread(target=self._run, name="fer-detect", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._req.get()
            if item is None:
                return
            small, scale, since, around = item
            start = time.perf_counter()
            boxes = self.detector.detect(small, scale, around)
            self._res.put(Detection(boxes, (time.perf_counter() - start) * 1000, small, since))

    def submit(
        self,
        small: np.ndarray,
        scale: float,
        since: dict[int, np.ndarray],
        around: Sequence[np.ndarray] | None = None,
    ) -> bool:
        """Detect on a copy of `small` unless a detection is still running."""
        if self.busy:
            return False
        self.busy = True
        self._req.put((small.copy(), scale, since, around))
        return True

    def poll(self) -> Detection | None:
        try:
            out = self._res.get_nowait()
        except queue.Empty:
            return None
        self.busy = False
        return out

    def close(self) -> None:
        """Stop the thread and wait for it (a detection still running ends first): a thread
        left inside OpenCV while the interpreter exits can abort the process."""
        try:
            self._req.get_nowait()  # a request not started yet is dropped
        except queue.Empty:
            pass
        self._req.put(None)
        self._thread.join(timeout=5.0)


# --------------------------------------------------------------------------- tracking


@dataclass
class Track:
    track_id: int
    box: np.ndarray
    """x, y, w, h (float) in the coordinates of the small detection frame."""
    template: np.ndarray | None = None
    probs: np.ndarray | None = None
    probs_raw: np.ndarray | None = None
    label: int = -1
    label_since: float = 0.0
    misses: int = 0
    classified_at: int = -(10**9)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two x, y, w, h boxes."""
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def _clip(box: np.ndarray, w: int, h: int) -> tuple[int, int, int, int]:
    x0, y0 = max(0, int(round(box[0]))), max(0, int(round(box[1])))
    x1, y1 = min(w, int(round(box[0] + box[2]))), min(h, int(round(box[1] + box[3])))
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


class FaceTracker:
    """Keeps each face's identity across frames, so each keeps its own probability history.

    A detection continues the track it overlaps most (IoU >= match_iou, else the nearest
    centre within half a face); between detections each track follows its face by template
    matching in a window around its last box, which costs well under a millisecond.
    """

    def __init__(self, cfg: LiveConfig, label_hold_seconds: float) -> None:
        self.cfg = cfg
        self.hold = label_hold_seconds
        self.tracks: list[Track] = []
        self._next_id = 1

    def _template(self, small: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        x, y, w, h = _clip(box, small.shape[1], small.shape[0])
        return small[y : y + h, x : x + w].copy() if w >= 8 and h >= 8 else None

    def snapshot(self) -> dict[int, np.ndarray]:
        """Each track's box now (given to the background detector with its frame)."""
        return {t.track_id: t.box.copy() for t in self.tracks}

    def update(self, det: Detection, small: np.ndarray) -> None:
        """Match detections to tracks; new faces start tracks, lost ones age and go.

        A background detection saw an older frame: it is matched against where the tracks were
        then (`det.since`), and a matched box is moved by how far its track has moved since.
        """
        ref = {t.track_id: t.box for t in self.tracks} if det.since is None else det.since
        pairs = []
        for ti, t in enumerate(self.tracks):
            box = ref.get(t.track_id)
            if box is None:  # born after the detector's frame: not its business
                continue
            for di, d in enumerate(det.boxes):
                o = iou(box, d)
                if o >= self.cfg.match_iou:
                    pairs.append((o, ti, di))
                else:
                    dist = np.hypot(*(box[:2] + box[2:] / 2 - d[:2] - d[2:] / 2))
                    if dist < 0.5 * max(box[2], d[2]):
                        pairs.append((0.01 * (1 - dist / max(box[2], d[2])), ti, di))
        used_t, used_d = set(), set()
        for _, ti, di in sorted(pairs, reverse=True):
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            t, d = self.tracks[ti], det.boxes[di].astype(np.float32)
            moved = t.box[:2] - ref[t.track_id][:2]
            t.box = np.array([d[0] + moved[0], d[1] + moved[1], d[2], d[3]], np.float32)
            t.template = self._template(small, t.box)
            t.misses = 0
        kept = []
        for ti, t in enumerate(self.tracks):
            if ti not in used_t and t.track_id in ref:
                t.misses += 1
            if t.misses <= self.cfg.max_misses:
                kept.append(t)
        for di, d in enumerate(det.boxes):
            if di not in used_d:
                box = d.astype(np.float32).copy()
                # the face as the detector saw it; follow() finds where it went since
                kept.append(Track(self._next_id, box, self._template(det.frame, box)))
                self._next_id += 1
        kept.sort(key=lambda t: -t.box[2] * t.box[3])
        self.tracks = kept[: self.cfg.max_faces]

    def follow(self, small: np.ndarray) -> None:
        """Move every track to where its template matches best near its last position."""
        H, W = small.shape[:2]
        for t in self.tracks:
            if t.template is None:
                continue
            th, tw = t.template.shape
            pad = max(8, int(0.5 * max(tw, th)))
            x0, y0 = max(0, int(t.box[0]) - pad), max(0, int(t.box[1]) - pad)
            x1, y1 = min(W, int(t.box[0]) + tw + pad), min(H, int(t.box[1]) + th + pad)
            if x1 - x0 < tw or y1 - y0 < th:
                continue
            scores = cv2.matchTemplate(small[y0:y1, x0:x1], t.template, cv2.TM_CCOEFF_NORMED)
            _, best, _, (bx, by) = cv2.minMaxLoc(scores)
            if best >= 0.5:  # below that the face has turned or gone: wait for the detector
                t.box[0], t.box[1] = x0 + bx, y0 + by

    def smooth(self, track: Track, raw: np.ndarray, now: float) -> None:
        """Fold this frame's probabilities into the track's EMA and update its held label."""
        a = self.cfg.ema_alpha
        track.probs_raw = raw
        track.probs = raw.copy() if track.probs is None else a * raw + (1 - a) * track.probs
        best = int(np.argmax(track.probs))
        if track.label < 0 or (best != track.label and now - track.label_since >= self.hold):
            track.label, track.label_since = best, now


# --------------------------------------------------------------------------- the loop


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
        bx = _clip(np.array([x - m, y - m, w + 2 * m, h + 2 * m], np.float32), W, H)
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
    worker = _AsyncDetector(detector) if cfg.detect_async else None
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
            boxes = [_clip(t.box / scale, W, H) for t in live_tracks]
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


# --------------------------------------------------------------------------- the window

WINDOW = "fer-tui live"


def check_display() -> None:
    """Raise LiveError when an OpenCV window cannot be shown here."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise LiveError(
            "no display (DISPLAY and WAYLAND_DISPLAY are unset, e.g. over SSH): "
            "use --no-window and --output to write the results instead"
        )


def open_window() -> None:
    """Create the OpenCV window, or a LiveError naming why it cannot be."""
    check_display()
    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
    except cv2.error as exc:
        raise LiveError(
            f"OpenCV cannot open a window ({str(exc).strip().splitlines()[-1]}): "
            f"an opencv-python-headless build has no GUI; install opencv-python, "
            f"or use --no-window"
        ) from None


_COLOURS = [
    (60, 60, 230),
    (60, 160, 60),
    (160, 60, 160),
    (40, 200, 240),
    (200, 200, 200),
    (220, 120, 40),
    (40, 240, 160),
]  # BGR, one per class in CLASSES order


def draw_overlay(
    img: np.ndarray, result: FrameResult, classes: Sequence[str] = CLASSES
) -> np.ndarray:
    """Box, label, confidence and a bar chart of the seven probabilities per face; FPS."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    H, W = img.shape[:2]
    for face in result.faces:
        x, y, w, h = face.box
        colour = _COLOURS[list(classes).index(face.label) % len(_COLOURS)]
        cv2.rectangle(img, (x, y), (x + w, y + h), colour, 2)
        text = f"{face.label} {face.confidence:.0%}"
        cv2.putText(img, text, (x, max(14, y - 6)), font, 0.6, colour, 2, cv2.LINE_AA)
        # the chart goes right of the box, or left when the box touches the right edge
        bar_w, row = 70, 13
        bx = x + w + 6 if x + w + 6 + bar_w + 60 < W else max(0, x - bar_w - 66)
        panel = img[max(0, y) : min(H, y + row * len(classes)), bx : min(W, bx + bar_w + 32)]
        panel[:] = panel // 3  # darken behind the chart so it reads on any background
        for i, (name, p) in enumerate(zip(classes, face.probs, strict=True)):
            by = y + i * row
            if by + row > H:
                break
            cv2.putText(img, name[:3], (bx, by + 10), font, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
            cv2.rectangle(img, (bx + 28, by + 2), (bx + 28 + bar_w, by + row - 2), (60, 60, 60), -1)
            cv2.rectangle(
                img,
                (bx + 28, by + 2),
                (bx + 28 + int(bar_w * float(p)), by + row - 2),
                _COLOURS[i],
                -1,
            )
    cv2.putText(img, f"{result.fps:5.1f} FPS", (8, 22), font, 0.6, (0, 255, 0), 2, cv2.LINE_AA)
    return img


def show(img: np.ndarray) -> bool:
    """Show a frame; False when the user pressed q / Esc or closed the window."""
    cv2.imshow(WINDOW, img)
    key = cv2.waitKey(1) & 0xFF
    if key in (ord("q"), 27):
        return False
    try:
        return cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) >= 1
    except cv2.error:
        return False


def close_window() -> None:
    try:
        cv2.destroyWindow(WINDOW)
        cv2.waitKey(1)
    except cv2.error:
        pass


# --------------------------------------------------------------------------- model loading


def pick_backend(
    backend: str, device: str = "auto", checkpoint: str | os.PathLike[str] | None = None
) -> str:
    """Resolve backend "auto": onnxruntime for an .onnx file, and on the CPU when installed
    (about 1.8x faster per face than PyTorch there, probabilities equal to 1e-4); PyTorch
    otherwise."""
    if backend != "auto":
        return backend
    if checkpoint is not None and Path(checkpoint).suffix == ".onnx":
        return "onnxruntime"
    if device not in ("auto", "cpu") or (device == "auto" and torch.cuda.is_available()):
        return "torch"
    import importlib.util

    have = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))
    return "onnxruntime" if have else "torch"


def load_model(
    checkpoint: str | os.PathLike[str],
    *,
    backend: str = "torch",
    device: str = "auto",
    threads: int | None = None,
) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, Any], torch.device]:
    """(model, meta, device) for the live loop: PyTorch or onnxruntime (CPU).

    torch: the eval fp32 model in channels_last (a few % faster for convs on CPU) under
    inference_mode; onnxruntime: the checkpoint exported once into the cache dir, or an .onnx
    file written by `fer-tui export` (fp32 or int8) as it is.
    """
    from fer_tui.models import load_checkpoint, read_checkpoint, resolve_device

    if threads:
        torch.set_num_threads(threads)
    if Path(checkpoint).suffix == ".onnx":
        from fer_tui.export import OrtModel, onnx_meta

        if backend != "onnxruntime" or device not in ("auto", "cpu"):
            raise LiveError(
                f"{Path(checkpoint).name} is an ONNX model: it runs with "
                f"onnxruntime on the CPU (--backend auto or onnxruntime, "
                f"--device auto or cpu)"
            )
        meta = onnx_meta(checkpoint)
        return OrtModel(checkpoint, threads=threads), meta, torch.device("cpu")
    if backend == "torch":
        dev = resolve_device(device)
        model, meta = load_checkpoint(checkpoint, dev)
        if dev.type == "cpu":
            model = model.to(memory_format=torch.channels_last)
        return model, meta, dev
    if backend == "onnxruntime":
        from fer_tui.export import OrtModel, cached_onnx

        if device not in ("auto", "cpu"):
            raise LiveError(
                "--backend onnxruntime runs on the CPU here: use --device cpu or "
                "--backend torch for the GPU"
            )
        meta = read_checkpoint(checkpoint)["meta"]
        return OrtModel(cached_onnx(checkpoint), threads=threads), meta, torch.device("cpu")
    raise LiveError(f"unknown backend '{backend}': use torch or onnxruntime")
