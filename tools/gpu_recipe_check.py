"""Preview what a recipe will reach before spending hours of CPU on it: train several config
variants side by side on one GPU and evaluate each one's final weights on the test split.

    python tools/gpu_recipe_check.py --out out/check --data fer2013.tar.gz --deadline 480 \\
        --job r50=configs/cpu.toml:resnet50 \\
        --job r50-full=configs/cpu.toml:resnet50:train.low_res_size=none \\
        --job r34=configs/cpu.toml:resnet34

A job is NAME=CONFIG:ARCH[:section.key=value,...]; values are TOML (`0`, `0.05`, `"cosine"`)
or `none` to unset.
Every job trains on `cuda` with its config's epochs, holdout and EMA as written, in its own
process (they share the GPU by time-slicing). At --deadline seconds (from the start) the jobs
still training get SIGTERM and are reported as stopped. Each run's weights are chosen as
`fer-tui ship` chooses them (the EMA when it wins on the holdout), then evaluated on the test
split; <out>/results.json gets, per job: epochs done, wall seconds, the holdout curve, and test
accuracy, weighted F1, macro AUC and per-class F1. The run dirs stay in <out>/runs/<job>.

The CPU smoke test of this script:
    python tools/gpu_recipe_check.py --out /tmp/chk --data DIR --device cpu --limit 300 \\
        --job a=configs/smoke.toml:resnet18 --deadline 300
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import tomllib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def parse_job(text: str) -> tuple[str, Path, str, dict[str, dict[str, Any]]]:
    name, _, spec = text.partition("=")
    parts = spec.split(":")
    if not name or len(parts) < 2:
        raise SystemExit(f"--job {text!r}: write NAME=CONFIG:ARCH[:section.key=value,...]")
    overrides: dict[str, dict[str, Any]] = {}
    for item in ",".join(parts[2:]).split(","):
        if not item:
            continue
        key, _, value = item.partition("=")
        section, _, field = key.partition(".")
        try:
            parsed = None if value == "none" else tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            raise SystemExit(
                f"--job {text!r}: {value!r} is not a TOML value (quote strings)"
            ) from None
        overrides.setdefault(section, {})[field] = parsed
    return name, Path(parts[0]), parts[1], overrides


def write_config(
    path: Path, arch: str, overrides: dict[str, dict[str, Any]], device: str, dest: Path
) -> Path:
    from fer_tui.config import load_config, to_toml
    from fer_tui.errors import FerError

    try:
        cfg = load_config(path).for_arch(arch)
        train = {**overrides.get("train", {}), "device": device}
        cfg = cfg.replace(**{**overrides, "train": train})
    except FerError as exc:
        raise SystemExit(f"{dest.stem}: {exc}") from None
    dest.write_text(to_toml(cfg))
    return dest


def unpack(data: Path, scratch: Path) -> Path:
    if data.is_dir():
        return data
    with tarfile.open(data) as tar:
        tar.extractall(scratch / "data", filter="data")
    return scratch / "data"


def holdout_curve(run_dir: Path) -> list[dict[str, Any]]:
    from fer_tui.errors import FerError
    from fer_tui.runs import read_run

    try:
        history = read_run(run_dir).history
    except FerError:  # the trainer died before writing its events
        return []
    keys = ("epoch", "train_acc", "val_acc", "val_acc_ema", "seconds")
    return [
        {k: round(e[k], 4) if isinstance(e.get(k), float) else e.get(k) for k in keys}
        for e in history
    ]


def evaluate(run_dir: Path, data: Path, device: str, stopped: bool) -> dict[str, Any]:
    from fer_tui.shipping import final_weights

    weights = final_weights(run_dir, unfinished=stopped)
    if weights is None:
        return {"error": "no weights to evaluate"}
    out = run_dir / "test.json"
    cmd = [
        sys.executable,
        "-m",
        "fer_tui.cli",
        "evaluate",
        "--checkpoint",
        str(weights),
        "--data",
        str(data),
        "--device",
        device,
        "--json",
        str(out),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    report = json.loads(out.read_text())
    return {
        "weights": weights.name,
        "accuracy": report["accuracy"],
        "weighted_f1": report["weighted_avg"]["f1-score"],
        "auc_macro_ovr": report["auc_macro_ovr"],
        "class_f1": {c: round(v["f1-score"], 3) for c, v in report["classes"].items()},
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--data", required=True, help="FER-2013 .tar.gz or an unpacked folder")
    p.add_argument("--job", action="append", required=True)
    p.add_argument("--deadline", type=float, default=480.0, help="seconds from the start")
    p.add_argument("--device", default="cuda")
    p.add_argument("--limit", type=int, default=None, help="N images per split (smoke test)")
    args = p.parse_args()

    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"jobs": {}}

    def save() -> None:
        results["wall_seconds"] = round(time.monotonic() - T0, 1)
        (out / "results.json").write_text(json.dumps(results, indent=2))

    import torch

    results["torch"] = torch.__version__
    results["gpu"] = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    scratch = Path(tempfile.mkdtemp(prefix="fer-check-"))
    data = unpack(Path(args.data), scratch)
    from fer_tui.data.load import load_dataset

    load_dataset(data)  # fill the decode cache once, before the jobs read it side by side
    log(f"data ready in {data}")

    procs: dict[str, tuple[subprocess.Popen[bytes], float]] = {}
    for text in args.job:
        name, config, arch, overrides = parse_job(text)
        run_dir = out / "runs" / name
        cfg_path = write_config(config, arch, overrides, args.device, out / f"{name}.toml")
        cmd = [
            sys.executable,
            "-m",
            "fer_tui.cli",
            "train",
            "--config",
            str(cfg_path),
            "--arch",
            arch,
            "--data",
            str(data),
            "--run-dir",
            str(run_dir),
        ]
        if args.limit:
            cmd += ["--limit", str(args.limit)]
        log_file = open(out / f"{name}.log", "wb")  # noqa: SIM115  (the child owns it)
        procs[name] = (
            subprocess.Popen(
                cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
            ),
            time.monotonic(),
        )
        results["jobs"][name] = {"spec": text}
    save()

    ended: dict[str, float] = {}
    stopped: set[str] = set()
    while len(ended) < len(procs):
        for name, (proc, started) in procs.items():
            if name not in ended and proc.poll() is not None:
                ended[name] = time.monotonic() - started
                log(f"{name} ended (exit {proc.returncode}) after {ended[name]:.0f}s")
        if time.monotonic() - T0 > args.deadline:
            for name, (proc, _) in procs.items():
                if name not in ended:
                    proc.send_signal(signal.SIGTERM)
                    stopped.add(name)
            for name, (proc, started) in procs.items():
                if name not in ended:
                    proc.wait(timeout=60)
                    ended[name] = time.monotonic() - started
            break
        time.sleep(2)

    for name, (proc, _) in procs.items():
        run_dir = out / "runs" / name
        job = results["jobs"][name]
        job.update(
            exit_code=proc.returncode,
            train_seconds=round(ended[name], 1),
            stopped_at_deadline=name in stopped,
            holdout=holdout_curve(run_dir),
        )
        job["test"] = evaluate(run_dir, data, args.device, name in stopped)
        log(f"{name}: {json.dumps(job['test'])}")
        save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
