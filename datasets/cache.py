"""The prepared-data cache: one folder of uncompressed .npy files per entry, memory-mapped on load.

A warm load maps the files instead of reading them: it costs a few file opens, and only the pages a run touches
are ever read. An entry is written under a temporary name and renamed into place whole, so a writer that is
killed leaves no entry at all, and two writers racing for one entry both end with a complete one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import mmap
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bench.datasets.base import DatasetError

# Where prepared arrays live unless BENCH_CACHE_DIR says otherwise.
DEFAULT_CACHE_DIR = Path("~/.cache/bench")
# Bumped whenever what an adapter stores changes, so older entries are never read as current.
# 4: images of more than 8 bits a sample scaled (not clipped) to 8, and the conversions and CIFAR-10's source
# check in the metadata; 3: a folder of uncompressed .npy files per entry (2: one compressed .npz, never read).
FORMAT_VERSION = 4
# The entry's index: its format version, each array's shape and dtype, and the adapter's metadata.
META_FILE = "meta.json"
# Entries being written and entries moved aside to be deleted: the leading dot keeps them out of the
# '<adapter>-<which>-*' globs that find entries.
TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
# Temporary folders older than this are a killed writer's and are deleted by the next write: no writer takes a
# day (CIFAR-10's entry is written in under a second), so none still being written is ever removed.
ABANDONED_AFTER_S = 24 * 3600


# Set to 1 in a process's environment, every entry it asks for is decoded again and replaces the stored one.
REFRESH_ENV = "BENCH_CACHE_REFRESH"
# Set by the harness in the environment of a worker whose interpreter is not the harness's (a system with an
# environment of its own): the decoder whose pixels that worker reads. Pillow versions resize differently, so a
# worker decoding for itself would train and test on other pixels than the rest of the suite.
DECODER_ENV = "BENCH_DECODER"


class OtherDecoder(DatasetError):
    """Pixels of another decoder were asked for and are not in the cache; the message says what to do."""


def decoder() -> str:
    """The library this process decodes and resizes images with, and its version."""
    import PIL

    return f"Pillow {PIL.__version__}"


def wanted_decoder() -> str:
    """Whose pixels this process reads: the harness's decoder where it names one (DECODER_ENV), else its own."""
    return os.environ.get(DECODER_ENV) or decoder()


class DamagedEntry(Exception):
    """A cache entry that exists but cannot be read as written; the message says what is wrong with it."""


def cache_dir() -> Path:
    """The cache folder: $BENCH_CACHE_DIR, else ~/.cache/bench."""
    return Path(os.environ.get("BENCH_CACHE_DIR") or DEFAULT_CACHE_DIR).expanduser()


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def entry_path(adapter: str, source: Path, options: Mapping[str, Any], fingerprint: str) -> Path:
    """The cache folder for these arrays: '<adapter>-<which source+options+decoder>-<source state>'."""
    which = _digest([FORMAT_VERSION, adapter, str(source.resolve()), dict(options), wanted_decoder()])[:16]
    state = _digest(fingerprint)[:16]
    return cache_dir() / f"{adapter}-{which}-{state}"


def load(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The entry's arrays (read-only memory maps) and metadata; None when absent.

    Raises DamagedEntry when the entry exists but is incomplete or inconsistent with its index.
    """
    if not path.exists():
        return None
    try:
        index = json.loads((path / META_FILE).read_text())
        if index.get("format_version") != FORMAT_VERSION:
            raise DamagedEntry(f"its index names format {index.get('format_version')!r}, not {FORMAT_VERSION}")
        arrays = {}
        for name, spec in index["arrays"].items():
            # np.load checks the header and that the file holds every byte the header promises.
            arr = np.load(path / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            if list(arr.shape) != spec["shape"] or arr.dtype.str != spec["dtype"]:
                raise DamagedEntry(f"{name}.npy holds {arr.dtype.str} {list(arr.shape)}, its index says "
                                   f"{spec['dtype']} {spec['shape']}")
            arrays[name] = arr
        return arrays, index["meta"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # JSONDecodeError is a ValueError
        raise DamagedEntry(f"{type(exc).__name__}: {exc}") from exc


def _publish(tmp: Path, path: Path, replace: bool = False) -> None:
    """Renames the written folder tmp to path; an entry already there is kept if complete (unless replace), else
    replaced."""
    try:
        os.rename(tmp, path)
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    try:
        if not replace:
            load(path)
            return  # another writer finished the same entry first: the same key means the same source and options
    except DamagedEntry:
        pass
    aside = path.with_name(f"{TRASH_PREFIX}{path.name}-{uuid.uuid4().hex[:8]}")
    with contextlib.suppress(FileNotFoundError):  # another writer moved it aside already
        os.rename(path, aside)
    try:
        os.rename(tmp, path)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise  # else another writer replaced the damaged entry between our two renames: theirs stands
    shutil.rmtree(aside, ignore_errors=True)


def _remove_abandoned(folder: Path) -> None:
    """Deletes what killed writers and removers left behind (temporary and set-aside folders a day old)."""
    now = time.time()
    for left in [*folder.glob(f"{TMP_PREFIX}*"), *folder.glob(f"{TRASH_PREFIX}*")]:
        with contextlib.suppress(OSError):  # gone already, or not ours to delete
            if now - left.stat().st_mtime > ABANDONED_AFTER_S:
                shutil.rmtree(left)


def _remove_stale(path: Path) -> None:
    """Deletes the entries of the same source and options made from an older state of the source."""
    prefix = path.name.rsplit("-", 1)[0] + "-"
    for old in path.parent.glob(f"{prefix}*"):
        if old != path and old.is_dir():
            # Moved aside first, so a reader sees the whole entry or none of it; readers that mapped its
            # files keep them until they unmap.
            aside = old.with_name(f"{TRASH_PREFIX}{old.name}-{uuid.uuid4().hex[:8]}")
            try:
                os.rename(old, aside)
            except OSError:
                continue  # another process is removing it
            shutil.rmtree(aside, ignore_errors=True)


class Draft:
    """An entry being built, in its temporary folder: arrays from `empty` are memory maps of the entry's own
    .npy files, so a build that fills them writes its result where the entry keeps it and saving copies
    nothing (CIFAR-10's 176 MB were otherwise written a second time). Without a folder (the cache cannot be
    written), `empty` gives arrays in memory."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.mapped: dict[str, np.ndarray] = {}

    def empty(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """An uninitialised array that is to be stored as `name`, in its file from the start."""
        if self.folder is None:
            return np.empty(shape, dtype)
        # Never flushed: the page cache holds the bytes as it holds np.save's, and the rename commits them.
        arr = np.lib.format.open_memmap(self.folder / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
        self.mapped[name] = arr
        return arr


def _write(folder: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], draft: Draft | None) -> None:
    """The arrays (those not already in their draft files) and the index, into folder."""
    mapped = draft.mapped if draft is not None else {}
    for name in set(mapped) - set(arrays):
        (folder / f"{name}.npy").unlink()  # drafted, then not used
    specs = {}
    for name, arr in arrays.items():
        if mapped.get(name) is not arr:
            if name in mapped:
                (folder / f"{name}.npy").unlink()  # the build made another array of that name
            arr = np.asanyarray(arr)
            np.save(folder / f"{name}.npy", arr, allow_pickle=False)
        specs[name] = {"shape": list(arr.shape), "dtype": arr.dtype.str}
    index = {"format_version": FORMAT_VERSION, "arrays": specs, "meta": dict(meta)}
    (folder / META_FILE).write_text(json.dumps(index, default=str))


def _start(path: Path) -> Path:
    """A new temporary folder for the entry at path (its parent created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkdtemp, which makes it 0700: an entry gets the mode of any folder the user makes (0777 less the
    # umask), as the results files do.
    folder = path.parent / f"{TMP_PREFIX}{path.name}-{uuid.uuid4().hex[:12]}"
    folder.mkdir(mode=0o777)
    return folder


def save(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], draft: Draft | None = None,
         replace: bool = False) -> bool:
    """Writes the entry as a folder of .npy files under a temporary name (the draft's, if given), then renames it
    into place (replacing one there if asked, else keeping one there that is complete).

    No fsync: a killed process cannot leave a partial entry (the rename is the commit, and the page cache
    outlives the process); only a power cut could, and the next load would find it damaged and rebuild it.
    A cache that cannot be written only costs speed, so failures warn and return False.
    """
    tmp: Path | None = draft.folder if draft is not None else None
    try:
        tmp = tmp or _start(path)  # a draft without a folder: the cache could not be written then either
        _write(tmp, arrays, meta, draft)
        _publish(tmp, path, replace)
    except OSError as exc:
        warnings.warn(f"could not write the data cache {path} ({exc}); set BENCH_CACHE_DIR to a "
                      "writable folder", stacklevel=2)
        return False
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _remove_stale(path)
    _remove_abandoned(path.parent)
    return True


def cached(adapter: str, source: Path, fingerprint: str, options: Mapping[str, Any],
           build: Callable[[], tuple[dict[str, np.ndarray], dict[str, Any]]],
           ) -> tuple[dict[str, np.ndarray], dict[str, Any], str]:
    """The arrays for (source, options) from the cache, else built and stored; also 'hit' or 'miss'.

    After a miss the stored entry is mapped and returned, not the arrays just built: cold and warm loads
    then give the same read-only arrays, and the decoded copy is freed.
    """
    return cached_into(adapter, source, fingerprint, options, lambda draft: build())


def cached_into(adapter: str, source: Path, fingerprint: str, options: Mapping[str, Any],
                build: Callable[[Draft], tuple[dict[str, np.ndarray], dict[str, Any]]],
                ) -> tuple[dict[str, np.ndarray], dict[str, Any], str]:
    """As cached, for a build given the entry's Draft: the arrays it makes with draft.empty are written in
    place."""
    path = entry_path(adapter, source, options, fingerprint)
    # Asked to decode again (--force): the entry is rebuilt and replaces the one there.
    refresh = os.environ.get(REFRESH_ENV) == "1"
    try:
        found = None if refresh else load(path)
    except DamagedEntry as exc:
        warnings.warn(f"the data cache entry {path} is damaged ({exc}); decoding the source again to replace "
                      "it", stacklevel=2)
        found = None
    if found is not None:
        return *found, "hit"
    if wanted_decoder() != decoder():
        raise OtherDecoder(f"the pixels of {source} decoded by {wanted_decoder()} are not in the data cache "
                           f"({cache_dir()}), and this environment decodes with {decoder()}, which resizes "
                           "differently; the harness prepares them before it starts such a worker: run the system "
                           "through `python -m bench`")
    try:
        draft = Draft(_start(path))
    except OSError:
        draft = Draft(None)  # save warns that the cache cannot be written
    try:
        arrays, meta = build(draft)
    except BaseException:
        if draft.folder is not None:
            shutil.rmtree(draft.folder, ignore_errors=True)
        raise
    meta = {**meta, "decoder": decoder()}
    if save(path, arrays, meta, draft, replace=refresh):
        try:
            stored = load(path)
        except DamagedEntry:
            stored = None  # removed or damaged by another process since: the built arrays serve
        if stored is not None:
            return *stored, "miss"
    return arrays, meta, "miss"


def take(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    """x[index] along the first axis; for an array mapped from an entry, read from its file.

    Copying rows out of a mapping makes every page it touches (and the kernel's neighbours of each) part of
    this process's resident memory until the mapping goes; reading the same bytes through the file fills
    only the copy. Rows in runs of consecutive indices are read in one call each.
    """
    index = np.asarray(index)
    mapped = isinstance(x, np.memmap) and isinstance(x.base, mmap.mmap) and x.flags.c_contiguous
    if not mapped or index.ndim != 1 or not np.issubdtype(index.dtype, np.integer) or len(index) == 0 \
            or index.min() < 0 or index.max() >= len(x):
        return np.asarray(x[index])
    out = np.empty((len(index), *x.shape[1:]), dtype=x.dtype)
    row = x.dtype.itemsize * math.prod(x.shape[1:])
    flat = out.reshape(-1).view(np.uint8)
    breaks = np.flatnonzero(np.diff(index) != 1) + 1
    starts, ends = np.concatenate(([0], breaks)), np.concatenate((breaks, [len(index)]))
    with open(str(x.filename), "rb", buffering=0) as fh:
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            fh.seek(x.offset + int(index[a]) * row)
            want = (b - a) * row
            if fh.readinto(memoryview(flat[a * row:b * row])) != want:
                raise DamagedEntry(f"{x.filename} ended before row {int(index[b - 1])}; delete it to rebuild")
    return out
