"""Errors a user can act on.

Every core module raises a `FerError` subclass for bad input, with a message that names the
problem and the fix. The CLI prints the message (no traceback) and exits non-zero; the TUI shows
it on the screen.
"""

from __future__ import annotations


class FerError(Exception):
    """An error whose message is meant for the user, not a traceback."""

    exit_code: int = 2


class DataError(FerError):
    """The dataset is missing, malformed or unreadable."""


class ConfigError(FerError):
    """A run config has an unknown key or a bad value."""


class CheckpointError(FerError):
    """A checkpoint is missing, truncated, of another arch or not a plain tensor dict."""


class RunError(FerError):
    """A run directory is locked, missing or not writable."""


class LiveError(FerError):
    """A camera, video or display problem in the live pipeline."""


class DiskError(FerError):
    """A file could not be written or read: no space, a read-only or foreign file system, too
    many open files, a name too long."""


def os_error_message(exc: OSError, path: object = None) -> str:
    """One sentence for an OSError: the path, what happened and the fix.

    `path` names the file when the error does not (a write that ran out of space carries no
    file name)."""
    import errno

    where = path if path is not None else exc.filename
    if where is None:
        where = "a file"
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        what = "no space left on the device" if code == errno.ENOSPC else "disk quota exceeded"
        return (
            f"cannot write {where}: {what}: free some space there (old runs, "
            f"checkpoints, caches) or write to another disk, then try again"
        )
    if code == errno.EROFS:
        return (
            f"cannot write {where}: the file system is read-only: copy it to a writable "
            f"folder and work there, or remount it read-write"
        )
    if code in (errno.EACCES, errno.EPERM):
        return (
            f"permission denied for {where}: check the owner and mode of it and its folder "
            f"(ls -ld), or use a folder you can write"
        )
    if code in (errno.EMFILE, errno.ENFILE):
        return (
            f"cannot open {where}: too many open files: close other programs, or raise the "
            f"limit (ulimit -n 4096) and try again"
        )
    if code == errno.ENAMETOOLONG:
        return (
            f"cannot use {where}: the file name is too long for the file system: choose a "
            f"shorter name or folder"
        )
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{where}: {reason}: check the path and that its disk is there, then try again"


def disk_error(exc: OSError, path: object = None) -> DiskError:
    """A DiskError with `os_error_message`; raise it `from None`."""
    return DiskError(os_error_message(exc, path))
