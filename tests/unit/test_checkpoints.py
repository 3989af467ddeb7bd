"""fer_tui.checkpoints: the default checkpoint, and the checkpoints the screens offer."""

from __future__ import annotations

from pathlib import Path

from fer_tui.checkpoints import (
    default_picks,
    find_checkpoint,
    finished_run_checkpoints,
    shipped_checkpoints,
)
from fer_tui.runs import BEST, EMA, LAST, EventWriter

CONFIG = """
name = "tiny"
archs = ["resnet18"]
[data]
val = "{val}"
[train]
epochs = 2
ema_decay = 0.9
"""


def _run(
    runs: Path,
    name: str,
    last_event: str,
    *,
    val: str = "test",
    acc: float = 0.5,
    acc_ema: float = 0.4,
) -> Path:
    """A run dir that trained 2 epochs (its last event `last_event`) with best.pt, last.pt and
    ema.pt; returns last.pt."""
    run = runs / name
    run.mkdir(parents=True)
    (run / "config.toml").write_text(CONFIG.format(val=val))
    with EventWriter(run) as events:
        events.write("start", arch="resnet18", epochs=2)
        for e in (1, 2):
            events.write("epoch", epoch=e, epochs=2, val_acc=acc, val_acc_ema=acc_ema)
        events.write(last_event)
    for f in (BEST, LAST, EMA):
        (run / f).write_bytes(b"x")
    return run / LAST


def test_default_checkpoint_prefers_the_live_size_model(tmp_path: Path) -> None:
    """Without --checkpoint: checkpoints/resnet18-distilled-cpu.pt, else resnet18-cpu.pt (both
    keep 30 FPS on a CPU), else resnet18.pt, else the final weights of the newest finished run;
    an unfinished run is never the default."""
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
    (ckpts / "resnet18-distilled-cpu.pt").write_bytes(b"x")
    assert find_checkpoint(ckpts, runs) == ckpts / "resnet18-distilled-cpu.pt"


def test_finished_runs_offer_their_final_weights(tmp_path: Path) -> None:
    """Only runs whose trainer said `end` are offered, oldest first, each by the weights
    `fer-tui ship` would choose: never best.pt (which a run validated on the test split picked
    by the test split), the EMA where it won on a holdout, else last.pt. Shipped checkpoints are
    every *.pt of the folder, by name."""
    runs = tmp_path / "runs"
    _run(runs, "20260101-000000-resnet18", "end", val="test", acc=0.5, acc_ema=0.9)
    _run(runs, "20260102-000000-resnet34", "stopped")
    _run(runs, "20260103-000000-resnet50", "end", val="holdout", acc=0.5, acc_ema=0.6)
    _run(runs, "20260104-000000-resnet18", "end", val="holdout", acc=0.6, acc_ema=0.5)
    (runs / "20260104-000000-resnet18" / LAST).unlink()  # its weights were not copied along
    found = finished_run_checkpoints(runs)
    assert [(p.parent.name, p.name) for p in found] == [
        ("20260101-000000-resnet18", LAST),
        ("20260103-000000-resnet50", EMA),
    ]
    assert finished_run_checkpoints(tmp_path / "nowhere") == []
    (tmp_path / "ckpts").mkdir()
    for name in ("b.pt", "a.pt", "notes.txt"):
        (tmp_path / "ckpts" / name).write_bytes(b"x")
    assert [p.name for p in shipped_checkpoints(tmp_path / "ckpts")] == ["a.pt", "b.pt"]


def test_default_picks_are_the_cpu_sized_models_without_a_gpu() -> None:
    """All shipped files with a GPU; without one the *-cpu.pt ones, or all when there are
    none of those."""
    both = [Path("resnet18-cpu.pt"), Path("resnet18.pt"), Path("resnet50-cpu.pt")]
    assert default_picks(both, gpu=True) == both
    assert default_picks(both, gpu=False) == [Path("resnet18-cpu.pt"), Path("resnet50-cpu.pt")]
    gpu_only = [Path("resnet18.pt"), Path("resnet34.pt")]
    assert default_picks(gpu_only, gpu=False) == gpu_only
    assert default_picks([], gpu=False) == []
