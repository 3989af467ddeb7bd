"""Fixed synthetic worlds for pictures of the four screens at 120x40.

The snapshot tests (tests/tui/test_snapshots.py) and `tools/screenshots.py` both build their
screens here, so the reviewed SVGs and the README's screenshots show the same thing:

- Dataset: a small Kaggle-layout folder of synthetic faces (PNG, seed 3) with one short class
  and one corrupt file, so the imbalance and the problem list have something to show.
- Training: four hand-written runs (finished, running, stopped, failed) with fixed timestamps.
- Evaluation: three shipped checkpoint files whose reports are already in the evaluation cache,
  computed from fixed synthetic probabilities on FER-2013's test class counts. The figures
  are made up to look like the paper's; they are no model's results.
- Live: a terminal-only preview record of a drawn face, as `fer-tui live --output -` sends it.

`frozen(root)` holds still everything that depends on the clock, the host or the machine
(the data fingerprint, the Training screen's clock, the CPU/GPU line, the display), and works
in the current directory `root`, so the screens show short relative paths.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import numpy as np
from rich.cells import cell_len

from fer_tui.data.index import CLASSES
from fer_tui.tui.app import FerApp, make_app
from tests.helpers import make_folder_dataset, until

SIZE = (120, 40)
"""The terminal every picture is taken at."""
LOADED = 180.0
"""Seconds a picture may wait for its screen: a fresh checkout on two busy cores takes long."""

#: The Training screen's "now": 2026-03-01 11:10:00 UTC, while the resnet34 run is in epoch 8.
NOW = 1_772_363_400.0
#: The run group the Training screen shows (one `--arch all` launch) and an older failed run.
GROUP = "20260301-091500"
#: Shown instead of the machine's CPU/GPU figures.
SYSTEM_LINE = "GPU0 NVIDIA H200 97% · 41.3/139.8 GiB"
#: FER-2013's test split (PublicTest + PrivateTest) per class: 7178 images, as in the paper.
TEST_COUNTS = {
    "angry": 958,
    "disgust": 111,
    "fear": 1024,
    "happy": 1774,
    "neutral": 1233,
    "sad": 1247,
    "surprise": 831,
}
#: arch -> how strongly its made-up probabilities favour the true class: accuracies around the
#: paper's 0.65, some above and some below it, so both colours of the comparison show
EVAL_STRENGTH = {"resnet18": 1.7, "resnet34": 1.72, "resnet50": 1.6}


# --- building -------------------------------------------------------------------------------


def build_dataset(root: Path) -> Path:
    """`root/fer`: 6 train and 2 test faces per class (disgust: 2 train) and a corrupt JPEG."""
    # PNG: lossless, so another OpenCV's JPEG codec cannot change a grey level in the faces
    data = make_folder_dataset(root / "fer", {"train": 6, "test": 2}, seed=3, ext=".png")
    for f in sorted((data / "train" / "disgust").iterdir())[2:]:
        f.unlink()  # an imbalance to draw
    (data / "train" / "sad" / "Training_corrupt.jpg").write_bytes(b"not a jpeg")
    return data


def _event(t: float, kind: str, **fields: Any) -> dict[str, Any]:
    return {"v": 1, "t": t, "type": kind, **fields}


def _start(t: float, arch: str, epochs: int, **fields: Any) -> dict[str, Any]:
    return _event(
        t,
        "start",
        arch=arch,
        recipe="paper",
        epochs=epochs,
        start_epoch=1,
        steps_per_epoch=113,
        precision="bf16",
        env={"device": "cuda"},
        **fields,
    )


def _epochs(t0: float, n: int, total: int, seconds: float, img_per_s: float, lift: float):
    """`n` epoch events of a run learning FER-2013: loss down, accuracy up to ~0.6 + lift."""
    events = []
    best_metric, best_epoch = -1.0, 0
    for e in range(1, n + 1):
        x = e / total
        val_acc = round(0.32 + (0.28 + lift) * (1 - (1 - x) ** 2) + 0.01 * (-1) ** e, 4)
        if val_acc > best_metric:
            best_metric, best_epoch = val_acc, e
        events.append(
            _event(
                t0 + e * seconds,
                "epoch",
                epoch=e,
                epochs=total,
                train_loss=round(1.75 - 1.2 * x + 0.02 * (-1) ** e, 4),
                train_acc=round(0.3 + 0.55 * x, 4),
                val_loss=round(1.7 - 0.62 * x + 0.25 * x * x, 4),
                val_acc=val_acc,
                lr=round(0.1 * (1 - x) ** 2 + 1e-4, 6),
                seconds=seconds,
                train_seconds=seconds - 4.0,
                eval_seconds=4.0,
                img_per_s=img_per_s,
                eta_seconds=seconds * (total - e),
                best_metric=best_metric,
                best_epoch=best_epoch,
            )
        )
    return events


def _write_run(runs: Path, name: str, events: list[dict[str, Any]]) -> Path:
    run = runs / name
    run.mkdir(parents=True)
    with open(run / "events.jsonl", "w") as f:
        for event in events:
            f.write(json.dumps(event) + "\n")
    return run


def build_runs(root: Path) -> Path:
    """`root/runs`: the group GROUP (resnet18 finished, resnet34 running, resnet50 stopped)
    and an older resnet50 run that failed."""
    runs = root / "runs"
    t0 = NOW - 6900.0
    r18 = [_start(t0, "resnet18", 12), *_epochs(t0, 12, 12, 240.0, 2180.0, 0.08)]
    last = r18[-1]
    r18.append(
        _event(
            last["t"] + 1,
            "end",
            epoch=12,
            best_metric=last["best_metric"],
            best_epoch=last["best_epoch"],
        )
    )
    _write_run(runs, f"{GROUP}-resnet18", r18)

    r34 = [_start(t0, "resnet34", 12), *_epochs(t0, 7, 12, 610.0, 1260.0, 0.1)]
    r34.append(
        _event(
            NOW - 60.0,
            "step",
            epoch=8,
            step=7 * 113 + 71,
            step_in_epoch=71,
            steps_per_epoch=113,
            loss=1.02,
            lr=0.0184,
            img_per_s=1262.0,
        )
    )
    run = _write_run(runs, f"{GROUP}-resnet34", r34)
    # alive while the picture is taken: this process holds the lock
    (run / "run.lock").write_text(f"{os.getpid()} fixture-host\n")

    r50 = [_start(t0, "resnet50", 12), *_epochs(t0, 4, 12, 820.0, 910.0, 0.12)]
    r50.append(_event(t0 + 4 * 820.0 + 30, "stopped", epoch=4, reason="SIGTERM"))
    _write_run(runs, f"{GROUP}-resnet50", r50)

    t1 = NOW - 86400.0
    failed = [
        _start(t1, "resnet50", 12),
        _event(
            t1 + 40,
            "error",
            message="CUDA out of memory. Tried to allocate 2.00 GiB",
            traceback="Traceback (most recent call last): ...",
        ),
    ]
    _write_run(runs, "20260228-111000-resnet50", failed)
    return runs


def _made_up_probs(arch: str, labels: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(sorted(EVAL_STRENGTH).index(arch))
    logits = rng.normal(0.0, 1.0, size=(len(labels), len(CLASSES)))
    logits[np.arange(len(labels)), labels] += EVAL_STRENGTH[arch]
    logits[:, CLASSES.index("happy")] += 0.4  # the majority class attracts the doubtful ones
    logits[:, CLASSES.index("disgust")] -= 0.8  # and the rare one is seldom guessed
    e = np.exp(logits - logits.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


def build_evaluations(root: Path, data: Path) -> Path:
    """`root/checkpoints/resnet{18,34,50}.pt` (stand-in files, not loadable) with a cached
    test-split report each, for `data` (the dataset's path as the app is given it)."""
    from fer_tui.evaluation.cache import CACHE_VERSION, cache_put
    from fer_tui.evaluation.metrics import AUC_IN_TABLE, compute_metrics
    from fer_tui.files import file_sha256

    checkpoints = root / "checkpoints"
    checkpoints.mkdir(parents=True)
    labels = np.concatenate(
        [np.full(TEST_COUNTS[name], i, np.int64) for i, name in enumerate(CLASSES)]
    )
    for arch in EVAL_STRENGTH:
        path = checkpoints / f"{arch}.pt"
        path.write_bytes(f"stand-in checkpoint for {arch}\n".encode())
        probs = _made_up_probs(arch, labels)
        report = {
            "model": {
                "arch": arch,
                "checkpoint": f"checkpoints/{arch}.pt",
                "sha256": file_sha256(path),
                "stem": "imagenet",
                "in_channels": 1,
                "recipe": "paper",
                "epoch": 12,
                "best_metric": None,
            },
            "data": {
                "source": str(Path(data).expanduser().resolve()),
                "fingerprint": "0123456789abcdef",
                "split": "test",
                "n": len(labels),
            },
            "tta": "none",
            "engine": "torch",
            "auc_in_table": AUC_IN_TABLE,
            "seconds": 1.0,
            "cache_version": CACHE_VERSION,
            **compute_metrics(labels, probs),
        }
        cache_put(f"fixture-{arch}", report, probs)
    return checkpoints


def drawn_face(w: int = 64, h: int = 48) -> np.ndarray:
    """A w x h uint8 grey picture of a face (head, eyes, brows, smile) on a soft background."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = 70 + 40 * xx / w  # a wall lit from the right
    cx, cy = w / 2, h / 2 + 1

    def ellipse(x0: float, y0: float, rx: float, ry: float) -> np.ndarray:
        return ((xx - x0) / rx) ** 2 + ((yy - y0) / ry) ** 2 <= 1.0

    img[ellipse(cx, cy + h * 0.45, w * 0.32, h * 0.2)] = 50  # shoulders
    img[ellipse(cx, cy, w * 0.2, h * 0.36)] = 190  # head
    img[ellipse(cx, cy - h * 0.3, w * 0.21, h * 0.13) & (yy < cy - h * 0.22)] = 45  # hair
    for side in (-1, 1):
        ex = cx + side * w * 0.085
        img[ellipse(ex, cy - h * 0.07, w * 0.045, h * 0.04)] = 235  # eye white
        img[ellipse(ex, cy - h * 0.07, w * 0.02, h * 0.035)] = 30  # pupil
        img[(abs(xx - ex) <= w * 0.05) & (abs(yy - (cy - h * 0.16)) < 0.6)] = 80  # brow
    img[ellipse(cx, cy + h * 0.04, w * 0.02, h * 0.06)] = 165  # nose
    lips = ellipse(cx, cy + h * 0.12, w * 0.1, h * 0.1)
    inside = ellipse(cx, cy + h * 0.08, w * 0.075, h * 0.09)
    img[lips & ~inside & (yy > cy + h * 0.12)] = 60  # a smile: the lower rim of an ellipse
    return img.clip(0, 255).astype(np.uint8)


def live_face(track_id: int, box: list[int], label: str, confidence: float) -> dict[str, Any]:
    """One face of a live record: `label` at `confidence`, the rest shared by the others."""
    probs = dict.fromkeys(CLASSES, (1 - confidence) / 6)
    probs[label] = confidence
    return dict(track_id=track_id, box=box, label=label, confidence=confidence, probs=probs)


def live_record() -> dict[str, Any]:
    """One `fer-tui live --output -` record with a 64x48 terminal preview and three faces: a
    large happy one and two smaller ones."""
    preview = drawn_face()
    probs = {
        "angry": 0.012,
        "disgust": 0.003,
        "fear": 0.021,
        "happy": 0.874,
        "neutral": 0.052,
        "sad": 0.009,
        "surprise": 0.029,
    }
    return {
        "frame": 1284,
        "fps": 29.7,
        "dropped": 3,
        "frame_size": [640, 480],
        "detector": "yunet",
        "faces": [
            {
                "track_id": 1,
                "box": [220, 110, 200, 220],
                "label": "happy",
                "confidence": probs["happy"],
                "probs": probs,
            },
            live_face(2, [30, 170, 120, 130], "neutral", 0.61),
            live_face(3, [480, 70, 100, 110], "surprise", 0.72),
        ],
        "timings_ms": {"capture": 1.9, "detect": 7.4, "classify": 3.1, "total": 12.6},
        "preview": {
            "w": preview.shape[1],
            "h": preview.shape[0],
            "data": base64.b64encode(preview.tobytes()).decode(),
        },
    }


# --- freezing -------------------------------------------------------------------------------


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@contextlib.contextmanager
def frozen(root: Path) -> Iterator[None]:
    """Work in `root` with its own cache, and hold still what varies by run, clock or host."""
    from fer_tui.data import load

    real_load = load.load_dataset

    def load_dataset(source: Any, **kwargs: Any) -> Any:
        data = real_load(source, **kwargs)
        data.fingerprint = "0123456789abcdef"  # it hashes mtimes, which differ per run
        return data

    clock = SimpleNamespace(time=lambda: NOW, monotonic=time.monotonic)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_cwd(root))
        stack.enter_context(mock.patch.dict(os.environ, {"FER_TUI_CACHE": str(root / "cache")}))
        stack.enter_context(mock.patch.object(load, "load_dataset", load_dataset))
        stack.enter_context(mock.patch("fer_tui.run_tracker.time", clock))
        stack.enter_context(
            mock.patch("fer_tui.tui.widgets.system.system_summary", lambda: SYSTEM_LINE)
        )
        # a display is there (the OpenCV window could open); the picture is terminal-only
        stack.enter_context(mock.patch("fer_tui.tui.screens.live.has_display", lambda: True))
        yield


@contextlib.contextmanager
def world(root: Path) -> Iterator[Callable[[], FerApp]]:
    """Build every fixture under `root` and freeze; yields a factory of apps that see them."""
    root.mkdir(parents=True, exist_ok=True)
    with frozen(root):
        build_dataset(root)
        build_runs(root)
        build_evaluations(root, Path("fer"))

        def app() -> FerApp:
            return make_app(
                data="fer",
                runs_dir="runs",
                checkpoints_dir="checkpoints",
                configs_dir="configs",
                poll_interval=0.05,
                rescan_interval=0.1,
            )

        yield app


# --- showing --------------------------------------------------------------------------------


async def _still(pilot: Any, timeout: float = LOADED) -> None:
    """Wait until two pictures taken 0.1 s apart are the same: on a loaded machine a widget
    may hold new content that it has not laid out yet (a DataTable sizes its columns and
    height for new rows only when it is next idle)."""
    last = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.1)
        picture = pilot.app.export_screenshot()
        if picture == last:
            return
        last = picture
    raise AssertionError(f"the screen kept changing for {timeout:.0f} s")


async def _settled(pilot: Any) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await _still(pilot)


async def show_dataset(pilot: Any) -> None:
    """The Dataset screen once the data has loaded."""
    screen = pilot.app.screen
    await until(
        pilot,
        lambda: screen.has_class("-ready") or screen.has_class("-failed"),
        timeout=LOADED,
        what="the Dataset screen to load the fixture data",
    )
    await _settled(pilot)


def _columns_fit(table: Any) -> bool:
    """Whether each column of a DataTable is as wide as its widest cell (a table widens a column
    for updated cells only when it is next idle)."""
    from rich.cells import cell_len

    def widest(key: Any) -> int:
        return max((cell_len(str(cell)) for cell in table.get_column(key)), default=0)

    return all(column.content_width >= widest(key) for key, column in table.columns.items())


def _rows_drawn_whole(app: Any, table: Any) -> bool:
    """Whether the screen shows every cell of the table uncut: what is drawn, not what the
    table holds (a cell drawn before its column widened could stay cut)."""
    drawn = screen_text(app).splitlines()
    return all(
        any(all(str(cell) in line for cell in table.get_row(key)) for line in drawn)
        for key in table.rows
    )


async def show_training(pilot: Any) -> None:
    """The Training screen once every fixture run is listed and shown in its panel."""
    from fer_tui.tui.widgets.run_list import RunList
    from fer_tui.tui.widgets.run_panel import RunPanel

    await pilot.press("2")
    screen = pilot.app.screen
    table = screen.query_one(RunList)
    await until(
        pilot,
        lambda: (
            len(table.views) == 4
            # laid out: the header and four rows (the table sizes itself when next idle)
            and table.virtual_size.height == 5
            and _columns_fit(table)
            and _rows_drawn_whole(pilot.app, table)
            and all(p.view is not None for p in screen.query(RunPanel))
            and str(screen.query_one("#system").render()) == SYSTEM_LINE
        ),
        timeout=LOADED,
        what="the fixture runs on the Training screen",
    )
    await pilot.pause()
    await _still(pilot)


async def show_evaluation(pilot: Any) -> None:
    """The Evaluation screen with the cached reports of the three checkpoints in Table 1."""
    await pilot.press("3")
    screen = pilot.app.screen
    await until(
        pilot,
        lambda: len(screen.reports) == 3,
        timeout=LOADED,
        what="the cached fixture reports in Table 1",
    )
    await _settled(pilot)


async def show_live(pilot: Any) -> None:
    """The Live screen in terminal-only mode with one preview record shown."""
    from fer_tui.tui.screens.live import LiveScreen, RecordReceived

    await pilot.press("4")
    screen = pilot.app.screen
    assert isinstance(screen, LiveScreen)
    await pilot.press("t")  # terminal-only: the preview is drawn here
    screen.running = True  # as while `fer-tui live` streams: Start greyed, Stop lit
    screen.post_message(RecordReceived(live_record()))
    await until(pilot, lambda: screen.last_record is not None, what="the preview record")
    await pilot.pause()
    await _still(pilot)


def screen_text(app) -> str:
    """The text of the terminal, line by line, as a screenshot shows it."""
    svg = app.export_screenshot()
    pattern = (
        r'<text [^>]*x="([\d.]+)" [^>]*textLength="([\d.]+)" '
        r'clip-path="url\(#[\w-]+-line-(\d+)\)">([^<]*)</text>'
    )
    spans = [
        (float(x), float(length), int(line), html.unescape(text).replace("\xa0", " "))
        for x, length, line, text in re.findall(pattern, svg)
    ]
    cell = next(length / cell_len(text) for _, length, _, text in spans if text.strip())
    rows: dict[int, str] = {}
    for x, _, line, text in spans:
        col = round(x / cell)
        rows[line] = rows.get(line, "").ljust(col) + text
    return "\n".join(rows[line].rstrip() for line in sorted(rows))


#: screen name -> what brings the app to that screen's picture
SHOW: dict[str, Callable[[Any], Awaitable[None]]] = {
    "dataset": show_dataset,
    "training": show_training,
    "evaluation": show_evaluation,
    "live": show_live,
}
