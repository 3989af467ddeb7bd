"""Batched training augmentation on the device the data lives on (GPU or CPU, same code).

The whole uint8 dataset sits on the device; each step gathers a batch of indices and this
module turns it into the model input in a handful of tensor ops, with no per-image Python:

1. geometry: random crop (a whole-pixel shift within `crop_padding`, reflected at the border),
   horizontal flip, rotation, zoom, shear and translation are folded into one 2x3 affine matrix
   per image and applied with a single `affine_grid` + `grid_sample` (which also resizes to
   `image_size`);
2. photometry: brightness and contrast jitter as torchvision's ColorJitter does it (then clamped
   to [0, 1]). The per-image standardisation that follows cancels a pure gain or contrast change,
   so what survives is the clipping of highlights and shadows: a deliberately mild jitter;
3. `fer_tui.preprocess.standardize`, the one normalisation used by training, eval and live;
4. random erasing of one rectangle per image (filled with 0 = the image mean after step 3).

Every random number comes from the `torch.Generator` passed in, so a run is reproducible and a
resumed run draws exactly what the uninterrupted run would have drawn.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fer_tui.config import AugmentConfig
from fer_tui.preprocess import standardize


def _uniform(
    n: int, low: float, high: float, g: torch.Generator, device: torch.device
) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) * (high - low) + low


class BatchAugment:
    """Random augmentation of uint8 (B, 1, H, W) faces into standardised float (B, 1, S, S)."""

    def __init__(self, cfg: AugmentConfig, image_size: int = 48) -> None:
        self.cfg = cfg
        self.image_size = image_size

    def __call__(
        self, images: torch.Tensor, g: torch.Generator, size: int | None = None
    ) -> torch.Tensor:
        """`size`: the output side for this batch (progressive resizing); default image_size."""
        if images.dim() == 3:
            images = images.unsqueeze(1)
        x = images.float().div_(255.0)
        x = self.geometry(x, g, size or self.image_size)
        x = self.photometry(x, g)
        x = standardize(x)
        return self.erase(x, g)

    def _affine(
        self, n: int, side: int, g: torch.Generator, device: torch.device
    ) -> torch.Tensor | None:
        """(n, 2, 3) matrices mapping output to input coordinates, or None when all off."""
        c = self.cfg
        if not (
            c.flip or c.crop_padding or c.rotation_deg or c.scale or c.translate or c.shear_deg
        ):
            return None
        ones = torch.ones(n, device=device)
        angle = _uniform(n, -c.rotation_deg, c.rotation_deg, g, device) * (math.pi / 180)
        shear = _uniform(n, -c.shear_deg, c.shear_deg, g, device) * (math.pi / 180)
        # zoom in by `s` = sample a (1/s)-sized window of the input
        zoom = 1.0 / _uniform(n, 1.0 - c.scale, 1.0 + c.scale, g, device)
        flip = ones
        if c.flip:
            flip = torch.where(torch.rand(n, generator=g, device=device) < 0.5, -ones, ones)
        # a random crop of a padded image is a shift by a whole number of pixels
        shift = torch.randint(
            -c.crop_padding, c.crop_padding + 1, (2, n), generator=g, device=device
        ).float() * (2.0 / side)
        shift = shift + _uniform(2 * n, -c.translate, c.translate, g, device).view(2, n) * 2.0
        cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
        # (rotation @ shear @ diag(flip, 1)) * zoom, then the shift; normalised [-1, 1] coords
        a = torch.stack([cos * flip * zoom, (cos * tan - sin) * zoom, shift[0]], dim=1)
        b = torch.stack([sin * flip * zoom, (sin * tan + cos) * zoom, shift[1]], dim=1)
        return torch.stack([a, b], dim=1)

    def geometry(
        self, x: torch.Tensor, g: torch.Generator, size: int | None = None
    ) -> torch.Tensor:
        n, ch, h, w = x.shape
        size = size or self.image_size
        theta = self._affine(n, w, g, x.device)
        if theta is None:
            if (h, w) != (size, size):
                x = F.interpolate(
                    x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
                )
            return x
        grid = F.affine_grid(theta.to(x.dtype), [n, ch, size, size], align_corners=False)
        # reflection, as the padded crop of the usual CIFAR recipe pads by reflection
        return F.grid_sample(
            x, grid, mode="bilinear", padding_mode="reflection", align_corners=False
        )

    def photometry(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        c = self.cfg
        if not (c.brightness or c.contrast):
            return x
        n = x.shape[0]
        if c.brightness:
            b = _uniform(n, 1.0 - c.brightness, 1.0 + c.brightness, g, x.device)
            x = (x * b.view(n, 1, 1, 1)).clamp_(0.0, 1.0)
        if c.contrast:
            k = _uniform(n, 1.0 - c.contrast, 1.0 + c.contrast, g, x.device).view(n, 1, 1, 1)
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = ((x - mean) * k + mean).clamp_(0.0, 1.0)
        return x

    def erase(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """torchvision's RandomErasing (scale 0.02-0.33, ratio 0.3-3.3), one box per image."""
        p = self.cfg.erasing_p
        if p <= 0:
            return x
        n, _, h, w = x.shape
        dev = x.device
        area = _uniform(n, 0.02, 0.33, g, dev) * (h * w)
        log_ratio = _uniform(n, math.log(0.3), math.log(1 / 0.3), g, dev)
        ratio = torch.exp(log_ratio)
        eh = torch.sqrt(area * ratio).round().clamp(1, h)
        ew = torch.sqrt(area / ratio).round().clamp(1, w)
        y0 = (torch.rand(n, generator=g, device=dev) * (h - eh + 1)).floor()
        x0 = (torch.rand(n, generator=g, device=dev) * (w - ew + 1)).floor()
        on = torch.rand(n, generator=g, device=dev) < p
        ys = torch.arange(h, device=dev).view(1, h, 1)
        xs = torch.arange(w, device=dev).view(1, 1, w)
        box = (
            (ys >= y0.view(n, 1, 1))
            & (ys < (y0 + eh).view(n, 1, 1))
            & (xs >= x0.view(n, 1, 1))
            & (xs < (x0 + ew).view(n, 1, 1))
        )
        mask = (box & on.view(n, 1, 1)).unsqueeze(1)
        return x.masked_fill(mask, 0.0)
