"""Logit adjustment tuned on a holdout: it buys macro F1 for the rare class only where the
holdout's accuracy holds, and folded into the final layer it shifts every logit by its bias."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fer_tui.logit_adjustment import class_prior, scores, tune
from fer_tui.models import build_model
from fer_tui.shipping import fold_bias


def _biased_holdout(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three classes, class 2 rare (5%); the model's scores for class 2 are pushed down as a
    model trained on that prior would push them, so class 2 is mostly missed."""
    prior = np.array([0.55, 0.40, 0.05])
    labels = rng.choice(3, size=4000, p=prior)
    logits = rng.normal(0.0, 1.0, (len(labels), 3))
    logits[np.arange(len(labels)), labels] += 2.5
    logits += np.log(prior)  # what training on this prior adds
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return probs, labels, prior


def test_a_prior_biased_model_gets_a_tau_that_raises_macro_f1_and_keeps_accuracy() -> None:
    probs, labels, prior = _biased_holdout(np.random.default_rng(0))
    adj = tune(probs, labels, prior)
    assert adj.applied and 0 < adj.tau <= 1.5
    (acc0, acc1), (f0, f1) = adj.accuracy, adj.macro_f1
    assert acc1 >= acc0 and f1 > f0 + 0.01
    # the rare class is found more often once adjusted
    adjusted = (np.log(probs) + adj.bias).argmax(1)
    assert (adjusted == 2).sum() > (probs.argmax(1) == 2).sum()
    assert scores(adjusted, labels) == pytest.approx((acc1, f1))
    assert adj.describe().startswith(f"logit adjustment tau {adj.tau:g} tuned on the 4000-face")


def test_no_adjustment_when_every_tau_costs_accuracy() -> None:
    """Adjusting would raise the macro F1 (the rare class is found) but flip more frequent
    faces than it gains, so the holdout's accuracy would drop: the model stays as trained."""
    labels = np.array([0] * 90 + [1] * 10)
    probs = np.tile([0.9, 0.1], (100, 1))
    probs[90:98] = [0.6, 0.4]  # eight rare faces missed; tau >= 0.2 finds them
    probs[98:] = [0.1, 0.9]
    probs[:10] = [0.55, 0.45]  # ten frequent faces that flip from tau 0.1
    prior = class_prior(labels, 2)
    assert (
        scores((np.log(probs) - 0.3 * np.log(prior)).argmax(1), labels)[1]
        > scores(probs.argmax(1), labels)[1]
    )
    adj = tune(probs, labels, prior)
    assert not adj.applied and adj.tau == 0
    assert adj.accuracy == (0.92, 0.92)
    assert np.all(adj.bias == 0)
    assert adj.describe().startswith("no logit adjustment: none raised the macro F1")


def test_a_gain_within_noise_leaves_the_model_as_trained() -> None:
    """One rare face in 2,000 found by tau 0.05 is not worth changing the model for."""
    labels = np.array([0] * 1800 + [1] * 200)
    probs = np.tile([0.9, 0.1], (2000, 1))
    probs[1800:] = [0.1, 0.9]
    probs[1800] = [0.52, 0.48]  # missed, found from tau 0.05
    prior = class_prior(labels, 2)
    adj = tune(probs, labels, prior)
    assert adj.tau == 0 and not adj.applied
    found = scores((np.log(probs) - 0.05 * np.log(prior)).argmax(1), labels)
    assert found[0] > adj.accuracy[0] and 0 < found[1] - adj.macro_f1[0] < 0.005


def test_class_prior_counts_a_missing_class_as_one() -> None:
    prior = class_prior(np.array([0, 0, 0, 1]), 3)
    assert prior == pytest.approx([3 / 5, 1 / 5, 1 / 5])
    with pytest.raises(ValueError, match="do not fit"):
        tune(np.ones((4, 2)) / 2, np.array([0, 1, 0, 1]), prior)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_folding_the_bias_shifts_each_logit_by_it(dropout: float) -> None:
    torch.manual_seed(0)
    model = build_model("resnet18", stem="imagenet", in_channels=1, dropout=dropout).eval()
    x = torch.randn(3, 1, 48, 48)
    bias = np.log(np.arange(1, 8) / 28.0)
    folded = build_model("resnet18", stem="imagenet", in_channels=1, dropout=dropout).eval()
    folded.load_state_dict(fold_bias(model.state_dict(), bias))
    with torch.no_grad():
        diff = folded(x) - model(x)
    assert torch.allclose(diff, torch.as_tensor(bias, dtype=torch.float32).expand(3, 7), atol=1e-5)
