"""File helpers shared by the data cache, checkpoints, exports, reports and run dirs.

Nothing here knows about runs, models or data: a reader of any of these files sees the old
version or the new one, never half of one.

Every temp file is written beside its target as `.<name>.<pid>-<random>.tmp`: the writer's pid
in the name lets the next writer in that folder (`sweep_temp_files`) remove what a killed one
left, and only that: a temp file whose writer still runs is never touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from fer_tui.errors import FerError

#: `.<name>.<pid>-<random>.tmp`, as `atomic_write` and `temp_path` name their temp files
TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[A-Za-z0-9_]+\.tmp$")
#: atomic_write's temp names in older versions, without a pid: `.<name>.<random>.tmp`
LEGACY_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")
#: an export's temp names in older versions, beside `<name>`: `<name>.tmp`, `<name>.fp32.tmp`
#: and `<name>.pre.tmp` (only swept for a given `<name>`)
LEGACY_EXPORT_SUFFIXES = (".tmp", ".fp32.tmp", ".pre.tmp")
#: a temp file of an older version that has not changed for this long was left by a kill
LEGACY_TEMP_AGE = 3600.0


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists (zombies count as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child that nobody reaped is not a running writer
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: the mode of a new file, as open() would make it (mkstemp's temp files are 0600)
NEW_FILE_MODE = 0o666 & ~_umask()


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """Call `write(file)` on a temp file, then rename it over `path`: a reader sees the old
    file or the new one, never half of one. The file keeps the mode of the one it replaces, or
    gets the mode a plain open() would give it."""
    path = Path(path)
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = NEW_FILE_MODE
    try:
        fd, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp"
        )
    except OSError as exc:
        raise _naming(exc, path) from exc
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(exc, path) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _naming(exc: OSError, path: Path) -> OSError:
    """`exc` with `path` as its file name (a full disk names no file; mkstemp names the temp
    file, which the user never asked for)."""
    if exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror, str(path))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def temp_path(path: str | os.PathLike[str]) -> Path:
    """A fresh temp name beside `path` for writers that want a file name, not a file object
    (ONNX, TorchScript): `.<name>.<pid>-<random>.tmp`. The caller removes it on failure."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def sweep_temp_files(
    folder: str | os.PathLike[str], names: Iterable[str] | None = None
) -> list[Path]:
    """Remove the temp files that killed writers left in `folder`; the files removed.

    Only temp files of this module's naming are touched, and only those of the targets `names`
    when given. One whose writer (the pid in its name) still runs is kept. With `names`, the
    pid-less temp names of older versions count too, once they have not changed for an hour.
    A folder that cannot be listed or a file that cannot be removed is left as it is."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    wanted = set(names) if names is not None else None
    legacy_export = {f"{n}{suffix}" for n in wanted or () for suffix in LEGACY_EXPORT_SUFFIXES}
    stale_before = time.time() - LEGACY_TEMP_AGE
    for entry in entries:
        if not entry.name.endswith(".tmp"):
            continue
        match = TEMP_NAME.match(entry.name)
        if match is not None:
            if wanted is not None and match["name"] not in wanted:
                continue
            if pid_alive(int(match["pid"])):
                continue
        else:
            legacy = LEGACY_TEMP_NAME.match(entry.name)
            ours = entry.name in legacy_export or (
                legacy is not None and wanted is not None and legacy["name"] in wanted
            )
            if not ours or _changed_since(entry, stale_before):
                continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


def _changed_since(entry: os.DirEntry[str], t: float) -> bool:
    try:
        return entry.stat(follow_symlinks=False).st_mtime >= t
    except OSError:
        return True


class TargetBusy(FerError):
    """Another process is writing the same file."""


@contextlib.contextmanager
def lock_target(
    path: str | os.PathLike[str],
    *,
    timeout: float = 120.0,
    on_wait: Callable[[int | None], object] | None = None,
) -> Iterator[None]:
    """Hold `.<name>.lock` beside `path` while writing it: a second writer of the same file
    waits (calling `on_wait(pid of the first)` once), and gives up with TargetBusy after
    `timeout` seconds. The lock is an flock, so a killed holder frees it; the lock file goes
    with the last holder."""
    path = Path(path)
    lock = path.with_name(f".{path.name}.lock")
    deadline = time.monotonic() + timeout
    waited = False
    while True:
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_pid(fd)
            os.close(fd)
            if time.monotonic() >= deadline:
                who = f" (pid {holder})" if holder else ""
                raise TargetBusy(
                    f"{path} is being written by another fer-tui{who}: let it finish, then "
                    f"try again"
                ) from None
            if not waited and on_wait is not None:
                on_wait(holder)
            waited = True
            time.sleep(0.1)
            continue
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the holder before us removed it as we opened it: take the new one
            os.close(fd)
            continue
        break
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


def _lock_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).split()[0])
    except (OSError, ValueError, IndexError):
        return None
