"""`fer-tui train` without --config picks the recipe for where the run will train, and says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fer_tui import launch
from fer_tui.cli import main
from fer_tui.training import run as training_run
from tests.fake_devices import pretend_gpus


@pytest.mark.parametrize(
    ("gpu", "device", "recipe"),
    [
        (True, None, "scratch"),
        (True, "cpu", "cpu"),
        (False, None, "cpu"),
        (False, "auto", "cpu"),
    ],
)
def test_train_without_config_picks_the_recipe_for_the_machine(
    gpu: bool,
    device: str | None,
    recipe: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The GPU recipe where a GPU is seen, the 2-core CPU recipe elsewhere or with --device
    cpu; stderr names the recipe and how to pick another."""
    monkeypatch.setattr(launch, "gpu_available", lambda: gpu)
    trained: list[Any] = []

    def fake_fit_run(cfg: Any, run_dir: Path, **kwargs: Any) -> dict[str, Any]:
        trained.append(cfg)
        return {"status": "finished"}

    monkeypatch.setattr(training_run, "fit_run", fake_fit_run)
    argv = ["train", "--arch", "resnet18", "--runs-dir", str(tmp_path / "runs")]
    if device is not None:
        argv += ["--device", device]
    pretend_gpus(monkeypatch, *(["NVIDIA H200"] if gpu else []))
    assert main(argv) == 0
    assert [cfg.name for cfg in trained] == [recipe]
    assert f"recipe: {recipe}.toml (pick another with --config)" in capsys.readouterr().err


def test_an_explicit_config_is_used_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--config wins over the machine, and no recipe line is printed."""
    monkeypatch.setattr(launch, "gpu_available", lambda: False)
    trained: list[Any] = []
    monkeypatch.setattr(
        training_run,
        "fit_run",
        lambda cfg, run_dir, **k: trained.append(cfg) or {"status": "finished"},
    )
    config = Path(__file__).resolve().parents[2] / "configs" / "smoke.toml"
    argv = ["train", "--config", str(config), "--runs-dir", str(tmp_path / "runs")]
    assert main([*argv, "--arch", "resnet18"]) == 0
    assert [cfg.name for cfg in trained] == ["smoke"]
    assert "recipe:" not in capsys.readouterr().err
