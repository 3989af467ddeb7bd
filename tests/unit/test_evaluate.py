"""Metric code against hand-computed values, the report/JSON shapes, the paper reference."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_tui.data.index import CLASSES
from fer_tui.evaluation.ensemble import ENSEMBLE, ensemble_evaluation
from fer_tui.evaluation.formatting import format_report, metrics_csv, to_markdown
from fer_tui.evaluation.metrics import AUC_IN_TABLE, compute_metrics, mean_report
from fer_tui.evaluation.outputs import json_payload
from fer_tui.evaluation.paper import paper_reference
from fer_tui.evaluation.runner import Evaluation
from fer_tui.evaluation.tables import model_label, table1_rows, table2_rows

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
    return compute_metrics(Y_TRUE, _probs(Y_PRED))


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
    m = compute_metrics(y, p)
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
    roc = compute_metrics(y, p, roc_points=50)["roc"]["happy"]
    assert len(roc["fpr"]) <= 50
    assert (roc["fpr"][0], roc["tpr"][0]) == (0.0, 0.0)
    assert (roc["fpr"][-1], roc["tpr"][-1]) == (1.0, 1.0)


def test_bad_shapes_are_clear_errors() -> None:
    """Probabilities that do not fit the labels raise a FerError, not an IndexError."""
    from fer_tui.errors import FerError

    with pytest.raises(FerError, match="do not fit"):
        compute_metrics([0, 1], np.zeros((3, 7)))
    with pytest.raises(FerError, match="no images"):
        compute_metrics([], np.zeros((0, 7)))


def _report(metrics: dict, arch: str = "resnet18", path: str = "runs/r1/best.pt") -> dict:
    return {
        "model": {"arch": arch, "checkpoint": path},
        "tta": "none",
        "data": {"split": "test", "source": "/d", "fingerprint": "f"},
        **metrics,
    }


def test_mean_report_averages_per_class_and_skips_null(metrics: dict) -> None:
    """Table 2's mean over models is the per-class mean; undefined AUCs stay null."""
    other = compute_metrics(Y_TRUE, _probs(Y_TRUE))  # a perfect model
    mean = mean_report([_report(metrics), _report(other, "resnet34")])
    assert mean["n_models"] == 2
    assert mean["classes"]["happy"]["recall"] == pytest.approx((0.5 + 1.0) / 2)
    assert mean["classes"]["happy"]["support"] == 4
    assert mean["classes"]["fear"]["auc"] is None
    assert mean["accuracy"] == pytest.approx((0.7 + 1.0) / 2)
    assert mean["weighted_avg"]["support"] == 10


def test_json_payload_shape(metrics: dict) -> None:
    """One model: the report keys plus the paper beside it; several: {"models": [...],
    "mean": {...}}, and "ensemble" only when there is one."""
    one = json_payload([_report(metrics)])
    for key in (
        "model",
        "accuracy",
        "weighted_avg",
        "macro_avg",
        "auc_macro_ovr",
        "auc_weighted_ovr",
        "classes",
        "confusion_matrix",
        "vs_paper",
    ):
        assert key in one
    assert set(one["weighted_avg"]) == {"precision", "recall", "f1-score", "support"}
    assert set(one["classes"]) == set(CLASSES)
    assert set(one["classes"]["angry"]) == {"precision", "recall", "f1-score", "support", "auc"}
    json.dumps(one, allow_nan=False)  # strict JSON: no NaN anywhere
    several = json_payload([_report(metrics), _report(metrics, "resnet50")])
    assert set(several) == {"models", "mean"}
    assert len(several["models"]) == 2 and set(several["mean"]["classes"]) == set(CLASSES)
    ensemble = _report(metrics)
    ensemble["model"] = {"arch": ENSEMBLE, "checkpoint": None, "members": [{}, {}]}
    with_ens = json_payload([_report(metrics), _report(metrics, "resnet50")], ensemble)
    assert set(with_ens) == {"models", "mean", "ensemble"}
    assert with_ens["ensemble"]["model"]["arch"] == "ensemble"
    json.dumps(with_ens, allow_nan=False)


def test_json_carries_the_papers_figures_and_our_deltas(metrics: dict) -> None:
    """--json puts the paper's Table 1 row for the same arch (AUC against our macro one) and
    its Table 2 beside each report, with ours minus the paper's."""
    vs = json_payload([_report(metrics)])["vs_paper"]
    t1 = vs["table1"]
    assert t1["arch"] == "resnet18"
    assert t1["paper"]["accuracy"] == 0.650 and t1["paper"]["auc"] == 0.898
    assert t1["delta"]["accuracy"] == pytest.approx(0.7 - 0.650)
    assert t1["delta"]["auc"] == pytest.approx(metrics["auc_macro_ovr"] - 0.898)
    assert t1["delta"]["precision"] == pytest.approx(metrics["weighted_avg"]["precision"] - 0.648)
    assert vs["table2"]["paper"]["happy"]["recall"] == 0.857
    assert vs["table2"]["delta"]["happy"]["recall"] == pytest.approx(0.5 - 0.857)
    assert vs["table2"]["delta"]["fear"]["auc"] is None  # fear is absent: no AUC of ours
    assert "4.2" in vs["source"]
    several = json_payload([_report(metrics), _report(metrics, "resnet50")])
    assert several["models"][1]["vs_paper"]["table1"]["paper"]["precision"] == 0.664
    assert several["mean"]["vs_paper"]["table1"] is None  # the paper has no mean row
    assert several["mean"]["vs_paper"]["table2"]["paper"]["disgust"]["precision"] == 0.727


def test_paper_reference_holds_the_printed_tables() -> None:
    """paper.json is verified and holds section 4.2's Table 1 and Table 2 as printed: every
    cell filled, supports are FER-2013's test counts, and no trace of the placeholder."""
    ref = paper_reference()
    assert ref["verified"] is True
    assert "section 4.2" in ref["source"]
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
    assert all(v is not None for r in ref["table1"].values() for v in r.values())
    assert all(v is not None for r in ref["table2"].values() for v in r.values())
    # spot checks against the printed tables
    assert ref["table1"]["resnet18"] == {
        "precision": 0.648,
        "recall": 0.650,
        "f1-score": 0.646,
        "support": 7178,
        "accuracy": 0.650,
        "auc": 0.898,
    }
    assert ref["table1"]["resnet50"]["precision"] == 0.664
    assert ref["table2"]["sad"] == {
        "precision": 0.516,
        "recall": 0.507,
        "f1-score": 0.511,
        "support": 1247,
        "auc": 0.832,
    }
    text = json.dumps(ref)
    assert "accuracy_range_from_brief" not in text and "could not be verified" not in text


def test_papers_auc_is_the_macro_average() -> None:
    """The paper's Table 1 AUC is the macro one-vs-rest AUC: the mean of Table 2's seven AUCs
    (a mean over the three models) equals the mean of Table 1's three AUCs, and Table 1
    compares it with our macro AUC, not the support-weighted one."""
    ref = paper_reference()
    assert ref["auc_average"] == "macro" and AUC_IN_TABLE == "auc_macro_ovr"
    macro_of_table2 = np.mean([r["auc"] for r in ref["table2"].values()])
    mean_of_table1 = np.mean([r["auc"] for r in ref["table1"].values()])
    assert macro_of_table2 == pytest.approx(mean_of_table1, abs=1e-3)
    weighted = np.average(
        [r["auc"] for r in ref["table2"].values()],
        weights=[r["support"] for r in ref["table2"].values()],
    )
    assert abs(weighted - mean_of_table1) > 3e-3  # the weighted average does not fit


def test_table_rows_put_paper_and_delta_beside_ours(metrics: dict) -> None:
    """Table 1 has the paper's row for the same arch and ours minus the paper's, the AUC
    against our macro one; Table 2 has the paper's per-class figures and the deltas."""
    rows = table1_rows([_report(metrics), _report(metrics, "resnet34")])
    kinds = [r["kind"] for r in rows]
    assert kinds == ["model", "paper", "delta", "model", "paper", "delta", "mean"]
    assert rows[1]["label"].strip() == "paper resnet18"
    assert rows[1]["accuracy"] == 0.650
    assert rows[2]["accuracy"] == pytest.approx(0.7 - 0.650)
    assert rows[2]["auc"] == pytest.approx(metrics["auc_macro_ovr"] - 0.898)
    assert rows[2]["auc_weighted"] is None  # the paper has no weighted AUC
    assert rows[5]["accuracy"] == pytest.approx(0.7 - 0.651)  # resnet34's row
    happy = next(r for r in table2_rows(_report(metrics)) if r["label"] == "happy")
    assert happy["paper_recall"] == 0.857
    assert happy["delta_recall"] == pytest.approx(0.5 - 0.857)
    text = format_report([_report(metrics)])
    assert "test-time augmentation: none" in text and "paper resnet18" in text
    assert "-0.357" in text  # happy recall's delta
    assert "+0.050" in text  # accuracy's delta in Table 1
    assert "mean of its three models" in text
    paper_line = next(line for line in text.splitlines() if "paper resnet18" in line)
    # the paper's figures, and a dash only for the weighted AUC, which it does not give
    assert paper_line.split()[2:] == ["0.648", "0.650", "0.646", "7178", "0.650", "0.898", "—"]


def _evaluation(pred_probs: np.ndarray, arch: str) -> Evaluation:
    report = {
        "model": {"arch": arch, "checkpoint": f"{arch}.pt"},
        "data": {"split": "test", "source": "/d", "fingerprint": "f", "n": len(Y_TRUE)},
        "tta": "none",
        "engine": "torch",
        "seconds": 1.0,
        **compute_metrics(Y_TRUE, pred_probs),
    }
    names = [f"test/{i}.png" for i in range(len(Y_TRUE))]
    return Evaluation(report, pred_probs.astype(np.float32), np.array(Y_TRUE), names)


def test_ensemble_averages_probabilities_not_votes() -> None:
    """The ensemble's prediction is the argmax of the mean probabilities: on face 0 one sure,
    right model outweighs two that lean wrong (a majority vote would say happy)."""
    rng = np.random.default_rng(0)
    members = [rng.dirichlet(np.ones(7), size=len(Y_TRUE)) for _ in range(3)]
    members[0][0] = np.eye(7)[A]  # face 0 is angry: sure and right
    for m in members[1:]:
        m[0] = np.full(7, 0.07)
        m[0][H], m[0][A] = 0.35, 0.30  # unsure and wrong
    archs = ("resnet18", "resnet34", "resnet50")
    results = [_evaluation(p, a) for p, a in zip(members, archs, strict=True)]
    ens = ensemble_evaluation(results)
    mean = np.mean(members, axis=0)
    assert [p[0].argmax() for p in members] == [A, H, H]
    assert ens.probs.argmax(1)[0] == A
    assert ens.report["accuracy"] == pytest.approx((mean.argmax(1) == Y_TRUE).mean())
    assert ens.report["model"]["arch"] == "ensemble"
    assert [m["arch"] for m in ens.report["model"]["members"]] == [
        "resnet18",
        "resnet34",
        "resnet50",
    ]
    assert model_label(ens.report) == "ensemble of 3"
    rows = table1_rows([r.report for r in results], ens.report)
    assert rows[-1]["kind"] == "ensemble" and rows[-1]["model"] == ENSEMBLE
    assert rows[-1]["accuracy"] == ens.report["accuracy"]
    assert [r["kind"] for r in rows].count("paper") == 3  # the paper has no ensemble row


def test_ensemble_needs_two_models_on_the_same_images() -> None:
    """One model, or models evaluated on different images, is an error, not a wrong mean."""
    from fer_tui.errors import FerError

    one = _evaluation(_probs(Y_PRED), "resnet18")
    with pytest.raises(FerError, match="at least two"):
        ensemble_evaluation([one])
    other = _evaluation(_probs(Y_PRED), "resnet34")
    other.labels = other.labels[::-1].copy()
    with pytest.raises(FerError, match="different images"):
        ensemble_evaluation([one, other])


def test_markdown_and_metrics_csv(metrics: dict) -> None:
    """Markdown holds both tables, the paper's figures and the TTA; the CSV has a row per
    class and average."""
    md = to_markdown([_report(metrics), _report(metrics, "resnet50")])
    assert "## Table 1" in md and "## Table 2: mean of 2 models" in md
    assert "test-time augmentation: none" in md and "paper resnet50" in md
    paper50 = next(line for line in md.splitlines() if "paper resnet50" in line)
    assert "| 0.664 | 0.654 | 0.658 | 7178 | 0.654 | 0.885 |" in paper50
    happy = next(line for line in md.splitlines() if line.startswith("| happy |"))
    assert "0.857" in happy and "-0.357" in happy
    lines = metrics_csv([_report(metrics)]).splitlines()
    assert lines[0].startswith("model,arch,checkpoint,tta,split,row,precision")
    assert len(lines) == 1 + 7 + 2
    assert any(",happy,0.666667,0.500000," in line for line in lines)
