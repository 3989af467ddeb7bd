"""Knowledge distillation: the teachers' mean probabilities as soft targets for a student.

Each teacher predicts every face of the train split once, unaugmented (with its mirror when
`distill.tta = "flip"`), through the evaluation code, so the probabilities land in the
evaluation cache (keyed by the teacher's file hash, the data's fingerprint, the split and the
TTA) and a second student, or a resumed one, reads them back in a second. Per augmented batch
the teachers would cost several forward passes per student step: three CPU teachers on two
cores are about 4x the student's own training step (docs/training.md has the figures).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fer_tui.config import RunConfig
from fer_tui.errors import ConfigError, FerError

#: progress(stage, done, total), as evaluation reports it.
Progress = Callable[[str, int, int], None]


def check_teachers(cfg: RunConfig) -> list[dict[str, Any]]:
    """The teachers' metadata after checking each can teach this recipe's student: a fer-tui
    checkpoint, for the same classes, reading faces of the student's input size."""
    from fer_tui.evaluation.runner import checkpoint_meta
    from fer_tui.paths import shipped_checkpoint

    metas = []
    for name in cfg.distill.teachers:
        path = shipped_checkpoint(name)
        if not path.is_file():
            raise ConfigError(
                f"teacher {name}: no such checkpoint: pass a fer-tui checkpoint (.pt), e.g. "
                f"checkpoints/resnet34-cpu.pt or runs/<run>/best.pt"
            )
        try:
            meta = checkpoint_meta(path)
        except FerError as exc:
            raise ConfigError(f"teacher {name}: {exc}") from None
        size, want = meta.get("image_size"), cfg.model.image_size
        if size != want:
            raise ConfigError(
                f"teacher {name} reads {size}x{size} faces, the student {want}x{want}: "
                f"use teachers trained at model.image_size = {want}"
            )
        metas.append(meta)
    return metas


def teacher_paths(cfg: RunConfig) -> list[Path]:
    from fer_tui.paths import shipped_checkpoint

    return [shipped_checkpoint(t) for t in cfg.distill.teachers]


def teacher_probs(
    cfg: RunConfig,
    data: Any,
    rows: np.ndarray,
    *,
    progress: Progress | None = None,
) -> np.ndarray:
    """(len(rows), 7) float32: the teachers' mean probabilities for those rows of train,
    predicted where the run trains (train.device)."""
    from fer_tui.evaluation.runner import evaluate_checkpoints

    check_teachers(cfg)
    paths: Sequence[str | os.PathLike[str]] = teacher_paths(cfg)
    evals = evaluate_checkpoints(
        paths,
        data=data,
        split="train",
        tta=cfg.distill.tta,
        device=cfg.train.device,
        progress=progress,
    )
    mean = np.mean([e.probs for e in evals], axis=0).astype(np.float32)
    return mean[np.asarray(rows)]
