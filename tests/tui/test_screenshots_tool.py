"""tools/screenshots.py: the README's pictures of the four screens."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_docs_screenshots_are_what_the_tool_renders_now(tmp_path: Path) -> None:
    """`python3 tools/screenshots.py` writes the four SVGs, byte for byte the ones committed
    in docs/screenshots/ (rerun it when a screen changes, as for the snapshots)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "screenshots.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    names = ["dataset", "training", "evaluation", "live"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.svg" for n in names)
    for name in names:
        ours = (tmp_path / f"{name}.svg").read_bytes()
        assert ours == (ROOT / "docs" / "screenshots" / f"{name}.svg").read_bytes(), name
