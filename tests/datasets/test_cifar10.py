"""CIFAR-10 from pickled batches (folder, tar.gz), image folders, the data dir and Keras cache, and offline."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest

from bench.datasets import DatasetError, DatasetUnavailable, gzip_ahead, open_dataset, sources
from bench.datasets import cifar10 as cifar_module
from bench.datasets.cifar10 import CLASS_NAMES, Cifar10
from bench.datasets.fingerprint import fingerprint
from tests.datasets.builders import (
    CIFAR_PER_BATCH,
    cifar_batches,
    png_bytes,
    python2_pickle,
    write_cifar_folder,
    write_cifar_tar,
    write_zip,
)


def test_pickled_folder_decodes_planes_row_major(tmp_path: Path) -> None:
    files = cifar_batches()
    folder = write_cifar_folder(tmp_path, files)
    data = Cifar10(path=str(folder)).load()
    assert data.x_train.shape == (5 * CIFAR_PER_BATCH, 32, 32, 3) and data.x_train.dtype == np.uint8
    assert data.x_test.shape == (CIFAR_PER_BATCH, 32, 32, 3)
    assert data.class_names == CLASS_NAMES and data.split == "official"
    raw = pickle.loads(files["data_batch_2"], encoding="bytes")
    row = raw[b"data"][3]
    # pixel (r, c) of colour k is byte k*1024 + r*32 + c
    first = data.x_train[CIFAR_PER_BATCH + 3]
    assert first[0, 1, 0] == row[1] and first[2, 5, 1] == row[1024 + 2 * 32 + 5] and first[31, 31, 2] == row[3071]
    assert data.y_train[CIFAR_PER_BATCH + 3] == raw[b"labels"][3]


def test_rows_become_images_in_place_as_the_transposed_planes() -> None:
    raw = np.random.default_rng(0).integers(0, 256, (5, 3072), dtype=np.uint8)
    planes = raw.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # the textbook view
    assert np.array_equal(cifar_module.to_images(raw), planes)
    slots = np.zeros((9, 32, 32, 3), dtype=np.uint8)
    cifar_module.to_images(raw, slots[2:7])
    assert np.array_equal(slots[2:7], planes) and not slots[:2].any() and not slots[7:].any()


def test_tar_gz_gives_the_same_arrays_as_the_folder(tmp_path: Path) -> None:
    files = cifar_batches(seed=3)
    from_folder = Cifar10(path=str(write_cifar_folder(tmp_path / "a", files))).load()
    from_tar = Cifar10(path=str(write_cifar_tar(tmp_path / "b" / "cifar-10-python.tar.gz", files))).load()
    np.testing.assert_array_equal(from_folder.x_train, from_tar.x_train)
    np.testing.assert_array_equal(from_folder.y_test, from_tar.y_test)


def test_found_in_data_dir_then_keras_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keras_dir = tmp_path / "keras-home" / "datasets" / "cifar-10-batches-py-target"
    write_cifar_folder(keras_dir, cifar_batches(seed=1))
    assert Cifar10(download=False).availability().ok
    from_keras = Cifar10(download=False).load()
    assert from_keras.info["source"].startswith(str(keras_dir.resolve()))

    data_dir = tmp_path / "data"
    write_cifar_tar(data_dir / "cifar-10-python.tar.gz", cifar_batches(seed=2))
    monkeypatch.setenv("BENCH_DATA_DIR", str(data_dir))
    from_data_dir = open_dataset("cifar10", {"download": False}).load()
    assert from_data_dir.info["source"] == str((data_dir / "cifar-10-python.tar.gz").resolve())
    assert not np.array_equal(from_data_dir.x_train, from_keras.x_train)


def test_image_folder_zip_in_canonical_order(tmp_path: Path) -> None:
    members = {}
    for side, n in (("train", 3), ("test", 2)):
        for label, cls in enumerate(CLASS_NAMES):
            for i in range(n):
                members[f"{side}/{cls}/{i:04d}.jpg"] = png_bytes(32, label * 100 + i, fmt="JPEG")
    members["train/Thumbs.db"] = b"junk"
    path = write_zip(tmp_path / "cifar10-jpeg.zip", members)
    data = Cifar10(path=str(path)).load()
    assert data.x_train.shape == (30, 32, 32, 3) and data.x_test.shape == (20, 32, 32, 3)
    assert data.split == "official" and data.info["format"] == "JPEG image zip" and data.info["n_skipped"] == 0
    np.testing.assert_array_equal(np.bincount(data.y_train), [3] * 10)
    # label i holds the images of CLASS_NAMES[i]: compare one decoded image with its source
    import io

    from PIL import Image
    ship = np.asarray(Image.open(io.BytesIO(members["train/ship/0001.jpg"])).convert("RGB"))
    i = int(np.flatnonzero(data.y_train == CLASS_NAMES.index("ship"))[1])
    np.testing.assert_array_equal(data.x_train[i], ship)


def test_image_folder_with_other_classes_is_a_layout_error(tmp_path: Path) -> None:
    members = {f"{s}/{c}/0.png": png_bytes(32, 1) for s in ("train", "test") for c in ("cats", "dogs")}
    with pytest.raises(DatasetError, match=r"classes \['cats', 'dogs'\].*Expected .*airplane"):
        Cifar10(path=str(write_zip(tmp_path / "x.zip", members))).load()


def test_missing_batch_names_it_and_the_layout(tmp_path: Path) -> None:
    files = cifar_batches()
    del files["data_batch_4"]
    with pytest.raises(DatasetError, match=r"data_batch_4 are missing.*Expected the pickled batches"):
        Cifar10(path=str(write_cifar_tar(tmp_path / "c.tar.gz", files))).load()


def test_a_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    files = cifar_batches()

    class Evil:
        def __reduce__(self) -> tuple:
            # eval, not print: importing Ray (other tests) replaces builtins.print with its own.
            return (eval, ("1",))

    files["test_batch"] = pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2)
    with pytest.raises(DatasetError, match=r"builtin_*\.eval.*not a CIFAR-10 batch"):
        Cifar10(path=str(write_cifar_folder(tmp_path, files))).load()


def test_offline_without_data_names_every_place_and_every_fix(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "nothing-here"))
    for download, why in ((False, "download=False"), (True, "cannot be reached")):
        status = Cifar10(download=download).availability()
        assert not status.ok
        for text in (why, "nothing-here/cifar-10-python.tar.gz", "nothing-here/cifar10-jpeg.zip",
                     "keras-home/datasets/cifar-10-batches-py", "BENCH_DATA_DIR", "path=",
                     cifar_module.URL):
            assert text in status.reason
        with pytest.raises(DatasetUnavailable) as err:
            Cifar10(download=download).load()
        assert str(err.value) == status.reason


def test_download_goes_through_keras_then_reads_its_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(sources, "is_online", lambda host, *a, **k: calls.append(host) or True)

    def fake_keras_download() -> None:
        write_cifar_folder(tmp_path / "keras-home" / "datasets" / "cifar-10-batches-py-target", cifar_batches())

    monkeypatch.setattr(cifar_module, "fetch_with_keras", fake_keras_download)
    assert Cifar10().availability().ok
    data = Cifar10().load()
    assert calls == ["www.cs.toronto.edu"] * 2 and data.x_train.shape[0] == 5 * CIFAR_PER_BATCH


def test_invalid_option_is_rejected() -> None:
    with pytest.raises(DatasetError, match="download must be true or false"):
        Cifar10(download="yes")  # type: ignore[arg-type]


def test_image_folders_are_cached(tmp_path: Path) -> None:
    members = {f"{s}/{c}/0.png": png_bytes(32, i) for s in ("train", "test") for i, c in enumerate(CLASS_NAMES)}
    path = write_zip(tmp_path / "cifar10.zip", members)
    assert Cifar10(path=str(path)).load().info["cache"] == "miss"
    assert Cifar10(path=str(path)).load().info["cache"] == "hit"


def test_an_explicit_missing_path_is_never_downloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "is_online", lambda *a, **k: True)
    status = Cifar10(path=str(tmp_path / "nope.tar.gz")).availability()
    assert not status.ok and "looked in " + str(tmp_path / "nope.tar.gz") in status.reason


def test_a_failed_keras_download_is_reported_as_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "is_online", lambda *a, **k: True)

    def broken() -> None:
        raise Exception("URL fetch failure: connection reset")

    monkeypatch.setattr(cifar_module, "fetch_with_keras", broken)
    with pytest.raises(DatasetUnavailable, match="download through Keras failed: URL fetch failure"):
        Cifar10().load()


def as_published(monkeypatch: pytest.MonkeyPatch, archive: Path | None = None) -> None:
    """Makes the small generated batches (and archive, if given) count as the published ones."""
    monkeypatch.setattr(cifar_module, "ROWS_PER_BATCH", CIFAR_PER_BATCH)
    if archive is not None:
        monkeypatch.setattr(cifar_module, "PUBLISHED_SIZE", archive.stat().st_size)
        monkeypatch.setattr(cifar_module, "PUBLISHED_SHA256", hashlib.sha256(archive.read_bytes()).hexdigest())


def test_the_canonical_tar_gz_is_cached_and_reads_back_the_same(tmp_path: Path, cache_dir: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_cifar_tar(tmp_path / "cifar-10-python.tar.gz", cifar_batches(seed=4))
    as_published(monkeypatch, path)
    cold, warm = Cifar10(path=str(path)).load(), Cifar10(path=str(path)).load()
    assert (cold.info["cache"], warm.info["cache"]) == ("miss", "hit")
    assert isinstance(warm.x_train, np.memmap) and warm.x_train.tobytes() == cold.x_train.tobytes()
    np.testing.assert_array_equal(warm.y_test, cold.y_test)
    assert warm.info["fingerprint"] == cold.info["fingerprint"] == fingerprint(warm)
    assert warm.info["format"] == cifar_module.TAR_FORMAT and warm.info["pixels"] == "canonical"
    assert warm.info["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    write_cifar_tar(path, cifar_batches(seed=5))  # replaced in place: a different file, a new entry
    os.utime(path, ns=(1, 1))
    changed = Cifar10(path=str(path)).load()
    assert changed.info["cache"] == "miss" and changed.x_train.tobytes() != cold.x_train.tobytes()
    assert changed.info["pixels"].startswith("variant: batches laid out as published, but the archive is not")


def test_python2_pickles_as_in_the_real_archive(tmp_path: Path) -> None:
    # The canonical batches were pickled by Python 2: the pixels are one str (BINSTRING), not bytes.
    files = cifar_batches(seed=6)
    as_python2 = {name: python2_pickle(pickle.loads(data, encoding="bytes")) for name, data in files.items()}
    assert as_python2["data_batch_1"] != files["data_batch_1"]
    expected = Cifar10(path=str(write_cifar_folder(tmp_path / "a", files))).load()
    got = Cifar10(path=str(write_cifar_tar(tmp_path / "b" / "cifar-10-python.tar.gz", as_python2))).load()
    np.testing.assert_array_equal(got.x_train, expected.x_train)
    np.testing.assert_array_equal(got.y_train, expected.y_train)


def test_batches_in_any_order_and_of_uneven_sizes_give_the_canonical_arrays(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    sizes = {"data_batch_1": 12, "data_batch_2": 12, "data_batch_3": 5, "data_batch_4": 12, "data_batch_5": 9,
             "test_batch": 7}
    batches = {name: (rng.integers(0, 256, (n, 3072), dtype=np.uint8), [int(v) for v in rng.integers(0, 10, n)])
               for name, n in sizes.items()}
    files = {name: pickle.dumps({b"data": data, b"labels": labels}, protocol=2)
             for name, (data, labels) in batches.items()}
    files["batches.meta"] = cifar_batches()["batches.meta"]
    shuffled = {name: files[name] for name in ("data_batch_4", "test_batch", "data_batch_3", "batches.meta",
                                               "data_batch_1", "data_batch_5", "data_batch_2")}
    data = Cifar10(path=str(write_cifar_tar(tmp_path / "cifar-10-python.tar.gz", shuffled))).load()
    order = [f"data_batch_{i}" for i in range(1, 6)]
    planes = np.concatenate([batches[n][0] for n in order]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(data.x_train, planes)
    np.testing.assert_array_equal(data.y_train, np.concatenate([batches[n][1] for n in order]))
    np.testing.assert_array_equal(data.x_test, batches["test_batch"][0].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    assert data.info["fingerprint"] == fingerprint(data)  # the digests taken batch by batch match the arrays


@pytest.mark.parametrize("fault", ["truncated", "damaged"])
def test_a_truncated_or_damaged_tar_gz_names_the_fix(tmp_path: Path, fault: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Small pieces: the helper thread has far more to hand over than its queue holds when the reading fails.
    monkeypatch.setattr(gzip_ahead, "CHUNK", 1 << 10)
    path = write_cifar_tar(tmp_path / "cifar-10-python.tar.gz", cifar_batches(seed=8))
    data = bytearray(path.read_bytes())
    if fault == "truncated":
        del data[len(data) * 2 // 3:]
    else:
        data[len(data) // 2:len(data) // 2 + 32] = bytes(32)
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=f"{fault}.*download cifar-10-python.tar.gz again"):
        Cifar10(path=str(path)).load()
    for helper in [t for t in threading.enumerate() if t.name == "gzip-ahead"]:  # stopped, not left waiting
        helper.join(timeout=5)
        assert not helper.is_alive()


def _batch(rows: int, labels: list[int] | None = None, data: object = None) -> bytes:
    return python2_pickle({b"batch_label": b"x", b"labels": labels if labels is not None else [0] * rows,
                           b"data": data if data is not None else np.zeros((rows, 3072), dtype=np.uint8)})


def test_an_archive_of_other_row_counts_is_read_as_a_variant_never_canonical(tmp_path: Path,
                                                                             cache_dir: Path) -> None:
    files = {**cifar_batches(seed=9), "data_batch_1": _batch(12_000)}  # zero rows: compresses to almost nothing
    path = write_cifar_tar(tmp_path / "cifar-10-python.tar.gz", files)
    assert path.stat().st_size < 300_000  # for 37 MB of rows
    expected = ("variant: 12000 training rows in data_batch_1, 10 training rows in data_batch_2, 10 training rows "
                "in data_batch_3, 10 training rows in data_batch_4, 10 training rows in data_batch_5, not 5 x 10000; "
                "10 test rows in test_batch, not 10000")
    for cache in ("miss", "hit"):
        data = Cifar10(path=str(path)).load()
        assert data.info["cache"] == cache and len(data.y_train) == 12_040
        assert data.info["pixels"] == expected
        assert data.info["source_check"].startswith("archive is not the published file: ")
    (entry,) = cache_dir.glob("cifar10-*")
    meta = json.loads((entry / "meta.json").read_text())["meta"]
    assert meta["pixels"] == expected and meta["source_check"] == data.info["source_check"]


def test_only_the_published_archive_is_canonical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_cifar_tar(tmp_path / "cifar-10-python.tar.gz")
    as_published(monkeypatch, path)
    data = Cifar10(path=str(path)).load()
    assert data.info["pixels"] == "canonical"
    assert data.info["source_check"].startswith("archive matches the published size")
    folder = Cifar10(path=str(write_cifar_folder(tmp_path / "f"))).load()
    assert folder.info["pixels"] == "canonical" and "no published digest" in folder.info["source_check"]
    no_meta = {k: v for k, v in cifar_batches().items() if k != "batches.meta"}
    assert Cifar10(path=str(write_cifar_folder(tmp_path / "g", no_meta))).load().info["pixels"] == \
        "variant: no batches.meta"


@pytest.mark.parametrize(("batch", "message"), [
    (_batch(10, data=np.zeros((10, 3000), dtype=np.uint8)), r"data_batch_3: expected rows of 3072 bytes"),
    (_batch(10, data=np.zeros((10, 3072), dtype=np.int64)), r"data_batch_3: expected rows of 3072 bytes"),
    (_batch(10, labels=[3] * 9 + [10]), r"data_batch_3: labels must be whole numbers 0..9, found 3..10"),
    (_batch(10, labels=[1] * 11), r"data_batch_3: 10 rows but 11 labels"),
])
def test_grossly_broken_batches_are_errors_naming_the_file(tmp_path: Path, batch: bytes, message: str) -> None:
    path = write_cifar_tar(tmp_path / "cifar-10-python.tar.gz", {**cifar_batches(), "data_batch_3": batch})
    with pytest.raises(DatasetError, match=message):
        Cifar10(path=str(path)).load()


def test_a_pickle_that_would_run_code_is_refused_naming_the_batch(tmp_path: Path) -> None:
    evil = pickle.dumps(threading.Thread, protocol=2)  # a class reference: find_class is asked for it
    path = write_cifar_tar(tmp_path / "cifar-10-python.tar.gz", {**cifar_batches(), "test_batch": evil})
    with pytest.raises(DatasetError, match=r"cifar-10-python.tar.gz/test_batch refers to threading.Thread"):
        Cifar10(path=str(path)).load()


def test_random_bytes_named_like_the_archive_are_reported_as_damaged(tmp_path: Path) -> None:
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(np.random.default_rng(1).bytes(676_000).replace(b"\x1f\x8b", b"ab"))
    with pytest.raises(DatasetError, match=r"cifar-10-python.tar.gz is not a readable tar archive \(truncated or "
                                           r"damaged: .+\); download cifar-10-python.tar.gz again"):
        Cifar10(path=str(path)).load()
