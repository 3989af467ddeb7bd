"""tools/gpu_recipe_check.py, the GPU preview of a recipe: how a job's spec becomes the config its
trainer reads, checked on a CPU (the training itself runs on a GPU)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location(
    "gpu_recipe_check", ROOT / "tools" / "gpu_recipe_check.py"
)
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)


def job_config(tmp_path: Path, text: str) -> dict:
    name, config, arch, overrides = check.parse_job(text)
    path = check.write_config(ROOT / config, arch, overrides, "cuda", tmp_path / f"{name}.toml")
    return tomllib.loads(path.read_text())


def test_a_job_trains_its_arch_with_the_recipes_own_per_arch_settings(tmp_path: Path) -> None:
    cfg = job_config(tmp_path, "r50=configs/cpu.toml:resnet50")
    assert cfg["archs"] == ["resnet50"]
    assert cfg["train"]["device"] == "cuda"
    # cpu.toml's [train.resnet50] table: 36 epochs, the first half at 32 px
    assert cfg["train"]["epochs"] == 36
    assert cfg["train"]["low_res_size"] == 32


def test_overrides_change_the_recipe_and_none_unsets_a_setting(tmp_path: Path) -> None:
    cfg = job_config(
        tmp_path,
        "x=configs/cpu.toml:resnet50:train.epochs=36,train.low_res_size=none,train.lr=0.05",
    )
    assert cfg["train"]["epochs"] == 36
    assert cfg["train"]["lr"] == 0.05
    assert "low_res_size" not in cfg["train"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("r50", "NAME=CONFIG:ARCH"),
        ("x=configs/cpu.toml:resnet50:train.schedule=cosine", "not a TOML value"),
        ("x=configs/cpu.toml:resnet50:train.low_res_fraction=0", "low_res_fraction"),
    ],
)
def test_a_bad_job_is_refused_with_what_to_write(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(SystemExit, match=says):
        job_config(tmp_path, text)
