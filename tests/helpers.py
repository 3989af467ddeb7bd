"""Synthetic FER-2013 look-alikes for the unit tests (the real data is never needed here), and
the one way tests wait for something to happen."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from fer_tui.data.index import CLASSES

REAL_TARBALL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013.tar.gz"

T = TypeVar("T")


# --- waiting ------------------------------------------------------------------------------


def _poll(predicate: Callable[[], T], deadline: float, timeout: float, what: str) -> T:
    value = predicate()
    if not value and time.monotonic() > deadline:
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
    return value


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "the condition",
) -> T:
    """Call `predicate` every `interval` seconds until it returns something truthy, and return
    that; an AssertionError naming `what` after `timeout` seconds. A predicate may itself
    assert (e.g. that the process it waits on is still alive)."""
    deadline = time.monotonic() + timeout
    while not (value := _poll(predicate, deadline, timeout, what)):
        time.sleep(interval)
    return value


async def until(
    pilot: Any,
    predicate: Callable[[], T],
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "the screen",
) -> T:
    """`wait_until` inside a Textual test: the app runs (`pilot.pause`) between the checks."""
    deadline = time.monotonic() + timeout
    while not (value := _poll(predicate, deadline, timeout, what)):
        await pilot.pause(interval)
    return value


# --- data ---------------------------------------------------------------------------------


def synthetic_faces(n: int, label: int, seed: int = 0, size: int = 48) -> np.ndarray:
    """`n` uint8 (size, size) images whose pattern depends on `label`, so a model can learn it."""
    rng = np.random.default_rng(seed * 1000 + label)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = 0.5 + 0.4 * np.sin(2 * np.pi * ((label + 1) * xx + (label % 3) * yy))
    noise = rng.normal(0, 0.08, size=(n, size, size))
    return np.clip((base[None] + noise) * 255, 0, 255).astype(np.uint8)


def make_folder_dataset(
    root: Path, per_class: dict[str, int] | None = None, seed: int = 0, ext: str = ".jpg"
) -> Path:
    """Write `root/{train,test}/<class>/<Split>_<i>.jpg` in the Kaggle layout; return root."""
    import cv2

    per_class = per_class or {"train": 8, "test": 4}
    prefix = {"train": "Training", "test": "PublicTest"}
    for split, n in per_class.items():
        for label, cls in enumerate(CLASSES):
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i, img in enumerate(synthetic_faces(n, label, seed + (split == "test"))):
                name = prefix.get(split, split)
                if split == "test" and i % 2:
                    name = "PrivateTest"
                cv2.imwrite(str(folder / f"{name}_{label}{i:05d}{ext}"), img)
    return root


def make_tiny_checkpoint(
    path: Path,
    arch: str = "resnet18",
    steps: int = 0,
    data: Path | None = None,
    classes: tuple[str, ...] | None = None,
    seed: int = 0,
) -> Path:
    """A real fer-tui checkpoint that is quick to run: `arch` with the ImageNet stem on one
    channel (48x48 -> 12x12 before layer1), random weights, then `steps` SGD steps on the
    train split of `data` (a Kaggle-layout folder) when given. `classes` overrides the class
    list in the metadata (to test the class-set check)."""
    import torch

    from fer_tui.models import build_model, model_meta, save_checkpoint

    torch.manual_seed(seed)
    model = build_model(arch, stem="imagenet", in_channels=1)
    if steps and data is not None:
        from fer_tui.data.load import load_dataset
        from fer_tui.preprocess import to_input

        train = load_dataset(data).splits["train"]
        x = to_input(torch.as_tensor(train.images))
        y = torch.as_tensor(train.labels)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        model.train()
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    meta = model_meta(arch, stem="imagenet", in_channels=1, epoch=steps)
    if classes is not None:
        meta["classes"] = list(classes)
        meta["num_classes"] = len(classes)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, model.eval(), meta)
    return path


def make_face_video(
    path: Path,
    frames: int = 24,
    size: tuple[int, int] = (640, 480),
    fps: float = 30.0,
    face: bool = True,
    face_side: int = 360,
    step: int = 4,
) -> Path:
    """An MJPG video of `skimage.data.astronaut()` (a real photo with one frontal face),
    `face_side` pixels square, sliding `step` px right per frame over a grey background; with
    face=False a smooth gradient with no face in it."""
    import cv2

    w, h = size
    base = np.full((h, w, 3), 96, np.uint8)
    if face:
        from skimage.data import astronaut

        photo = cv2.resize(cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR), (face_side, face_side))
    else:
        base[:] = np.linspace(40, 200, w, dtype=np.uint8)[None, :, None]
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for i in range(frames):
        img = base.copy()
        if face:
            x = (i * step) % max(1, w - face_side)
            y = (h - face_side) // 2
            img[y : y + face_side, x : x + face_side] = photo
        writer.write(img)
    writer.release()
    return path
