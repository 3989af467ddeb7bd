"""Detection, tracking and smoothing parameters of the live pipeline (`--live-config FILE.toml`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import tomllib

from fer_tui.errors import ConfigError

Detector = Literal["haar", "yunet"]
DETECTORS: tuple[str, ...] = get_args(Detector)


@dataclass(frozen=True)
class LiveConfig:
    """Detection, tracking and smoothing parameters (`--live-config FILE.toml` overrides them)."""

    detector: Detector = "yunet"
    """Face detector: OpenCV's Haar cascade, or the YuNet network (finds turned, tilted and
    small faces, and gives five landmarks per face, which alignment needs). On 300 test faces
    per condition (benchmarks/live_accuracy.py) YuNet found 94-100% of upright faces of 96 and
    192 px on grey and on photos, Haar 80-84%."""
    detector_model: str = ""
    """YuNet ONNX file; empty = the one shipped in fer_tui/live/models."""
    score_threshold: float = 0.6
    """YuNet: lowest face score kept; lower finds more faces and more false ones."""
    nms_threshold: float = 0.3
    """YuNet: overlap above which two detections are one face."""
    full_res_retry: bool = True
    """When a whole-frame scan of the downscaled frame finds no face, scan the full-resolution
    frame too (finds faces too small to survive the downscaling)."""
    turn_retry: bool = True
    """When a whole-frame scan still finds no face, scan the downscaled frame turned 30 degrees
    each way too (finds heads tilted 20-45 degrees, which both detectors miss upright; with
    YuNet the landmarks then give the crop its angle)."""
    downscale_width: int = 320
    """Detection runs on the grey frame resized to this width, pixels (0 = full resolution)."""
    scale_factor: float = 1.1
    """Haar pyramid step; larger is faster and misses more faces."""
    min_neighbors: int = 5
    """Haar detections that must overlap to count as a face; larger = fewer false faces."""
    min_size: int = 48
    """Smallest face searched for, pixels of the full frame."""
    detect_every: int = 5
    """Run the detector every N frames and track faces by template matching in between."""
    full_detect_every: int = 30
    """Scan the whole frame for new faces every N frames (and whenever no face is tracked);
    the detections in between look only around the faces already tracked, which costs a few
    per cent of a full scan (0 = always scan the whole frame)."""
    detect_async: bool = True
    """Detect in a background thread so a frame never waits for the cascade."""
    max_faces: int = 10
    """Faces classified per frame at most (the largest ones)."""
    match_iou: float = 0.3
    """Overlap above which a detection continues an existing track."""
    max_misses: int = 2
    """Detection rounds a track survives without being re-detected."""
    ema_alpha: float = 0.5
    """Weight of the newest frame in the per-face moving average of probabilities (1 = none)."""
    classify_every: int = 1
    """Classify a tracked face every N frames; in between it keeps its smoothed probabilities."""
    classify_budget_ms: float = 15.0
    """Time a frame may spend classifying faces: with more faces than fit (the cost of one is
    measured as it runs), the faces waiting longest are classified this frame and the others
    keep their probabilities until their turn (0 = every due face, every frame)."""
    crop_margin: float = 0.0
    """Grow the crop by this fraction of the box's side beyond the detector's own framing,
    which frames its faces as FER-2013 does (measured on holdout faces; negative shrinks)."""
    crop_shift_y: float = 0.0
    """Move the crop down by this fraction of the box height beyond the detector's own framing
    (negative: up)."""
    align: bool = True
    """With YuNet's eye landmarks, rotate each face so its eyes are level before cropping
    (holdout faces turned 30 degrees each way: 521 of 773 right with it, 441 without; upright
    faces within 1% either way)."""


def load_live_config(path: str | os.PathLike[str] | None) -> LiveConfig:
    """A LiveConfig from a flat TOML file of the fields above (None -> the defaults)."""
    if path is None:
        return LiveConfig()
    from fer_tui.config import build_table  # the run configs' checker: unknown keys, types

    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no live config at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    cfg = build_table(LiveConfig, raw.get("live", raw), path.name)
    _validate(cfg, path.name)
    return cfg


def _validate(cfg: LiveConfig, where: str) -> None:
    checks = [
        (0.0 < cfg.score_threshold < 1.0, "score_threshold", "must be in (0, 1)"),
        (0.0 < cfg.nms_threshold < 1.0, "nms_threshold", "must be in (0, 1)"),
        (-0.4 < cfg.crop_margin <= 1.0, "crop_margin", "must be in (-0.4, 1]"),
        (abs(cfg.crop_shift_y) <= 0.5, "crop_shift_y", "must be in [-0.5, 0.5]"),
        (cfg.scale_factor > 1.0, "scale_factor", "must be > 1"),
        (cfg.min_neighbors >= 0, "min_neighbors", "must be >= 0"),
        (cfg.min_size >= 1, "min_size", "must be >= 1"),
        (cfg.detect_every >= 1, "detect_every", "must be >= 1"),
        (cfg.full_detect_every >= 0, "full_detect_every", "must be >= 0 (0 = always)"),
        (cfg.classify_every >= 1, "classify_every", "must be >= 1"),
        (cfg.classify_budget_ms >= 0, "classify_budget_ms", "must be >= 0 (0 = no limit)"),
        (cfg.max_faces >= 1, "max_faces", "must be >= 1"),
        (0.0 < cfg.ema_alpha <= 1.0, "ema_alpha", "must be in (0, 1]"),
        (
            cfg.downscale_width == 0 or cfg.downscale_width >= 64,
            "downscale_width",
            "must be 0 (full resolution) or >= 64",
        ),
    ]
    for ok, key, what in checks:
        if not ok:
            raise ConfigError(f"{where}: {key} {what}")
