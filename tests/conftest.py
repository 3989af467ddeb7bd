from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import REAL_TARBALL, make_folder_dataset


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Keep the developer's cache, data and runs out of every test."""
    monkeypatch.setenv("FER_TUI_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("FER_TUI_DATA", raising=False)
    monkeypatch.delenv("FER_TUI_RUNS", raising=False)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Kaggle-layout folder: 8 train and 4 test synthetic faces per class."""
    return make_folder_dataset(tmp_path_factory.mktemp("fer-tiny"))


@pytest.fixture(scope="session")
def real_tarball() -> Path:
    if not REAL_TARBALL.exists():
        pytest.skip(f"real FER-2013 not found at {REAL_TARBALL}")
    return REAL_TARBALL
