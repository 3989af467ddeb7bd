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
