"""The Evaluation screen's result views: Table 1, Table 2, the confusion matrix and ROC of the
reports it holds, the highlighted row's model, and the export keys.

`EvaluationTables` is the base of `EvaluationScreen` (fer_tui.tui.screens.evaluation): it draws
whatever reports the screen has, and knows nothing of how they were made.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from textual import on
from textual.screen import Screen
from textual.widgets import DataTable, Static

from fer_tui.evaluation.ensemble import ENSEMBLE
from fer_tui.evaluation.formatting import metrics_csv, to_markdown
from fer_tui.evaluation.metrics import mean_report
from fer_tui.evaluation.outputs import json_payload
from fer_tui.evaluation.tables import model_label
from fer_tui.files import atomic_write_text
from fer_tui.tui.widgets.confusion import ConfusionTable
from fer_tui.tui.widgets.metric_table import ClassTableView, Table1View
from fer_tui.tui.widgets.roc_plot import RocPlot


class EvaluationTables(Screen[None]):
    """Reports -> the four tabs; the export keys write them."""

    reports: list[dict[str, Any]]
    ensemble: dict[str, Any] | None
    """The ensemble's report, when the last evaluation asked for one."""
    selected: int | str | None
    """Table 2's model: an index into `reports`, None for the mean, ENSEMBLE."""
    reports_dir: Path
    """Where the export keys write (relative to the working directory)."""
    _focus: Path | None
    """The checkpoint whose row to select when its report arrives (select_checkpoint)."""

    def _status(self, text: str, error: bool = False) -> None:
        status = self.query_one("#eval-status", Static)
        status.update(text)
        status.set_class(error, "-error")

    def _show_reports(
        self,
        reports: list[dict[str, Any]],
        ensemble: dict[str, Any] | None = None,
        *,
        partial: bool = False,
    ) -> None:
        """Show `reports` (and their ensemble's); `partial`: the first of an evaluation still
        running, so a model asked for by select_checkpoint is still awaited."""
        self.reports = reports
        self.ensemble = ensemble
        focus = None
        if self._focus is not None:
            focus = next(
                (i for i, r in enumerate(reports) if Path(r["model"]["checkpoint"]) == self._focus),
                None,
            )
            if not partial:
                self._focus = None
        if focus is not None:
            self.selected = focus
        elif ensemble is not None:  # asked for: its Table 2 first
            self.selected = ENSEMBLE
        else:
            self.selected = 0 if len(reports) == 1 else None
        split = reports[0]["data"]["split"]
        self.query_one("#table1-title", Static).update(
            f"Table 1: weighted averages on {split} ({reports[0]['n']} images), TTA "
            f"{', '.join(sorted({r['tta'] for r in reports}))}. AUC: one-vs-rest, macro "
            f"(compared with the paper) and support-weighted. Green/red: better/worse than the "
            f"paper. Highlight a row to see its Table 2."
            + (
                f" {model_label(ensemble)}: the mean of the models' probabilities."
                if ensemble is not None
                else ""
            )
        )
        table1 = self.query_one("#table1", Table1View)
        table1.show(reports, ensemble)
        # park the cursor on the selected model's row, so its highlight keeps that selection
        row = next(
            (
                i
                for i, r in enumerate(table1.rows_meta)
                if r["model"] == self.selected and r["kind"] in ("model", "mean", "ensemble")
            ),
            0,
        )
        table1.move_cursor(row=row, animate=False)
        self._show_selected()

    def _show_selected(self) -> None:
        if not self.reports:
            return
        if self.selected == ENSEMBLE and self.ensemble is not None:
            one = report = self.ensemble
            title = (
                f"Table 2: per class, {model_label(one)} (the mean of their probabilities), "
                f"TTA {one['tta']}"
            )
        elif self.selected is None and len(self.reports) > 1:
            report = mean_report(self.reports)
            title = f"Table 2: per class, mean of {len(self.reports)} models"
            one = None
        else:
            one = self.reports[self.selected if isinstance(self.selected, int) else 0]
            report = one
            title = f"Table 2: per class, {model_label(one)}, TTA {one['tta']}"
        self.query_one("#table2-title", Static).update(title + " (paper: mean of its three models)")
        self.query_one("#table2", ClassTableView).show(report)
        confusion_title = self.query_one("#confusion-title", Static)
        if one is None:
            confusion_title.update("Confusion matrix: highlight one model's row in Table 1.")
            self.query_one("#confusion", ConfusionTable).show(None)
            self.query_one("#roc", RocPlot).show(None)
            return
        confusion_title.update(
            f"Confusion matrix, {model_label(one)} (rows: true class, "
            f"columns: predicted; shade: share of the row)"
        )
        self.query_one("#confusion", ConfusionTable).show(one)
        self.query_one("#roc", RocPlot).show(one, f"ROC (one-vs-rest), {model_label(one)}")

    @on(DataTable.RowHighlighted, "#table1")
    def _table1_row(self, event: DataTable.RowHighlighted) -> None:
        model = self.query_one("#table1", Table1View).model_at(event.cursor_row)
        if model != self.selected:
            self.selected = model
            self._show_selected()

    # --- export -----------------------------------------------------------------------

    def action_export(self, kind: str) -> None:
        """Write Tables 1 and 2 to reports/evaluation-<time>.<md|csv|json>."""
        if not self.reports:
            self.notify("Nothing to export yet: press e to evaluate first.", severity="warning")
            return
        text = {
            "md": lambda: to_markdown(self.reports, self.ensemble),
            "csv": lambda: metrics_csv(self.reports, self.ensemble),
            "json": lambda: (
                json.dumps(json_payload(self.reports, self.ensemble), indent=1, allow_nan=False)
                + "\n"
            ),
        }[kind]()
        path = self.reports_dir / f"evaluation-{time.strftime('%Y%m%d-%H%M%S')}.{kind}"
        try:
            self.reports_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, text)
        except OSError as exc:
            self.notify(f"Cannot write {path}: {exc.strerror}", severity="error")
            return
        self.notify(f"Wrote {path}", title="Exported")
