"""Class names and their fixed order.

The order is the alphabetical order of the Kaggle folder names. The original `fer2013.csv`
numbers emotions differently (0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise,
6 Neutral); `CSV_EMOTION_TO_CLASS` maps those ids onto this order.
"""

from __future__ import annotations

CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

#: fer2013.csv emotion id -> index into CLASSES
CSV_EMOTION_TO_CLASS: dict[int, int] = {
    0: CLASSES.index("angry"),
    1: CLASSES.index("disgust"),
    2: CLASSES.index("fear"),
    3: CLASSES.index("happy"),
    4: CLASSES.index("sad"),
    5: CLASSES.index("surprise"),
    6: CLASSES.index("neutral"),
}

#: The two splits every source provides, and the sub-splits of "test" when a source tells them
#: apart (the original Usage values PublicTest and PrivateTest).
SPLITS: tuple[str, ...] = ("train", "test")
SUBSPLITS: tuple[str, ...] = ("public_test", "private_test")

#: File-name prefixes of the Kaggle export -> the test sub-split they belong to.
SUBSPLIT_PREFIXES: dict[str, str] = {"PublicTest": "public_test", "PrivateTest": "private_test"}

#: fer2013.csv Usage value (lower case) -> (split, sub-split)
CSV_USAGE: dict[str, tuple[str, str | None]] = {
    "training": ("train", None),
    "publictest": ("test", "public_test"),
    "privatetest": ("test", "private_test"),
}

_CLASS_BY_NAME = {name: i for i, name in enumerate(CLASSES)}


def class_index(folder_name: str) -> int | None:
    """The index into CLASSES of a class folder name (case-insensitive), or None if unknown."""
    return _CLASS_BY_NAME.get(folder_name.strip().lower())


def subsplit_of(file_name: str) -> str | None:
    """The test sub-split of a Kaggle file name (`PublicTest_1.jpg` -> "public_test"), or None."""
    for prefix, sub in SUBSPLIT_PREFIXES.items():
        if file_name.startswith(prefix):
            return sub
    return None
