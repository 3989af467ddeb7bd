"""Load FER-2013 from any of its forms into uint8 arrays, through a decoded cache.

`load_dataset()` finds the source (`resolve_source`), detects its form (`sources.detect_format`),
and computes a cheap fingerprint of it without decoding anything:

- folder: sha256 over the sorted (relative path, size, mtime_ns) of every file in the class
  folders (one `stat` per file, about 0.1 s for FER-2013);
- zip, tar, csv: sha256 of (absolute path, size, mtime_ns) of the file.

Both include `LOADER_VERSION`, so a change in decoding invalidates old caches. The fingerprint is
`FerData.fingerprint`, and checkpoints record it.

The cache is one uncompressed `.npz` per source path in `fer_tui.paths.cache_dir()`
(`data-<hash of the path>.npz`: uint8 images, int64 labels, names, and a JSON `meta` holding the
fingerprint and the problems found). It is written to a temp file and `os.replace`d, so a reader
sees the old cache or the new one, never half; when the fingerprint in it no longer matches, it is
rebuilt and replaced (one file per source, so changed sources do not pile up).

Image decoding uses `cv2.imdecode` in a thread pool (cv2 releases the GIL); the archive reader
feeds it from the calling thread, so reading and decoding overlap.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import zipfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from fer_tui.data.index import CLASSES, SPLITS, SUBSPLITS, subsplit_of
from fer_tui.data.records import FerData, Problem, Split
from fer_tui.data.sources import (
    HOW_TO_GET,
    LOADER_VERSION,
    Entry,
    FolderSource,
    TarSource,
    ZipSource,
    detect_format,
    file_fingerprint,
)
from fer_tui.errors import DataError
from fer_tui.files import atomic_write
from fer_tui.paths import DATA_ENV, cache_dir, data_candidates

__all__ = [
    "CLASSES",
    "FerData",
    "LoadCancelled",
    "Problem",
    "Split",
    "Progress",
    "cache_path",
    "load_dataset",
    "resolve_source",
]

#: `progress(done, total)`: images for folders and zips, bytes of the file for tar and CSV
#: streams (whose image count is unknown until the end). May be called from worker threads.
Progress = Callable[[int, int], None]


class LoadCancelled(Exception):
    """`load_dataset(cancelled=...)` returned True: decoding stopped early, nothing cached."""


SIDE = 48
_BATCH = 256


def resolve_source(source: str | os.PathLike[str] | None = None) -> Path:
    """The dataset path from the argument, else $FER_TUI_DATA, else the default places.

    Raises:
        DataError: nothing there, naming where it looked and how to get FER-2013.
    """
    if source:
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError(f"no dataset at {path} (given with --data). {HOW_TO_GET}.")
        return path
    env = os.environ.get(DATA_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.exists():
            raise DataError(f"no dataset at {path} (from ${DATA_ENV}). {HOW_TO_GET}.")
        return path
    for candidate in data_candidates():
        if candidate.exists():
            return candidate
    looked = ", ".join(str(p) for p in data_candidates())
    raise DataError(
        f"no FER-2013 data found: no --data given, ${DATA_ENV} unset, and nothing at {looked}. "
        f"{HOW_TO_GET}."
    )


def cache_path(source: Path) -> Path:
    """The cache file for a source path (one per path; the fingerprint is checked inside)."""
    key = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16]
    return cache_dir() / f"data-{key}.npz"


def load_dataset(
    source: str | os.PathLike[str] | None = None,
    *,
    cache: bool = True,
    progress: Progress | None = None,
    workers: int | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> FerData:
    """FER-2013 as uint8 arrays, from the cache when the source has not changed.

    Args:
        source: folder, .zip, .tar(.gz) or .csv; None = $FER_TUI_DATA or the default places.
        cache: read and write the decoded cache (False: always decode, write nothing).
        progress: called as decoding advances (not called on a cache hit).
        workers: decode threads (default: up to 4, one per core).
        cancelled: polled while decoding (a TUI worker's `is_cancelled`); True stops early.

    Raises:
        DataError: no data, an unknown form, a wrong layout, a bad CSV header, or no images.
        LoadCancelled: `cancelled()` became True.
    """
    root = resolve_source(source)
    fmt, path = detect_format(root)
    src: FolderSource | ZipSource | TarSource | None = None
    if fmt == "folder":
        src = FolderSource(path)  # lists the files: that listing is the fingerprint
        fingerprint = src.fingerprint
    else:
        fingerprint = file_fingerprint(path, fmt)
    target = cache_path(path) if cache else None
    if target is not None:
        hit = _read_cache(target, fingerprint)
        if hit is not None:
            return hit
    if fmt == "csv":
        splits, subs, problems = _load_csv(path, progress, cancelled)
    else:
        if src is None:
            src = ZipSource(path) if fmt == "zip" else TarSource(path)
        splits, subs, problems = _load_images(src, progress, workers, cancelled)
    from fer_tui.data.stats import find_problems, summarise

    _add_subsplits(splits, subs)
    summary = summarise(splits)
    problems += find_problems(splits, str(path), summary)
    data = FerData(path, fmt, fingerprint, splits, problems, summary=summary)
    if target is not None:
        try:
            _write_cache(target, data, subs)
        except OSError as exc:
            data.problems.append(
                Problem(
                    "cache_not_written",
                    f"could not write the decoded cache {target} ({exc.strerror or exc}); the next "
                    f"start decodes again. Set FER_TUI_CACHE to a writable folder",
                    str(target),
                )
            )
    return data


# --- decoding -------------------------------------------------------------------------------


def _decode_batch(batch: list[Entry]) -> list[tuple[Entry, np.ndarray | None, Problem | None]]:
    import cv2

    out: list[tuple[Entry, np.ndarray | None, Problem | None]] = []
    for entry in batch:
        try:
            raw = entry.data if isinstance(entry.data, bytes) else entry.data.read_bytes()
        except OSError as exc:
            out.append(
                (
                    entry,
                    None,
                    Problem(
                        "unreadable",
                        f"{entry.name}: cannot read it ({exc.strerror}); skipped",
                        entry.name,
                    ),
                )
            )
            continue
        img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_GRAYSCALE) if raw else None
        if img is None:
            out.append(
                (
                    entry,
                    None,
                    Problem(
                        "unreadable",
                        f"{entry.name}: not a readable image ({len(raw)} bytes); skipped",
                        entry.name,
                    ),
                )
            )
            continue
        problem = None
        if img.shape != (SIDE, SIDE):
            h, w = img.shape
            shrink = h > SIDE or w > SIDE
            img = cv2.resize(
                img, (SIDE, SIDE), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            )
            problem = Problem(
                "wrong_size", f"{entry.name}: {w}x{h}, not 48x48; resized", entry.name
            )
        # drop the reference to the encoded bytes: the results outlive the reading
        out.append((Entry(entry.split, entry.label, entry.name, b""), img, problem))
    return out


def _load_images(
    src: FolderSource | ZipSource | TarSource,
    progress: Progress | None,
    workers: int | None,
    cancelled: Callable[[], bool] | None,
) -> tuple[dict[str, Split], dict[str, np.ndarray], list[Problem]]:
    n_workers = workers or min(4, os.cpu_count() or 1)
    futures: list[Future[list[tuple[Entry, np.ndarray | None, Problem | None]]]] = []
    done = [0]
    lock = threading.Lock()
    total = src.total
    # a few batches in flight per thread: the reader never runs far ahead of the decoders, so
    # memory stays small and a cancel (quitting the TUI mid-decode) takes effect at once
    in_flight = threading.BoundedSemaphore(2 * n_workers)

    def finished(fut: Future[list[tuple[Entry, np.ndarray | None, Problem | None]]]) -> None:
        in_flight.release()
        if progress is None or total is None or fut.cancelled() or fut.exception():
            return
        with lock:
            done[0] += len(fut.result())
            progress(done[0], total)

    def submit(batch: list[Entry]) -> None:
        in_flight.acquire()
        futures.append(pool.submit(_decode_batch, batch))
        futures[-1].add_done_callback(finished)

    with ThreadPoolExecutor(n_workers, thread_name_prefix="fer-decode") as pool:
        batch: list[Entry] = []
        try:
            for entry in src.read():
                batch.append(entry)
                if len(batch) < _BATCH:
                    continue
                if cancelled is not None and cancelled():
                    raise LoadCancelled()
                submit(batch)
                batch = []
                if progress is not None and total is None:
                    pos = src.position()
                    if pos is not None:
                        progress(*pos)
            if batch:
                submit(batch)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
        results = [r for fut in futures for r in fut.result()]
    if progress is not None and total is None:
        pos = src.position()
        if pos is not None:
            progress(*pos)

    problems = list(src.problems)
    rows: dict[str, list[tuple[int, str, np.ndarray]]] = {s: [] for s in SPLITS}
    decode_problems = []
    for entry, img, problem in results:
        if problem is not None:
            decode_problems.append(problem)
        if img is not None:
            rows[entry.split].append((entry.label, entry.name, img))
    problems += sorted(decode_problems, key=lambda p: (p.path or "", p.kind))
    if not any(rows.values()):
        where = getattr(src, "root", None) or getattr(src, "path", "")
        first = f" ({decode_problems[0].message})" if decode_problems else ""
        raise DataError(
            f"{where}: none of its {len(results)} image file(s) could be decoded{first}"
        )
    splits = {}
    for name, items in rows.items():
        items.sort(key=lambda r: (r[0], r[1]))  # class order, then file name: same for every form
        if items:
            splits[name] = Split(
                np.stack([r[2] for r in items]),
                np.array([r[0] for r in items], np.int64),
                [r[1] for r in items],
            )
        else:
            splits[name] = Split.empty()
    test_subs = [subsplit_of(n.rsplit("/", 1)[-1]) for n in splits["test"].names]
    return splits, _subsplit_index(test_subs), problems


def _load_csv(
    path: Path, progress: Progress | None, cancelled: Callable[[], bool] | None
) -> tuple[dict[str, Split], dict[str, np.ndarray], list[Problem]]:
    from fer_tui.data.csvfile import read_csv

    def report(done: int, total: int) -> None:
        if cancelled is not None and cancelled():
            raise LoadCancelled()
        if progress is not None:
            progress(done, total)

    rows = read_csv(path, report)
    if not any(rows.labels.values()):
        first = rows.problems[0].message if rows.problems else "no data rows"
        raise DataError(f"{path}: no usable rows ({first})")
    splits = {}
    for name in SPLITS:
        if rows.labels[name]:
            splits[name] = Split(
                np.stack(rows.images[name]), np.array(rows.labels[name], np.int64), rows.names[name]
            )
        else:
            splits[name] = Split.empty()
    return splits, _subsplit_index(rows.subsplits), rows.problems


def _subsplit_index(subs: list[str | None]) -> dict[str, np.ndarray]:
    """Indices into "test" of each sub-split, only when every test image has one of them."""
    if not subs or any(s is None for s in subs):
        return {}
    arr = np.array(subs)
    index = {sub: np.flatnonzero(arr == sub) for sub in SUBSPLITS}
    return index if all(len(i) for i in index.values()) else {}


def _add_subsplits(splits: dict[str, Split], subs: dict[str, np.ndarray]) -> None:
    for sub in SUBSPLITS:
        if sub in subs:
            splits[sub] = splits["test"].subset(subs[sub])


# --- cache -----------------------------------------------------------------------------------


def _read_cache(path: Path, fingerprint: str) -> FerData | None:
    """The cached data if the file exists, is whole, and matches; else None (then rebuild)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            if meta.get("fingerprint") != fingerprint or meta.get("version") != LOADER_VERSION:
                return None
            splits = {
                name: Split(z[f"{name}_images"], z[f"{name}_labels"], z[f"{name}_names"].tolist())
                for name in SPLITS
            }
            _add_subsplits(splits, {sub: z[f"{sub}_index"] for sub in meta.get("subsplits", [])})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        # truncated, foreign or older-format file: treat as a miss and overwrite it
        return None
    data = FerData(
        Path(meta["source"]),
        meta["format"],
        fingerprint,
        splits,
        [Problem(**p) for p in meta.get("problems", [])],
        from_cache=True,
        summary=meta.get("summary"),
    )
    return data


def _write_cache(path: Path, data: FerData, subs: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "version": LOADER_VERSION,
        "fingerprint": data.fingerprint,
        "format": data.format,
        "source": str(data.source),
        "subsplits": sorted(subs),
        "problems": [p.to_dict() for p in data.problems],
        "summary": data.summary,
    }
    arrays: dict[str, np.ndarray] = {
        "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8),
    }
    for name in SPLITS:
        split = data.splits[name]
        arrays[f"{name}_images"] = split.images
        arrays[f"{name}_labels"] = split.labels
        arrays[f"{name}_names"] = np.array(split.names, dtype=str)
    for sub, index in subs.items():
        arrays[f"{sub}_index"] = index
    atomic_write(path, lambda f: np.savez(f, **arrays))
