"""The problems found in the data, grouped by kind, a few examples of each."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

#: problems of one kind listed before "... and N more"
SHOWN_PER_KIND = 4

#: how serious each kind is for training: errors lose images, warnings only inform
ERROR_KINDS = {"unreadable", "bad_row", "missing_split", "empty_class", "unknown_class"}


class ProblemList(Widget):
    """One line per problem (`kind  message`); long runs of one kind are cut short."""

    DEFAULT_CSS = """
    ProblemList { height: auto; width: 1fr; }
    ProblemList > .problem-list--error { color: $error; text-style: bold; }
    ProblemList > .problem-list--warning { color: $warning; text-style: bold; }
    ProblemList > .problem-list--muted { color: $text-muted; }
    ProblemList > .problem-list--ok { color: $success; }
    """
    COMPONENT_CLASSES = {
        "problem-list--error",
        "problem-list--warning",
        "problem-list--muted",
        "problem-list--ok",
    }

    problems: reactive[list[dict[str, object]]] = reactive(list, layout=True)
    """`Problem.to_dict()` records, in the loader's order."""

    def render(self) -> Table | Text:
        style = self.get_component_rich_style
        if not self.problems:
            return Text(
                "none: every image decoded, 48x48, no duplicates across splits",
                style("problem-list--ok"),
            )
        table = Table(box=None, show_header=False, padding=(0, 1, 0, 0), expand=True)
        table.add_column("kind", no_wrap=True)
        table.add_column("message", ratio=1, overflow="fold")
        by_kind: dict[str, list[dict[str, object]]] = {}
        for p in self.problems:
            by_kind.setdefault(str(p["kind"]), []).append(p)
        for kind, items in by_kind.items():
            level = "error" if kind in ERROR_KINDS else "warning"
            for i, p in enumerate(items[:SHOWN_PER_KIND]):
                label = Text(kind if i == 0 else "", style(f"problem-list--{level}"))
                table.add_row(label, str(p["message"]))
            if len(items) > SHOWN_PER_KIND:
                table.add_row(
                    "",
                    Text(
                        f"... and {len(items) - SHOWN_PER_KIND} more {kind} "
                        f"(`fer-tui stats --json` lists them all)",
                        style("problem-list--muted"),
                    ),
                )
        return table
