"""Checkpoints and data -> Evaluation: a report and the probabilities behind it.

Cheap checks come first (files, class sets, split name, backend) so that bad input fails before
the data is decoded; results come from the cache when the same files were evaluated before.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_tui.backends import check_backend, pick_backend
from fer_tui.data.holdout import holdout_rows
from fer_tui.data.index import CLASSES, SPLITS, SUBSPLITS
from fer_tui.data.records import Split
from fer_tui.errors import CheckpointError, DataError, FerError
from fer_tui.evaluation.cache import CACHE_VERSION, cache_get, cache_key, cache_put
from fer_tui.evaluation.metrics import AUC_IN_TABLE, compute_metrics
from fer_tui.files import file_sha256

TTAS: tuple[str, ...] = ("none", "flip", "tencrop")

#: progress(stage, done, total): stage is "data" or "predict <checkpoint name>".
Progress = Callable[[str, int, int], None]


#: The part of train that the checkpoints' runs held out to choose their weights (data.val =
#: "holdout"): cut again from train the way the runs cut it.
HOLDOUT = "holdout"


def check_split_name(split: str) -> None:
    """Reject a split name no data source can have, before anything slow happens."""
    known = (*SPLITS, *SUBSPLITS, HOLDOUT)
    if split not in known:
        raise DataError(f"unknown split '{split}': use one of {', '.join(known)}")


def checkpoint_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a fer-tui checkpoint, after checking it is a 7-class FER-2013 one."""
    from fer_tui.models import read_checkpoint

    try:
        meta = read_checkpoint(path)["meta"]
    except FerError:
        raise
    except Exception as exc:  # torch.load raises struct.error etc. on some garbage files
        raise CheckpointError(
            f"{path} is truncated or not a PyTorch checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    if list(meta.get("classes", [])) != list(CLASSES):
        raise CheckpointError(
            f"{path} was trained for classes {meta.get('classes')}, not "
            f"{list(CLASSES)}: fer-tui needs a 7-class FER-2013 checkpoint"
        )
    return meta


def get_split(data: Any, split: str) -> Any:
    """`data.splits[split]`, or a DataError naming the splits the data has."""
    check_split_name(split)
    found = getattr(data, "splits", {}) or {}
    if split not in found or len(found[split]) == 0:
        have = ", ".join(found) or "none"
        raise DataError(
            f"{getattr(data, 'source', 'the data')} has no '{split}' split "
            f"(it has: {have}); evaluation needs FER-2013's test/<class>/ images "
            f"or fer2013.csv's PublicTest/PrivateTest rows"
        )
    return found[split]


def holdout_cut(metas: Sequence[tuple[Path, dict[str, Any]]]) -> tuple[float, int | None]:
    """(holdout_fraction, limit) of the holdout that every checkpoint's run kept out of training,
    or a DataError when one has none or they differ."""
    cuts = set()
    for path, meta in metas:
        data = (meta.get("config") or {}).get("data")
        if not data:
            raise DataError(
                f"{path} does not record the config it was trained with, so its holdout is "
                f"unknown: evaluate it with --split test"
            )
        if data.get("val") != HOLDOUT:
            raise DataError(
                f"{path} validated on the test split, so its run trained on all of train and "
                f"held nothing out: evaluate it with --split test"
            )
        cuts.add((float(data["holdout_fraction"]), data.get("limit")))
    if len(cuts) > 1:
        raise DataError(
            "these checkpoints held out different parts of train "
            f"({', '.join(f'fraction {f}, limit {n}' for f, n in sorted(cuts, key=str))}): "
            "evaluate them on --split holdout one at a time"
        )
    return cuts.pop()


def holdout_part(train: Any, fraction: float, limit: int | None) -> Split:
    """The faces of `train` that a run with this holdout fraction and limit never trained on."""
    _, held = holdout_rows(train.labels, fraction, limit)
    return Split(train.images[held], train.labels[held], [train.names[i] for i in held])


@dataclass
class Evaluation:
    """One model on one split: its report, the probabilities and what they belong to."""

    report: dict[str, Any]
    probs: np.ndarray
    """(N, 7) float32."""
    labels: np.ndarray
    """(N,) true class indices."""
    names: list[str]
    """Where each image came from (the split's names)."""
    cached: bool = False


class Cancelled(FerError):
    """The evaluation was cancelled (a newer one started, or the screen closed)."""


def model_info(path: str | os.PathLike[str], meta: dict[str, Any], sha: str) -> dict[str, Any]:
    return {
        "arch": meta.get("arch"),
        "checkpoint": str(path),
        "sha256": sha,
        "stem": meta.get("stem"),
        "in_channels": meta.get("in_channels"),
        "recipe": meta.get("recipe"),
        "epoch": meta.get("epoch"),
        "best_metric": meta.get("best_metric"),
        # how a shipped checkpoint's weights were chosen (fer-tui ship), None for a run's own
        "selection": meta.get("selection"),
        "logit_adjustment_tau": (meta.get("logit_adjustment") or {}).get("tau"),
    }


def load_data(
    source: Any,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Any:
    """A FerData from a path (or None: the default places); a FerData passes through.

    progress gets ("data", done, total) while the data layer decodes (not on its cache hit).
    """
    if hasattr(source, "splits"):
        return source
    from fer_tui.data.load import LoadCancelled, load_dataset

    def step(done: int, total: int) -> None:
        if progress is not None:
            progress("data", done, total)

    step(0, 0)
    try:
        return load_dataset(source, progress=step, cancelled=cancelled)
    except LoadCancelled:
        raise Cancelled("evaluation cancelled while loading the data") from None


def evaluate_checkpoints(
    checkpoints: Sequence[str | os.PathLike[str]],
    *,
    data: Any = None,
    split: str = "test",
    tta: str = "none",
    device: str = "auto",
    batch_size: int = 256,
    use_cache: bool = True,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
    backend: str = "torch",
    on_result: Callable[[int, Evaluation], None] | None = None,
) -> list[Evaluation]:
    """Evaluate each checkpoint on `split` of `data` (a path, None or a loaded FerData).

    Cheap checks come first (files, class sets, split name) so that bad input fails before the
    data is decoded; results come from the cache when the same files were evaluated before.
    backend "auto" is `backends.pick_backend`'s choice (the fastest installed on this device:
    what `fer-tui evaluate` and the Evaluation screen ask for by default).
    on_result(i, evaluation) is called as each checkpoint is done, in order, before the next.
    """
    if not checkpoints:
        raise CheckpointError(
            "no checkpoint given: pass --checkpoint PATH (shipped ones are in "
            "checkpoints/, trained ones in runs/<run>/best.pt)"
        )
    if tta not in TTAS:
        raise FerError(f"unknown test-time augmentation '{tta}': use {', '.join(TTAS)}")
    if batch_size < 1:
        raise FerError(f"batch size must be at least 1 (got {batch_size})")
    check_backend(backend, device)
    check_split_name(split)
    backend = pick_backend(backend, device)
    metas = [(Path(p), checkpoint_meta(p)) for p in checkpoints]
    cut = holdout_cut(metas) if split == HOLDOUT else None
    fer = load_data(data, progress, cancelled)
    if cut is not None:
        part = holdout_part(get_split(fer, "train"), *cut)
    else:
        part = get_split(fer, split)
    labels = np.asarray(part.labels, dtype=np.int64)
    data_info = {
        "source": str(Path(fer.source).expanduser().resolve()),
        "fingerprint": fer.fingerprint,
        "split": split,
        "n": len(labels),
        **({"holdout_fraction": cut[0], "limit": cut[1]} if cut is not None else {}),
    }
    # the cache tells holdouts apart by their cut
    cached_split = f"{split}-{cut[0]}-{cut[1]}" if cut is not None else split
    out: list[Evaluation] = []

    def done(evaluation: Evaluation) -> None:
        out.append(evaluation)
        if on_result is not None:
            on_result(len(out) - 1, evaluation)

    for path, meta in metas:
        sha = file_sha256(path)
        key = cache_key(sha, fer.fingerprint, cached_split, tta, backend, device)
        hit = cache_get(key) if use_cache else None
        if hit is not None and len(hit[1]) == len(labels):
            report, probs = hit
            report["model"]["checkpoint"] = str(path)
            done(Evaluation(report, probs, labels, list(part.names), cached=True))
            continue
        probs, seconds = _predict(
            path,
            part.images,
            tta=tta,
            device=device,
            batch_size=batch_size,
            progress=progress,
            cancelled=cancelled,
            backend=backend,
        )
        report = {
            "model": model_info(path, meta, sha),
            "data": data_info,
            "tta": tta,
            "engine": backend,  # the report's name for the backend
            "auc_in_table": AUC_IN_TABLE,
            "seconds": round(seconds, 3),
            "cache_version": CACHE_VERSION,
            **compute_metrics(labels, probs),
        }
        cache_put(key, report, probs)
        done(Evaluation(report, probs, labels, list(part.names)))
    return out


def _predict(
    path: Path,
    images: np.ndarray,
    *,
    tta: str,
    device: str,
    batch_size: int,
    progress: Progress | None,
    cancelled: Callable[[], bool] | None,
    backend: str = "torch",
) -> tuple[np.ndarray, float]:
    from fer_tui.backends import load_model
    from fer_tui.models import predict_proba

    model, meta, dev = load_model(path, backend=backend, device=device)
    stage = f"predict {path.name}"

    def step(done: int, total: int) -> None:
        if cancelled is not None and cancelled():
            raise Cancelled("evaluation cancelled")
        if progress is not None:
            progress(stage, done, total)

    if progress is not None:
        progress(stage, 0, len(images))
    start = time.perf_counter()
    probs = predict_proba(
        model, meta, images, batch_size=batch_size, tta=tta, progress=step, device=dev
    )
    return probs, time.perf_counter() - start
