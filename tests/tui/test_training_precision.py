"""The Training screen says which precision a run trains in (from its start event)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Label

from fer_tui.tui.widgets.run_panel import RunPanel
from tests.helpers import until
from tests.tui.test_training_screen import app_for, epoch, start, write_run


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
    app = app_for(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("training")

        def status(arch: str) -> str:
            panel = app.screen.query_one(f"#panel-{arch}", RunPanel)
            return str(panel.query_one(".run-status", Label).render())

        await until(pilot, lambda: "epoch" in status("resnet18") and "epoch" in status("resnet34"))
        assert status("resnet18").endswith("cpu bf16")
        assert "bf16" not in status("resnet34") and "fp32" not in status("resnet34")
