"""Faces followed from frame to frame, each with its own smoothed probabilities."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fer_tui.live.boxes import clip_box, iou
from fer_tui.live.config import LiveConfig
from fer_tui.live.detection import Detection


@dataclass
class Track:
    track_id: int
    box: np.ndarray
    """x, y, w, h (float) in the coordinates of the small detection frame."""
    template: np.ndarray | None = None
    points: np.ndarray | None = None
    """(5, 2) landmarks from the last detection (YuNet), relative to the box's top-left corner,
    so they move with the box as it is followed; None for Haar."""
    probs: np.ndarray | None = None
    probs_raw: np.ndarray | None = None
    label: int = -1
    label_since: float = 0.0
    misses: int = 0
    classified_at: int = -(10**9)


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
        x, y, w, h = clip_box(box, small.shape[1], small.shape[0])
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
            t.points = None if det.points is None else det.points[di] - d[:2]
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
                points = None if det.points is None else det.points[di] - box[:2]
                kept.append(Track(self._next_id, box, self._template(det.frame, box), points))
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
