"""A plain (non-editable) install works as fully as a checkout: from any other folder,
`fer-tui train` finds its recipes and `fer-tui live` its default model inside the package."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fer_tui.checkpoints import DEFAULT_CHECKPOINTS

ROOT = Path(__file__).resolve().parents[2]

#: What a build reads from the repository.
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", "fer_tui", "configs", "checkpoints")

#: Run with only the install target on the path: what the package finds, as JSON.
PROBE = """
import json, sys
from pathlib import Path
from importlib.resources import files

import fer_tui
from fer_tui import paths
from fer_tui.checkpoints import find_checkpoint, shipped_checkpoints
from fer_tui.commands.live import resolve_checkpoint
from fer_tui.commands.train import _config_path
from fer_tui.config import load_config
from fer_tui.launch import gpu_available
from fer_tui.live.detection import YUNET, load_yunet

class Args:
    config = None

default_config = _config_path(Args())
shipped_dir = paths.checkpoints_dir()
print(json.dumps({
    "package": fer_tui.__file__,
    "configs_dir": str(paths.configs_dir()),
    "configs": sorted(p.name for p in paths.configs_dir().glob("*.toml")),
    "gpu": gpu_available(),
    "default_config": str(default_config),
    "default_recipe": load_config(default_config).name,
    "checkpoints_dir": str(paths.checkpoints_dir()),
    "shipped_bytes": {p.name: p.stat().st_size for p in shipped_checkpoints(shipped_dir)},
    "found": str(find_checkpoint(paths.checkpoints_dir(), "runs")),
    "live_default": str(resolve_checkpoint(None, None)),
    "ship_dir": str(paths.ship_dir()),
    "tcss": files("fer_tui").joinpath("tui/app.tcss").is_file(),
    "paper": files("fer_tui").joinpath("reference/paper.json").is_file(),
    "yunet": str(YUNET),
    "yunet_files": sorted(p.name for p in YUNET.parent.iterdir()),
    "yunet_loads": load_yunet(YUNET) is not None,
}))
"""


@pytest.mark.slow
def test_a_plain_install_finds_the_shipped_recipes_and_models(tmp_path: Path) -> None:
    """`pip install .` (not -e) puts configs/*.toml and checkpoints/*.pt into the package, and
    paths.configs_dir()/checkpoints_dir() find them there when the working folder has none:
    the default recipe loads, live's default model is the first shipped one of
    DEFAULT_CHECKPOINTS, `fer-tui ship` would write to ./checkpoints rather than into the
    package, and the TUI's stylesheet, the paper's figures and the YuNet face detector come
    along."""
    # built from a copy: an in-place build leaves build/ and *.egg-info in the checkout, and
    # files left in build/ by an older build would end up in the wheel
    src, target, elsewhere = tmp_path / "src", tmp_path / "site", tmp_path / "elsewhere"
    src.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, src / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation"]
    built = subprocess.run(
        [*pip, "--no-index", "--target", str(target), "."],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    shutil.rmtree(src)  # nothing may be read from the sources from here on

    elsewhere.mkdir()
    probe = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=elsewhere,
        env={**env, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    found = json.loads(probe.stdout)

    package = target / "fer_tui"
    assert Path(found["package"]).parent == package
    assert Path(found["configs_dir"]) == package / "shipped_configs"
    assert found["configs"] == sorted(p.name for p in (ROOT / "configs").glob("*.toml"))
    recipe = "scratch" if found["gpu"] else "cpu"  # the GPU recipe only where a GPU is seen
    assert found["default_config"] == str(package / "shipped_configs" / f"{recipe}.toml")
    assert found["default_recipe"] == recipe
    assert Path(found["checkpoints_dir"]) == package / "shipped_checkpoints"
    shipped = {p.name: p.stat().st_size for p in sorted((ROOT / "checkpoints").glob("*.pt"))}
    assert found["shipped_bytes"] == shipped
    live = next((name for name in DEFAULT_CHECKPOINTS if name in shipped), None)
    if live is not None:
        default = str(package / "shipped_checkpoints" / live)
        assert found["found"] == found["live_default"] == default
    assert found["ship_dir"] == "checkpoints"
    assert found["tcss"] and found["paper"]
    # the YuNet face detector, its licence and its source notes: the live view works offline
    assert Path(found["yunet"]) == package / "live" / "models" / "yunet_s_320_320.onnx"
    assert found["yunet_files"] == ["LICENSE", "README.md", "yunet_s_320_320.onnx"]
    assert found["yunet_loads"]
