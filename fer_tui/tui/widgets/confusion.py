"""The confusion matrix as a heat-map table: counts, shaded by the row-normalised fraction.

Each cell is two lines, the count over its share of the row, so that the seven columns fit
beside the Evaluation screen's checkpoint list in a 120-column terminal.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.color import Color
from textual.widgets import DataTable

from fer_tui.tui.widgets.columns import set_columns


class ConfusionTable(DataTable):
    """Rows are true classes, columns predictions; a cell shows the count over `pct%` of its
    row."""

    DEFAULT_CSS = """
    ConfusionTable { height: auto; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="none", zebra_stripes=False, **kwargs)

    def show(self, report: dict[str, Any] | None) -> None:
        if report is None:
            self.clear(columns=True)
            return
        names = list(report["classes"])
        # shade from the panel colour towards the theme's accent, so any theme reads
        base = Color.parse(self.app.theme_variables.get("panel", "#1e1e1e"))
        hot = Color.parse(self.app.theme_variables.get("accent", "#ffa62b"))
        counts, fracs = report["confusion_matrix"], report["confusion_matrix_normalized"]
        rows: list[list[Text]] = []
        for name, row, frac in zip(names, counts, fracs, strict=True):
            cells: list[Text] = [Text(name, style="bold")]
            for j, (n, f) in enumerate(zip(row, frac, strict=True)):
                bg = base.blend(hot, float(f))
                fg = "black" if bg.brightness > 0.55 else "white"
                diag = names[j] == name
                cells.append(
                    Text(
                        f"{n}\n{f:.0%}",
                        justify="right",
                        style=f"{'bold ' if diag else ''}{fg} on {bg.hex}",
                    )
                )
            rows.append(cells)
        set_columns(self, {"true": "true \\ pred", **{name: name for name in names}}, rows)
        for name, cells in zip(names, rows, strict=True):
            self.add_row(*cells, key=name, height=2)
