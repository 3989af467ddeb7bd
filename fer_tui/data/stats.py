"""Statistics and checks over decoded splits: counts, imbalance, pixel mean/std, duplicates.

Numpy only. `find_problems` runs once when a source is decoded (its result is cached with the
arrays); `dataset_stats` builds the `fer-tui stats --json` document and the Dataset screen's view.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from fer_tui.data.index import CLASSES, SPLITS
from fer_tui.data.records import FerData, Problem, Split


def pixel_histogram(images: np.ndarray) -> np.ndarray:
    """(256,) int64 counts of each grey level; exact, and no float copy of the images."""
    flat = images.reshape(-1)
    hist = np.zeros(256, np.int64)
    # in chunks: bincount casts to int64 first, 8 bytes per pixel (0.5 GB for FER-2013 at once)
    for start in range(0, len(flat), 1 << 18):
        hist += np.bincount(flat[start : start + (1 << 18)], minlength=256)
    return hist


def mean_std(hist: np.ndarray) -> tuple[float | None, float | None]:
    """Mean and (population) std on the 0-255 scale from a grey-level histogram."""
    n = int(hist.sum())
    if n == 0:
        return None, None
    levels = np.arange(256, dtype=np.float64)
    mean = float((hist * levels).sum() / n)
    var = float((hist * (levels - mean) ** 2).sum() / n)
    return mean, math.sqrt(var)


def _digests(images: np.ndarray) -> list[bytes]:
    return [hashlib.blake2b(img.tobytes(), digest_size=16).digest() for img in images]


def duplicates(train: Split, test: Split) -> dict[str, object]:
    """Exact pixel copies: test images also in train, and repeats inside each split."""
    train_d, test_d = _digests(train.images), _digests(test.images)
    first_train: dict[bytes, int] = {}
    for i, d in enumerate(train_d):
        first_train.setdefault(d, i)
    across = [(j, first_train[d]) for j, d in enumerate(test_d) if d in first_train]
    conflicts = sum(1 for j, i in across if test.labels[j] != train.labels[i])
    return {
        "across": len(across),
        "label_conflicts": conflicts,
        "example": (test.names[across[0][0]], train.names[across[0][1]]) if across else None,
        "within": {
            "train": len(train_d) - len(set(train_d)),
            "test": len(test_d) - len(set(test_d)),
        },
    }


def blank_mask(images: np.ndarray) -> np.ndarray:
    """True for images of a single flat grey (FER-2013 has a few all-black ones)."""
    if not len(images):
        return np.zeros(0, bool)
    flat = images.reshape(len(images), -1)
    return flat.min(axis=1) == flat.max(axis=1)


def summarise(splits: dict[str, Split]) -> dict[str, Any]:
    """The costly part of the statistics (every pixel is read), as plain JSON-able values."""
    dup = duplicates(splits["train"], splits["test"])
    return {
        "histograms": {
            name: pixel_histogram(split.images).tolist() for name, split in splits.items()
        },
        "duplicates": {**dup, "example": list(dup["example"]) if dup["example"] else None},
    }


def find_problems(
    splits: dict[str, Split], source: str, summary: dict[str, Any] | None = None
) -> list[Problem]:
    """Dataset-level problems: missing splits, empty classes, duplicates, blank images."""
    problems: list[Problem] = []
    for name in SPLITS:
        split = splits[name]
        if not len(split):
            problems.append(
                Problem(
                    "missing_split",
                    f"{source} has no {name} images (expected a {name}/ folder, or Usage values "
                    f"{'Training' if name == 'train' else 'PublicTest/PrivateTest'} in a CSV)",
                )
            )
            continue
        for cls, n in split.counts().items():
            if n == 0:
                problems.append(
                    Problem("empty_class", f"{name}/{cls} has no images", f"{name}/{cls}", count=0)
                )
    dup = (summary or summarise(splits))["duplicates"]
    if dup["across"]:
        ex_test, ex_train = dup["example"]  # type: ignore[misc]
        problems.append(
            Problem(
                "duplicate_across_splits",
                f"{dup['across']} test image(s) are exact pixel copies of training images "
                f"({dup['label_conflicts']} with a different label), e.g. {ex_test} = {ex_train}",
                ex_test,
                count=int(dup["across"]),  # type: ignore[call-overload]
            )
        )
    for name in SPLITS:
        mask = blank_mask(splits[name].images)
        if mask.any():
            first = splits[name].names[int(np.argmax(mask))]
            problems.append(
                Problem(
                    "blank_image",
                    f"{int(mask.sum())} {name} image(s) are one flat grey with no face, "
                    f"e.g. {first}",
                    first,
                    count=int(mask.sum()),
                )
            )
    return problems


def imbalance(counts: dict[str, int]) -> dict[str, object]:
    """Largest/smallest class ratio (None when a class is empty) and each class's share."""
    total = sum(counts.values())
    largest = max(counts, key=lambda c: counts[c])
    smallest = min(counts, key=lambda c: counts[c])
    ratio = counts[largest] / counts[smallest] if counts[smallest] else None
    return {
        "ratio": round(ratio, 2) if ratio is not None else None,
        "largest": largest,
        "smallest": smallest,
        "share": {c: round(n / total, 4) if total else 0.0 for c, n in counts.items()},
    }


def split_stats(split: Split, hist: np.ndarray | None = None) -> dict[str, object]:
    """Total, per-class counts and pixel mean/std of one split."""
    counts = split.counts()
    mean, std = mean_std(hist if hist is not None else pixel_histogram(split.images))
    return {
        "total": len(split),
        "classes": counts,
        "pixel_mean": _round(mean),
        "pixel_std": _round(std),
    }


def _round(x: float | None) -> float | None:
    return round(x, 2) if x is not None else None


def dataset_stats(data: FerData) -> dict[str, object]:
    """The `fer-tui stats --json` document.

    `{"source", "format", "fingerprint", "classes", "splits": {name: {"total", "classes",
    "pixel_mean", "pixel_std"}}, "pixel_mean", "pixel_std", "imbalance", "duplicates_across_splits",
    "duplicates_within_splits", "problems"}`; pixel figures are on the 0-255 scale over train+test,
    imbalance is over train.
    """
    summary = data.summary or summarise(data.splits)
    hists = {name: np.asarray(h, np.int64) for name, h in summary["histograms"].items()}
    splits = {name: split_stats(split, hists.get(name)) for name, split in data.splits.items()}
    mean, std = mean_std(sum(hists[n] for n in SPLITS))
    dup = summary["duplicates"]
    return {
        "source": str(data.source),
        "format": data.format,
        "fingerprint": data.fingerprint,
        "classes": list(CLASSES),
        "splits": splits,
        "pixel_mean": _round(mean),
        "pixel_std": _round(std),
        "imbalance": {"split": "train", **imbalance(data.splits["train"].counts())},
        "duplicates_across_splits": dup["across"],
        "duplicates_within_splits": dup["within"],
        "problems": [p.to_dict() for p in data.problems],
    }


def sample_indices(
    split: Split,
    per_class: int,
    seed: int = 0,
    classes: Iterable[int] | None = None,
    blank: np.ndarray | None = None,
) -> list[list[int]]:
    """Up to `per_class` random indices of each class (blank images left out), per class.

    `blank` is `blank_mask(split.images)` when the caller has it already (it scans every pixel).
    """
    rng = np.random.default_rng(seed)
    usable = ~(blank if blank is not None else blank_mask(split.images))
    picks = []
    for c in classes if classes is not None else range(len(CLASSES)):
        idx = np.flatnonzero((split.labels == c) & usable)
        k = min(per_class, len(idx))
        picks.append(sorted(rng.choice(idx, size=k, replace=False).tolist()) if k else [])
    return picks
