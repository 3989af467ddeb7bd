"""Readers for the forms FER-2013 comes in, detected from the path alone.

- folder: the Kaggle layout `train/<class>/*.jpg`, `test/<class>/*.jpg`
- zip:    Kaggle's `archive.zip`, the same layout inside (possibly under one or more folders)
- tar:    a `.tar`, `.tar.gz`, `.tgz` (or .bz2/.xz) of that layout, streamed (nothing unpacked)
- csv:    the original `fer2013.csv` (emotion,pixels,Usage); parsed in `fer_tui.data.csvfile`

The image readers yield `Entry` records in whatever order the source stores them; `load.py`
decodes them in a thread pool and sorts them. Neither cv2 nor torch is imported here.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from fer_tui.data.index import CLASSES, SPLITS, class_index
from fer_tui.data.records import Problem
from fer_tui.errors import DataError

#: Bump when decoding changes, so caches written by an older loader are rebuilt.
LOADER_VERSION = 1

EXPECTED_LAYOUT = "train/<class>/*.jpg and test/<class>/*.jpg with <class> one of " + ", ".join(
    CLASSES
)
HOW_TO_GET = (
    "Get FER-2013 from Kaggle (msambare/fer2013: archive.zip, or its unpacked train/ and test/ "
    "folders) or the original fer2013.csv, then pass --data PATH or set FER_TUI_DATA"
)

# files a desktop or an unzip tool leaves beside the images; never data, never a problem
_JUNK_NAMES = {"thumbs.db", "desktop.ini", "__macosx"}
_JUNK_FILES = {"Thumbs.db", "thumbs.db", "desktop.ini", "Desktop.ini"}
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


@dataclass
class Entry:
    """One image file of an image-format source, not decoded yet."""

    split: str
    label: int
    name: str
    """Path inside the source, normalised to `<split>/<class>/<file>` (prefix folders dropped)."""
    data: bytes | Path
    """The encoded bytes (archives), or the file to read (folders; read in the decode thread)."""


def _is_junk(part: str) -> bool:
    return part.startswith(".") or part.lower() in _JUNK_NAMES


def detect_format(path: Path) -> tuple[str, Path]:
    """`(format, path)` for a dataset path; a folder holding one archive or CSV resolves to it.

    Raises:
        DataError: the path is not one of the known forms.
    """
    if path.is_dir():
        return _detect_folder(path)
    if not path.is_file():
        raise DataError(f"{path} is neither a file nor a folder. {HOW_TO_GET}.")
    name = path.name.lower()
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror}); check its permissions") from exc
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip", path
    if (
        name.endswith(_TAR_SUFFIXES)
        or head[:2] == b"\x1f\x8b"
        or head[:3] == b"BZh"
        or head[:6] == b"\xfd7zXZ\x00"
        or head[257:262] == b"ustar"
    ):
        return "tar", path
    if name.endswith(".csv") or head.lstrip(b"\xef\xbb\xbf").lower().startswith(b"emotion"):
        return "csv", path
    raise DataError(
        f"{path} is not a FER-2013 dataset fer-tui can read: expected a folder with "
        f"{EXPECTED_LAYOUT}, a .zip or .tar.gz of that folder, or fer2013.csv"
    )


def _split_dirs(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    try:
        children = list(os.scandir(root))
    except OSError as exc:
        raise DataError(f"cannot list {root} ({exc.strerror}); check its permissions") from exc
    for child in children:
        if child.is_dir() and child.name.lower() in SPLITS:
            found[child.name.lower()] = Path(child.path)
    return found


def _detect_folder(root: Path) -> tuple[str, Path]:
    if _split_dirs(root):
        return "folder", root
    children = sorted(p for p in root.iterdir() if not _is_junk(p.name))
    # one level of wrapping, as unzip tools leave it: fer2013/archive/train/...
    dirs = [p for p in children if p.is_dir() and _split_dirs(p)]
    if len(dirs) == 1:
        return "folder", dirs[0]
    # a folder (./data/fer2013, say) holding the download itself
    files = [
        p
        for p in children
        if p.is_file()
        and (p.suffix.lower() in (".zip", ".csv") or p.name.lower().endswith(_TAR_SUFFIXES))
    ]
    if len(files) == 1:
        return detect_format(files[0])
    shown = ", ".join(p.name + ("/" if p.is_dir() else "") for p in children[:8]) or "nothing"
    more = f" and {len(children) - 8} more" if len(children) > 8 else ""
    if len(files) > 1:
        listed = ", ".join(p.name for p in files)
        raise DataError(f"{root} holds several datasets ({listed}): pass one of them with --data")
    raise DataError(
        f"{root} does not look like FER-2013: expected {EXPECTED_LAYOUT} (or a .zip, .tar.gz "
        f"or fer2013.csv), found {shown}{more}"
    )


def file_fingerprint(path: Path, fmt: str) -> str:
    """Key of a single-file source: its absolute path, size and mtime (no reading)."""
    st = path.stat()
    key = f"v{LOADER_VERSION}|{fmt}|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class FolderSource:
    """The Kaggle folder layout. Listing it (names, sizes, mtimes) gives the fingerprint."""

    format = "folder"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[Problem] = []
        #: (split, label, class folder path, sorted file names) per class folder
        self._folders: list[tuple[str, int, str, list[str]]] = []
        lines = [f"v{LOADER_VERSION}|folder|{root.resolve()}"]
        try:
            self._scan(root, lines)
        except OSError as exc:
            raise DataError(
                f"cannot list {exc.filename or root} ({exc.strerror}); check its permissions"
            ) from exc
        lines[1:] = sorted(lines[1:])
        self.fingerprint = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
        self.total: int | None = sum(len(files) for *_, files in self._folders)
        if not self.total:
            raise DataError(
                f"{root} has no images in class folders: expected {EXPECTED_LAYOUT}"
                + _found_summary(root)
            )

    def _scan(self, root: Path, lines: list[str]) -> None:
        """List the class folders into `_folders`, one fingerprint line per file into `lines`."""
        # one stat per file is the whole cost of a cached load of a folder, so this loop stays
        # lean: no Path objects, one hash update at the end
        for split, split_dir in sorted(_split_dirs(root).items()):
            for class_dir in sorted(os.scandir(split_dir), key=lambda e: e.name):
                if _is_junk(class_dir.name) or not class_dir.is_dir():
                    continue
                files = []
                prefix = f"{split}/{class_dir.name}/"
                with os.scandir(class_dir.path) as it:
                    for f in it:
                        name = f.name
                        if name[0] == "." or name in _JUNK_FILES or not f.is_file():
                            continue
                        st = f.stat()
                        files.append(name)
                        lines.append(f"{prefix}{name}|{st.st_size}|{st.st_mtime_ns}")
                files.sort()
                label = class_index(class_dir.name)
                if label is None:
                    self.problems.append(_unknown_class(split, class_dir.name, len(files)))
                    continue
                self._folders.append((split, label, class_dir.path, files))

    def read(self) -> Iterator[Entry]:
        for split, label, folder, files in self._folders:
            prefix = f"{split}/{CLASSES[label]}/"
            for name in files:
                yield Entry(split, label, prefix + name, Path(folder, name))

    def position(self) -> tuple[int, int] | None:
        return None


def _found_summary(root: Path) -> str:
    parts = []
    for split, split_dir in sorted(_split_dirs(root).items()):
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in split_dir.iterdir())
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        parts.append(f"{split}/ holds {shown or 'nothing'}")
    return " (" + "; ".join(parts) + ")" if parts else ""


def _unknown_class(split: str, folder: str, n: int) -> Problem:
    return Problem(
        "unknown_class",
        f"{split}/{folder}/ is not one of the classes ({', '.join(CLASSES)}); "
        f"its {n} file(s) were skipped",
        f"{split}/{folder}",
        count=n,
    )


class _MemberSorter:
    """Classifies archive member names as `<prefix>/<split>/<class>/<file>` images.

    Every image must share one prefix (`""`, `archive/`, ...); two different prefixes mean two
    copies of the dataset in one archive, which is an error rather than a guess.
    """

    def __init__(self, archive: Path) -> None:
        self.archive = archive
        self.prefixes: dict[str, int] = {}
        self.unknown: dict[tuple[str, str], int] = {}
        self.tops: list[str] = []

    def classify(self, member: str) -> tuple[str, int, str] | None:
        """`(split, label, normalised name)` for an image member, else None."""
        # zips made on Windows may use backslashes
        parts = [p for p in PurePosixPath(member.replace("\\", "/")).parts if p not in (".", "/")]
        if parts and parts[0] not in self.tops and len(self.tops) < 50:
            self.tops.append(parts[0])
        if len(parts) < 3 or any(_is_junk(p) for p in parts):
            return None
        split, folder, fname = parts[-3].lower(), parts[-2], parts[-1]
        if split not in SPLITS:
            return None
        prefix = "/".join(parts[:-3])
        self.prefixes[prefix] = self.prefixes.get(prefix, 0) + 1
        label = class_index(folder)
        if label is None:
            self.unknown[(split, folder)] = self.unknown.get((split, folder), 0) + 1
            return None
        return split, label, f"{split}/{CLASSES[label]}/{fname}"

    def finish(self, what: str) -> list[Problem]:
        """Problems found, or DataError when the archive has no usable layout."""
        if len(self.prefixes) > 1:
            copies = ", ".join((p or "the top level") for p in sorted(self.prefixes))
            raise DataError(
                f"{self.archive} holds more than one train/ and test/ ({copies}); expected a "
                f"single copy of {EXPECTED_LAYOUT}. Repack it with one copy, or unpack it and "
                f"pass the folder you want with --data"
            )
        if not self.prefixes:
            shown = ", ".join(self.tops[:8]) or "nothing"
            csvs = [t for t in self.tops if t.lower().endswith(".csv")]
            hint = (
                f". It holds {csvs[0]}: extract it and pass that file with --data" if csvs else ""
            )
            raise DataError(
                f"{self.archive}: unexpected structure for a FER-2013 {what}: expected "
                f"{EXPECTED_LAYOUT} inside (possibly under one top folder), found {shown} at "
                f"its top level{hint}"
            )
        return [_unknown_class(s, f, n) for (s, f), n in sorted(self.unknown.items())]


class ZipSource:
    """Kaggle's `archive.zip`: the member list is read first, so the total is known."""

    format = "zip"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fingerprint = file_fingerprint(path, self.format)
        try:
            with zipfile.ZipFile(path) as zf:
                infos = [i for i in zf.infolist() if not i.is_dir()]
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataError(
                f"{path} is not a readable zip file ({exc}); download it again"
            ) from exc
        sorter = _MemberSorter(path)
        self._members = [(info, c) for info in infos if (c := sorter.classify(info.filename))]
        self.problems = sorter.finish("zip")
        self.total: int | None = len(self._members)

    def read(self) -> Iterator[Entry]:
        try:
            with zipfile.ZipFile(self.path) as zf:
                for info, (split, label, name) in self._members:
                    yield Entry(split, label, name, zf.read(info))
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise DataError(
                f"{self.path} is truncated or corrupt ({exc}); download it again"
            ) from exc

    def position(self) -> tuple[int, int] | None:
        return None


class TarSource:
    """A tar (optionally gz/bz2/xz) of the folder layout, read as one stream, in member order.

    The number of images is not known until the end, so progress is in compressed bytes.
    """

    format = "tar"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fingerprint = file_fingerprint(path, self.format)
        self.size = path.stat().st_size
        self.problems: list[Problem] = []
        self.total: int | None = None
        self._file: BinaryIO | None = None

    def read(self) -> Iterator[Entry]:
        sorter = _MemberSorter(self.path)
        try:
            with open(self.path, "rb") as raw:
                self._file = raw
                with tarfile.open(fileobj=raw, mode="r|*") as tf:
                    for member in tf:
                        if not member.isfile():
                            continue
                        c = sorter.classify(member.name)
                        if c is None:
                            continue
                        f = tf.extractfile(member)
                        if f is not None:
                            yield Entry(c[0], c[1], c[2], f.read())
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DataError(
                f"{self.path} is not a readable tar archive or is truncated ({exc}); "
                f"download it again"
            ) from exc
        finally:
            self._file = None
        self.problems = sorter.finish("tar archive")

    def position(self) -> tuple[int, int] | None:
        raw = self._file
        if raw is None:
            return (self.size, self.size)
        try:
            return (raw.tell(), self.size)
        except (OSError, ValueError):  # closed under us by the reading thread
            return None
