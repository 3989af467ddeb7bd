"""The records the data layer hands out: `FerData`, `Split`, `Problem` (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_tui.data.index import CLASSES


@dataclass
class Problem:
    """Something wrong in the data that did not stop it from loading."""

    kind: str
    """unreadable | wrong_size | unknown_class | bad_row | empty_class | missing_split |
    duplicate_across_splits | blank_image | cache_not_written"""
    message: str
    """One sentence for the user, naming the file or line."""
    path: str | None = None
    """The image's name inside the source (as in `Split.names`), when the problem has one."""
    count: int = 1
    """How many images the problem covers (duplicates and blank images are reported once)."""

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "message": self.message, "path": self.path, "count": self.count}


@dataclass
class Split:
    """The images of one split, in a fixed order (class, then file name; CSV: line order)."""

    images: np.ndarray
    """(N, 48, 48) uint8."""
    labels: np.ndarray
    """(N,) int64 indices into CLASSES."""
    names: list[str]
    """Where each image came from: a path inside the source, or "line N" of a CSV."""

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        """Images per class, every class present (zero when empty), in CLASSES order."""
        binc = np.bincount(self.labels, minlength=len(CLASSES))
        return {c: int(n) for c, n in zip(CLASSES, binc, strict=True)}

    def subset(self, index: np.ndarray) -> Split:
        """The images at `index` (an int array), in that order."""
        return Split(self.images[index], self.labels[index], [self.names[i] for i in index])

    @classmethod
    def empty(cls) -> Split:
        return cls(np.zeros((0, 48, 48), np.uint8), np.zeros(0, np.int64), [])


@dataclass
class FerData:
    """FER-2013 as decoded arrays, with where it came from and what was wrong in it."""

    source: Path
    """The file or folder read (after following --data / $FER_TUI_DATA / the defaults)."""
    format: str
    """folder | zip | tar | csv"""
    fingerprint: str
    """Cheap key of the source (see `fer_tui.data.load`): the cache key, recorded in checkpoints."""
    splits: dict[str, Split]
    """"train" and "test" always (possibly empty: see problems); "public_test" and
    "private_test" too when the source tells them apart ("test" is their union)."""
    problems: list[Problem] = field(default_factory=list)
    from_cache: bool = False
    """True when the arrays came from the decoded cache rather than the source."""
    summary: dict[str, Any] | None = None
    """Grey-level histograms per split and duplicate counts (`stats.summarise`): computed once
    when decoding and cached with the arrays, so statistics on a cached load cost nothing."""
