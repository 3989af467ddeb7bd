"""Frame sources (camera index, video file, image folder, URL) and the capture thread.

Cameras and URLs hand on only the newest frame (a slow model drops frames instead of building
latency); video files and image folders give every frame, in order, unless paced.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_tui.errors import LiveError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm")


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
