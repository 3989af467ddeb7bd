"""Synthetic FER-2013 look-alikes for the unit tests (the real data is never needed here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_tui.data.index import CLASSES

REAL_TARBALL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013.tar.gz"


def synthetic_faces(n: int, label: int, seed: int = 0, size: int = 48) -> np.ndarray:
    """`n` uint8 (size, size) images whose pattern depends on `label`, so a model can learn it."""
    rng = np.random.default_rng(seed * 1000 + label)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = 0.5 + 0.4 * np.sin(2 * np.pi * ((label + 1) * xx + (label % 3) * yy))
    noise = rng.normal(0, 0.08, size=(n, size, size))
    return np.clip((base[None] + noise) * 255, 0, 255).astype(np.uint8)


def make_folder_dataset(
    root: Path, per_class: dict[str, int] | None = None, seed: int = 0, ext: str = ".jpg"
) -> Path:
    """Write `root/{train,test}/<class>/<Split>_<i>.jpg` in the Kaggle layout; return root."""
    import cv2

    per_class = per_class or {"train": 8, "test": 4}
    prefix = {"train": "Training", "test": "PublicTest"}
    for split, n in per_class.items():
        for label, cls in enumerate(CLASSES):
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i, img in enumerate(synthetic_faces(n, label, seed + (split == "test"))):
                name = prefix.get(split, split)
                if split == "test" and i % 2:
                    name = "PrivateTest"
                cv2.imwrite(str(folder / f"{name}_{label}{i:05d}{ext}"), img)
    return root
