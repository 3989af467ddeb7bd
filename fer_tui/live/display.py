"""Whether an OpenCV window can open here: the one answer for `fer-tui live` and the Live screen.

No cv2 and no torch: the Live screen asks before it starts anything.
"""

from __future__ import annotations

import os
import sys


def has_display() -> bool:
    """Whether a window can open here: Linux needs X11 or Wayland (unset over SSH)."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
