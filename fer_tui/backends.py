"""Inference backends: PyTorch, or onnxruntime on the CPU running the checkpoint's ONNX export.

`fer-tui live` and `fer-tui evaluate` (and the Live and Evaluation screens) choose, check and
load their backend here, and both name it `--backend` ("auto" by default: `pick_backend`). On a
CPU onnxruntime is about 1.8x faster per face than PyTorch in the live loop and needs 12-16%
less CPU time over the test split on the shipped CPU models (benchmarks/live_fps.py,
benchmarks/eval_speed.py), with probabilities within 1e-4 of torch's.
It runs the checkpoint exported once into the cache dir (`export.cached_onnx`), or an .onnx file
written by `fer-tui export` (fp32 or int8) as it is.

torch is imported inside the functions: checking a choice costs nothing.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fer_tui.errors import FerError

if TYPE_CHECKING:
    import torch

#: The backends a model runs on; "auto" (`pick_backend`) resolves to one of them.
BACKENDS: tuple[str, ...] = ("torch", "onnxruntime")
#: What `--backend` accepts: "auto" (the default of `fer-tui evaluate` and `fer-tui live`) first.
CHOICES: tuple[str, ...] = ("auto", *BACKENDS)

#: A loaded model: a float batch in, logits out (a torch module in eval mode, or export.OrtModel).
Model = Callable[["torch.Tensor"], "torch.Tensor"]


def check_backend(backend: str, device: str = "auto") -> None:
    """Refuse a backend this machine cannot run on `device`, before anything slow happens
    ("auto" always runs: it picks among the installed ones)."""
    if backend not in CHOICES:
        raise FerError(f"unknown backend '{backend}': use {', '.join(CHOICES)}")
    if backend == "onnxruntime":
        if device not in ("auto", "cpu"):
            raise FerError(
                "--backend onnxruntime runs on the CPU: use --device cpu or auto, or "
                "--backend torch for the GPU"
            )
        if importlib.util.find_spec("onnxruntime") is None:
            raise FerError(
                "--backend onnxruntime needs onnxruntime: pip install "
                "'fer-tui[onnx]' (or use --backend torch)"
            )
    if device not in ("auto", "cpu"):
        from fer_tui.models import resolve_device  # imports torch: only for a GPU asked for

        resolve_device(device)  # a missing GPU is an error now, not after the data is decoded


def pick_backend(
    backend: str,
    device: str = "auto",
    checkpoint: str | os.PathLike[str] | None = None,
    gpu: bool | None = None,
) -> str:
    """Resolve backend "auto": onnxruntime for an .onnx file, and on the CPU when installed
    (faster per face than PyTorch there, probabilities equal to 1e-4); PyTorch otherwise.
    `gpu`: whether device "auto" finds a GPU, when the caller knows (else torch is asked)."""
    if backend != "auto":
        return backend
    if checkpoint is not None and Path(checkpoint).suffix == ".onnx":
        return "onnxruntime"
    if device == "auto" and gpu is None:
        import torch

        gpu = torch.cuda.is_available()
    if device not in ("auto", "cpu") or (device == "auto" and gpu):
        return "torch"
    have = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))
    return "onnxruntime" if have else "torch"


def load_model(
    checkpoint: str | os.PathLike[str],
    *,
    backend: str = "torch",
    device: str = "auto",
    threads: int | None = None,
    channels_last: bool = False,
) -> tuple[Model, dict[str, Any], torch.device]:
    """(model, meta, device): the checkpoint ready to run on `backend`, and where its input goes.

    torch: the fp32 model in eval mode on `device` (in channels_last when asked and on the CPU,
    a few % faster for convolutions there); onnxruntime: the checkpoint's cached ONNX export, or
    an .onnx file as it is, on the CPU. `threads` caps the CPU threads of either.
    """
    import torch

    from fer_tui.models import load_checkpoint, read_checkpoint, resolve_device

    if threads:
        torch.set_num_threads(threads)
    if Path(checkpoint).suffix == ".onnx":
        from fer_tui.export import OrtModel, onnx_meta

        if backend != "onnxruntime" or device not in ("auto", "cpu"):
            raise FerError(
                f"{Path(checkpoint).name} is an ONNX model: it runs with "
                f"onnxruntime on the CPU (--backend auto or onnxruntime, "
                f"--device auto or cpu)"
            )
        meta = onnx_meta(checkpoint)
        return OrtModel(checkpoint, threads=threads), meta, torch.device("cpu")
    check_backend(backend, device)
    if backend == "onnxruntime":
        from fer_tui.export import OrtModel, cached_onnx

        meta = read_checkpoint(checkpoint)["meta"]
        return OrtModel(cached_onnx(checkpoint), threads=threads), meta, torch.device("cpu")
    dev = resolve_device(device)
    model, meta = load_checkpoint(checkpoint, dev)
    if channels_last and dev.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    return model, meta, dev
