"""The real FER-2013 tar.gz, read straight from the archive, matches its README table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fer_tui.data.index import CLASSES
from fer_tui.data.load import load_dataset
from fer_tui.data.stats import dataset_stats

pytestmark = [pytest.mark.slow, pytest.mark.realdata]

# ../shared/data/README.md, "Per-class counts" (the support column of the paper's Table 2)
TABLE = {
    "angry": (3995, 958),
    "disgust": (436, 111),
    "fear": (4097, 1024),
    "happy": (7215, 1774),
    "neutral": (4965, 1233),
    "sad": (4830, 1247),
    "surprise": (3171, 831),
}


def _readme_table(readme: Path) -> dict[str, tuple[int, int]]:
    rows = re.findall(r"^\| (\w+)\s*\|\s*([\d,]+) \|\s*([\d,]+) \|$", readme.read_text(), re.M)
    return {
        c: (int(a.replace(",", "")), int(b.replace(",", ""))) for c, a, b in rows if c in CLASSES
    }


@pytest.fixture(scope="module")
def real(real_tarball: Path):
    return load_dataset(real_tarball, cache=False)


def test_counts_equal_the_readme_table(real, real_tarball: Path) -> None:
    """28,709 train and 7,178 test images, per class exactly as the dataset's README says."""
    readme = real_tarball.parent / "README.md"
    if readme.exists():
        assert _readme_table(readme) == TABLE
    assert real.format == "tar"
    assert real.splits["train"].counts() == {c: n for c, (n, _) in TABLE.items()}
    assert real.splits["test"].counts() == {c: n for c, (_, n) in TABLE.items()}
    assert len(real.splits["train"]) == 28709 and len(real.splits["test"]) == 7178
    assert len(real.splits["public_test"]) == len(real.splits["private_test"]) == 3589


def test_same_name_in_two_classes_keeps_both(real) -> None:
    """The two training names that occur in two class folders are both kept, as two images."""
    names = set(real.splits["train"].names)
    for pair in (
        ("neutral", "surprise", "Training_52789098.jpg"),
        ("angry", "surprise", "Training_8475486.jpg"),
    ):
        assert {f"train/{pair[0]}/{pair[2]}", f"train/{pair[1]}/{pair[2]}"} <= names


def test_pixel_statistics_and_known_problems(real) -> None:
    """Mean 129.4 / std 65.1 as documented; no unreadable or wrong-size image; duplicates found."""
    stats = dataset_stats(real)
    assert round(stats["pixel_mean"], 1) == 129.4 and round(stats["pixel_std"], 1) == 65.1
    kinds = {p["kind"] for p in stats["problems"]}
    assert not kinds & {"unreadable", "wrong_size", "empty_class", "missing_split"}
    assert stats["duplicates_across_splits"] > 0
