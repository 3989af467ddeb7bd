"""Face detection on a downscaled frame, in line or in a thread: OpenCV's Haar cascade (grey
frames, boxes) or YuNet through `cv2.FaceDetectorYN` (colour frames, boxes and five landmarks).

Both have `detect(small, scale, around) -> (K, 4) boxes` and `find(small, scale, around, full)
-> (boxes, landmarks or None)`; the pipeline calls `find`, which also rescans the full-resolution
frame when a whole-frame scan of the small one finds nothing.
"""

from __future__ import annotations

import os
import queue
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_tui.errors import LiveError
from fer_tui.live.boxes import clip_box, iou
from fer_tui.live.config import LiveConfig

CASCADE = "haarcascade_frontalface_default.xml"
EYE_CASCADE = "haarcascade_eye.xml"
TURN_DEGREES = 30.0
"""How far `turn_retry` turns the frame each way: heads tilted 15-45 degrees come out upright
enough for either detector."""
YUNET = Path(__file__).resolve().parent / "models" / "yunet_s_320_320.onnx"
"""The YuNet model shipped with the package (models/README.md: source, commit, sha256)."""


class FaceDetector:
    """OpenCV's frontal-face Haar cascade (the paper's detector) on a downscaled grey frame."""

    name = "haar"
    colour = False
    """Whether it wants BGR frames (else grey)."""
    framing = (0.0, 0.0)
    """The crop margin and downward shift (fractions of the box, as LiveConfig's crop_margin
    and crop_shift_y, which add to them) that frame this detector's boxes the way FER-2013
    frames its faces, measured on holdout faces (docs/live.md). The cascade's square boxes
    already do."""

    def __init__(self, cfg: LiveConfig) -> None:
        self.cfg = cfg
        self.cascade = _cascade(CASCADE)

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
        return _largest(boxes, None, self.cfg.max_faces)[0]

    def find(
        self,
        small: np.ndarray,
        scale: float,
        around: Sequence[np.ndarray] | None = None,
        full: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """`detect`, and the landmarks of each face (K, 5, 2) where the detector gives them.

        When a whole-frame scan of `small` finds no face, two retries follow: `full` (the frame
        at full resolution) is scanned, for faces too small to survive the downscaling
        (`full_res_retry`), then `small` turned 30 degrees each way, for tilted heads
        (`turn_retry`). Boxes and landmarks are in the coordinates of `small` either way.
        """
        boxes, points = self._find(small, scale, around)
        if len(boxes) or around is not None:
            return self._upright(boxes, points, scale, full)
        if self.cfg.full_res_retry and full is not None and scale < 1.0:
            boxes, points = self._find(full, 1.0, None)
            boxes, points = boxes * scale, None if points is None else points * scale
            if len(boxes):
                return self._upright(boxes, points, scale, full)
        return self._turned(small, scale) if self.cfg.turn_retry else (boxes, points)

    def _upright(
        self, boxes: np.ndarray, points: np.ndarray | None, scale: float, full: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Faces found on the frame as it is (YuNet refines their eye points here)."""
        return boxes, points

    def _turned(self, small: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray | None]:
        """Faces of `small` turned TURN_DEGREES each way, from the turn whose best face scores
        higher (the one that brings the head closer to upright): each box keeps its size about
        its centre mapped back, landmarks map back exactly (so the crop's alignment turns the
        face upright again)."""
        h, w = small.shape[:2]
        best: tuple[np.ndarray, np.ndarray | None] = (np.zeros((0, 4), np.float32), None)
        best_score = 0.0
        for angle in (TURN_DEGREES, -TURN_DEGREES):
            m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
            cos, sin = abs(m[0, 0]), abs(m[0, 1])
            size = (round(w * cos + h * sin), round(w * sin + h * cos))  # the whole frame, turned
            m[:, 2] += (size[0] - w) / 2, (size[1] - h) / 2
            turned = cv2.warpAffine(small, m, size, borderMode=cv2.BORDER_REPLICATE)
            boxes, points, score = self._scan(turned, scale)
            if not len(boxes) or score <= best_score:
                continue
            back = cv2.invertAffineTransform(m)
            centres = (boxes[:, :2] + boxes[:, 2:] / 2) @ back[:, :2].T + back[:, 2]
            boxes = np.concatenate([centres - boxes[:, 2:] / 2, boxes[:, 2:]], 1)
            if points is not None:
                points = (points @ back[:, :2].T + back[:, 2]).astype(np.float32)
            best, best_score = (boxes.astype(np.float32), points), score
        return best

    def _scan(self, img: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray | None, float]:
        """A whole-frame scan: boxes, landmarks and the best face's score (the cascade gives
        none: 1 when it finds a face)."""
        boxes, points = self._find(img, scale, None)
        return boxes, points, float(len(boxes) > 0)

    def _find(
        self, img: np.ndarray, scale: float, around: Sequence[np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        return self.detect(img, scale, around), None

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
        x, y, w, h = _around(box, small.shape[1], small.shape[0])
        if w < 24 or h < 24:
            return np.zeros((0, 4), np.float32)
        found = self._cascade(
            small[y : y + h, x : x + w], max(12, round(0.6 * side)), min(w, h, round(1.6 * side))
        )
        found[:, :2] += (x, y)
        return found


def _cascade(name: str) -> Any:
    """One of OpenCV's Haar cascades, or a LiveError."""
    path = os.path.join(cv2.data.haarcascades, name)
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise LiveError(
            f"cannot load the Haar cascade {path}: reinstall opencv-python "
            f"(the -headless and 5.x builds may lack it)"
        )
    return cascade


def _largest(
    boxes: np.ndarray, points: np.ndarray | None, max_faces: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """The boxes largest first, without duplicates (two regions may overlap and see the same
    face twice), at most `max_faces`; `points` (K, 5, 2) follow their boxes."""
    order = np.argsort(-(boxes[:, 2] * boxes[:, 3]), kind="stable")
    kept: list[int] = []
    for i in order:
        if all(iou(boxes[i], boxes[k]) < 0.5 for k in kept):
            kept.append(i)
    kept = kept[:max_faces]
    out = boxes[kept].astype(np.float32).reshape(-1, 4)
    return out, None if points is None else points[kept].astype(np.float32).reshape(-1, 5, 2)


def _around(box: np.ndarray, w: int, h: int) -> tuple[int, int, int, int]:
    """The region searched around a tracked face: its box grown by half its side each way."""
    side = float(max(box[2], box[3]))
    grown = np.array([box[0] - side / 2, box[1] - side / 2, box[2] + side, box[3] + side])
    return clip_box(grown.astype(np.float32), w, h)


class YuNetDetector(FaceDetector):
    """YuNet (a small CNN, `cv2.FaceDetectorYN`) on a downscaled colour frame: boxes and five
    landmarks per face (the eyes, the nose tip and the mouth corners, as the face's right eye,
    left eye, nose, right and left mouth corner)."""

    name = "yunet"
    colour = True
    framing = (-0.075, -0.05)
    """YuNet's boxes run from the forehead to below the chin: a square 15% smaller than the
    box's height, moved up by 5% of it, frames the face as FER-2013 does."""

    def __init__(self, cfg: LiveConfig) -> None:
        self.cfg = cfg
        self.path = Path(cfg.detector_model).expanduser() if cfg.detector_model else YUNET
        self.net = load_yunet(self.path, cfg.score_threshold, cfg.nms_threshold)
        self._size = (0, 0)
        self.eyes = _cascade(EYE_CASCADE) if cfg.align else None

    def _upright(
        self, boxes: np.ndarray, points: np.ndarray | None, scale: float, full: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        if self.eyes is not None and points is not None and full is not None and len(boxes):
            points = self._refine_eyes(full, boxes, points, scale)
        return boxes, points

    def _refine_eyes(
        self, full: np.ndarray, boxes: np.ndarray, points: np.ndarray, scale: float
    ) -> np.ndarray:
        """YuNet's eye landmarks barely follow a tilted head (a face turned 20 degrees gives an
        eye line of about 2); where the eye cascade finds both eyes of a face in the upper part
        of its box at full resolution, their centres replace them."""
        points = points.copy()
        for i, box in enumerate(boxes / scale):
            x, y, w, h = box
            if w < 40:  # the eyes are too small for the cascade
                continue
            rx, ry, rw, rh = clip_box(
                np.array([x - w / 8, y, w * 1.25, h * 0.65], np.float32),
                full.shape[1],
                full.shape[0],
            )
            region = full[ry : ry + rh, rx : rx + rw]
            if region.ndim == 3:
                region = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY)
            found = self.eyes.detectMultiScale(
                region, 1.1, 3, minSize=(round(w / 8),) * 2, maxSize=(round(w / 2),) * 2
            )
            found = np.asarray(found, np.float32).reshape(-1, 4)
            if len(found) < 2:
                continue
            two = found[np.argsort(-found[:, 2], kind="stable")[:2]]
            centres = two[:, :2] + two[:, 2:] / 2 + (rx, ry)
            centres = centres[np.argsort(centres[:, 0])]  # the face's right eye is left here
            gap = float(np.hypot(*(centres[1] - centres[0])))
            mid = x + w / 2
            if centres[0, 0] < mid < centres[1, 0] and 0.25 * w < gap < 0.75 * w:
                points[i, :2] = centres * scale
        return points

    def detect(
        self, small: np.ndarray, scale: float, around: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        return self._find(small, scale, around)[0]

    def _find(
        self, img: np.ndarray, scale: float, around: Sequence[np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        if around is None:
            faces = self._whole(img, scale)
        else:
            found = [self._near(img, box) for box in around]
            faces = np.concatenate(found) if found else np.zeros((0, 15), np.float32)
        boxes, points = faces[:, :4], faces[:, 4:14].reshape(-1, 5, 2)
        return _largest(boxes, points, self.cfg.max_faces)  # type: ignore[return-value]

    def _scan(self, img: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray | None, float]:
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        faces = self._whole(img, scale)
        boxes, points = _largest(faces[:, :4], faces[:, 4:14].reshape(-1, 5, 2), self.cfg.max_faces)
        return boxes, points, float(faces[:, 14].max()) if len(faces) else 0.0

    def _whole(self, img: np.ndarray, scale: float) -> np.ndarray:
        """YuNet's faces on the whole of `img`, of at least `min_size` (full-frame pixels)."""
        faces = self._net(img)
        return faces[np.maximum(faces[:, 2], faces[:, 3]) >= self.cfg.min_size * scale]

    def _net(self, img: np.ndarray) -> np.ndarray:
        """YuNet's faces (N, 15): x, y, w, h, five x, y landmarks, score."""
        size = (img.shape[1], img.shape[0])
        if size != self._size:
            self.net.setInputSize(size)
            self._size = size
        _, faces = self.net.detect(np.ascontiguousarray(img))
        return np.zeros((0, 15), np.float32) if faces is None else faces.astype(np.float32)

    def _near(self, img: np.ndarray, box: np.ndarray) -> np.ndarray:
        """YuNet on the region around a tracked face, for faces from 0.6x to 1.6x its size."""
        side = float(max(box[2], box[3]))
        x, y, w, h = _around(box, img.shape[1], img.shape[0])
        if w < 16 or h < 16:
            return np.zeros((0, 15), np.float32)
        faces = self._net(img[y : y + h, x : x + w])
        sides = np.maximum(faces[:, 2], faces[:, 3])
        faces = faces[(sides >= 0.6 * side) & (sides <= 1.6 * side)]
        faces[:, [0, 4, 6, 8, 10, 12]] += x  # the box's and the landmarks' x
        faces[:, [1, 5, 7, 9, 11, 13]] += y
        return faces


def load_yunet(path: Path, score_threshold: float = 0.6, nms_threshold: float = 0.3) -> Any:
    """`cv2.FaceDetectorYN` for the ONNX file at `path`, or a LiveError that names the fix."""
    fix = (
        "pass --detector-model (or detector_model in --live-config) a YuNet .onnx that this "
        "OpenCV loads, e.g. onnx/yunet_s_320_320.onnx of ShiqiYu/libfacedetection.train, leave "
        "it out for the one shipped with fer-tui, or use --detector haar"
    )
    if not path.is_file():
        raise LiveError(f"no YuNet model at {path}: {fix}")
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # its own lines on stderr
    try:
        net = cv2.FaceDetectorYN.create(
            str(path), "", (320, 320), score_threshold, nms_threshold, 5000
        )
        net.detect(np.zeros((320, 320, 3), np.uint8))  # another network loads, then fails here
        return net
    except cv2.error as exc:
        raise LiveError(
            f"OpenCV {cv2.__version__} cannot load {path} as a YuNet face detector "
            f"({_reason(exc)}): {fix}"
        ) from None
    finally:
        cv2.utils.logging.setLogLevel(level)


def _reason(exc: cv2.error) -> str:
    """The gist of an OpenCV error: its last '(-N:Kind) what' message, without the paths."""
    found = re.findall(r"error: \(-?\d+:([^)]*)\)\s*([^\n]*?)\s*(?:in function|$)", str(exc))
    if not found:
        return "not a model it can read"
    kind, what = found[-1]
    what = re.sub(r":? ?/\S+", "", what).strip()
    return what or kind.strip()


def make_detector(cfg: LiveConfig) -> FaceDetector:
    """The detector `cfg.detector` names, loaded (a LiveError when its model will not load)."""
    return YuNetDetector(cfg) if cfg.detector == "yunet" else FaceDetector(cfg)


@dataclass
class Detection:
    """A finished detection: boxes in the small frame it ran on, and what it needs to merge."""

    boxes: np.ndarray
    ms: float
    frame: np.ndarray
    """The small grey frame the detector saw (templates of new faces are cut from it)."""
    since: dict[int, np.ndarray] | None = None
    """Track boxes at that frame; None when the detection is of the current frame."""
    points: np.ndarray | None = None
    """(K, 5, 2) landmarks of the boxes (YuNet), in the same coordinates; None for Haar."""


class AsyncDetector:
    """Runs `FaceDetector.find` in a background thread, one request at a time."""

    def __init__(self, detector: FaceDetector) -> None:
        self.detector = detector
        self._req: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=1)
        self._res: queue.Queue[Detection] = queue.Queue()
        self.busy = False
        self._thread = threading.Thread(target=self._run, name="fer-detect", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._req.get()
            if item is None:
                return
            small, scale, since, around, image, full = item
            start = time.perf_counter()
            boxes, points = self.detector.find(image, scale, around, full)
            ms = (time.perf_counter() - start) * 1000
            self._res.put(Detection(boxes, ms, small, since, points))

    def submit(
        self,
        small: np.ndarray,
        scale: float,
        since: dict[int, np.ndarray],
        around: Sequence[np.ndarray] | None = None,
        *,
        image: np.ndarray | None = None,
        full: np.ndarray | None = None,
    ) -> bool:
        """Detect on a copy of `image` (the small frame as the detector wants it, colour or
        grey; default `small`, the grey one the tracker cuts templates from) unless a detection
        is still running. `full`: the full-resolution frame, for `find`'s retry and YuNet's eyes."""
        if self.busy:
            return False
        self.busy = True
        small = small.copy()
        image = small if image is None or image is small else image.copy()
        full = None if full is None else full.copy()
        self._req.put((small, scale, since, around, image, full))
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
