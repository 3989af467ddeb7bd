"""benchmarks/live_accuracy.py: rendering, matching, and a run of it on synthetic and real faces."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import REAL_TARBALL, make_tiny_checkpoint

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "live_accuracy.py"
# read before the autouse fixture clears it: a developer's unpacked FER-2013
REAL_DATA = [REAL_TARBALL, REAL_TARBALL.with_name("fer2013")] + (
    [Path(os.environ["FER_TUI_DATA"]).expanduser()] if os.environ.get("FER_TUI_DATA") else []
)
FIELDS = {
    "frames",
    "faces",
    "found",
    "acc_all",
    "acc_found",
    "acc_direct",
    "acc_direct_found",
    "ratio",
    "extra_per_frame",
    "box_dx",
    "box_dy",
    "box_w",
    "box_h",
    "fps",
    "cpu_ms",
    "latency_p50_ms",
    "latency_p95_ms",
}


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("live_accuracy", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def run_bench(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "out.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--threads", "1", "--json", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=580,  # under pytest's own limit: on a busy CPU the imports alone take minutes
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| condition | faces | found % |" in proc.stdout
    return json.loads(out.read_text())


def test_a_detection_finds_a_face_when_each_box_holds_the_others_centre(bench) -> None:
    true = np.array([100, 100, 100, 100], np.float32)
    assert bench.matches((110, 95, 90, 110), true)
    assert not bench.matches((160, 160, 100, 100), true)  # true centre outside it
    assert not bench.matches((0, 0, 500, 500), true)  # holds the face, centre far off


def test_conditions_and_groups_expand_once_in_order(bench) -> None:
    assert bench.pick_conditions("size-96,size,rot+30") == [
        "size-96",
        "size-64",
        "size-144",
        "size-192",
        "size-288",
        "rot+30",
    ]
    assert len(bench.pick_conditions("all")) == len(bench.CONDITIONS)
    with pytest.raises(SystemExit, match="unknown condition"):
        bench.pick_conditions("size-1000")


def test_rendered_faces_sit_where_their_boxes_say(bench, tmp_path: Path) -> None:
    """The pasted face differs from the background inside its true box only; a face cut by the
    frame's edge keeps the part of its box inside the frame."""
    faces = np.full((6, 48, 48), 255, np.uint8)
    for name in ("faces-6", "edge-cut"):
        cond = replace(bench.CONDITIONS[name], background="grey")
        r = bench.render(name, cond, faces, tmp_path, [], 0.0, 0.0, 0)
        first = cv2.imread(str(sorted(r.folder.iterdir())[0]), cv2.IMREAD_GRAYSCALE)
        assert first.shape == (bench.FRAME_H, bench.FRAME_W)
        mask = np.zeros_like(first, bool)
        for box, _ in r.truths[0]:
            x, y, w, h = (int(round(v)) for v in box)
            assert x >= 0 and y >= 0 and x + w <= bench.FRAME_W and y + h <= bench.FRAME_H
            assert first[y + 2 : y + h - 2, x + 2 : x + w - 2].min() == 255
            mask[max(0, y - 2) : y + h + 2, max(0, x - 2) : x + w + 2] = True
        assert first[~mask].max() < 255
        if name == "edge-cut":
            box = r.truths[0][0][0]
            assert min(box[2], box[3]) == pytest.approx(0.75 * 192, abs=1)


def test_smoke_run_on_synthetic_faces_reports_every_field(tmp_path: Path) -> None:
    """--smoke needs no dataset: a few synthetic faces through the live pipeline, every field
    of every condition filled in, the Haar cascade finding the upright faces."""
    ckpt = make_tiny_checkpoint(tmp_path / "tiny.pt")
    report = run_bench(
        tmp_path,
        "--smoke",
        "--faces",
        "2",
        "--model",
        str(ckpt),
        "--backend",
        "torch",
        "--live-frames",
        "4",
    )
    assert report["split"] == "synthetic" and report["faces_per_condition"] == 2
    (run,) = report["runs"]
    assert set(run["conditions"]) == {"size-192", "rot+15", "faces-2"}
    for row in run["conditions"].values():
        assert FIELDS <= set(row)
        assert row["faces"] == 2 and 0.0 <= row["acc_all"] <= row["found"] <= 1.0
    assert run["conditions"]["size-192"]["found"] == 1.0
    assert run["live_mode"]["frames"] == 4 and run["live_mode"]["fps"] > 0


@pytest.mark.slow
@pytest.mark.realdata
def test_real_test_faces_are_found_and_classified(tmp_path: Path) -> None:
    """Real test faces at 192 px on grey: nearly all are found, and the live path classifies
    them about as well as the model does when handed the faces directly."""
    data = next((p for p in REAL_DATA if p.exists()), None)
    if data is None:
        pytest.skip(f"real FER-2013 not found at {', '.join(map(str, REAL_DATA))}")
    report = run_bench(
        tmp_path,
        "--data",
        str(data),
        "--faces",
        "40",
        "--conditions",
        "size-192",
        "--live-frames",
        "0",
        "--backend",
        "torch",
    )
    row = report["runs"][0]["conditions"]["size-192"]
    assert FIELDS <= set(row)
    assert row["found"] >= 0.9
    assert row["acc_direct"] >= 0.4 and row["acc_all"] >= 0.85 * row["acc_direct"]
