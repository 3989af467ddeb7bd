"""tools/device_pack.py: a GPU run's output comes back in batches within a remote machine's
limits (files per call, bytes per file and per call) and is put back together exactly."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("device_pack", ROOT / "tools" / "device_pack.py")
device_pack = importlib.util.module_from_spec(spec)
spec.loader.exec_module(device_pack)

LIMITS = {"part": 2048, "batch_files": 3, "batch_bytes": 6000, "small_size": 1024}


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "out"
    (root / "runs" / "r18").mkdir(parents=True)
    (root / "checkpoints").mkdir()
    (root / "results.json").write_text('{"accuracy": 0.7}')
    (root / "runs" / "r18" / "events.jsonl").write_text('{"type": "end"}\n')
    for name, size in (("resnet18.pt", 5000), ("resnet34.pt", 7000), ("resnet50.pt", 3000)):
        (root / "checkpoints" / name).write_bytes(os.urandom(size))
    return root


def _pack_all(src: Path, tmp_path: Path) -> list[Path]:
    n = device_pack.plan(src, **LIMITS)["batches"]
    dirs = []
    for b in range(1, n + 1):
        device_pack.pack(src, tmp_path / f"b{b}", b, **LIMITS)
        dirs.append(tmp_path / f"b{b}")
    return dirs


def test_batches_respect_the_limits_and_join_exactly(src: Path, tmp_path: Path) -> None:
    dirs = _pack_all(src, tmp_path)
    assert len(dirs) >= 3
    for d in dirs:
        files = list(d.iterdir())
        assert len(files) <= LIMITS["batch_files"] + 1  # + manifest.json
        parts = [f for f in files if ".part" in f.name]
        assert all(f.stat().st_size <= LIMITS["part"] for f in parts)
        assert sum(f.stat().st_size for f in parts) <= LIMITS["batch_bytes"]
    assert device_pack.join(dirs, tmp_path / "joined") == []
    for f in src.rglob("*"):
        if f.is_file():
            assert (tmp_path / "joined" / f.relative_to(src)).read_bytes() == f.read_bytes()


def test_a_missing_batch_or_corrupt_part_is_named(src: Path, tmp_path: Path) -> None:
    dirs = _pack_all(src, tmp_path)
    problems = device_pack.join(dirs[:-1], tmp_path / "j1")
    assert problems and all(f"[{len(dirs)}]" in p for p in problems)
    part = next(f for f in dirs[0].iterdir() if ".part" in f.name)
    part.write_bytes(b"x" * part.stat().st_size)
    problems = device_pack.join(dirs, tmp_path / "j2")
    assert any("sha256" in p for p in problems)


def test_a_later_batch_brings_the_small_files_written_after_the_first(
    src: Path, tmp_path: Path
) -> None:
    """Results written between two calls (an optional check that ran after batch 1 was packed)
    come back with the next batch, and joining keeps the newest copy."""
    n = device_pack.plan(src, **LIMITS)["batches"]
    device_pack.pack(src, tmp_path / "b1", 1, **LIMITS)
    (src / "results.json").write_text('{"accuracy": 0.7, "extras": "done"}')
    dirs = [tmp_path / "b1"]
    for b in range(2, n + 1):
        device_pack.pack(src, tmp_path / f"b{b}", b, **LIMITS)
        dirs.append(tmp_path / f"b{b}")
    assert device_pack.join(dirs, tmp_path / "joined") == []
    assert "extras" in (tmp_path / "joined" / "results.json").read_text()
