"""`fer-tui evaluate` end to end on the tiny synthetic dataset with a checkpoint trained here."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from fer_tui.cli import build_parser, main
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

    paper_line = next(line for line in printed.out.splitlines() if "paper resnet18" in line)
    assert paper_line.split()[2:8] == ["0.648", "0.650", "0.646", "7178", "0.650", "0.898"]

    report = json.loads(out.read_text())
    assert report["model"]["arch"] == "resnet18" and report["tta"] == "none"
    assert report["data"]["split"] == "test" and report["n"] == 7 * 4
    assert set(report["classes"]) == set(CLASSES)
    vs = report["vs_paper"]["table1"]
    assert vs["paper"]["auc"] == 0.898
    assert vs["delta"]["auc"] == pytest.approx(report["auc_macro_ovr"] - 0.898)
    assert vs["delta"]["accuracy"] == pytest.approx(report["accuracy"] - 0.650)
    markdown = md.read_text()
    assert "Table 1" in markdown and "TTA none" in markdown
    assert "| 0.648 | 0.650 | 0.646 | 7178 | 0.650 | 0.898 |" in markdown

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
    from fer_tui.evaluation import runner
    from fer_tui.evaluation.cache import find_cached_report

    args = ["evaluate", "--checkpoint", str(ckpt), "--data", str(tiny_data), "--tta", "flip"]
    assert main([*args, "--json", str(tmp_path / "a.json")]) == 0
    first = json.loads((tmp_path / "a.json").read_text())
    assert first["tta"] == "flip"

    def no_predict(*a: object, **k: object) -> None:
        raise AssertionError("predicted again despite the cache")

    monkeypatch.setattr(runner, "_predict", no_predict)
    capsys.readouterr()
    assert main([*args, "--json", str(tmp_path / "b.json")]) == 0
    assert "(cached)" in capsys.readouterr().err
    assert json.loads((tmp_path / "b.json").read_text()) == first
    assert find_cached_report(ckpt, tta="flip", source=tiny_data)["accuracy"] == first["accuracy"]
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


def _odd_checkpoint(path: Path, seed: int = 2) -> Path:
    """A resnet18 that preprocesses unlike make_tiny_checkpoint's: 3 input channels, faces
    resized to 40x40, and the compact stem (random weights)."""
    import torch

    from fer_tui.models import build_model, model_meta, save_checkpoint

    torch.manual_seed(seed)
    model = build_model("resnet18", stem="compact", in_channels=3)
    meta = model_meta("resnet18", stem="compact", in_channels=3, image_size=40)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, model.eval(), meta)
    return path


def _mean_probability_accuracy(checkpoints: list[Path], data: Path) -> float:
    """The ensemble's accuracy worked out here, apart from fer_tui.evaluation: each model on the
    test faces with its own preprocessing, the probabilities averaged, then the argmax."""
    from fer_tui.data.load import load_dataset
    from fer_tui.models import load_checkpoint, predict_proba

    test = load_dataset(data).splits["test"]
    probs = []
    for path in checkpoints:
        model, meta = load_checkpoint(path)
        probs.append(predict_proba(model, meta, test.images))
    pred = np.mean(probs, axis=0).argmax(1)
    return float((pred == np.asarray(test.labels)).mean())


@pytest.mark.slow
def test_ensemble_row_is_the_mean_probability_argmax(
    ckpt: Path,
    tiny_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--ensemble over three checkpoints that preprocess differently adds an "ensemble of 3"
    row to Table 1, its Table 2, an "ensemble" report in --json and a Markdown section; its
    accuracy is that of the argmax of the mean probabilities, and each model is predicted
    once."""
    from fer_tui.evaluation import runner

    checkpoints = [
        ckpt,
        make_tiny_checkpoint(tmp_path / "r34" / "best.pt", arch="resnet34", seed=1),
        _odd_checkpoint(tmp_path / "odd" / "best.pt"),
    ]
    predicted = []
    real_predict = runner._predict

    def counting_predict(path: Path, *a: object, **k: object) -> object:
        predicted.append(Path(path).parent.name)
        return real_predict(path, *a, **k)

    monkeypatch.setattr(runner, "_predict", counting_predict)
    out, md, preds = tmp_path / "r.json", tmp_path / "r.md", tmp_path / "p.csv"
    argv = ["evaluate", "--data", str(tiny_data), "--ensemble", "--json", str(out)]
    for path in checkpoints:
        argv += ["--checkpoint", str(path)]
    assert main([*argv, "--markdown", str(md), "--predictions", str(preds)]) == 0
    assert len(predicted) == 3  # the ensemble reuses the three predictions

    expected = _mean_probability_accuracy(checkpoints, tiny_data)
    payload = json.loads(out.read_text())
    ensemble = payload["ensemble"]
    assert ensemble["accuracy"] == pytest.approx(expected)
    assert ensemble["model"]["arch"] == "ensemble"
    assert [m["arch"] for m in ensemble["model"]["members"]] == [
        "resnet18",
        "resnet34",
        "resnet18",
    ]
    assert set(ensemble["classes"]) == set(CLASSES) and ensemble["n"] == 28
    assert ensemble["vs_paper"]["table1"] is None  # the paper has no ensemble
    assert ensemble["vs_paper"]["table2"]["paper"]["happy"]["recall"] == 0.857

    printed = capsys.readouterr().out
    row = next(line for line in printed.splitlines() if line.startswith("ensemble of 3"))
    assert row.split()[7] == f"{expected:.3f}"  # the Accuracy column
    assert "Table 2: per class, ensemble of 3" in printed
    table1 = printed.split("Table 2")[0]
    assert table1.index("mean of 3") < table1.index("ensemble of 3")
    assert "## Table 2: ensemble of 3" in md.read_text()
    assert "| ensemble of 3 |" in md.read_text()

    with open(tmp_path / "p.4-ensemble.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    pred = [CLASSES.index(r["pred"]) for r in rows]
    true = [CLASSES.index(r["true"]) for r in rows]
    assert np.mean(np.array(pred) == np.array(true)) == pytest.approx(expected)

    # a second run takes all three members from the cache and still has the ensemble
    predicted.clear()
    assert main(argv) == 0
    assert predicted == []
    assert json.loads(out.read_text())["ensemble"]["accuracy"] == pytest.approx(expected)


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
    from fer_tui.evaluation import runner

    train_only = make_folder_dataset(tmp_path / "train-only", per_class={"train": 2})
    err = _fails(["evaluate", "--checkpoint", str(ckpt), "--data", str(train_only)], capsys)
    assert "no 'test' split" in err
    args = ["evaluate", "--checkpoint", str(ckpt), "--data", str(tiny_data)]
    assert "unknown split 'validation'" in _fails([*args, "--split", "validation"], capsys)

    def no_data(*a: object, **k: object) -> None:
        raise AssertionError("the data was loaded before the output paths were checked")

    monkeypatch.setattr(runner, "load_data", no_data)
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
def test_onnxruntime_backend_matches_torch(
    ckpt: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--backend onnxruntime, and auto (the default) on a CPU with onnxruntime installed, give
    torch's predictions (probabilities within 1e-4) and say so; onnxruntime is refused for a
    GPU device before anything runs, also under the flag's older name."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    base = ["evaluate", "--checkpoint", str(ckpt), "--data", str(tiny_data), "--tta", "flip"]
    assert main([*base, "--backend", "torch", "--predictions", str(tmp_path / "t.csv")]) == 0
    assert main([*base, "--device", "cpu", "--json", str(tmp_path / "auto.json")]) == 0
    assert json.loads((tmp_path / "auto.json").read_text())["engine"] == "onnxruntime"
    assert (
        main(
            [
                *base,
                "--backend",
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
    err = _fails([*base, "--backend", "onnxruntime", "--device", "cuda"], capsys)
    assert "runs on the CPU" in err
    err = _fails([*base, "--engine", "onnxruntime", "--device", "cuda"], capsys)
    assert "runs on the CPU" in err


def test_engine_is_a_hidden_name_of_backend(capsys: pytest.CaptureFixture[str]) -> None:
    """`--engine`, the backend flag's older name, still parses into `backend`; --help shows
    only `--backend`, the name `fer-tui live` uses too."""
    parser = build_parser()
    args = parser.parse_args(["evaluate", "--checkpoint", "x.pt", "--engine", "onnxruntime"])
    assert args.backend == "onnxruntime"
    assert parser.parse_args(["evaluate", "--checkpoint", "x.pt"]).backend == "auto"
    with pytest.raises(SystemExit):
        parser.parse_args(["evaluate", "--help"])
    out = capsys.readouterr().out
    assert "--backend" in out and "--engine" not in out


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


def test_ensemble_of_one_checkpoint_is_a_one_line_error(
    ckpt: Path, tiny_data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--ensemble with a single --checkpoint exits 2 with one line naming the fix, before the
    data is loaded."""
    from fer_tui.evaluation import runner

    def no_data(*a: object, **k: object) -> None:
        raise AssertionError("the data was loaded before --ensemble was checked")

    monkeypatch.setattr(runner, "load_data", no_data)
    err = _fails(
        ["evaluate", "--checkpoint", str(ckpt), "--data", str(tiny_data), "--ensemble"], capsys
    )
    assert err.count("\n") == 1
    assert "--ensemble" in err and "add another --checkpoint" in err


def _with_data_config(ckpt: Path, path: Path, val: str | None, fraction: float = 0.1) -> Path:
    """`ckpt` as if its run had validated on `val` ("holdout": a `fraction` of train; "test"),
    or with no config recorded at all (None)."""
    from fer_tui.models import read_checkpoint, save_checkpoint

    raw = read_checkpoint(ckpt)
    meta = {k: v for k, v in raw["meta"].items() if k != "config"}
    if val is not None:
        meta["config"] = {"data": {"val": val, "holdout_fraction": fraction, "limit": None}}
    save_checkpoint(path, raw["model"], meta)
    return path


def test_holdout_split_is_the_part_of_train_the_run_kept_out(
    ckpt: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--split holdout evaluates on exactly the faces the checkpoint's run held out of train
    (cut as the trainer cuts them); a checkpoint that held nothing out, or checkpoints that held
    out different parts, are one-line errors that say to use --split test or one at a time."""
    from fer_tui.config import from_dict
    from fer_tui.training.arrays import prepare_arrays

    quarter = _with_data_config(ckpt, tmp_path / "quarter.pt", "holdout", 0.25)
    preds = tmp_path / "p.csv"
    argv = ["evaluate", "--checkpoint", str(quarter), "--data", str(tiny_data), "--split"]
    assert main([*argv, "holdout", "--json", "-", "--predictions", str(preds)]) == 0
    report = json.loads(capsys.readouterr().out)
    trainer = prepare_arrays(
        from_dict({"data": {"path": str(tiny_data), "val": "holdout", "holdout_fraction": 0.25}})
    )
    assert report["data"]["split"] == "holdout" and report["n"] == len(trainer.val_y) == 7 * 2
    with preds.open() as f:
        rows = list(csv.DictReader(f))
    assert all("train/" in row["path"].replace("\\", "/") for row in rows)
    labels = sorted(CLASSES.index(row["true"]) for row in rows)
    assert labels == sorted(trainer.val_y.tolist())

    test_only = _with_data_config(ckpt, tmp_path / "test.pt", "test")
    err = _fails([*argv[:2], str(test_only), *argv[3:], "holdout"], capsys)
    assert "held nothing out" in err and "--split test" in err
    bare = _with_data_config(ckpt, tmp_path / "bare.pt", None)
    err = _fails([*argv[:2], str(bare), *argv[3:], "holdout"], capsys)
    assert "does not record the config" in err and "--split test" in err
    half = _with_data_config(ckpt, tmp_path / "half.pt", "holdout", 0.5)
    err = _fails([*argv, "holdout", "--checkpoint", str(half)], capsys)
    assert "held out different parts of train" in err and "one at a time" in err
