"""Synthetic FER-2013 in each form the data layer reads: zip, tar and csv (folder: helpers.py)."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from fer_tui.data.index import CLASSES, CSV_EMOTION_TO_CLASS
from tests.helpers import synthetic_faces

#: CLASSES index -> fer2013.csv emotion id
CLASS_TO_CSV_EMOTION = {v: k for k, v in CSV_EMOTION_TO_CLASS.items()}


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def make_zip(folder: Path, dest: Path, prefix: str = "archive/") -> Path:
    """Zip a folder-layout dataset as Kaggle does, its files under `prefix` (may be "")."""
    with zipfile.ZipFile(dest, "w") as zf:
        for path in _files(folder):
            zf.write(path, prefix + path.relative_to(folder).as_posix())
    return dest


def make_tar(folder: Path, dest: Path, prefix: str = "") -> Path:
    """Tar (gzip when `dest` ends in .gz/.tgz) a folder-layout dataset, files under `prefix`."""
    mode = "w:gz" if dest.name.endswith((".gz", ".tgz")) else "w"
    with tarfile.open(dest, mode) as tf:
        for path in _files(folder):
            tf.add(path, prefix + path.relative_to(folder).as_posix())
    return dest


def add_bytes_to_zip(dest: Path, name: str, data: bytes) -> None:
    with zipfile.ZipFile(dest, "a") as zf:
        zf.writestr(name, data)


def tar_bytes(members: dict[str, bytes]) -> bytes:
    """A .tar.gz holding exactly `members` (name -> bytes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def csv_rows(
    per_usage: dict[str, int] | None = None, seed: int = 0
) -> list[tuple[int, np.ndarray, str]]:
    """(class index, 48x48 image, Usage) rows: classes interleaved, like the real file."""
    per_usage = per_usage or {"Training": 6, "PublicTest": 2, "PrivateTest": 2}
    rows = []
    for u, (usage, n) in enumerate(per_usage.items()):
        faces = {c: synthetic_faces(n, c, seed + u) for c in range(len(CLASSES))}
        for i in range(n):
            for c in range(len(CLASSES)):
                rows.append((c, faces[c][i], usage))
    return rows


def write_csv(
    dest: Path,
    rows: list[tuple[int, np.ndarray, str]],
    header: str = "emotion,pixels,Usage",
    extra_lines: dict[int, str] | None = None,
) -> Path:
    """Write fer2013.csv; `extra_lines` {position: raw line} inserts hand-made (bad) rows."""
    lines = [header]
    for c, img, usage in rows:
        pixels = " ".join(str(int(v)) for v in img.reshape(-1))
        lines.append(f"{CLASS_TO_CSV_EMOTION[c]},{pixels},{usage}")
    for pos, raw in sorted((extra_lines or {}).items()):
        lines.insert(pos, raw)
    dest.write_text("\n".join(lines) + "\n")
    return dest
