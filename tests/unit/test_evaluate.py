"""Metric code against hand-computed values, the report/JSON shapes, the paper reference."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_tui import evaluate as ev
from fer_tui.data.index import CLASSES

A, H, S = CLASSES.index("angry"), CLASSES.index("happy"), CLASSES.index("surprise")
#: 10 faces of three classes (four classes never occur): true labels and predictions
Y_TRUE = [A, A, A, A, H, H, H, H, S, S]
Y_PRED = [A, A, A, H, H, H, A, S, S, S]


def _probs(pred: list[int]) -> np.ndarray:
    """0.6 on the predicted class, the rest spread evenly: rows sum to 1."""
    p = np.full((len(pred), len(CLASSES)), 0.4 / 6)
    p[np.arange(len(pred)), pred] = 0.6
    return p


@pytest.fixture(scope="module")
def metrics() -> dict:
    return ev.compute_metrics(Y_TRUE, _probs(Y_PRED))


def test_per_class_metrics_match_hand_computed(metrics: dict) -> None:
    """Precision/recall/F1/support per class are the textbook values for a known confusion."""
    c = metrics["classes"]
    assert c["angry"]["precision"] == pytest.approx(3 / 4)
    assert c["angry"]["recall"] == pytest.approx(3 / 4)
    assert c["happy"]["precision"] == pytest.approx(2 / 3)
    assert c["happy"]["recall"] == pytest.approx(2 / 4)
    assert c["happy"]["f1-score"] == pytest.approx(4 / 7)
    assert c["surprise"]["f1-score"] == pytest.approx(4 / 5)
    assert [c[n]["support"] for n in CLASSES] == [4, 0, 0, 4, 0, 0, 2]
    assert c["fear"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1-score": 0.0,
        "support": 0,
        "auc": None,
    }


def test_table1_averages_match_hand_computed(metrics: dict) -> None:
    """Table 1 is sklearn's weighted average; macro averages run over all seven classes."""
    assert metrics["accuracy"] == pytest.approx(0.7)
    w = metrics["weighted_avg"]
    assert w["precision"] == pytest.approx((4 * 3 / 4 + 4 * 2 / 3 + 2 * 2 / 3) / 10)
    assert w["recall"] == pytest.approx(0.7)
    assert w["f1-score"] == pytest.approx((4 * 3 / 4 + 4 * 4 / 7 + 2 * 4 / 5) / 10)
    assert w["support"] == 10
    assert metrics["macro_avg"]["precision"] == pytest.approx((3 / 4 + 2 / 3 + 2 / 3) / 7)


def test_confusion_matrix_counts_and_rows(metrics: dict) -> None:
    """Rows are true classes, columns predictions; the normalised rows sum to 1 (or 0)."""
    cm = np.array(metrics["confusion_matrix"])
    assert cm[A, A] == 3 and cm[A, H] == 1
    assert cm[H, H] == 2 and cm[H, A] == 1 and cm[H, S] == 1
    assert cm[S, S] == 2 and cm.sum() == 10
    norm = np.array(metrics["confusion_matrix_normalized"])
    assert norm[A].tolist() == pytest.approx([0.75, 0, 0, 0.25, 0, 0, 0])
    assert norm.sum(1).tolist() == pytest.approx([1, 0, 0, 1, 0, 0, 1])


def test_auc_hand_computed_and_absent_classes_null(metrics: dict) -> None:
    """One-vs-rest AUC per class (ties count half); absent classes have no AUC, no crash."""
    c = metrics["classes"]
    assert c["angry"]["auc"] == pytest.approx(19 / 24)
    assert c["happy"]["auc"] == pytest.approx(16 / 24)
    assert c["surprise"]["auc"] == pytest.approx(15 / 16)
    assert metrics["auc_undefined"] == ["disgust", "fear", "neutral", "sad"]
    assert metrics["auc_macro_ovr"] == pytest.approx((19 / 24 + 16 / 24 + 15 / 16) / 3)
    assert metrics["auc_weighted_ovr"] == pytest.approx(
        (4 * 19 / 24 + 4 * 16 / 24 + 2 * 15 / 16) / 10
    )
    assert set(metrics["roc"]) == {"angry", "happy", "surprise"}
    assert metrics["roc"]["angry"]["fpr"][0] == 0 and metrics["roc"]["angry"]["tpr"][-1] == 1


def test_auc_equals_sklearn_ovr_when_all_classes_present() -> None:
    """With every class present, both AUC averages are sklearn's roc_auc_score(ovr)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = np.concatenate([np.arange(7), rng.integers(0, 7, 300)])
    logits = rng.normal(size=(len(y), 7)) + 1.5 * np.eye(7)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    m = ev.compute_metrics(y, p)
    assert m["auc_macro_ovr"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr"))
    assert m["auc_weighted_ovr"] == pytest.approx(
        roc_auc_score(y, p, multi_class="ovr", average="weighted")
    )
    assert m["auc_undefined"] == []


def test_roc_curves_are_thinned_for_plots() -> None:
    """Long ROC curves are cut to at most ROC_POINTS points, keeping both ends."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 7, 5000)
    p = rng.dirichlet(np.ones(7), size=len(y))
    roc = ev.compute_metrics(y, p, roc_points=50)["roc"]["happy"]
    assert len(roc["fpr"]) <= 50
    assert (roc["fpr"][0], roc["tpr"][0]) == (0.0, 0.0)
    assert (roc["fpr"][-1], roc["tpr"][-1]) == (1.0, 1.0)


def test_bad_shapes_are_clear_errors() -> None:
    """Probabilities that do not fit the labels raise a FerError, not an IndexError."""
    from fer_tui.errors import FerError

    with pytest.raises(FerError, match="do not fit"):
        ev.compute_metrics([0, 1], np.zeros((3, 7)))
    with pytest.raises(FerError, match="no images"):
        ev.compute_metrics([], np.zeros((0, 7)))


def _report(metrics: dict, arch: str = "resnet18", path: str = "runs/r1/best.pt") -> dict:
    return {
        "model": {"arch": arch, "checkpoint": path},
        "tta": "none",
        "data": {"split": "test", "source": "/d", "fingerprint": "f"},
        **metrics,
    }


def test_mean_report_averages_per_class_and_skips_null(metrics: dict) -> None:
    """Table 2's mean over models is the per-class mean; undefined AUCs stay null."""
    other = ev.compute_metrics(Y_TRUE, _probs(Y_TRUE))  # a perfect model
    mean = ev.mean_report([_report(metrics), _report(other, "resnet34")])
    assert mean["n_models"] == 2
    assert mean["classes"]["happy"]["recall"] == pytest.approx((0.5 + 1.0) / 2)
    assert mean["classes"]["happy"]["support"] == 4
    assert mean["classes"]["fear"]["auc"] is None
    assert mean["accuracy"] == pytest.approx((0.7 + 1.0) / 2)
    assert mean["weighted_avg"]["support"] == 10


def test_json_payload_shape(metrics: dict) -> None:
    """One model: the issue's report keys; several: {"models": [...], "mean": {...}}."""
    one = ev.json_payload([_report(metrics)])
    for key in (
        "model",
        "accuracy",
        "weighted_avg",
        "macro_avg",
        "auc_macro_ovr",
        "auc_weighted_ovr",
        "classes",
        "confusion_matrix",
    ):
        assert key in one
    assert set(one["weighted_avg"]) == {"precision", "recall", "f1-score", "support"}
    assert set(one["classes"]) == set(CLASSES)
    assert set(one["classes"]["angry"]) == {"precision", "recall", "f1-score", "support", "auc"}
    json.dumps(one, allow_nan=False)  # strict JSON: no NaN anywhere
    several = ev.json_payload([_report(metrics), _report(metrics, "resnet50")])
    assert set(several) == {"models", "mean"}
    assert len(several["models"]) == 2 and set(several["mean"]["classes"]) == set(CLASSES)


def test_paper_reference_is_complete_and_not_invented() -> None:
    """paper.json covers the three archs and seven classes; supports are FER-2013's test
    counts; figures that could not be verified are null and say so."""
    ref = ev.paper_reference()
    assert set(ref["table1"]) == {"resnet18", "resnet34", "resnet50"}
    assert list(ref["table2"]) == list(CLASSES)
    counts = {
        "angry": 958,
        "disgust": 111,
        "fear": 1024,
        "happy": 1774,
        "neutral": 1233,
        "sad": 1247,
        "surprise": 831,
    }
    assert {c: r["support"] for c, r in ref["table2"].items()} == counts
    assert all(r["support"] == 7178 for r in ref["table1"].values())
    if not ref["verified"]:
        assert "could not be verified" in ref["note"]
        assert all(r[m] is None for r in ref["table2"].values() for m in ev.METRICS)


def test_table_rows_put_paper_and_delta_beside_ours(metrics: dict, monkeypatch) -> None:
    """Table 1 has the paper's row for the same arch and ours minus the paper's."""
    ref = json.loads(json.dumps(ev.paper_reference()))
    ref["table1"]["resnet18"]["accuracy"] = 0.654
    ref["table2"]["happy"]["recall"] = 0.8
    monkeypatch.setattr(ev, "paper_reference", lambda: ref)
    rows = ev.table1_rows([_report(metrics), _report(metrics, "resnet34")])
    kinds = [r["kind"] for r in rows]
    assert kinds == ["model", "paper", "delta", "model", "paper", "delta", "mean"]
    assert rows[1]["label"].strip() == "paper resnet18"
    assert rows[2]["accuracy"] == pytest.approx(0.7 - 0.654)
    assert rows[5]["accuracy"] is None  # resnet34's paper figure is unknown
    happy = next(r for r in ev.table2_rows(_report(metrics)) if r["label"] == "happy")
    assert happy["paper_recall"] == 0.8 and happy["delta_recall"] == pytest.approx(0.5 - 0.8)
    text = ev.format_report([_report(metrics)])
    assert "test-time augmentation: none" in text and "paper resnet18" in text
    assert "-0.300" in text  # happy recall's delta


def test_markdown_and_metrics_csv(metrics: dict) -> None:
    """Markdown holds both tables and the TTA; the CSV has a row per class and average."""
    md = ev.to_markdown([_report(metrics), _report(metrics, "resnet50")])
    assert "## Table 1" in md and "## Table 2: mean of 2 models" in md
    assert "test-time augmentation: none" in md and "paper resnet50" in md
    lines = ev.metrics_csv([_report(metrics)]).splitlines()
    assert lines[0].startswith("model,arch,checkpoint,tta,split,row,precision")
    assert len(lines) == 1 + 7 + 2
    assert any(",happy,0.666667,0.500000," in line for line in lines)
