"""The OpenCV window of `fer-tui live`: boxes, labels and probability bars over the frame."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from fer_tui.data.index import CLASSES
from fer_tui.errors import LiveError
from fer_tui.live.display import has_display
from fer_tui.live.results import FrameResult

WINDOW = "fer-tui live"


def check_display() -> None:
    """Raise LiveError when an OpenCV window cannot be shown here."""
    if not has_display():
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
    """Every face's box, track id, label and confidence; a bar chart of the seven
    probabilities beside the largest face; FPS."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    H, W = img.shape[:2]
    largest = max(result.faces, key=lambda f: f.box[2] * f.box[3], default=None)
    for face in result.faces:
        x, y, w, h = face.box
        colour = _COLOURS[list(classes).index(face.label) % len(_COLOURS)]
        cv2.rectangle(img, (x, y), (x + w, y + h), colour, 2)
        text = f"#{face.track_id} {face.label} {face.confidence:.0%}"
        cv2.putText(img, text, (x, max(14, y - 6)), font, 0.6, colour, 2, cv2.LINE_AA)
        if face is not largest:
            continue
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
