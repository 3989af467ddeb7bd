"""DistributedDataParallel on CPU (gloo): two replicas end with identical weights."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from fer_tui.config import from_dict
from fer_tui.runs import read_events
from tests.helpers import synthetic_faces

CONFIG = {
    "name": "ddp",
    "archs": ["resnet18"],
    "model": {"stem": "imagenet", "image_size": 16},
    "train": {"epochs": 1, "batch_size": 4, "lr": 0.05, "device": "cpu", "log_every_steps": 1},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _arrays():
    from fer_tui.training.arrays import Arrays

    x = np.concatenate([synthetic_faces(4, c) for c in range(7)])
    y = np.repeat(np.arange(7), 4)
    return Arrays(x, y, x[::2], y[::2], "test", "synthetic")


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as td

    from fer_tui.training.distributed import Dist
    from fer_tui.training.trainer import Trainer

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    run_dir = Path(out) / "run"
    trainer = Trainer(
        from_dict(CONFIG), run_dir if rank == 0 else None, _arrays(), dist=Dist(rank, world, rank)
    )
    try:
        trainer.fit()
    finally:
        trainer.close()
    torch.save(trainer.model.state_dict(), Path(out) / f"rank{rank}.pt")
    td.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_replicas_end_identical(tmp_path: Path) -> None:
    """Two ranks train on their shards; weights match bit for bit; only rank 0 wrote events."""
    (tmp_path / "run").mkdir()
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    events = read_events(tmp_path / "run")
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and events[0]["env"]["world_size"] == 2
    # 28 images, 2 ranks x batch 4 = 8 per step: 3 steps, each rank 4 images a step
    assert events[0]["steps_per_epoch"] == 3
    epoch = next(e for e in events if e["type"] == "epoch")
    assert epoch["img_per_s"] > 0 and 0 <= epoch["val_acc"] <= 1


def _count_worker(rank: int, world: int, port: int, out: str) -> None:
    """Trains one epoch of 7 steps logged once, counting the collectives of the step loop."""
    import torch.distributed as td

    from fer_tui.training import epoch as epoch_module
    from fer_tui.training.distributed import Dist
    from fer_tui.training.trainer import Trainer

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    config = {**CONFIG, "train": {**CONFIG["train"], "batch_size": 2, "log_every_steps": 7}}
    trainer = Trainer(from_dict(config), None, _arrays(), dist=Dist(rank, world, rank))
    calls = []
    real = epoch_module.all_sum

    def counting(t, dist):
        calls.append(tuple(t.shape))
        return real(t, dist)

    epoch_module.all_sum = counting
    try:
        trainer.train_one_epoch(1)
    finally:
        epoch_module.all_sum = real
        trainer.close()
    Path(out, f"calls{rank}.txt").write_text(f"{trainer.steps_per_epoch} {len(calls)}")
    td.destroy_process_group()


@pytest.mark.slow
def test_the_ddp_step_loop_agrees_on_stopping_once_per_logging_window(tmp_path: Path) -> None:
    """Each rank must agree on a stop (or the next all-reduce hangs), but asking costs a
    collective and a host sync: 7 steps logged once ask once, not 7 times."""
    mp.spawn(_count_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        steps, calls = map(int, (tmp_path / f"calls{rank}.txt").read_text().split())
        assert (steps, calls) == (7, 1)
