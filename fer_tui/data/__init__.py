"""The FER-2013 data layer (no torch here).

`CLASSES` fixes the class order everywhere: reports, probability bars, model outputs.
"""

from fer_tui.data.index import CLASSES, CSV_EMOTION_TO_CLASS

__all__ = ["CLASSES", "CSV_EMOTION_TO_CLASS"]
