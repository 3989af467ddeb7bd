"""How long evaluating ResNet18 on the 7,178 FER-2013 test faces takes on the CPU.

    python3 benchmarks/eval_speed.py [--threads 2] [--stems cifar,imagenet] [--onnx] [--bf16]
    python3 benchmarks/eval_speed.py --checkpoints checkpoints/resnet18-cpu.pt,... [--n 2048]

The measured path is the one `fer-tui evaluate` runs: `fer_tui.models.predict_proba` (batched,
`torch.inference_mode`, channels_last), random weights (timing does not depend on them), timed
on the whole split with the best batch size. Batch sizes, options and the naive baseline (batch
1, fp32 NCHW, autograd on) run on subsets and are scaled up to the whole split, in the same
process. Faces are the real test split when /tmp/fer or
../shared/data/fer2013.tar.gz is there, else 7,178 synthetic ones (same size, same cost).
Options: --onnx times `fer-tui evaluate --backend onnxruntime` (the ONNX export through the same
preprocessing and TTA code), --bf16 CPU autocast (with its agreement with fp32), --compile
torch.compile (slow to compile on 2 cores).

--checkpoints times real checkpoints instead, on both backends in one run: each one as
`fer-tui evaluate --backend torch` and `--backend onnxruntime` predict it (`backends.load_model`
then `predict_proba`, batch 256, TTA none), and prints the seconds of each, their ratio and the
largest difference between their probabilities. The ONNX export (once per checkpoint, cached)
is timed apart. --data PATH reads the test faces from a FER-2013 folder, archive or CSV.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

N_TEST = 7178
ROOT = Path(__file__).resolve().parents[1]


def load_faces(n: int, synthetic: bool = False, data: str | None = None) -> tuple[np.ndarray, str]:
    """The real test split if present, else synthetic faces; (N, 48, 48) uint8."""
    sources = (Path("/tmp/fer"), ROOT.parent / "shared" / "data" / "fer2013.tar.gz")
    if data is not None:
        sources = (Path(data).expanduser(),)
    for source in () if synthetic else sources:
        if source.exists():
            try:
                from fer_tui.data.load import load_dataset

                images = load_dataset(source).splits["test"].images
                return images[:n], f"FER-2013 test split ({source})"
            except Exception as exc:  # a loader that cannot read it: fall back, say so
                print(f"could not load {source} ({exc}); using synthetic faces", file=sys.stderr)
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(n, 48, 48), dtype=np.uint8), "synthetic faces"


def timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def naive_seconds(model, meta, images: np.ndarray, n: int) -> float:
    """Batch 1, fp32 NCHW, autograd on: seconds per image over `n` images."""
    import torch

    from fer_tui.preprocess import to_input

    x = torch.as_tensor(images[:n])

    def run() -> None:
        for i in range(n):
            inp = to_input(
                x[i : i + 1], image_size=meta["image_size"], in_channels=meta["in_channels"]
            )
            model(inp).softmax(1)

    run_once = timed(run)
    return run_once / n


def onnx_seconds(model, meta, images: np.ndarray, batch: int) -> float | None:
    """`fer-tui evaluate --backend onnxruntime`: the ONNX export through predict_proba."""
    import tempfile

    from fer_tui.backends import check_backend, load_model
    from fer_tui.errors import FerError
    from fer_tui.models import predict_proba, save_checkpoint

    try:
        check_backend("onnxruntime", "cpu")
    except FerError as exc:
        print(f"{exc}: skipping --onnx", file=sys.stderr)
        return None
    path = Path(tempfile.mkdtemp()) / "bench.pt"
    save_checkpoint(path, model, meta)
    ort_model, ort_meta, cpu = load_model(path, backend="onnxruntime", device="cpu")
    predict_proba(ort_model, ort_meta, images[:batch], batch_size=batch, device=cpu)  # warm-up
    return timed(lambda: predict_proba(ort_model, ort_meta, images, batch_size=batch, device=cpu))


def bench_checkpoints(paths: list[str], images: np.ndarray, args: argparse.Namespace) -> dict:
    """Each checkpoint on torch and on onnxruntime, as `fer-tui evaluate` runs them."""
    from fer_tui.backends import load_model
    from fer_tui.export import cached_onnx
    from fer_tui.models import predict_proba

    n, batch = len(images), 256
    out: dict = {"images": n, "batch": batch, "models": []}
    totals = {"torch": 0.0, "onnxruntime": 0.0}
    cpu = {"torch": 0.0, "onnxruntime": 0.0}
    for path in paths:
        start = time.perf_counter()
        cached_onnx(path)  # exported once per checkpoint, then read from the cache
        export_s = time.perf_counter() - start
        row: dict = {"checkpoint": path, "onnx_export_seconds": round(export_s, 2)}
        probs = {}
        for backend in ("torch", "onnxruntime"):
            model, meta, dev = load_model(path, backend=backend, device="cpu", threads=args.threads)
            predict_proba(model, meta, images[:batch], batch_size=batch, device=dev)  # warm-up
            start, cpu_start = time.perf_counter(), time.process_time()
            probs[backend] = predict_proba(model, meta, images, batch_size=batch, device=dev)
            seconds = time.perf_counter() - start
            # CPU time hardly grows when other processes share the cores; wall time does
            cpu[backend] += time.process_time() - cpu_start
            totals[backend] += seconds
            row[f"{backend}_cpu_seconds"] = round(time.process_time() - cpu_start, 2)
            row[f"{backend}_seconds"] = round(seconds, 2)
            row[f"{backend}_seconds_for_7178"] = round(seconds * N_TEST / n, 2)
        row["ratio"] = round(row["torch_seconds"] / row["onnxruntime_seconds"], 2)
        row["max_abs_prob_diff"] = float(np.abs(probs["torch"] - probs["onnxruntime"]).max())
        row["argmax_agreement"] = float(
            (probs["torch"].argmax(1) == probs["onnxruntime"].argmax(1)).mean()
        )
        out["models"].append(row)
        print(
            f"  {Path(path).name}: torch {row['torch_seconds']:.1f} s, onnxruntime "
            f"{row['onnxruntime_seconds']:.1f} s for {n} faces -> onnxruntime is "
            f"{row['ratio']:.2f}x as fast (CPU seconds: {row['torch_cpu_seconds']:.1f} and "
            f"{row['onnxruntime_cpu_seconds']:.1f}); max |dp| {row['max_abs_prob_diff']:.2g}, "
            f"argmax agreement {row['argmax_agreement']:.4f} (ONNX export {export_s:.1f} s, once)",
            flush=True,
        )
    scale = N_TEST / n
    out["torch_seconds_for_7178"] = round(totals["torch"] * scale, 1)
    out["onnxruntime_seconds_for_7178"] = round(totals["onnxruntime"] * scale, 1)
    out["ratio"] = round(totals["torch"] / totals["onnxruntime"], 2)
    out["torch_cpu_seconds_for_7178"] = round(cpu["torch"] * scale, 1)
    out["onnxruntime_cpu_seconds_for_7178"] = round(cpu["onnxruntime"] * scale, 1)
    out["cpu_ratio"] = round(cpu["torch"] / cpu["onnxruntime"], 2)
    print(
        f"all {len(paths)} on {N_TEST} faces{'' if n == N_TEST else f' (scaled from {n})'}: "
        f"torch {out['torch_seconds_for_7178']:.0f} s, onnxruntime "
        f"{out['onnxruntime_seconds_for_7178']:.0f} s: onnxruntime is {out['ratio']:.2f}x "
        f"as fast; CPU seconds {out['torch_cpu_seconds_for_7178']:.0f} and "
        f"{out['onnxruntime_cpu_seconds_for_7178']:.0f}: {out['cpu_ratio']:.2f}x",
        flush=True,
    )
    return out


def bench_stem(stem: str, images: np.ndarray, args: argparse.Namespace) -> dict:
    """Batch sizes and options on a subset (scaled up); the whole split with the best batch."""
    import torch

    from fer_tui.models import build_model, model_meta, predict_proba

    in_channels = 1 if stem == "cifar" else 3  # the paper's recipe feeds 3 gray channels
    torch.manual_seed(0)
    model = build_model("resnet18", stem=stem, in_channels=in_channels).eval()
    meta = model_meta("resnet18", stem=stem, in_channels=in_channels)
    n = len(images)
    sub = images[: min(args.subset, n)]
    scale = n / len(sub)
    out: dict = {"stem": stem, "in_channels": in_channels, "images": n, "subset": len(sub)}

    # warm-up: oneDNN picks its kernels on the first batches
    predict_proba(model, meta, images[:64], batch_size=64)
    # a busy machine can make 1 thread beat 2 (OpenMP threads spin while they wait)
    sweep = {}
    for threads in sorted({1, args.threads}):
        torch.set_num_threads(threads)
        for bs in args.batch_sizes:
            t = timed(lambda bs=bs: predict_proba(model, meta, sub, batch_size=bs)) * scale
            sweep[(threads, bs)] = t
            print(
                f"  [{stem}] {threads} thread(s), batch {bs}, {len(sub)} faces scaled to "
                f"{n}: {t:.1f} s",
                flush=True,
            )
    best_threads, best_bs = min(sweep, key=sweep.get)
    torch.set_num_threads(best_threads)
    out["subset_seconds_scaled"] = {f"{k[0]}t-b{k[1]}": round(v, 2) for k, v in sweep.items()}
    out["best_threads"], out["best_batch"] = best_threads, best_bs
    cpu_start = time.process_time()
    seconds = timed(lambda: predict_proba(model, meta, images, batch_size=best_bs))
    cpu = time.process_time() - cpu_start
    out["seconds"] = round(seconds, 2)
    out["seconds_for_7178"] = round(seconds * N_TEST / n, 2)
    # CPU time does not grow when other processes share the cores: on idle cores the wall
    # time is about cpu / threads (a lower bound, perfect scaling)
    out["cpu_seconds_for_7178"] = round(cpu * N_TEST / n, 2)
    print(
        f"  [{stem}] predict_proba, all {n} faces, {best_threads} thread(s), batch "
        f"{best_bs}: {seconds:.1f} s ({n / seconds:.0f} img/s; {N_TEST} faces: "
        f"{seconds * N_TEST / n:.1f} s wall, {cpu * N_TEST / n:.1f} s CPU)",
        flush=True,
    )

    torch.set_num_threads(args.threads)  # what a user gets without tuning
    per_image = naive_seconds(model, meta, images, args.naive_n)
    out["naive_seconds_scaled"] = round(per_image * n, 1)
    out["speedup_vs_naive"] = round(per_image * n / seconds, 2)
    print(
        f"  [{stem}] naive (batch 1, NCHW, autograd) on {args.naive_n} faces, scaled to "
        f"{n}: {per_image * n:.1f} s -> batched is {out['speedup_vs_naive']:.1f}x faster",
        flush=True,
    )
    torch.set_num_threads(best_threads)

    if args.bf16:
        ref = predict_proba(model, meta, sub, batch_size=best_bs)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            t = timed(lambda: predict_proba(model, meta, sub, batch_size=best_bs)) * scale
            low = predict_proba(model, meta, sub, batch_size=best_bs)
        out["bf16_seconds_scaled"] = round(t, 2)
        out["bf16_argmax_agreement"] = float((ref.argmax(1) == low.argmax(1)).mean())
        out["bf16_max_abs_prob_diff"] = float(np.abs(ref - low).max())
        print(
            f"  [{stem}] bf16 autocast, scaled: {t:.1f} s; argmax agreement with fp32 "
            f"{out['bf16_argmax_agreement']:.3f}, max |dp| {out['bf16_max_abs_prob_diff']:.3g}",
            flush=True,
        )
    if args.onnx:
        t = onnx_seconds(model, meta, sub, best_bs)
        if t is not None:
            out["onnxruntime_seconds_scaled"] = round(t * scale, 2)
            print(
                f"  [{stem}] ONNX Runtime, batch {best_bs}, scaled: {t * scale:.1f} s", flush=True
            )
    if args.compile:
        compiled = torch.compile(model)
        start = time.perf_counter()
        predict_proba(compiled, meta, sub[:best_bs], batch_size=best_bs)
        out["compile_seconds"] = round(time.perf_counter() - start, 1)
        t = timed(lambda: predict_proba(compiled, meta, sub, batch_size=best_bs)) * scale
        out["compiled_seconds_scaled"] = round(t, 2)
        print(
            f"  [{stem}] torch.compile, scaled: {t:.1f} s (+{out['compile_seconds']} s to compile)",
            flush=True,
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads", type=int, default=2, help="CPU threads (1 is tried too; the faster is used)"
    )
    parser.add_argument("--stems", default="cifar,imagenet")
    parser.add_argument(
        "--batch-sizes", default="64,256", type=lambda s: [int(v) for v in s.split(",")]
    )
    parser.add_argument(
        "--naive-n", type=int, default=32, help="faces for the batch-1 baseline (scaled up)"
    )
    parser.add_argument(
        "--subset",
        type=int,
        default=512,
        help="faces for the batch-size and option runs (scaled up)",
    )
    parser.add_argument("--n", type=int, default=N_TEST, help="images to time (7178)")
    parser.add_argument("--onnx", action="store_true")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--synthetic", action="store_true", help="skip the real data")
    parser.add_argument("--data", help="FER-2013 folder, archive or CSV for the test faces")
    parser.add_argument(
        "--checkpoints",
        help="comma-separated checkpoints: time each on torch and onnxruntime instead",
    )
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    images, where = load_faces(args.n, args.synthetic, args.data)
    print(
        f"{len(images)} faces from {where}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, target < 20 s",
        flush=True,
    )
    results = {"threads": args.threads, "faces": where, "torch": str(torch.__version__), "runs": []}
    if args.checkpoints:
        results["checkpoints"] = bench_checkpoints(args.checkpoints.split(","), images, args)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
        return 0
    for stem in args.stems.split(","):
        r = bench_stem(stem, images, args)
        results["runs"].append(r)
        full = r["seconds_for_7178"]
        verdict = "meets" if full < 20 else "misses"
        scaled = "" if len(images) == N_TEST else f" (scaled from {len(images)})"
        print(
            f"resnet18/{stem}: {full:.1f} s for {N_TEST} faces{scaled}, "
            f"{r['best_threads']} thread(s), batch {r['best_batch']}: {verdict} the 20 s "
            f"target; {r['speedup_vs_naive']:.1f}x the naive baseline",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
