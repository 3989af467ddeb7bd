"""Inference backends: PyTorch, or onnxruntime on the CPU running the checkpoint's ONNX export."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fer_tui.errors import LiveError


def pick_backend(
    backend: str, device: str = "auto", checkpoint: str | os.PathLike[str] | None = None
) -> str:
    """Resolve backend "auto": onnxruntime for an .onnx file, and on the CPU when installed
    (about 1.8x faster per face than PyTorch there, probabilities equal to 1e-4); PyTorch
    otherwise."""
    if backend != "auto":
        return backend
    if checkpoint is not None and Path(checkpoint).suffix == ".onnx":
        return "onnxruntime"
    if device not in ("auto", "cpu") or (device == "auto" and torch.cuda.is_available()):
        return "torch"
    import importlib.util

    have = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))
    return "onnxruntime" if have else "torch"


def load_model(
    checkpoint: str | os.PathLike[str],
    *,
    backend: str = "torch",
    device: str = "auto",
    threads: int | None = None,
) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, Any], torch.device]:
    """(model, meta, device) for the live loop: PyTorch or onnxruntime (CPU).

    torch: the eval fp32 model in channels_last (a few % faster for convs on CPU) under
    inference_mode; onnxruntime: the checkpoint exported once into the cache dir, or an .onnx
    file written by `fer-tui export` (fp32 or int8) as it is.
    """
    from fer_tui.models import load_checkpoint, read_checkpoint, resolve_device

    if threads:
        torch.set_num_threads(threads)
    if Path(checkpoint).suffix == ".onnx":
        from fer_tui.export import OrtModel, onnx_meta

        if backend != "onnxruntime" or device not in ("auto", "cpu"):
            raise LiveError(
                f"{Path(checkpoint).name} is an ONNX model: it runs with "
                f"onnxruntime on the CPU (--backend auto or onnxruntime, "
                f"--device auto or cpu)"
            )
        meta = onnx_meta(checkpoint)
        return OrtModel(checkpoint, threads=threads), meta, torch.device("cpu")
    if backend == "torch":
        dev = resolve_device(device)
        model, meta = load_checkpoint(checkpoint, dev)
        if dev.type == "cpu":
            model = model.to(memory_format=torch.channels_last)
        return model, meta, dev
    if backend == "onnxruntime":
        from fer_tui.export import OrtModel, cached_onnx

        if device not in ("auto", "cpu"):
            raise LiveError(
                "--backend onnxruntime runs on the CPU here: use --device cpu or "
                "--backend torch for the GPU"
            )
        meta = read_checkpoint(checkpoint)["meta"]
        return OrtModel(cached_onnx(checkpoint), threads=threads), meta, torch.device("cpu")
    raise LiveError(f"unknown backend '{backend}': use torch or onnxruntime")
