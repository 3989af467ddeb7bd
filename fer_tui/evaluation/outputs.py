"""The files `fer-tui evaluate` writes: the JSON report, the predictions CSV."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fer_tui.errors import FerError
from fer_tui.evaluation.metrics import mean_report
from fer_tui.evaluation.runner import Evaluation
from fer_tui.evaluation.tables import paper_comparison
from fer_tui.files import atomic_write_text, sweep_temp_files


def json_payload(
    reports: Sequence[dict[str, Any]], ensemble: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What `--json` writes: the report itself for one model; for several,
    `{"models": [report, ...], "mean": mean_report(reports)}`, plus `"ensemble": report` when
    given. Every report in it carries `"vs_paper"`: the paper's figures and ours minus them."""

    def with_paper(report: dict[str, Any]) -> dict[str, Any]:
        return {**report, "vs_paper": paper_comparison(report)}

    if len(reports) == 1 and ensemble is None:
        return with_paper(reports[0])
    payload = {"models": [with_paper(r) for r in reports], "mean": with_paper(mean_report(reports))}
    if ensemble is not None:
        payload["ensemble"] = with_paper(ensemble)
    return payload


def check_output_path(
    path: str | os.PathLike[str] | None, what: str, *, exact: bool = True
) -> None:
    """An output file's folder must exist (checked before the slow part). The temp files that
    killed writers left there are removed: of this file only, unless not `exact` (the
    predictions of several models get numbered names)."""
    if path is None or str(path) == "-":
        return
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise FerError(f"{what}: the folder {parent} does not exist; create it or write elsewhere")
    if Path(path).is_dir():
        raise FerError(f"{what}: {path} is a folder; give a file name")
    sweep_temp_files(parent, [Path(path).name] if exact else None)


def write_predictions(path: str | os.PathLike[str], evaluation: Evaluation) -> None:
    """One CSV row per image: index, path, true and predicted label, the seven probabilities,
    and the TTA that produced them."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = list(evaluation.report["classes"])
    tta = evaluation.report.get("tta", "none")
    w.writerow(["index", "path", "true", "pred", *(f"p_{n}" for n in names), "tta"])
    pred = evaluation.probs.argmax(1)
    for i, (y, p) in enumerate(zip(evaluation.labels, pred, strict=True)):
        w.writerow(
            [
                i,
                evaluation.names[i],
                names[int(y)],
                names[int(p)],
                *(f"{v:.7g}" for v in evaluation.probs[i]),
                tta,
            ]
        )
    atomic_write_text(path, buf.getvalue())


def write_json(path: str | os.PathLike[str], payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=1, allow_nan=False) + "\n")


def predictions_path(base: str | os.PathLike[str], index: int, count: int, arch: str) -> Path:
    """With several checkpoints, `--predictions out.csv` becomes out.1-resnet18.csv, ..."""
    base = Path(base)
    if count == 1:
        return base
    return base.with_name(f"{base.stem}.{index + 1}-{arch}{base.suffix or '.csv'}")
