"""`fer-tui evaluate` end to end on the tiny synthetic dataset with a checkpoint trained here."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from fer_tui.cli import main
from fer_tui.data.index import CLASSES
from tests.helpers import make_folder_dataset, make_tiny_checkpoint


@pytest.fixture(scope="module")
def ckpt(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A resnet18 trained for a few steps on the tiny train split."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ck") / "best.pt", steps=3, data=tiny_data)


@pytest.mark.slow
def test_end_to_end_json_predictions_markdown(
    ckpt: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A checkpoint evaluates through the CLI: tables printed, JSON/CSV/Markdown written,
    and the predictions file recomputes to exactly the reported metrics with sklearn."""
    from sklearn.metrics import classification_report, roc_auc_score

    out, preds, md = tmp_path / "r.json", tmp_path / "p.csv", tmp_path / "r.md"
    code = main(
        [
            "evaluate",
            "--checkpoint",
            str(ckpt),
            "--data",
            str(tiny_data),
            "--json",
            str(out),
            "--predictions",
            str(preds),
            "--markdown",
            str(md),
        ]
    )
    assert code == 0
    printed = capsys.readouterr()
    assert "Table 1" in printed.out and "Table 2" in printed.out
    assert "paper resnet18" in printed.out and "test-time augmentation: none" in printed.out

    report = json.loads(out.read_text())
    assert report["model"]["arch"] == "resnet18" and report["tta"] == "none"
    assert report["data"]["split"] == "test" and report["n"] == 7 * 4
    assert set(report["classes"]) == set(CLASSES)
    assert "Table 1" in md.read_text() and "TTA none" in md.read_text()

    with open(preds, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 28
    assert list(rows[0]) == ["index", "path", "true", "pred", *(f"p_{c}" for c in CLASSES), "tta"]
    assert {r["tta"] for r in rows} == {"none"}
    assert rows[0]["path"].startswith("test/")
    y = [CLASSES.index(r["true"]) for r in rows]
    pred = [CLASSES.index(r["pred"]) for r in rows]
    probs = np.array([[float(r[f"p_{c}"]) for c in CLASSES] for r in rows])
    assert (probs.argmax(1) == pred).all()
    sk = classification_report(
        y, pred, labels=range(7), target_names=CLASSES, output_dict=True, zero_division=0
    )
    for m in ("precision", "recall", "f1-score"):
        assert report["weighted_avg"][m] == pytest.approx(sk["weighted avg"][m])
        assert report["classes"]["fear"][m] == pytest.approx(sk["fear"][m])
    assert report["accuracy"] == pytest.approx(sk["accuracy"])
    assert report["auc_macro_ovr"] == pytest.approx(
        roc_auc_score(y, probs, multi_class="ovr"), abs=1e-6
    )
    assert report["auc_weighted_ovr"] == pytest.approx(
        roc_auc_score(y, probs, multi_class="ovr", average="weighted"), abs=1e-6
    )


@pytest.mark.slow
def test_second_run_comes_from_the_cache(
    ckpt: Path,
    tiny_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same checkpoint, data, split and TTA are not predicted twice; --no-cache is."""
    from fer_tui import evaluate as ev

    args = ["evaluate", "--checkpoint", str(ckpt), "--data", str(tiny_data), "--tta", "flip"]
    assert main([*args, "--json", str(tmp_path / "a.json")]) == 0
    first = json.loads((tmp_path / "a.json").read_text())
    assert first["tta"] == "flip"

    def no_predict(*a: object, **k: object) -> None:
        raise AssertionError("predicted again despite the cache")

    monkeypatch.setattr(ev, "_predict", no_predict)
    capsys.readouterr()
    assert main([*args, "--json", str(tmp_path / "b.json")]) == 0
    assert "(cached)" in capsys.readouterr().err
    assert json.loads((tmp_path / "b.json").read_text()) == first
    assert (
        ev.find_cached_report(ckpt, tta="flip", source=tiny_data)["accuracy"] == first["accuracy"]
    )
    with pytest.raises(AssertionError, match="despite the cache"):
        main([*args, "--no-cache"])


@pytest.mark.slow
def test_several_checkpoints_give_a_list_and_the_mean(
    ckpt: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two checkpoints: {"models": [2 reports], "mean": ...}, one predictions file each."""
    other = make_tiny_checkpoint(tmp_path / "r34" / "best.pt", arch="resnet34", seed=1)
    out = tmp_path / "r.json"
    code = main(
        [
            "evaluate",
            "--checkpoint",
            str(ckpt),
            "--checkpoint",
            str(other),
            "--data",
            str(tiny_data),
            "--json",
            str(out),
            "--predictions",
            str(tmp_path / "p.csv"),
        ]
    )
    assert code == 0
    payload = json.loads(out.read_text())
    assert [m["model"]["arch"] for m in payload["models"]] == ["resnet18", "resnet34"]
    assert payload["mean"]["n_models"] == 2
    assert (tmp_path / "p.1-resnet18.csv").exists() and (tmp_path / "p.2-resnet34.csv").exists()
    assert "mean of 2" in capsys.readouterr().out


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_missing_and_foreign_checkpoints(
    ckpt: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing file, a non-checkpoint and a checkpoint for other classes exit 2 clearly."""
    base = ["evaluate", "--data", str(tiny_data), "--checkpoint"]
    assert "no checkpoint at" in _fails([*base, str(tmp_path / "nope.pt")], capsys)
    junk = tmp_path / "junk.pt"
    for garbage in (b"not a checkpoint", b"junk"):  # two different torch.load failures
        junk.write_bytes(garbage)
        assert str(junk) in _fails([*base, str(junk)], capsys)
    five = make_tiny_checkpoint(tmp_path / "five.pt", classes=CLASSES[:5])
    assert "7-class FER-2013" in _fails([*base, str(five)], capsys)


def test_bad_data_split_and_output_paths(
    ckpt: Path,
    tiny_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No test split, an unknown --split, and outputs in missing folders exit 2; the output
    folders are checked before the data is loaded."""
    from fer_tui import evaluate as ev

    train_only = make_folder_dataset(tmp_path / "train-only", per_class={"train": 2})
    err = _fails(["evaluate", "--checkpoint", str(ckpt), "--data", str(train_only)], capsys)
    assert "no 'test' split" in err
    args = ["evaluate", "--checkpoint", str(ckpt), "--data", str(tiny_data)]
    assert "unknown split 'validation'" in _fails([*args, "--split", "validation"], capsys)

    def no_data(*a: object, **k: object) -> None:
        raise AssertionError("the data was loaded before the output paths were checked")

    monkeypatch.setattr(ev, "load_data", no_data)
    missing = tmp_path / "no" / "such" / "dir"
    err = _fails([*args, "--predictions", str(missing / "p.csv")], capsys)
    assert "--predictions" in err and "does not exist" in err
    assert "--json" in _fails([*args, "--json", str(missing / "r.json")], capsys)


def test_progress_bar_shows_rate_and_eta_on_a_terminal() -> None:
    """On a tty the prediction progress is one redrawn line with img/s and an ETA."""
    import io
    import time

    from fer_tui.commands.evaluate import ProgressBar

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    bar = ProgressBar(stream)
    bar("data", 0, 0)
    bar("predict best.pt", 0, 100)
    time.sleep(0.02)
    bar("predict best.pt", 100, 100)
    bar.finish()
    out = stream.getvalue()
    assert out.startswith("loading the data...\n")
    assert "predict best.pt [" in out and "100/100" in out
    assert "img/s" in out and "ETA" in out and out.endswith("\n")


@pytest.mark.slow
def test_onnxruntime_engine_matches_torch(
    ckpt: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--engine onnxruntime gives torch's predictions (probabilities within 1e-4) and says so;
    it is refused for a GPU device before anything runs."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    base = ["evaluate", "--checkpoint", str(ckpt), "--data", str(tiny_data), "--tta", "flip"]
    assert main([*base, "--predictions", str(tmp_path / "t.csv")]) == 0
    assert (
        main(
            [
                *base,
                "--engine",
                "onnxruntime",
                "--json",
                str(tmp_path / "o.json"),
                "--predictions",
                str(tmp_path / "o.csv"),
            ]
        )
        == 0
    )
    assert "(engine: onnxruntime)" in capsys.readouterr().out
    assert json.loads((tmp_path / "o.json").read_text())["engine"] == "onnxruntime"

    def probs(path: Path) -> np.ndarray:
        with open(path, newline="") as f:
            return np.array([[float(r[f"p_{c}"]) for c in CLASSES] for r in csv.DictReader(f)])

    assert np.abs(probs(tmp_path / "t.csv") - probs(tmp_path / "o.csv")).max() < 1e-4
    err = _fails([*base, "--engine", "onnxruntime", "--device", "cuda"], capsys)
    assert "runs on the CPU" in err


def test_json_to_stdout_keeps_stdout_parseable(
    ckpt: Path, tiny_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--json -` prints only the JSON on stdout (the tables go to stderr), for pipes."""
    assert (
        main(["evaluate", "--checkpoint", str(ckpt), "--data", str(tiny_data), "--json", "-"]) == 0
    )
    captured = capsys.readouterr()
    assert json.loads(captured.out)["model"]["arch"] == "resnet18"
    assert "Table 1" in captured.err
