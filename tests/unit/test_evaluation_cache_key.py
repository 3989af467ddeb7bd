"""The evaluation cache key: a report is only served for the device type it was computed on."""

from __future__ import annotations

import hashlib

import pytest

from fer_tui.errors import FerError
from fer_tui.evaluation.cache import CACHE_VERSION, cache_key
from tests.fake_devices import pretend_gpus

ARGS = ("sha", "fingerprint", "test", "none")


def test_cpu_and_cuda_evaluations_have_different_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """CPU and CUDA probabilities differ slightly (TF32 convolutions), so a CPU report is never
    served for a CUDA evaluation or the other way round; cuda and cuda:0 are the same type."""
    pretend_gpus(monkeypatch, "NVIDIA H200")
    cpu = cache_key(*ARGS, "torch", "cpu")
    cuda = cache_key(*ARGS, "torch", "cuda")
    assert cpu != cuda
    assert cache_key(*ARGS, "torch", "cuda:0") == cuda
    assert cache_key(*ARGS, "torch", "auto") == cuda
    pretend_gpus(monkeypatch)
    assert cache_key(*ARGS, "torch", "auto") == cpu


def test_cpu_keys_are_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    """CPU evaluations keep the keys they had before devices were keyed, so caches built on a
    CPU stay valid; onnxruntime (CPU only) keys ignore the device."""
    pretend_gpus(monkeypatch, "NVIDIA H200")
    raw = f"v{CACHE_VERSION}|sha|fingerprint|test|none"
    assert cache_key(*ARGS, "torch", "cpu") == hashlib.sha256(raw.encode()).hexdigest()[:32]
    onnx = hashlib.sha256(f"{raw}|onnxruntime".encode()).hexdigest()[:32]
    assert cache_key(*ARGS, "onnxruntime", "auto") == onnx
    assert cache_key(*ARGS, "onnxruntime", "cpu") == onnx


def test_a_missing_gpu_fails_at_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key resolves the device as the evaluation would, so cuda:1 on a one-GPU machine is
    a FerError before a cached report could answer for it."""
    pretend_gpus(monkeypatch, "NVIDIA H200")
    with pytest.raises(FerError, match="'cuda:1' does not exist"):
        cache_key(*ARGS, "torch", "cuda:1")
