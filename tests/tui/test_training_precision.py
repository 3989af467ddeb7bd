"""The Training screen's run panel: the precision a run trains in (from its start event) and
its moving average's holdout accuracy."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Label

from fer_tui.tui.widgets.run_panel import RunPanel
from tests.helpers import until
from tests.tui.test_training_screen import app_for, epoch, start, write_run


async def panel_labels(runs: Path, selector: str, ready: str) -> dict[str, str]:
    """The text of each run panel's `selector` label on the Training screen, once both the
    ResNet18 and the ResNet34 panel show `ready`."""
    app = app_for(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("training")

        def label(arch: str) -> str:
            panel = app.screen.query_one(f"#panel-{arch}", RunPanel)
            return str(panel.query_one(selector, Label).render())

        await until(pilot, lambda: ready in label("resnet18") and ready in label("resnet34"))
        return {arch: label(arch) for arch in ("resnet18", "resnet34")}


async def test_the_run_panel_names_the_precision_that_ran(tmp_path: Path) -> None:
    """A bf16 run shows "bf16" beside its device; a run from before precisions were recorded
    shows none (not a guess)."""
    runs = tmp_path / "runs"
    write_run(
        runs,
        "20260101-120000-resnet18",
        [{**start("resnet18"), "precision": "bf16"}, epoch(1), {"type": "end"}],
    )
    write_run(runs, "20260101-120000-resnet34", [start("resnet34"), epoch(1), {"type": "end"}])
    status = await panel_labels(runs, ".run-status", "epoch")
    assert status["resnet18"].endswith("cpu bf16")
    assert "bf16" not in status["resnet34"] and "fp32" not in status["resnet34"]


async def test_the_run_panel_shows_the_moving_average_beside_the_best_epoch(
    tmp_path: Path,
) -> None:
    """A run with an EMA shows its latest holdout accuracy beside the raw weights' best, since
    `fer-tui ship` may choose it; a run without one shows no EMA figure."""
    runs = tmp_path / "runs"
    ema = [{**epoch(e), "val_acc_ema": 0.50 + 0.1 * e} for e in (1, 2, 3)]
    write_run(runs, "20260101-120000-resnet18", [start("resnet18"), *ema, {"type": "end"}])
    write_run(runs, "20260101-120000-resnet34", [start("resnet34"), epoch(1), {"type": "end"}])
    best = await panel_labels(runs, "#run-best", "best")
    assert "last EMA 80.0%" in best["resnet18"]
    assert "EMA" not in best["resnet34"]
