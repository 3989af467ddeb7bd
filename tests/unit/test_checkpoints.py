"""fer_tui.checkpoints: the default checkpoint, and the checkpoints the screens offer."""

from __future__ import annotations

from pathlib import Path

from fer_tui.checkpoints import find_checkpoint, finished_run_checkpoints, shipped_checkpoints
from fer_tui.runs import BEST, EventWriter


def _run(runs: Path, name: str, last_event: str) -> Path:
    run = runs / name
    run.mkdir(parents=True)
    with EventWriter(run) as events:
        events.write("start", arch="resnet18")
        events.write(last_event)
    (run / BEST).write_bytes(b"x")
    return run / BEST


def test_default_checkpoint_prefers_the_live_size_model(tmp_path: Path) -> None:
    """Without --checkpoint: checkpoints/resnet18-cpu.pt (keeps 30 FPS on a CPU), else
    resnet18.pt, else best.pt of the newest finished run; an unfinished run is never the
    default."""
    ckpts, runs = tmp_path / "checkpoints", tmp_path / "runs"
    ckpts.mkdir()
    assert find_checkpoint(ckpts, runs) is None
    _run(runs, "20260101-000000-resnet18", "stopped")
    assert find_checkpoint(ckpts, runs) is None
    older = _run(runs, "20260102-000000-resnet18", "end")
    assert find_checkpoint(ckpts, runs) == older
    newer = _run(runs, "20260103-000000-resnet18", "end")
    _run(runs, "20260104-000000-resnet18", "error")
    assert find_checkpoint(ckpts, runs) == newer
    (ckpts / "resnet18.pt").write_bytes(b"x")
    assert find_checkpoint(ckpts, runs) == ckpts / "resnet18.pt"
    (ckpts / "resnet18-cpu.pt").write_bytes(b"x")
    assert find_checkpoint(ckpts, runs) == ckpts / "resnet18-cpu.pt"
    assert find_checkpoint(ckpts) == ckpts / "resnet18-cpu.pt"


def test_finished_runs_offer_their_best_checkpoint(tmp_path: Path) -> None:
    """Only runs whose trainer said `end` and that have a best.pt are offered, oldest first;
    shipped checkpoints are every *.pt of the folder, by name."""
    for name, last in (
        ("20260101-000000-resnet18", "end"),
        ("20260102-000000-resnet34", "stopped"),
        ("20260103-000000-resnet50", "end"),
        ("20260104-000000-resnet18", "end"),
    ):
        run = tmp_path / "runs" / name
        run.mkdir(parents=True)
        with EventWriter(run) as events:
            events.write("start", arch=name[16:])
            events.write(last)
        if name != "20260104-000000-resnet18":  # ended before its first epoch: no best.pt
            (run / BEST).write_bytes(b"x")
    found = finished_run_checkpoints(tmp_path / "runs")
    assert [p.parent.name for p in found] == [
        "20260101-000000-resnet18",
        "20260103-000000-resnet50",
    ]
    assert finished_run_checkpoints(tmp_path / "nowhere") == []
    (tmp_path / "ckpts").mkdir()
    for name in ("b.pt", "a.pt", "notes.txt"):
        (tmp_path / "ckpts" / name).write_bytes(b"x")
    assert [p.name for p in shipped_checkpoints(tmp_path / "ckpts")] == ["a.pt", "b.pt"]
