"""End-to-end speed of the live pipeline on CPU, against a naive pipeline in the same run.

    python3 benchmarks/live_fps.py [--frames 300] [--threads 2] [--json OUT.json] [--model PATH]

The input is a 640x480 MJPG video of `skimage.data.astronaut()` (a real photo with a real
face) sliding across the frame. The model is ResNet18 with the cifar stem (the scratch
recipe's model) with random weights: the label does not matter for timing.

Measured, each on the same video:
- naive: read a frame, full-resolution Haar every frame, one face at a time through fp32
  PyTorch (no channels_last, no inference_mode), no threads;
- fer-tui, file mode: every frame processed, in order, as fast as possible (throughput);
- fer-tui, camera mode: the file is paced at 30 FPS by the capture thread, which hands on only
  the newest frame (a 30 FPS webcam); reports frames dropped and the latency from a frame's
  capture to its result;
- the same with `classify_every=2`, with the onnxruntime backend (the CLI's default on a CPU),
  with the model statically quantized to int8 (`fer-tui export --format onnx-int8`, here
  calibrated on random faces, which is fine for timing), and with ResNet18's 'compact' stem (a
  3x3 stride-2 first conv, about 4x fewer FLOPs);
- every `--model PATH` (a trained checkpoint or an exported .onnx), file and camera.

With `--faces 1,4` (default) it also times the live view's default model (what `fer-tui live` runs
without --checkpoint, else the random ResNet18; `--model` replaces it) on two more clips made from
a real photograph: the astronaut's head (150 px) once, and four times in a 2x2 grid, each copy
drifting on its own, in a 640x480 frame: file mode (throughput, and each frame's own latency) and
camera mode, with each detector. The faces a frame classifies go through the model in one batch;
with more faces than fit in `classify_budget_ms`, they take turns: `renewed` is the share of a
frame's faces classified in that frame (1.00: every face, every frame; 0.25: each face every 4th).
`--faces-only` skips the comparison above.

"Latency" of a frame = the wall time from the end of its decode to its result; per-stage
costs are the means of the per-frame timings (the Haar cascade's own cost is reported
separately: with the default `detect_async` it runs in a background thread).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

# as `fer-tui live` does (see commands/live.py), before torch loads OpenMP; both pipelines get it
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_tui.backends import load_model, pick_backend  # noqa: E402
from fer_tui.checkpoints import find_checkpoint  # noqa: E402
from fer_tui.live.config import LiveConfig  # noqa: E402
from fer_tui.live.detection import CASCADE  # noqa: E402
from fer_tui.live.pipeline import face_transform, realtime_prediction  # noqa: E402
from fer_tui.models import build_model, model_meta, save_checkpoint  # noqa: E402
from fer_tui.preprocess import to_input  # noqa: E402
from tests.helpers import make_face_video  # noqa: E402

WARMUP = 10


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def naive(video: Path, model: torch.nn.Module, frames: int) -> dict:
    """Full-resolution Haar every frame, faces one at a time, fp32 torch, single thread."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
    cap = cv2.VideoCapture(str(video))
    stages: dict[str, list[float]] = {"capture": [], "detect": [], "classify": [], "total": []}
    faces_found = n = 0
    while n < frames:
        t0 = time.perf_counter()
        ok, img = cap.read()
        if not ok:
            break
        t1 = time.perf_counter()
        grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        boxes = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(48, 48))
        t2 = time.perf_counter()
        for x, y, w, h in boxes:
            crop = cv2.resize(grey[y : y + h, x : x + w], (48, 48))
            with torch.no_grad():
                model(to_input(torch.from_numpy(crop)[None])).softmax(1)
        t3 = time.perf_counter()
        faces_found += len(boxes) > 0
        if n >= WARMUP:
            for k, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
                stages[k].append(v * 1000)
        n += 1
    cap.release()
    total = stages["total"]
    return {
        "name": "naive",
        "frames": n,
        "with_face": faces_found,
        "fps": 1000 * len(total) / sum(total),
        "latency_p50_ms": pct(total, 50),
        "latency_p95_ms": pct(total, 95),
        "stages_ms": {k: float(np.mean(v)) for k, v in stages.items()},
        "dropped": 0,
    }


def int8_onnx(ckpt: Path, out: Path) -> Path:
    """The checkpoint statically quantized to int8 (`fer-tui export --format onnx-int8`), but
    calibrated on random faces: fine for timing, not for accuracy (that needs real faces)."""
    from fer_tui.export import export_onnx_int8
    from fer_tui.models import load_checkpoint

    model, meta = load_checkpoint(ckpt, "cpu")
    rng = np.random.default_rng(0)
    return export_onnx_int8(model, meta, out, rng.integers(0, 256, (64, 48, 48), np.uint8))


def ours(
    name: str,
    video: Path,
    ckpt: Path,
    frames: int,
    *,
    cfg: LiveConfig,
    backend: str = "torch",
    realtime: bool = False,
    threads: int | None = None,
) -> dict:
    model, meta, device = load_model(
        ckpt, backend=backend, device="cpu", threads=threads, channels_last=True
    )
    transform = face_transform(meta, channels_last=backend == "torch")
    gen = realtime_prediction(
        model, transform, 0.5, device, str(video), config=cfg, realtime=realtime, max_frames=frames
    )
    stages: dict[str, list[float]] = {"capture": [], "detect": [], "classify": [], "total": []}
    latency: list[float] = []
    haar: list[float] = []
    done = with_face = faces = classified = 0
    start = last = None
    result = None
    for result in gen:
        now = time.time()
        done += 1
        with_face += bool(result.faces)
        faces += len(result.faces)
        classified += sum(f.classified for f in result.faces)
        if result.haar_ms is not None:
            haar.append(result.haar_ms)
        if done <= WARMUP:
            start = time.perf_counter()
            continue
        for k in stages:
            stages[k].append(result.timings[k])
        # capture -> result, queueing included (what a viewer of a camera would feel)
        latency.append((now - result.timestamp) * 1000 if realtime else result.timings["total"])
        last = time.perf_counter()
    counted = done - WARMUP
    fps = counted / (last - start) if last and start and last > start else float("nan")
    return {
        "name": name,
        "frames": done,
        "with_face": with_face,
        "faces_per_frame": faces / max(done, 1),
        # how often each face's probabilities are renewed: every frame = 1.0
        "classified_share": classified / max(faces, 1),
        "fps": fps,
        "latency_p50_ms": pct(latency, 50),
        "latency_p95_ms": pct(latency, 95),
        "stages_ms": {k: float(np.mean(v)) if v else float("nan") for k, v in stages.items()},
        "stages_p95_ms": {k: pct(v, 95) for k, v in stages.items()},
        "haar_ms": float(np.mean(haar)) if haar else None,
        "dropped": result.dropped if result else 0,
    }


def make_faces_video(path: Path, faces: int, frames: int) -> Path:
    """A 640x480 MJPG video of the astronaut's head (150 px, from skimage's photograph) `faces`
    times (1 or 4: a 2x2 grid), each copy drifting on its own over a grey background."""
    from skimage.data import astronaut

    head = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)[0:260, 120:380]
    tile = cv2.resize(head, (150, 150), interpolation=cv2.INTER_AREA)
    spots = [(60, 50), (380, 60), (70, 280), (390, 270)][:faces]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    for i in range(frames):
        img = np.full((480, 640, 3), 96, np.uint8)
        for k, (x, y) in enumerate(spots):
            dx = round(30 * np.sin(i / 20 + k))
            dy = round(15 * np.cos(i / 25 + 2 * k))
            img[y + dy : y + dy + 150, x + dx : x + dx + 150] = tile
        writer.write(img)
    writer.release()
    return path


def multi_face(args: argparse.Namespace, tmp: Path, fallback: Path) -> list[dict]:
    """The shipped live model (or --model), default backend, on the 1- and 4-face clips, with
    each detector, file and camera mode."""
    shipped = find_checkpoint(Path(__file__).resolve().parents[1] / "checkpoints")
    models = args.model or [shipped or fallback]
    runs = []
    for n in args.faces:
        clip = make_faces_video(tmp / f"faces{n}.avi", n, args.frames)
        for model in models:
            backend = pick_backend("auto", "cpu", model)
            for detector in ("haar", "yunet"):
                cfg = replace(LiveConfig(), detector=detector)
                for realtime in (False, True):
                    name = f"{n} face{'s' if n > 1 else ''}, {detector}, " + (
                        "camera@30" if realtime else "file"
                    )
                    r = ours(
                        name,
                        clip,
                        model,
                        args.frames,
                        cfg=cfg,
                        backend=backend,
                        realtime=realtime,
                        threads=args.threads,
                    )
                    r.update(faces=n, detector=detector, model=model.name, backend=backend)
                    runs.append(r)
    return runs


def one_face_ms(model: torch.nn.Module, n: int = 30) -> float:
    x = torch.randn(1, 1, 48, 48).contiguous(memory_format=torch.channels_last)
    m = model.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        for _ in range(5):
            m(x)
        t = time.perf_counter()
        for _ in range(n):
            m(x)
    return (time.perf_counter() - t) / n * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--naive-frames", type=int, default=120)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    ap.add_argument(
        "--model",
        action="append",
        default=[],
        type=Path,
        help="also time this checkpoint or exported .onnx (e.g. a shipped one in "
        "checkpoints/), file and camera, default backend; on the 1- and 4-face clips it "
        "replaces the live default",
    )
    ap.add_argument(
        "--faces",
        default="1,4",
        type=lambda text: [int(v) for v in text.split(",") if v],
        help="face counts of the multi-face clips (1 and/or 4; empty: none)",
    )
    ap.add_argument(
        "--faces-only", action="store_true", help="only the multi-face clips (skip the rest)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="fer-live-bench-"))
    video = make_face_video(tmp / "astronaut.avi", frames=args.frames, face_side=360, step=1)
    torch.manual_seed(0)
    model = build_model("resnet18", stem="cifar").eval()
    ckpt = tmp / "resnet18.pt"
    save_checkpoint(ckpt, model, model_meta("resnet18"))
    print(
        f"video: {video} ({args.frames} frames 640x480 MJPG), ResNet18 cifar stem, "
        f"torch {torch.__version__}, {args.threads} threads",
        file=sys.stderr,
    )
    print(
        f"one 48x48 face through ResNet18 (cifar stem): {one_face_ms(model):.1f} ms",
        file=sys.stderr,
    )

    if args.faces_only:
        runs = multi_face(args, tmp, ckpt)
        _table(runs)
        if args.json:
            Path(args.json).write_text(json.dumps(runs, indent=2))
        return 0

    base = LiveConfig()
    runs = [naive(video, model, args.naive_frames)]
    runs.append(ours("fer-tui file", video, ckpt, args.frames, cfg=base))
    runs.append(ours("fer-tui camera@30", video, ckpt, args.frames, cfg=base, realtime=True))
    every2 = replace(base, classify_every=2)
    runs.append(ours("fer-tui file, classify/2", video, ckpt, args.frames, cfg=every2))
    runs.append(
        ours("fer-tui camera@30, classify/2", video, ckpt, args.frames, cfg=every2, realtime=True)
    )
    runs.append(
        ours(
            "fer-tui file, onnxruntime",
            video,
            ckpt,
            args.frames,
            cfg=base,
            backend="onnxruntime",
            threads=args.threads,
        )
    )
    # what `fer-tui live --source 0` runs on a CPU: backend auto = onnxruntime, fp32, every frame
    runs.append(
        ours(
            "fer-tui camera@30, onnxruntime",
            video,
            ckpt,
            args.frames,
            cfg=base,
            backend="onnxruntime",
            threads=args.threads,
            realtime=True,
        )
    )
    q8 = int8_onnx(ckpt, tmp / "resnet18-int8.onnx")
    runs.append(
        ours(
            "fer-tui file, onnx-int8",
            video,
            q8,
            args.frames,
            cfg=base,
            backend="onnxruntime",
            threads=args.threads,
        )
    )
    runs.append(
        ours(
            "fer-tui camera@30, onnx-int8",
            video,
            q8,
            args.frames,
            cfg=base,
            backend="onnxruntime",
            threads=args.threads,
            realtime=True,
        )
    )
    # the same ResNet18 with the 'compact' stem (3x3/2 first conv: 24x24 into layer1)
    compact = tmp / "resnet18-compact.pt"
    save_checkpoint(
        compact,
        build_model("resnet18", stem="compact").eval(),
        model_meta("resnet18", stem="compact"),
    )
    runs.append(ours("fer-tui file, compact stem", video, compact, args.frames, cfg=base))
    runs.append(
        ours(
            "fer-tui camera@30, compact stem", video, compact, args.frames, cfg=base, realtime=True
        )
    )
    for extra in args.model:
        backend = pick_backend("auto", "cpu", extra)
        for realtime in (False, True):
            runs.append(
                ours(
                    f"{extra.name[:18]}, {'camera@30' if realtime else 'file'}",
                    video,
                    extra,
                    args.frames,
                    cfg=base,
                    backend=backend,
                    realtime=realtime,
                    threads=args.threads,
                )
            )

    multi = multi_face(args, tmp, ckpt) if args.faces else []
    _table(runs + multi)
    naive_fps = runs[0]["fps"]
    by_name = {r["name"]: r for r in runs}
    print(
        "speed-up over naive (file mode, every frame classified): "
        f"{by_name['fer-tui file, onnxruntime']['fps'] / naive_fps:.2f}x with the CLI's "
        f"default on a CPU (onnxruntime), {runs[1]['fps'] / naive_fps:.2f}x with torch; "
        f"onnx-int8: {by_name['fer-tui file, onnx-int8']['fps'] / naive_fps:.2f}x"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(runs + multi, indent=2))
    return 0


def _table(runs: list[dict]) -> None:
    head = (
        f"{'pipeline':32} {'fps':>6} {'p50 ms':>7} {'p95 ms':>7} {'capture':>8} "
        f"{'detect':>7} {'classify':>8} {'haar':>6} {'faces':>7} {'per fr':>6} {'renewed':>7} "
        f"{'dropped':>7}"
    )
    print(head)
    for r in runs:
        s = r["stages_ms"]
        haar = r.get("haar_ms")
        print(
            f"{r['name']:32} {r['fps']:6.1f} {r['latency_p50_ms']:7.1f} "
            f"{r['latency_p95_ms']:7.1f} {s['capture']:8.1f} {s['detect']:7.1f} "
            f"{s['classify']:8.1f} {(haar if haar is not None else s['detect']):6.1f} "
            f"{r['with_face']:>3}/{r['frames']:<3} {r.get('faces_per_frame', float('nan')):6.2f} "
            f"{r.get('classified_share', float('nan')):7.2f} {r['dropped']:7d}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
