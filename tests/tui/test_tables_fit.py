"""At 120x40 every table shows all of its columns: Tables 1 and 2 and the confusion matrix
beside the Evaluation screen's checkpoint list, the Training screen's run list and the
Dataset screen's class counts (on the fixed worlds of screen_fixtures)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, TabbedContent

from fer_tui.tui.widgets.metric_table import fit_name, model_names, shorten
from fer_tui.tui.widgets.run_list import COLUMNS, RunList
from tests.tui.screen_fixtures import (
    SIZE,
    screen_text,
    show_dataset,
    show_evaluation,
    show_training,
    world,
)


def assert_all_columns_visible(table: DataTable) -> None:
    """Every column of `table` lies in the part of the terminal it shows, unscrolled."""
    widths = [c.get_render_width(table) for c in table.columns.values()]
    assert sum(widths) <= table.scrollable_content_region.width, (
        f"columns {widths} need {sum(widths)} cells, the table shows "
        f"{table.scrollable_content_region.width}"
    )
    assert table.scroll_x == 0
    assert table.region.right <= table.app.size.width


def lines(table: DataTable, n: int) -> list[str]:
    """The first `n` lines of the table as drawn (header first), cut where the table is."""
    return [table.render_line(y).text for y in range(n)]


async def test_table1_shows_every_column_beside_the_checkpoint_list(tmp_path: Path) -> None:
    """Three models with the paper's rows and deltas and their mean: model, precision,
    recall, F1, support, accuracy and both AUCs are on screen, beside the checkpoint list."""
    with world(tmp_path / "world") as make_app:
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await show_evaluation(pilot)
            screen = app.screen
            assert screen.query_one("#checkpoints").region.right <= 40  # the list is there
            table = screen.query_one("#table1", DataTable)
            assert table.row_count == 3 * 3 + 1
            assert_all_columns_visible(table)
            drawn = lines(table, 2 + table.row_count)
            header = "\n".join(drawn[:2])
            for word in ("Model", "Prec.", "Recall", "F1", "Support", "Acc.", "AUC", "macro"):
                assert word in header
            assert "wtd." in drawn[1]
            ours, paper, delta = screen.reports[0], drawn[3], drawn[4]
            assert drawn[2].split() == [
                "resnet18.pt",
                *(f"{ours['weighted_avg'][m]:.3f}" for m in ("precision", "recall", "f1-score")),
                "7178",
                f"{ours['accuracy']:.3f}",
                f"{ours['auc_macro_ovr']:.3f}",
                f"{ours['auc_weighted_ovr']:.3f}",
            ]
            assert paper.split() == [
                "paper",
                "resnet18",
                *"0.648 0.650 0.646 7178 0.650 0.898 —".split(),
            ]
            assert delta.split()[:3] == ["Δ", "vs", "paper"] and delta.rstrip().endswith("—")
            assert drawn[-1].split()[:3] == ["mean", "of", "3"]
            text = screen_text(app)
            assert "AUC     AUC" in text and "macro   wtd." in text


async def test_table1_names_use_the_room_there_is(tmp_path: Path) -> None:
    """Wide, Table 1 names a model by arch and path in full; narrowed to 120 columns it names
    it by file, the highlighted row stays where it was, and the columns still fit."""
    with world(tmp_path / "world") as make_app:
        app = make_app()
        async with app.run_test(size=(170, 40)) as pilot:
            await show_evaluation(pilot)
            table = app.screen.query_one("#table1", DataTable)
            assert str(table.get_row_at(0)[0]) == "resnet18 checkpoints/resnet18.pt"
            table.move_cursor(row=3)
            await pilot.pause()
            assert app.screen.selected == 1
            await pilot.resize_terminal(*SIZE)
            await pilot.pause(0.2)
            assert str(table.get_row_at(0)[0]) == "resnet18.pt"
            assert table.cursor_row == 3 and app.screen.selected == 1
            assert_all_columns_visible(table)


async def test_headers_drawn_before_the_table_settles_line_up_with_the_rows(
    tmp_path: Path,
) -> None:
    """A table refilled and painted at once (a fast machine paints before the table is idle)
    keeps its header over its columns: Tables 1 and 2 and the confusion matrix."""
    with world(tmp_path / "world") as make_app:
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await show_evaluation(pilot)
            screen = app.screen
            report = screen.reports[0]
            tabs = screen.query_one("#eval-tabs", TabbedContent)
            for tab, selector, show in (
                ("tab-table1", "#table1", lambda t: t.show(screen.reports)),
                ("tab-table2", "#table2", lambda t: t.show(report)),
                ("tab-confusion", "#confusion", lambda t: t.show(report)),
            ):
                tabs.active = tab
                await pilot.pause(0.2)
                table = screen.query_one(selector, DataTable)
                show(table)
                table.render_line(0)  # painted now, before the table is idle
                await pilot.pause()
                header = table.render_line(0).text
                at = 0
                for column in table.ordered_columns:
                    label = column.label.plain.splitlines()[0]
                    start = at + table.cell_padding
                    assert header[start : start + len(label)] == label, (selector, header)
                    at += column.get_render_width(table)


async def test_table2_and_confusion_fit_beside_the_checkpoint_list(tmp_path: Path) -> None:
    """Table 2 (ours, the paper's and the difference per class) and the confusion matrix of
    the highlighted model show every column at 120x40."""
    with world(tmp_path / "world") as make_app:
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await show_evaluation(pilot)
            screen = app.screen
            screen.query_one("#table1", DataTable).move_cursor(row=0)  # one model: resnet18
            tabs = screen.query_one("#eval-tabs", TabbedContent)
            tabs.active = "tab-table2"
            await pilot.pause(0.2)
            table2 = screen.query_one("#table2", DataTable)
            assert_all_columns_visible(table2)
            assert table2.row_count == 7 * 3 + 2
            drawn = lines(table2, 1 + table2.row_count)
            assert drawn[0].split() == ["Class", "Prec.", "Recall", "F1", "Support", "AUC"]
            happy = screen.reports[0]["classes"]["happy"]
            assert drawn[10].split() == [
                "happy",
                *(f"{happy[m]:.3f}" for m in ("precision", "recall", "f1-score")),
                "1774",
                f"{happy['auc']:.3f}",
            ]
            assert drawn[11].split() == ["paper", "0.849", "0.857", "0.851", "—", "0.965"]
            assert drawn[12].split()[0] == "Δ" and len(drawn[12].split()) == 5
            assert drawn[-1].split()[:2] == ["weighted", "avg"]

            tabs.active = "tab-confusion"
            await pilot.pause(0.2)
            confusion = screen.query_one("#confusion", DataTable)
            assert_all_columns_visible(confusion)
            header = lines(confusion, 1)[0].split()
            assert header[-7:] == [
                "angry",
                "disgust",
                "fear",
                "happy",
                "neutral",
                "sad",
                "surprise",
            ]


async def test_run_list_and_class_counts_fit(tmp_path: Path) -> None:
    """The Training screen's run list shows every column up to ETA and its panels their
    status lines; the Dataset screen's class counts show both sub-splits of test."""
    with world(tmp_path / "world") as make_app:
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await show_dataset(pilot)
            text = screen_text(app)
            assert "public test private test" in text and text.count("share") == 2
            await show_training(pilot)
            runs = app.screen.query_one(RunList)
            assert_all_columns_visible(runs)
            assert lines(runs, 1)[0].split() == " ".join(COLUMNS).split()
            # a panel is a third of the width: its status line still ends in full
            assert "finished · epoch 12/12 · cuda bf16" in screen_text(app)


def test_model_names_shorten_from_the_path_to_the_file() -> None:
    """A shipped checkpoint falls back to its file name, a run's best.pt to `<run>/best.pt`
    and then the run's name, cut in the middle when even that does not fit."""
    shipped = {"model": {"arch": "resnet18", "checkpoint": "checkpoints/resnet18.pt"}}
    run = {"model": {"arch": "resnet34", "checkpoint": "runs/20260301-091500-resnet34/best.pt"}}
    assert model_names(shipped) == ["resnet18 checkpoints/resnet18.pt", "resnet18.pt"]
    names = model_names(run)
    assert names[1:] == ["20260301-091500-resnet34/best.pt", "20260301-091500-resnet34"]
    assert fit_name(names, 60) == "resnet34 20260301-091500-resnet34/best.pt"
    assert fit_name(names, 32) == "20260301-091500-resnet34/best.pt"
    assert fit_name(names, 24) == "20260301-091500-resnet34"
    cut = fit_name(names, 18)
    assert len(cut) == 18 and cut.startswith("20260301") and cut.endswith("resnet34")
    assert shorten("abcdef", 6) == "abcdef" and shorten("abcdefgh", 5) == "ab…gh"
