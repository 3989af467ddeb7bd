"""RunList: every run under the runs dir, newest first, one row each."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist

from fer_tui.progress import duration
from fer_tui.run_tracker import RunView
from fer_tui.runs import STATUSES
from fer_tui.tui.widgets.format import percent

COLUMNS = ("status", "run", "arch", "recipe", "epoch", "best val acc", "elapsed", "ETA")


class RunList(DataTable[Text | str]):
    """A DataTable of RunViews keyed by run id; the status cell is coloured by state."""

    COMPONENT_CLASSES = {f"run-list--{status}" for status in STATUSES}

    DEFAULT_CSS = """
    RunList > .run-list--running { color: $success; text-style: bold; }
    RunList > .run-list--finished { color: $primary; }
    RunList > .run-list--failed { color: $error; text-style: bold; }
    RunList > .run-list--stopped { color: $warning; }
    RunList > .run-list--crashed { color: $error; text-style: italic; }
    RunList > .run-list--pending { color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.views: dict[str, RunView] = {}

    def on_mount(self) -> None:
        for column in COLUMNS:
            self.add_column(column, key=column)

    async def _on_idle(self, event: events.Idle) -> None:
        # A DataTable widens its columns for new rows only when idle, and caches each drawn cell
        # by its content, not its width: on a busy machine the screen may be painted first, and
        # the cells drawn then would stay cut to the old widths. Drop them once a width changed.
        before = [column.content_width for column in self.columns.values()]
        await super()._on_idle(event)
        clear = getattr(self, "_clear_caches", None)
        if clear is not None and [c.content_width for c in self.columns.values()] != before:
            clear()
            self.refresh()

    @property
    def selected(self) -> RunView | None:
        """The run under the cursor."""
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except CellDoesNotExist:
            return None
        return self.views.get(str(key.value))

    def _cells(self, view: RunView) -> list[Text | str]:
        style = self.get_component_rich_style(f"run-list--{view.status}", partial=True)
        return [
            Text(view.status, style=style),
            view.run_id,
            view.arch,
            view.recipe,
            view.epochs_text,
            percent(view.best_metric),
            duration(view.elapsed_seconds),
            duration(view.eta_seconds) if view.status == "running" else "",
        ]

    def show(self, view: RunView) -> None:
        """Add the run's row, or update in place the cells that changed."""
        before = self.views.get(view.run_id)
        self.views[view.run_id] = view
        cells = self._cells(view)
        if before is None:
            # on the top row the cursor follows the newest run; moved down, it stays on its run
            kept = self.selected if self.cursor_row > 0 else None
            self.add_row(*cells, key=view.run_id)
            self.sort("run", reverse=True)
            row = self.get_row_index(kept.run_id) if kept is not None else 0
            self.move_cursor(row=row, animate=False)
            return
        # the views are polled several times a second: touching only what changed leaves the
        # table idle, which is when it fits its columns to their new content
        for column, cell, old in zip(COLUMNS, cells, self._cells(before), strict=True):
            if cell != old:
                self.update_cell(view.run_id, column, cell, update_width=True)

    def remove(self, run_id: str) -> None:
        self.views.pop(run_id, None)
        try:
            self.remove_row(run_id)
        except RowDoesNotExist:
            pass
