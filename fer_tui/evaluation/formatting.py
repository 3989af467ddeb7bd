"""The tables as text (what `fer-tui evaluate` prints), Markdown and CSV."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Any

from fer_tui.evaluation.metrics import METRICS, mean_report
from fer_tui.evaluation.paper import paper_note
from fer_tui.evaluation.tables import (
    TABLE1_COLUMNS,
    TABLE1_HEADERS,
    model_label,
    table1_rows,
    table2_rows,
)


def fmt(value: Any, digits: int = 3, signed: bool = False) -> str:
    """A table cell: numbers to `digits` places, None as an em dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join(["---", *["---:"] * (len(headers) - 1)]) + "|",
    ]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def _table1_cells(
    reports: Sequence[dict[str, Any]], ensemble: dict[str, Any] | None = None
) -> tuple[list[str], list[list[str]]]:
    headers = ["Model", *(TABLE1_HEADERS[c] for c in TABLE1_COLUMNS)]
    rows = []
    for row in table1_rows(reports, ensemble):
        signed = row["kind"] == "delta"
        rows.append([row["label"], *(fmt(row[c], signed=signed) for c in TABLE1_COLUMNS)])
    return headers, rows


def _table2_cells(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    headers = ["Class", "Support"]
    for m in (*METRICS, "auc"):
        short = {"precision": "P", "recall": "R", "f1-score": "F1", "auc": "AUC"}[m]
        headers += [short, f"paper {short}", f"Δ{short}"]
    rows = []
    for row in table2_rows(report):
        cells = [row["label"], fmt(row["support"])]
        for m in (*METRICS, "auc"):
            cells += [fmt(row[m]), fmt(row[f"paper_{m}"]), fmt(row[f"delta_{m}"], signed=True)]
        rows.append(cells)
    return headers, rows


def _tta_line(reports: Sequence[dict[str, Any]]) -> str:
    ttas = sorted({r.get("tta", "none") for r in reports})
    engines = sorted({r.get("engine", "torch") for r in reports})
    return f"test-time augmentation: {', '.join(ttas)} (engine: {', '.join(engines)})"


def _table1_legend(reports: Sequence[dict[str, Any]], ensemble: dict[str, Any] | None) -> str:
    parts = []
    if len(reports) > 1:
        parts.append(f"mean of {len(reports)}: the mean of the models' figures")
    if ensemble is not None:
        parts.append(
            f"{model_label(ensemble)}: the figures of the mean of the models' softmax probabilities"
        )
    return "; ".join(parts)


def format_table1(reports: Sequence[dict[str, Any]], ensemble: dict[str, Any] | None = None) -> str:
    """Table 1 as a text table with the paper's rows and deltas (and the ensemble's row)."""
    headers, rows = _table1_cells(reports, ensemble)
    title = (
        f"Table 1: weighted-average metrics on {reports[0]['data']['split']} "
        f"({reports[0]['n']} images); AUC = one-vs-rest, macro (in the paper's column) "
        "and support-weighted"
    )
    lines = [title, _tta_line(reports)]
    legend = _table1_legend(reports, ensemble)
    if legend:
        lines.append(legend)
    return "\n".join([*lines, "", _text_table(headers, rows)])


def format_table2(report: dict[str, Any], title: str | None = None) -> str:
    """Table 2 (per class) for one report or a mean_report, with the paper's columns."""
    headers, rows = _table2_cells(report)
    title = title or f"Table 2: per class, {model_label(report)}"
    return "\n".join(
        [
            title + " (paper: the mean of its three models)",
            _tta_line([report])
            if "model" in report
            else f"test-time augmentation: {', '.join(report.get('tta', []))}",
            "",
            _text_table(headers, rows),
        ]
    )


def format_confusion(report: dict[str, Any], normalized: bool = False) -> str:
    """The confusion matrix (rows: true class, columns: predicted) as text."""
    names = list(report["classes"])
    key = "confusion_matrix_normalized" if normalized else "confusion_matrix"
    rows = [
        [name, *(f"{v:.2f}" if normalized else str(v) for v in row)]
        for name, row in zip(names, report[key], strict=True)
    ]
    return _text_table(["true \\ pred", *(n[:7] for n in names)], rows)


def format_report(reports: Sequence[dict[str, Any]], ensemble: dict[str, Any] | None = None) -> str:
    """Everything the CLI prints: Table 1, Table 2 per model (and the mean, and the ensemble
    when given), the note."""
    parts = [format_table1(reports, ensemble)]
    for report in [*reports, *([ensemble] if ensemble is not None else [])]:
        parts.append(format_table2(report))
        parts.append(
            "Confusion matrix (rows: true, columns: predicted)\n" + format_confusion(report)
        )
    if len(reports) > 1:
        parts.append(
            format_table2(
                mean_report(reports), title=f"Table 2: per class, mean of {len(reports)} models"
            )
        )
    parts.append(paper_note())
    return "\n\n".join(parts) + "\n"


def to_markdown(reports: Sequence[dict[str, Any]], ensemble: dict[str, Any] | None = None) -> str:
    """Tables 1 and 2 (and confusion matrices) as a Markdown document."""
    out = [
        "# Evaluation",
        "",
        f"- {_tta_line(reports)}",
        f"- data: {reports[0]['data'].get('source')} (split {reports[0]['data']['split']}, "
        f"{reports[0]['n']} images, fingerprint {reports[0]['data'].get('fingerprint')})",
        "- Table 1 AUC: one-vs-rest, macro average; the weighted average is beside it",
        f"- {paper_note()}",
    ]
    legend = _table1_legend(reports, ensemble)
    if legend:
        out.append(f"- {legend}")
    out += ["", "## Table 1", "", _md_table(*_table1_cells(reports, ensemble))]
    for report in [*reports, *([ensemble] if ensemble is not None else [])]:
        out += [
            "",
            f"## Table 2: {model_label(report)} (TTA {report.get('tta')}; paper: the "
            "mean of its three models)",
            "",
        ]
        out.append(_md_table(*_table2_cells(report)))
        names = list(report["classes"])
        cm = [
            [n, *(str(v) for v in row)]
            for n, row in zip(names, report["confusion_matrix"], strict=True)
        ]
        out += ["", "Confusion matrix (rows: true, columns: predicted)", ""]
        out.append(_md_table(["true \\ pred", *names], cm))
    if len(reports) > 1:
        out += [
            "",
            f"## Table 2: mean of {len(reports)} models (paper: the mean of its three models)",
            "",
        ]
        out.append(_md_table(*_table2_cells(mean_report(reports))))
    return "\n".join(out) + "\n"


def metrics_csv(reports: Sequence[dict[str, Any]], ensemble: dict[str, Any] | None = None) -> str:
    """Tables 1 and 2 in one long CSV: a row per (model, class or average), then the mean
    and the ensemble when there are."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "model",
            "arch",
            "checkpoint",
            "tta",
            "split",
            "row",
            "precision",
            "recall",
            "f1-score",
            "support",
            "auc",
            "accuracy",
        ]
    )
    entries = [(model_label(r), r) for r in reports]
    if len(reports) > 1:
        entries.append((f"mean of {len(reports)}", mean_report(reports)))
    if ensemble is not None:
        entries.append((model_label(ensemble), ensemble))
    for label, r in entries:
        model = r.get("model", {}) if "n_models" not in r else {}
        tta = r.get("tta") if isinstance(r.get("tta"), str) else "+".join(r.get("tta", []))
        base = [
            label,
            model.get("arch", ""),
            model.get("checkpoint") or "",
            tta,
            r.get("data", {}).get("split", ""),
        ]
        for name, row in r["classes"].items():
            w.writerow([*base, name, *(fmt(row[m], 6) for m in (*METRICS, "support", "auc")), ""])
        for key, auc_key in (("macro_avg", "auc_macro_ovr"), ("weighted_avg", "auc_weighted_ovr")):
            row = r[key]
            w.writerow(
                [
                    *base,
                    key.replace("_", " "),
                    *(fmt(row[m], 6) for m in METRICS),
                    fmt(row["support"]),
                    fmt(r[auc_key], 6),
                    fmt(r["accuracy"], 6),
                ]
            )
    return buf.getvalue()
