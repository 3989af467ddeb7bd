"""BigLabel: a word in 5-row block letters (Textual's Digits has no letters)."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

# 5 rows per glyph, '#' = filled; enough for the seven class names and short messages
_FONT: dict[str, tuple[str, ...]] = {
    "A": (" ### ", "#   #", "#####", "#   #", "#   #"),
    "C": (" ####", "#    ", "#    ", "#    ", " ####"),
    "D": ("#### ", "#   #", "#   #", "#   #", "#### "),
    "E": ("#####", "#    ", "#### ", "#    ", "#####"),
    "F": ("#####", "#    ", "#### ", "#    ", "#    "),
    "G": (" ####", "#    ", "#  ##", "#   #", " ####"),
    "H": ("#   #", "#   #", "#####", "#   #", "#   #"),
    "I": ("###", " # ", " # ", " # ", "###"),
    "L": ("#    ", "#    ", "#    ", "#    ", "#####"),
    "N": ("#   #", "##  #", "# # #", "#  ##", "#   #"),
    "O": (" ### ", "#   #", "#   #", "#   #", " ### "),
    "P": ("#### ", "#   #", "#### ", "#    ", "#    "),
    "R": ("#### ", "#   #", "#### ", "#  # ", "#   #"),
    "S": (" ####", "#    ", " ### ", "    #", "#### "),
    "T": ("#####", "  #  ", "  #  ", "  #  ", "  #  "),
    "U": ("#   #", "#   #", "#   #", "#   #", " ### "),
    "Y": ("#   #", " # # ", "  #  ", "  #  ", "  #  "),
    "-": ("     ", "     ", " ### ", "     ", "     "),
    " ": ("   ", "   ", "   ", "   ", "   "),
}


def block_text(word: str) -> str | None:
    """`word` in block letters (5 lines), or None when a letter is not in the font."""
    glyphs = [_FONT.get(ch) for ch in word.upper()]
    if not glyphs or any(g is None for g in glyphs):
        return None
    rows = [" ".join(g[r] for g in glyphs) for r in range(5)]  # type: ignore[index]
    return "\n".join(row.replace("#", "█").rstrip() for row in rows)


class BigLabel(Static):
    """The current label in big letters; plain bold text when a letter has no glyph."""

    DEFAULT_CSS = """
    BigLabel { height: 7; padding: 1 1; color: $accent; text-style: bold; }
    """

    word: reactive[str] = reactive("", layout=True)

    def watch_word(self, word: str) -> None:
        big = block_text(word)
        self.update(Text(big if big is not None else word.upper()))
