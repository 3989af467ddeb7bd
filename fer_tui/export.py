"""Export a checkpoint to ONNX (fp32 or int8) or TorchScript, check it, run it with onnxruntime.

Both formats take the *preprocessed* batch, float (N, C, S, S) from `preprocess.to_input`, and
return logits, so every backend shares the one preprocessing. The checkpoint's metadata goes
along (ONNX `metadata_props["fer_tui_meta"]`, TorchScript extra file `meta.json`).
The parity check runs random uint8 faces through `to_input`, then through PyTorch and the
exported model, and compares the softmax probabilities.

`onnx-int8` is the fp32 ONNX statically quantized by onnxruntime (QDQ, int8 weights per output
channel, uint8 activations), its activation ranges calibrated on real training faces. It cannot
match fp32 to 1e-4, so its check is on real test faces instead: top-1 agreement with PyTorch
and both accuracies, and it passes when int8 loses at most `INT8_MAX_DROP` of accuracy.
"""

from __future__ import annotations

import io
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

from fer_tui.errors import DiskError, FerError, LiveError, disk_error
from fer_tui.files import atomic_write_bytes, sweep_temp_files, temp_path
from fer_tui.preprocess import to_input

FORMATS = ("onnx", "onnx-int8", "torchscript")
PARITY_TOL = 1e-4
INT8_MAX_DROP = 0.01
"""Accuracy an int8 export may lose against PyTorch on the checked test faces (1 point)."""
ONNX_OPSET = 17
META_KEY = "fer_tui_meta"


@dataclass
class ExportReport:
    path: Path
    format: str
    max_abs_diff: float
    """Largest |p_torch - p_exported| over the checked faces and the seven classes."""
    faces: int
    seconds: float
    int8: dict[str, Any] | None = None
    """For onnx-int8: calibration faces, test faces checked, top-1 agreement with PyTorch,
    accuracy of each, and the drop."""

    @property
    def ok(self) -> bool:
        if self.int8 is not None:
            return self.int8["accuracy_drop"] <= INT8_MAX_DROP
        return self.max_abs_diff <= PARITY_TOL


def _example(meta: dict[str, Any], n: int = 2) -> torch.Tensor:
    s = int(meta["image_size"])
    return torch.zeros(n, int(meta["in_channels"]), s, s)


def export_onnx(model: nn.Module, meta: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write `model` as ONNX with a dynamic batch axis and the checkpoint meta attached."""
    try:
        import onnx  # noqa: F401  (checked here, used by _attach_meta)
    except ImportError:
        raise FerError("ONNX export needs the onnx package: pip install 'fer-tui[onnx]'") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with warnings.catch_warnings():
            # the TorchScript-based exporter is deprecated in favour of one needing onnxscript;
            # it still handles a plain ResNet exactly and needs nothing extra
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model.eval(),
                (_example(meta),),
                str(tmp),
                input_names=["input"],
                output_names=["logits"],
                opset_version=ONNX_OPSET,
                dynamo=False,
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            )
        _attach_meta(tmp, meta)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _attach_meta(path: Path, meta: dict[str, Any]) -> None:
    import onnx

    proto = onnx.load(str(path))
    for entry in list(proto.metadata_props):
        if entry.key == META_KEY:
            proto.metadata_props.remove(entry)
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta, default=str)
    onnx.save(proto, str(path))


def onnx_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint metadata stored in an ONNX file written by fer-tui."""
    try:
        import onnx
    except ImportError:
        raise FerError(
            "reading an .onnx model needs the onnx package: pip install 'fer-tui[onnx]'"
        ) from None
    path = Path(path)
    if not path.is_file():
        raise FerError(f"no model at {path}: check the path")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends for a bad file
        raise FerError(
            f"{path} is not an ONNX model ({type(exc).__name__}): re-export it "
            f"with `fer-tui export`"
        ) from None
    for entry in proto.metadata_props:
        if entry.key == META_KEY:
            return json.loads(entry.value)
    raise FerError(
        f"{path} has no fer-tui metadata (image size, classes, normalisation): "
        f"export it with `fer-tui export --format onnx|onnx-int8`"
    )


def export_onnx_int8(
    model: nn.Module,
    meta: dict[str, Any],
    path: str | os.PathLike[str],
    calibration: np.ndarray,
    *,
    batch: int = 32,
) -> Path:
    """Write `model` as a statically quantized int8 ONNX (QDQ), its activation ranges
    calibrated on `calibration`: uint8 (N, S, S) real faces, preprocessed as in training."""
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise FerError("int8 export needs onnxruntime: pip install 'fer-tui[onnx]'") from None
    s, chans = int(meta["image_size"]), int(meta["in_channels"])

    class Faces(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(
                {
                    "input": to_input(
                        torch.from_numpy(calibration[i : i + batch]),
                        image_size=s,
                        in_channels=chans,
                    ).numpy()
                }
                for i in range(0, len(calibration), batch)
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fp32, pre, tmp = temp_path(path), temp_path(path), temp_path(path)
    try:
        export_onnx(model, meta, fp32)
        quant_pre_process(str(fp32), str(pre))
        quantize_static(
            str(pre),
            str(tmp),
            Faces(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
        _attach_meta(
            tmp,
            {
                **meta,
                "quantized": "int8 static QDQ (onnxruntime)",
                "calibration_faces": int(len(calibration)),
            },
        )
        os.replace(tmp, path)
    finally:
        for leftover in (fp32, pre, tmp):
            leftover.unlink(missing_ok=True)
    return path


def export_torchscript(
    model: nn.Module, meta: dict[str, Any], path: str | os.PathLike[str]
) -> Path:
    """Write `model` traced to TorchScript with the checkpoint meta as `meta.json`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # torch.jit is deprecated in favour of torch.export, but a traced file is still what
    # C++/mobile runtimes load; the warnings would only alarm the user
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(model.eval(), _example(meta), check_trace=False)
        # saved in memory, then written by Python: torch's own file writer aborts the process
        # when the disk fills, where Python raises an OSError that can be reported
        buf = io.BytesIO()
        torch.jit.save(traced, buf, _extra_files={"meta.json": json.dumps(meta, default=str)})
    atomic_write_bytes(path, buf.getvalue())
    return path


class OrtModel:
    """An onnxruntime session that behaves like the model: float batch -> logits tensor."""

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise LiveError(
                "--backend onnxruntime needs onnxruntime: pip install "
                "'fer-tui[onnx]' (or use --backend torch)"
            ) from None
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        # no spin-waiting between ops: the same collapse on a busy CPU as OpenMP's (see
        # commands/live.py); the live loop calls it once per frame, so the wake-up cost is small
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise FerError(f"onnxruntime cannot load {path}: {exc}") from None
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        feed = {self.input: np.ascontiguousarray(x.detach().cpu().numpy(), np.float32)}
        return torch.from_numpy(self.session.run(None, feed)[0])


def load_exported(path: str | os.PathLike[str], fmt: str) -> Any:
    """A callable float batch -> logits for an exported file."""
    if fmt in ("onnx", "onnx-int8"):
        return OrtModel(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path), map_location="cpu").eval()


def parity(
    model: nn.Module, meta: dict[str, Any], exported: Any, *, faces: int = 16, seed: int = 0
) -> float:
    """Max |softmax difference| between `model` and `exported` on random uint8 faces."""
    g = torch.Generator().manual_seed(seed)
    s = int(meta["image_size"])
    imgs = torch.randint(0, 256, (faces, s, s), generator=g, dtype=torch.uint8)
    x = to_input(imgs, image_size=s, in_channels=int(meta["in_channels"]))
    with torch.inference_mode():
        ref = model(x).float().softmax(1)
        out = exported(x).float().softmax(1)
    return float((ref - out).abs().max())


def int8_check(
    model: nn.Module,
    meta: dict[str, Any],
    exported: Any,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch: int = 256,
) -> dict[str, Any]:
    """Top-1 agreement, max |dp| and both accuracies of PyTorch vs `exported` on real faces."""
    s, chans = int(meta["image_size"]), int(meta["in_channels"])
    ref, out = [], []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            x = to_input(torch.from_numpy(images[i : i + batch]), image_size=s, in_channels=chans)
            ref.append(model(x).float().softmax(1))
            out.append(exported(x).float().softmax(1))
    p_ref, p_out = torch.cat(ref), torch.cat(out)
    y = torch.from_numpy(labels)
    acc_ref = float((p_ref.argmax(1) == y).float().mean())
    acc_out = float((p_out.argmax(1) == y).float().mean())
    return {
        "test_faces": int(len(labels)),
        "agreement": float((p_ref.argmax(1) == p_out.argmax(1)).float().mean()),
        "max_abs_diff": float((p_ref - p_out).abs().max()),
        "accuracy_torch": acc_ref,
        "accuracy_int8": acc_out,
        "accuracy_drop": acc_ref - acc_out,
    }


def _sample(split: Any, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` images of a split (all when n <= 0 or n >= its size), a seeded random choice."""
    if n <= 0 or n >= len(split):
        return split.images, split.labels
    idx = np.sort(np.random.default_rng(seed).choice(len(split), n, replace=False))
    return split.images[idx], split.labels[idx]


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    fmt: str,
    output: str | os.PathLike[str],
    *,
    faces: int = 16,
    data: str | os.PathLike[str] | None = None,
    calibration: int = 512,
    check: int = 2000,
) -> ExportReport:
    """Export a checkpoint and check it against PyTorch.

    onnx/torchscript: max |dp| on `faces` random faces. onnx-int8: calibrated on `calibration`
    training faces of `data`, checked on `check` test faces (0 = all of them).
    """
    from fer_tui.models import load_checkpoint

    if fmt not in FORMATS:
        raise FerError(f"unknown export format '{fmt}': use {', '.join(FORMATS)}")
    start = time.perf_counter()
    if fmt == "onnx-int8":
        from fer_tui.data.load import load_dataset

        dataset = load_dataset(data)  # before the model: a missing dataset fails fast
        if len(dataset.splits["train"]) == 0 or len(dataset.splits["test"]) == 0:
            raise FerError(
                f"int8 export needs train faces (calibration) and test faces (the "
                f"check), and {dataset.source} lacks one: point --data at FER-2013"
            )
    model, meta = load_checkpoint(checkpoint, "cpu")
    calib = None
    if fmt == "onnx-int8":
        calib, _ = _sample(dataset.splits["train"], calibration, seed=0)
    path = _write_export(model, meta, fmt, Path(output), calib)
    if calib is not None:
        images, labels = _sample(dataset.splits["test"], check, seed=1)
        report = int8_check(model, meta, load_exported(path, fmt), images, labels)
        report["calibration_faces"] = int(len(calib))
        return ExportReport(
            path,
            fmt,
            report["max_abs_diff"],
            report["test_faces"],
            time.perf_counter() - start,
            int8=report,
        )
    diff = parity(model, meta, load_exported(path, fmt), faces=faces)
    return ExportReport(path, fmt, diff, faces, time.perf_counter() - start)


def export_bytes(model: nn.Module, fmt: str) -> int:
    """About how much disk an export of `model` takes while it is written: its fp32 weights,
    and for int8 also the fp32 and pre-processed models it is quantized from."""
    from fer_tui.space import OVERHEAD

    weights = sum(v.numel() * v.element_size() for v in model.state_dict().values())
    return int(weights * (2.5 if fmt == "onnx-int8" else 1.0)) + OVERHEAD


def _write_export(
    model: nn.Module, meta: dict[str, Any], fmt: str, path: Path, calib: np.ndarray | None
) -> Path:
    """Write the export after removing what killed exports left beside `path` and checking
    the disk has room; a disk that fails is a DiskError naming `path`."""
    from fer_tui.space import check_free_space, free_bytes, human_bytes

    needed = export_bytes(model, fmt)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_temp_files(path.parent, [path.name])
        check_free_space(path.parent, needed, str(path))
        if fmt == "onnx":
            return export_onnx(model, meta, path)
        if fmt == "torchscript":
            return export_torchscript(model, meta, path)
        assert calib is not None
        return export_onnx_int8(model, meta, path, calib)
    except OSError as exc:
        raise disk_error(exc, path) from None
    except RuntimeError:
        # the exporters' C++ writers report a full disk as a RuntimeError
        free = free_bytes(path.parent)
        if free is not None and free < needed:
            raise DiskError(
                f"cannot write {path}: no space left on the device ({human_bytes(free)} "
                f"free): free some space there or write elsewhere, then try again"
            ) from None
        raise


def cached_onnx(checkpoint: str | os.PathLike[str]) -> Path:
    """The ONNX twin of a checkpoint in the cache dir, exported on first use.

    Keyed by the checkpoint's content hash, so a retrained best.pt never reuses a stale export.
    """
    from fer_tui.files import file_sha256
    from fer_tui.models import load_checkpoint
    from fer_tui.paths import cache_dir

    checkpoint = Path(checkpoint)
    path = cache_dir() / "onnx" / f"{checkpoint.stem}-{file_sha256(checkpoint)[:12]}.onnx"
    if not path.exists():
        model, meta = load_checkpoint(checkpoint, "cpu")
        export_onnx(model, meta, path)
    return path
