"""The images a run trains and validates on, as uint8 arrays cut from the dataset (no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fer_tui.config import RunConfig
from fer_tui.data.holdout import first_n, holdout_rows
from fer_tui.errors import FerError


@dataclass
class Arrays:
    """The images a run uses, as uint8 (N, H, W) + int64 labels."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    val_name: str
    """"test" or "holdout"."""
    fingerprint: str | None = None
    train_rows: np.ndarray | None = None
    """Rows of the dataset's train split that train_x holds, in order (teachers' targets are
    looked up by them)."""


def prepare_arrays(cfg: RunConfig, data: Any | None = None) -> Arrays:
    """Load the dataset named by the config (or use `data`, a FerData) and cut it as asked."""
    if data is None:
        from fer_tui.data.load import load_dataset

        data = load_dataset(cfg.data.path)
    train, test = data.splits["train"], data.splits.get("test")
    if cfg.data.val == "holdout":
        keep, held = holdout_rows(train.labels, cfg.data.holdout_fraction, cfg.data.limit)
        tx, ty = train.images, train.labels
        return Arrays(
            tx[keep], ty[keep], tx[held], ty[held], "holdout", data.fingerprint, train_rows=keep
        )
    ti = first_n(len(train.labels), cfg.data.limit)
    tx, ty = train.images[ti], train.labels[ti]
    if test is None or len(test.labels) == 0:
        raise FerError(
            "the dataset has no test split to validate on: set data.val = "
            '"holdout" in the config to validate on a slice of train'
        )
    vi = first_n(len(test.labels), cfg.data.limit)
    return Arrays(tx, ty, test.images[vi], test.labels[vi], "test", data.fingerprint, train_rows=ti)
