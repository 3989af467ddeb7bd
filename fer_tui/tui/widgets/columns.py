"""DataTable columns as wide as their header and cells, set when the rows are.

Left to measure its columns itself, a DataTable widens them when it is next idle; a header
painted before that keeps the widths of the header labels alone while the rows below it are
drawn wider. Tables that are refilled as a whole (Tables 1 and 2, the confusion matrix) set
every column's width with the rows instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable


def text_width(text: str | Text) -> int:
    """Cells the widest line of `text` takes."""
    plain = text.plain if isinstance(text, Text) else text
    return max((cell_len(line) for line in plain.splitlines()), default=0)


def set_columns(
    table: DataTable, headers: dict[str, str], rows: Sequence[Sequence[str | Text]]
) -> None:
    """Clear `table` and give it the columns `headers` (key -> label), each as wide as its
    label and its cells in `rows` (added by the caller next, in the same order)."""
    table.clear(columns=True)
    for j, (key, label) in enumerate(headers.items()):
        widest = max((text_width(row[j]) for row in rows), default=0)
        table.add_column(label, key=key, width=max(text_width(label), widest))
