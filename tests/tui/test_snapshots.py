"""Pictures of the four screens at 120x40 on fixed synthetic data, compared with the reviewed
SVGs in __snapshots__/ (`pytest --snapshot-update` rewrites them; look at them before you
commit). The worlds they show are built in screen_fixtures, which tools/screenshots.py uses
for the README's screenshots.
"""

from __future__ import annotations

from pathlib import Path

from tests.tui.screen_fixtures import (
    SIZE,
    show_dataset,
    show_evaluation,
    show_live,
    show_training,
    world,
)


def test_snapshot_of_the_dataset_screen(tmp_path: Path, snap_compare) -> None:
    """The Dataset screen: per-class bars with the short disgust class, the statistics, two
    rows of sample faces and the corrupt file in the problem list."""
    with world(tmp_path / "world") as make_app:
        assert snap_compare(make_app(), terminal_size=SIZE, run_before=show_dataset)


def test_snapshot_of_the_training_screen(tmp_path: Path, snap_compare) -> None:
    """The Training screen: four runs (stopped, running, finished, failed) in the run list,
    and each arch's newest run in its panel with progress, ETA, speed and curves."""
    with world(tmp_path / "world") as make_app:
        assert snap_compare(make_app(), terminal_size=SIZE, run_before=show_training)


def test_snapshot_of_the_evaluation_screen(tmp_path: Path, snap_compare) -> None:
    """The Evaluation screen: Table 1 for three models with the paper's rows and deltas and
    their mean, every column visible beside the checkpoint list."""
    with world(tmp_path / "world") as make_app:
        assert snap_compare(make_app(), terminal_size=SIZE, run_before=show_evaluation)


def test_snapshot_of_the_live_screen(tmp_path: Path, snap_compare) -> None:
    """The Live screen in terminal-only mode: the preview with the faces' boxes, the largest
    face's label in block letters and seven probability bars, the timings, and every face in
    the list, largest first."""
    with world(tmp_path / "world") as make_app:
        assert snap_compare(make_app(), terminal_size=SIZE, run_before=show_live)
