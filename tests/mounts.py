"""Real small and read-only file systems for the disk-failure tests (root only).

`small_tmpfs(path, size)` mounts a tmpfs of `size` at `path`; `read_only(path)` bind-mounts a
folder read-only over itself. Both unmount on the way out. Without root, or where mounting is
not allowed (a container without CAP_SYS_ADMIN), the test is skipped with the reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs or a read-only bind mount")
    if shutil.which("mount") is None:
        pytest.skip("no mount command on this machine")
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"mount {' '.join(args)} failed here: {done.stderr.strip()}")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of `size` (mount's syntax: "2m") mounted at `path` (created)."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    try:
        yield path
    finally:
        _umount(path)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """`path` bind-mounted read-only over itself: its files stay readable, nothing can be
    written or removed in it."""
    _mount("--bind", str(path), str(path))
    try:
        _mount("-o", "remount,bind,ro", str(path))
        probe = path / ".write-probe"
        try:
            probe.write_text("")
        except OSError as exc:
            if exc.errno != errno.EROFS:
                raise
        else:
            probe.unlink()
            pytest.skip("a read-only bind mount is still writable here")
        yield path
    finally:
        _umount(path)


def fill(path: Path, leave: int = 0) -> Path:
    """Fill the file system of `path` with one file, leaving about `leave` bytes free."""
    filler = path / "filler"
    free = shutil.disk_usage(path).free - leave
    with open(filler, "wb") as f:
        chunk = b"\0" * (1 << 16)
        while free > 0:
            try:
                free -= f.write(chunk[: min(len(chunk), free)])
                f.flush()
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    return filler
