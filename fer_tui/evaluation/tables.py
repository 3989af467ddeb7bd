"""Table 1 and Table 2 as rows of numbers, each beside the paper's figure and the difference."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fer_tui.evaluation.ensemble import ENSEMBLE
from fer_tui.evaluation.metrics import AUC_IN_TABLE, METRICS, mean_report
from fer_tui.evaluation.paper import delta, paper_reference, paper_row


def model_label(report: dict[str, Any]) -> str:
    """The arch and the last two path parts: `resnet18 20260101-120000-resnet18/best.pt`;
    `ensemble of 3` for an ensemble."""
    model = report.get("model", {})
    if model.get("arch") == ENSEMBLE:
        return f"{ENSEMBLE} of {len(model.get('members', []))}"
    path = Path(str(model.get("checkpoint", "?")))
    where = f"{path.parent.name}/{path.name}" if path.parent.name else path.name
    return f"{model.get('arch', '?')} {where}"


def table1_row(report: dict[str, Any]) -> dict[str, Any]:
    """One model's Table 1 numbers."""
    w = report["weighted_avg"]
    return {
        "precision": w["precision"],
        "recall": w["recall"],
        "f1-score": w["f1-score"],
        "support": w["support"],
        "accuracy": report["accuracy"],
        "auc": report[AUC_IN_TABLE],
        "auc_weighted": report["auc_weighted_ovr"],
    }


TABLE1_COLUMNS: tuple[str, ...] = (
    "precision",
    "recall",
    "f1-score",
    "support",
    "accuracy",
    "auc",
    "auc_weighted",
)
TABLE1_HEADERS: dict[str, str] = {
    "precision": "Precision",
    "recall": "Recall",
    "f1-score": "F1",
    "support": "Support",
    "accuracy": "Accuracy",
    "auc": "AUC (macro)",
    "auc_weighted": "AUC (wtd)",
}


def table1_rows(
    reports: Sequence[dict[str, Any]], ensemble: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Table 1 as rows: each model, then the paper's row for its arch and the delta; then the
    mean when there are several models, and the ensemble when given. Each row has kind
    (model, paper, delta, mean, ensemble), label, and model: the index of its report, None for
    the mean, ENSEMBLE for the ensemble."""
    rows = []
    for i, report in enumerate(reports):
        ours = table1_row(report)
        rows.append({"kind": "model", "label": model_label(report), "model": i, **ours})
        arch = report.get("model", {}).get("arch")
        paper = paper_row(arch)
        if paper is not None:
            p = {c: paper.get(c) for c in TABLE1_COLUMNS}
            rows.append({"kind": "paper", "label": f"  paper {arch}", "model": i, **p})
            d = {c: delta(ours[c], p[c]) for c in TABLE1_COLUMNS if c != "support"}
            rows.append(
                {"kind": "delta", "label": "  Δ vs paper", "model": i, "support": None, **d}
            )
    if len(reports) > 1:
        mean = mean_report(reports)
        rows.append(
            {"kind": "mean", "label": f"mean of {len(reports)}", "model": None, **table1_row(mean)}
        )
    if ensemble is not None:
        rows.append(
            {
                "kind": "ensemble",
                "label": model_label(ensemble),
                "model": ENSEMBLE,
                **table1_row(ensemble),
            }
        )
    return rows


def paper_table1_rows() -> list[dict[str, Any]]:
    """The paper's Table 1 alone, one row per arch (kind paper, model None): what the
    Evaluation screen shows before any checkpoint is evaluated."""
    rows = []
    for arch, paper in paper_reference()["table1"].items():
        row = {c: paper.get(c) for c in TABLE1_COLUMNS}
        rows.append({"kind": "paper", "label": f"paper {arch}", "model": None, **row})
    return rows


def paper_table2_rows() -> list[dict[str, Any]]:
    """The paper's Table 2 alone: per class, the mean over its three models."""
    return [
        {"kind": "paper", "label": name, **ref} for name, ref in paper_reference()["table2"].items()
    ]


def table2_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Table 2 as rows (one per class, then macro and weighted averages), each with the
    paper's per-class figures (`paper_<metric>`, the mean over its three models) and the
    difference (`delta_<metric>`). The paper prints no average rows: theirs are None."""
    paper = paper_reference()["table2"]
    rows = []
    for name, ours in report["classes"].items():
        ref = paper.get(name, {})
        row = {"kind": "class", "label": name, **ours}
        for m in (*METRICS, "auc"):
            row[f"paper_{m}"] = ref.get(m)
            row[f"delta_{m}"] = delta(ours.get(m), ref.get(m))
        rows.append(row)
    for key, label, auc in (
        ("macro_avg", "macro avg", report["auc_macro_ovr"]),
        ("weighted_avg", "weighted avg", report["auc_weighted_ovr"]),
    ):
        row = {"kind": "avg", "label": label, **report[key], "auc": auc}
        for m in (*METRICS, "auc"):
            row[f"paper_{m}"] = None
            row[f"delta_{m}"] = None
        rows.append(row)
    return rows


#: The columns the paper's Table 1 has (no support-weighted AUC).
PAPER_TABLE1_COLUMNS: tuple[str, ...] = tuple(c for c in TABLE1_COLUMNS if c != "auc_weighted")


def paper_comparison(report: dict[str, Any]) -> dict[str, Any]:
    """The paper's figures for a report and ours minus them, as JSON: Table 1 for the
    paper's row of the same arch (None for an ensemble, a mean or another arch) and Table 2
    per class against the paper's mean over its three models."""
    ref = paper_reference()
    arch = report.get("model", {}).get("arch")
    paper = paper_row(arch)
    table1 = None
    if paper is not None:
        ours = table1_row(report)
        table1 = {
            "arch": arch,
            "paper": {c: paper.get(c) for c in PAPER_TABLE1_COLUMNS},
            "delta": {
                c: delta(ours[c], paper.get(c)) for c in PAPER_TABLE1_COLUMNS if c != "support"
            },
        }
    classes = [r for r in table2_rows(report) if r["kind"] == "class"]
    metrics = (*METRICS, "auc")
    return {
        "source": ref.get("source"),
        "auc": f"macro one-vs-rest (ours: {AUC_IN_TABLE})",
        "table1": table1,
        "table2": {
            "note": ref.get("table2_note"),
            "paper": {r["label"]: {m: r[f"paper_{m}"] for m in metrics} for r in classes},
            "delta": {r["label"]: {m: r[f"delta_{m}"] for m in metrics} for r in classes},
        },
    }
