"""Each form of FER-2013 loads to the same arrays; bad input gives a DataError or a problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_tui.data.index import CLASSES
from fer_tui.data.load import load_dataset, resolve_source
from fer_tui.errors import DataError
from tests.data_builders import (
    add_bytes_to_zip,
    csv_rows,
    make_tar,
    make_zip,
    tar_bytes,
    write_csv,
)
from tests.helpers import make_folder_dataset, synthetic_faces

PER_SPLIT = {"train": 4, "test": 2}


@pytest.fixture(scope="module")
def png_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lossless (PNG) folder dataset, so every form must give identical pixels."""
    return make_folder_dataset(tmp_path_factory.mktemp("png") / "fer", PER_SPLIT, ext=".png")


def _kinds(data) -> list[str]:
    return [p.kind for p in data.problems]


def _assert_same(a, b) -> None:
    for name in ("train", "test", "public_test", "private_test"):
        assert np.array_equal(a.splits[name].images, b.splits[name].images), name
        assert np.array_equal(a.splits[name].labels, b.splits[name].labels), name
        assert a.splits[name].names == b.splits[name].names, name


def test_folder_layout_loads_counts_and_subsplits(png_folder: Path) -> None:
    """The Kaggle folder layout gives uint8 48x48 arrays, counts per class, and test sub-splits."""
    data = load_dataset(png_folder)
    assert data.format == "folder"
    train, test = data.splits["train"], data.splits["test"]
    assert train.images.shape == (4 * 7, 48, 48) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64
    assert train.counts() == dict.fromkeys(CLASSES, 4)
    assert test.counts() == dict.fromkeys(CLASSES, 2)
    assert train.names[0] == "train/angry/Training_000000.png"
    # PublicTest_* and PrivateTest_* names split "test" in two; "test" is their union
    assert len(data.splits["public_test"]) == len(data.splits["private_test"]) == 7
    assert sorted(data.splits["public_test"].names + data.splits["private_test"].names) == sorted(
        test.names
    )
    # the pixels are the ones written
    assert np.array_equal(train.images[:4], synthetic_faces(4, 0, 0))


@pytest.mark.parametrize("prefix", ["", "archive/", "fer2013/archive/"])
def test_zip_gives_the_same_arrays_as_the_folder(
    png_folder: Path, tmp_path: Path, prefix: str
) -> None:
    """archive.zip loads without unpacking, with train/ test/ at the top or under folders."""
    zpath = make_zip(png_folder, tmp_path / "archive.zip", prefix)
    add_bytes_to_zip(zpath, "__MACOSX/archive/train/angry/._x.png", b"junk")  # macOS litter
    data = load_dataset(zpath)
    assert data.format == "zip" and data.problems == []
    _assert_same(data, load_dataset(png_folder))


@pytest.mark.parametrize("name", ["fer2013.tar.gz", "fer2013.tgz", "fer2013.tar"])
def test_tar_gives_the_same_arrays_as_the_folder(
    png_folder: Path, tmp_path: Path, name: str
) -> None:
    """A tar(.gz) of the folder layout is streamed straight into the same arrays."""
    tpath = make_tar(png_folder, tmp_path / name, prefix="./fer2013/")
    data = load_dataset(tpath)
    assert data.format == "tar" and data.problems == []
    _assert_same(data, load_dataset(png_folder))


def test_csv_maps_emotion_ids_and_usage(tmp_path: Path) -> None:
    """fer2013.csv ids map onto CLASSES; Usage makes train, test and the two test parts."""
    rows = csv_rows({"Training": 3, "PublicTest": 2, "PrivateTest": 1})
    data = load_dataset(write_csv(tmp_path / "fer2013.csv", rows))
    assert data.format == "csv"
    assert data.splits["train"].counts() == dict.fromkeys(CLASSES, 3)
    assert len(data.splits["public_test"]) == 14 and len(data.splits["private_test"]) == 7
    # "test" keeps file order: all PublicTest rows come first in this file
    test = data.splits["test"]
    assert test.names[:14] == data.splits["public_test"].names
    assert test.names[0] == "line 23"  # header + 21 training rows, then the first test row
    # a "sad" image (CSV id 4) is labelled CLASSES.index("sad") with its exact pixels
    sad = CLASSES.index("sad")
    first_sad = int(np.flatnonzero(data.splits["train"].labels == sad)[0])
    assert np.array_equal(data.splits["train"].images[first_sad], rows[sad][1])


def test_csv_without_usage_is_all_training(tmp_path: Path) -> None:
    """A CSV of emotion,pixels only (Kaggle's train.csv) loads as train; no test is a problem."""
    rows = csv_rows({"Training": 2})
    path = tmp_path / "train.csv"
    lines = [f"{c},{' '.join(map(str, img.reshape(-1)))}" for c, img, _ in rows]
    path.write_text("emotion,pixels\n" + "\n".join(lines))
    data = load_dataset(path)
    assert len(data.splits["train"]) == 14 and len(data.splits["test"]) == 0
    assert "missing_split" in _kinds(data)


def test_csv_bad_rows_are_named_by_line_and_skipped(tmp_path: Path) -> None:
    """Each bad row becomes a problem naming its line; every good row still loads."""
    rows = csv_rows({"Training": 2, "PublicTest": 1, "PrivateTest": 1})
    short = " ".join(["7"] * 2303)
    path = write_csv(
        tmp_path / "fer2013.csv",
        rows,
        extra_lines={
            3: f"0,{short},Training",  # line 4: 2303 pixels
            5: f"9,{' '.join(['1'] * 2304)},Training",  # line 6: emotion 9
            7: f"2,{' '.join(['1'] * 2304)},Validation",  # line 8: unknown Usage
            9: f"2,{' '.join(['x'] * 2304)},Training",  # line 10: not numbers
        },
    )
    data = load_dataset(path)
    bad = [p for p in data.problems if p.kind == "bad_row"]
    assert [p.path for p in bad] == ["line 4", "line 6", "line 8", "line 10"]
    assert "2303 pixel values" in bad[0].message and "fer2013.csv line 4" in bad[0].message
    assert "emotion 9" in bad[1].message
    assert "Validation" in bad[2].message
    assert len(data.splits["train"]) + len(data.splits["test"]) == len(rows)


def test_csv_with_a_wrong_header_is_an_error(tmp_path: Path) -> None:
    """A CSV that is not fer2013.csv says what line 1 should be."""
    path = tmp_path / "fer2013.csv"
    path.write_text("label,image\n1,2 3 4\n")
    with pytest.raises(DataError, match="line 1 is not the fer2013.csv header.*emotion,pixels"):
        load_dataset(path)


def test_csv_with_only_bad_rows_is_an_error(tmp_path: Path) -> None:
    """No usable row at all is an error that names the first bad line."""
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels,Usage\n3,1 2 3,Training\n")
    with pytest.raises(DataError, match="no usable rows.*line 2"):
        load_dataset(path)


def test_corrupt_and_non_image_files_are_listed_and_the_rest_loads(tmp_path: Path) -> None:
    """A truncated JPEG and a text file in class folders are named as problems, not fatal."""
    root = make_folder_dataset(tmp_path / "fer", PER_SPLIT)
    (root / "train" / "angry" / "Training_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    (root / "test" / "happy" / "notes.txt").write_text("not an image")
    (root / "train" / "sad" / ".DS_Store").write_bytes(b"\0\0")  # desktop litter: ignored
    data = load_dataset(root)
    unreadable = {p.path: p.message for p in data.problems if p.kind == "unreadable"}
    assert set(unreadable) == {"train/angry/Training_broken.jpg", "test/happy/notes.txt"}
    assert "not a readable image" in unreadable["test/happy/notes.txt"]
    assert data.splits["train"].counts()["angry"] == 4
    assert len(data.splits["test"]) == 14


def test_wrong_size_images_are_resized_and_listed(tmp_path: Path) -> None:
    """A 64x64 or colour image is resized to 48x48 grey and listed as wrong_size."""
    root = make_folder_dataset(tmp_path / "fer", PER_SPLIT)
    big = np.full((64, 64, 3), 200, np.uint8)
    cv2.imwrite(str(root / "train" / "fear" / "Training_big.png"), big)
    data = load_dataset(root)
    wrong = [p for p in data.problems if p.kind == "wrong_size"]
    assert [p.path for p in wrong] == ["train/fear/Training_big.png"]
    assert "64x64" in wrong[0].message
    i = data.splits["train"].names.index("train/fear/Training_big.png")
    assert data.splits["train"].images[i].shape == (48, 48)
    assert abs(int(data.splits["train"].images[i].mean()) - 200) <= 1


def test_empty_class_and_unknown_class_folder_are_problems(tmp_path: Path) -> None:
    """An empty class folder and a folder that is not a class are reported; the rest loads."""
    root = make_folder_dataset(tmp_path / "fer", PER_SPLIT)
    for f in (root / "train" / "disgust").iterdir():
        f.unlink()
    (root / "train" / "contempt").mkdir()
    cv2.imwrite(str(root / "train" / "contempt" / "x.png"), synthetic_faces(1, 0)[0])
    data = load_dataset(root)
    problems = {p.kind: p for p in data.problems}
    assert problems["empty_class"].path == "train/disgust"
    assert problems["unknown_class"].path == "train/contempt"
    assert data.splits["train"].counts()["disgust"] == 0


def test_missing_test_split_is_a_problem_not_an_error(tmp_path: Path) -> None:
    """Train without test loads (the evaluation code refuses later) and says test is missing."""
    root = make_folder_dataset(tmp_path / "fer", {"train": 2})
    data = load_dataset(root)
    assert len(data.splits["test"]) == 0 and data.splits["test"].images.shape == (0, 48, 48)
    missing = [p.message for p in data.problems if p.kind == "missing_split"]
    assert len(missing) == 1 and "has no test images" in missing[0]


def test_folder_wrapped_in_one_more_folder_is_found(png_folder: Path, tmp_path: Path) -> None:
    """--data pointing one level above train/ and test/ (as unzip leaves it) still works."""
    shutil.copytree(png_folder, tmp_path / "download" / "archive")
    data = load_dataset(tmp_path / "download")
    assert data.source == tmp_path / "download" / "archive"


def test_folder_holding_the_download_resolves_to_it(png_folder: Path, tmp_path: Path) -> None:
    """A data folder that only holds archive.zip loads the zip."""
    (tmp_path / "data").mkdir()
    make_zip(png_folder, tmp_path / "data" / "archive.zip")
    assert load_dataset(tmp_path / "data").format == "zip"


def test_no_data_found_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no --data, no env and nothing in the default places, the error lists them."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as err:
        resolve_source(None)
    assert "data/fer2013" in str(err.value) and "Kaggle" in str(err.value)
    assert "FER_TUI_DATA" in str(err.value)


def test_env_var_names_the_source(png_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$FER_TUI_DATA is used when no path is given, and a wrong one is named."""
    monkeypatch.setenv("FER_TUI_DATA", str(png_folder))
    assert resolve_source() == png_folder
    monkeypatch.setenv("FER_TUI_DATA", "/no/such/place")
    with pytest.raises(DataError, match="/no/such/place.*FER_TUI_DATA"):
        resolve_source()


def test_folder_with_wrong_layout_says_what_was_expected(tmp_path: Path) -> None:
    """Images dumped in one folder: the error shows the expected layout and what is there."""
    (tmp_path / "faces").mkdir()
    cv2.imwrite(str(tmp_path / "faces" / "a.png"), synthetic_faces(1, 0)[0])
    with pytest.raises(DataError, match=r"expected train/<class>/\*\.jpg.*found a\.png"):
        load_dataset(tmp_path / "faces")


def test_split_folder_without_class_folders_is_an_error(tmp_path: Path) -> None:
    """train/*.jpg with no class folders: the error names what train/ holds."""
    (tmp_path / "fer" / "train").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "fer" / "train" / "a.png"), synthetic_faces(1, 0)[0])
    with pytest.raises(DataError, match=r"no images in class folders.*train/ holds a\.png"):
        load_dataset(tmp_path / "fer")


def test_zip_with_unexpected_structure_is_an_error(tmp_path: Path) -> None:
    """A zip of loose images names its top-level entries and the layout it expected."""
    zpath = tmp_path / "archive.zip"
    add_bytes_to_zip(zpath, "images/a.jpg", b"x")
    add_bytes_to_zip(zpath, "labels.txt", b"x")
    with pytest.raises(DataError, match=r"unexpected structure.*expected train/.*found images"):
        load_dataset(zpath)


def test_zip_with_two_copies_is_an_error(png_folder: Path, tmp_path: Path) -> None:
    """Two train/ trees in one zip is refused rather than merged."""
    zpath = make_zip(png_folder, tmp_path / "archive.zip", "a/")
    add_bytes_to_zip(zpath, "b/train/angry/x.png", b"x")
    with pytest.raises(DataError, match="more than one train/"):
        load_dataset(zpath)


def test_truncated_archives_are_errors(png_folder: Path, tmp_path: Path) -> None:
    """A cut-off download of either archive says to download it again."""
    zpath = make_zip(png_folder, tmp_path / "archive.zip")
    (tmp_path / "cut.zip").write_bytes(zpath.read_bytes()[:2000])
    tpath = make_tar(png_folder, tmp_path / "fer.tar.gz")
    (tmp_path / "cut.tar.gz").write_bytes(tpath.read_bytes()[:3000])
    for cut in ("cut.zip", "cut.tar.gz"):
        with pytest.raises(DataError, match="download it again"):
            load_dataset(tmp_path / cut)


def test_tar_with_a_corrupt_member_loads_the_rest(tmp_path: Path) -> None:
    """A non-image member of a tar.gz is listed by name; the good ones load."""
    _, ok = cv2.imencode(".png", synthetic_faces(1, 3)[0])
    path = tmp_path / "fer.tar.gz"
    path.write_bytes(
        tar_bytes(
            {
                "train/happy/Training_1.png": ok.tobytes(),
                "train/happy/Training_2.jpg": b"not a jpeg",
                "test/happy/PublicTest_1.png": ok.tobytes(),
            }
        )
    )
    data = load_dataset(path)
    assert len(data.splits["train"]) == 1
    assert [p.path for p in data.problems if p.kind == "unreadable"] == [
        "train/happy/Training_2.jpg"
    ]


def test_unknown_file_type_is_an_error(tmp_path: Path) -> None:
    """A file that is no archive or CSV is named with the forms fer-tui reads."""
    path = tmp_path / "fer.bin"
    path.write_bytes(b"\x00\x01binary")
    with pytest.raises(DataError, match="not a FER-2013 dataset.*fer2013.csv"):
        load_dataset(path)


def test_zip_with_windows_separators_loads(png_folder: Path, tmp_path: Path) -> None:
    """Member names written with backslashes (some Windows zip tools) still fit the layout."""
    zpath = tmp_path / "archive.zip"
    for path in sorted(png_folder.rglob("*.png")):
        add_bytes_to_zip(zpath, "\\".join(path.relative_to(png_folder).parts), path.read_bytes())
    data = load_dataset(zpath)
    _assert_same(data, load_dataset(png_folder))


def test_zip_holding_a_csv_says_to_extract_it(tmp_path: Path) -> None:
    """A zip of fer2013.csv is not read in place; the error says to extract and pass the CSV."""
    zpath = tmp_path / "fer2013.zip"
    add_bytes_to_zip(zpath, "fer2013.csv", b"emotion,pixels,Usage\n")
    with pytest.raises(DataError, match="It holds fer2013.csv: extract it"):
        load_dataset(zpath)


def test_csv_pixel_out_of_range_is_a_bad_row(tmp_path: Path) -> None:
    """Pixel values above 255 or below 0 are named, not wrapped around."""
    rows = csv_rows({"Training": 1, "PublicTest": 1, "PrivateTest": 1})
    path = write_csv(
        tmp_path / "fer2013.csv",
        rows,
        extra_lines={
            1: f"3,{' '.join(['256'] + ['1'] * 2303)},Training",
            2: f"3,{' '.join(['-1'] + ['1'] * 2303)},Training",
        },
    )
    data = load_dataset(path)
    bad = [p for p in data.problems if p.kind == "bad_row"]
    assert [p.path for p in bad] == ["line 2", "line 3"]
    assert all("outside 0-255" in p.message for p in bad)
