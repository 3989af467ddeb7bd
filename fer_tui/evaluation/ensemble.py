"""Several evaluated models as one: the mean of their softmax probabilities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fer_tui.errors import FerError
from fer_tui.evaluation.metrics import AUC_IN_TABLE, compute_metrics
from fer_tui.evaluation.runner import Evaluation

#: The "arch" of an ensemble's report.
ENSEMBLE = "ensemble"


def ensemble_evaluation(results: Sequence[Evaluation]) -> Evaluation:
    """The ensemble of evaluated models: the mean of their softmax probabilities, image by
    image, reported like one more model (arch "ensemble").

    Each member's probabilities come from its own preprocessing (image size, channels, stem)
    and TTA, so models that differ there still combine: only the probabilities are averaged.
    """
    if len(results) < 2:
        raise FerError(f"an ensemble needs at least two models (got {len(results)})")
    first = results[0]
    for other in results[1:]:
        if other.probs.shape != first.probs.shape or not np.array_equal(other.labels, first.labels):
            raise FerError(
                "the models were evaluated on different images: an ensemble needs "
                "them all on the same split of the same data"
            )
    probs = np.mean([r.probs.astype(np.float64) for r in results], axis=0)
    reports = [r.report for r in results]
    ttas = sorted({r.get("tta", "none") for r in reports})
    engines = sorted({r.get("engine", "torch") for r in reports})
    report = {
        "model": {
            "arch": ENSEMBLE,
            "checkpoint": None,
            "members": [dict(r["model"]) for r in reports],
            "combine": "mean of the members' softmax probabilities",
        },
        "data": dict(first.report["data"]),
        "tta": "+".join(ttas),
        "engine": "+".join(engines),
        "auc_in_table": AUC_IN_TABLE,
        "seconds": round(sum(float(r.get("seconds") or 0.0) for r in reports), 3),
        **compute_metrics(first.labels, probs),
    }
    return Evaluation(
        report,
        probs.astype(np.float32),
        first.labels,
        list(first.names),
        cached=all(r.cached for r in results),
    )
