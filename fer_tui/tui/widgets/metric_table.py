"""Table 1 (models side by side with the paper, then the mean and the ensemble) and Table 2
(per class, beside the paper's mean over its three models) as DataTables.

The rows come from `fer_tui.evaluation.tables` (table1_rows, table2_rows), the same ones the
CLI prints; these widgets only colour them: green where ours beats the paper, red where it
falls short.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from fer_tui.evaluation.formatting import fmt
from fer_tui.evaluation.metrics import METRICS
from fer_tui.evaluation.tables import TABLE1_COLUMNS, TABLE1_HEADERS, table1_rows, table2_rows

_SHORT = {"precision": "P", "recall": "R", "f1-score": "F1", "auc": "AUC"}


def _cell(value: Any, *, diff: float | None = None, signed: bool = False, style: str = "") -> Text:
    """A right-aligned number, green/red by the sign of `diff` (ours minus the paper)."""
    if diff is not None and abs(diff) >= 5e-4:
        style = "green" if diff > 0 else "red"
    return Text(fmt(value, signed=signed), style=style, justify="right")


class Table1View(DataTable):
    """One row per model, the paper's row for its arch under it and the delta; then the mean
    of the models and their ensemble, when there are."""

    DEFAULT_CSS = """
    Table1View { height: auto; max-height: 100%; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.rows_meta: list[dict[str, Any]] = []

    def on_mount(self) -> None:
        self.add_column("Model", key="label")
        for c in TABLE1_COLUMNS:
            self.add_column(TABLE1_HEADERS[c], key=c)

    def show(self, reports: list[dict[str, Any]], ensemble: dict[str, Any] | None = None) -> None:
        self.clear()
        self.rows_meta = table1_rows(reports, ensemble) if reports else []
        for i, row in enumerate(self.rows_meta):
            kind = row["kind"]
            diffs: dict[str, float | None] = {}
            if kind == "model":  # colour our numbers by the delta row that follows
                nxt = self.rows_meta[i + 2] if i + 2 < len(self.rows_meta) else None
                if nxt is not None and nxt["kind"] == "delta" and nxt["model"] == row["model"]:
                    diffs = {c: nxt.get(c) for c in TABLE1_COLUMNS}
            label_style = {
                "model": "bold",
                "paper": "italic",
                "delta": "dim",
                "mean": "bold",
                "ensemble": "bold",
            }[kind]
            cells = [Text(row["label"], style=label_style)]
            for c in TABLE1_COLUMNS:
                if kind == "delta":
                    cells.append(_cell(row[c], diff=row[c], signed=True))
                elif kind == "paper":
                    cells.append(_cell(row[c], style="italic"))
                else:
                    cells.append(_cell(row[c], diff=diffs.get(c)))
            self.add_row(*cells, key=str(i))

    def model_at(self, row_index: int) -> int | str | None:
        """The model index a row belongs to (None: the mean row; ENSEMBLE: the ensemble)."""
        if 0 <= row_index < len(self.rows_meta):
            return self.rows_meta[row_index]["model"]
        return None


class ClassTableView(DataTable):
    """Table 2: per class P/R/F1/support/AUC, each beside the paper's and the delta."""

    DEFAULT_CSS = """
    ClassTableView { height: auto; max-height: 100%; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", **kwargs)

    def on_mount(self) -> None:
        self.add_column("Class", key="label")
        self.add_column("Support", key="support")
        for m in (*METRICS, "auc"):
            s = _SHORT[m]
            self.add_column(s, key=m)
            self.add_column(f"paper {s}", key=f"paper_{m}")
            self.add_column(f"Δ{s}", key=f"delta_{m}")

    def show(self, report: dict[str, Any] | None) -> None:
        self.clear()
        if report is None:
            return
        for row in table2_rows(report):
            style = "bold" if row["kind"] == "avg" else ""
            cells = [Text(row["label"], style=style), _cell(row["support"])]
            for m in (*METRICS, "auc"):
                d = row[f"delta_{m}"]
                cells += [
                    _cell(row[m], diff=d, style=style),
                    _cell(row[f"paper_{m}"], style="italic"),
                    _cell(d, diff=d, signed=True),
                ]
            self.add_row(*cells, key=row["label"])
