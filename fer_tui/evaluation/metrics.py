"""Probabilities and labels -> every number of the paper's Tables 1 and 2 for one model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fer_tui.data.index import CLASSES
from fer_tui.errors import DataError, FerError

#: The per-class metrics of Table 2, with sklearn's key names.
METRICS: tuple[str, ...] = ("precision", "recall", "f1-score")
#: Which AUC average Table 1 shows and compares with the paper's: its Table 1 AUC is the mean
#: of the seven per-class one-vs-rest AUCs, the macro average (the other is in every report too).
AUC_IN_TABLE = "auc_macro_ovr"
#: ROC curves are thinned to at most this many points per class (enough for a plot).
ROC_POINTS = 200


def _thin(x: np.ndarray, y: np.ndarray, points: int) -> tuple[list[float], list[float]]:
    if len(x) > points:
        idx = np.unique(np.linspace(0, len(x) - 1, points).round().astype(int))
        x, y = x[idx], y[idx]
    return [float(v) for v in x], [float(v) for v in y]


def compute_metrics(
    y_true: Sequence[int] | np.ndarray,
    probs: np.ndarray,
    *,
    classes: Sequence[str] = CLASSES,
    roc_points: int = ROC_POINTS,
) -> dict[str, Any]:
    """Every number of Tables 1 and 2, the confusion matrix and ROC curves for one model.

    Args:
        y_true: (N,) class indices into `classes`.
        probs: (N, K) class probabilities; the prediction is their argmax.
    """
    from sklearn.metrics import (  # deferred: sklearn takes ~1 s to import
        classification_report,
        confusion_matrix,
        roc_auc_score,
        roc_curve,
    )

    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    k = len(classes)
    if p.ndim != 2 or p.shape[1] != k or len(p) != len(y):
        raise FerError(
            f"probabilities of shape {p.shape} do not fit {len(y)} labels and {k} classes"
        )
    if len(y) == 0:
        raise DataError("nothing to evaluate: the split has no images")
    if y.min() < 0 or y.max() >= k:
        raise DataError(f"labels must lie in 0..{k - 1}")
    pred = p.argmax(1)
    labels = list(range(k))
    rep = classification_report(
        y, pred, labels=labels, target_names=list(classes), output_dict=True, zero_division=0
    )
    cm = confusion_matrix(y, pred, labels=labels)
    support = cm.sum(1)
    norm = np.divide(cm, support[:, None], out=np.zeros(cm.shape), where=support[:, None] > 0)

    per_class: dict[str, dict[str, Any]] = {}
    roc: dict[str, dict[str, list[float]]] = {}
    aucs: list[float | None] = []
    for i, name in enumerate(classes):
        pos = y == i
        auc: float | None = None
        if pos.any() and not pos.all():  # one-vs-rest AUC needs both positives and negatives
            auc = float(roc_auc_score(pos, p[:, i]))
            fpr, tpr, _ = roc_curve(pos, p[:, i])
            f, t = _thin(fpr, tpr, roc_points)
            roc[name] = {"fpr": f, "tpr": t}
        aucs.append(auc)
        row = rep[name]
        per_class[name] = {m: float(row[m]) for m in METRICS}
        per_class[name]["support"] = int(support[i])
        per_class[name]["auc"] = auc

    defined = [i for i, a in enumerate(aucs) if a is not None]
    auc_macro = float(np.mean([aucs[i] for i in defined])) if defined else None
    weights = support[defined].astype(np.float64)
    auc_weighted = (
        float(np.dot([aucs[i] for i in defined], weights) / weights.sum())
        if defined and weights.sum() > 0
        else None
    )

    def avg(key: str) -> dict[str, Any]:
        return {**{m: float(rep[key][m]) for m in METRICS}, "support": int(rep[key]["support"])}

    return {
        "n": len(y),
        "accuracy": float((pred == y).mean()),
        "weighted_avg": avg("weighted avg"),
        "macro_avg": avg("macro avg"),
        "auc_macro_ovr": auc_macro,
        "auc_weighted_ovr": auc_weighted,
        "auc_undefined": [classes[i] for i, a in enumerate(aucs) if a is None],
        "classes": per_class,
        "confusion_matrix": cm.astype(int).tolist(),
        "confusion_matrix_normalized": norm.tolist(),
        "roc": roc,
    }


def _mean(values: list[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def mean_report(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The mean over models of every Table 1 and Table 2 number (Table 2 is such a mean).

    Means skip null cells (an undefined AUC); supports are those of the first report.
    """
    if not reports:
        raise FerError("no reports to average")
    first = reports[0]
    classes = list(first["classes"])

    def avg_block(key: str) -> dict[str, Any]:
        block = {m: _mean([r[key][m] for r in reports]) for m in METRICS}
        block["support"] = first[key]["support"]
        return block

    per_class = {}
    for name in classes:
        row = {m: _mean([r["classes"][name][m] for r in reports]) for m in (*METRICS, "auc")}
        row["support"] = first["classes"][name]["support"]
        per_class[name] = row
    return {
        "models": [r.get("model", {}) for r in reports],
        "n_models": len(reports),
        "tta": sorted({r.get("tta", "none") for r in reports}),
        "data": first.get("data", {}),
        "n": first.get("n"),
        "accuracy": _mean([r["accuracy"] for r in reports]),
        "weighted_avg": avg_block("weighted_avg"),
        "macro_avg": avg_block("macro_avg"),
        "auc_macro_ovr": _mean([r["auc_macro_ovr"] for r in reports]),
        "auc_weighted_ovr": _mean([r["auc_weighted_ovr"] for r in reports]),
        "classes": per_class,
    }
