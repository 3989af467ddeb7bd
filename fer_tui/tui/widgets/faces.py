"""Grey faces drawn with half blocks: each cell is `▀` with the upper pixel as foreground and the
lower one as background, so a cell holds two square-ish pixels of a terminal's 1:2 cell.

numpy is imported inside the methods: this module is imported when the App starts, and the first
paint must not pay for numpy (it arrives with the data worker anyway).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

if TYPE_CHECKING:
    import numpy as np

HALF = "▀"


@lru_cache(maxsize=16)
def _area_matrix(src: int, dst: int) -> np.ndarray:
    """(dst, src) weights averaging each output pixel over the source pixels it covers."""
    import numpy as np

    weights = np.zeros((dst, src), np.float64)
    scale = src / dst
    for i in range(dst):
        lo, hi = i * scale, (i + 1) * scale
        for j in range(int(lo), min(src, int(np.ceil(hi)))):
            weights[i, j] = min(hi, j + 1) - max(lo, j)
    return weights / weights.sum(axis=1, keepdims=True)


def area_resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-average a (H, W) uint8 image to (height, width) uint8, numpy only (no cv2 here)."""
    import numpy as np

    rows = _area_matrix(image.shape[0], height)
    cols = _area_matrix(image.shape[1], width)
    out = rows @ image.astype(np.float64) @ cols.T
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@lru_cache(maxsize=4096)
def _style(top: int, bottom: int) -> Style:
    return Style(
        color=Color.from_rgb(top, top, top), bgcolor=Color.from_rgb(bottom, bottom, bottom)
    )


def face_strips(image: np.ndarray, px: int) -> list[list[Segment]]:
    """A face as `ceil(px / 2)` lines of `px` half-block cells (px x px pixels)."""
    small = area_resize(image, px, px)
    lines = []
    for y in range(0, px, 2):
        top = small[y]
        bottom = small[y + 1] if y + 1 < px else top
        lines.append(
            [Segment(HALF, _style(int(t), int(b))) for t, b in zip(top, bottom, strict=True)]
        )
    return lines


class FaceGrid(Widget):
    """Sample faces in one column per class, the class name above each column.

    Face size follows the width: as large as fits (up to 48 px, the images' own size), so seven
    columns fit in 100 cells (13 px faces) and grow on wider terminals.
    """

    DEFAULT_CSS = """
    FaceGrid { height: auto; width: 1fr; }
    FaceGrid > .face-grid--label { color: $text-muted; text-style: bold; }
    """
    COMPONENT_CLASSES = {"face-grid--label"}

    rows: reactive[int] = reactive(1, layout=True)
    """Faces per class shown (one row of faces each)."""

    def __init__(
        self,
        *,
        gap: int = 1,
        max_px: int = 24,
        min_px: int = 8,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.gap = gap
        self.max_px = max_px
        self.min_px = min_px
        self._columns: list[tuple[str, list[np.ndarray]]] = []
        self._lines: dict[int, list[Strip]] = {}

    @property
    def columns(self) -> tuple[tuple[str, list[np.ndarray]], ...]:
        """What is shown: (label, faces) per column, left to right."""
        return tuple(self._columns)

    def set_faces(self, columns: list[tuple[str, list[np.ndarray]]]) -> None:
        """Show these faces: one (label, [48x48 uint8 images]) per column."""
        self._columns = columns
        self._lines.clear()
        self.refresh(layout=True)

    def watch_rows(self) -> None:
        self._lines.clear()

    def face_px(self, width: int) -> int:
        """Face side in pixels (= cells across) for a widget `width` cells wide."""
        n = max(1, len(self._columns))
        return max(self.min_px, min(self.max_px, (width + self.gap) // n - self.gap))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if not self._columns:
            return 0
        face_rows = (self.face_px(width) + 1) // 2
        return 1 + self.rows * face_rows + (self.rows - 1)

    def _build(self, width: int) -> list[Strip]:
        px = self.face_px(width)
        face_rows = (px + 1) // 2
        label_style = self.get_component_rich_style("face-grid--label")
        gap = Segment(" " * self.gap)
        blank = Segment(" " * px)
        labels: list[Segment] = []
        for i, (label, _) in enumerate(self._columns):
            labels += [gap] if i else []
            labels.append(Segment(label[:px].center(px), label_style))
        lines = [Strip(labels)]
        for r in range(self.rows):
            if r:
                lines.append(Strip.blank(width))
            drawn = [
                face_strips(faces[r], px) if r < len(faces) else None for _, faces in self._columns
            ]
            for y in range(face_rows):
                segments: list[Segment] = []
                for i, face in enumerate(drawn):
                    segments += [gap] if i else []
                    segments += face[y] if face is not None else [blank]
                lines.append(Strip(segments))
        return [line.adjust_cell_length(width) for line in lines]

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if width not in self._lines:
            self._lines = {width: self._build(width) if self._columns else []}
        lines = self._lines[width]
        return lines[y] if y < len(lines) else Strip.blank(width)
