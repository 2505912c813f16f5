"""Malaria cells: NIH's zip and folder, bad files, resizing, cell and patient splits, download, errors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.datasets import DatasetError, DatasetUnavailable, cache, images, open_dataset, sources
from bench.datasets import malaria as malaria_module
from bench.datasets.malaria import CLASS_NAMES, Malaria, patient_code, split_by_patient
from tests.datasets.builders import corrupt_png, malaria_members, png_bytes, write_tree, write_zip

N_CELLS = 2 * 6 * 10  # malaria_members() defaults: 2 classes x 6 codes x 10 cells, plus 1 corrupt file


@pytest.fixture
def nih_zip(tmp_path: Path) -> Path:
    """A cell_images.zip in NIH's layout with a Thumbs.db per class and one truncated PNG."""
    return write_zip(tmp_path / "cell_images.zip", malaria_members())


def test_nih_zip_skips_the_corrupt_png_and_ignores_thumbs_db(nih_zip: Path) -> None:
    data = Malaria(path=str(nih_zip)).load()
    assert data.class_names == CLASS_NAMES == ("Parasitized", "Uninfected")
    assert data.x_train.dtype == np.uint8 and data.input_shape == (64, 64, 3)
    assert len(data.y_train) + len(data.y_test) == N_CELLS
    assert data.info["n_skipped"] == 1
    assert data.info["skipped"] == ["cell_images/Parasitized/C0P7ThinF_IMG_20150918_144199_cell_90.png"]
    assert data.split == "cell" and data.info["source"] == str(nih_zip.resolve())


def test_cell_split_is_stratified_80_20_and_seeded(nih_zip: Path) -> None:
    a = Malaria(path=str(nih_zip)).load()
    assert len(a.y_test) == N_CELLS // 5
    np.testing.assert_array_equal(np.bincount(a.y_test), [N_CELLS // 10, N_CELLS // 10])
    again = Malaria(path=str(nih_zip)).load()
    np.testing.assert_array_equal(a.x_test, again.x_test)
    other = Malaria(path=str(nih_zip), split_seed=1).load()
    assert not np.array_equal(a.x_test, other.x_test)


def test_patient_split_keeps_every_code_on_one_side(nih_zip: Path, cache_dir: Path) -> None:
    data = Malaria(path=str(nih_zip), split="patient").load()
    assert data.split == "patient" and data.info["patients_shared"] == 0
    assert data.info["patients_train"] > 0 and data.info["patients_test"] > 0
    # Each image's code comes from the file names kept in the cache entry.
    arrays, _ = cache.load(next(cache_dir.glob("malaria-*")))  # type: ignore[misc]
    codes = np.array([patient_code(f) for f in arrays["files"]])
    tr, te = split_by_patient(arrays["y"], codes, 0.2, 0)
    assert not set(codes[tr]) & set(codes[te])
    np.testing.assert_array_equal(arrays["x"][te], data.x_test)
    assert set(np.unique(data.y_test)) == {0, 1}


def test_patient_split_with_codes_in_both_classes() -> None:
    y = np.repeat([0, 1], 50)
    codes = np.array([f"C{i % 10}" for i in range(100)])  # every code holds both classes
    for seed in range(3):
        tr, te = split_by_patient(y, codes, 0.2, seed)
        assert not set(codes[tr]) & set(codes[te]) and len(tr) + len(te) == 100


def test_extracted_folder_and_size_option(tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "extracted", malaria_members(corrupt=0))
    data = Malaria(path=str(folder / "cell_images"), size=20).load()
    assert data.input_shape == (20, 20, 3) and data.info["n_skipped"] == 0
    assert len(data.y_train) + len(data.y_test) == N_CELLS


def test_found_in_data_dir_as_the_shared_subset_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_zip(tmp_path / "data" / "malaria-cells-subset.zip", malaria_members())
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "data"))
    assert open_dataset("malaria", {"download": False}).availability().ok
    assert open_dataset("malaria", {"size": 16}).load().input_shape == (16, 16, 3)


def test_too_many_bad_files_fail_the_load(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "cell_images.zip", malaria_members(corrupt=3))
    with pytest.raises(DatasetError, match=r"3 of 123 image files could not be decoded \(more than 1% allowed\)"):
        Malaria(path=str(path)).load()


def test_bad_fraction_is_a_named_constant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "MAX_BAD_FRACTION", 0.05)
    path = write_zip(tmp_path / "cell_images.zip", malaria_members(corrupt=3))
    assert Malaria(path=str(path)).load().info["n_skipped"] == 3


def test_wrong_classes_show_the_expected_layout(tmp_path: Path) -> None:
    members = {f"cell_images/{c}/C1_{i}.png": png_bytes(10, i) for c in ("infected", "healthy") for i in range(3)}
    with pytest.raises(DatasetError, match=r"class folders \['healthy', 'infected'\]\. Expected NIH's layout"):
        Malaria(path=str(write_zip(tmp_path / "x.zip", members))).load()


def test_patient_split_needs_codes(tmp_path: Path) -> None:
    members = {f"cell_images/{c}/cell_{i}.png": png_bytes(10, i) for c in CLASS_NAMES for i in range(10)}
    path = write_zip(tmp_path / "x.zip", members)
    assert Malaria(path=str(path)).load().info["patients_train"] == 0
    with pytest.raises(DatasetError, match="does not start with a patient code.*split=cell"):
        Malaria(path=str(path), split="patient").load()


@pytest.mark.parametrize(("options", "message"), [
    ({"split": "slide"}, "split must be one of cell, patient"),
    ({"size": 0}, "size must be a positive whole number"),
    ({"size": None}, "size must be a number of pixels"),
    ({"test_fraction": 1.5}, "test_fraction must be between 0 and 1"),
    ({"download": "no"}, "download must be true or false"),
])
def test_invalid_options(options: dict, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        Malaria(**options)


def test_a_relative_path_is_looked_for_from_the_working_folder_then_in_the_data_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_zip(tmp_path / "data" / "cells.zip", malaria_members(corrupt=0))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "data"))
    assert len(Malaria(path="cells.zip").load().y_train) == N_CELLS * 4 // 5
    # The working folder's copy comes first.
    write_zip(work / "cells.zip", malaria_members(codes_per_class=3, corrupt=0))
    assert len(Malaria(path="cells.zip", size=16).load().y_train) == N_CELLS // 2 * 4 // 5
    monkeypatch.delenv("BENCH_DATA_DIR")
    (work / "cells.zip").unlink()
    status = Malaria(path="cells.zip").availability()
    assert not status.ok and "cells.zip" in status.reason and str(tmp_path / "data") not in status.reason


def test_offline_message_names_places_and_fixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "data"))
    status = Malaria().availability()
    assert not status.ok
    for text in ("data/cell_images.zip", "data/cell_images", "data/malaria-cells-subset.zip",
                 "cache/downloads/cell_images.zip", "cannot be reached", "BENCH_DATA_DIR", malaria_module.URL):
        assert text in status.reason
    with pytest.raises(DatasetUnavailable) as err:
        Malaria().load()
    assert str(err.value) == status.reason


def test_download_from_a_local_url_then_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             cache_dir: Path) -> None:
    served = write_zip(tmp_path / "served" / "cell_images.zip", malaria_members())
    monkeypatch.setattr(malaria_module, "URL", served.as_uri())
    monkeypatch.setattr(sources, "is_online", lambda *a, **k: True)
    data = Malaria().load()
    assert (cache_dir / "downloads" / "cell_images.zip").read_bytes() == served.read_bytes()
    assert not (cache_dir / "downloads" / "cell_images.zip.part").exists()
    assert len(data.y_train) + len(data.y_test) == N_CELLS


# Served by the fake opener below; no request leaves the process.
FAKE_URL = "fake://served-by-the-test/cell_images.zip"


class FakeResponse(io.BytesIO):
    """An HTTP response whose Content-Length may promise more bytes than it sends."""

    def __init__(self, body: bytes, length: int | None) -> None:
        super().__init__(body)
        self.headers = {} if length is None else {"Content-Length": str(length)}


def test_a_cut_download_never_takes_the_final_name(tmp_path: Path) -> None:
    body = write_zip(tmp_path / "full.zip", malaria_members()).read_bytes()
    dest = tmp_path / "dl" / "cell_images.zip"
    with pytest.raises(DatasetError, match=r"stopped after \d+ of \d+ bytes"):
        sources.download(FAKE_URL, dest, malaria_module.verify_download,
                         opener=lambda url, timeout: FakeResponse(body[:1000], len(body)))
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()
    # a server that omits Content-Length: the zip check catches the truncation
    with pytest.raises(DatasetError, match="not a complete zip"):
        sources.download(FAKE_URL, dest, malaria_module.verify_download,
                         opener=lambda url, timeout: FakeResponse(body[:-100], None))
    assert not dest.exists()
    sources.download(FAKE_URL, dest, malaria_module.verify_download,
                     opener=lambda url, timeout: FakeResponse(body, len(body)))
    assert dest.read_bytes() == body


def test_a_download_with_a_damaged_member_is_rejected(tmp_path: Path) -> None:
    body = bytearray(write_zip(tmp_path / "full.zip", malaria_members(corrupt=0)).read_bytes())
    first_png = body.index(b"IHDR")
    body[first_png + 40] ^= 0xFF  # flip a byte inside a stored member: its CRC no longer matches
    dest = tmp_path / "dl" / "cell_images.zip"
    with pytest.raises(DatasetError, match="fails its CRC check"):
        sources.download(FAKE_URL, dest, malaria_module.verify_download,
                         opener=lambda url, timeout: FakeResponse(bytes(body), len(body)))
    assert not dest.exists()


def test_one_bad_file_in_many_is_skipped_and_the_rest_kept_in_order() -> None:
    names = [f"{i}.png" for i in range(150)]
    decoded = images.decode_all(names, lambda n: corrupt_png() if n == "7.png" else png_bytes(8, int(n[:-4])), None)
    assert decoded.skipped == ["7.png"] and len(decoded.x) == 149
    np.testing.assert_array_equal(decoded.kept, [i for i in range(150) if i != 7])
    np.testing.assert_array_equal(decoded.x[7], np.asarray(Image.open(io.BytesIO(png_bytes(8, 8)))))
