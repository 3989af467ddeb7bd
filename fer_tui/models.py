"""ResNet18/34/50 for 48x48 grayscale faces, and the checkpoint format.

Models are torchvision's `resnet18|resnet34|resnet50` with `fc` replaced by a 7-class head.
Three stems:
- "cifar" (the scratch recipe): a 3x3 stride-1 first conv and no max-pool. torchvision's stem
  divides a 48x48 face by 4 before the first block (12x12), which throws away most of it; the
  small stem keeps 48x48 into layer1 and 6x6 into layer4. It costs 16x the imagenet stem's
  FLOPs (ResNet18: about 1.8 GFLOP per face), which is fine on a GPU and slow on a laptop CPU.
- "compact": a 3x3 stride-2 first conv and no max-pool: 24x24 into layer1, 4x cheaper than
  "cifar", for models meant to run live on a CPU.
- "imagenet" (the paper's recipe): torchvision's 7x7/2 conv + max-pool, kept as is so that
  ImageNet weights fit. Those filters expect RGB, so the grayscale face is replicated to three
  channels (`in_channels = 3`) rather than the first conv being altered.

A checkpoint is a plain dict that `torch.load(path, weights_only=True)` reads, so loading one never
runs pickled code:

    {"format": "fer-tui-checkpoint", "format_version": 1,
     "model": state_dict,
     "meta": {arch, stem, in_channels, num_classes, classes, image_size, normalization, dropout,
              recipe, config, epoch, best_metric, data_fingerprint, version, torch_version},
     # training checkpoints (last.pt) also hold:
     "optimizer", "scheduler", "scaler", "rng", "epoch", "best_metric", "best_epoch"}
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn

from fer_tui import __version__
from fer_tui.config import ARCHS
from fer_tui.data.index import CLASSES
from fer_tui.errors import CheckpointError, ConfigError, FerError
from fer_tui.files import atomic_write_bytes
from fer_tui.preprocess import NORMALIZATION, to_input

FORMAT = "fer-tui-checkpoint"
FORMAT_VERSION = 1


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device for "auto" (cuda when available, else cpu), "cpu", "cuda" or "cuda:N".

    A name that is not one of these, or a GPU this machine does not have, is a FerError that
    names the GPUs there are, never CUDA's "invalid device ordinal" later on.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise FerError(f"unknown device '{name}': use auto, cpu, cuda or cuda:N (N a GPU index)")
    if device.type == "cpu":
        return device
    if not torch.cuda.is_available():
        raise FerError(f"device '{name}' was asked for but no GPU is available: use --device cpu")
    count = torch.cuda.device_count()
    if (device.index or 0) >= count:
        raise FerError(f"device '{name}' does not exist: {_gpu_listing(count)}")
    return device


def _gpu_listing(count: int) -> str:
    """What to say about the GPUs here, e.g. "this machine has 1 GPU (cuda:0 NVIDIA H200); use
    --device cuda:0, or --device cpu"."""
    gpus = []
    for i in range(count):
        try:
            gpus.append(f"cuda:{i} {torch.cuda.get_device_name(i)}")
        except Exception:  # the name is a nicety
            gpus.append(f"cuda:{i}")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = f" with CUDA_VISIBLE_DEVICES={visible}" if visible is not None else ""
    if count == 0:
        return f"this machine has no GPU{where}; use --device cpu"
    which = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
    plural = "" if count == 1 else "s"
    return (
        f"this machine has {count} GPU{plural}{where} ({', '.join(gpus)}); "
        f"use --device {which}, or --device cpu"
    )


def _pretrained(arch: str, weights: str) -> nn.Module:
    """torchvision's model with ImageNet weights: a local file, or the TORCH_HOME cache."""
    ctor = getattr(torchvision.models, arch)
    path = Path(weights).expanduser()
    if path.suffix in (".pth", ".pt") or path.exists():
        if not path.is_file():
            raise ConfigError(f"model.weights: no weights file at {path}")
        model = ctor(weights=None)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except Exception as exc:
            raise ConfigError(
                f"model.weights: {path} is not {arch} ImageNet weights ({exc})"
            ) from None
        return model
    enum = torchvision.models.get_model_weights(arch)
    try:
        w = enum.DEFAULT if weights == "DEFAULT" else enum[weights]
    except KeyError:
        names = ", ".join(m.name for m in enum)
        raise ConfigError(
            f"model.weights: unknown {arch} weights '{weights}' (known: {names}, "
            f"DEFAULT, or a local .pth file)"
        ) from None
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(w.url)
    try:
        return ctor(weights=w)
    except Exception as exc:  # offline: urllib errors, ssl, timeouts
        raise FerError(
            f"cannot load {arch} {w.name} ImageNet weights: not in the torch cache ({cached}) and "
            f"the download failed ({type(exc).__name__}: {exc}). Copy {os.path.basename(w.url)} "
            f"from {w.url} into {cached.parent} (or set TORCH_HOME), or set model.weights to a "
            f"local .pth file, or train from scratch (configs/scratch.toml)."
        ) from None


def build_model(
    arch: str,
    *,
    num_classes: int = len(CLASSES),
    stem: str = "cifar",
    in_channels: int = 1,
    weights: str | None = None,
    trainable: list[str] | None = None,
    dropout: float = 0.0,
) -> nn.Module:
    """A torchvision ResNet with a `num_classes` head, the given stem and freeze policy."""
    if arch not in ARCHS:
        raise ConfigError(f"unknown arch '{arch}': choose one of {', '.join(ARCHS)}")
    if weights:
        model = _pretrained(arch, weights)
    else:
        # zero-init the last BN of each block: every block starts as identity (Goyal et al.)
        model = getattr(torchvision.models, arch)(weights=None, zero_init_residual=True)
    if stem in ("cifar", "compact"):
        stride = 1 if stem == "cifar" else 2
        model.conv1 = nn.Conv2d(
            in_channels, 64, kernel_size=3, stride=stride, padding=1, bias=False
        )
        model.maxpool = nn.Identity()
    elif in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    features = model.fc.in_features
    head = nn.Linear(features, num_classes)
    model.fc = nn.Sequential(nn.Dropout(dropout), head) if dropout > 0 else head
    if trainable is not None:
        children = dict(model.named_children())
        unknown = [name for name in trainable if name not in children]
        if unknown:
            raise ConfigError(
                f"model.trainable: unknown module(s) {unknown} (known: {', '.join(children)})"
            )
        for name, module in children.items():
            module.requires_grad_(name in trainable)
    return model


def model_meta(arch: str, cfg: Any | None = None, **extra: Any) -> dict[str, Any]:
    """The metadata stored with every checkpoint, from a RunConfig (or defaults)."""
    from fer_tui.config import RunConfig, to_dict

    cfg = cfg or RunConfig(archs=[arch])
    meta = {
        "arch": arch,
        "stem": cfg.model.stem,
        "in_channels": cfg.model.in_channels,
        "num_classes": len(CLASSES),
        "classes": list(CLASSES),
        "image_size": cfg.model.image_size,
        "normalization": dict(NORMALIZATION),
        "dropout": cfg.model.dropout,
        "recipe": cfg.name,
        "config": to_dict(cfg),
        "epoch": 0,
        "best_metric": None,
        "data_fingerprint": None,
        "version": __version__,
        "torch_version": str(torch.__version__),  # TorchVersion is not weights_only-safe
    }
    meta.update(extra)
    return meta


#: what wrappers put in front of state_dict keys: torch.compile and DistributedDataParallel
WRAPPER_PREFIXES: tuple[str, ...] = ("_orig_mod.", "module.")


def _plain_key(key: str) -> str:
    """A state_dict key without wrapper prefixes, whatever their order and depth: compile(DDP(m))
    gives `_orig_mod.module.fc.weight`, DDP(compile(m)) `module._orig_mod.fc.weight`."""
    while key.startswith(WRAPPER_PREFIXES):
        for prefix in WRAPPER_PREFIXES:
            key = key.removeprefix(prefix)
    return key


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module | dict[str, torch.Tensor],
    meta: dict[str, Any],
    *,
    half: bool = False,
    **state: Any,
) -> None:
    """Atomically write a checkpoint; `half` stores float weights as fp16 (shipped files)."""
    sd = model.state_dict() if isinstance(model, nn.Module) else model
    sd = {_plain_key(k): v.detach().cpu() for k, v in sd.items()}
    if half:
        sd = {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": sd,
        "meta": meta,
        **state,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def read_checkpoint(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> dict[str, Any]:
    """The raw checkpoint dict, safely (weights_only), with clear errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {path}: check the path (shipped ones are in "
            f"checkpoints/, trained ones in runs/<run>/best.pt)"
        )
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        why = _unpickler_reason(exc)
        if "GLOBAL" not in why:  # junk bytes (a text file, say) fail on an unknown opcode
            raise CheckpointError(
                f"{path} is truncated or not a PyTorch checkpoint ({why or 'unreadable'})"
            ) from None
        raise CheckpointError(
            f"{path} holds Python objects, not a plain dict of tensors, and was not loaded "
            f"(fer-tui never runs pickled code): {why}"
        ) from None
    except Exception as exc:  # torch.load fails on junk with anything from struct to IndexError
        why = _first_sentence(str(exc)) or "the file is empty or cut short"
        raise CheckpointError(f"{path} is truncated or not a PyTorch checkpoint ({why})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or "meta" not in ckpt:
        raise CheckpointError(
            f"{path} is not a fer-tui checkpoint (no 'format'/'meta' keys): "
            f"train one with `fer-tui train` or use checkpoints/*.pt"
        )
    return ckpt


def _unpickler_reason(exc: pickle.UnpicklingError) -> str:
    """The line of torch's long weights-only message that says what it refused, e.g.
    "Unsupported global: GLOBAL pathlib.Path.touch ..." or "Unsupported operand 35"."""
    _, _, rest = str(exc).partition("WeightsUnpickler error:")
    return _first_sentence(next((ln.strip() for ln in rest.splitlines() if ln.strip()), ""))


def _first_sentence(text: str) -> str:
    """torch's load errors go on with advice that does not apply here: keep what went wrong."""
    return text.split(". ", 1)[0].strip()


def load_checkpoint(
    path: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    *,
    arch: str | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """The eval-mode fp32 model on `device` and its metadata."""
    ckpt = read_checkpoint(path, device="cpu")
    meta = ckpt["meta"]
    if list(meta.get("classes", [])) != list(CLASSES):
        raise CheckpointError(
            f"{path} was trained for classes {meta.get('classes')}, not "
            f"{list(CLASSES)}: fer-tui needs a 7-class FER-2013 checkpoint"
        )
    if arch is not None and meta.get("arch") != arch:
        raise CheckpointError(f"{path} is a {meta.get('arch')} checkpoint, not {arch}")
    model = build_model(
        meta["arch"],
        num_classes=meta["num_classes"],
        stem=meta["stem"],
        in_channels=meta["in_channels"],
        dropout=meta.get("dropout", 0.0),
    )
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1:2] or [str(exc)]
        raise CheckpointError(
            f"{path}: weights do not fit a {meta['arch']} ({first[0].strip()})"
        ) from None
    model.eval().to(resolve_device(str(device)) if isinstance(device, str) else device)
    return model, meta


@torch.inference_mode()
def predict_proba(
    model: Callable[[torch.Tensor], torch.Tensor],
    meta: dict[str, Any],
    images: np.ndarray | torch.Tensor,
    *,
    batch_size: int = 256,
    tta: str = "none",
    progress: Any | None = None,
    device: torch.device | None = None,
) -> np.ndarray:
    """Softmax probabilities (N, 7) for uint8 faces (N, H, W).

    tta: "none"; "flip" averages each face and its mirror; "tencrop" averages the four corner
    and the centre crops of the face padded by 4 pixels, and their mirrors.
    device: where the batches go; by default that of the model's first parameter (give it for a
    model without parameters, such as an onnxruntime session: `backends.load_model` says it).
    """
    if tta not in ("none", "flip", "tencrop"):
        raise FerError(f"unknown test-time augmentation '{tta}': use none, flip or tencrop")
    if device is None:
        device = next(model.parameters()).device  # type: ignore[attr-defined]
    images = torch.as_tensor(images)
    size, chans = meta["image_size"], meta["in_channels"]
    out = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(device)
        x = to_input(batch, image_size=size, in_channels=chans, channels_last=True)
        if tta == "none":
            p = model(x).float().softmax(1)
        elif tta == "flip":
            p = (model(x).float().softmax(1) + model(x.flip(3)).float().softmax(1)) / 2
        else:
            padded = torch.nn.functional.pad(x, (4, 4, 4, 4), mode="reflect")
            offsets = [(0, 0), (0, 8), (8, 0), (8, 8), (4, 4)]
            p = torch.zeros(len(x), meta["num_classes"], device=device)
            for dy, dx in offsets:
                crop = padded[..., dy : dy + size, dx : dx + size].contiguous(
                    memory_format=torch.channels_last
                )
                p += model(crop).float().softmax(1) + model(crop.flip(3)).float().softmax(1)
            p /= 2 * len(offsets)
        out.append(p.cpu())
        if progress is not None:
            progress(min(start + batch_size, len(images)), len(images))
    if not out:
        return np.zeros((0, meta["num_classes"]), np.float32)
    return torch.cat(out).numpy().astype(np.float32)
