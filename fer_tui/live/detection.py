"""Face detection: OpenCV's Haar cascade on a downscaled grey frame, in line or in a thread."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from fer_tui.errors import LiveError
from fer_tui.live.boxes import clip_box, iou
from fer_tui.live.config import LiveConfig

CASCADE = "haarcascade_frontalface_default.xml"


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
        x, y, w, h = clip_box(
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


class AsyncDetector:
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
