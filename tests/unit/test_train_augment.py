"""fer_tui.augment: shapes, determinism per seed, and agreement with the eval preprocessing."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from fer_tui.augment import BatchAugment
from fer_tui.config import AugmentConfig
from fer_tui.preprocess import to_input

OFF = AugmentConfig(
    flip=False,
    crop_padding=0,
    rotation_deg=0,
    scale=0,
    translate=0,
    shear_deg=0,
    brightness=0,
    contrast=0,
    erasing_p=0,
)


def faces(n: int = 16, side: int = 48) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, side, side), generator=g, dtype=torch.uint8)


def run(cfg: AugmentConfig, x: torch.Tensor, seed: int = 0, size: int = 48) -> torch.Tensor:
    return BatchAugment(cfg, size)(x, torch.Generator().manual_seed(seed))


def test_shapes_dtype_and_standardised_output() -> None:
    """uint8 (N, 48, 48) in, float32 (N, 1, S, S) out, each image ~zero mean, finite."""
    out = run(AugmentConfig(), faces(), size=40)
    assert out.shape == (16, 1, 40, 40) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert out.mean(dim=(1, 2, 3)).abs().max() < 0.5


def test_same_seed_same_batch_other_seed_differs() -> None:
    """A seed fixes every draw (so resume is exact); another seed gives another batch."""
    cfg = dataclasses.replace(AugmentConfig(), shear_deg=5.0, translate=0.05)
    x = faces()
    assert torch.equal(run(cfg, x, 7), run(cfg, x, 7))
    assert not torch.equal(run(cfg, x, 7), run(cfg, x, 8))


def test_everything_off_equals_the_eval_preprocessing() -> None:
    """With no augmentation, training sees exactly what eval and live see."""
    x = faces()
    assert torch.allclose(run(OFF, x), to_input(x), atol=1e-5)


def test_crop_alone_is_a_whole_pixel_shift() -> None:
    """The padded random crop moves the image by whole pixels (no blur of the face)."""
    x = faces(8).unsqueeze(1).float() / 255
    aug = BatchAugment(dataclasses.replace(OFF, crop_padding=3))
    out = aug.geometry(x, torch.Generator().manual_seed(0))
    ref = x  # compared before the per-image standardisation, which the border changes
    # the interior of each image must match the reference at some integer offset
    for i in range(len(x)):
        inner = out[i, 0, 4:-4, 4:-4]
        assert any(
            torch.allclose(inner, ref[i, 0, 4 + dy : 44 + dy, 4 + dx : 44 + dx], atol=1e-5)
            for dy in range(-3, 4)
            for dx in range(-3, 4)
        )
    assert not torch.allclose(out, x)  # and it did shift something


def test_flip_mirrors_about_half_of_the_batch() -> None:
    """Flip alone returns each image either unchanged or mirrored, both seen."""
    x = faces(32)
    out, ref = run(dataclasses.replace(OFF, flip=True), x), to_input(x)
    same = [torch.allclose(o, r, atol=1e-4) for o, r in zip(out, ref, strict=True)]
    mirrored = [torch.allclose(o, r.flip(-1), atol=1e-4) for o, r in zip(out, ref, strict=True)]
    assert all(s or m for s, m in zip(same, mirrored, strict=True))
    assert 4 < sum(mirrored) < 28


@pytest.mark.parametrize("p, expect_any", [(1.0, True), (0.0, False)])
def test_random_erasing_blanks_a_box(p: float, expect_any: bool) -> None:
    """Erasing sets a rectangle to 0 (the image mean) in every image when p = 1, none at 0."""
    x = faces(8)
    out = run(dataclasses.replace(OFF, erasing_p=p), x)
    zeros = (out == 0).flatten(1).sum(1)
    assert bool((zeros >= 40).all()) == expect_any  # >= 2% of 48x48 pixels
