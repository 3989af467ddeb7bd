"""The paper's figures: Sheng & Lau, section 4.2, Tables 1 and 2 (`reference/paper.json`)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any


@lru_cache(maxsize=1)
def paper_reference() -> dict[str, Any]:
    """The paper's Table 1 (per arch) and Table 2 (per class, the mean over its three models),
    from section 4.2 of Sheng & Lau as printed (`fer_tui/reference/paper.json`)."""
    path = Path(__file__).resolve().parents[1] / "reference" / "paper.json"
    return json.loads(path.read_text(encoding="utf-8"))


def paper_row(arch: str | None) -> dict[str, Any] | None:
    """The paper's Table 1 row for an arch (`resnet18|34|50`), or None for another arch."""
    return paper_reference()["table1"].get(arch or "")


def delta(ours: float | None, paper: float | None) -> float | None:
    """ours - paper, or None when either is unknown."""
    if ours is None or paper is None:
        return None
    return float(ours) - float(paper)


def paper_note() -> str:
    """One line on where the paper's figures come from."""
    return (
        "paper: Sheng & Lau, section 4.2: Table 1 per model (AUC = macro one-vs-rest); "
        "Table 2 per class, the mean over its ResNet18, ResNet34 and ResNet50"
    )
