"""fer_tui.files: atomic writes and file hashes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fer_tui import files


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path: Path, monkeypatch) -> None:
    """If the replace fails, the old file is intact and no temp file is left behind."""
    path = tmp_path / "last.pt"
    files.atomic_write_text(path, "old")

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        files.atomic_write_bytes(path, b"new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_file_sha256_is_the_hash_of_the_bytes(tmp_path: Path) -> None:
    """file_sha256 reads the file in chunks and gives hashlib's digest of its bytes."""
    path = tmp_path / "blob"
    data = bytes(range(256)) * 5000  # over one 1 MiB chunk
    path.write_bytes(data)
    assert files.file_sha256(path) == hashlib.sha256(data).hexdigest()
