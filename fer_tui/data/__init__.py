"""The FER-2013 data layer (no torch here; numpy and cv2 only where decoding needs them).

`CLASSES` fixes the class order everywhere: reports, probability bars, model outputs.

- `index`: CLASSES, split names, the CSV id and Usage mappings (pure Python, cheap to import)
- `sources`: detect a folder / zip / tar / csv and list or stream its images
- `csvfile`: parse fer2013.csv
- `load`: `load_dataset()` -> `FerData`, through the fingerprinted decoded cache
- `records`: `FerData`, `Split`, `Problem`
- `stats`: `dataset_stats()` (the `fer-tui stats --json` document), pixel mean/std, duplicates
"""

from fer_tui.data.index import CLASSES, CSV_EMOTION_TO_CLASS

__all__ = ["CLASSES", "CSV_EMOTION_TO_CLASS"]
