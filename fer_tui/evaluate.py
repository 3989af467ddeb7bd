"""Evaluation: checkpoints -> the paper's Table 1 and Table 2, as plain dicts, text and files.

Definitions (Sheng & Lau, section 4.2, Tables 1 and 2; `fer_tui/reference/paper.json`):
- Table 1, one row per model: precision, recall and F1 are the "weighted avg" row of
  `sklearn.metrics.classification_report`; support is the number of test images (7,178);
  accuracy; AUC is the arithmetic mean of the seven one-vs-rest AUCs, i.e. the macro average.
  Both the macro and the support-weighted average are computed; the table compares the macro
  one with the paper's (`AUC_IN_TABLE`).
- Table 2, one row per class: precision, recall, F1, support and one-vs-rest AUC for one model,
  or the mean over several. The paper's Table 2 is the mean over its three models, so its
  columns sit beside every Table 2 (one model's, the mean's or the ensemble's) as that mean.
- The ensemble of several models averages their softmax probabilities over the same images
  (each model preprocesses for itself) and is reported like one more model.

A report (one model, one split, one TTA) is a plain JSON-able dict:

    {"model": {arch, checkpoint, sha256, ...}, "data": {source, fingerprint, split, n},
     "tta": "none", "accuracy": .., "weighted_avg": {precision, recall, f1-score, support},
     "macro_avg": {...}, "auc_macro_ovr": .., "auc_weighted_ovr": .., "auc_undefined": [..],
     "classes": {"angry": {precision, recall, f1-score, support, auc}, ...},
     "confusion_matrix": [[counts]], "confusion_matrix_normalized": [[row fractions]],
     "roc": {"angry": {"fpr": [..], "tpr": [..]}, ...}}

An ensemble's report has the same keys; its "model" is {"arch": "ensemble", "checkpoint":
None, "members": [the members' "model" dicts]}.

A class absent from the labels has no AUC (null): the AUC averages then run over the classes
that have one, and `auc_undefined` names the others.

Reports and probabilities are cached in `<cache_dir>/eval/` per (checkpoint sha256, data
fingerprint, split, TTA), so a second evaluation of the same files is instant. Torch and sklearn
are imported inside the functions that need them; nothing here imports textual.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from fer_tui import paths
from fer_tui.data.index import CLASSES, SPLITS, SUBSPLITS
from fer_tui.errors import CheckpointError, DataError, FerError
from fer_tui.files import atomic_write_bytes, atomic_write_text, file_sha256

#: The per-class metrics of Table 2, with sklearn's key names.
METRICS: tuple[str, ...] = ("precision", "recall", "f1-score")
#: Which AUC average Table 1 shows and compares with the paper's: its Table 1 AUC is the mean
#: of the seven per-class one-vs-rest AUCs, the macro average (the other is in every report too).
AUC_IN_TABLE = "auc_macro_ovr"
#: The "arch" of an ensemble's report.
ENSEMBLE = "ensemble"
TTAS: tuple[str, ...] = ("none", "flip", "tencrop")
#: torch: the checkpoint in PyTorch; onnxruntime: its ONNX export (CPU; about 2-3x faster on
#: 2 busy cores in benchmarks/eval_speed.py, probabilities within 1e-4 of torch's).
ENGINES: tuple[str, ...] = ("torch", "onnxruntime")
#: Bump when the report layout changes, so stale cache entries are recomputed.
CACHE_VERSION = 1
#: ROC curves are thinned to at most this many points per class (enough for a plot).
ROC_POINTS = 200

#: progress(stage, done, total): stage is "data" or "predict <checkpoint name>".
Progress = Callable[[str, int, int], None]


# --- the paper's figures ------------------------------------------------------------------


@lru_cache(maxsize=1)
def paper_reference() -> dict[str, Any]:
    """The paper's Table 1 (per arch) and Table 2 (per class, the mean over its three models),
    from section 4.2 of Sheng & Lau as printed (`fer_tui/reference/paper.json`)."""
    path = Path(__file__).resolve().parent / "reference" / "paper.json"
    return json.loads(path.read_text(encoding="utf-8"))


def paper_row(arch: str | None) -> dict[str, Any] | None:
    """The paper's Table 1 row for an arch (`resnet18|34|50`), or None for another arch."""
    return paper_reference()["table1"].get(arch or "")


# --- metrics ------------------------------------------------------------------------------


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


# --- checkpoints, data, cache -------------------------------------------------------------


def check_split_name(split: str) -> None:
    """Reject a split name no data source can have, before anything slow happens."""
    known = (*SPLITS, *SUBSPLITS)
    if split not in known:
        raise DataError(f"unknown split '{split}': use one of {', '.join(known)}")


def check_output_path(path: str | os.PathLike[str] | None, what: str) -> None:
    """An output file's folder must exist (checked before the slow part)."""
    if path is None or str(path) == "-":
        return
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise FerError(f"{what}: the folder {parent} does not exist; create it or write elsewhere")
    if Path(path).is_dir():
        raise FerError(f"{what}: {path} is a folder; give a file name")


def checkpoint_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a fer-tui checkpoint, after checking it is a 7-class FER-2013 one."""
    from fer_tui.models import read_checkpoint

    try:
        meta = read_checkpoint(path)["meta"]
    except FerError:
        raise
    except Exception as exc:  # torch.load raises struct.error etc. on some garbage files
        raise CheckpointError(
            f"{path} is truncated or not a PyTorch checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    if list(meta.get("classes", [])) != list(CLASSES):
        raise CheckpointError(
            f"{path} was trained for classes {meta.get('classes')}, not "
            f"{list(CLASSES)}: fer-tui needs a 7-class FER-2013 checkpoint"
        )
    return meta


def get_split(data: Any, split: str) -> Any:
    """`data.splits[split]`, or a DataError naming the splits the data has."""
    check_split_name(split)
    found = getattr(data, "splits", {}) or {}
    if split not in found or len(found[split]) == 0:
        have = ", ".join(found) or "none"
        raise DataError(
            f"{getattr(data, 'source', 'the data')} has no '{split}' split "
            f"(it has: {have}); evaluation needs FER-2013's test/<class>/ images "
            f"or fer2013.csv's PublicTest/PrivateTest rows"
        )
    return found[split]


def cache_root() -> Path:
    return paths.cache_dir() / "eval"


def cache_key(
    checkpoint_sha: str,
    fingerprint: str,
    split: str,
    tta: str,
    engine: str = "torch",
    device: str = "auto",
) -> str:
    """The cache entry of one evaluation: files, split, TTA, engine and, for torch, the device
    type it runs on (CUDA's TF32 convolutions do not give the CPU's probabilities).

    `device` is resolved as the evaluation resolves it, so a GPU that is not there fails here,
    before a cached report could stand in for it.
    """
    raw = f"v{CACHE_VERSION}|{checkpoint_sha}|{fingerprint}|{split}|{tta}"
    if engine != "torch":  # torch keys stay as they were before engines existed
        raw += f"|{engine}"  # onnxruntime runs on the CPU whatever the device
    else:
        from fer_tui.models import resolve_device

        kind = resolve_device(device).type
        if kind != "cpu":  # CPU keys stay as they were before devices were keyed
            raw += f"|{kind}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def cache_get(key: str) -> tuple[dict[str, Any], np.ndarray] | None:
    """A cached (report, probs), or None when absent or unreadable."""
    root = cache_root()
    try:
        report = json.loads((root / f"{key}.json").read_text(encoding="utf-8"))
        probs = np.load(root / f"{key}.npy", allow_pickle=False)
    except (OSError, ValueError):
        return None
    return report, probs


def cache_put(key: str, report: dict[str, Any], probs: np.ndarray) -> None:
    """Store a report and its probabilities; a cache that cannot be written is skipped."""
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.save(buf, probs.astype(np.float32), allow_pickle=False)
        atomic_write_bytes(root / f"{key}.npy", buf.getvalue())
        # the report last: a reader that finds the report also finds its probabilities
        atomic_write_text(root / f"{key}.json", json.dumps(report))
    except OSError:
        pass


def find_cached_report(
    checkpoint: str | os.PathLike[str],
    *,
    split: str = "test",
    tta: str = "none",
    source: str | os.PathLike[str] | None = None,
    engine: str = "torch",
) -> dict[str, Any] | None:
    """The newest cached report for this checkpoint file (and data source, when given),
    without loading the data: what the Evaluation screen shows at once when it opens."""
    root = cache_root()
    if not root.is_dir() or not Path(checkpoint).is_file():
        return None
    sha = file_sha256(checkpoint)
    want_source = str(Path(source).expanduser().resolve()) if source else None
    best: tuple[float, dict[str, Any]] | None = None
    for path in root.glob("*.json"):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
            mtime = path.stat().st_mtime
        except (OSError, ValueError):
            continue
        data = report.get("data", {})
        if (
            report.get("model", {}).get("sha256") != sha
            or data.get("split") != split
            or report.get("tta") != tta
            or report.get("cache_version") != CACHE_VERSION
            or report.get("engine", "torch") != engine
        ):
            continue
        if want_source is not None and data.get("source") != want_source:
            continue
        if best is None or mtime > best[0]:
            best = (mtime, report)
    if best is None:
        return None
    report = best[1]
    report["model"]["checkpoint"] = str(checkpoint)
    return report


# --- evaluation ---------------------------------------------------------------------------


@dataclass
class Evaluation:
    """One model on one split: its report, the probabilities and what they belong to."""

    report: dict[str, Any]
    probs: np.ndarray
    """(N, 7) float32."""
    labels: np.ndarray
    """(N,) true class indices."""
    names: list[str]
    """Where each image came from (the split's names)."""
    cached: bool = False


class Cancelled(FerError):
    """The evaluation was cancelled (a newer one started, or the screen closed)."""


def model_info(path: str | os.PathLike[str], meta: dict[str, Any], sha: str) -> dict[str, Any]:
    return {
        "arch": meta.get("arch"),
        "checkpoint": str(path),
        "sha256": sha,
        "stem": meta.get("stem"),
        "in_channels": meta.get("in_channels"),
        "recipe": meta.get("recipe"),
        "epoch": meta.get("epoch"),
        "best_metric": meta.get("best_metric"),
    }


def load_data(
    source: Any,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Any:
    """A FerData from a path (or None: the default places); a FerData passes through.

    progress gets ("data", done, total) while the data layer decodes (not on its cache hit).
    """
    if hasattr(source, "splits"):
        return source
    from fer_tui.data.load import LoadCancelled, load_dataset

    def step(done: int, total: int) -> None:
        if progress is not None:
            progress("data", done, total)

    step(0, 0)
    try:
        return load_dataset(source, progress=step, cancelled=cancelled)
    except LoadCancelled:
        raise Cancelled("evaluation cancelled while loading the data") from None


def evaluate_checkpoints(
    checkpoints: Sequence[str | os.PathLike[str]],
    *,
    data: Any = None,
    split: str = "test",
    tta: str = "none",
    device: str = "auto",
    batch_size: int = 256,
    use_cache: bool = True,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
    engine: str = "torch",
) -> list[Evaluation]:
    """Evaluate each checkpoint on `split` of `data` (a path, None or a loaded FerData).

    Cheap checks come first (files, class sets, split name) so that bad input fails before the
    data is decoded; results come from the cache when the same files were evaluated before.
    """
    if not checkpoints:
        raise CheckpointError(
            "no checkpoint given: pass --checkpoint PATH (shipped ones are in "
            "checkpoints/, trained ones in runs/<run>/best.pt)"
        )
    if tta not in TTAS:
        raise FerError(f"unknown test-time augmentation '{tta}': use {', '.join(TTAS)}")
    if batch_size < 1:
        raise FerError(f"batch size must be at least 1 (got {batch_size})")
    check_engine(engine, device)
    check_split_name(split)
    metas = [(Path(p), checkpoint_meta(p)) for p in checkpoints]
    fer = load_data(data, progress, cancelled)
    part = get_split(fer, split)
    labels = np.asarray(part.labels, dtype=np.int64)
    data_info = {
        "source": str(Path(fer.source).expanduser().resolve()),
        "fingerprint": fer.fingerprint,
        "split": split,
        "n": len(labels),
    }
    out = []
    for path, meta in metas:
        sha = file_sha256(path)
        key = cache_key(sha, fer.fingerprint, split, tta, engine, device)
        hit = cache_get(key) if use_cache else None
        if hit is not None and len(hit[1]) == len(labels):
            report, probs = hit
            report["model"]["checkpoint"] = str(path)
            out.append(Evaluation(report, probs, labels, list(part.names), cached=True))
            continue
        probs, seconds = _predict(
            path,
            part.images,
            tta=tta,
            device=device,
            batch_size=batch_size,
            progress=progress,
            cancelled=cancelled,
            engine=engine,
        )
        report = {
            "model": model_info(path, meta, sha),
            "data": data_info,
            "tta": tta,
            "engine": engine,
            "auc_in_table": AUC_IN_TABLE,
            "seconds": round(seconds, 3),
            "cache_version": CACHE_VERSION,
            **compute_metrics(labels, probs),
        }
        cache_put(key, report, probs)
        out.append(Evaluation(report, probs, labels, list(part.names)))
    return out


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


def check_engine(engine: str, device: str = "auto") -> None:
    """An engine this machine can run, for this device (cheap: before the data loads)."""
    if engine not in ENGINES:
        raise FerError(f"unknown engine '{engine}': use {' or '.join(ENGINES)}")
    if engine == "onnxruntime":
        if device.startswith("cuda"):
            raise FerError(
                "--engine onnxruntime runs on the CPU: use --device cpu/auto, or "
                "--engine torch for the GPU"
            )
        import importlib.util

        if importlib.util.find_spec("onnxruntime") is None:
            raise FerError(
                "--engine onnxruntime needs onnxruntime: pip install "
                "'fer-tui[onnx]' (or use --engine torch)"
            )


def _ort_model(path: Path) -> tuple[Any, dict[str, Any]]:
    """The checkpoint's cached ONNX export in onnxruntime, shaped like a torch model so that
    predict_proba (and its TTA) runs it unchanged."""
    import torch

    from fer_tui.export import OrtModel, cached_onnx
    from fer_tui.models import read_checkpoint

    meta = read_checkpoint(path)["meta"]
    session = OrtModel(cached_onnx(path))

    class OrtShim(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # predict_proba reads the device from the first parameter
            self.anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return session(x)

    return OrtShim().eval(), meta


def _predict(
    path: Path,
    images: np.ndarray,
    *,
    tta: str,
    device: str,
    batch_size: int,
    progress: Progress | None,
    cancelled: Callable[[], bool] | None,
    engine: str = "torch",
) -> tuple[np.ndarray, float]:
    from fer_tui.models import load_checkpoint, predict_proba, resolve_device

    if engine == "onnxruntime":
        model, meta = _ort_model(path)
    else:
        model, meta = load_checkpoint(path, resolve_device(device))
    stage = f"predict {path.name}"

    def step(done: int, total: int) -> None:
        if cancelled is not None and cancelled():
            raise Cancelled("evaluation cancelled")
        if progress is not None:
            progress(stage, done, total)

    if progress is not None:
        progress(stage, 0, len(images))
    start = time.perf_counter()
    probs = predict_proba(model, meta, images, batch_size=batch_size, tta=tta, progress=step)
    return probs, time.perf_counter() - start


# --- tables -------------------------------------------------------------------------------


def delta(ours: float | None, paper: float | None) -> float | None:
    """ours - paper, or None when either is unknown."""
    if ours is None or paper is None:
        return None
    return float(ours) - float(paper)


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
PAPER_TABLE1_COLUMNS: tuple[str, ...] = (
    "precision",
    "recall",
    "f1-score",
    "support",
    "accuracy",
    "auc",
)


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


def paper_note() -> str:
    """One line on where the paper's figures come from."""
    return (
        "paper: Sheng & Lau, section 4.2: Table 1 per model (AUC = macro one-vs-rest); "
        "Table 2 per class, the mean over its ResNet18, ResNet34 and ResNet50"
    )


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
