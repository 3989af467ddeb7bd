"""The first screen must not wait for torch, and the core must not import the UI.

The import-linter contracts in pyproject.toml check the import graph statically; these tests
import the modules for real, in a fresh interpreter, because a static graph cannot prove that a
deferred import really is deferred.
"""

from __future__ import annotations

import importlib.util
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

import fer_tui

ROOT = Path(__file__).resolve().parents[2]
#: Not core: the entry points, the subcommands and the TUI.
NOT_CORE = {"fer_tui.cli", "fer_tui.__main__", "fer_tui.train", "fer_tui.commands", "fer_tui.tui"}


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def _submodules(package: str) -> list[str]:
    """Every module of `package`, found on disk (so a new one is covered without a list)."""
    path = importlib.util.find_spec(package).submodule_search_locations
    return sorted(m.name for m in pkgutil.walk_packages(path, prefix=f"{package}."))


def _core_modules() -> list[str]:
    found = _submodules("fer_tui")
    return [m for m in found if not any(m == n or m.startswith(f"{n}.") for n in NOT_CORE)]


SCREENS = _submodules("fer_tui.tui.screens")


@pytest.mark.parametrize("module", ["fer_tui.cli", "fer_tui.tui.app", *SCREENS])
def test_entry_point_app_and_screens_do_not_import_torch(module: str) -> None:
    """Importing the entry point, the App or any screen leaves torch (seconds to import) and
    cv2 unloaded: a screen reaches them only inside workers or child processes."""
    loaded = _modules_after(f"import {module}")
    assert "torch" not in loaded
    assert "cv2" not in loaded


def test_the_whole_tui_does_not_import_torch() -> None:
    """Every module under fer_tui.tui (widgets too), imported together, leaves torch and cv2
    unloaded."""
    loaded = _modules_after("; ".join(f"import {m}" for m in _submodules("fer_tui.tui")))
    assert "torch" not in loaded and "cv2" not in loaded


def test_cli_does_not_import_textual() -> None:
    """`fer-tui stats|train|evaluate|live|export|ship` never load Textual: the entry point imports
    the TUI only when it opens it."""
    loaded = _modules_after("import fer_tui.cli")
    assert not any(m == "textual" or m.startswith("textual.") for m in loaded)
    assert not any(m.startswith("fer_tui.tui") for m in loaded)


def test_core_does_not_import_the_ui_or_the_cli() -> None:
    """Every core module, imported for real, loads no Textual, no fer_tui.tui and no
    fer_tui.commands (harlequin's boundary)."""
    core = _core_modules()
    assert "fer_tui.runs" in core and "fer_tui.training.trainer" in core
    loaded = _modules_after("; ".join(f"import {m}" for m in core))
    assert not any(m == "textual" or m.startswith("textual.") for m in loaded)
    assert not any(m.startswith(("fer_tui.tui", "fer_tui.commands")) for m in loaded)
    assert "fer_tui.cli" not in loaded


@pytest.mark.parametrize(
    "module",
    [
        "fer_tui.runs",
        "fer_tui.run_tracker",
        "fer_tui.launch",
        "fer_tui.checkpoints",
        "fer_tui.backends",
        "fer_tui.live.display",
        "fer_tui.live.config",
        "fer_tui.evaluation.tables",
        "fer_tui.data.load",
    ],
)
def test_what_the_screens_import_from_the_core_is_torch_free(module: str) -> None:
    """The core modules the screens import at the top stay free of torch and cv2."""
    loaded = _modules_after(f"import {module}")
    assert "torch" not in loaded and "cv2" not in loaded


def test_the_import_contract_names_every_core_package() -> None:
    """The import-linter contract lists every top-level core module, so a new one cannot slip
    past it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contract = config["tool"]["importlinter"]["contracts"][0]
    top = {f"fer_tui.{m.name}" for m in pkgutil.iter_modules(fer_tui.__path__)} - NOT_CORE
    assert set(contract["source_modules"]) == top
    assert {"fer_tui.tui", "fer_tui.commands", "textual"} <= set(contract["forbidden_modules"])


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter not installed")
def test_import_contracts_are_kept() -> None:
    """`lint-imports` (the [dev] extra) finds every contract of pyproject.toml kept."""
    out = subprocess.run(
        ["lint-imports", "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]


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
