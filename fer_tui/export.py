"""Export a checkpoint to ONNX or TorchScript, check it against PyTorch, run it with onnxruntime.

Both formats take the *preprocessed* batch, float (N, C, S, S) from `preprocess.to_input`, and
return logits, so every backend shares the one preprocessing. The checkpoint's metadata goes
along (ONNX `metadata_props["fer_tui_meta"]`, TorchScript extra file `meta.json`).
The parity check runs random uint8 faces through `to_input`, then through PyTorch and the
exported model, and compares the softmax probabilities.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fer_tui.errors import FerError, LiveError
from fer_tui.preprocess import to_input

FORMATS = ("onnx", "torchscript")
PARITY_TOL = 1e-4
ONNX_OPSET = 17


@dataclass
class ExportReport:
    path: Path
    format: str
    max_abs_diff: float
    """Largest |p_torch - p_exported| over the random faces and the seven classes."""
    faces: int
    seconds: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= PARITY_TOL


def _example(meta: dict[str, Any], n: int = 2) -> torch.Tensor:
    s = int(meta["image_size"])
    return torch.zeros(n, int(meta["in_channels"]), s, s)


def export_onnx(model: nn.Module, meta: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write `model` as ONNX with a dynamic batch axis and the checkpoint meta attached."""
    try:
        import onnx
    except ImportError:
        raise FerError("ONNX export needs the onnx package: pip install 'fer-tui[onnx]'") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with warnings.catch_warnings():
        # the TorchScript-based exporter is deprecated in favour of one needing onnxscript; it
        # still handles a plain ResNet exactly and needs nothing extra
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (_example(meta),), str(tmp), input_names=["input"],
                          output_names=["logits"], opset_version=ONNX_OPSET, dynamo=False,
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    proto = onnx.load(str(tmp))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "fer_tui_meta", json.dumps(meta, default=str)
    onnx.save(proto, str(tmp))
    os.replace(tmp, path)
    return path


def export_torchscript(model: nn.Module, meta: dict[str, Any], path: str | os.PathLike[str]
                       ) -> Path:
    """Write `model` traced to TorchScript with the checkpoint meta as `meta.json`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    # torch.jit is deprecated in favour of torch.export, but a traced file is still what
    # C++/mobile runtimes load; the warnings would only alarm the user
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(model.eval(), _example(meta), check_trace=False)
        torch.jit.save(traced, str(tmp),
                       _extra_files={"meta.json": json.dumps(meta, default=str)})
    os.replace(tmp, path)
    return path


class OrtModel:
    """An onnxruntime session that behaves like the model: float batch -> logits tensor."""

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise LiveError("--backend onnxruntime needs onnxruntime: pip install "
                            "'fer-tui[onnx]' (or use --backend torch)") from None
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        # no spin-waiting between ops: the same collapse on a busy CPU as OpenMP's (see
        # commands/live.py); the live loop calls it once per frame, so the wake-up cost is small
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise FerError(f"onnxruntime cannot load {path}: {exc}") from None
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        feed = {self.input: np.ascontiguousarray(x.detach().cpu().numpy(), np.float32)}
        return torch.from_numpy(self.session.run(None, feed)[0])


def load_exported(path: str | os.PathLike[str], fmt: str) -> Any:
    """A callable float batch -> logits for an exported file."""
    if fmt == "onnx":
        return OrtModel(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path), map_location="cpu").eval()


def parity(model: nn.Module, meta: dict[str, Any], exported: Any, *, faces: int = 16,
           seed: int = 0) -> float:
    """Max |softmax difference| between `model` and `exported` on random uint8 faces."""
    g = torch.Generator().manual_seed(seed)
    s = int(meta["image_size"])
    imgs = torch.randint(0, 256, (faces, s, s), generator=g, dtype=torch.uint8)
    x = to_input(imgs, image_size=s, in_channels=int(meta["in_channels"]))
    with torch.inference_mode():
        ref = model(x).float().softmax(1)
        out = exported(x).float().softmax(1)
    return float((ref - out).abs().max())


def export_checkpoint(checkpoint: str | os.PathLike[str], fmt: str,
                      output: str | os.PathLike[str], *, faces: int = 16) -> ExportReport:
    """Export a checkpoint and measure its parity with PyTorch."""
    from fer_tui.models import load_checkpoint

    if fmt not in FORMATS:
        raise FerError(f"unknown export format '{fmt}': use {' or '.join(FORMATS)}")
    start = time.perf_counter()
    model, meta = load_checkpoint(checkpoint, "cpu")
    if fmt == "onnx":
        path = export_onnx(model, meta, output)
    else:
        path = export_torchscript(model, meta, output)
    diff = parity(model, meta, load_exported(path, fmt), faces=faces)
    return ExportReport(path, fmt, diff, faces, time.perf_counter() - start)


def cached_onnx(checkpoint: str | os.PathLike[str]) -> Path:
    """The ONNX twin of a checkpoint in the cache dir, exported on first use.

    Keyed by the checkpoint's content hash, so a retrained best.pt never reuses a stale export.
    """
    from fer_tui.models import load_checkpoint
    from fer_tui.paths import cache_dir

    checkpoint = Path(checkpoint)
    digest = hashlib.sha1()
    with open(checkpoint, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    path = cache_dir() / "onnx" / f"{checkpoint.stem}-{digest.hexdigest()[:12]}.onnx"
    if not path.exists():
        model, meta = load_checkpoint(checkpoint, "cpu")
        export_onnx(model, meta, path)
    return path
