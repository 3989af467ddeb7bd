"""The optimizer, the learning-rate schedule and the moving average of the weights."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn


def lr_lambda(tcfg: Any, steps_per_epoch: int) -> Any:
    """Multiplier of the peak lr at optimizer step `i`: linear warmup, then the schedule."""
    total = max(1, tcfg.epochs * steps_per_epoch)
    warm = min(int(round(tcfg.warmup_epochs * steps_per_epoch)), total - 1)

    def f(i: int) -> float:
        if i < warm:
            return (i + 1) / warm
        if tcfg.schedule == "constant":
            return 1.0
        p = min(1.0, (i - warm) / max(1, total - warm))
        if tcfg.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * p))
        # "onecycle" after warmup: a linear anneal to zero (Smith & Topin's second phase)
        return 1.0 - p

    return f


def make_optimizer(model: nn.Module, tcfg: Any) -> torch.optim.Optimizer:
    """SGD(Nesterov) or AdamW over the trainable parameters; no weight decay on BN and biases."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": tcfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if tcfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=tcfg.lr, momentum=tcfg.momentum, nesterov=tcfg.nesterov and tcfg.momentum > 0
        )
    return torch.optim.AdamW(groups, lr=tcfg.lr, betas=(tcfg.momentum, 0.999))


class WeightEMA:
    """An exponential moving average of a model's weights and BatchNorm statistics.

    The average lives in a copy of the model (`self.model`, always in eval mode), updated in
    place after every optimizer step with one fused lerp over all tensors: no host sync. The
    decay ramps up from ~0.1 over the first steps (as TensorFlow's ExponentialMovingAverage
    does with num_updates), so the early random weights fade out quickly.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        src, dst = model.state_dict(), self.model.state_dict()
        # state_dict tensors share storage with the modules: lerping them updates the copy
        keys = [k for k, v in src.items() if v.is_floating_point()]
        self._src = [src[k] for k in keys]
        self._dst = [dst[k] for k in keys]

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self._dst, self._src, 1.0 - decay)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor], updates: int) -> None:
        self.model.load_state_dict(state)
        self.updates = updates
