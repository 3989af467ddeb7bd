"""Training across devices and precisions, checked on a CPU.

No GPU runs these: a CUDA checkpoint is imitated by its generator state, CUDA tensors by
FakeTensorMode, and host syncs are counted with a TorchFunctionMode. Each test names the
behaviour a user on a GPU (or moving a run between a GPU and a CPU) would notice.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

from fer_tui import precision
from fer_tui.config import from_dict
from fer_tui.errors import ConfigError, FerError
from fer_tui.models import load_checkpoint, read_checkpoint
from fer_tui.runs import read_events
from fer_tui.training import checkpoints
from fer_tui.training import trainer as trainer_module
from fer_tui.training.arrays import Arrays
from fer_tui.training.distributed import Dist, close_distributed, init_distributed
from fer_tui.training.optim import WeightEMA
from fer_tui.training.trainer import Trainer
from tests.helpers import synthetic_faces

BASE = {
    "name": "tiny",
    "archs": ["resnet18"],
    "model": {"stem": "imagenet", "image_size": 16},
    "augment": {"erasing_p": 0.5},
    "train": {
        "epochs": 2,
        "batch_size": 4,
        "lr": 0.05,
        "warmup_epochs": 0.5,
        "device": "cpu",
        "log_every_steps": 1,
        "amp": "off",
    },
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def config(model: dict | None = None, **train_fields):
    raw = {**BASE, "train": {**BASE["train"], **train_fields}}
    if model:
        raw["model"] = {**BASE["model"], **model}
    return from_dict(raw)


def arrays() -> Arrays:
    x = np.concatenate([synthetic_faces(4, c) for c in range(7)])
    y = np.repeat(np.arange(7), 4)
    return Arrays(x, y, x[::2], y[::2], "test", "synthetic")


#: the smallest model that bf16 autocast on the CPU trains soundly (layer4 sees 2x2, not 1x1)
BF16_SAFE = {"stem": "compact"}


def trainer(run_dir: Path | None, model: dict | None = None, **train_fields) -> Trainer:
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
    return Trainer(config(model, **train_fields), run_dir, arrays())


def fit(t: Trainer, **kwargs) -> dict:
    try:
        return t.fit(**kwargs)
    finally:
        t.close()


def stop_after_step(t: Trainer, step: int) -> None:
    """Make `t` behave as if SIGTERM arrived during step `step` of its first epoch."""
    real = t._should_stop

    def should_stop(sync: bool = True) -> bool:
        if t.epoch == 0 and t.step_in_epoch == step:
            t.stop_signal = "SIGTERM"
        return real(sync)

    t._should_stop = should_stop


# --- precision ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amp", "device", "native", "cuda_bf16", "expected"),
    [
        ("auto", "cpu", True, True, "bf16"),
        ("auto", "cpu", False, True, "fp32"),
        ("auto", "cuda", False, True, "bf16"),
        ("auto", "cuda", False, False, "fp16"),
        ("bf16", "cpu", False, True, "bf16"),
        ("fp16", "cpu", True, True, "fp32"),
        ("fp16", "cuda", True, True, "fp16"),
        ("off", "cuda", True, True, "fp32"),
        ("off", "cpu", True, True, "fp32"),
    ],
)
def test_amp_resolves_per_device(amp, device, native, cuda_bf16, expected) -> None:
    """auto picks bf16 only where the hardware runs it natively; explicit values are obeyed."""
    got = precision.resolve_precision(amp, device, cuda_bf16=cuda_bf16, native_cpu_bf16=native)
    assert got == expected


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    """avx512_bf16 or amx_bf16 in /proc/cpuinfo means native bf16; AVX2 alone does not."""
    zen4 = tmp_path / "zen4"
    zen4.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    zen2 = tmp_path / "zen2"
    zen2.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2\n")
    assert precision.cpu_has_native_bf16(precision.cpu_flags.__wrapped__(str(zen4)))
    assert not precision.cpu_has_native_bf16(precision.cpu_flags.__wrapped__(str(zen2)))
    assert precision.cpu_flags.__wrapped__(str(tmp_path / "missing")) == frozenset()


def native_bf16(monkeypatch: pytest.MonkeyPatch, bf16: float, fp32: float) -> list[int]:
    """Pretend the CPU lists native bf16 and times bf16/fp32 at these images/s; the list
    counts how often the trainer timed them."""
    timed: list[int] = []

    def speeds(model, **kwargs) -> dict[str, float]:
        timed.append(kwargs["batch"])
        return {"bf16": bf16, "fp32": fp32}

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda flags=None: True)
    monkeypatch.setattr(trainer_module, "cpu_precision_speeds", speeds)
    return timed


def test_auto_trains_in_bf16_where_it_is_faster_on_this_cpu_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start event (which the Training screen shows) names the precision that ran and the
    speeds it was chosen on."""
    timed = native_bf16(monkeypatch, bf16=190.0, fp32=105.0)
    t = trainer(tmp_path / "bf16", BF16_SAFE, amp="auto", epochs=1)
    assert timed == [4]  # the run's own batch size
    assert t.precision == "bf16" and t.use_amp and not t.scaler.is_enabled()
    fit(t)
    start = read_events(tmp_path / "bf16")[0]
    assert start["precision"] == "bf16"
    assert start["precision_speeds"] == {"bf16": 190.0, "fp32": 105.0}
    # weights stay fp32 in training checkpoints whatever autocast computed in
    ckpt = read_checkpoint(tmp_path / "bf16" / "last.pt")
    assert all(v.dtype == torch.float32 for v in ckpt["model"].values() if v.is_floating_point())
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda flags=None: False)
    assert trainer(None, BF16_SAFE, amp="auto").precision == "fp32"
    assert timed == [4]  # no native bf16: nothing to time


def test_auto_keeps_fp32_where_native_bf16_is_slower_on_this_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """avx512_bf16 in the flags but bf16 slower (as on a Xeon whose AMX is hidden): fp32,
    and the start event says why; a forced bf16 or off is obeyed without timing anything."""
    timed = native_bf16(monkeypatch, bf16=81.0, fp32=108.0)
    t = trainer(tmp_path / "run", BF16_SAFE, amp="auto", epochs=1)
    assert t.precision == "fp32" and not t.use_amp
    fit(t)
    start = read_events(tmp_path / "run")[0]
    assert start["precision"] == "fp32"
    assert start["precision_speeds"] == {"bf16": 81.0, "fp32": 108.0}
    assert trainer(None, BF16_SAFE, amp="bf16").precision == "bf16"
    assert trainer(None, BF16_SAFE, amp="off").precision == "fp32"
    assert len(timed) == 1


def test_timing_the_precisions_leaves_the_model_and_random_streams_alone() -> None:
    """The timing trains a copy: the weights, BatchNorm statistics and the global random
    stream the run's initial state comes from are the same after it."""
    from fer_tui.models import build_model
    from fer_tui.training.speed_probe import cpu_precision_speeds, faster

    torch.manual_seed(0)
    model = build_model("resnet18", stem="compact", in_channels=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    speeds = cpu_precision_speeds(model, batch=4, side=16, channels=1, classes=7, rounds=1)
    assert set(speeds) == {"bf16", "fp32"} and all(v > 0 for v in speeds.values())
    assert torch.equal(torch.get_rng_state(), rng)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert faster({"bf16": 2.0, "fp32": 1.0}) == "bf16"
    assert faster({"bf16": 1.0, "fp32": 2.0}) == "fp32"
    assert faster({"bf16": 1.0, "fp32": 1.0}) == "fp32"


def test_bf16_is_not_used_on_the_cpu_where_layer4_would_see_a_1x1_map(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 3x3 stride-2 conv over a 1x1 map gets non-finite weight gradients in CPU bf16
    autocast (torch's oneDNN kernel), so such a model trains in fp32 under auto, and a forced
    bf16 is a configuration error naming the fix."""
    assert precision.layer4_input_side("imagenet", 48) == 3
    assert precision.layer4_input_side("imagenet", 16) == 1
    assert precision.layer4_input_side("compact", 16) == 2
    assert precision.layer4_input_side("cifar", 48) == 12
    native_bf16(monkeypatch, bf16=200.0, fp32=100.0)
    assert trainer(None, amp="auto").precision == "fp32"  # ImageNet stem, 16 px
    assert trainer(None, BF16_SAFE, amp="auto").precision == "bf16"
    with pytest.raises(ConfigError, match="1x1 map"):
        trainer(None, amp="bf16")
    # on a GPU the kernel is cuDNN's, which has no such flaw
    assert precision.resolve_precision("auto", "cuda", smallest_map=1) == "bf16"


@pytest.mark.slow
def test_a_bf16_loss_curve_follows_the_fp32_one(tmp_path: Path) -> None:
    """Same seed, same data: bf16 autocast's per-epoch training loss stays within noise of
    fp32's (a broken autocast path, e.g. a loss computed in bf16, drifts far off)."""
    curves = {}
    for amp in ("off", "bf16"):
        t = trainer(tmp_path / amp, BF16_SAFE, amp=amp, epochs=4, lr=0.01, log_every_steps=7)
        fit(t)
        curves[amp] = [e["train_loss"] for e in read_events(tmp_path / amp) if e["type"] == "epoch"]
    assert len(curves["off"]) == len(curves["bf16"]) == 4
    for a, b in zip(curves["off"], curves["bf16"], strict=True):
        assert abs(a - b) < 0.1 * a, curves


# --- what the epoch event and the checkpoint writer cost ---------------------------------------


def test_epoch_images_per_second_leave_evaluation_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow evaluation shows in eval_seconds and seconds, not in the training img/s."""
    real = Trainer.evaluate_epoch

    def slow_eval(self, *a, **k):
        time.sleep(0.5)
        return real(self, *a, **k)

    monkeypatch.setattr(Trainer, "evaluate_epoch", slow_eval)
    fit(trainer(tmp_path / "run", epochs=1))
    (epoch,) = [e for e in read_events(tmp_path / "run") if e["type"] == "epoch"]
    assert epoch["eval_seconds"] >= 0.5
    assert epoch["train_seconds"] < epoch["seconds"] - 0.45
    assert epoch["img_per_s"] == pytest.approx(28 / epoch["train_seconds"], rel=1e-6)


def test_epoch_end_checkpoints_do_not_block_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """last.pt and best.pt of an improving epoch are written while training goes on: the
    epoch-end call returns at once even when each file takes 0.3 s to write."""
    real_save = checkpoints.save_checkpoint

    def slow_save(*a, **k):
        time.sleep(0.3)
        return real_save(*a, **k)

    monkeypatch.setattr(checkpoints, "save_checkpoint", slow_save)
    t = trainer(tmp_path / "run", epochs=1)
    real_end = t.save_epoch_end
    spent = []

    def timed(improved: bool) -> None:
        t0 = time.perf_counter()
        real_end(improved)
        spent.append((improved, time.perf_counter() - t0))

    t.save_epoch_end = timed
    fit(t)
    assert spent and spent[0][0] is True  # the first epoch always improves: two files
    assert spent[0][1] < 0.2, spent
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "last.pt").is_file()


# --- resume across devices and precisions ---------------------------------------------------


def test_resume_mid_epoch_of_a_run_saved_on_another_device_type(tmp_path: Path) -> None:
    """A run stopped mid-epoch on a GPU (its augmentation generator state is a CUDA one) resumes
    on a CPU: it finishes every epoch and says, in a warning event, that the random stream
    restarted."""
    run_dir = tmp_path / "run"
    t = trainer(run_dir)
    stop_after_step(t, 2)
    assert fit(t)["status"] == "stopped"
    ckpt = read_checkpoint(run_dir / "last.pt")
    assert ckpt["step_in_epoch"] == 2
    ckpt["rng"]["aug"] = torch.zeros(16, dtype=torch.uint8)  # what a CUDA generator saves
    torch.save(ckpt, run_dir / "last.pt")

    t = trainer(run_dir)
    t.load(run_dir / "last.pt")
    assert fit(t, resume=True)["status"] == "finished"
    events = read_events(run_dir)
    warnings = [e for e in events if e["type"] == "warning"]
    assert len(warnings) == 1 and "random stream" in warnings[0]["message"]
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [1, 2]


def test_fp16_resume_of_a_run_saved_without_a_grad_scaler(tmp_path: Path) -> None:
    """A run trained in bf16/fp32 (no scaler state) resumes with fp16's grad scaler on."""
    run_dir = tmp_path / "run"
    t = trainer(run_dir, epochs=1)
    fit(t)
    t = trainer(run_dir, epochs=2)
    t.scaler = torch.amp.GradScaler("cpu", enabled=True)
    t.load(run_dir / "last.pt")  # raised "The source state dict is empty" before
    assert t.epoch == 1


# --- EMA ---------------------------------------------------------------------------------


def test_ema_is_written_evaluated_and_survives_a_resume(tmp_path: Path) -> None:
    """With ema_decay set, every epoch reports the EMA's validation accuracy, ema.pt loads like
    any checkpoint, and a mid-epoch stop + resume continues the same average."""
    run_dir = tmp_path / "run"
    t = trainer(run_dir, ema_decay=0.9)
    stop_after_step(t, 3)
    fit(t)
    assert read_checkpoint(run_dir / "last.pt")["ema_updates"] == 3
    t = trainer(run_dir, ema_decay=0.9)
    t.load(run_dir / "last.pt")
    assert t.ema.updates == 3
    fit(t, resume=True)
    epochs = [e for e in read_events(run_dir) if e["type"] == "epoch"]
    assert all(0 <= e["val_acc_ema"] <= 1 and e["val_loss_ema"] > 0 for e in epochs)
    model, meta = load_checkpoint(run_dir / "ema.pt")
    assert meta["weights"] == "ema" and not model.training
    last, ema = read_checkpoint(run_dir / "last.pt"), read_checkpoint(run_dir / "ema.pt")
    assert last["ema_updates"] == 14  # 2 epochs x 7 steps, across the stop
    assert not torch.equal(last["model"]["fc.weight"], ema["model"]["fc.weight"])
    assert torch.equal(last["ema"]["fc.weight"], ema["model"]["fc.weight"])


def test_ema_update_is_the_moving_average() -> None:
    """After a step the average moves (1 - decay) of the way to the new weights."""
    model = torch.nn.Linear(2, 1)
    ema = WeightEMA(model, decay=0.5)
    ema.updates = 100  # past the warm-up ramp: the decay is 0.5
    before = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(2.0)
    ema.update()
    assert torch.allclose(ema.model.weight, before + 1.0)


# --- guards for the CUDA step loop --------------------------------------------------------


class CountSyncs(TorchFunctionMode):
    """Counts the tensor calls that make the host wait for the device."""

    SYNCS = {"item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__"}

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in self.SYNCS:
            self.calls.append(name)
        return func(*args, **(kwargs or {}))


def test_the_step_loop_syncs_with_the_host_once_per_logging_window() -> None:
    """On a GPU every .item()/.tolist() stalls the pipeline: an epoch of 7 steps logged every
    3 steps may sync three times, whatever augmentation, EMA and bookkeeping run in between."""
    t = trainer(None, log_every_steps=3, ema_decay=0.9)
    with CountSyncs() as counter:
        t.train_one_epoch(1)
    t.close()
    assert t.steps_per_epoch == 7
    assert len(counter.calls) <= math.ceil(7 / 3), counter.calls


class CheckGenerators(TorchFunctionMode):
    """Fails on a random op whose generator lives on another device than its output."""

    RANDOM = {
        "rand",
        "randn",
        "randint",
        "randperm",
        "bernoulli",
        "normal",
        "uniform_",
        "random_",
        "exponential_",
    }

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if getattr(func, "__name__", "") in self.RANDOM:
            g = kwargs.get("generator")
            assert g is not None, f"{func.__name__} draws from the global RNG"
            assert isinstance(out, torch.Tensor) and g.device.type == out.device.type
            self.seen += 1
        return out


def test_every_random_op_in_an_epoch_uses_a_generator_on_its_device() -> None:
    """Shuffling and augmentation draw from the run's seeded generators (which a resume
    restores), each on the device of the tensor it fills."""
    t = trainer(None)
    assert t.aug_gen.device == t.device
    with CheckGenerators() as check:
        t.train_one_epoch(1)
    t.close()
    assert check.seen > 0


def test_augmentation_and_forward_keep_every_tensor_on_the_gpu() -> None:
    """With every augmentation on, a CUDA batch never meets a CPU tensor on its way through
    BatchAugment, preprocessing and the model (FakeTensorMode raises on any mix)."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.func import functional_call

    from fer_tui.augment import BatchAugment
    from fer_tui.config import AugmentConfig
    from fer_tui.models import build_model
    from fer_tui.preprocess import to_input

    every = AugmentConfig(
        flip=True,
        crop_padding=4,
        rotation_deg=10,
        scale=0.1,
        translate=0.1,
        shear_deg=5,
        brightness=0.2,
        contrast=0.2,
        erasing_p=1.0,
    )
    model = build_model("resnet18", stem="cifar", in_channels=1)
    with FakeTensorMode(allow_non_fake_inputs=True) as mode:
        images = torch.empty(8, 48, 48, dtype=torch.uint8, device="cuda")
        # a CUDA generator cannot be made without a driver; the default one stands in
        x = BatchAugment(every, 48)(images, None)
        assert x.device.type == "cuda"
        x = x.contiguous(memory_format=torch.channels_last)
        y = to_input(images, image_size=48, in_channels=1, channels_last=True)
        params = {k: mode.from_tensor(v).to("cuda") for k, v in model.state_dict().items()}
        out = functional_call(model, params, (torch.cat([x, y]),))
        assert out.device.type == "cuda" and out.shape == (16, 7)
    with FakeTensorMode(allow_non_fake_inputs=True), pytest.raises(Exception, match="device"):
        torch.empty(2, device="cuda") + torch.ones(2)  # the guard does catch a mix


# --- distributed --------------------------------------------------------------------------


def test_more_ranks_than_gpus_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchrun --nproc_per_node 2 on a one-GPU machine names the fix instead of a CUDA error."""
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(FerError, match="--nproc_per_node 1"):
        init_distributed(Dist(1, 2, 1), torch.device("cuda"))


def test_the_process_group_is_torn_down_when_training_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fit_run leaves no process group behind (recent torch warns at exit otherwise)."""
    import torch.distributed as td

    store = td.FileStore(str(tmp_path / "store"), 1)
    td.init_process_group("gloo", store=store, rank=0, world_size=1)
    assert td.is_initialized()
    close_distributed(Dist(0, 2, 0))
    assert not td.is_initialized()


# --- torch.compile -----------------------------------------------------------------------------


def test_compiled_evaluation_sees_one_batch_size_and_the_same_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With train.compile, every evaluation batch has the same size (a shorter last batch would
    compile a second graph), and the padding changes no validation figure."""
    shapes: list[tuple[bool, int]] = []

    class Recorded(torch.nn.Module):
        """Stands in for torch.compile's wrapper (nothing compiles): records each batch."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            shapes.append((self.inner.training, len(x)))
            return self.inner(x)

    monkeypatch.setattr(torch, "compile", lambda module, **kwargs: Recorded(module))
    compiled = fit(trainer(tmp_path / "compiled", compile=True))
    plain = fit(trainer(tmp_path / "plain"))
    eval_sizes = {n for training, n in shapes if not training}
    assert eval_sizes == {256}  # 14 validation faces, padded to the CPU evaluation batch
    assert compiled["status"] == plain["status"] == "finished"

    def val(run: str) -> list[float]:
        """val loss and accuracy of each epoch, flat (pytest.approx compares no nesting)."""
        events = read_events(tmp_path / run)
        epochs = [e for e in events if e["type"] == "epoch"]
        return [x for e in epochs for x in (e["val_loss"], e["val_acc"])]

    assert val("compiled") == pytest.approx(val("plain"), abs=1e-6)
    assert len(val("plain")) == 4  # two epochs


# --- progressive resizing -------------------------------------------------------------------


def test_progressive_resizing_trains_small_first_and_evaluates_at_full_size(tmp_path: Path) -> None:
    """With low_res_size, the first half of the epochs sees smaller faces, the rest full-size
    ones, and validation always runs at the model's image size."""
    raw = {
        **BASE,
        "model": {"stem": "compact", "image_size": 24},
        "train": {**BASE["train"], "epochs": 4, "low_res_size": 16, "low_res_fraction": 0.5},
    }
    (tmp_path / "run").mkdir()
    t = Trainer(from_dict(raw), tmp_path / "run", arrays())
    seen: dict[int, set] = {}
    hook = t.model.register_forward_pre_hook(
        lambda m, inp: seen.setdefault(t.epoch + (1 if m.training else 0), set()).add(
            (m.training, inp[0].shape[-1])
        )
    )
    fit(t)
    hook.remove()
    # epoch k trains while t.epoch == k - 1 and validates after t.epoch is still k - 1
    assert {size for training, size in seen[1] if training} == {16}
    assert {size for training, size in seen[2] if training} == {16}
    assert {size for training, size in seen[3] if training} == {24}
    assert all(size == 24 for s in seen.values() for training, size in s if not training)
    epochs = [e for e in read_events(tmp_path / "run") if e["type"] == "epoch"]
    assert [e["train_image_size"] for e in epochs] == [16, 16, 24, 24]


def test_progressive_resizing_is_checked_against_the_image_size() -> None:
    """A low-res size at or above the image size is a config error naming the key."""
    from fer_tui.errors import ConfigError

    raw = {**BASE, "train": {**BASE["train"], "low_res_size": 16}}
    with pytest.raises(ConfigError, match="train.low_res_size"):
        from_dict(raw)  # BASE's image_size is 16
