"""The first screen must not wait for torch, and the core must not import the UI."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("module", ["fer_tui.cli", "fer_tui.tui.app"])
def test_cli_and_app_do_not_import_torch(module: str) -> None:
    """Importing the entry point or the App leaves torch (seconds to import) unloaded."""
    loaded = _modules_after(f"import {module}")
    assert "torch" not in loaded
    assert "cv2" not in loaded


@pytest.mark.parametrize(
    "module",
    ["fer_tui.config", "fer_tui.runs", "fer_tui.data.load", "fer_tui.cli"],
)
def test_core_does_not_import_textual(module: str) -> None:
    """Core modules stay usable without the UI (harlequin's boundary)."""
    loaded = _modules_after(f"import {module}")
    assert not any(m == "textual" or m.startswith("textual.") for m in loaded)
    assert not any(m.startswith("fer_tui.tui") for m in loaded)


def test_cache_dir_without_platformdirs(tmp_path, monkeypatch) -> None:
    """The trainer runs on images without platformdirs (the GPU box): the cache still works."""
    import builtins

    from fer_tui import paths

    real_import = builtins.__import__

    def no_platformdirs(name, *args, **kwargs):
        if name == "platformdirs":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.delenv("FER_TUI_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(builtins, "__import__", no_platformdirs)
    assert paths.cache_dir() == tmp_path / "fer-tui"
