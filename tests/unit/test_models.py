"""fer_tui.models: the freeze policy, offline weights, and the safe checkpoint format."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from fer_tui.config import load_config
from fer_tui.data.index import CLASSES
from fer_tui.errors import CheckpointError, FerError
from fer_tui.models import (
    build_model,
    load_checkpoint,
    model_meta,
    predict_proba,
    read_checkpoint,
    resolve_device,
    save_checkpoint,
)
from tests.fake_devices import pretend_gpus

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A resnet18 (ImageNet stem, random weights) checkpoint."""
    path = tmp_path_factory.mktemp("ckpt") / "r18.pt"
    torch.manual_seed(0)
    model = build_model("resnet18", stem="imagenet")
    save_checkpoint(
        path, model, model_meta("resnet18", load_config(CONFIGS / "smoke.toml"), epoch=3)
    )
    return path


def test_paper_freeze_policy_leaves_only_layer4_and_fc_trainable() -> None:
    """The paper recipe trains layer4 and fc; every other parameter has requires_grad False."""
    m = load_config(CONFIGS / "paper.toml").model
    model = build_model(
        "resnet18", stem=m.stem, in_channels=m.in_channels, weights=None, trainable=m.trainable
    )
    for name, p in model.named_parameters():
        assert p.requires_grad == name.startswith(("layer4.", "fc.")), name
    assert model.conv1.in_channels == 3 and model.conv1.kernel_size == (7, 7)


def test_scratch_model_has_the_small_stem_and_seven_outputs() -> None:
    """The cifar stem keeps 48x48 into layer1 (3x3/1 conv, no max-pool), 7 logits out."""
    model = build_model("resnet34", stem="cifar", in_channels=1)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    assert model(torch.zeros(2, 1, 48, 48)).shape == (2, len(CLASSES))
    assert all(p.requires_grad for p in model.parameters())


def test_offline_pretrained_weights_error_says_where_to_put_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No cached ImageNet weights and no network: a FerError naming the file and TORCH_HOME."""
    import torchvision

    def offline(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torchvision.models._api.WeightsEnum, "get_state_dict", offline)
    with pytest.raises(FerError) as err:
        build_model("resnet18", stem="imagenet", in_channels=3, weights="IMAGENET1K_V1")
    message = str(err.value)
    assert "resnet18-f37072fd.pth" in message and "TORCH_HOME" in message
    assert "scratch" in message


def test_checkpoint_round_trip_gives_same_predictions(tiny_ckpt: Path, tmp_path: Path) -> None:
    """save -> load_checkpoint: eval mode, same metadata, same outputs; fp16 copy is close."""
    model, meta = load_checkpoint(tiny_ckpt)
    assert not model.training and meta["arch"] == "resnet18" and meta["epoch"] == 3
    assert meta["classes"] == list(CLASSES) and meta["recipe"] == "smoke"
    faces = torch.randint(0, 256, (4, 48, 48), dtype=torch.uint8)
    p = predict_proba(model, meta, faces)
    assert p.shape == (4, 7) and abs(p.sum(1) - 1).max() < 1e-5
    half = tmp_path / "half.pt"
    save_checkpoint(half, model, meta, half=True)
    assert read_checkpoint(half)["model"]["conv1.weight"].dtype == torch.float16
    model16, meta16 = load_checkpoint(half)
    assert abs(predict_proba(model16, meta16, faces) - p).max() < 1e-2
    assert torch.load(tiny_ckpt, weights_only=True)["format"] == "fer-tui-checkpoint"


def test_checkpoint_of_another_arch_is_refused(tiny_ckpt: Path) -> None:
    """Asking for resnet50 with a resnet18 file names both archs."""
    with pytest.raises(CheckpointError, match="resnet18 checkpoint, not resnet50"):
        load_checkpoint(tiny_ckpt, arch="resnet50")


def test_truncated_checkpoint_is_a_clear_error(tiny_ckpt: Path, tmp_path: Path) -> None:
    """Half a file: 'truncated or not a PyTorch checkpoint', no traceback."""
    bad = tmp_path / "cut.pt"
    bad.write_bytes(tiny_ckpt.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(bad)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"# notes\n\nnot weights\n", "Unsupported operand"),
        (b"", "empty"),
        (b"PK\x03\x04 not really a zip", "not a ZIP archive"),
    ],
    ids=["text", "empty", "zip-header"],
)
def test_a_file_that_is_not_a_checkpoint_says_so(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    """A text file, an empty file or junk is "not a PyTorch checkpoint" with the reason in one
    line, not torch's advice to file an issue or to allowlist globals."""
    bad = tmp_path / "notes.pt"
    bad.write_bytes(content)
    with pytest.raises(CheckpointError, match="truncated or not a PyTorch checkpoint") as err:
        load_checkpoint(bad)
    message = str(err.value)
    assert reason in message
    assert "Python objects" not in message and "file an issue" not in message


class Evil:
    """Unpickling this would create a file: proof that pickled code never runs."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickled_object_is_refused_and_never_executed(tmp_path: Path) -> None:
    """A checkpoint holding a custom object is refused and its code never runs."""
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pt"
    torch.save({"format": "fer-tui-checkpoint", "meta": {}, "model": Evil(str(marker))}, bad)
    with pytest.raises(CheckpointError, match="never runs pickled code") as err:
        load_checkpoint(bad)
    assert "GLOBAL" in str(err.value) and "safe_globals" not in str(err.value)
    assert not marker.exists()
    # the same with plain pickle, not torch.save
    bad.write_bytes(pickle.dumps(Evil(str(marker)), protocol=2))
    with pytest.raises(CheckpointError):
        load_checkpoint(bad)
    assert not marker.exists()


def test_wrong_class_set_is_refused(tiny_ckpt: Path, tmp_path: Path) -> None:
    """A checkpoint trained for other classes is not mistaken for a FER-2013 one."""
    ckpt = read_checkpoint(tiny_ckpt)
    ckpt["meta"]["classes"] = ["cat", "dog"]
    other = tmp_path / "other.pt"
    torch.save(ckpt, other)
    with pytest.raises(CheckpointError, match="7-class FER-2013"):
        load_checkpoint(other)


def test_not_a_fer_tui_checkpoint(tmp_path: Path) -> None:
    """A plain state_dict (e.g. torchvision weights) is named as not ours."""
    path = tmp_path / "sd.pt"
    torch.save({"conv1.weight": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="not a fer-tui checkpoint"):
        load_checkpoint(path)


def test_a_gpu_index_this_machine_lacks_is_a_one_line_error(monkeypatch) -> None:
    """cuda:1 on a one-GPU machine is a FerError naming the GPU there is and the flag to use,
    not CUDA's "invalid device ordinal" traceback when the model moves."""
    pretend_gpus(monkeypatch, "NVIDIA H200")
    assert resolve_device("cuda") == torch.device("cuda")
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    assert resolve_device("auto") == torch.device("cuda")
    with pytest.raises(FerError) as err:
        resolve_device("cuda:1")
    message = str(err.value)
    assert "\n" not in message
    assert "'cuda:1'" in message and "1 GPU (cuda:0 NVIDIA H200)" in message
    assert "--device cuda:0" in message

    pretend_gpus(monkeypatch, "NVIDIA H200", "NVIDIA H200")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(FerError, match="use --device cuda:0 to cuda:1"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("gpus", [(), ("NVIDIA H200",)], ids=["no-gpu", "one-gpu"])
@pytest.mark.parametrize("name", ["gpu", "cuda:x", "cuda:-1", "CUDA", "", "mps", "meta", "xpu"])
def test_a_malformed_device_name_is_a_fer_error(monkeypatch, name: str, gpus: tuple) -> None:
    """A device name other than auto, cpu, cuda or cuda:N is a FerError saying which names
    work, whether or not there is a GPU."""
    pretend_gpus(monkeypatch, *gpus)
    with pytest.raises(FerError, match="unknown device .*use auto, cpu, cuda or cuda:N"):
        resolve_device(name)


def test_cuda_without_a_gpu_says_to_use_the_cpu(monkeypatch) -> None:
    """cuda or cuda:N on a machine without CUDA says so and points at --device cpu."""
    pretend_gpus(monkeypatch)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    for name in ("cuda", "cuda:1"):
        with pytest.raises(FerError, match="no GPU is available: use --device cpu"):
            resolve_device(name)


@pytest.mark.parametrize(
    "prefix",
    ["_orig_mod.", "module.", "_orig_mod.module.", "module._orig_mod.", "module._orig_mod.module."],
)
def test_wrapper_prefixes_are_stripped_in_any_order(prefix: str, tmp_path: Path) -> None:
    """Keys saved from compile(DDP(m)), DDP(compile(m)) or deeper nestings lose every wrapper
    prefix, so the checkpoint loads into a bare model."""
    torch.manual_seed(0)
    model = build_model("resnet18", stem="imagenet", in_channels=1)
    state = model.state_dict()
    path = tmp_path / "wrapped.pt"
    save_checkpoint(
        path,
        {prefix + k: v for k, v in state.items()},
        model_meta("resnet18", stem="imagenet", in_channels=1),
    )
    assert list(read_checkpoint(path)["model"]) == list(state)
    loaded, _ = load_checkpoint(path)
    assert torch.equal(loaded.fc.weight, model.fc.weight)


def test_compiled_and_ddp_wrapped_models_save_bare_keys(tmp_path: Path) -> None:
    """A model under torch.compile, DDP or both, in either order, saves the bare model's keys
    and loads back to its weights. Nothing compiles: torch.compile is lazy until called."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    if not dist.is_available():
        pytest.skip("this torch build has no torch.distributed")
    torch.manual_seed(0)
    model = build_model("resnet18", stem="imagenet", in_channels=1)
    state = model.state_dict()
    meta = model_meta("resnet18", stem="imagenet", in_channels=1)
    dist.init_process_group(
        "gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1
    )
    try:
        wrapped = {
            "compile": torch.compile(model),
            "ddp": DDP(model),
            "compile-ddp": torch.compile(DDP(model)),
            "ddp-compile": DDP(torch.compile(model)),
        }
        for name, module in wrapped.items():
            path = tmp_path / f"{name}.pt"
            save_checkpoint(path, module, meta)
            assert list(read_checkpoint(path)["model"]) == list(state), name
            loaded, _ = load_checkpoint(path)
            for key, value in loaded.state_dict().items():
                assert torch.equal(value, state[key]), (name, key)
    finally:
        dist.destroy_process_group()
