"""Table 1 (models side by side with the paper, then the mean and the ensemble) and Table 2
(per class, beside the paper's mean over its three models) as DataTables.

The rows come from `fer_tui.evaluation.tables` (table1_rows, table2_rows), the same ones the
CLI prints; these widgets only colour them: green where ours beats the paper, red where it
falls short. Both put the paper's figures and the difference in rows under ours, not in
columns beside them, and use short headers, so that every column fits beside the Evaluation
screen's checkpoint list in a 120-column terminal. Table 1's model names are shortened to the
room left (the Table 2 title names the highlighted model in full).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.events import Resize
from textual.widgets import DataTable

from fer_tui.evaluation.formatting import fmt
from fer_tui.evaluation.metrics import METRICS
from fer_tui.evaluation.tables import (
    TABLE1_COLUMNS,
    model_label,
    paper_table1_rows,
    paper_table2_rows,
    table1_rows,
    table2_rows,
)
from fer_tui.tui.widgets.columns import set_columns, text_width

#: Table 1's headers on screen (the CLI and exports spell them out: TABLE1_HEADERS)
TABLE1_SHORT = {
    "precision": "Prec.",
    "recall": "Recall",
    "f1-score": "F1",
    "support": "Support",
    "accuracy": "Acc.",
    "auc": "AUC\nmacro",
    "auc_weighted": "AUC\nwtd.",
}
#: Table 2's columns (class rows: precision, recall, F1, support, one-vs-rest AUC)
TABLE2_COLUMNS = (*METRICS, "support", "auc")
TABLE2_SHORT = {
    "precision": "Prec.",
    "recall": "Recall",
    "f1-score": "F1",
    "support": "Support",
    "auc": "AUC",
}
#: checkpoint files named for what they are in a run dir, not for the model: keep the run's name
RUN_FILES = ("best.pt", "last.pt", "ema.pt")
#: Table 1's model names are never cut shorter than this
MIN_LABEL = 12

_KIND_STYLE = {
    "model": "bold",
    "paper": "italic",
    "delta": "dim",
    "mean": "bold",
    "ensemble": "bold",
}


def _cell(value: Any, *, diff: float | None = None, signed: bool = False, style: str = "") -> Text:
    """A right-aligned number, green/red by the sign of `diff` (ours minus the paper)."""
    if diff is not None and abs(diff) >= 5e-4:
        style = "green" if diff > 0 else "red"
    return Text(fmt(value, signed=signed), style=style, justify="right")


def shorten(text: str, room: int) -> str:
    """`text` cut to `room` cells with an ellipsis in the middle (both ends say the most)."""
    if cell_len(text) <= room:
        return text
    if room <= 1:
        return "…"[:room]
    tail = room // 2
    return text[: room - 1 - tail] + "…" + text[len(text) - tail :]


def model_names(report: dict[str, Any]) -> list[str]:
    """A model's name in Table 1, longest first: `resnet18 checkpoints/resnet18.pt`, then the
    file (`resnet18.pt`) or, for a run's best.pt, `<run>/best.pt` and the run's name."""
    full = model_label(report)
    path = Path(str(report.get("model", {}).get("checkpoint", "")))
    if not path.name or full.startswith("ensemble"):
        return [full]
    if path.name not in RUN_FILES or not path.parent.name:
        return [full, path.name]
    return [full, f"{path.parent.name}/{path.name}", path.parent.name]


def fit_name(names: list[str], room: int) -> str:
    """The longest of `names` that fits in `room` cells, else the shortest one cut to fit."""
    for name in names:
        if cell_len(name) <= room:
            return name
    return shorten(names[-1], room)


class Table1View(DataTable):
    """One row per model, the paper's row for its arch under it and the delta; then the mean
    of the models and their ensemble, when there are."""

    DEFAULT_CSS = """
    Table1View { height: auto; max-height: 100%; }
    """

    HEADERS = {"label": "Model", **{c: TABLE1_SHORT[c] for c in TABLE1_COLUMNS}}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, header_height=2, **kwargs)
        self.rows_meta: list[dict[str, Any]] = []
        self._reports: list[dict[str, Any]] = []
        self._ensemble: dict[str, Any] | None = None
        self._names_fitted: int | None = None
        """The room the model names were last fitted to."""

    def on_mount(self) -> None:
        self.show([])

    def show(self, reports: list[dict[str, Any]], ensemble: dict[str, Any] | None = None) -> None:
        """Table 1 of `reports` beside the paper; with none, the paper's Table 1 alone."""
        self._reports, self._ensemble = list(reports), ensemble
        self.rows_meta = table1_rows(reports, ensemble) if reports else paper_table1_rows()
        self._fill_rows()

    def _number_cells(self) -> list[list[Text]]:
        rows = []
        for i, row in enumerate(self.rows_meta):
            kind = row["kind"]
            diffs: dict[str, float | None] = {}
            if kind == "model":  # colour our numbers by the delta row that follows
                nxt = self.rows_meta[i + 2] if i + 2 < len(self.rows_meta) else None
                if nxt is not None and nxt["kind"] == "delta" and nxt["model"] == row["model"]:
                    diffs = {c: nxt.get(c) for c in TABLE1_COLUMNS}
            cells = []
            for c in TABLE1_COLUMNS:
                if kind == "delta":
                    cells.append(_cell(row[c], diff=row[c], signed=True))
                elif kind == "paper":
                    cells.append(_cell(row[c], style="italic"))
                else:
                    cells.append(_cell(row[c], diff=diffs.get(c)))
            rows.append(cells)
        return rows

    def _name_room(self, numbers: list[list[Text]]) -> int:
        """Cells left for the model names beside the number columns, at the current width."""
        pad = 2 * self.cell_padding
        used = pad  # the name column's own padding
        for j, c in enumerate(TABLE1_COLUMNS):
            widest = max((row[j].cell_len for row in numbers), default=0)
            used += pad + max(text_width(TABLE1_SHORT[c]), widest)
        width = self.scrollable_content_region.width
        return max(MIN_LABEL, width - used) if width > 0 else 10**6

    def _row_name(self, row: dict[str, Any], room: int) -> str:
        if row["kind"] == "model":
            return fit_name(model_names(self._reports[row["model"]]), room)
        if row["kind"] == "ensemble" and self._ensemble is not None:
            return fit_name(model_names(self._ensemble), room)
        return fit_name([row["label"]], room)

    def _fill_rows(self) -> None:
        cursor = self.cursor_row
        numbers = self._number_cells()
        room = self._name_room(numbers)
        self._names_fitted = room
        rows = [
            [Text(self._row_name(row, room), style=_KIND_STYLE[row["kind"]]), *cells]
            for row, cells in zip(self.rows_meta, numbers, strict=True)
        ]
        # the columns too: a cleared DataTable keeps the widths its old rows needed
        set_columns(self, self.HEADERS, rows)
        for i, cells in enumerate(rows):
            self.add_row(*cells, key=str(i))
        if 0 <= cursor < self.row_count:
            self.move_cursor(row=cursor, animate=False)

    def on_resize(self, event: Resize) -> None:
        if self.rows_meta and self._name_room(self._number_cells()) != self._names_fitted:
            self._fill_rows()

    def model_at(self, row_index: int) -> int | str | None:
        """The model index a row belongs to (None: the mean row; ENSEMBLE: the ensemble)."""
        if 0 <= row_index < len(self.rows_meta):
            return self.rows_meta[row_index]["model"]
        return None


class ClassTableView(DataTable):
    """Table 2: per class P/R/F1/support/AUC, with the paper's figures and the difference in
    the two rows under each class; then the macro and weighted averages."""

    DEFAULT_CSS = """
    ClassTableView { height: auto; max-height: 100%; }
    """

    HEADERS = {"label": "Class", **{c: TABLE2_SHORT[c] for c in TABLE2_COLUMNS}}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", **kwargs)

    def on_mount(self) -> None:
        self.show(None)

    def show(self, report: dict[str, Any] | None) -> None:
        """Table 2 of `report` beside the paper; with None, the paper's Table 2 alone."""
        rows = self._rows(report) if report is not None else self._paper_rows()
        set_columns(self, self.HEADERS, [cells for _, cells in rows])
        for key, cells in rows:
            self.add_row(*cells, key=key)

    @staticmethod
    def _paper_rows() -> list[tuple[str, list[Text]]]:
        return [
            (row["label"], [Text(row["label"]), *(_cell(row.get(c)) for c in TABLE2_COLUMNS)])
            for row in paper_table2_rows()
        ]

    @staticmethod
    def _rows(report: dict[str, Any]) -> list[tuple[str, list[Text]]]:
        """(key, cells) per row: each class, the paper's figures and the difference under it;
        then the averages."""
        rows: list[tuple[str, list[Text]]] = []
        for row in table2_rows(report):
            if row["kind"] == "avg":
                cells = [_cell(row[c], style="bold") for c in TABLE2_COLUMNS]
                rows.append((row["label"], [Text(row["label"], style="bold"), *cells]))
                continue
            name = row["label"]
            ours = [
                _cell(row[c], diff=row.get(f"delta_{c}")) if c != "support" else _cell(row[c])
                for c in TABLE2_COLUMNS
            ]
            rows.append((name, [Text(name), *ours]))
            # the paper prints no support per class in Table 2
            paper = [_cell(row.get(f"paper_{c}"), style="italic") for c in TABLE2_COLUMNS]
            rows.append((f"{name}:paper", [Text("  paper", style="italic"), *paper]))
            deltas = [Text("")] * len(TABLE2_COLUMNS)
            for j, c in enumerate(TABLE2_COLUMNS):
                if c != "support":
                    d = row.get(f"delta_{c}")
                    deltas[j] = _cell(d, diff=d, signed=True)
            rows.append((f"{name}:delta", [Text("  Δ", style="dim"), *deltas]))
        return rows
