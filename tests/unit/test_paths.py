"""fer_tui.paths: where the recipes and the shipped checkpoints are found, and where
`fer-tui ship` writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_tui import paths


def test_a_checkout_uses_the_working_folder_then_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a checkout: ./configs and ./checkpoints when the working folder has them, else the
    checkout's (fer_tui runs from source, so there is no packaged copy)."""
    monkeypatch.chdir(tmp_path)
    assert paths.packaged_dir("configs") is None and paths.packaged_dir("checkpoints") is None
    assert paths.configs_dir() == paths.project_root() / "configs"
    assert paths.checkpoints_dir() == paths.project_root() / "checkpoints"
    assert paths.ship_dir() == paths.project_root() / "checkpoints"
    (tmp_path / "configs").mkdir()
    (tmp_path / "checkpoints").mkdir()
    assert paths.configs_dir() == Path("configs")
    assert paths.checkpoints_dir() == paths.ship_dir() == Path("checkpoints")


def test_an_installed_package_reads_its_own_copy_but_ships_to_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed: the package's copies of configs/ and checkpoints/ are found, but `fer-tui
    ship` writes ./checkpoints rather than into site-packages."""
    package = tmp_path / "site" / "fer_tui"
    packaged = {"configs": package / "shipped_configs", "checkpoints": package / "shipped_ckpts"}
    monkeypatch.setattr(paths, "packaged_dir", packaged.get)
    monkeypatch.setattr(paths, "project_root", lambda: tmp_path / "site")
    monkeypatch.chdir(tmp_path)
    assert paths.configs_dir() == packaged["configs"]
    assert paths.checkpoints_dir() == packaged["checkpoints"]
    assert paths.ship_dir() == Path("checkpoints")


def test_a_recipe_names_shipped_weights_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """model.init_from = "checkpoints/NAME.pt" finds the shipped NAME.pt from a folder without
    one, a file of that name in ./checkpoints first, and leaves any other path as given."""
    monkeypatch.chdir(tmp_path)
    shipped = paths.shipped_checkpoint("checkpoints/resnet18-cpu.pt")
    assert shipped == paths.project_root() / "checkpoints" / "resnet18-cpu.pt"
    assert shipped.is_file()
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "resnet18-cpu.pt").write_bytes(b"mine")
    assert paths.shipped_checkpoint("checkpoints/resnet18-cpu.pt") == Path(
        "checkpoints/resnet18-cpu.pt"
    )
    assert paths.shipped_checkpoint("runs/x/last.pt") == Path("runs/x/last.pt")
    assert paths.shipped_checkpoint(tmp_path / "a.pt") == tmp_path / "a.pt"
