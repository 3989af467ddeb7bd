"""Post-hoc logit adjustment: trade a little of the majority classes for the rare ones.

A model trained on FER-2013 as it is (happy 25% of train, disgust 1.5%) leans to the frequent
classes, and disgust's recall is low. Logit adjustment (Menon et al., "Long-tail learning via
logit adjustment", ICLR 2021, arXiv 2007.07314) subtracts `tau * log(prior)` from the logits,
where `prior` is the class frequencies the model was trained on. `tau = 0` is the model as
trained, `tau = 1` the balanced-error optimum.

`tau` is tuned on a holdout from train, never on the test split: the value that gives the best
macro F1 among those that keep the holdout's accuracy at least where it was. When none raises the
macro F1 that way by `MIN_GAIN` or more (less is noise on a holdout of a few hundred rare
faces), `tau = 0` and the model is left as trained. Because the adjustment is a
constant per class, it folds into the bias of the final layer: the shipped checkpoint carries it,
and evaluation, the live view and exports apply it with no code of their own.

Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: the macro-F1 gain on the holdout below which the model is left as trained
MIN_GAIN = 0.005

#: the values of tau tried on the holdout, smallest first (ties keep the smallest)
TAUS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(31))  # 0.0 .. 1.5


@dataclass(frozen=True)
class Adjustment:
    """The tuned adjustment and what it did on the holdout."""

    tau: float
    bias: np.ndarray
    """Added to the logits (and to the final layer's bias): -tau * log(prior), per class."""
    accuracy: tuple[float, float]
    """Holdout accuracy (as trained, adjusted)."""
    macro_f1: tuple[float, float]
    """Holdout macro F1 (as trained, adjusted)."""
    holdout_size: int

    @property
    def applied(self) -> bool:
        return self.tau > 0

    def describe(self) -> str:
        """One clause for a checkpoint's `selection`."""
        (acc0, acc1), (f0, f1) = self.accuracy, self.macro_f1
        n = self.holdout_size
        if not self.applied:
            return (
                f"no logit adjustment: none raised the macro F1 of the {n}-face holdout by "
                f"{MIN_GAIN:g} or more ({f0:.3f}) without lowering its accuracy ({acc0:.3f})"
            )
        return (
            f"logit adjustment tau {self.tau:g} tuned on the {n}-face holdout "
            f"(macro F1 {f0:.3f} -> {f1:.3f}, accuracy {acc0:.3f} -> {acc1:.3f})"
        )

    def as_meta(self, classes: list[str]) -> dict[str, object]:
        """What a checkpoint's meta records of it."""
        return {
            "tau": self.tau,
            "bias": {c: round(float(b), 6) for c, b in zip(classes, self.bias, strict=True)},
            "holdout_size": self.holdout_size,
            "holdout_accuracy": [round(a, 6) for a in self.accuracy],
            "holdout_macro_f1": [round(f, 6) for f in self.macro_f1],
            "method": "post-hoc logit adjustment, logits - tau * log(train class prior)",
        }


def class_prior(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Class frequencies of `labels`; a class with no example counts as one (log stays finite)."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=num_classes).astype(np.float64)
    counts = np.maximum(counts, 1.0)
    return counts / counts.sum()


def scores(predicted: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(accuracy, macro F1 over the classes present in `labels` or `predicted`), as sklearn
    computes them for the evaluation's tables."""
    from sklearn.metrics import f1_score  # deferred: the screens import this module

    if len(labels) == 0:
        return 0.0, 0.0
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    accuracy = float((predicted == labels).mean())
    return accuracy, float(f1_score(labels, predicted, average="macro"))


def tune(
    probs: np.ndarray,
    labels: np.ndarray,
    prior: np.ndarray,
    taus: tuple[float, ...] = TAUS,
) -> Adjustment:
    """The tau (from `taus`) with the best holdout macro F1 whose accuracy is not below tau 0's,
    or 0 when the best gains less than `MIN_GAIN`.

    Args:
        probs: (N, C) softmax probabilities of the holdout faces, as trained.
        labels: (N,) their classes.
        prior: (C,) the class frequencies the model was trained on.
    """
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 2 or len(probs) != len(labels) or probs.shape[1] != len(prior):
        raise ValueError(
            f"probs {probs.shape}, labels ({len(labels)},) and prior ({len(prior)},) do not fit"
        )
    log_p = np.log(np.clip(probs, 1e-12, None))
    log_prior = np.log(np.asarray(prior, np.float64))
    base = scores(log_p.argmax(1), labels)
    best_tau, best = 0.0, base
    for tau in taus:
        acc, f1 = scores((log_p - tau * log_prior).argmax(1), labels)
        if acc >= base[0] and f1 > best[1] + 1e-9:
            best_tau, best = tau, (acc, f1)
    if best[1] - base[1] < MIN_GAIN:
        best_tau, best = 0.0, base
    return Adjustment(
        tau=best_tau,
        bias=-best_tau * log_prior,
        accuracy=(base[0], best[0]),
        macro_f1=(base[1], best[1]),
        holdout_size=len(labels),
    )
