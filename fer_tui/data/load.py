"""Load FER-2013 into uint8 arrays. (Minimal folder-layout loader; the full layer replaces it.)"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_tui.data.index import CLASSES
from fer_tui.errors import DataError
from fer_tui.paths import DATA_ENV, data_candidates


@dataclass
class Problem:
    kind: str
    """unreadable | wrong_size | duplicate_across_splits | empty_class | bad_row | ..."""
    message: str
    path: str | None = None


@dataclass
class Split:
    images: np.ndarray
    """(N, 48, 48) uint8."""
    labels: np.ndarray
    """(N,) int64 indices into CLASSES."""
    names: list[str]
    """Where each image came from: a relative path, or "line N" of a CSV."""

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        binc = np.bincount(self.labels, minlength=len(CLASSES))
        return {c: int(n) for c, n in zip(CLASSES, binc, strict=True)}


@dataclass
class FerData:
    source: Path
    format: str
    """folder | zip | tar | csv"""
    fingerprint: str
    splits: dict[str, Split]
    problems: list[Problem] = field(default_factory=list)


def resolve_source(source: str | os.PathLike[str] | None = None) -> Path:
    """The dataset path from the argument, $FER_TUI_DATA, or the default places."""
    if source:
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError(f"no dataset at {path}: check the path given to --data")
        return path
    if os.environ.get(DATA_ENV):
        return resolve_source(os.environ[DATA_ENV])
    for candidate in data_candidates():
        if candidate.exists():
            return candidate
    looked = ", ".join(str(p) for p in data_candidates())
    raise DataError(
        f"no FER-2013 data found (looked in {looked}). Download it from Kaggle "
        f"(msambare/fer2013) and pass --data PATH or set {DATA_ENV}."
    )


def load_dataset(source: str | os.PathLike[str] | None = None, **_: object) -> FerData:
    import cv2

    root = resolve_source(source)
    splits: dict[str, Split] = {}
    digest = hashlib.sha256()
    for split in ("train", "test"):
        images, labels, names = [], [], []
        for idx, cls in enumerate(CLASSES):
            for path in sorted((root / split / cls).glob("*")):
                raw = path.read_bytes()
                digest.update(raw)
                img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_GRAYSCALE)
                if img is None:
                    continue
                images.append(cv2.resize(img, (48, 48)) if img.shape != (48, 48) else img)
                labels.append(idx)
                names.append(f"{split}/{cls}/{path.name}")
        if images:
            splits[split] = Split(np.stack(images), np.array(labels, np.int64), names)
    if not splits:
        raise DataError(f"{root}: expected train/<class>/*.jpg and test/<class>/*.jpg")
    return FerData(root, "folder", digest.hexdigest()[:16], splits)
