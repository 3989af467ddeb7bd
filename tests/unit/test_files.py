"""fer_tui.files: atomic writes and file hashes."""

from __future__ import annotations

import hashlib
import stat
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


def test_atomic_writes_get_the_mode_of_a_plain_write(tmp_path: Path) -> None:
    """A new file is readable as open() would have made it (not the temp file's 0600), and a
    replaced file keeps its mode."""
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    new = tmp_path / "new.pt"
    files.atomic_write_bytes(new, b"data")
    assert stat.S_IMODE(new.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    kept = tmp_path / "kept.pt"
    kept.write_bytes(b"old")
    kept.chmod(0o640)
    files.atomic_write_bytes(kept, b"new")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640 and kept.read_bytes() == b"new"
