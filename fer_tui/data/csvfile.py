"""The original `fer2013.csv`: one image per row as `emotion,pixels,Usage`.

`emotion` is the CSV's own id (0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise,
6 Neutral), mapped onto CLASSES by `CSV_EMOTION_TO_CLASS`. `pixels` is 2304 space-separated
values 0-255 (48x48, row-major). `Usage` is Training, PublicTest or PrivateTest; a file without
a Usage column (Kaggle's challenge `train.csv`) is all training data. A bad row is skipped and
reported with its line number; a bad header is an error.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_tui.data.index import CSV_EMOTION_TO_CLASS, CSV_USAGE
from fer_tui.data.records import Problem
from fer_tui.errors import DataError

SIDE = 48


@dataclass
class CsvRows:
    """Decoded rows, in file order, per split."""

    images: dict[str, list[np.ndarray]] = field(default_factory=lambda: {"train": [], "test": []})
    labels: dict[str, list[int]] = field(default_factory=lambda: {"train": [], "test": []})
    names: dict[str, list[str]] = field(default_factory=lambda: {"train": [], "test": []})
    subsplits: list[str | None] = field(default_factory=list)
    """The test sub-split of each test row, in order."""
    problems: list[Problem] = field(default_factory=list)


def _lines(f, counter: list[int]) -> Iterator[str]:
    for line in f:
        counter[0] += len(line)
        yield line


def read_csv(path: Path, progress: Callable[[int, int], None] | None = None) -> CsvRows:
    """Parse fer2013.csv; `progress(chars_read, file_size)` every few thousand rows.

    Raises:
        DataError: unreadable file, or a header without `emotion` and `pixels`.
    """
    size = path.stat().st_size
    out = CsvRows()
    consumed = [0]
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(_lines(f, consumed))
            header = next(reader, None)
            cols = [c.strip().lower() for c in header or []]
            if "emotion" not in cols or "pixels" not in cols:
                found = ",".join(header or [])[:80] or "an empty file"
                raise DataError(
                    f"{path}: line 1 is not the fer2013.csv header: expected "
                    f"emotion,pixels,Usage, found {found!r}"
                )
            i_emotion, i_pixels = cols.index("emotion"), cols.index("pixels")
            i_usage = cols.index("usage") if "usage" in cols else None
            with warnings.catch_warnings():
                # older numpy: fromstring stops at a bad token with a DeprecationWarning
                # rather than a ValueError; make it an error so the row is reported
                warnings.simplefilter("error", DeprecationWarning)
                for n, row in enumerate(reader):
                    if progress and n % 2000 == 0:
                        progress(consumed[0], size)
                    if not row:
                        continue
                    _parse_row(row, reader.line_num, path.name, i_emotion, i_pixels, i_usage, out)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not a text CSV file ({exc.reason}); is it fer2013.csv?"
        ) from exc
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc}); is it fer2013.csv?") from exc
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror})") from exc
    if progress:
        progress(size, size)
    return out


def _bad(out: CsvRows, file: str, line: int, why: str) -> None:
    out.problems.append(
        Problem("bad_row", f"{file} line {line}: {why}; row skipped", f"line {line}")
    )


def _parse_row(
    row: list[str],
    line: int,
    file: str,
    i_emotion: int,
    i_pixels: int,
    i_usage: int | None,
    out: CsvRows,
) -> None:
    if len(row) <= max(i_emotion, i_pixels, i_usage or 0):
        _bad(out, file, line, f"{len(row)} column(s), expected {1 + max(i_emotion, i_pixels)}+")
        return
    try:
        emotion = int(row[i_emotion])
    except ValueError:
        _bad(out, file, line, f"emotion {row[i_emotion]!r} is not a number 0-6")
        return
    if emotion not in CSV_EMOTION_TO_CLASS:
        _bad(out, file, line, f"emotion {emotion} is not one of 0-6")
        return
    split, sub = "train", None
    if i_usage is not None:
        usage = row[i_usage].strip()
        if usage.lower() not in CSV_USAGE:
            _bad(out, file, line, f"Usage {usage!r} is not Training, PublicTest or PrivateTest")
            return
        split, sub = CSV_USAGE[usage.lower()]
    try:
        pixels = np.fromstring(row[i_pixels], dtype=np.int32, sep=" ")
    except (DeprecationWarning, ValueError):
        _bad(out, file, line, "pixels are not space-separated integers")
        return
    if (pixels & ~0xFF).any():  # one pass for "< 0 or > 255"
        _bad(out, file, line, "pixel values outside 0-255")
        return
    name = f"line {line}"
    side = int(round(pixels.size**0.5))
    if pixels.size == SIDE * SIDE:
        img = pixels.astype(np.uint8).reshape(SIDE, SIDE)
    elif side > 0 and side * side == pixels.size:
        import cv2  # deferred: only non-48x48 rows need it

        img = cv2.resize(
            pixels.astype(np.uint8).reshape(side, side),
            (SIDE, SIDE),
            interpolation=cv2.INTER_AREA if side > SIDE else cv2.INTER_LINEAR,
        )
        out.problems.append(
            Problem(
                "wrong_size", f"{file} line {line}: {side}x{side} pixels, not 48x48; resized", name
            )
        )
    else:
        _bad(out, file, line, f"{pixels.size} pixel values, expected {SIDE * SIDE} (48x48)")
        return
    out.images[split].append(img)
    out.labels[split].append(CSV_EMOTION_TO_CLASS[emotion])
    out.names[split].append(name)
    if split == "test":
        out.subsplits.append(sub)
