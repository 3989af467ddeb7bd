"""`fer-tui live` and `fer-tui export` from the command line: records, exit codes, window."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer_tui.cli import main
from tests.helpers import make_face_video, make_folder_dataset, make_tiny_checkpoint


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("cli-live")
    return {
        "video": make_face_video(root / "face.avi", frames=20),
        "ckpt": make_tiny_checkpoint(root / "tiny.pt"),
    }


def _live(assets, *extra: str) -> list[str]:
    return [
        "live",
        "--source",
        str(assets["video"]),
        "--checkpoint",
        str(assets["ckpt"]),
        "--no-window",
        "--threads",
        "1",
        *extra,
    ]


def test_headless_jsonl(assets, tmp_path: Path, capsys) -> None:
    """One JSONL record per frame with boxes, labels, both probability sets and timings."""
    out = tmp_path / "r.jsonl"
    assert main(_live(assets, "--output", str(out))) == 0
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["frame"] for r in recs] == list(range(20))
    assert sum(bool(r["faces"]) for r in recs) >= 18
    face = next(r for r in recs if r["faces"])["faces"][0]
    assert set(face) >= {"box", "label", "confidence", "probs", "probs_raw", "track_id"}
    assert sum(face["probs"].values()) == pytest.approx(1.0, abs=1e-4)
    assert sum(face["probs_raw"].values()) == pytest.approx(1.0, abs=1e-4)
    assert set(recs[0]["timings_ms"]) == {"capture", "detect", "classify", "total"}
    assert "live: 20 frames" in capsys.readouterr().err


def test_headless_csv_and_max_frames(assets, tmp_path: Path) -> None:
    """CSV has one row per face with the seven smoothed and seven raw probabilities."""
    out = tmp_path / "r.csv"
    assert main(_live(assets, "--output", str(out), "--max-frames", "5")) == 0
    rows = list(csv.DictReader(out.open()))
    assert [int(r["frame"]) for r in rows] == [0, 1, 2, 3, 4]
    probs = [float(v) for k, v in rows[0].items() if k.startswith("p_")]
    assert len(probs) == 7 and sum(probs) == pytest.approx(1.0, abs=1e-4)


def test_stdout_stream(assets, capsys) -> None:
    """`--output -` streams JSONL on stdout (what the Live screen reads), preview included."""
    assert main(_live(assets, "--output", "-", "--max-frames", "3", "--preview", "32x24")) == 0
    recs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(recs) == 3 and recs[0]["preview"]["w"] == 32


def test_camera_open_failure_exits_2(assets, capsys) -> None:
    """A camera index with no camera is a one-line error and exit code 2."""
    code = main(["live", "--source", "99", "--checkpoint", str(assets["ckpt"]), "--no-window"])
    assert code == 2
    assert "no camera at index 99" in capsys.readouterr().err


def test_missing_checkpoint_exits_2(assets, tmp_path: Path, capsys, monkeypatch) -> None:
    """No --checkpoint and none shipped/trained: the error says how to get one."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("fer_tui.paths.project_root", lambda: tmp_path)
    code = main(["live", "--source", str(assets["video"]), "--no-window"])
    assert code == 2
    assert "fer-tui train" in capsys.readouterr().err


def test_unreadable_video_exits_2(assets, tmp_path: Path, capsys) -> None:
    """A corrupt video file is reported by name, exit code 2."""
    bad = tmp_path / "broken.avi"
    bad.write_bytes(b"RIFF" + b"\x00" * 500)
    code = main(["live", "--source", str(bad), "--checkpoint", str(assets["ckpt"]), "--no-window"])
    assert code == 2
    assert "broken.avi" in capsys.readouterr().err


def test_window_without_display_exits_2(assets, monkeypatch, capsys) -> None:
    """Asking for the window with no display suggests --no-window."""
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code = main(["live", "--source", str(assets["video"]), "--checkpoint", str(assets["ckpt"])])
    assert code == 2
    assert "--no-window" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb not installed")
def test_window_under_xvfb(assets, tmp_path: Path) -> None:
    """With a (virtual) display the OpenCV window path runs and still writes every record."""
    display = f":{90 + os.getpid() % 100}"
    xvfb = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "800x600x24"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.0)
        out = tmp_path / "w.jsonl"
        env = {**os.environ, "DISPLAY": display}
        env.pop("WAYLAND_DISPLAY", None)
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "fer_tui",
                "live",
                "--source",
                str(assets["video"]),
                "--checkpoint",
                str(assets["ckpt"]),
                "--max-frames",
                "8",
                "--threads",
                "1",
                "--output",
                str(out),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)
    assert proc.returncode == 0, proc.stderr
    assert len(out.read_text().splitlines()) == 8


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_prints_parity(assets, tmp_path: Path, capsys, fmt: str) -> None:
    """`fer-tui export --json` writes the file and reports parity within 1e-4."""
    out = tmp_path / f"m.{fmt}"
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(assets["ckpt"]),
                "--format",
                fmt,
                "--output",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    rep = json.loads(capsys.readouterr().out)
    assert rep["ok"] and rep["max_abs_diff"] <= 1e-4 and out.is_file()


def test_int8_export_is_checked_on_real_test_faces_and_runs_live(
    assets, tmp_path: Path, capsys
) -> None:
    """`--format onnx-int8` calibrates on the data's train faces, compares int8 with PyTorch on
    its test faces (accuracy within a point), keeps the metadata, and `live` runs the file."""
    data = make_folder_dataset(tmp_path / "data", {"train": 8, "test": 6})
    ckpt = make_tiny_checkpoint(tmp_path / "trained.pt", steps=25, data=data)
    out = tmp_path / "m-int8.onnx"
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(ckpt),
                "--format",
                "onnx-int8",
                "--output",
                str(out),
                "--data",
                str(data),
                "--json",
            ]
        )
        == 0
    )
    rep = json.loads(capsys.readouterr().out)
    assert rep["ok"] and rep["calibration_faces"] == 56 and rep["test_faces"] == 42
    assert rep["accuracy_torch"] > 0.5  # the tiny model learnt the synthetic classes
    assert rep["accuracy_drop"] <= 0.01 and rep["agreement"] >= 0.9

    from fer_tui.export import onnx_meta

    meta = onnx_meta(out)
    assert meta["arch"] == "resnet18" and "int8" in meta["quantized"]
    records = tmp_path / "int8.jsonl"
    assert (
        main(
            [
                "live",
                "--source",
                str(assets["video"]),
                "--checkpoint",
                str(out),
                "--no-window",
                "--threads",
                "1",
                "--max-frames",
                "6",
                "--output",
                str(records),
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in records.read_text().splitlines()]
    assert len(rows) == 6 and any(r["faces"] for r in rows)
    for face in (f for r in rows for f in r["faces"]):
        assert sum(face["probs"].values()) == pytest.approx(1.0, abs=1e-3)
    # an ONNX file cannot run under PyTorch: a clear error, not a pickle traceback
    assert (
        main(
            [
                "live",
                "--source",
                str(assets["video"]),
                "--checkpoint",
                str(out),
                "--backend",
                "torch",
                "--no-window",
                "--max-frames",
                "2",
            ]
        )
        == 2
    )
    assert "ONNX model" in capsys.readouterr().err


def test_int8_export_needs_test_faces(assets, tmp_path: Path, capsys) -> None:
    """Without a test split there is nothing to check int8 on: exit 2, saying so."""
    data = make_folder_dataset(tmp_path / "data", {"train": 4})
    code = main(
        [
            "export",
            "--checkpoint",
            str(assets["ckpt"]),
            "--format",
            "onnx-int8",
            "--output",
            str(tmp_path / "x.onnx"),
            "--data",
            str(data),
        ]
    )
    assert code == 2 and "test faces" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_export_missing_checkpoint(tmp_path: Path, capsys) -> None:
    """Exporting a checkpoint that is not there exits 2 with the path in the message."""
    code = main(
        ["export", "--checkpoint", str(tmp_path / "nope.pt"), "--output", str(tmp_path / "x.onnx")]
    )
    assert code == 2 and "nope.pt" in capsys.readouterr().err


class _UnpluggedCamera:
    """A camera that gives `n` frames of a video and then fails every read (unplugged)."""

    live, fps, length, name = True, 30.0, None, "camera 0"

    def __init__(self, video: Path, n: int) -> None:
        import cv2

        cap = cv2.VideoCapture(str(video))
        self.frames = [cap.read()[1] for _ in range(n)]
        cap.release()
        self.closed = False

    def prime(self) -> None:
        pass

    def read(self):
        time.sleep(0.01)
        return self.frames.pop(0) if self.frames else None

    def close(self) -> None:
        self.closed = True


def test_camera_unplugged_mid_stream(assets, tmp_path: Path, monkeypatch, capsys) -> None:
    """A camera that stops giving frames ends the run cleanly; the records written stay."""
    camera = _UnpluggedCamera(assets["video"], 6)
    monkeypatch.setattr("fer_tui.live.pipeline.open_reader", lambda source: camera)
    out = tmp_path / "cam.jsonl"
    code = main(
        [
            "live",
            "--source",
            "0",
            "--checkpoint",
            str(assets["ckpt"]),
            "--no-window",
            "--threads",
            "1",
            "--output",
            str(out),
        ]
    )
    assert code == 0
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert 1 <= len(recs) <= 6 and camera.closed
    assert "live: " in capsys.readouterr().err


def test_yunet_detector_in_the_records(assets, tmp_path: Path) -> None:
    """`--detector yunet` finds the face and says so in every record, with five landmarks."""
    out = tmp_path / "r.jsonl"
    assert main(_live(assets, "--output", str(out), "--detector", "yunet")) == 0
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["detector"] for r in recs} == {"yunet"}
    assert sum(bool(r["faces"]) for r in recs) >= 18
    assert len(next(r for r in recs if r["faces"])["faces"][0]["landmarks"]) == 5


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--detector", "cnn"], "unknown detector 'cnn': use --detector haar or --detector yunet"),
        (["--detector", "yunet", "--detector-model", "missing.onnx"], "no YuNet model at"),
        (["--detector", "yunet", "--detector-model", "{bad}"], "cannot load"),
        (["--live-config", "{toml}"], "detector"),
    ],
)
def test_bad_detector_exits_2(assets, tmp_path: Path, capsys, extra, says) -> None:
    """An unknown detector, a missing or corrupt model file, or a bad detector in the live
    config: one line on stderr naming the fix, exit code 2."""
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07" + b"\x00" * 300)
    toml = tmp_path / "live.toml"
    toml.write_text('detector = "cnn"\n')
    extra = [a.format(bad=bad, toml=toml) for a in extra]
    assert main(_live(assets, *extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fer-tui: error: ") and says in err[0]
    if "--detector-model" in extra:
        assert "--detector haar" in err[0]
