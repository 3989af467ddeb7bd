"""The decoded cache: hit, miss, rebuild on change, atomic and never fatal."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_tui.data import load
from fer_tui.data.load import LoadCancelled, cache_path, load_dataset
from tests.data_builders import make_tar
from tests.helpers import make_folder_dataset, synthetic_faces


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_folder_dataset(tmp_path / "fer", {"train": 3, "test": 2})


def test_second_load_comes_from_the_cache(folder: Path) -> None:
    """The first load decodes and writes the cache; the second reads it, with equal arrays."""
    calls: list[tuple[int, int]] = []
    first = load_dataset(folder, progress=lambda d, t: calls.append((d, t)))
    assert not first.from_cache and cache_path(folder).is_file()
    assert calls and calls[-1] == (35, 35)  # images decoded, out of all of them
    calls.clear()
    second = load_dataset(folder, progress=lambda d, t: calls.append((d, t)))
    assert second.from_cache and calls == []
    assert second.fingerprint == first.fingerprint
    for name in first.splits:
        assert np.array_equal(first.splits[name].images, second.splits[name].images)
        assert first.splits[name].names == second.splits[name].names
    assert second.problems == first.problems
    assert list(second.splits) == list(first.splits)


def test_changed_folder_rebuilds_the_cache_in_place(folder: Path) -> None:
    """Adding an image changes the fingerprint; the cache is rebuilt, still one file."""
    first = load_dataset(folder)
    cv2.imwrite(str(folder / "train" / "happy" / "Training_new.jpg"), synthetic_faces(1, 3)[0])
    second = load_dataset(folder)
    assert not second.from_cache and second.fingerprint != first.fingerprint
    assert second.splits["train"].counts()["happy"] == 4
    assert load_dataset(folder).from_cache
    assert len(list(cache_path(folder).parent.glob("data-*.npz"))) == 1


def test_touched_archive_rebuilds_the_cache(folder: Path, tmp_path: Path) -> None:
    """A file source is keyed by size and mtime: a newer download is decoded again."""
    tar = make_tar(folder, tmp_path / "fer.tar.gz")
    calls: list[tuple[int, int]] = []
    assert not load_dataset(tar, progress=lambda d, t: calls.append((d, t))).from_cache
    # a stream's image count is unknown up front: its progress is in bytes of the file
    assert calls[-1] == (tar.stat().st_size, tar.stat().st_size)
    assert load_dataset(tar).from_cache
    st = tar.stat()
    os.utime(tar, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert not load_dataset(tar).from_cache


def test_no_cache_writes_nothing(folder: Path) -> None:
    """cache=False decodes and leaves the cache dir untouched."""
    assert not load_dataset(folder, cache=False).from_cache
    assert not cache_path(folder).exists()


def test_corrupt_cache_is_rebuilt(folder: Path) -> None:
    """A truncated cache file (a crash elsewhere, a full disk) is a miss, then replaced."""
    load_dataset(folder)
    path = cache_path(folder)
    path.write_bytes(path.read_bytes()[:1000])
    data = load_dataset(folder)
    assert not data.from_cache and len(data.splits["train"]) == 21
    assert load_dataset(folder).from_cache


def test_unwritable_cache_is_a_problem_not_an_error(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the cache cannot be written the data still loads, with the reason listed."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("FER_TUI_CACHE", str(blocker / "cache"))
    data = load_dataset(folder)
    assert len(data.splits["train"]) == 21
    assert [p.kind for p in data.problems] == ["cache_not_written"]
    assert "FER_TUI_CACHE" in data.problems[0].message


def test_cache_leaves_no_temp_files(folder: Path) -> None:
    """The atomic write leaves only the final cache file behind."""
    load_dataset(folder)
    assert [p.name for p in cache_path(folder).parent.iterdir()] == [cache_path(folder).name]


def test_cancelled_load_stops_and_caches_nothing(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancel (the TUI quitting mid-decode) stops decoding early and writes no cache."""
    monkeypatch.setattr(load, "_BATCH", 4)
    polls: list[int] = []

    def cancelled() -> bool:
        polls.append(1)
        return len(polls) >= 2

    with pytest.raises(LoadCancelled):
        load_dataset(folder, cancelled=cancelled)
    assert len(polls) == 2 and not cache_path(folder).exists()


def test_statistics_from_the_cache_equal_fresh_ones(folder: Path) -> None:
    """Pixel statistics and duplicate counts cached at decode time match a fresh computation."""
    from fer_tui.data.stats import dataset_stats

    fresh = dataset_stats(load_dataset(folder, cache=False))
    load_dataset(folder)
    cached = load_dataset(folder)
    assert cached.from_cache and cached.summary is not None
    assert dataset_stats(cached) == fresh
    cached.summary = None  # recomputed from the arrays
    assert dataset_stats(cached) == fresh
