"""Issue 7 in one command: train ResNet18/34/50 from scratch, evaluate, ship fp16 checkpoints.

    python benchmarks/gpu_train_all.py --out out     # one H200, <= 10 min (see gpu_train_all.sh)
    python benchmarks/gpu_train_all.py --out /tmp/o --limit 300 --epochs 1 --device cpu  # smoke

Steps, all timed into `<out>/results.json`:
1. unpack the FER-2013 tarball into a temporary folder (never into <out>: no faces come back);
2. decode it once (filling the data cache); on a GPU, probe each arch's images/s for a few
   steps and scale the config's epochs down (never up) so the three fit --budget seconds
   (written to a derived config, recorded in results.json); then
   `fer-tui train --config configs/scratch.toml --arch all`: the three archs side by side on
   the GPU, each in its own process, run dirs (events.jsonl, config.toml) under <out>/runs;
3. evaluate each model's LAST epoch (not the epoch that scored best on test: honest selection)
   on the test split, plain and with flip test-time augmentation (marked as such), with
   `fer_tui.evaluate.compute_metrics` (accuracy, Table 1/2 per-class report, one-vs-rest AUC);
4. the ensemble of the three (mean of probabilities);
5. write <out>/checkpoints/<arch>.pt (fp16 weights + metadata) and <out>/results.json;
6. optionally (--bench) benchmarks/train_throughput.py, eager and compiled, for images/s vs the
   DataLoader baseline and torch.compile's compile time.
If training is still going at --deadline seconds, it gets SIGTERM (every trainer saves last.pt
mid-epoch), so evaluation and shipping always happen inside the 10 minutes.
The fp32 training checkpoints (last.pt/best.pt, with optimizer state) are moved out of <out>
unless --keep-run-checkpoints, so what comes back stays small.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without `pip install -e .`

TARBALLS = [ROOT.parent / "shared" / "data" / "fer2013.tar.gz",
            ROOT / "shared" / "data" / "fer2013.tar.gz"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def unpack(tarball: Path, dest: Path) -> Path:
    with tarfile.open(tarball) as tar:
        try:
            tar.extractall(dest, filter="data")
        except TypeError:  # Python < 3.11.4 has no extraction filters; the archive is ours
            tar.extractall(dest)  # noqa: S202
    # the archive holds train/ and test/ at its top, or inside one folder
    if (dest / "train").is_dir():
        return dest
    (inner,) = [p for p in dest.iterdir() if p.is_dir()]
    return inner


def metrics(y, probs) -> dict[str, Any]:
    try:
        from fer_tui.evaluate import compute_metrics

        report = compute_metrics(y, probs)
        report.pop("roc", None)  # curves are big; the Evaluation screen recomputes them
        return report
    except ImportError:  # the evaluation module is optional for this script
        from sklearn.metrics import classification_report, roc_auc_score

        from fer_tui.data.index import CLASSES

        return {"accuracy": float((probs.argmax(1) == y).mean()),
                "classes": classification_report(y, probs.argmax(1), target_names=list(CLASSES),
                                                 labels=list(range(7)), output_dict=True,
                                                 zero_division=0),
                "auc_macro_ovr": float(roc_auc_score(y, probs, multi_class="ovr",
                                                     labels=list(range(7))))}


def run_summary(run_dir: Path) -> dict[str, Any]:
    from fer_tui.runs import read_events

    events = read_events(run_dir)
    epochs = [e for e in events if e["type"] == "epoch"]
    start = next((e for e in events if e["type"] == "start"), None)
    if start is None:
        return {"run_dir": run_dir.name, "status": "never started", "epochs": 0,
                "train_seconds": 0.0, "curve": []}
    end = [e for e in events if e["type"] in ("end", "error", "stopped")]
    ips = [e["img_per_s"] for e in epochs if e.get("img_per_s")]
    return {
        "run_dir": run_dir.name,
        "status": end[-1]["type"] if end else "crashed",
        "epochs": len(epochs),
        "train_seconds": sum(e["seconds"] for e in epochs),
        "wall_seconds": (end[-1]["t"] - start["t"]) if end else None,
        "img_per_s_median": sorted(ips)[len(ips) // 2] if ips else None,
        "best_val_acc_on_test_not_shipped": max((e["val_acc"] for e in epochs), default=None),
        "last_val_acc": epochs[-1]["val_acc"] if epochs else None,
        "curve": [{k: e.get(k) for k in ("epoch", "train_loss", "train_acc", "val_loss",
                                          "val_acc", "lr", "seconds")} for e in epochs],
    }


def device_is_cuda(name: str) -> bool:
    import torch

    return name == "cuda" or (name == "auto" and torch.cuda.is_available())


def fit_epochs_to_budget(config: Path, budget: float, n_train: int, n_test: int, scratch: Path,
                         results: dict[str, Any], *, device: str = "auto", steps: int = 15
                         ) -> Path:
    """Scale each arch's epochs so the three fit `budget` GPU seconds; the new config's path.

    Each arch's training images/s alone is probed for a few steps; the three side by side
    share one GPU, so their times add up (a conservative bound: running together also fills
    each other's idle gaps). Eval costs about a third of a training step per image.
    """
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from train_throughput import bench_ours

    from fer_tui.config import ARCHS, load_config, to_toml
    from fer_tui.models import resolve_device

    cfg = load_config(config)
    dev = resolve_device(device)
    probe, seconds = {}, 0.0
    t0 = time.perf_counter()
    for arch in ARCHS:  # what `--arch all` trains, whatever the config's `archs`
        a = cfg.for_arch(arch)
        ips = bench_ours(a, dev, steps=steps, warmup=max(1, steps // 3))["img_per_s"]
        per_epoch = n_train / ips + n_test / (3 * ips)
        probe[arch] = {"img_per_s": ips, "epoch_seconds": per_epoch, "epochs": a.train.epochs}
        seconds += per_epoch * a.train.epochs
        log(f"probe {arch}: {ips:,.0f} img/s alone, {per_epoch:.1f}s per epoch")
    scale = min(1.0, budget / (1.1 * seconds))
    overrides = cfg.overrides
    for arch in ARCHS:
        epochs = max(1, int(probe[arch]["epochs"] * scale))
        probe[arch]["epochs_used"] = epochs
        tables = dict(overrides.get(arch, {}))
        tables["train"] = {**tables.get("train", {}), "epochs": epochs}
        overrides = {**overrides, arch: tables}
    fitted = scratch / f"{config.stem}-fitted.toml"
    fitted.write_text(f"# {config.name} with epochs scaled by {scale:.3f} to fit {budget:.0f}s\n"
                      + to_toml(cfg.replace(overrides=overrides)))
    results["budget"] = {"seconds": budget, "estimated_seconds_at_config_epochs": seconds,
                         "scale": scale, "probe": probe,
                         "probe_seconds": time.perf_counter() - t0,
                         "fitted_config": fitted.read_text()}
    if dev.type == "cuda":
        import torch

        torch.cuda.empty_cache()  # the trainers need the memory more than this process
    log(f"estimated {seconds:.0f}s at the config's epochs; scale {scale:.2f} -> "
        + ", ".join(f"{a} {probe[a]['epochs_used']}" for a in ARCHS))
    return fitted


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.environ.get("OUT", "out"))
    p.add_argument("--tarball", default=None, help="FER-2013 .tar.gz (default: shared/data)")
    p.add_argument("--data", default=None, help="an unpacked dataset instead of the tarball")
    p.add_argument("--config", default=str(ROOT / "configs" / "scratch.toml"))
    p.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    p.add_argument("--limit", type=int, default=None, help="N images per split (smoke test)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--bench", action="store_true", help="also run the throughput benchmark")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds of training for all three: the config's epochs are scaled "
                   "down (never up) from a short throughput probe to fit them (default: 390 on "
                   "a GPU, none on a CPU; 0 = no probe)")
    p.add_argument("--probe-steps", type=int, default=15, help="timed steps per arch in the probe")
    p.add_argument("--deadline", type=float, default=540.0,
                   help="seconds after start when training is stopped with SIGTERM (it saves "
                   "last.pt) so that evaluation and shipping still happen within the run")
    p.add_argument("--keep-run-checkpoints", action="store_true")
    args = p.parse_args(argv)
    t_all = time.perf_counter()
    out = Path(args.out).absolute()
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="fer-gpu-"))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{os.environ.get('PYTHONPATH', '')}"}
    results: dict[str, Any] = {"argv": sys.argv, "config_file": args.config,
                               "config_text": Path(args.config).read_text()}

    t0 = time.perf_counter()
    if args.data:
        data = Path(args.data)
    else:
        tarball = Path(args.tarball) if args.tarball else next(
            (t for t in TARBALLS if t.exists()), None)
        if tarball is None:
            log(f"no tarball found (looked at {', '.join(map(str, TARBALLS))}); pass --tarball")
            return 2
        data = unpack(tarball, scratch / "data")
    results["unpack_seconds"] = time.perf_counter() - t0
    log(f"data at {data} ({results['unpack_seconds']:.1f}s)")
    # decode once here: it fills the data cache the three trainers then read in parallel
    from fer_tui.data.load import load_dataset

    t0 = time.perf_counter()
    fer = load_dataset(data)
    test, train_labels = fer.splits["test"], fer.splits["train"].labels
    n_test = len(test.labels)
    if args.limit:
        train_labels = train_labels[: args.limit]
        n_test = min(n_test, args.limit)
    results["decode_seconds"] = time.perf_counter() - t0
    log(f"decoded in {results['decode_seconds']:.1f}s")

    config = Path(args.config)
    budget = args.budget if args.budget is not None else (
        390.0 if device_is_cuda(args.device) else 0.0)
    if budget > 0 and not args.epochs:
        config = fit_epochs_to_budget(config, budget, len(train_labels), n_test,
                                      scratch, results, device=args.device,
                                      steps=args.probe_steps)
    cmd = [sys.executable, "-m", "fer_tui", "train", "--config", str(config), "--arch", "all",
           "--data", str(data), "--runs-dir", str(out / "runs"), "--device", args.device,
           "--json"]
    if args.epochs:
        cmd += ["--epochs", str(args.epochs)]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    results["train_command"] = " ".join(cmd)
    log("$ " + results["train_command"])
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    left = max(1.0, args.deadline - (time.perf_counter() - t_all))
    try:
        stdout, _ = proc.communicate(timeout=left)
    except subprocess.TimeoutExpired:
        # out of time: SIGTERM makes every trainer finish its step and save last.pt
        log(f"deadline reached after {time.perf_counter() - t_all:.0f}s: stopping the trainers")
        results["stopped_at_deadline"] = True
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate()
    results["train_wall_seconds"] = time.perf_counter() - t0
    results["train_exit_code"] = proc.returncode
    log(f"training exit {proc.returncode} after {results['train_wall_seconds']:.0f}s")
    try:
        runs = json.loads(stdout)["runs"]
    except (ValueError, KeyError):
        log("no JSON summary from the trainer:\n" + stdout[-2000:])
        runs = []

    import numpy as np
    import torch

    from fer_tui.models import load_checkpoint, predict_proba, resolve_device, save_checkpoint

    device = resolve_device(args.device)
    results["device"] = (torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu")
    results["torch"] = torch.__version__
    images, labels = test.images, test.labels
    if args.limit:
        from fer_tui.train import _first_n

        idx = _first_n(len(labels), args.limit)
        images, labels = images[idx], labels[idx]
    results["test_images"] = int(len(labels))
    models: dict[str, Any] = {}
    probs_all = []
    for run in runs:
        run_dir = Path(run["run_dir"])
        arch = run["arch"]
        summary = run_summary(run_dir)
        last = run_dir / "last.pt"
        if not last.exists():
            models[arch] = {**summary, "error": "no last.pt"}
            continue
        model, meta = load_checkpoint(last, device=device)
        t0 = time.perf_counter()
        probs = predict_proba(model, meta, images, batch_size=1024)
        eval_s = time.perf_counter() - t0
        flip = predict_proba(model, meta, images, batch_size=1024, tta="flip")
        probs_all.append(probs)
        ship = out / "checkpoints" / f"{arch}.pt"
        save_checkpoint(ship, model, {**meta, "selection": "last epoch"}, half=True)
        models[arch] = {**summary, "shipped": str(ship.relative_to(out)), "epoch": meta["epoch"],
                        "eval_seconds": eval_s, "test": metrics(labels, probs),
                        "test_flip_tta_accuracy": float((flip.argmax(1) == labels).mean())}
        np.save(scratch / f"probs-{arch}.npy", probs)
        log(f"{arch}: last epoch {meta['epoch']} test acc {models[arch]['test']['accuracy']:.4f}"
            f" (flip TTA {models[arch]['test_flip_tta_accuracy']:.4f}),"
            f" trained in {summary['train_seconds']:.0f}s")
        if not args.keep_run_checkpoints:
            for name in ("last.pt", "best.pt"):
                if (run_dir / name).exists():
                    (scratch / run_dir.name).mkdir(exist_ok=True)
                    shutil.move(str(run_dir / name), scratch / run_dir.name / name)
    results["models"] = models
    if len(probs_all) > 1:
        mean = np.mean(probs_all, axis=0)
        results["ensemble"] = {"archs": list(models), "test": metrics(labels, mean)}
        log(f"ensemble of {len(probs_all)}: test acc {results['ensemble']['test']['accuracy']:.4f}")

    if args.bench:
        for extra, name in (([], "throughput.json"), (["--compile"], "throughput_compile.json")):
            bench = [sys.executable, str(ROOT / "benchmarks" / "train_throughput.py"),
                     "--device", args.device, "--json", str(out / name), *extra]
            if device.type == "cpu":
                bench += ["--steps", "2", "--archs", "resnet18"]
            log("$ " + " ".join(bench))
            subprocess.run(bench, cwd=ROOT, env=env)
    results["wall_seconds_total"] = time.perf_counter() - t_all
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    log(f"wrote {out / 'results.json'} (total {results['wall_seconds_total']:.0f}s); "
        f"training checkpoints kept in {scratch}")
    return 0 if proc.returncode == 0 and len(probs_all) == len(runs) and runs else 1


if __name__ == "__main__":
    sys.exit(main())
