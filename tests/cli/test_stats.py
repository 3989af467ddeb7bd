"""`fer-tui stats`: the table, the JSON, and bad input as a message with exit code 2."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fer_tui.cli import main
from fer_tui.commands.stats import ProgressLine
from tests.data_builders import add_bytes_to_zip, csv_rows, make_zip, write_csv


def test_json_has_counts_per_split_and_class(tiny_data: Path, capsys) -> None:
    """--json prints one document with the documented shape and the synthetic counts."""
    assert main(["stats", "--data", str(tiny_data), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["format"] == "folder"
    assert out["splits"]["train"]["total"] == 56
    assert out["splits"]["test"]["classes"]["angry"] == 4
    assert out["classes"][0] == "angry"
    assert isinstance(out["problems"], list)


def test_table_shows_counts_totals_and_problems(tiny_data: Path, capsys) -> None:
    """The table lists each class with its count and share, the totals and the imbalance."""
    assert main(["--data", str(tiny_data), "stats"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert lines["happy"][1:5] == ["8", "14.3%", "4", "14.3%"]
    assert lines["total"][1] == "56"
    assert "imbalance (train)" in out and "problems: none" in out


def test_csv_bad_row_is_listed_in_the_table(tmp_path: Path, capsys) -> None:
    """A bad CSV row is reported by line number while the rest is counted."""
    path = write_csv(
        tmp_path / "fer2013.csv",
        csv_rows({"Training": 1, "PublicTest": 1, "PrivateTest": 1}),
        extra_lines={2: "3,1 2 3,Training"},
    )
    assert main(["stats", "--data", str(path)]) == 0
    out = capsys.readouterr().out
    assert "bad_row" in out and "fer2013.csv line 3" in out
    assert "public_test" in out


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "no dataset at"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "does not look like FER-2013"),
        (lambda p: (p / "x.csv").write_text("a,b\n") and p / "x.csv", "line 1 is not"),
    ],
    ids=["missing", "wrong-layout", "bad-csv-header"],
)
def test_bad_data_exits_2_with_a_message(tmp_path: Path, capsys, make, message: str) -> None:
    """Bad --data gives one `fer-tui: error:` line on stderr and exit code 2."""
    path = make(tmp_path)
    assert main(["stats", "--data", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fer-tui: error:") and message in err
    assert "Traceback" not in err


def test_unexpected_zip_structure_from_the_real_command(tmp_path: Path, tiny_data: Path) -> None:
    """The installed entry point prints no traceback for a zip of the wrong shape."""
    zpath = tmp_path / "archive.zip"
    add_bytes_to_zip(zpath, "photos/a.jpg", b"x")
    proc = subprocess.run(
        [sys.executable, "-m", "fer_tui", "stats", "--data", str(zpath)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "unexpected structure" in proc.stderr and "Traceback" not in proc.stderr
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "fer_tui",
            "stats",
            "--json",
            "--data",
            str(make_zip(tiny_data, tmp_path / "good.zip")),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0 and json.loads(ok.stdout)["format"] == "zip"
    # not a tty: no progress bar escapes mixed into stderr
    assert "\r" not in ok.stderr


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_draws_bar_and_eta_only_on_a_tty() -> None:
    """On a terminal the bar shows percent and ETA and is erased at the end; piped, nothing."""
    tty = _Tty()
    bar = ProgressLine("decoding x", stream=tty)
    bar(1, 4)
    bar(4, 4)
    bar.close()
    out = tty.getvalue()
    assert "decoding x [" in out and "100%" in out and "ETA" in out
    assert out.endswith("\r\x1b[2K")
    piped = io.StringIO()
    quiet = ProgressLine("decoding x", stream=piped)
    quiet(4, 4)
    quiet.close()
    assert piped.getvalue() == ""
