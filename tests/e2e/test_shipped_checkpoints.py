"""The weights in checkpoints/ are usable as shipped: they load safely, carry their metadata,
and read a real smiling face (skimage's astronaut) as happy through the live pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_tui.data.index import CLASSES
from fer_tui.live.pipeline import face_transform, realtime_prediction
from fer_tui.models import load_checkpoint
from fer_tui.paths import project_root
from tests.helpers import make_face_video

SHIPPED = sorted((project_root() / "checkpoints").glob("*.pt"))
pytestmark = pytest.mark.skipif(not SHIPPED, reason="no checkpoints/*.pt in this checkout")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_checkpoint_reads_a_smile_as_happy(path: Path, tmp_path: Path) -> None:
    model, meta = load_checkpoint(path, "cpu")
    assert meta["classes"] == list(CLASSES)
    # the last epoch or the EMA chosen on a holdout: never an epoch picked on the test split
    assert meta["selection"].startswith(("last epoch", "EMA of the weights"))
    assert meta["arch"] in path.stem
    video = make_face_video(tmp_path / "astronaut.avi", frames=8)
    results = list(
        realtime_prediction(
            model, face_transform(meta), 0.0, "cpu", str(video), image_size=meta["image_size"]
        )
    )
    faces = [f for r in results for f in r.faces]
    assert len(faces) >= 7
    assert all(f.label == "happy" for f in faces)
    assert min(f.probs[CLASSES.index("happy")] for f in faces) > 0.5
