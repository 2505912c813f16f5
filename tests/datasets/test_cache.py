"""The prepared-data cache: hit on the second load, invalidated by a changed source or option, atomic, robust."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bench.datasets import cache
from bench.datasets.folder import ImageFolder
from bench.datasets.malaria import Malaria
from tests.datasets.builders import class_members, malaria_members, png_bytes, write_tree, write_zip


def test_second_load_hits_and_returns_the_same_arrays(tmp_path: Path, cache_dir: Path) -> None:
    path = write_zip(tmp_path / "cell_images.zip", malaria_members())
    first = Malaria(path=str(path)).load()
    second = Malaria(path=str(path)).load()
    assert (first.info["cache"], second.info["cache"]) == ("miss", "hit")
    np.testing.assert_array_equal(first.x_train, second.x_train)
    assert second.info["n_skipped"] == 1 and second.info["skipped"] == first.info["skipped"]
    assert len(list(cache_dir.glob("malaria-*.npz"))) == 1
    assert not list(cache_dir.glob("*.tmp"))


def test_split_options_reuse_the_decoded_cells(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "cell_images.zip", malaria_members())
    Malaria(path=str(path)).load()
    assert Malaria(path=str(path), split="patient", split_seed=3).load().info["cache"] == "hit"


def test_a_changed_size_option_is_a_separate_entry(tmp_path: Path, cache_dir: Path) -> None:
    path = write_zip(tmp_path / "cell_images.zip", malaria_members())
    Malaria(path=str(path)).load()
    small = Malaria(path=str(path), size=16).load()
    assert small.info["cache"] == "miss" and small.input_shape == (16, 16, 3)
    assert len(list(cache_dir.glob("malaria-*.npz"))) == 2
    assert Malaria(path=str(path)).load().info["cache"] == "hit"


def test_a_rewritten_zip_invalidates_and_replaces_the_entry(tmp_path: Path, cache_dir: Path) -> None:
    path = write_zip(tmp_path / "cell_images.zip", malaria_members())
    Malaria(path=str(path)).load()
    write_zip(path, malaria_members(cells_per_code=5, corrupt=0))
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse clocks
    changed = Malaria(path=str(path)).load()
    assert changed.info["cache"] == "miss" and len(changed.y_train) + len(changed.y_test) == 60
    assert len(list(cache_dir.glob("malaria-*.npz"))) == 1  # the stale entry is gone


def test_a_file_added_to_a_folder_invalidates(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "r", class_members(per_class=10))
    assert ImageFolder(path=str(root)).load().info["cache"] == "miss"
    assert ImageFolder(path=str(root)).load().info["cache"] == "hit"
    (root / "dog" / "new.png").write_bytes(png_bytes(8, 99))
    data = ImageFolder(path=str(root)).load()
    assert data.info["cache"] == "miss" and len(data.y_train) + len(data.y_test) == 31


def test_a_damaged_entry_is_rebuilt(tmp_path: Path, cache_dir: Path) -> None:
    root = write_tree(tmp_path / "r", class_members(per_class=10))
    ImageFolder(path=str(root)).load()
    entry = next(cache_dir.glob("folder-*.npz"))
    entry.write_bytes(entry.read_bytes()[:100])
    assert ImageFolder(path=str(root)).load().info["cache"] == "miss"
    assert ImageFolder(path=str(root)).load().info["cache"] == "hit"


def test_an_unwritable_cache_warns_and_still_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("BENCH_CACHE_DIR", str(blocker / "cache"))
    root = write_tree(tmp_path / "r", class_members(per_class=10))
    with pytest.warns(UserWarning, match="could not write the data cache.*BENCH_CACHE_DIR"):
        data = ImageFolder(path=str(root)).load()
    assert data.info["cache"] == "miss" and len(data.y_train) == 24


def test_entries_stay_uint8_and_default_to_the_home_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "e.npz"
    assert cache.save(path, {"x": np.zeros((2, 3, 3, 3), np.uint8)}, {"k": 1})
    arrays, meta = cache.load(path)  # type: ignore[misc]
    assert arrays["x"].dtype == np.uint8 and meta == {"k": 1}
    monkeypatch.delenv("BENCH_CACHE_DIR")
    assert cache.cache_dir() == Path("~/.cache/bench").expanduser()
