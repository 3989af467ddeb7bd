"""ONNX/TorchScript export: same probabilities as PyTorch, and the onnxruntime live backend."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fer_tui import export
from fer_tui.backends import load_model
from fer_tui.data.index import CLASSES
from fer_tui.errors import FerError
from fer_tui.live.config import LiveConfig
from fer_tui.live.pipeline import face_transform, realtime_prediction
from fer_tui.models import load_checkpoint
from tests.helpers import make_face_video, make_tiny_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return make_tiny_checkpoint(tmp_path_factory.mktemp("export") / "tiny.pt")


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_pytorch(ckpt: Path, tmp_path: Path, fmt: str) -> None:
    """The exported model's probabilities are within 1e-4 of PyTorch's on random faces."""
    report = export.export_checkpoint(ckpt, fmt, tmp_path / f"model.{fmt}")
    assert report.path.is_file() and report.ok
    assert report.max_abs_diff <= export.PARITY_TOL


def test_parity_detects_a_different_model(ckpt: Path, tmp_path: Path) -> None:
    """The parity check is not vacuous: another model's export differs by far more than 1e-4."""
    model, meta = load_checkpoint(ckpt)
    other = make_tiny_checkpoint(tmp_path / "other.pt", seed=1)
    path = export.export_onnx(load_checkpoint(other)[0], meta, tmp_path / "other.onnx")
    assert export.parity(model, meta, export.OrtModel(path)) > 1e-3


def test_onnx_keeps_the_metadata(ckpt: Path, tmp_path: Path) -> None:
    """The ONNX file carries the checkpoint meta (classes, image size) for other runtimes."""
    import json

    import onnx

    path = export.export_checkpoint(ckpt, "onnx", tmp_path / "m.onnx").path
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    meta = json.loads(props["fer_tui_meta"])
    assert meta["classes"] == list(CLASSES) and meta["image_size"] == 48


def test_unknown_format(ckpt: Path, tmp_path: Path) -> None:
    """An unknown format is a FerError naming the choices."""
    with pytest.raises(FerError, match="onnx, onnx-int8, torchscript"):
        export.export_checkpoint(ckpt, "tflite", tmp_path / "m.tflite")


def test_onnxruntime_backend_in_the_live_loop(ckpt: Path, tmp_path: Path) -> None:
    """--backend onnxruntime exports once into the cache and gives torch's probabilities."""
    video = make_face_video(tmp_path / "face.avi", frames=6)
    outs = {}
    for backend in ("torch", "onnxruntime"):
        net, meta, device = load_model(ckpt, backend=backend, device="cpu", channels_last=True)
        cfg = LiveConfig(detect_async=False)  # same boxes in both runs
        gen = realtime_prediction(net, face_transform(meta), 0.0, device, str(video), config=cfg)
        outs[backend] = [f.probs_raw for r in gen for f in r.faces]
    assert len(outs["torch"]) == len(outs["onnxruntime"]) >= 5
    for a, b in zip(outs["torch"], outs["onnxruntime"], strict=True):
        assert abs(a - b).max() <= 1e-4
    assert len(list(export.cached_onnx(ckpt).parent.glob("*.onnx"))) == 1


def test_onnxruntime_missing(monkeypatch: pytest.MonkeyPatch, ckpt: Path, tmp_path: Path) -> None:
    """Without onnxruntime installed the backend names the extra to install."""
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(FerError, match=r"fer-tui\[onnx\]"):
        export.OrtModel(tmp_path / "m.onnx")
