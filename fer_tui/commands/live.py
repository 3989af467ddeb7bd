"""`fer-tui live`: webcam/video -> faces -> expressions, in an OpenCV window and/or a file.

Per frame one record: JSONL (`--output x.jsonl`, or `-` for stdout, flushed per line: the Live
screen reads that), or CSV with one row per face (a frame with no face still gets a row).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

from fer_tui.backends import BACKENDS
from fer_tui.checkpoints import DEFAULT_CHECKPOINTS, find_checkpoint
from fer_tui.errors import ConfigError, FerError, LiveError
from fer_tui.live.config import DETECTORS, LiveConfig
from fer_tui.progress import ProgressBar

#: The shipped models live runs without --checkpoint, in the order it looks for them.
_DEFAULTS = ", ".join(f"checkpoints/{name}" for name in DEFAULT_CHECKPOINTS)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH like 64x36, got {text!r}") from None
    if not (4 <= w <= 320 and 4 <= h <= 240):
        raise argparse.ArgumentTypeError("preview size must be between 4x4 and 320x240")
    return w, h


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        default="0",
        help="camera index, video file, folder of images or rtsp/http URL "
        "(default: 0, the first webcam)",
    )
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="model checkpoint, or an .onnx from `fer-tui export` (default: the first of "
        + _DEFAULTS
        + " that exists, the live-size models first; else the final weights of the newest "
        "finished run)",
    )
    parser.add_argument(
        "--no-window",
        action="store_true",
        help="no OpenCV window (headless: servers, SSH, the Live screen)",
    )
    parser.add_argument(
        "--output",
        default=None,
        help="write one record per frame: OUT.jsonl, OUT.csv, or - for JSONL on stdout",
    )
    parser.add_argument(
        "--max-frames", type=_positive, default=None, help="stop after this many frames"
    )
    parser.add_argument(
        "--backend",
        choices=("auto", *BACKENDS),
        default="auto",
        help="inference backend; auto = onnxruntime on the CPU when the [onnx] "
        "extra is installed (the model is exported to the cache dir on first "
        "use), else torch",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument(
        "--every",
        type=_positive,
        default=None,
        help="run face detection every N frames, tracking in between (default: 5)",
    )
    parser.add_argument(
        "--classify-every",
        type=_positive,
        default=None,
        help="classify each face every N frames (default: 1)",
    )
    parser.add_argument(
        "--hold",
        type=float,
        default=0.5,
        help="seconds a shown label stays before it may change (default: 0.5)",
    )
    parser.add_argument(
        "--realtime",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="--realtime plays a file at its frame rate and drops frames like "
        "a camera; --no-realtime never drops (default: drop for cameras and "
        "URLs only)",
    )
    parser.add_argument(
        "--preview",
        type=_size,
        default=None,
        metavar="WxH",
        help="add a small grey copy of each frame to the records (e.g. 64x36)",
    )
    parser.add_argument(
        "--detector",
        default=None,
        metavar="haar|yunet",
        help="face detector: haar (OpenCV's Haar cascade) or yunet (a small CNN shipped with "
        "fer-tui: turned, tilted and small faces, eye landmarks to level each face) (default: "
        f"the --live-config file's, else {LiveConfig.detector})",
    )
    parser.add_argument(
        "--detector-model",
        default=None,
        metavar="ONNX",
        help="a YuNet .onnx for --detector yunet (default: the one shipped with fer-tui)",
    )
    parser.add_argument(
        "--live-config",
        default=None,
        metavar="TOML",
        help="detection/tracking parameters (see fer_tui.live.config.LiveConfig)",
    )
    parser.add_argument(
        "--threads",
        type=_positive,
        default=None,
        help="CPU threads for inference (default: torch's choice)",
    )


class RecordWriter:
    """JSONL or CSV records, flushed per frame so a reader (or a crash) sees every line."""

    def __init__(self, target: str | None) -> None:
        self.kind = "none"
        self.fh: IO[str] | None = None
        self._csv: Any = None
        self._classes: list[str] = []
        if target is None:
            return
        if target == "-":
            self.kind, self.fh = "jsonl", sys.stdout
            return
        path = Path(target)
        if path.suffix.lower() not in (".jsonl", ".csv"):
            raise FerError(f"--output {target}: use a .jsonl or .csv file, or - for stdout")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.fh = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            raise FerError(f"cannot write {path}: {exc.strerror}") from None
        self.kind = path.suffix.lower()[1:]

    def write(self, rec: dict[str, Any]) -> None:
        if self.fh is None:
            return
        if self.kind == "jsonl":
            self.fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
        else:
            self._write_csv(rec)
        self.fh.flush()

    def _write_csv(self, rec: dict[str, Any]) -> None:
        from fer_tui.data.index import CLASSES

        if self._csv is None:
            self._csv = csv.writer(self.fh)
            self._csv.writerow(
                [
                    "frame",
                    "timestamp",
                    "media_s",
                    "faces",
                    "track_id",
                    "x",
                    "y",
                    "w",
                    "h",
                    "label",
                    "confidence",
                    *[f"p_{c}" for c in CLASSES],
                    *[f"raw_{c}" for c in CLASSES],
                    "fps",
                    "capture_ms",
                    "detect_ms",
                    "classify_ms",
                    "total_ms",
                ]
            )
        t = rec["timings_ms"]
        head = [rec["frame"], rec["timestamp"], rec["media_s"], len(rec["faces"])]
        tail = [rec["fps"], t["capture"], t["detect"], t["classify"], t["total"]]
        if not rec["faces"]:
            self._csv.writerow(head + [""] * (7 + 2 * len(CLASSES)) + tail)
        for f in rec["faces"]:
            self._csv.writerow(
                head
                + [
                    f["track_id"],
                    *f["box"],
                    f["label"],
                    f["confidence"],
                    *[f["probs"][c] for c in CLASSES],
                    *[f["probs_raw"][c] for c in CLASSES],
                ]
                + tail
            )

    def close(self) -> None:
        if self.fh is not None and self.fh is not sys.stdout:
            self.fh.close()


def resolve_checkpoint(arg: str | None, runs_dir: str | None) -> Path:
    if arg:
        return Path(arg)
    from fer_tui import paths

    found = find_checkpoint(paths.checkpoints_dir(), paths.runs_dir(runs_dir))
    if found is None:
        raise FerError(
            "no checkpoint: none of "
            + _DEFAULTS
            + " is here and no run has finished. Train one (`fer-tui train --config "
            "configs/<recipe>.toml`), or pass --checkpoint runs/<run>/last.pt"
        )
    return found


def check_source(source: str) -> None:
    """Fail fast (before torch is imported) on a file or folder that does not exist."""
    source = str(source).strip()
    if source.isdigit() or "://" in source:
        return
    if not Path(source).expanduser().exists():
        raise LiveError(
            f"no such video, folder or camera: {source} (use a camera index like 0, "
            f"a video file, a folder of images or an rtsp:// URL)"
        )


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    check_source(args.source)
    if "torch" not in sys.modules:
        # OpenMP threads that spin while they wait collapse on a busy CPU: one face through
        # ResNet18 took 370 ms instead of 60 ms on 2 shared cores; passive waiting costs little
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from fer_tui.backends import load_model, pick_backend
    from fer_tui.live.config import load_live_config
    from fer_tui.live.detection import make_detector
    from fer_tui.live.pipeline import face_transform, realtime_prediction
    from fer_tui.live.results import to_record
    from fer_tui.live.window import check_display, close_window, draw_overlay, open_window, show

    cfg = load_live_config(args.live_config)
    if args.detector is not None:
        if args.detector not in DETECTORS:
            raise ConfigError(
                f"unknown detector {args.detector!r}: use --detector "
                + " or --detector ".join(DETECTORS)
            )
        cfg = replace(cfg, detector=args.detector)
    if args.detector_model is not None:
        cfg = replace(cfg, detector_model=args.detector_model)
    if args.every:
        cfg = replace(cfg, detect_every=args.every)
    if args.classify_every:
        cfg = replace(cfg, classify_every=args.classify_every)
    window = not args.no_window
    if window:
        check_display()  # before loading the model: fail in milliseconds, not seconds
    detector = make_detector(cfg)  # so is a detector model that will not load
    checkpoint = resolve_checkpoint(args.checkpoint, getattr(args, "runs_dir", None))
    args.backend = pick_backend(args.backend, args.device, checkpoint)
    model, meta, device = load_model(
        checkpoint,
        backend=args.backend,
        device=args.device,
        threads=args.threads,
        channels_last=True,
    )
    transform = face_transform(meta, channels_last=args.backend == "torch" and device.type == "cpu")
    writer = RecordWriter(args.output)
    try:
        results = realtime_prediction(
            model,
            transform,
            args.hold,
            device,
            args.source,
            image_size=int(meta["image_size"]),
            config=cfg,
            classes=meta["classes"],
            realtime=args.realtime,
            max_frames=args.max_frames,
            preview=args.preview,
            keep_frames=window,
            detector=detector,
        )
    except BaseException:
        writer.close()
        raise
    if window:
        open_window()
    # not when the records go to stdout: the Live screen reads that stream
    bar = ProgressBar("frames", args.max_frames, unit="fps", enabled=args.output != "-")
    frames = with_faces = faces = 0
    start = time.perf_counter()
    try:
        for result in results:
            writer.write(to_record(result, meta["classes"]))
            frames += 1
            faces += len(result.faces)
            with_faces += bool(result.faces)
            if window and result.frame is not None:
                if not show(draw_overlay(result.frame, result, meta["classes"])):
                    break
            bar.update(frames, min(filter(None, (args.max_frames, result.total)), default=None))
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a headless webcam run is stopped: keep the records, summarise
    except BrokenPipeError:
        # the reader (the Live screen, `| head`) went away: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        results.close()
        writer.close()
        if window:
            close_window()
    seconds = time.perf_counter() - start
    bar.close()
    print(
        f"live: {frames} frames, {with_faces} with a face, {faces} faces, "
        f"{frames / max(seconds, 1e-9):.1f} fps ({args.backend}, {device.type}, "
        f"{cfg.detector})",
        file=sys.stderr,
    )
    if frames == 0:
        raise LiveError(f"{args.source} gave no frames")
    return 0
