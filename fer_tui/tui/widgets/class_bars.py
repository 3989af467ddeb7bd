"""Per-class counts of each split as horizontal bars, with each class's share of its split."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

EIGHTHS = " ▏▎▍▌▋▊▉█"


def bar(fraction: float, width: int) -> str:
    """A bar `width` cells long at most, in eighths of a cell."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (EIGHTHS[part] if part else "")).ljust(width)


class ClassBars(Widget):
    """Counts per class for train and test (bars scaled per split), plus sub-split counts."""

    DEFAULT_CSS = """
    ClassBars { height: auto; width: 1fr; }
    ClassBars > .class-bars--train { color: $primary; }
    ClassBars > .class-bars--test { color: $secondary; }
    ClassBars > .class-bars--header { color: $accent; text-style: bold; }
    ClassBars > .class-bars--muted { color: $text-muted; }
    ClassBars > .class-bars--empty { color: $error; text-style: bold; }
    """
    COMPONENT_CLASSES = {
        "class-bars--train",
        "class-bars--test",
        "class-bars--header",
        "class-bars--muted",
        "class-bars--empty",
    }

    counts: reactive[dict[str, dict[str, int]]] = reactive(dict, layout=True)
    """split -> class -> count, classes in CLASSES order."""

    def render(self) -> Table:
        counts = self.counts
        bars = [s for s in ("train", "test") if s in counts]
        subs = [s for s in ("public_test", "private_test") if s in counts]
        style = self.get_component_rich_style
        # fixed columns: class 9, per bar split count 7 + share 6, per sub-split 12, spacing 1 each
        fixed = 9 + len(bars) * (7 + 6 + 3) + len(subs) * 13 + 1
        width = max(6, (self.size.width - fixed) // max(1, len(bars)))
        table = Table(
            box=None,
            padding=(0, 1, 0, 0),
            show_edge=False,
            pad_edge=False,
            header_style=style("class-bars--header"),
            expand=False,
        )
        table.add_column("class", min_width=9, no_wrap=True)
        for s in bars:
            table.add_column(s, width=width, no_wrap=True)
            table.add_column("n", justify="right", min_width=7, no_wrap=True)
            table.add_column("share", justify="right", min_width=6, no_wrap=True)
        for s in subs:
            table.add_column(s.replace("_test", " test"), justify="right", min_width=12)
        if not counts:
            return table
        classes = list(next(iter(counts.values())))
        totals = {s: sum(counts[s].values()) for s in counts}
        for cls in classes:
            row: list[Text | str] = [cls]
            for s in bars:
                n, total = counts[s][cls], totals[s]
                top = max(counts[s].values()) or 1
                row += [
                    Text(bar(n / top, width), style(f"class-bars--{s}")),
                    Text(f"{n:,}", style("class-bars--empty") if n == 0 and total else ""),
                    Text(f"{100 * n / total:.1f}%" if total else "-", style("class-bars--muted")),
                ]
            row += [f"{counts[s][cls]:,}" for s in subs]
            table.add_row(*row)
        total_row: list[Text | str] = [Text("total", style("class-bars--header"))]
        for s in bars:
            total_row += ["", Text(f"{totals[s]:,}", style("class-bars--header")), ""]
        total_row += [Text(f"{totals[s]:,}", style("class-bars--header")) for s in subs]
        table.add_row(*total_row)
        return table
