"""Render the four screens at 120x40 to docs/screenshots/{dataset,training,evaluation,live}.svg.

    python3 tools/screenshots.py              # all four
    python3 tools/screenshots.py live         # one or more by name
    python3 tools/screenshots.py --out DIR    # somewhere else

Each screen is shown on the same fixed synthetic world as its snapshot test
(tests/tui/screen_fixtures.py, built afresh in a temporary folder for each screen): synthetic
faces, hand-written runs, and cached evaluation reports whose figures are made up. So a
screenshot changes only when the screen does, and then its snapshot test fails too; update
both (`pytest tests/tui/test_snapshots.py --snapshot-update`). Runs from a checkout (the
fixtures live in tests/) with fer-tui's own dependencies: no pytest, torch, data or GPU.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout: the fixtures live in tests/, beside fer_tui

from tests.tui.screen_fixtures import SHOW, SIZE, world  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


async def _shoot(name: str, out: Path) -> Path:
    with (
        tempfile.TemporaryDirectory(prefix=f"fer-tui-{name}-") as tmp,
        world(Path(tmp) / "world") as make_app,
    ):
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await SHOW[name](pilot)
            return Path(app.save_screenshot(f"{name}.svg", path=str(out)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("screens", nargs="*", metavar="SCREEN", help=f"of {', '.join(SHOW)}")
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder (default: {OUT})")
    args = parser.parse_args(argv)
    unknown = [s for s in args.screens if s not in SHOW]
    if unknown:
        parser.error(f"no screen {', '.join(unknown)}: use {', '.join(SHOW)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.screens or list(SHOW):
        print(asyncio.run(_shoot(name, args.out.resolve())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
