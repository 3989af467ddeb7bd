"""dataset_stats and the checks behind the Dataset screen's figures."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from fer_tui.data.index import CLASSES
from fer_tui.data.load import load_dataset
from fer_tui.data.records import Split
from fer_tui.data.stats import dataset_stats, imbalance, mean_std, pixel_histogram, sample_indices
from tests.helpers import make_folder_dataset


@pytest.fixture(scope="module")
def uneven(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PNG dataset with 6 train images per class, 2 test, and one test copy of a train image."""
    root = make_folder_dataset(
        tmp_path_factory.mktemp("uneven") / "fer", {"train": 6, "test": 2}, ext=".png"
    )
    for f in sorted((root / "train" / "disgust").iterdir())[2:]:
        f.unlink()  # disgust: 2 images, happy: 6 -> ratio 3
    shutil.copy(
        root / "train" / "fear" / "Training_200000.png",
        root / "test" / "fear" / "PublicTest_copy.png",
    )
    return root


def test_stats_json_has_the_issue_shape(uneven: Path) -> None:
    """The JSON of `fer-tui stats --json`: source, format, classes, per-split counts, problems."""
    stats = dataset_stats(load_dataset(uneven))
    assert stats["format"] == "folder" and stats["classes"] == list(CLASSES)
    assert stats["source"] == str(uneven)
    train = stats["splits"]["train"]
    assert train["total"] == 6 * 6 + 2
    assert train["classes"]["disgust"] == 2 and train["classes"]["happy"] == 6
    assert stats["splits"]["test"]["total"] == 15
    assert {"public_test", "private_test"} <= set(stats["splits"])
    assert stats["imbalance"]["ratio"] == 3.0
    assert stats["imbalance"]["smallest"] == "disgust"
    assert stats["imbalance"]["share"]["disgust"] == round(2 / 38, 4)
    assert stats["duplicates_across_splits"] == 1
    dup = [p for p in stats["problems"] if p["kind"] == "duplicate_across_splits"]
    assert dup[0]["count"] == 1 and "test/fear/PublicTest_copy.png" in dup[0]["message"]


def test_pixel_mean_std_match_numpy(uneven: Path) -> None:
    """Mean/std come from an exact grey-level histogram: equal to numpy over train+test."""
    data = load_dataset(uneven)
    stats = dataset_stats(data)
    pixels = np.concatenate(
        [data.splits["train"].images.ravel(), data.splits["test"].images.ravel()]
    ).astype(np.float64)
    assert stats["pixel_mean"] == round(pixels.mean(), 2)
    assert stats["pixel_std"] == round(pixels.std(), 2)


def test_histogram_of_empty_split_has_no_mean() -> None:
    """An empty split has no pixel statistics rather than a division by zero."""
    assert mean_std(pixel_histogram(np.zeros((0, 48, 48), np.uint8))) == (None, None)


def test_imbalance_with_an_empty_class_has_no_ratio() -> None:
    """A class with no images makes the ratio undefined (None), not infinite in JSON."""
    counts = dict.fromkeys(CLASSES, 5) | {"disgust": 0}
    result = imbalance(counts)
    assert result["ratio"] is None and result["smallest"] == "disgust"


def test_blank_images_are_reported_and_never_sampled(tmp_path: Path) -> None:
    """Flat-grey images are a problem, and the sample grid skips them."""
    images = np.random.default_rng(0).integers(0, 255, (8, 48, 48), dtype=np.uint8)
    images[0] = 0
    images[5] = 17
    split = Split(images, np.array([0, 0, 0, 0, 1, 1, 1, 1]), [f"i{i}" for i in range(8)])
    picks = sample_indices(split, per_class=10, seed=1)
    assert picks[0] == [1, 2, 3] and picks[1] == [4, 6, 7] and picks[2] == []


def test_samples_are_reproducible_and_reshuffle_with_the_seed(uneven: Path) -> None:
    """The same seed gives the same faces; another seed gives others."""
    train = load_dataset(uneven).splits["train"]
    a = sample_indices(train, 3, seed=0)
    assert a == sample_indices(train, 3, seed=0)
    assert a != sample_indices(train, 3, seed=1)
    assert all(train.labels[i] == c for c, picks in enumerate(a) for i in picks)
