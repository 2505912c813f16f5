"""What data a run saw: the arrays' fingerprint, the format read and whether the pixels are canonical or lossy."""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.datasets import ImageData, load_data
from bench.datasets import cifar10 as cifar_module
from bench.datasets import fingerprint as fp_module
from bench.datasets.cifar10 import FOLDER_FORMAT, TAR_FORMAT, Cifar10
from bench.datasets.digits import Digits
from bench.datasets.encodings import detect, ijg_table, jpeg_quality, sample
from bench.datasets.fingerprint import ensure, fingerprint
from bench.datasets.folder import ImageFolder
from bench.datasets.malaria import Malaria
from tests.datasets.builders import (
    CIFAR_PER_BATCH,
    cifar_batches,
    cifar_image_members,
    class_members,
    malaria_members,
    png_bytes,
    write_cifar_folder,
    write_cifar_tar,
    write_tree,
    write_zip,
)

KEYS = ("fingerprint", "format", "pixels")


def _keys_set(data: ImageData) -> None:
    assert all(isinstance(data.info[k], str) and data.info[k] for k in KEYS)
    assert len(data.info["fingerprint"]) == 16 and int(data.info["fingerprint"], 16) >= 0
    # The stored (or cached) fingerprint is the hash of the arrays actually returned.
    assert data.info["fingerprint"] == fingerprint(data)


def _png_with_one_pixel_changed(data: bytes) -> bytes:
    arr = np.asarray(Image.open(io.BytesIO(data))).copy()
    arr[0, 0, 0] ^= 1
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def test_the_definition_is_pinned() -> None:
    """Fingerprints are compared across reports and machines: a changed definition must bump its version."""
    x = np.arange(2 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 2, 3)
    data = ImageData(x, np.array([0, 1]), x[:1], np.array([1]), ("a", "b"), "official")
    assert fingerprint(data) == "31a16ed8375f9150"
    assert fingerprint(data.replace(y_train=np.array([0, 1], dtype=np.int32))) == fingerprint(data)
    assert fingerprint(data.replace(split="other")) != fingerprint(data)
    assert fingerprint(data.replace(class_names=("a", "c"))) != fingerprint(data)
    assert fingerprint(data.replace(x_test=x[1:])) != fingerprint(data)
    swapped = data.replace(x_train=x[::-1].copy(), y_train=np.array([1, 0]))
    assert fingerprint(swapped) != fingerprint(data)  # the same images in another order are other arrays


def test_digits_are_canonical_and_the_fingerprint_follows_split_and_subset() -> None:
    data = Digits().load()
    _keys_set(data)
    assert (data.info["format"], data.info["pixels"]) == ("sklearn bundled", "canonical")
    assert Digits().load().info["fingerprint"] == data.info["fingerprint"]
    assert Digits(split_seed=1).load().info["fingerprint"] != data.info["fingerprint"]
    assert Digits(test_fraction=0.5).load().info["fingerprint"] != data.info["fingerprint"]
    small = load_data("digits", max_train=200)
    _keys_set(small)
    assert small.info["fingerprint"] != data.info["fingerprint"] and len(small.y_train) == 200
    assert small.info["fingerprint_full"] == data.info["fingerprint"]
    assert load_data("digits", max_train=200).info["fingerprint"] == small.info["fingerprint"]
    assert load_data("digits", max_train=300).info["fingerprint"] != small.info["fingerprint"]
    assert load_data("digits", max_test=100).info["fingerprint"] != data.info["fingerprint"]
    assert "fingerprint_full" not in load_data("digits", max_train=10_000).info  # nothing cut, same data


def test_cifar_pickled_batches_are_canonical_and_the_same_from_tar_or_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = cifar_batches(seed=4)
    tar = write_cifar_tar(tmp_path / "t" / "cifar-10-python.tar.gz", files)
    # The small generated archive stands in for the published one: its row counts, size and digest.
    monkeypatch.setattr(cifar_module, "ROWS_PER_BATCH", CIFAR_PER_BATCH)
    monkeypatch.setattr(cifar_module, "PUBLISHED_SIZE", tar.stat().st_size)
    monkeypatch.setattr(cifar_module, "PUBLISHED_SHA256", hashlib.sha256(tar.read_bytes()).hexdigest())
    from_tar = Cifar10(path=str(tar)).load()
    from_folder = Cifar10(path=str(write_cifar_folder(tmp_path / "f", files))).load()
    for data in (from_tar, from_folder):
        _keys_set(data)
        assert data.info["pixels"] == "canonical"
    assert from_tar.info["format"] == TAR_FORMAT == "cifar-10-python.tar.gz (canonical pickled batches)"
    assert from_folder.info["format"] == FOLDER_FORMAT
    assert from_tar.info["fingerprint"] == from_folder.info["fingerprint"]
    assert from_tar.info["source_sha256"] == hashlib.sha256(tar.read_bytes()).hexdigest()

    batch = pickle.loads(files["data_batch_3"], encoding="bytes")
    batch[b"data"] = batch[b"data"].copy()
    batch[b"data"][2, 100] ^= 1  # one channel of one pixel of one image
    changed = Cifar10(path=str(write_cifar_folder(tmp_path / "g", {**files, "data_batch_3": pickle.dumps(
        batch, protocol=2)}))).load()
    assert changed.info["fingerprint"] != from_folder.info["fingerprint"]


@pytest.mark.parametrize("quality", [75, 90])
def test_cifar_jpeg_zip_reports_the_quality_it_was_saved_at(tmp_path: Path, quality: int) -> None:
    path = write_zip(tmp_path / "cifar10-jpeg.zip", cifar_image_members(quality=quality))
    data = Cifar10(path=str(path)).load()
    _keys_set(data)
    assert data.info["format"] == "JPEG image zip"
    assert data.info["pixels"] == f"lossy: JPEG quality {quality}"
    assert data.info["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_cifar_png_folders_are_lossless_not_canonical(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "cifar10", cifar_image_members(fmt="PNG", quality=None))
    data = Cifar10(path=str(root)).load()
    _keys_set(data)
    assert (data.info["format"], data.info["pixels"]) == ("PNG image folder", "lossless: PNG")
    assert data.info["source_sha256"] == ""  # a folder has no single file to hash


def test_warm_load_gives_the_same_fingerprint_without_hashing_pixels(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_zip(tmp_path / "cifar10-jpeg.zip", cifar_image_members())
    cold = Cifar10(path=str(path)).load()

    def no_hashing(x: np.ndarray) -> np.ndarray:
        raise AssertionError("a warm load hashed the pixels again")

    monkeypatch.setattr(fp_module, "image_digests", no_hashing)
    warm = Cifar10(path=str(path)).load()
    assert (cold.info["cache"], warm.info["cache"]) == ("miss", "hit")
    assert {k: warm.info[k] for k in KEYS} == {k: cold.info[k] for k in KEYS}
    assert warm.info["source_sha256"] == cold.info["source_sha256"]


def test_malaria_pngs_are_canonical_and_each_split_has_its_fingerprint(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_zip(tmp_path / "cell_images.zip", malaria_members())
    cold = Malaria(path=str(path)).load()
    _keys_set(cold)
    assert (cold.info["format"], cold.info["pixels"]) == ("PNG image zip", "canonical")
    assert cold.info["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr(fp_module, "image_digests", lambda x: pytest.fail("a warm load hashed the pixels"))
    warm = Malaria(path=str(path)).load()
    patient = Malaria(path=str(path), split="patient").load()
    seeded = Malaria(path=str(path), split_seed=1).load()
    assert warm.info["cache"] == patient.info["cache"] == seeded.info["cache"] == "hit"
    assert warm.info["fingerprint"] == cold.info["fingerprint"]
    assert len({cold.info["fingerprint"], patient.info["fingerprint"], seeded.info["fingerprint"]}) == 3
    monkeypatch.undo()
    for data in (warm, patient, seeded):
        _keys_set(data)


def test_folder_fingerprint_changes_with_one_pixel_and_not_with_the_container(tmp_path: Path) -> None:
    members = class_members(per_class=10)
    folder = ImageFolder(path=str(write_tree(tmp_path / "pets", members))).load()
    zipped = ImageFolder(path=str(write_zip(tmp_path / "pets.zip", members))).load()
    _keys_set(folder)
    assert (folder.info["format"], zipped.info["format"]) == ("PNG image folder", "PNG image zip")
    assert folder.info["pixels"] == zipped.info["pixels"] == "lossless: PNG"
    assert folder.info["fingerprint"] == zipped.info["fingerprint"]  # the same arrays, read from elsewhere

    one_pixel = {**members, "dog/004.png": _png_with_one_pixel_changed(members["dog/004.png"])}
    changed = ImageFolder(path=str(write_tree(tmp_path / "pets2", one_pixel))).load()
    assert changed.info["fingerprint"] != folder.info["fingerprint"]
    other_split = ImageFolder(path=str(tmp_path / "pets"), test_fraction=0.5).load()
    assert other_split.info["cache"] == "hit" and other_split.info["fingerprint"] != folder.info["fingerprint"]


def test_a_given_split_folder_of_jpegs(tmp_path: Path) -> None:
    members = {f"{side}/{cls}/{i}.jpg": png_bytes(8, i + 10 * c, fmt="JPEG", quality=50)
               for side in ("train", "test") for c, cls in enumerate(("a", "b")) for i in range(4)}
    data = ImageFolder(path=str(write_zip(tmp_path / "ab.zip", members))).load()
    _keys_set(data)
    assert data.split == "given" and data.info["pixels"] == "lossy: JPEG quality 50"


def test_mixed_formats_and_qualities_are_named() -> None:
    files = {"a.png": png_bytes(8, 1), "b.jpg": png_bytes(8, 2, fmt="JPEG", quality=70),
             "c.jpg": png_bytes(8, 3, fmt="JPEG", quality=90), "d.txt": b"not an image"}
    enc = detect(sorted(files), files.__getitem__)
    assert enc.formats == ("JPEG", "PNG") and enc.lossy == "JPEG quality 70-90"
    assert enc.describe_format("zip") == "JPEG+PNG image zip" and enc.pixels(("PNG",)) == "lossy: JPEG quality 70-90"
    png = detect(["a.png"], files.__getitem__)
    assert (png.pixels(), png.pixels(("PNG",))) == ("lossless: PNG", "canonical")


def test_jpeg_quality_is_read_back_from_pillow_files() -> None:
    for quality in (5, 25, 50, 75, 90, 95, 100):
        tables = Image.open(io.BytesIO(png_bytes(16, quality, fmt="JPEG", quality=quality))).quantization
        assert jpeg_quality(list(tables[0])) == (quality, True)
    off = ijg_table(80).copy()
    off[0] += 3
    assert jpeg_quality(off) == (80, False)


def test_only_a_few_files_per_kind_are_sampled() -> None:
    names = [f"train/c/{i:05d}.jpg" for i in range(60_000)] + ["x/1.png", "x/2.png"]
    picked = sample(names)
    assert len(picked) == 7 and picked[0] == names[0] and picked[4] == names[59_999]
    assert picked[5:] == ["x/1.png", "x/2.png"]


def test_load_data_fills_the_keys_for_an_adapter_that_does_not() -> None:
    data = Digits().load()
    bare = data.replace(info={"source": "x"})
    filled = ensure(bare)
    assert filled.info["fingerprint"] == data.info["fingerprint"]
    assert (filled.info["format"], filled.info["pixels"]) == ("", "")
    assert ensure(data) is data
