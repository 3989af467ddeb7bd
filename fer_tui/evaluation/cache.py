"""Reports and probabilities cached in `<cache_dir>/eval/`, per (checkpoint sha256, data
fingerprint, split, TTA, backend and, for torch, the device type).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from fer_tui import paths
from fer_tui.files import atomic_write_bytes, atomic_write_text, file_sha256

#: Bump when the report layout changes, so stale cache entries are recomputed.
CACHE_VERSION = 1


def cache_root() -> Path:
    return paths.cache_dir() / "eval"


def cache_key(
    checkpoint_sha: str,
    fingerprint: str,
    split: str,
    tta: str,
    backend: str = "torch",
    device: str = "auto",
) -> str:
    """The cache entry of one evaluation: files, split, TTA, backend and, for torch, the device
    type it runs on (CUDA's TF32 convolutions do not give the CPU's probabilities).

    `device` is resolved as the evaluation resolves it, so a GPU that is not there fails here,
    before a cached report could stand in for it.
    """
    raw = f"v{CACHE_VERSION}|{checkpoint_sha}|{fingerprint}|{split}|{tta}"
    if backend != "torch":  # torch keys stay as they were before backends existed
        raw += f"|{backend}"  # onnxruntime runs on the CPU whatever the device
    else:
        from fer_tui.models import resolve_device

        kind = resolve_device(device).type
        if kind != "cpu":  # CPU keys stay as they were before devices were keyed
            raw += f"|{kind}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def cache_get(key: str) -> tuple[dict[str, Any], np.ndarray] | None:
    """A cached (report, probs), or None when absent or unreadable."""
    root = cache_root()
    try:
        report = json.loads((root / f"{key}.json").read_text(encoding="utf-8"))
        probs = np.load(root / f"{key}.npy", allow_pickle=False)
    except (OSError, ValueError):
        return None
    return report, probs


def cache_put(key: str, report: dict[str, Any], probs: np.ndarray) -> None:
    """Store a report and its probabilities; a cache that cannot be written is skipped."""
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.save(buf, probs.astype(np.float32), allow_pickle=False)
        atomic_write_bytes(root / f"{key}.npy", buf.getvalue())
        # the report last: a reader that finds the report also finds its probabilities
        atomic_write_text(root / f"{key}.json", json.dumps(report))
    except OSError:
        pass


def find_cached_report(
    checkpoint: str | os.PathLike[str],
    *,
    split: str = "test",
    tta: str = "none",
    source: str | os.PathLike[str] | None = None,
    backend: str | None = None,
) -> dict[str, Any] | None:
    """The newest cached report for this checkpoint file (and data source, when given),
    without loading the data: what the Evaluation screen shows at once when it opens.
    backend None: whichever backend made it."""
    root = cache_root()
    if not root.is_dir() or not Path(checkpoint).is_file():
        return None
    sha = file_sha256(checkpoint)
    want_source = str(Path(source).expanduser().resolve()) if source else None
    best: tuple[float, dict[str, Any]] | None = None
    for path in root.glob("*.json"):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
            mtime = path.stat().st_mtime
        except (OSError, ValueError):
            continue
        data = report.get("data", {})
        if (
            report.get("model", {}).get("sha256") != sha
            or data.get("split") != split
            or report.get("tta") != tta
            or report.get("cache_version") != CACHE_VERSION
            or (backend is not None and report.get("engine", "torch") != backend)
        ):
            continue
        if want_source is not None and data.get("source") != want_source:
            continue
        if best is None or mtime > best[0]:
            best = (mtime, report)
    if best is None:
        return None
    report = best[1]
    report["model"]["checkpoint"] = str(checkpoint)
    return report
