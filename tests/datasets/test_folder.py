"""folder:PATH: class sub-folders as a folder or zip, with or without train/test, and every layout error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from bench.core.options import ConfigError
from bench.datasets import DatasetError, DatasetUnavailable, load_data, open_dataset
from bench.datasets.folder import ImageFolder
from tests.datasets import hostile
from tests.datasets.builders import class_members, corrupt_png, png_bytes, write_tree, write_zip


def test_one_set_is_split_stratified_and_seeded(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "pets", class_members(per_class=10))
    (root / ".DS_Store").write_bytes(b"junk")
    (root / "cat" / "Thumbs.db").write_bytes(b"junk")
    data = open_dataset(f"folder:{root}").load()
    assert data.class_names == ("cat", "dog", "fish") and data.split == "stratified-20%"
    assert data.x_train.shape == (24, 8, 8, 3) and data.x_test.shape == (6, 8, 8, 3)
    np.testing.assert_array_equal(np.bincount(data.y_test), [2, 2, 2])
    assert data.info["n_skipped"] == 0
    same = ImageFolder(path=str(root)).load()
    np.testing.assert_array_equal(same.x_test, data.x_test)
    other = ImageFolder(path=str(root), split_seed=5, test_fraction=0.5).load()
    assert other.split == "stratified-50%" and len(other.y_test) == 15


def test_given_train_test_in_a_zip_under_a_wrapper_folder(tmp_path: Path) -> None:
    members = {**class_members(("b", "a"), per_class=4, prefix="mydata/train/"),
               **class_members(("b", "a"), per_class=2, prefix="mydata/test/"),
               "__MACOSX/mydata/train/a/._000.png": b"resource fork", "mydata/train/README.txt": b"notes"}
    data = load_data(f"folder:{write_zip(tmp_path / 'd.zip', members)}")
    assert data.split == "given" and data.class_names == ("a", "b")
    assert len(data.y_train) == 8 and len(data.y_test) == 4


def test_labels_follow_the_folder_names(tmp_path: Path) -> None:
    members = {"x/0.png": png_bytes(4, 1), "y/0.png": png_bytes(4, 2), "x/1.png": png_bytes(4, 3),
               "y/1.png": png_bytes(4, 4)}
    data = ImageFolder(path=str(write_tree(tmp_path / "r", members)), test_fraction=0.5).load()
    from PIL import Image
    y_img = np.asarray(Image.open(tmp_path / "r" / "y" / "0.png"))
    both = np.concatenate([data.x_train, data.x_test])
    labels = np.concatenate([data.y_train, data.y_test])
    hits = [i for i in range(4) if np.array_equal(both[i], y_img)]
    assert len(hits) == 1 and labels[hits[0]] == 1


def test_mixed_sizes_ask_for_size_and_size_resizes(tmp_path: Path) -> None:
    members = {**class_members(per_class=6, side=8), "dog/big.png": png_bytes(20, 9)}
    root = write_tree(tmp_path / "r", members)
    with pytest.raises(DatasetError, match="images differ in size.*set the dataset option size=N"):
        ImageFolder(path=str(root)).load()
    assert ImageFolder(path=str(root), size=12).load().input_shape == (12, 12, 3)


def test_grey_images_keep_one_channel(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "r", class_members(per_class=5, mode="L"))
    assert ImageFolder(path=str(root)).load().input_shape == (8, 8, 1)


def test_corrupt_files_are_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.datasets import images

    monkeypatch.setattr(images, "MAX_BAD_FRACTION", 0.1)
    root = write_tree(tmp_path / "r", {**class_members(per_class=10), "dog/broken.png": corrupt_png()})
    data = ImageFolder(path=str(root)).load()
    assert data.info["n_skipped"] == 1 and data.info["skipped"] == ["dog/broken.png"]
    assert len(data.y_train) + len(data.y_test) == 30


@pytest.mark.parametrize(("members", "message"), [
    ({"a.png": png_bytes(4, 1), "b.png": png_bytes(4, 2)}, r"a\.png is not inside a class sub-folder"),
    (class_members(("only",), per_class=3), r"only one class \(only\)"),
    ({"notes.txt": b"hello"}, "no image files found"),
    (class_members(per_class=2, prefix="train/"), "a train/ or test/ folder needs its partner"),
    ({**class_members(("a", "b"), per_class=2, prefix="train/"), **class_members(("a", "c"), prefix="test/")},
     r"train/ has classes \['a', 'b'\] but test/ has \['a', 'c'\]"),
    ({**class_members(("a", "b"), per_class=2, prefix="train/"), "test/x.png": png_bytes(4, 1)},
     r"test/x\.png sits in test/ itself"),
])
def test_layout_errors_show_expected_and_found(tmp_path: Path, members: dict, message: str) -> None:
    path = write_zip(tmp_path / "bad.zip", members)
    with pytest.raises(DatasetError, match=message) as err:
        ImageFolder(path=str(path)).load()
    assert "Expected either <root>/<class>/<images>" in str(err.value) and "Found: " in str(err.value)


def test_layout_error_lists_what_was_found(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "bad.zip", {"a.png": png_bytes(4, 1), "sub/b.png": png_bytes(4, 2)})
    with pytest.raises(DatasetError, match=r"Found: \(top level\) \(1 image\), sub/ \(1 image\)"):
        ImageFolder(path=str(path)).load()


def test_too_small_class_for_the_split(tmp_path: Path) -> None:
    members = {**class_members(("a",), per_class=10), "b/0.png": png_bytes(8, 1)}
    with pytest.raises(DatasetError, match="cannot split 11 images stratified"):
        ImageFolder(path=str(write_tree(tmp_path / "r", members))).load()


def test_missing_path_and_bad_options(tmp_path: Path) -> None:
    missing = ImageFolder(path=str(tmp_path / "nope"))
    assert not missing.availability().ok and "does not exist" in missing.availability().reason
    with pytest.raises(DatasetUnavailable, match="does not exist"):
        missing.load()
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DatasetError, match="neither a folder nor a zip"):
        ImageFolder(path=str(tmp_path / "file.txt")).load()
    with pytest.raises(DatasetError, match="path option is required"):
        ImageFolder()
    with pytest.raises(DatasetError, match="size must be a positive whole number"):
        ImageFolder(path="x", size=-3)
    with pytest.raises(ConfigError, match="unknown option"):
        open_dataset("folder:x", {"colour": True})


@pytest.mark.parametrize(("name", "options", "text"), [
    ("folder:x", {"test_fraction": 2}, "option test_fraction=2 is not allowed; test_fraction must be between 0 and 1"),
    ("folder:x", {"test_fraction": 0}, "option test_fraction=0 is not allowed"),
    ("folder:x", {"size": -1}, "option size=-1 is not allowed; size must be a positive whole number"),
    ("folder:x", {"size": 0}, "option size=0 is not allowed"),
    ("folder:x", {"size": 64.5}, "option size=64.5 is not allowed"),
    ("folder:x", {"size": "64"}, "option size='64' is not allowed"),
    ("folder:x", {"split_seed": -3}, "option split_seed=-3 is not allowed; split_seed must be a whole number from 0"),
    ("malaria", {"split": "slide"}, "option split='slide' is not allowed; split must be one of cell, patient"),
    ("malaria", {"size": 0}, "option size=0 is not allowed"),
    ("malaria", {"split_seed": -3}, "option split_seed=-3 is not allowed"),
    ("malaria", {"test_fraction": 0}, "option test_fraction=0 is not allowed"),
    ("digits", {"test_fraction": 2}, "option test_fraction=2 is not allowed"),
    ("digits", {"split_seed": 1.5}, "option split_seed=1.5 is not allowed"),
    ("cifar10", {"download": "no"}, "option download='no' is not allowed; download must be true or false"),
    ("cifar10", {"path": 3}, "option path=3 is not allowed"),
])
def test_options_out_of_range_are_config_errors_when_the_dataset_is_opened(name: str, options: dict,
                                                                           text: str) -> None:
    with pytest.raises(ConfigError) as err:
        open_dataset(name, options)
    assert text in str(err.value)


def test_a_truncated_zip_is_reported_as_one(tmp_path: Path) -> None:
    whole = write_zip(tmp_path / "w.zip", class_members()).read_bytes()
    (tmp_path / "x.zip").write_bytes(whole[:len(whole) // 2])
    with pytest.raises(DatasetError, match=r"x.zip is not a readable zip archive \(truncated or damaged: .+\); "
                                           "re-download it"):
        ImageFolder(path=str(tmp_path / "x.zip")).load()


def test_random_bytes_named_tar_gz_are_reported_as_not_an_archive(tmp_path: Path) -> None:
    (tmp_path / "x.tar.gz").write_bytes(np.random.default_rng(0).bytes(4096).replace(b"\x1f\x8b", b"ab"))
    with pytest.raises(DatasetError, match=r"x.tar.gz is named like a tar archive but is not one .*re-download"):
        ImageFolder(path=str(tmp_path / "x.tar.gz")).load()


def test_a_folder_of_text_files_is_not_counted_as_images(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "notes", {"a/1.txt": b"x", "a/2.txt": b"y", "b/3.txt": b"z"})
    with pytest.raises(DatasetError) as err:
        ImageFolder(path=str(root)).load()
    message = str(err.value)
    assert "notes: no image files found" in message and "images)" not in message
    assert "no image files, only 3 other files (a/ (0 images, 2 non-image files ignored)" in message


def test_non_image_files_beside_images_are_counted_as_ignored(tmp_path: Path) -> None:
    members = {"a/1.png": png_bytes(4, 1), "a/readme.txt": b"x", "b/Thumbs.db": b"y"}
    with pytest.raises(DatasetError, match=r"a/ \(1 image, 1 non-image file ignored\), b/ \(0 images, 1 non-image "
                                           r"file ignored\); 2 non-image files ignored in all"):
        ImageFolder(path=str(write_tree(tmp_path / "r", members))).load()


# --- what a folder holds besides its images: the policy, through the command line ---------------------------
def bench(*args: str) -> subprocess.CompletedProcess:
    """`python -m bench ...` as a user types it, stopped after two minutes (a hang fails the test)."""
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=120)


def run_majority(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return bench("run", "--dataset", f"folder:{data}", "--system", "majority", "--budget", "full", "--out",
                 str(out), *extra)


def only_record(out: Path) -> tuple[dict, dict]:
    """The one run's record and metadata."""
    [folder] = (out / "runs").iterdir()
    return json.loads((folder / "record.json").read_text()), json.loads((folder / "metadata.json").read_text())


def test_hidden_entries_outside_links_and_special_files_are_left_out_and_listed(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "d", {**class_members(("a", "b"), per_class=5), ".hidden/0.png": png_bytes(8, 7),
                                       "a/.x.png": png_bytes(8, 8)})
    elsewhere = write_tree(tmp_path / "elsewhere", {"secret.png": png_bytes(8, 9), "c/0.png": png_bytes(8, 10)})
    (root / "a" / "away.png").symlink_to(elsewhere / "secret.png")
    (root / "outside").symlink_to(elsewhere / "c")
    (root / "c").symlink_to(root / "a")  # a class folder linked inside the data folder: followed
    (root / "b" / "zero.png").symlink_to("/dev/zero")
    os.mkfifo(root / "b" / "fifo.png")
    (root / "b" / "loop").symlink_to(root)
    (root / "b" / "dangling.png").symlink_to(root / "nothing")
    result = run_majority(root, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    record, meta = only_record(tmp_path / "out")
    assert record["status"] == "ok" and record["n_classes"] == 3, record["error"]
    assert record["n_train"] + record["n_test"] == 15  # a, b and c (a's five again), nothing else
    info = meta["dataset_info"]
    # What a followed link leads to counts under its own name too (c/.x.png, c/away.png).
    assert info["left_out"] == {"hidden": 3, "symlink leading outside the data folder": 4,
                                "not a regular file or folder": 1, "symlink to a folder it is in": 1,
                                "broken symlink": 1}
    assert info["n_left_out"] == 10 and "a/away.png (symlink leading outside the data folder)" in info[
        "left_out_listed"]
    [log] = (tmp_path / "out" / "runs").glob("*/log.txt")
    assert "10 entries of the data folder left out" in log.read_text()


def test_a_class_folder_named_in_bytes_that_are_not_utf8_is_shown_escaped(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "d", class_members(("a", "b"), per_class=5))
    os.rename(root / "a", os.fsencode(root) + b"/caf\xe9")
    result = run_majority(root, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    record, meta = only_record(tmp_path / "out")
    assert record["status"] == "ok", record["error"]
    [predictions] = (tmp_path / "out" / "runs").glob("*/predictions.csv")
    assert predictions.read_text().splitlines()[0].startswith("b,caf\\xe9,")


@pytest.mark.slow
def test_an_image_replaced_under_its_old_size_and_time_is_seen(tmp_path: Path) -> None:
    # cp -p, rsync -a and tar restore a file's modification time; an uncompressed BMP keeps its size.
    root = write_tree(tmp_path / "d", {f"{c}/{i}.bmp": png_bytes(8, 10 * k + i, fmt="BMP")
                                       for k, c in enumerate("ab") for i in range(5)})
    out = tmp_path / "out"
    assert run_majority(root, out).returncode == 0
    first = only_record(out)[0]["data_fingerprint"]
    image = root / "a" / "0.bmp"
    before = image.stat()
    image.write_bytes(png_bytes(8, 99, fmt="BMP"))
    os.utime(image, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert image.stat().st_size == before.st_size
    again = run_majority(root, out)
    assert again.returncode == 0 and "data changed" in again.stderr, again.stderr
    second = only_record(out)[0]["data_fingerprint"]
    assert second != first
    assert second == load_data(f"folder:{root}").info["fingerprint"]


def test_force_decodes_the_folder_again(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "d", class_members(("a", "b"), per_class=5))
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert run_majority(root, out).returncode == 0
    first = only_record(out)[0]["data_fingerprint"]
    [digests] = cache.glob("folder-*/x_digests.npy")
    stored = np.load(digests)
    np.save(digests, np.zeros_like(stored))  # an entry damaged in a way its index cannot tell
    assert run_majority(root, out, "--force").returncode == 0
    assert only_record(out)[0]["data_fingerprint"] == first
    np.testing.assert_array_equal(np.load(next(cache.glob("folder-*/x_digests.npy"))), stored)


# --- generated hostile folders ------------------------------------------------------------------------------
@settings(max_examples=25, deadline=20_000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(hostile.plans)
def test_generated_hostile_folders_load_as_the_policy_says_or_fail_naming_why(plan: hostile.Plan) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = hostile.write_plan(plan, Path(tmp) / "data", Path(tmp) / "outside")
        before = hostile.listing(Path(tmp))
        try:
            data = ImageFolder(path=str(root)).load()
        except DatasetError as exc:
            assert plan.unreadable, exc
            assert "could not be decoded" in str(exc)
            str(exc).encode("utf-8")  # printable and storable as it is
        else:
            assert not plan.unreadable
            assert data.class_names == plan.class_names
            assert len(data.y_train) + len(data.y_test) == plan.n_images
            assert data.info["left_out"] == plan.left_out
            json.dumps(dict(data.info), ensure_ascii=False).encode("utf-8")
        assert hostile.listing(Path(tmp)) == before  # nothing written beside the data, nothing changed in it


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_data_path_that_is_a_fifo_or_a_device_fails_at_once(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "data.zip"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    result = run_majority(path, tmp_path / "out")
    assert result.returncode == 1, result.stderr
    record, _ = only_record(tmp_path / "out")
    assert record["status"] == "failed" and "neither a folder nor a regular file" in record["error"]


def test_a_folder_nested_deeper_than_pythons_recursion_limit_is_walked(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "d", class_members(("a", "b"), per_class=5))
    deep = root / "b"
    try:
        for _ in range(sys.getrecursionlimit() + 100):
            deep = deep / "d"
            deep.mkdir()
        (deep / "far.png").write_bytes(png_bytes(8, 77))
        (deep / "loop").symlink_to(root)
        data = ImageFolder(path=str(root)).load()
        assert len(data.y_train) + len(data.y_test) == 11
        assert data.info["left_out"] == {"symlink to a folder it is in": 1}
    finally:
        subprocess.run(["rm", "-rf", str(root)], check=True)  # shutil.rmtree recurses once per level
