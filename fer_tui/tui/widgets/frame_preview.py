"""FramePreview: a low-resolution grey frame drawn with half-block characters, boxes on top.

Each terminal cell shows two pixels, one above the other: '▀' in the top pixel's colour on a
background of the bottom pixel's colour, so a 64x48 preview fills 64x24 cells.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.widgets import Static

BOX_RGB = (40, 230, 90)


def render_halfblocks(
    width: int, height: int, pixels: bytes, boxes: Sequence[Sequence[int]] = ()
) -> Text:
    """Rich text of a width x height uint8 grey image; boxes (x, y, w, h) in its pixels."""
    if len(pixels) != width * height:
        raise ValueError(f"expected {width * height} bytes, got {len(pixels)}")
    rgb = [[(v, v, v) for v in pixels[r * width : (r + 1) * width]] for r in range(height)]
    for x, y, w, h in boxes:
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(width - 1, x + w - 1), min(height - 1, y + h - 1)
        if x0 > x1 or y0 > y1:
            continue
        for cx in range(x0, x1 + 1):
            rgb[y0][cx] = rgb[y1][cx] = BOX_RGB
        for cy in range(y0, y1 + 1):
            rgb[cy][x0] = rgb[cy][x1] = BOX_RGB
    styles: dict[tuple, Style] = {}
    text = Text()
    for r in range(0, height, 2):
        top = rgb[r]
        bottom = rgb[r + 1] if r + 1 < height else [(0, 0, 0)] * width
        for a, b in zip(top, bottom, strict=True):
            style = styles.get((a, b))
            if style is None:
                style = styles[(a, b)] = Style(color=Color.from_rgb(*a), bgcolor=Color.from_rgb(*b))
            text.append("▀", style)
        if r + 2 < height:
            text.append("\n")
    return text


class FramePreview(Static):
    """Shows the `preview` field of `fer-tui live` records and the face boxes."""

    DEFAULT_CSS = """
    FramePreview { width: auto; height: auto; min-width: 20; min-height: 6; }
    """

    def show_record(self, record: dict) -> None:
        """Draw a record's preview and its faces' boxes (frame pixels -> preview pixels)."""
        prev = record.get("preview")
        if not prev:
            self.update("(no preview in this record)")
            return
        w, h = int(prev["w"]), int(prev["h"])
        fw, fh = record.get("frame_size") or (w, h)
        sx, sy = w / max(fw, 1), h / max(fh, 1)
        boxes = [
            (
                round(f["box"][0] * sx),
                round(f["box"][1] * sy),
                max(1, round(f["box"][2] * sx)),
                max(1, round(f["box"][3] * sy)),
            )
            for f in record.get("faces", [])
        ]
        self.update(render_halfblocks(w, h, base64.b64decode(prev["data"]), boxes))
