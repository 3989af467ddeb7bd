"""The part of train that a run holds out to choose its weights, cut the same way by the
trainer, `fer-tui evaluate --split holdout` and `fer-tui ship` (no torch)."""

from __future__ import annotations

import numpy as np


def first_n(n_total: int, limit: int | None) -> np.ndarray:
    # a fixed shuffle (not the run's seed) so every seed and arch sees the same subset
    idx = np.random.default_rng(12345).permutation(n_total)
    return np.sort(idx[:limit]) if limit is not None else np.arange(n_total)


def holdout_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, holdout) index arrays: `fraction` of each class held out."""
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(fraction * len(idx)))
        k = min(max(k, 1), len(idx) - 1) if len(idx) > 1 else 0
        held.append(idx[:k])
        keep.append(idx[k:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


def holdout_rows(
    labels: np.ndarray, fraction: float, limit: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(trained on, held out): rows of the train split for a run with data.val = "holdout".
    The cut does not depend on the run's seed, so every run of a recipe, and `fer-tui evaluate
    --split holdout`, hold out the same faces."""
    rows = first_n(len(labels), limit)
    keep, held = holdout_split(np.asarray(labels)[rows], fraction, seed=0)
    return rows[keep], rows[held]
