"""`fer-tui stats`: per-split, per-class counts, imbalance, pixel statistics and problems."""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from fer_tui.progress import ProgressBar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print the statistics as one JSON document"
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="decode the source again and do not read or write the cache",
    )


class ProgressLine(ProgressBar):
    """The decode bar: drawn only on a terminal, erased at the end so the table starts clean."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        # tar and CSV sources report compressed bytes, so show the percentage, not the count
        super().__init__(label, stream=stream, count=False)

    def close(self, *, keep: bool = False, info: str = "") -> None:
        super().close(keep=keep, info=info)


def _fmt_share(n: int, total: int) -> str:
    return f"{100 * n / total:5.1f}%" if total else "    -"


def format_table(stats: dict) -> str:
    """The human-readable report of `dataset_stats` output."""
    classes: list[str] = stats["classes"]
    splits: dict[str, dict] = stats["splits"]
    names = [n for n in ("train", "test", "public_test", "private_test") if n in splits]
    lines = [
        f"FER-2013 at {stats['source']} ({stats['format']}, fingerprint {stats['fingerprint']})",
        "",
    ]
    header = f"{'class':<10}" + "".join(
        f"{n:>10} {'share':>6}" if n in ("train", "test") else f"{n:>13}" for n in names
    )
    lines.append(header)
    lines.append("-" * len(header))
    for cls in [*classes, "total"]:
        row = f"{cls:<10}"
        for n in names:
            total = splits[n]["total"]
            count = total if cls == "total" else splits[n]["classes"][cls]
            if n in ("train", "test"):
                row += f"{count:>10,} {_fmt_share(count, total):>6}"
            else:
                row += f"{count:>13,}"
        lines.append(row)
    imb = stats["imbalance"]
    ratio = f"{imb['ratio']:.2f}x" if imb["ratio"] is not None else "infinite (an empty class)"
    lines += [
        "",
        f"imbalance (train): largest/smallest = {imb['largest']}/{imb['smallest']} = {ratio}",
        f"pixels (train+test, 0-255): mean {_num(stats['pixel_mean'])}, "
        f"std {_num(stats['pixel_std'])}",
        f"exact duplicates: {stats['duplicates_across_splits']:,} test image(s) also in train; "
        f"repeats within train {stats['duplicates_within_splits']['train']:,}, within test "
        f"{stats['duplicates_within_splits']['test']:,}",
        "",
    ]
    problems = stats["problems"]
    if not problems:
        lines.append("problems: none")
    else:
        lines.append(f"problems ({len(problems)}):")
        shown = problems[:40]
        for p in shown:
            lines.append(f"  {p['kind']:<24} {p['message']}")
        if len(problems) > len(shown):
            lines.append(f"  ... and {len(problems) - len(shown)} more (see --json)")
    return "\n".join(lines)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def run(args: argparse.Namespace) -> int:
    from fer_tui.data.load import load_dataset, resolve_source
    from fer_tui.data.stats import dataset_stats

    source = resolve_source(getattr(args, "data", None))
    bar = ProgressLine(
        f"decoding {source.name}"
        if args.no_cache
        else f"decoding {source.name} (first time; cached afterwards)"
    )
    try:
        data = load_dataset(source, cache=not args.no_cache, progress=bar)
    finally:
        bar.close()
    stats = dataset_stats(data)
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        print(format_table(stats))
    return 0
