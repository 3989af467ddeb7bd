"""Run configs: TOML files in `configs/`, read with `tomllib` into frozen dataclasses.

A config file has up to six tables, each optional, each mapping onto one dataclass below:

    name = "scratch"                 # recipe name, shown in the TUI and stored in checkpoints
    archs = ["resnet18", "resnet34", "resnet50"]
    [data]     -> DataConfig
    [model]    -> ModelConfig
    [augment]  -> AugmentConfig
    [train]    -> TrainConfig
    [distill]  -> DistillConfig      (teachers for knowledge distillation; none by default)
    [model.resnet50] / [train.resnet50]   per-arch overrides of [model] / [train]

The dataclasses are the one source of defaults. Unknown keys are rejected with the closest
known key suggested; values are type-checked and range-checked, and the error names the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import tomllib

from fer_tui.errors import ConfigError

ARCHS: tuple[str, ...] = ("resnet18", "resnet34", "resnet50")


@dataclass(frozen=True)
class DataConfig:
    path: str | None = None
    """Dataset location (folder, .zip, .tar.gz or fer2013.csv); None = --data / $FER_TUI_DATA."""
    val: Literal["test", "holdout"] = "test"
    """What validation runs on: the test split (as the paper does) or a held-out slice of train."""
    holdout_fraction: float = 0.1
    """Share of train held out for validation when val = "holdout" (stratified, seeded)."""
    limit: int | None = None
    """Use only this many images per split (smoke tests); None = all."""


@dataclass(frozen=True)
class ModelConfig:
    stem: Literal["cifar", "compact", "imagenet"] = "cifar"
    """cifar: 3x3/1 conv, no pool (48x48 into layer1); compact: 3x3/2 conv, no pool (24x24,
    4x cheaper, for CPU live use); imagenet: torchvision's 7x7/2 conv + pool (12x12)."""
    in_channels: Literal[1, 3] = 1
    """1 = a grayscale first conv; 3 = grayscale replicated to RGB (needed for ImageNet weights)."""
    weights: str | None = None
    """None = from scratch; a torchvision weights name ("IMAGENET1K_V1") or a .pth file path."""
    init_from: str | None = None
    """A fer-tui checkpoint (.pt) to start from instead of new weights: another cosine cycle
    for a trained or shipped model. Its arch, stem and input channels must be the run's."""
    trainable: list[str] | None = None
    """Top-level modules left trainable (e.g. ["layer4", "fc"]); None = all of them."""
    image_size: int = 48
    """Side of the square input, pixels."""
    dropout: float = 0.0
    """Dropout before the fc head, 0 = none."""


@dataclass(frozen=True)
class AugmentConfig:
    flip: bool = True
    """Random horizontal flip, p = 0.5."""
    crop_padding: int = 4
    """Random crop after this much reflection padding, pixels; 0 = off."""
    rotation_deg: float = 10.0
    """Random rotation in [-rotation_deg, rotation_deg], degrees."""
    scale: float = 0.1
    """Random zoom in [1 - scale, 1 + scale]."""
    translate: float = 0.0
    """Random shift up to this fraction of the image side."""
    shear_deg: float = 0.0
    """Random shear in [-shear_deg, shear_deg], degrees."""
    brightness: float = 0.2
    """Random brightness factor in [1 - b, 1 + b]."""
    contrast: float = 0.2
    """Random contrast factor in [1 - c, 1 + c]."""
    erasing_p: float = 0.25
    """Probability of random erasing of one rectangle."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    """Number of epochs."""
    batch_size: int = 128
    """Images per optimizer step (per process under DDP)."""
    optimizer: Literal["sgd", "adamw"] = "sgd"
    """SGD (momentum/Nesterov) or AdamW."""
    lr: float = 0.1
    """Peak learning rate."""
    momentum: float = 0.9
    """SGD momentum."""
    nesterov: bool = True
    """Nesterov momentum for SGD."""
    weight_decay: float = 5e-4
    """L2 / decoupled weight decay."""
    schedule: Literal["cosine", "onecycle", "constant"] = "cosine"
    """Learning-rate schedule after warmup."""
    warmup_epochs: float = 1.0
    """Linear warmup, epochs."""
    label_smoothing: float = 0.1
    """Cross-entropy label smoothing."""
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    """Autocast precision: auto = bf16 where the device runs it natively and faster (a CUDA GPU;
    a CPU with avx512_bf16/amx_bf16 where a few timed steps show bf16 beating fp32), else fp32;
    bf16 forces it; fp16 is CUDA-only (fp32 on a CPU); off = fp32. Weights stay fp32 (see
    `fer_tui.precision`)."""
    ema_decay: float = 0.0
    """Exponential moving average of the weights, updated every optimizer step with this decay
    (0.999 averages over about the last 1,000 steps); 0 = off. The run then also writes ema.pt
    and reports the EMA's validation accuracy beside the raw weights'."""
    low_res_size: int | None = None
    """Progressive resizing: train the first `low_res_fraction` of the epochs on faces resampled
    to this side (pixels), the rest at model.image_size; None = off. Evaluation always runs at
    model.image_size. A 32-pixel epoch of the compact-stem ResNet18 costs about 0.6 of a
    48-pixel one on two CPU cores."""
    low_res_fraction: float = 0.5
    """Share of the epochs (the first ones) trained at low_res_size."""
    channels_last: bool = True
    """Use channels_last memory format."""
    compile: bool = False
    """torch.compile the model (pays off on a GPU for long runs)."""
    seed: int = 0
    """Seed for weights, shuffling and augmentation."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train; "auto" = cuda when available."""
    log_every_steps: int = 20
    """Write a step event every this many optimizer steps."""


@dataclass(frozen=True)
class DistillConfig:
    teachers: list[str] = field(default_factory=list)
    """fer-tui checkpoints whose mean probabilities the student learns from (knowledge
    distillation); empty = plain training on the labels. Each teacher predicts every training
    face once, cached under the cache dir (keyed by its file hash and the data)."""
    temperature: float = 2.0
    """Softens the teachers' and the student's distributions in the soft loss (T^2 rescales it)."""
    weight: float = 0.5
    """Weight of the soft loss (KL to the teachers); the label loss gets 1 - weight."""
    tta: Literal["none", "flip"] = "flip"
    """Test-time augmentation of the teachers: "flip" averages each face and its mirror."""


@dataclass(frozen=True)
class RunConfig:
    name: str = "scratch"
    """Recipe name."""
    archs: list[str] = field(default_factory=lambda: ["resnet18"])
    """Architectures trained by this config (torchvision names)."""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-arch tables, e.g. {"resnet50": {"train": {"lr": 0.05}}}."""

    def for_arch(self, arch: str) -> RunConfig:
        """This config with the per-arch overrides of `arch` applied and `archs = [arch]`."""
        if arch not in ARCHS:
            raise ConfigError(f"unknown arch '{arch}': choose one of {', '.join(ARCHS)}")
        raw = to_dict(self)
        raw["archs"] = [arch]
        for section, values in self.overrides.get(arch, {}).items():
            raw[section] = {**raw[section], **values}
        raw["overrides"] = {}
        return from_dict(raw, where=f"[{arch}]")

    def replace(self, **sections: dict[str, Any]) -> RunConfig:
        """A copy with some fields changed: `cfg.replace(train={"epochs": 2})`; validated."""
        raw = to_dict(self)
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(raw.get(key), dict):
                raw[key] = {**raw[key], **value}
            else:
                raw[key] = value
        return from_dict(raw)


def _check_value(value: Any, hint: Any, where: str) -> Any:
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _check_value(value, option, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is Literal:
        allowed = get_args(hint)
        if value not in allowed:
            shown = ", ".join(repr(a) for a in allowed)
            raise ConfigError(f"{where}: {value!r} is not one of {shown}")
        return value
    if origin is list:
        (item,) = get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_check_value(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table [{where}], got {value!r}")
        return build_table(hint, value, where)
    return value


def build_table(cls: type, table: dict[str, Any], where: str) -> Any:
    """The dataclass `cls` from a TOML table: unknown keys (with the closest known one) and
    values of the wrong type raise ConfigError naming `where.key`."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in table:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(names)})"
            raise ConfigError(f"{_join(where, key)}: unknown key{hint}")
    kwargs = {k: _check_value(v, hints[k], _join(where, k)) for k, v in table.items()}
    return cls(**kwargs)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


_SECTIONS = ("data", "model", "augment", "train", "distill")


def _validate(cfg: RunConfig, where: str) -> None:
    def need(ok: bool, key: str, what: str) -> None:
        if not ok:
            raise ConfigError(f"{_join(where, key)}: {what}")

    for arch in cfg.archs:
        need(arch in ARCHS, "archs", f"unknown arch '{arch}' (choose from {', '.join(ARCHS)})")
    need(len(cfg.archs) > 0, "archs", "must name at least one arch")
    d, m, a, t = cfg.data, cfg.model, cfg.augment, cfg.train
    need(0.0 < d.holdout_fraction < 1.0, "data.holdout_fraction", "must be between 0 and 1")
    need(d.limit is None or d.limit > 0, "data.limit", "must be a positive integer")
    need(m.image_size >= 16, "model.image_size", "must be at least 16")
    need(0.0 <= m.dropout < 1.0, "model.dropout", "must be in [0, 1)")
    need(
        m.weights is None or m.in_channels == 3,
        "model.in_channels",
        "pretrained weights expect 3 input channels: set in_channels = 3",
    )
    need(
        m.weights is None or m.init_from is None,
        "model.init_from",
        "starts from a fer-tui checkpoint's weights: leave model.weights unset with it",
    )
    need(a.crop_padding >= 0, "augment.crop_padding", "must be >= 0")
    need(0.0 <= a.erasing_p <= 1.0, "augment.erasing_p", "must be in [0, 1]")
    for key in ("rotation_deg", "scale", "translate", "shear_deg", "brightness", "contrast"):
        need(getattr(a, key) >= 0, f"augment.{key}", "must be >= 0")
    need(0.0 <= a.scale < 1.0, "augment.scale", "must be in [0, 1)")
    need(t.epochs >= 1, "train.epochs", "must be at least 1")
    need(t.batch_size >= 1, "train.batch_size", "must be at least 1")
    need(t.lr > 0, "train.lr", "must be > 0")
    need(t.weight_decay >= 0, "train.weight_decay", "must be >= 0")
    need(t.warmup_epochs >= 0, "train.warmup_epochs", "must be >= 0")
    need(0.0 <= t.label_smoothing < 1.0, "train.label_smoothing", "must be in [0, 1)")
    need(0.0 <= t.ema_decay < 1.0, "train.ema_decay", "must be in [0, 1)")
    need(
        t.low_res_size is None or 16 <= t.low_res_size < m.image_size,
        "train.low_res_size",
        f"must be at least 16 and below model.image_size ({m.image_size})",
    )
    need(0.0 < t.low_res_fraction < 1.0, "train.low_res_fraction", "must be between 0 and 1")
    need(t.log_every_steps >= 1, "train.log_every_steps", "must be at least 1")
    k = cfg.distill
    need(k.temperature > 0, "distill.temperature", "must be > 0")
    need(0.0 <= k.weight <= 1.0, "distill.weight", "must be in [0, 1]")
    for arch in cfg.overrides:
        need(arch in ARCHS, arch, f"unknown arch table '[*.{arch}]'")


def from_dict(raw: dict[str, Any], where: str = "") -> RunConfig:
    """Build and validate a RunConfig from a parsed TOML document."""
    raw = dict(raw)
    overrides: dict[str, dict[str, Any]] = {
        k: dict(v) for k, v in (raw.pop("overrides", None) or {}).items()
    }
    # per-arch sub-tables ([train.resnet50]) move out of their section into `overrides`
    for section in _SECTIONS:
        table = dict(raw.get(section) or {})
        for arch in ARCHS:
            if isinstance(table.get(arch), dict):
                overrides.setdefault(arch, {})[section] = table.pop(arch)
        if section in raw:
            raw[section] = table
    raw["overrides"] = overrides
    cfg = build_table(RunConfig, raw, where)
    for arch, tables in overrides.items():
        for section, values in tables.items():
            if section not in _SECTIONS:
                raise ConfigError(f"{_join(where, arch)}: unknown section '{section}'")
            hint = typing.get_type_hints(RunConfig)[section]
            build_table(hint, values, _join(where, f"{section}.{arch}"))
    _validate(cfg, where)
    return cfg


def load_config(path: str | Path) -> RunConfig:
    """Read a TOML run config; raise ConfigError naming the file and key on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"config file {path} does not exist: pass one of the files in configs/ "
            f"(e.g. configs/scratch.toml) or write your own"
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    try:
        return from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    """The config as plain data (for run dirs and checkpoints)."""
    return dataclasses.asdict(cfg)


def to_toml(cfg: RunConfig) -> str:
    """Serialise a config back to TOML (None values are left out, as TOML has no null)."""
    raw = to_dict(cfg)
    lines = [f"name = {_toml_value(raw['name'])}", f"archs = {_toml_value(raw['archs'])}"]
    for section in _SECTIONS:
        lines += ["", f"[{section}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in raw[section].items() if v is not None]
    for arch, tables in raw["overrides"].items():
        for section, values in tables.items():
            lines += ["", f"[{section}.{arch}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in values.items() if v is not None]
    return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")
