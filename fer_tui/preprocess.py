"""The one preprocessing used by training, evaluation, export and the live view.

Faces arrive as uint8 grayscale (N, H, W). Each image is standardised on its own (zero mean,
unit std over its pixels): FER-2013 circulates both raw and histogram-equalised, and webcam crops
vary in exposure, so a per-image normalisation makes the model indifferent to global brightness
and contrast. The checkpoint records this as `normalization = {"kind": "per_image", "eps": EPS}`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-2
NORMALIZATION = {"kind": "per_image", "eps": EPS}


def standardize(x: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Per-image zero mean / unit std of a float (N, C, H, W) batch with values in [0, 1]."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True)
    return (x - mean) / (std + eps)


def to_input(
    images: torch.Tensor,
    *,
    image_size: int = 48,
    in_channels: int = 1,
    channels_last: bool = False,
) -> torch.Tensor:
    """uint8 (N, H, W) or (N, 1, H, W) faces -> the float model input (N, C, S, S)."""
    if images.dim() == 3:
        images = images.unsqueeze(1)
    x = images.float().div_(255.0)
    if x.shape[-2:] != (image_size, image_size):
        x = F.interpolate(
            x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False
        )
    x = standardize(x)
    if in_channels == 3:
        x = x.expand(-1, 3, -1, -1)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x
