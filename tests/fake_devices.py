"""A CPU-only stand-in for `torch.cuda`, so device checks are tested without a GPU."""

from __future__ import annotations

import pytest


def pretend_gpus(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make `torch.cuda` report these GPUs (none: no CUDA at all). Nothing can run on them:
    only the checks that look before any CUDA call are testable this way."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: bool(names))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(names))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: names[i or 0])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
