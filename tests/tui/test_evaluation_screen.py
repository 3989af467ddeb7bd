"""The Evaluation screen: pick, evaluate in a worker, both tables beside the paper, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fer_tui.tui.app import make_app
from tests.helpers import make_tiny_checkpoint, until

pytestmark = pytest.mark.slow


#: Seconds an evaluation (torch import, data, prediction) may take on a busy CPU.
EVALUATED = 60.0


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoints dir with one (untrained, quick) resnet18."""
    folder = tmp_path_factory.mktemp("checkpoints")
    make_tiny_checkpoint(folder / "resnet18.pt")
    return folder


def _cells(table) -> list[str]:
    return [str(c) for row in range(table.row_count) for c in table.get_row_at(row)]


def _headers(table) -> list[str]:
    return [str(c.label) for c in table.columns.values()]


async def open_with_checkpoints(pilot, count: int):
    """Key 3, then wait until the checkpoint scan has listed `count` files; the screen."""
    await pilot.press("3")
    screen = pilot.app.screen
    picks = screen.query_one("#checkpoints")
    await until(pilot, lambda: picks.option_count == count, timeout=EVALUATED)
    return screen


async def test_evaluates_and_shows_both_tables_with_the_paper(
    ckpt_dir: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """A shipped checkpoint is picked, `e` evaluates it in a worker, and Table 1 (with the
    paper's row and delta), Table 2 (with the paper's row under each class), the confusion
    matrix and ROC show."""
    app = make_app(data=tiny_data, runs_dir=tmp_path / "runs", checkpoints_dir=ckpt_dir)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("3")
        screen = app.screen
        picks = screen.query_one("#checkpoints")
        await until(pilot, lambda: picks.option_count == 1, timeout=EVALUATED)
        assert picks.selected == [str(ckpt_dir / "resnet18.pt")]
        await pilot.press("e")
        table1 = screen.query_one("#table1")
        await until(pilot, lambda: bool(screen.reports), timeout=EVALUATED)
        cells = _cells(table1)
        assert "resnet18 checkpoints0/resnet18.pt" in cells[0] or cells[0].startswith("resnet18")
        assert any("paper resnet18" in c for c in cells)
        assert any("Δ vs paper" in c for c in cells)
        assert "7178" in cells  # the paper's support beside our 28
        paper = table1.get_row_at(1)  # the paper's Table 1 row for resnet18, as printed
        assert [str(c) for c in paper[1:7]] == ["0.648", "0.650", "0.646", "7178", "0.650", "0.898"]
        ours, delta = table1.get_row_at(0), table1.get_row_at(2)
        accuracy = screen.reports[0]["accuracy"]
        assert str(ours[5]) == f"{accuracy:.3f}"
        assert str(delta[5]) == f"{accuracy - 0.650:+.3f}"
        # ours is coloured by the delta: green above the paper, red below
        assert ours[5].style == ("green" if accuracy > 0.650 else "red")
        assert "AUC\nmacro" in _headers(table1)
        table2 = screen.query_one("#table2")
        assert table2.row_count == 7 * 3 + 2  # ours, the paper's, the difference; 2 averages
        assert _headers(table2) == ["Class", "Prec.", "Recall", "F1", "Support", "AUC"]
        assert "angry" in _cells(table2)
        happy, paper = table2.get_row_at(9), table2.get_row_at(10)
        assert str(happy[0]) == "happy" and str(paper[2]) == "0.857"  # the paper's recall
        assert str(table2.get_row_at(11)[0]).strip() == "Δ"
        assert screen.query_one("#confusion").row_count == 7
        status = str(screen.query_one("#eval-status").render())
        assert "TTA none" in status


async def test_ensemble_checkbox_adds_the_ensemble_row(tiny_data: Path, tmp_path: Path) -> None:
    """With two shipped checkpoints picked and "Ensemble" ticked, `e` shows an "ensemble of 2"
    row in Table 1 under the models, the mean and the paper's rows, and the ensemble's Table 2
    and confusion matrix; unticked, the next evaluation has no such row."""
    shipped = tmp_path / "checkpoints"
    make_tiny_checkpoint(shipped / "resnet18.pt")
    make_tiny_checkpoint(shipped / "resnet34.pt", arch="resnet34", seed=1)
    app = make_app(data=tiny_data, runs_dir=tmp_path / "runs", checkpoints_dir=shipped)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("3")
        screen = app.screen
        picks = screen.query_one("#checkpoints")
        await until(pilot, lambda: len(picks.selected) == 2, timeout=EVALUATED)
        await pilot.click("#ensemble")
        assert screen.query_one("#ensemble").value is True
        await pilot.press("e")
        table1 = screen.query_one("#table1")
        await until(pilot, lambda: screen.ensemble is not None, timeout=EVALUATED)
        labels = [str(table1.get_row_at(r)[0]) for r in range(table1.row_count)]
        assert labels[-2:] == ["mean of 2", "ensemble of 2"]
        assert "  paper resnet18" in labels and "  paper resnet34" in labels
        accuracy = str(table1.get_row_at(table1.row_count - 1)[5])
        assert accuracy == f"{screen.ensemble['accuracy']:.3f}"
        assert "ensemble of 2" in str(screen.query_one("#table2-title").render())
        assert "ensemble of 2" in str(screen.query_one("#confusion-title").render())
        assert screen.query_one("#table2").row_count == 7 * 3 + 2
        assert "ensemble" in str(screen.query_one("#eval-status").render())

        checkbox = screen.query_one("#ensemble")
        assert app.focused is checkbox  # the click focused it: space unticks it
        await pilot.press("space")
        assert checkbox.value is False
        await pilot.press("e")
        # 2 x (model, paper, delta) + mean
        await until(pilot, lambda: table1.row_count == 7, timeout=EVALUATED)
        labels = [str(table1.get_row_at(r)[0]) for r in range(table1.row_count)]
        assert not any("ensemble" in label for label in labels)


async def test_ensemble_of_one_pick_is_refused_with_a_hint(
    ckpt_dir: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """ "Ensemble" with a single checkpoint picked warns how to fix it and evaluates nothing."""
    app = make_app(data=tiny_data, runs_dir=tmp_path / "runs", checkpoints_dir=ckpt_dir)
    async with app.run_test(size=(140, 45)) as pilot:
        screen = await open_with_checkpoints(pilot, 1)
        await pilot.click("#ensemble")
        await pilot.press("e")
        await pilot.pause(0.2)
        assert any("pick another checkpoint" in n.message for n in app.notifications)
        assert screen.reports == []
        table1 = screen.query_one("#table1")
        assert [str(table1.get_row_at(r)[0]) for r in range(table1.row_count)] == [
            "paper resnet18",
            "paper resnet34",
            "paper resnet50",
        ]


async def test_the_paper_s_tables_show_before_any_evaluation(
    ckpt_dir: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """With nothing evaluated yet, Table 1 holds the paper's three rows as printed and Table 2
    its per-class figures, with titles that say so and how to add ours."""
    app = make_app(data=tiny_data, runs_dir=tmp_path / "runs", checkpoints_dir=ckpt_dir)
    async with app.run_test(size=(140, 45)) as pilot:
        screen = await open_with_checkpoints(pilot, 1)
        table1 = screen.query_one("#table1")
        rows = [[str(c) for c in table1.get_row_at(r)] for r in range(table1.row_count)]
        assert rows == [
            ["paper resnet18", "0.648", "0.650", "0.646", "7178", "0.650", "0.898", "—"],
            ["paper resnet34", "0.652", "0.651", "0.650", "7178", "0.651", "0.893", "—"],
            ["paper resnet50", "0.664", "0.654", "0.658", "7178", "0.654", "0.885", "—"],
        ]
        title = str(screen.query_one("#table1-title").render())
        assert "of the paper" in title and "press e" in title
        table2 = screen.query_one("#table2")
        assert table2.row_count == 7
        disgust = [str(c) for c in table2.get_row_at(1)]
        assert disgust == ["disgust", "0.727", "0.583", "0.647", "111", "0.958"]
        assert "of the paper" in str(screen.query_one("#table2-title").render())


async def test_cached_results_show_when_the_screen_opens(
    ckpt_dir: Path, tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After one evaluation, a new session shows Table 1 at once, without predicting."""
    from fer_tui.evaluation import runner
    from fer_tui.evaluation.runner import evaluate_checkpoints

    evaluate_checkpoints([ckpt_dir / "resnet18.pt"], data=tiny_data)

    def no_predict(*a: object, **k: object) -> None:
        raise AssertionError("predicted although the result is cached")

    monkeypatch.setattr(runner, "_predict", no_predict)
    app = make_app(data=tiny_data, runs_dir=tmp_path / "runs", checkpoints_dir=ckpt_dir)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("3")
        table1 = app.screen.query_one("#table1")
        await until(pilot, lambda: bool(app.screen.reports), timeout=EVALUATED)
        assert table1.row_count == 3  # ours, the paper's, the difference
        assert str(table1.get_row_at(0)[0]).startswith("resnet18")
        assert "Cached" in str(app.screen.query_one("#eval-status").render())


async def test_export_keys_write_reports(
    ckpt_dir: Path, tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """m, c and j write Markdown, CSV and JSON under ./reports and say where."""
    monkeypatch.chdir(tmp_path)
    app = make_app(data=tiny_data, runs_dir=tmp_path / "runs", checkpoints_dir=ckpt_dir)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("3")
        screen = app.screen
        await pilot.press("j")  # nothing yet: a warning, no file
        await pilot.pause()
        assert not (tmp_path / "reports").exists()
        await until(
            pilot, lambda: screen.query_one("#checkpoints").option_count == 1, timeout=EVALUATED
        )
        await pilot.press("e")
        await until(pilot, lambda: bool(screen.reports), timeout=EVALUATED)
        for key in "mcj":
            await pilot.press(key)
            await pilot.pause()
    written = sorted(p.suffix for p in (tmp_path / "reports").iterdir())
    assert written == [".csv", ".json", ".md"]
    payload = json.loads(next((tmp_path / "reports").glob("*.json")).read_text())
    assert payload["model"]["arch"] == "resnet18" and payload["tta"] == "none"
    md = next((tmp_path / "reports").glob("*.md")).read_text()
    assert "## Table 1" in md and "paper resnet18" in md


async def test_no_checkpoints_says_how_to_get_one(tiny_data: Path, tmp_path: Path) -> None:
    """An empty checkpoints dir and no runs: a hint naming the folder and `fer-tui train`."""
    empty = tmp_path / "empty"
    empty.mkdir()
    app = make_app(data=tiny_data, runs_dir=tmp_path / "runs", checkpoints_dir=empty)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("3")
        hint = app.screen.query_one("#no-checkpoints")
        await until(pilot, lambda: not hint.has_class("-hidden"), timeout=EVALUATED)
        text = str(hint.render())
        assert "fer-tui train" in text and str(empty) in text
        await pilot.press("e")  # nothing picked: a warning, not a crash
        await pilot.pause()


async def test_bad_checkpoint_shows_an_error_and_select_checkpoint_works(
    ckpt_dir: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """A broken file gives an on-screen error; select_checkpoint (the Training screen's way
    in) adds a checkpoint from elsewhere, evaluates it and shows it in Table 2."""
    broken = tmp_path / "ck"
    broken.mkdir()
    (broken / "broken.pt").write_bytes(b"junk")
    app = make_app(data=tiny_data, runs_dir=tmp_path / "runs", checkpoints_dir=broken)
    async with app.run_test(size=(140, 45)) as pilot:
        screen = await open_with_checkpoints(pilot, 1)
        await pilot.press("e")
        status = screen.query_one("#eval-status")
        await until(pilot, lambda: status.has_class("-error"), timeout=EVALUATED)
        assert "broken.pt" in str(status.render())

        other = make_tiny_checkpoint(tmp_path / "runs-elsewhere" / "run1" / "best.pt")
        screen.select_checkpoint(other)
        # both are picked now; the broken one fails the whole evaluation, so unpick it
        screen.query_one("#checkpoints").deselect(str(broken / "broken.pt"))
        screen.action_evaluate()
        await until(pilot, lambda: bool(screen.reports), timeout=EVALUATED)
        assert screen.reports[0]["model"]["checkpoint"] == str(other)
        assert "run1/best.pt" in str(screen.query_one("#table2-title").render())


def _fake_run(runs_dir: Path, name: str, finished: bool) -> Path:
    """A run dir of one epoch (events ending in `end` when finished, a config) with last.pt
    and a best.pt; returns last.pt, its final weights."""
    run = runs_dir / name
    run.mkdir(parents=True)
    (run / "config.toml").write_text('name = "tiny"\narchs = ["resnet18"]\n[train]\nepochs = 1\n')
    events = [
        {"v": 1, "t": 1.0, "type": "start", "arch": "resnet18", "epochs": 1},
        {"v": 1, "t": 1.5, "type": "epoch", "epoch": 1, "epochs": 1, "val_acc": 0.5},
    ]
    if finished:
        events.append({"v": 1, "t": 2.0, "type": "end", "epoch": 1, "best_metric": 0.5})
    (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    make_tiny_checkpoint(run / "best.pt", seed=1)
    return make_tiny_checkpoint(run / "last.pt")


async def test_finished_runs_are_offered_and_select_checkpoint_before_the_scan(
    tiny_data: Path, tmp_path: Path
) -> None:
    """The final weights (last.pt here, never best.pt) of finished runs are listed (the newest
    picked when nothing is shipped), runs still going are not; select_checkpoint right after
    switching modes (before the scan has finished) adds that checkpoint to the picks,
    evaluates, and shows it in Table 2."""
    runs = tmp_path / "runs"
    older = _fake_run(runs, "20260101-000000-resnet18", finished=True)
    newer = _fake_run(runs, "20260103-000000-resnet18", finished=True)
    _fake_run(runs, "20260102-000000-resnet18", finished=False)
    empty = tmp_path / "no-shipped"
    empty.mkdir()
    app = make_app(data=tiny_data, runs_dir=runs, checkpoints_dir=empty)
    async with app.run_test(size=(140, 45)) as pilot:
        await app.switch_mode("evaluation")
        screen = app.screen
        screen.select_checkpoint(older)
        await until(pilot, lambda: len(screen.reports) == 2, timeout=EVALUATED)
        await pilot.pause(0.2)
        assert [r["model"]["checkpoint"] for r in screen.reports] == [str(older), str(newer)]
        picks = screen.query_one("#checkpoints")
        labels = [str(picks.get_option_at_index(i).prompt) for i in range(picks.option_count)]
        assert labels == ["20260101-000000-resnet18/last.pt", "20260103-000000-resnet18/last.pt"]
        assert sorted(picks.selected) == [str(older), str(newer)]
        title = str(screen.query_one("#table2-title").render())
        assert "20260101-000000-resnet18/last.pt" in title


@pytest.mark.parametrize(("gpu", "picked"), [(False, ["resnet18-cpu.pt"]), (True, None)])
async def test_without_a_gpu_the_cpu_sized_models_are_picked(
    tiny_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    gpu: bool,
    picked: list[str] | None,
) -> None:
    """Where no GPU is seen, only the shipped `*-cpu.pt` models start picked (the GPU recipe's
    take minutes each on a CPU); every file stays listed. With a GPU, all are picked."""
    from fer_tui import launch

    monkeypatch.setattr(launch, "gpu_available", lambda: gpu)
    shipped = tmp_path / "checkpoints"
    names = ["resnet18-cpu.pt", "resnet18.pt"]
    for name in names:
        make_tiny_checkpoint(shipped / name)
    app = make_app(data=tiny_data, runs_dir=tmp_path / "runs", checkpoints_dir=shipped)
    async with app.run_test(size=(140, 45)) as pilot:
        screen = await open_with_checkpoints(pilot, 2)
        selected = screen.query_one("#checkpoints").selected
        assert sorted(Path(p).name for p in selected) == (picked or names)


async def test_each_model_s_rows_show_as_soon_as_it_is_done(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With two picks, Table 1 holds the first model's rows while the second is still being
    predicted, and the progress line says which model of how many it is at."""
    import threading

    from fer_tui.evaluation import runner

    shipped = tmp_path / "checkpoints"
    make_tiny_checkpoint(shipped / "resnet18.pt")
    make_tiny_checkpoint(shipped / "resnet34.pt", arch="resnet34", seed=1)
    go_on = threading.Event()
    predict = runner._predict

    def second_waits(path: Path, *args: object, **kwargs: object):
        if path.name == "resnet34.pt":
            progress = kwargs["progress"]
            progress(f"predict {path.name}", 0, 28)  # what the screen shows while it waits
            assert go_on.wait(EVALUATED), "the test never let the second model go on"
        return predict(path, *args, **kwargs)

    monkeypatch.setattr(runner, "_predict", second_waits)
    app = make_app(data=tiny_data, runs_dir=tmp_path / "runs", checkpoints_dir=shipped)
    async with app.run_test(size=(140, 45)) as pilot:
        screen = await open_with_checkpoints(pilot, 2)
        await until(pilot, lambda: len(screen.query_one("#checkpoints").selected) == 2)
        await pilot.press("e")
        status = screen.query_one("#eval-status")
        try:
            await until(pilot, lambda: len(screen.reports) == 1, timeout=EVALUATED)
            await until(pilot, lambda: "model 2 of 2" in str(status.render()))
            table1 = screen.query_one("#table1")
            assert table1.row_count == 3  # the first model, the paper's row, the difference
            assert str(table1.get_row_at(0)[0]).startswith("resnet18")
            assert "Predicting resnet34.pt, model 2 of 2" in str(status.render())
        finally:
            go_on.set()
        await until(pilot, lambda: len(screen.reports) == 2, timeout=EVALUATED)
        assert "Evaluated 2 checkpoint(s)" in str(status.render())
