"""Bring a GPU run's output folder back from a remote machine in batches, and put it together.

A remote GPU machine that hands back what a command leaves in `$OUT` may cap what one call
returns: here, at most 8 files per call, 16 MiB each, 64 MiB together, while the three
fp16 checkpoints alone are ~107 MiB. So the output stays on the device (in the ignored `out/`,
which a warm machine keeps between calls) and comes back in batches, one per call:

    # on the device, right after `OUT=out bash tools/gpu_train_all.sh`:
    python3 tools/device_pack.py pack out "$OUT" --batch 1    # says how many batches
    python3 tools/device_pack.py pack out "$OUT" --batch 2    # next call, at once
    # here, with each call's files_at folder:
    python3 tools/device_pack.py join FILES_AT_1 FILES_AT_2 --dest gpu-out

- Files under 1 MiB (results.json, events.jsonl, config.toml, logs) travel together in one
  `small.tar.gz` in every batch, as they are when that batch is packed (so a later batch brings
  results written after the first one; `join` keeps the last folder's); larger files are cut
  into parts of at most 15 MiB.
- Parts are assigned to batches in a fixed order, so any batch can be made on its own, and each
  batch carries `manifest.json`: every file's path, size, sha256, parts and batch.
- `join` checks every part is there and every file's sha256, and names what is missing.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, no install

from fer_tui.files import file_sha256  # noqa: E402  (no torch: cheap to import)

PART = 15 * 2**20
SMALL = 2**20
BATCH_FILES = 7  # small.tar.gz and the parts; plus the manifest: 8 files a call
BATCH_BYTES = 60 * 2**20  # under its 64 MiB, the manifest and the small files' tarball beside


def _safe(rel: str) -> str:
    """A part's file name: letters, digits, '.', '_' and '-' only (what such a machine accepts)."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in rel.replace("/", "__"))


def plan(
    src: Path,
    part: int = PART,
    batch_files: int = BATCH_FILES,
    batch_bytes: int = BATCH_BYTES,
    small_size: int = SMALL,
) -> dict[str, Any]:
    """The manifest: which part of which file goes in which batch."""
    files = sorted(p for p in src.rglob("*") if p.is_file())
    small = [p for p in files if p.stat().st_size < small_size]
    large = [p for p in files if p.stat().st_size >= small_size]
    entries, batch, used_files, used_bytes = [], 1, 1, 0  # batch 1 holds small.tar.gz
    for p in large:
        size = p.stat().st_size
        rel = p.relative_to(src).as_posix()
        parts = []
        for i, start in enumerate(range(0, size, part)):
            length = min(part, size - start)
            if used_files + 1 > batch_files or used_bytes + length > batch_bytes:
                batch, used_files, used_bytes = batch + 1, 1, 0  # 1: its small.tar.gz
            parts.append(
                {
                    "name": f"{_safe(rel)}.part{i:02d}",
                    "offset": start,
                    "length": length,
                    "batch": batch,
                }
            )
            used_files += 1
            used_bytes += length
        entries.append({"path": rel, "size": size, "sha256": file_sha256(p), "parts": parts})
    return {
        "version": 1,
        "batches": batch,
        "small": [p.relative_to(src).as_posix() for p in small],
        "files": entries,
    }


def pack(src: Path, dest: Path, batch: int, **limits: int) -> dict[str, Any]:
    """Write batch `batch` of `src` into `dest`; return the manifest."""
    manifest = plan(src, **limits)
    if not 1 <= batch <= manifest["batches"]:
        raise ValueError(f"there is no batch {batch}: {src} packs into {manifest['batches']}")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest / "small.tar.gz", "w:gz") as tar:
        for rel in manifest["small"]:
            tar.add(src / rel, arcname=rel)
    for entry in manifest["files"]:
        for part in entry["parts"]:
            if part["batch"] != batch:
                continue
            with open(src / entry["path"], "rb") as fh:
                fh.seek(part["offset"])
                (dest / part["name"]).write_bytes(fh.read(part["length"]))
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def join(dirs: list[Path], dest: Path) -> list[str]:
    """Put the files of all batches in `dirs` back together under `dest`; return problems."""
    problems = [f"{d} is not a folder" for d in dirs if not d.is_dir()]
    dirs = [d for d in dirs if d.is_dir()]
    manifests = [
        json.loads((d / "manifest.json").read_text())
        for d in dirs
        if (d / "manifest.json").is_file()
    ]
    if not manifests:
        return [*problems, f"no manifest.json in {', '.join(map(str, dirs)) or 'any folder'}"]
    manifest = manifests[0]
    # a later folder's small.tar.gz is newer: it was packed after more results were written
    found = {p.name: p for d in dirs for p in d.iterdir() if p.is_file()}
    dest.mkdir(parents=True, exist_ok=True)
    if "small.tar.gz" in found:
        with tarfile.open(found["small.tar.gz"]) as tar:
            tar.extractall(dest, filter="data")
    else:
        problems.append("small.tar.gz is missing")
    for entry in manifest["files"]:
        missing = [p for p in entry["parts"] if p["name"] not in found]
        if missing:
            batches = sorted({p["batch"] for p in missing})
            problems.append(f"{entry['path']}: parts of batch {batches} are missing")
            continue
        buf = io.BytesIO()
        for part in entry["parts"]:
            buf.write(found[part["name"]].read_bytes())
        data = buf.getvalue()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            problems.append(f"{entry['path']}: sha256 differs from the device's (corrupt part)")
            continue
        out = dest / entry["path"]
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(out)
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="write one batch of SRC into DEST (on the device)")
    p.add_argument("src", type=Path)
    p.add_argument("dest", type=Path)
    p.add_argument("--batch", type=int, default=1)
    j = sub.add_parser("join", help="put the batches back together (here)")
    j.add_argument("dirs", type=Path, nargs="+")
    j.add_argument("--dest", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.cmd == "pack":
        if not args.src.is_dir():
            print(f"device_pack: no folder {args.src}", file=sys.stderr)
            return 2
        try:
            manifest = pack(args.src, args.dest, args.batch)
        except ValueError as exc:
            print(f"device_pack: {exc}", file=sys.stderr)
            return 2
        sizes = sum(f.stat().st_size for f in args.dest.iterdir() if f.is_file())
        print(
            f"batch {args.batch} of {manifest['batches']}: "
            f"{len(list(args.dest.iterdir()))} files, {sizes / 2**20:.1f} MiB in {args.dest}"
        )
        return 0
    problems = join(args.dirs, args.dest)
    for line in problems:
        print(f"device_pack: {line}", file=sys.stderr)
    if not problems:
        print(f"joined into {args.dest}")
    return 2 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
