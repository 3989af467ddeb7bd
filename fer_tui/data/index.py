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
