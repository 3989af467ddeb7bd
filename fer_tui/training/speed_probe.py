"""Which precision trains faster on this CPU: a few timed steps of bf16 and fp32 autocast.

Native bf16 in the CPU flags (`avx512_bf16`) is not enough to say bf16 wins: on a 2-core AMD
EPYC Zen 5 bf16 autocast trains ResNet18 about 1.8x faster than fp32, while on a 2-core Intel
Xeon (Emerald Rapids, model 207, `avx512_bf16` listed but no AMX exposed by the hypervisor) it
runs at 0.78x fp32. So `train.amp = "auto"` on such a CPU times both on the run's own model,
batch and image size before the first epoch (a few seconds) and keeps the faster.
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

#: what is timed, in this order within each round
CANDIDATES = ("bf16", "fp32")


def cpu_precision_speeds(
    model: nn.Module,
    *,
    batch: int,
    side: int,
    channels: int,
    classes: int,
    memory_format: torch.memory_format = torch.contiguous_format,
    rounds: int = 2,
) -> dict[str, float]:
    """Training images/s of forward + backward in each of CANDIDATES on the CPU.

    Times a copy of `model` on random inputs: the model itself, its BatchNorm statistics and
    the global random stream are left as they were. One untimed warm-up step per precision,
    then `rounds` rounds of one timed step each, alternating, so a passing load burst hits both.
    """
    probe = copy.deepcopy(model).cpu().train()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, side, side, generator=gen)
    x = x.contiguous(memory_format=memory_format)
    y = torch.randint(0, classes, (batch,), generator=gen)

    def step(precision: str) -> float:
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = F.cross_entropy(probe(x), y)
        loss.backward()
        probe.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    for precision in CANDIDATES:
        step(precision)
    seconds = dict.fromkeys(CANDIDATES, 0.0)
    for _ in range(rounds):
        for precision in CANDIDATES:
            seconds[precision] += step(precision)
    return {p: batch * rounds / max(s, 1e-9) for p, s in seconds.items()}


def faster(speeds: dict[str, float]) -> str:
    """The precision with the most images/s (fp32 on a tie: it is the exact one)."""
    return max(("fp32", "bf16"), key=lambda p: speeds.get(p, 0.0))
