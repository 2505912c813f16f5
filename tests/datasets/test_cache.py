"""The prepared-data cache: hit on the second load, invalidated by a changed source or option, atomic, robust."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from bench.datasets import cache
from bench.datasets.cifar10 import Cifar10
from bench.datasets.fingerprint import fingerprint
from bench.datasets.folder import ImageFolder
from bench.datasets.malaria import Malaria
from bench.datasets.subset import subset
from tests.datasets.builders import (
    cifar_image_members,
    class_members,
    malaria_members,
    png_bytes,
    write_tree,
    write_zip,
)


def entries(cache_dir: Path, adapter: str) -> list[Path]:
    """The cache's entries of one adapter (writers' temporary folders start with a dot and are not entries)."""
    return sorted(cache_dir.glob(f"{adapter}-*"))


def test_second_load_hits_and_returns_the_same_arrays(tmp_path: Path, cache_dir: Path) -> None:
    path = write_zip(tmp_path / "cell_images.zip", malaria_members())
    first = Malaria(path=str(path)).load()
    second = Malaria(path=str(path)).load()
    assert (first.info["cache"], second.info["cache"]) == ("miss", "hit")
    np.testing.assert_array_equal(first.x_train, second.x_train)
    assert second.info["n_skipped"] == 1 and second.info["skipped"] == first.info["skipped"]
    assert len(entries(cache_dir, "malaria")) == 1
    assert not list(cache_dir.glob(".*"))  # no writer's leftovers


def test_a_warm_load_maps_arrays_identical_to_the_cold_load_bit_for_bit(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_zip(tmp_path / "cifar10-jpeg.zip", cifar_image_members())
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "unwritable-file"))
    (tmp_path / "unwritable-file").write_text("a file where the cache folder should be")
    with pytest.warns(UserWarning, match="could not write the data cache"):
        decoded = Cifar10(path=str(path)).load()  # the arrays as decoded, never stored
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    cold, warm = Cifar10(path=str(path)).load(), Cifar10(path=str(path)).load()
    assert (cold.info["cache"], warm.info["cache"]) == ("miss", "hit")
    assert not isinstance(decoded.x_train, np.memmap) and isinstance(warm.x_train, np.memmap)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        for data in (cold, warm):
            got, want = getattr(data, name), getattr(decoded, name)
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
            assert not got.flags.writeable  # read-only maps: anything writing in place fails loudly
    # The recorded fingerprint is the same whether the pixels were decoded, mapped, or hashed afresh.
    assert decoded.info["fingerprint"] == cold.info["fingerprint"] == warm.info["fingerprint"] == fingerprint(warm)


def test_subsetting_a_mapped_set_copies_only_the_rows_kept(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "cifar10-jpeg.zip", cifar_image_members(train=6, test=3))
    Cifar10(path=str(path)).load()
    warm = Cifar10(path=str(path)).load()
    cut = subset(warm, 20, 10)
    assert cut.x_train.shape[0] == 20 and not isinstance(cut.x_train, np.memmap) and cut.x_train.base is None
    rows = [np.flatnonzero((warm.x_train == row).all(axis=(1, 2, 3)))[0] for row in cut.x_train]
    np.testing.assert_array_equal(warm.y_train[rows], cut.y_train)
    assert cut.info["fingerprint"] == fingerprint(cut) and cut.info["fingerprint_full"] == warm.info["fingerprint"]


def test_take_reads_the_same_rows_as_indexing_the_map(tmp_path: Path) -> None:
    x = np.random.default_rng(0).integers(0, 256, (40, 4, 4, 3), dtype=np.uint8)
    assert cache.save(tmp_path / "e", {"x": x}, {})
    mapped = cache.load(tmp_path / "e")[0]["x"]  # type: ignore[index]
    for index in ([0, 1, 2, 3], [39], [5, 7, 8, 9, 30, 31], [3, 1, 2], list(range(40))):
        got = cache.take(mapped, np.array(index))
        assert not isinstance(got, np.memmap)
        np.testing.assert_array_equal(got, x[index])
    np.testing.assert_array_equal(cache.take(x, np.array([2, 4])), x[[2, 4]])  # plain arrays: plain indexing


def test_split_options_reuse_the_decoded_cells(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "cell_images.zip", malaria_members())
    Malaria(path=str(path)).load()
    assert Malaria(path=str(path), split="patient", split_seed=3).load().info["cache"] == "hit"


def test_a_changed_size_option_is_a_separate_entry(tmp_path: Path, cache_dir: Path) -> None:
    path = write_zip(tmp_path / "cell_images.zip", malaria_members())
    Malaria(path=str(path)).load()
    small = Malaria(path=str(path), size=16).load()
    assert small.info["cache"] == "miss" and small.input_shape == (16, 16, 3)
    assert len(entries(cache_dir, "malaria")) == 2
    assert Malaria(path=str(path)).load().info["cache"] == "hit"


def test_a_rewritten_zip_invalidates_and_replaces_the_entry(tmp_path: Path, cache_dir: Path) -> None:
    path = write_zip(tmp_path / "cell_images.zip", malaria_members())
    Malaria(path=str(path)).load()
    write_zip(path, malaria_members(cells_per_code=5, corrupt=0))
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse clocks
    changed = Malaria(path=str(path)).load()
    assert changed.info["cache"] == "miss" and len(changed.y_train) + len(changed.y_test) == 60
    assert len(entries(cache_dir, "malaria")) == 1  # the stale entry is gone
    assert not list(cache_dir.glob(".*"))


def test_a_file_added_to_a_folder_invalidates(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "r", class_members(per_class=10))
    assert ImageFolder(path=str(root)).load().info["cache"] == "miss"
    assert ImageFolder(path=str(root)).load().info["cache"] == "hit"
    (root / "dog" / "new.png").write_bytes(png_bytes(8, 99))
    data = ImageFolder(path=str(root)).load()
    assert data.info["cache"] == "miss" and len(data.y_train) + len(data.y_test) == 31


@pytest.mark.parametrize("damage", ["truncated array", "missing array", "garbled index"])
def test_a_damaged_entry_is_rebuilt_with_a_warning(tmp_path: Path, cache_dir: Path, damage: str) -> None:
    root = write_tree(tmp_path / "r", class_members(per_class=10))
    first = ImageFolder(path=str(root)).load()
    entry = entries(cache_dir, "folder")[0]
    if damage == "truncated array":
        (entry / "x.npy").write_bytes((entry / "x.npy").read_bytes()[:-10])
    elif damage == "missing array":
        (entry / "y.npy").unlink()
    else:
        (entry / cache.META_FILE).write_text('{"format_version": 3, "arr')
    with pytest.warns(UserWarning, match=f"the data cache entry {entry} is damaged .*decoding the source again"):
        rebuilt = ImageFolder(path=str(root)).load()
    assert rebuilt.info["cache"] == "miss"
    np.testing.assert_array_equal(rebuilt.x_train, first.x_train)
    assert ImageFolder(path=str(root)).load().info["cache"] == "hit"
    assert entries(cache_dir, "folder") == [entry] and not list(cache_dir.glob(".*"))


def test_a_writer_killed_mid_entry_leaves_nothing_that_reads_as_valid(tmp_path: Path, cache_dir: Path) -> None:
    entry = cache_dir / "folder-0123456789abcdef-0123456789abcdef"
    # A real SIGKILL after the first of two arrays is written: no cleanup code runs in the writer.
    script = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        from bench.datasets import cache
        real_save = np.save
        def save_then_die(file, arr, **kw):
            real_save(file, arr, **kw)
            os.kill(os.getpid(), signal.SIGKILL)
        np.save = save_then_die
        cache.save(cache.Path({str(entry)!r}), {{"x": np.zeros((4, 2, 2, 3), np.uint8), "y": np.arange(4)}}, {{}})
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == -9, result.stderr
    assert [p.name.startswith(cache.TMP_PREFIX) for p in cache_dir.iterdir()] == [True]  # its half-written folder
    assert cache.load(entry) is None  # ... under a name no load reads
    built = cache.cached("folder", tmp_path, "state", {}, lambda: ({"x": np.ones((2, 2, 2, 3), np.uint8)}, {}))
    assert built[2] == "miss"


def test_a_killed_writers_folder_is_deleted_by_a_write_a_day_later(tmp_path: Path, cache_dir: Path) -> None:
    old, recent = cache_dir / f"{cache.TMP_PREFIX}folder-a-b-1", cache_dir / f"{cache.TMP_PREFIX}folder-a-b-2"
    for left in (old, recent):
        left.mkdir(parents=True)
        (left / "x.npy").write_bytes(b"half")
    a_day_ago = time.time() - cache.ABANDONED_AFTER_S - 60
    os.utime(old, (a_day_ago, a_day_ago))
    assert cache.save(cache_dir / "folder-c-d", {"x": np.zeros((1, 1, 1, 1), np.uint8)}, {})
    assert not old.exists() and recent.exists()  # a folder written to recently may be a live writer's


def test_writers_racing_for_one_entry_all_end_with_a_valid_one(tmp_path: Path, cache_dir: Path) -> None:
    # Three processes miss together (each build waits for all three to have started it), so all three write
    # the entry and race to rename it into place: the first wins, the others must keep it and not fail.
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        import numpy as np
        from bench.datasets import cache
        started = Path({str(tmp_path)!r}) / ("started-" + sys.argv[1])
        def build():
            started.touch()
            while len(list(started.parent.glob("started-*"))) < 3:
                time.sleep(0.01)
            return {{"x": np.full((50, 4, 4, 3), 7, np.uint8), "y": np.arange(50)}}, {{"writer": sys.argv[1]}}
        arrays, meta, hit = cache.cached("folder", Path({str(tmp_path)!r}), "state", {{}}, build)
        print(hit, meta["writer"], int(arrays["x"].sum()), isinstance(arrays["x"], np.memmap))
    """)
    env = {**os.environ, "BENCH_CACHE_DIR": str(cache_dir)}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(i)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outs]
    lines = [out.split() for out, _ in outs]
    assert {line[0] for line in lines} == {"miss"} and {line[2] for line in lines} == {str(50 * 48 * 7)}
    assert {line[3] for line in lines} == {"True"}  # each ends reading the one entry that stands
    assert len({line[1] for line in lines}) == 1  # ... the winner's, whose metadata all three see
    assert len(entries(cache_dir, "folder")) == 1 and not list(cache_dir.glob(".*"))


def test_a_second_save_of_an_entry_keeps_the_complete_one_and_replaces_a_damaged_one(tmp_path: Path) -> None:
    path = tmp_path / "folder-a-b"
    assert cache.save(path, {"x": np.zeros((2, 1, 1, 1), np.uint8)}, {"n": 1})
    assert cache.save(path, {"x": np.zeros((2, 1, 1, 1), np.uint8)}, {"n": 2})  # lost the race: the first stands
    assert cache.load(path)[1] == {"n": 1}  # type: ignore[index]
    (path / "x.npy").unlink()
    assert cache.save(path, {"x": np.zeros((2, 1, 1, 1), np.uint8)}, {"n": 3})
    assert cache.load(path)[1] == {"n": 3}  # type: ignore[index]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder-a-b"]


def test_an_unwritable_cache_warns_and_still_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("BENCH_CACHE_DIR", str(blocker / "cache"))
    root = write_tree(tmp_path / "r", class_members(per_class=10))
    with pytest.warns(UserWarning, match="could not write the data cache.*BENCH_CACHE_DIR"):
        data = ImageFolder(path=str(root)).load()
    assert data.info["cache"] == "miss" and len(data.y_train) == 24


def test_old_npz_entries_are_ignored(tmp_path: Path, cache_dir: Path) -> None:
    root = write_tree(tmp_path / "r", class_members(per_class=10))
    cache_dir.mkdir()
    (cache_dir / "folder-0123456789abcdef-0123456789abcdef.npz").write_bytes(b"PK\x03\x04 an old entry")
    assert ImageFolder(path=str(root)).load().info["cache"] == "miss"
    assert ImageFolder(path=str(root)).load().info["cache"] == "hit"


def test_entries_stay_uint8_and_default_to_the_home_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "e"
    assert cache.save(path, {"x": np.zeros((2, 3, 3, 3), np.uint8)}, {"k": 1})
    arrays, meta = cache.load(path)  # type: ignore[misc]
    assert arrays["x"].dtype == np.uint8 and meta == {"k": 1}
    monkeypatch.delenv("BENCH_CACHE_DIR")
    assert cache.cache_dir() == Path("~/.cache/bench").expanduser()


def test_a_drafted_array_is_stored_in_place_and_others_beside_it(tmp_path: Path, cache_dir: Path) -> None:
    made = {}

    def build(draft: cache.Draft) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        x = made["x"] = draft.empty("x", (4, 2, 2, 3), np.uint8)
        x[...] = np.arange(x.size, dtype=np.uint8).reshape(x.shape)
        draft.empty("unused", (3,), np.int64)  # drafted, then not returned
        draft.empty("y", (9,), np.int64)  # drafted, then replaced by another array of that name
        return {"x": x, "y": np.arange(4)}, {"n": 4}

    arrays, meta, hit = cache.cached_into("folder", tmp_path, "state", {}, build)
    assert hit == "miss" and meta == {"n": 4, "decoder": cache.decoder()}
    assert isinstance(made["x"], np.memmap) and not Path(made["x"].filename).exists()  # renamed into the entry
    [entry] = entries(cache_dir, "folder")
    assert sorted(p.name for p in entry.iterdir()) == [cache.META_FILE, "x.npy", "y.npy"]
    assert np.array_equal(arrays["x"], np.arange(48, dtype=np.uint8).reshape(4, 2, 2, 3))
    assert np.array_equal(arrays["y"], np.arange(4)) and not arrays["x"].flags.writeable
    again = cache.cached_into("folder", tmp_path, "state", {}, lambda draft: pytest.fail("rebuilt"))
    assert again[2] == "hit" and np.array_equal(again[0]["x"], arrays["x"])
    assert not list(cache_dir.glob(".*"))  # no temporary folder left


def test_a_failed_build_leaves_no_draft_behind(tmp_path: Path, cache_dir: Path) -> None:
    def build(draft: cache.Draft) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        draft.empty("x", (4, 2), np.uint8)[...] = 1
        raise ValueError("the source is damaged")

    with pytest.raises(ValueError, match="damaged"):
        cache.cached_into("folder", tmp_path, "state", {}, build)
    assert not list(cache_dir.iterdir())


def test_an_unwritable_cache_drafts_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("BENCH_CACHE_DIR", str(blocker / "cache"))

    def build(draft: cache.Draft) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        x = draft.empty("x", (3,), np.int64)
        x[...] = 7
        return {"x": x}, {}

    with pytest.warns(UserWarning, match="could not write the data cache"):
        arrays, _, hit = cache.cached_into("folder", tmp_path, "state", {}, build)
    assert hit == "miss" and not isinstance(arrays["x"], np.memmap) and arrays["x"].tolist() == [7, 7, 7]


def test_pixels_of_another_decoder_are_another_entry_and_never_decoded_by_this_one(
        tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow versions resize differently: an entry one decoded is not another's, and a process told to read the
    # harness's pixels (BENCH_DECODER) reads them or fails in one line, never decodes its own.
    path = write_zip(tmp_path / "cell_images.zip", malaria_members())
    monkeypatch.setattr(cache, "decoder", lambda: "Pillow 1.0")
    first = Malaria(path=str(path)).load()
    assert first.info["decoder"] == "Pillow 1.0" and first.info["cache"] == "miss"
    monkeypatch.setattr(cache, "decoder", lambda: "Pillow 2.0")
    assert Malaria(path=str(path)).load().info["cache"] == "miss"  # not the other decoder's entry
    assert len(entries(cache_dir, "malaria")) == 2
    monkeypatch.setenv(cache.DECODER_ENV, "Pillow 1.0")
    read = Malaria(path=str(path)).load()
    assert (read.info["cache"], read.info["decoder"]) == ("hit", "Pillow 1.0")
    monkeypatch.setenv(cache.DECODER_ENV, "Pillow 3.0")
    with pytest.raises(cache.OtherDecoder, match=r"decoded by Pillow 3\.0 are not in the data cache.*Pillow 2\.0"):
        Malaria(path=str(path)).load()
    assert len(entries(cache_dir, "malaria")) == 2
