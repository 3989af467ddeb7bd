"""Which floating-point precision a run trains in: `train.amp` resolved for one device.

    auto  bf16 autocast where the hardware runs it fast: a CUDA GPU with bf16 support (else
          fp16 with a grad scaler), or a CPU with native bf16 instructions (`avx512_bf16` or
          `amx_bf16` in its flags) where it also measures faster: the trainer times a few
          steps of each there and keeps the faster (fer_tui.training.speed_probe), since some
          CPUs list avx512_bf16 and still run bf16 slower than fp32; plain fp32 on every other
          CPU, where bf16 is emulated and slower than fp32
    bf16  bf16 autocast on any device (forced; slow on CPUs without native bf16)
    fp16  fp16 autocast with a grad scaler on CUDA; fp32 on a CPU (fp16 is a GPU format)
    off   fp32

One exception on the CPU: a 3x3 stride-2 convolution over a 1x1 map gets non-finite weight
gradients in bf16 autocast (PyTorch 2.14's oneDNN kernel, about one step in three), which leaves
NaNs in the weights. ResNets reach that when layer4 (or an earlier stage) sees a 1x1 map: images
of 16 px or less with the ImageNet stem, 8 px with "compact". There `auto` trains in fp32 and
a forced `bf16` is a configuration error.

Weights, optimizer state and checkpoints stay fp32 whatever runs inside autocast. Nothing here
imports torch: the CPU check reads /proc/cpuinfo, so the Training screen can show it cheaply.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fer_tui.errors import ConfigError

#: CPU flags (Linux /proc/cpuinfo) of native bf16 arithmetic: AVX-512 BF16 (Zen 4, Cooper
#: Lake and later) and AMX (Sapphire Rapids and later).
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")

PRECISIONS = ("bf16", "fp16", "fp32")


@lru_cache(maxsize=1)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo does not exist, e.g. macOS)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """True when the CPU computes bf16 natively (bf16 autocast then beats fp32)."""
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in NATIVE_BF16_FLAGS)


#: how much each stem shrinks a face before layer4's first (stride-2) convolution
_SHRINK_BEFORE_LAYER4 = {"imagenet": 16, "compact": 8, "cifar": 4}


def layer4_input_side(stem: str, image_size: int) -> int:
    """Side of the map that layer4's first stride-2 convolution sees (the smallest a stride-2
    convolution of the model sees): 3 for a 48 px face with the ImageNet stem."""
    shrink = _SHRINK_BEFORE_LAYER4.get(stem, 16)
    return -(-image_size // shrink)


def resolve_precision(
    amp: str,
    device_type: str,
    *,
    cuda_bf16: bool = True,
    native_cpu_bf16: bool | None = None,
    smallest_map: int | None = None,
) -> str:
    """ "bf16", "fp16" or "fp32": what `train.amp` means on a device of `device_type`.

    For `auto` on a CPU with native bf16 this says "bf16", the candidate; the trainer then
    times bf16 against fp32 and may keep fp32.

    Args:
        amp: the config's value (auto, bf16, fp16 or off).
        device_type: "cuda" or "cpu" (anything else trains in fp32 unless forced to bf16).
        cuda_bf16: whether the GPU supports bf16 (`torch.cuda.is_bf16_supported()`).
        native_cpu_bf16: whether the CPU has native bf16; None reads /proc/cpuinfo.
        smallest_map: `layer4_input_side` for the smallest images the run trains on; 1 rules
            out bf16 on the CPU (see the module docstring).
    """
    if amp == "off":
        return "fp32"
    cpu_bf16_breaks = device_type == "cpu" and smallest_map is not None and smallest_map <= 1
    if amp == "bf16":
        if cpu_bf16_breaks:
            raise ConfigError(
                'train.amp = "bf16" on the CPU with images this small (layer4 sees a 1x1 '
                "map) leaves NaNs in the weights (a PyTorch CPU kernel bug): use amp = "
                '"auto" or "off", or larger images (model.image_size, train.low_res_size)'
            )
        return "bf16"
    if device_type == "cuda":
        if amp == "fp16":
            return "fp16"
        return "bf16" if cuda_bf16 else "fp16"
    if amp == "fp16" or device_type != "cpu":
        return "fp32"
    native = cpu_has_native_bf16() if native_cpu_bf16 is None else native_cpu_bf16
    return "bf16" if native and not cpu_bf16_breaks else "fp32"
