"""One GPU, one command: train ResNet18/34/50 from scratch, evaluate them, ship fp16 checkpoints.

    python tools/gpu_train_all.py --out out          # one H200: about 9.5 minutes in all
    python tools/gpu_train_all.py --out /tmp/o --device cpu --limit 300 --epochs 1 \\
        --time-limit 300 --config configs/smoke.toml       # a smoke test of every step on a CPU

Every step is bounded by --time-limit (seconds for the whole command), and `<out>/results.json`
is rewritten after each one, so an overrun loses at most the step in progress:
1. the machine: GPU name, compute mode, driver, torch;
2. FER-2013 unpacked into a temporary folder (never into <out>: no faces come back) and decoded
   once, which fills the data cache the trainers read;
3. a throughput probe in a child process (the parent holds no CUDA context while the trainers
   run): each model's training images/s alone, the plain fp32 DataLoader baseline for ResNet18
   (the same ratio benchmarks/train_throughput.py reports), and the host syncs of a few steps
   under `torch.cuda.set_sync_debug_mode("warn")`;
4. the config's epochs scaled down (never up) so that the three models fit the time left before
   the training deadline (the three share the GPU by time-slicing, so their times add up);
5. `fer-tui train --config ... --arch all`: three processes side by side on the GPU (one after
   another if the GPU is not in the Default compute mode); beside them, when it fits, the CPU
   recipe's ResNet18 (configs/cpu.toml) as a calibration of what two CPU cores will reach;
6. at the deadline every trainer gets SIGTERM and saves last.pt mid-epoch: such a model is
   labelled "stopped at the deadline" (never "last epoch");
7. each model's last epoch (not the epoch that scored best on test) evaluated on the test split,
   plain and with flip TTA (reported apart), and the ensemble (mean of probabilities);
8. fp16 checkpoints in <out>/checkpoints, the run dirs' small files in <out>/runs;
9. with time left, the optional checks: a mid-epoch SIGTERM + resume on the device, and
   torch.compile's compile time and images/s for ResNet18.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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

TARBALLS = [
    ROOT.parent / "shared" / "data" / "fer2013.tar.gz",
    ROOT / "shared" / "data" / "fer2013.tar.gz",
]
T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def elapsed() -> float:
    return time.monotonic() - T0


class Results:
    """results.json, rewritten (atomically) whenever a step adds to it."""

    def __init__(self, path: Path, **fields: Any) -> None:
        self.path = path
        self.data: dict[str, Any] = {"steps": {}, **fields}

    def step(self, name: str, seconds: float) -> None:
        self.data["steps"][name] = {"seconds": round(seconds, 2), "at": round(elapsed(), 1)}
        self.save()

    def save(self) -> None:
        self.data["wall_seconds_total"] = round(elapsed(), 1)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str))
        tmp.replace(self.path)


# --- 1-2: the machine and the data ----------------------------------------------------------


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count()}
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=name,compute_mode,driver_version,memory.total",
                "--format=csv,noheader",
            ],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if out.returncode == 0 and out.stdout.strip():
            name, mode, driver, memory = (f.strip() for f in out.stdout.splitlines()[0].split(","))
            info.update(gpu=name, compute_mode=mode, driver=driver, gpu_memory=memory)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        pass
    import torch  # no CUDA context: only the version

    info["torch"] = str(torch.__version__)
    info["cuda_build"] = torch.version.cuda
    return info


def device_kind(name: str) -> str:
    import torch

    return "cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu"


def shared_gpu_ok(info: dict[str, Any]) -> bool:
    """Several processes may share the GPU (compute mode Default, or no nvidia-smi to ask)."""
    return info.get("compute_mode", "Default") == "Default"


def unpack(tarball: Path, dest: Path) -> Path:
    with tarfile.open(tarball) as tar:
        try:
            tar.extractall(dest, filter="data")
        except TypeError:  # Python < 3.11.4 has no extraction filters; the archive is ours
            tar.extractall(dest)  # noqa: S202
    if (dest / "train").is_dir():
        return dest
    (inner,) = [p for p in dest.iterdir() if p.is_dir()]
    return inner


# --- 3: the probe, in a child process --------------------------------------------------------


def probe_main(args: argparse.Namespace) -> int:
    """Child process: images/s of each (config, arch) job, the baseline, and host syncs."""
    import warnings

    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from train_throughput import bench_baseline, bench_ours

    from fer_tui.config import load_config
    from fer_tui.models import resolve_device

    device = resolve_device(args.device)
    out: dict[str, Any] = {"jobs": {}}
    for job in args.probe:
        config, arch = job.split(":")
        cfg = load_config(config).for_arch(arch).replace(train={"device": device.type})
        r = bench_ours(cfg, device, steps=args.probe_steps, warmup=max(2, args.probe_steps // 3))
        out["jobs"][job] = r
        log(f"probe {Path(config).stem}:{arch}: {r['img_per_s']:,.0f} img/s alone")
    # what the budget needs is written first; the baseline and the sync count are extras
    Path(args.probe_json).write_text(json.dumps(out, indent=2))
    if args.baseline:
        cfg = load_config(args.config).for_arch("resnet18").replace(train={"device": device.type})
        steps = max(10, args.probe_steps)
        base = bench_baseline(cfg, device, steps, 3, workers=min(8, os.cpu_count() or 2))
        out["baseline_resnet18"] = base
        ours = out["jobs"].get(f"{args.config}:resnet18", {}).get("img_per_s")
        if ours:
            out["ratio_resnet18"] = ours / base["img_per_s"]
        log(f"probe baseline resnet18 (fp32 DataLoader): {base['img_per_s']:,.0f} img/s")
    if device.type == "cuda":
        # the host syncs of one 10-step epoch of the step loop alone (the trainer's set-up,
        # which uploads the model and data, is outside the window): one for the epoch's
        # shuffle upload and one per logging window (every 5 steps here) are by design
        from train_throughput import faces

        from fer_tui.training.arrays import Arrays
        from fer_tui.training.trainer import Trainer

        cfg = (
            load_config(args.config)
            .for_arch("resnet18")
            .replace(train={"device": "cuda", "log_every_steps": 5})
        )
        x, y = faces(cfg.train.batch_size * 10)
        trainer = Trainer(cfg, None, Arrays(x, y, x[:8], y[:8], "test"), device=device)
        trainer.steps_per_epoch = 2
        trainer.train_one_epoch(1)  # allocations and autotuning first
        trainer.steps_per_epoch, trainer.step_in_epoch = 10, 0
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                trainer.train_one_epoch(2)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        syncs = [
            str(w.message).splitlines()[0]
            for w in caught
            if "synchronizing cuda operation" in str(w.message).lower()
        ]
        out["host_syncs_in_a_10_step_epoch"] = {"count": len(syncs), "expected_at_most": 3}
    Path(args.probe_json).write_text(json.dumps(out, indent=2))
    return 0


def run_probe(
    args: argparse.Namespace, jobs: list[str], scratch: Path, results: Results, timeout: float
) -> dict[str, Any] | None:
    path = scratch / "probe.json"
    cmd = [
        sys.executable,
        __file__,
        "--probe-json",
        str(path),
        "--device",
        args.device,
        "--config",
        args.config,
        "--probe-steps",
        str(args.probe_steps),
        "--baseline",
    ]
    for job in jobs:
        cmd += ["--probe", job]
    t0 = time.monotonic()
    try:
        code: int | str = subprocess.run(cmd, cwd=ROOT, timeout=max(5.0, timeout)).returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    # the child writes the models' rates before its optional parts: use them if it got there
    probe = json.loads(path.read_text()) if path.is_file() else None
    if probe is not None and set(probe.get("jobs", {})) != set(jobs):
        probe = None
    results.data["probe"] = {**(probe or {}), "exit": code}
    results.step("probe", time.monotonic() - t0)
    return probe


#: Training images/s alone on one H200 when the probe fails: the low end of a FLOP estimate
#: (cifar stem, bf16), so the fitted epochs err on the short side and finish before the deadline.
FALLBACK_IMG_PER_S = {"resnet18": 10_000, "resnet34": 5_000, "resnet50": 3_500}


# --- 4: epochs fitted to the time left -------------------------------------------------------


def fit_epochs(
    config: Path,
    probe: dict[str, Any],
    jobs: list[str],
    budget: float,
    n_train: int,
    n_val: int,
    scratch: Path,
    results: Results,
    margin: float = 1.15,
) -> tuple[Path, list[str]]:
    """The scaled config for the main recipe, and the jobs that still fit.

    Each job's epoch costs n_train / img_per_s of training plus about a third of that per
    validation image, plus ~0.3 s of checkpointing; side by side on one GPU the jobs' times add
    up (time-slicing). Extra jobs (the CPU recipe's calibration) keep their epochs and are
    dropped when they would take more than a quarter of the budget.
    """
    from fer_tui.config import ARCHS, load_config, to_toml

    cfg = load_config(config)

    def epoch_seconds(job: str) -> float:
        ips = probe["jobs"][job]["img_per_s"]
        return n_train / ips + n_val / (3 * ips) + 0.3

    main_jobs = [f"{config}:{a}" for a in ARCHS]
    extra = [j for j in jobs if j not in main_jobs and j in probe["jobs"]]
    extra_s = {}
    for job in extra:
        path, arch = job.split(":")
        extra_s[job] = epoch_seconds(job) * load_config(path).for_arch(arch).train.epochs * margin
    kept = [j for j in extra if extra_s[j] <= budget / 4]
    left = budget - sum(extra_s[j] for j in kept)
    planned = {a: cfg.for_arch(a).train.epochs for a in ARCHS}
    need = sum(epoch_seconds(f"{config}:{a}") * planned[a] for a in ARCHS) * margin
    scale = min(1.0, left / need) if need > 0 else 1.0
    overrides = cfg.overrides
    epochs = {}
    for arch in ARCHS:
        epochs[arch] = max(1, int(planned[arch] * scale))
        tables = dict(overrides.get(arch, {}))
        tables["train"] = {**tables.get("train", {}), "epochs": epochs[arch]}
        overrides = {**overrides, arch: tables}
    fitted = scratch / f"{config.stem}-fitted.toml"
    fitted.write_text(
        f"# {config.name} with epochs scaled by {scale:.3f} to fit {left:.0f}s\n"
        + to_toml(cfg.replace(overrides=overrides))
    )
    results.data["budget"] = {
        "seconds": round(budget, 1),
        "margin": margin,
        "scale": round(scale, 4),
        "epochs_planned": planned,
        "epochs_used": epochs,
        "epoch_seconds_alone": {j: round(epoch_seconds(j), 2) for j in probe["jobs"]},
        "extra_jobs": kept,
        "extra_jobs_dropped": [j for j in extra if j not in kept],
        "fitted_config": fitted.read_text(),
    }
    results.save()
    log(f"budget {budget:.0f}s: scale {scale:.2f} -> {epochs}; extra jobs {kept}")
    return fitted, kept


# --- 5-6: training with a deadline ------------------------------------------------------------


def train_cmd(
    config: Path, arch: str, data: Path, runs: Path, args: argparse.Namespace
) -> list[str]:
    from fer_tui.launch import fer_tui_command

    cmd = [
        *fer_tui_command("train"),
        "--config",
        str(config),
        "--arch",
        arch,
        "--data",
        str(data),
        "--runs-dir",
        str(runs),
        "--device",
        args.device,
    ]
    if args.epochs:
        cmd += ["--epochs", str(args.epochs)]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    return cmd


def run_until(procs: list[subprocess.Popen[bytes]], deadline: float) -> bool:
    """Wait for every process; at `deadline` (seconds since start) SIGTERM them (they save
    last.pt mid-epoch) and give them 30 s. True if the deadline stopped any."""
    while any(p.poll() is None for p in procs):
        if elapsed() >= deadline:
            log("training deadline: stopping the trainers (each saves last.pt)")
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            end = time.monotonic() + 30
            for p in procs:
                try:
                    p.wait(timeout=max(0.1, end - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.kill()
            return True
        time.sleep(0.5)
    return False


def run_dirs(runs: Path) -> list[Path]:
    return sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []


def run_summary(run_dir: Path) -> dict[str, Any]:
    """What results.json says of one run: `fer_tui.runs.summarize` (the status and numbers
    `fer-tui train --json` prints), plus its time split, speed and curve."""
    from fer_tui.runs import read_events, read_run, summarize

    state = read_run(run_dir)
    epochs = [e for e in read_events(run_dir) if e.get("type") == "epoch"]
    ips = sorted(e["img_per_s"] for e in epochs if e.get("img_per_s"))
    return {
        **summarize(run_dir),
        "run_dir": run_dir.name,
        "recipe": state.recipe,
        "precision": state.precision,
        "epochs_planned": state.epochs,
        "train_seconds": round(sum(e.get("train_seconds") or 0 for e in epochs), 1),
        "eval_seconds": round(sum(e.get("eval_seconds") or 0 for e in epochs), 1),
        "wall_seconds": (
            round(state.last_t - state.started_t, 1) if state.last_t and state.started_t else None
        ),
        "train_img_per_s_median": ips[len(ips) // 2] if ips else None,
        "curve": [
            {
                k: e.get(k)
                for k in (
                    "epoch",
                    "train_loss",
                    "train_acc",
                    "val_loss",
                    "val_acc",
                    "val_acc_ema",
                    "lr",
                    "train_seconds",
                    "eval_seconds",
                    "img_per_s",
                )
            }
            for e in epochs
        ],
    }


# --- 7-8: evaluation and shipping ----------------------------------------------------------


def metrics(y: Any, probs: Any) -> dict[str, Any]:
    from fer_tui.evaluation.metrics import compute_metrics

    report = compute_metrics(y, probs)
    report.pop("roc", None)  # curves are big; `fer-tui evaluate` recomputes them
    return report


def selection(ckpt: dict[str, Any], stopped_at_deadline: bool) -> str:
    """How the shipped weights were chosen, in words that cannot overstate it."""
    step = int(ckpt.get("step_in_epoch") or 0)
    epoch = int(ckpt.get("epoch") or 0)
    if step:
        why = "the deadline" if stopped_at_deadline else "a stop"
        return f"stopped at {why} in epoch {epoch + 1} (step {step}), before the schedule's end"
    return f"last epoch ({epoch})"


def evaluate_runs(
    dirs: list[Path],
    test: Any,
    device: Any,
    out: Path,
    scratch: Path,
    stopped_at_deadline: bool,
    results: Results,
    *,
    ship: bool,
) -> list[Any]:
    import numpy as np

    from fer_tui.models import load_checkpoint, predict_proba, read_checkpoint, save_checkpoint

    images, labels = test
    all_probs = []
    for run_dir in dirs:
        summary = run_summary(run_dir)
        key = summary["arch"] if ship else f"{summary['recipe']}-{summary['arch']}"
        entry = results.data.setdefault("models" if ship else "calibration", {})
        last = run_dir / "last.pt"
        if not last.exists():
            entry[key] = {**summary, "error": "no last.pt: the run never finished an epoch"}
            results.save()
            continue
        ckpt = read_checkpoint(last)
        model, meta = load_checkpoint(last, device=device)
        t0 = time.perf_counter()
        probs = predict_proba(model, meta, images, batch_size=1024)
        eval_s = time.perf_counter() - t0
        flip = predict_proba(model, meta, images, batch_size=1024, tta="flip")
        chosen = selection(ckpt, stopped_at_deadline)
        row = {
            **summary,
            "selection": chosen,
            "eval_seconds_test": round(eval_s, 2),
            "test": metrics(labels, probs),
            "test_flip_tta_accuracy": float((flip.argmax(1) == labels).mean()),
        }
        if (run_dir / "ema.pt").exists():
            ema_model, ema_meta = load_checkpoint(run_dir / "ema.pt", device=device)
            ema_probs = predict_proba(ema_model, ema_meta, images, batch_size=1024)
            row["test_ema"] = metrics(labels, ema_probs)
        if ship:
            path = out / "checkpoints" / f"{summary['arch']}.pt"
            save_checkpoint(path, model, {**meta, "selection": chosen}, half=True)
            row["shipped"] = str(path.relative_to(out))
            all_probs.append(probs)
            np.save(scratch / f"probs-{summary['arch']}.npy", probs)
        entry[key] = row
        results.save()
        log(
            f"{key}: {chosen}, test acc {row['test']['accuracy']:.4f} (flip TTA "
            f"{row['test_flip_tta_accuracy']:.4f}), trained {summary['train_seconds']:.0f}s"
        )
    return all_probs


def keep_small_files(runs: Path, dest: Path) -> None:
    """Copy a run tree's events/config/logs (not its checkpoints) to `dest`."""
    for run_dir in run_dirs(runs):
        target = dest / run_dir.name
        target.mkdir(parents=True, exist_ok=True)
        for f in run_dir.iterdir():
            if f.is_file() and f.suffix != ".pt":
                shutil.copy2(f, target / f.name)


# --- 9: optional checks with the time left --------------------------------------------------


def resume_check(data: Path, device: str, scratch: Path, timeout: float) -> dict[str, Any]:
    """A tiny run stopped with SIGTERM mid-epoch and resumed on the same device."""
    from fer_tui.runs import read_events, read_run

    runs = scratch / "resume-check"
    cfg = ROOT / "configs" / "smoke.toml"
    from fer_tui.launch import fer_tui_command

    base = [
        *fer_tui_command("train"),
        "--config",
        str(cfg),
        "--data",
        str(data),
        "--device",
        device,
        "--limit",
        "4000",
        "--epochs",
        "2",
    ]
    run_dir = runs / "run"
    t0 = time.monotonic()
    proc = subprocess.Popen([*base, "--run-dir", str(run_dir)], cwd=ROOT)
    end = time.monotonic() + timeout / 2
    while time.monotonic() < end and proc.poll() is None:
        if any(e.get("type") == "step" for e in read_events(run_dir)):
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    first = proc.wait(timeout=30)
    left = max(5.0, timeout - (time.monotonic() - t0))
    resumed = subprocess.run(
        [*fer_tui_command("train"), "--resume", str(run_dir)], cwd=ROOT, timeout=left
    )
    events = read_events(run_dir)
    return {
        "first_exit": first,
        "resume_exit": resumed.returncode,
        "status": read_run(run_dir).status(pid_is_alive=False),
        "epochs": [e["epoch"] for e in events if e.get("type") == "epoch"],
        "stopped": [e.get("reason") for e in events if e.get("type") == "stopped"],
        "warnings": [e.get("message") for e in events if e.get("type") == "warning"],
        "seconds": round(time.monotonic() - t0, 1),
    }


def compile_bench(device: str, out: Path, timeout: float) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "train_throughput.py"),
        "--device",
        device,
        "--archs",
        "resnet18",
        "--compile",
        "--no-baseline",
        "--steps",
        "50",
        "--json",
        str(out / "throughput_compile.json"),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, timeout=timeout)
    return {"exit": proc.returncode}


# --- main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.environ.get("RESULTS", "out"))
    p.add_argument("--tarball", default=None, help="FER-2013 .tar.gz (default: shared/data)")
    p.add_argument("--data", default=None, help="an unpacked dataset instead of the tarball")
    p.add_argument("--config", default=str(ROOT / "configs" / "scratch.toml"))
    p.add_argument(
        "--calibrate",
        default=str(ROOT / "configs" / "cpu.toml"),
        help="a second recipe whose ResNet18 trains beside the three when it fits ('none': skip)",
    )
    p.add_argument("--epochs", type=int, default=None, help="override every config's epochs")
    p.add_argument("--limit", type=int, default=None, help="N images per split (smoke test)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--time-limit",
        type=float,
        default=580.0,
        help="seconds for the whole command; training stops early enough for the "
        "evaluation and the results to fit",
    )
    p.add_argument(
        "--eval-reserve",
        type=float,
        default=45.0,
        help="seconds kept after training for evaluation and shipping",
    )
    p.add_argument("--probe-steps", type=int, default=15, help="timed steps per model")
    p.add_argument("--no-extras", action="store_true", help="skip the optional checks")
    # the probe child's own flags
    p.add_argument("--probe-json", default=None, help=argparse.SUPPRESS)
    p.add_argument("--probe", action="append", default=[], help=argparse.SUPPRESS)
    p.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.probe_json:
        return probe_main(args)

    out = Path(args.out).absolute()
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="fer-gpu-"))
    os.environ["PYTHONPATH"] = f"{ROOT}:{os.environ.get('PYTHONPATH', '')}"
    config = Path(args.config)
    results = Results(
        out / "results.json",
        argv=sys.argv,
        config_file=str(config),
        config_text=config.read_text(),
        time_limit=args.time_limit,
    )
    train_deadline = args.time_limit - args.eval_reserve
    status = 1
    try:
        t0 = time.monotonic()
        info = machine()
        results.data["machine"] = info
        results.step("machine", time.monotonic() - t0)
        log(f"machine: {info}")

        t0 = time.monotonic()
        if args.data:
            data = Path(args.data)
        else:
            tarball = (
                Path(args.tarball)
                if args.tarball
                else next((t for t in TARBALLS if t.exists()), None)
            )
            if tarball is None:
                log(f"no tarball (looked at {', '.join(map(str, TARBALLS))}); pass --tarball")
                return 2
            data = unpack(tarball, scratch / "data")
        from fer_tui.data.load import load_dataset

        fer = load_dataset(data)
        test = fer.splits["test"]
        images, labels = test.images, test.labels
        n_train = len(fer.splits["train"].labels)
        if args.limit:
            from fer_tui.data.holdout import first_n

            idx = first_n(len(labels), args.limit)
            images, labels = images[idx], labels[idx]
            n_train = min(n_train, args.limit)
        results.data["test_images"] = int(len(labels))
        results.step("data", time.monotonic() - t0)
        log(f"data decoded: {n_train} train, {len(labels)} test")

        sequential = not shared_gpu_ok(info)
        calibrate = None if args.calibrate == "none" or sequential else Path(args.calibrate)
        from fer_tui.config import ARCHS

        jobs = [f"{config}:{a}" for a in ARCHS]
        if calibrate is not None:
            jobs.append(f"{calibrate}:resnet18")
        probe = run_probe(args, jobs, scratch, results, timeout=120)
        if probe is None and not args.epochs and device_kind(args.device) == "cuda":
            log("the probe failed: epochs fitted to assumed rates")
            probe = {"jobs": {f"{config}:{a}": {"img_per_s": FALLBACK_IMG_PER_S[a]} for a in ARCHS}}
            results.data["probe_fallback"] = FALLBACK_IMG_PER_S
        fitted, extra = config, []
        startup = 30.0  # the trainers' imports, data load and first autotuning
        if probe and not args.epochs:
            fitted, extra = fit_epochs(
                config,
                probe,
                jobs,
                train_deadline - elapsed() - startup,
                n_train,
                len(labels),
                scratch,
                results,
            )
        elif probe and calibrate is not None:
            extra = [f"{calibrate}:resnet18"]

        t0 = time.monotonic()
        runs = scratch / "runs"
        calib_runs = scratch / "calibration"
        procs, cmds = [], []
        if sequential:
            log(f"compute mode {info.get('compute_mode')}: one model at a time")
            stopped = False
            for arch in ARCHS:
                cmd = train_cmd(fitted, arch, data, runs, args)
                cmds.append(" ".join(cmd))
                procs = [subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL)]
                stopped = run_until(procs, train_deadline) or stopped
                if stopped:
                    break
        else:
            cmd = train_cmd(fitted, "all", data, runs, args)
            cmds.append(" ".join(cmd))
            procs.append(subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL))
            for job in extra:
                path, arch = job.split(":")
                cmd = train_cmd(Path(path), arch, data, calib_runs, args)
                cmds.append(" ".join(cmd))
                with open(scratch / "calibration.log", "wb") as log_file:
                    procs.append(
                        subprocess.Popen(
                            cmd,
                            cwd=ROOT,
                            stdin=subprocess.DEVNULL,
                            stdout=log_file,
                            stderr=subprocess.STDOUT,
                        )
                    )
            stopped = run_until(procs, train_deadline)
        results.data["train_commands"] = cmds
        results.data["stopped_at_deadline"] = stopped
        results.data["train_exit_codes"] = [p.returncode for p in procs]
        results.step("train", time.monotonic() - t0)
        keep_small_files(runs, out / "runs")
        keep_small_files(calib_runs, out / "calibration")

        t0 = time.monotonic()
        import numpy as np
        import torch

        from fer_tui.models import resolve_device

        device = resolve_device(args.device)
        results.data["eval_device"] = (
            torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        )
        probs = evaluate_runs(
            run_dirs(runs), (images, labels), device, out, scratch, stopped, results, ship=True
        )
        if len(probs) > 1:
            results.data["ensemble"] = {
                "models": len(probs),
                "test": metrics(labels, np.mean(probs, axis=0)),
            }
            log(
                f"ensemble of {len(probs)}: test acc "
                f"{results.data['ensemble']['test']['accuracy']:.4f}"
            )
        evaluate_runs(
            run_dirs(calib_runs),
            (images, labels),
            device,
            out,
            scratch,
            stopped,
            results,
            ship=False,
        )
        results.step("evaluate", time.monotonic() - t0)
        keep_small_files(runs, out / "runs")  # again: the ends of the logs
        status = (
            0
            if len(probs) == len(ARCHS)
            and not any(c not in (0, None) for c in results.data["train_exit_codes"])
            else 1
        )

        if not args.no_extras:
            pack_now(out)  # the main results come back even if an optional check overruns
            extras: dict[str, Any] = {}
            results.data["extras"] = extras
            left = args.time_limit - elapsed() - 10
            if left > 40:
                t0 = time.monotonic()
                try:
                    extras["resume"] = resume_check(data, args.device, scratch, left - 20)
                except Exception as exc:  # an optional check never fails the run
                    extras["resume"] = {"error": f"{type(exc).__name__}: {exc}"}
                results.step("resume_check", time.monotonic() - t0)
            left = args.time_limit - elapsed() - 10
            if left > 60 and device.type == "cuda":
                t0 = time.monotonic()
                try:
                    extras["compile"] = compile_bench(args.device, out, left)
                except Exception as exc:
                    extras["compile"] = {"error": f"{type(exc).__name__}: {exc}"}
                results.step("compile_bench", time.monotonic() - t0)
    except Exception as exc:
        import traceback

        results.data["error"] = f"{type(exc).__name__}: {exc}"
        results.data["traceback"] = traceback.format_exc()
        log(f"failed: {results.data['error']}")
    finally:
        results.save()
        pack_now(out)
        log(f"wrote {out / 'results.json'} (total {elapsed():.0f}s); scratch in {scratch}")
    return status


def pack_now(out: Path) -> None:
    """Batch 1 of <out> into $OUT, which a remote machine hands back (no $OUT: nothing)."""
    dest = os.environ.get("OUT")
    if not dest:
        return
    sys.path.insert(0, str(ROOT / "tools"))
    from device_pack import pack

    manifest = pack(out, Path(dest), 1)
    log(f"packed batch 1 of {manifest['batches']} into $OUT")


if __name__ == "__main__":
    sys.exit(main())
