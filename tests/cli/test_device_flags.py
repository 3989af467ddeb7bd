"""`--device` on the command line: a GPU that is not there, or a name that is not a device, is
a one-line error with exit code 2, never a CUDA traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_tui.cli import main
from tests.fake_devices import pretend_gpus
from tests.helpers import make_tiny_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A resnet18 checkpoint with random weights (quick to evaluate on the CPU)."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ck") / "best.pt")


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    """The only error line on stderr, after checking there is no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1, err
    return lines[0]


def test_evaluate_on_a_gpu_index_that_is_not_there(
    ckpt: Path, tiny_data: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """`fer-tui evaluate --device cuda:1` on a one-GPU machine names the GPU there is."""
    pretend_gpus(monkeypatch, "NVIDIA H200")
    code = main(
        ["evaluate", "--checkpoint", str(ckpt), "--data", str(tiny_data), "--device", "cuda:1"]
    )
    assert code == 2
    line = one_line_error(capsys)
    assert line.startswith("fer-tui: error: device 'cuda:1' does not exist")
    assert "cuda:0 NVIDIA H200" in line and "--device cuda:0" in line


def test_evaluate_with_a_device_name_that_is_not_one(ckpt: Path, tiny_data: Path, capsys) -> None:
    """`fer-tui evaluate --device gpu` says which device names work."""
    code = main(
        ["evaluate", "--checkpoint", str(ckpt), "--data", str(tiny_data), "--device", "gpu"]
    )
    assert code == 2
    assert "unknown device 'gpu': use auto, cpu, cuda or cuda:N" in one_line_error(capsys)


@pytest.mark.parametrize("name", ["cuda:1", "gpu"])
def test_train_takes_only_the_configs_device_names(name: str, tmp_path: Path, capsys) -> None:
    """`fer-tui train --device` accepts what train.device does (auto, cpu, cuda): anything else
    is argparse's usage error, exit code 2, before any run dir exists."""
    runs = tmp_path / "runs"
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--runs-dir", str(runs), "--device", name])
    assert exit_.value.code == 2
    assert f"argument --device: invalid choice: '{name}'" in one_line_error(capsys)
    assert not runs.exists()


def test_train_on_cuda_without_a_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """`fer-tui train --device cuda` without a GPU is one line that points at --device cpu,
    and creates no run dir."""
    pretend_gpus(monkeypatch)
    runs = tmp_path / "runs"
    assert main(["train", "--runs-dir", str(runs), "--device", "cuda"]) == 2
    assert "no GPU is available: use --device cpu" in one_line_error(capsys)
    assert not runs.exists() or not any(runs.iterdir())


def test_evaluate_on_a_missing_gpu_is_refused_even_when_cached(
    ckpt: Path, tiny_data: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A report cached by a CPU evaluation does not answer `--device cuda:1` on a one-GPU
    machine: the device is still checked, and the CPU report is not served."""
    base = ["evaluate", "--checkpoint", str(ckpt), "--data", str(tiny_data)]
    assert main([*base, "--device", "cpu"]) == 0
    capsys.readouterr()
    pretend_gpus(monkeypatch, "NVIDIA H200")
    assert main([*base, "--device", "cuda:1"]) == 2
    assert "device 'cuda:1' does not exist" in one_line_error(capsys)


def test_evaluate_checks_the_gpu_before_reading_the_data(
    ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A GPU that is not there is refused before the dataset is decoded (minutes for the real
    one), so the error is about the device even when the data is not there either."""
    pretend_gpus(monkeypatch)
    missing = tmp_path / "no-data"
    code = main(["evaluate", "--checkpoint", str(ckpt), "--data", str(missing), "--device", "cuda"])
    assert code == 2
    assert "no GPU is available: use --device cpu" in one_line_error(capsys)
