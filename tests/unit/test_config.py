"""fer_tui.config: bad TOML names the key and the fix; per-arch overrides; round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_tui.config import RunConfig, TrainConfig, from_dict, load_config, to_toml
from fer_tui.errors import ConfigError

BAD = Path(__file__).resolve().parents[1] / "data" / "configs"
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize(
    "name, needles",
    [
        ("bad_unknown_key", ["train.epochz", "did you mean 'epochs'"]),
        ("bad_value_type", ["train.lr", "expected a number", "'fast'"]),
        ("bad_value_range", ["train.epochs", "at least 1"]),
        ("bad_syntax", ["not valid TOML"]),
        ("bad_arch_override", ["batch_sise", "resnet50", "did you mean 'batch_size'"]),
        ("bad_arch", ["archs", "resnet101", "resnet18"]),
        ("bad_weights_channels", ["model.in_channels", "in_channels = 3"]),
        ("bad_section", ["optimizer", "unknown key"]),
    ],
)
def test_bad_config_names_the_key_and_file(name: str, needles: list[str]) -> None:
    """Each bad fixture fails with a ConfigError naming the file, the key and the fix."""
    path = BAD / f"{name}.toml"
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message


def test_missing_file_points_at_configs() -> None:
    """A config path that does not exist says so and names the shipped configs."""
    with pytest.raises(ConfigError, match="configs/scratch.toml"):
        load_config("/nonexistent/x.toml")


@pytest.mark.parametrize("name", sorted(p.stem for p in CONFIGS.glob("*.toml")))
def test_shipped_configs_load_and_round_trip(name: str, tmp_path: Path) -> None:
    """Every shipped recipe is valid, and to_toml writes back an identical config."""
    cfg = load_config(CONFIGS / f"{name}.toml")
    for arch in cfg.archs:
        resolved = cfg.for_arch(arch)
        path = tmp_path / f"{arch}.toml"
        path.write_text(to_toml(resolved))
        assert load_config(path) == resolved


def test_recipes_say_what_the_issue_asks() -> None:
    """paper = ImageNet weights, layer4+fc trainable, 20 epochs; scratch = cifar stem, from
    scratch, label smoothing, warmup; smoke = 2 CPU epochs of resnet18."""
    paper = load_config(CONFIGS / "paper.toml")
    assert paper.model.weights == "IMAGENET1K_V1" and paper.model.in_channels == 3
    assert paper.model.trainable == ["layer4", "fc"] and paper.train.epochs == 20
    scratch = load_config(CONFIGS / "scratch.toml")
    assert scratch.model.stem == "cifar" and scratch.model.weights is None
    assert scratch.train.label_smoothing > 0 and scratch.train.warmup_epochs > 0
    assert scratch.archs == ["resnet18", "resnet34", "resnet50"]
    smoke = load_config(CONFIGS / "smoke.toml")
    assert smoke.archs == ["resnet18"] and smoke.train.epochs == 2
    assert smoke.train.device == "cpu"


def test_the_cycle_recipe_starts_each_arch_from_its_shipped_cpu_model() -> None:
    """cpu-cycle.toml starts every arch from checkpoints/<arch>-cpu.pt, whose model it keeps,
    with a lower, shorter schedule; data and augmentation stay cpu.toml's, so the holdout that
    chooses between the cycle's weights and the shipped ones is the one neither trained on."""
    from fer_tui.models import read_checkpoint
    from fer_tui.paths import shipped_checkpoint

    cpu, cycle = load_config(CONFIGS / "cpu.toml"), load_config(CONFIGS / "cpu-cycle.toml")
    assert cycle.archs == cpu.archs and (cycle.data, cycle.augment) == (cpu.data, cpu.augment)
    for arch in cycle.archs:
        ours = cycle.for_arch(arch)
        assert ours.model.init_from == f"checkpoints/{arch}-cpu.pt"
        meta = read_checkpoint(shipped_checkpoint(ours.model.init_from))["meta"]
        assert (meta["arch"], meta["stem"], meta["in_channels"]) == (
            arch,
            ours.model.stem,
            ours.model.in_channels,
        )
        assert ours.train.lr < cpu.for_arch(arch).train.lr
        assert ours.train.epochs < cpu.for_arch(arch).train.epochs


def test_per_arch_override_applies_to_that_arch_only() -> None:
    """[train.resnet50] changes resnet50's run and leaves the others on the shared value."""
    cfg = from_dict(
        {"archs": ["resnet18", "resnet50"], "train": {"lr": 0.1, "resnet50": {"lr": 0.05}}}
    )
    assert cfg.for_arch("resnet50").train.lr == 0.05
    assert cfg.for_arch("resnet18").train.lr == 0.1
    assert cfg.for_arch("resnet50").archs == ["resnet50"]
    assert cfg.for_arch("resnet50").overrides == {}


def test_bad_value_in_an_override_names_it() -> None:
    """A bad type inside a per-arch table names the section and the arch."""
    with pytest.raises(ConfigError, match=r"train\.resnet34\.epochs"):
        from_dict({"train": {"resnet34": {"epochs": "many"}}})


def test_replace_validates_and_defaults_come_from_the_dataclasses() -> None:
    """replace() re-validates; an empty config equals the dataclass defaults."""
    cfg = from_dict({})
    assert cfg == RunConfig() and cfg.train == TrainConfig()
    assert cfg.replace(train={"epochs": 3}).train.epochs == 3
    with pytest.raises(ConfigError, match="train.batch_size"):
        cfg.replace(train={"batch_size": 0})
